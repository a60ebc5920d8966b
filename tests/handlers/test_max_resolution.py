"""``max_resolution`` through the HTTP API (issue 23), chalice.test.Client on the emulator as
tests/handlers/test_app.py: ``POST /jobs`` and ``POST /uploads`` validate it with the one
schema (400 naming the field), carry it in the job request and the upload's metadata, and
``GET /presets`` says which values each preset takes."""
import json

import pytest

from tests.contract.conftest import client, ctx, emulator  # noqa: F401  (fixtures)
from tests.handlers.test_app import app_client, queues  # noqa: F401  (fixtures)
from tests.handlers.test_ownership import ingest_messages, post, uploaded  # noqa: F401  (uploaded: a fixture)


@pytest.mark.parametrize("settings, message", [
    ({"max_resolution": "4320p"}, "max_resolution: Input should be '1080p', '1440p' or '2160p'"),
    ({"ladder": "roku-hls", "max_resolution": "2160p"},
     "max_resolution: '2160p' is above what preset 'roku-hls' makes"),
    ({"ladder": "2160:12M,1080:5M"},
     "ladder.0.height: 2160 is above max_resolution 1080p; set max_resolution to 2160p"),
])
@pytest.mark.parametrize("path", ["/jobs", "/uploads"])
def test_an_invalid_max_resolution_gets_400_naming_the_field(app_client, emulator, path, settings,
                                                              message):  # noqa: F811
    source = f"s3://{emulator['stack'].refs['IngestBucket']}/max/missing.mp4"
    body = {"source": source, **settings} if path == "/jobs" else {"filename": "a.mp4", **settings}
    res = post(app_client, path, body)
    assert res.status_code == 400 and res.json_body["Message"].startswith(message), res.json_body


def test_post_jobs_carries_max_resolution_to_ingest(app_client, uploaded, queues, emulator):  # noqa: F811
    source, key, _ = uploaded
    res = post(app_client, "/jobs", {"source": source, "max_resolution": "2160p"})
    assert res.status_code == 202 and res.json_body["settings"]["max_resolution"] == "2160p"
    [request] = [m for m in ingest_messages(queues, emulator) if key in json.dumps(m)]
    assert '"max_resolution": "2160p"' in json.dumps(request)


def test_post_uploads_binds_max_resolution_in_the_metadata(app_client):  # noqa: F811
    res = post(app_client, "/uploads", {"filename": "uhd.mp4", "content_type": "video/mp4", "max_resolution": "1440p"})
    assert res.status_code == 200, res.json_body
    assert json.loads(res.json_body["fields"]["x-amz-meta-settings"])["max_resolution"] == "1440p"


def test_get_presets_lists_the_max_resolutions(app_client):  # noqa: F811
    listing = {p["name"]: p for p in app_client.http.get("/presets").json_body["presets"]}
    assert listing["web"]["max_resolutions"] == ["1080p", "1440p", "2160p"]
    assert [r["height"] for r in listing["web"]["high_rungs"]] == [2160, 1440]
    assert listing["roku-hls"]["max_resolutions"] == ["1080p"] and listing["roku-hls"]["high_rungs"] == []
