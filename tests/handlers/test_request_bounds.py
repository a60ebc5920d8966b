"""The HTTP API reads bodies within bounds (issue 22): over 64 KiB -> 413 before any parse; deep
nesting, long ladders, settings too large for S3 metadata, reserved names and control characters
-> 400 naming the field. Through chalice.test.Client on the emulator, as tests/handlers/test_app.py.
"""
import json

import pytest


from chalicelib.domain import settings_metadata, settings_text
from tests.contract.conftest import client, ctx, emulator  # noqa: F401  (fixtures)
from tests.handlers.test_app import app_client  # noqa: F401  (fixture)

JSON = {"Content-Type": "application/json"}
RUNG = {"name": "r", "height": 360, "bitrate": 500_000}
#: app.MAX_BODY_BYTES (app is imported by the fixture, once the emulator is up)
MAX_BODY_BYTES = settings_text.MAX_DOCUMENT_BYTES


def post(app_client, path, body):  # noqa: F811
    return app_client.http.post(path, headers=JSON, body=body if isinstance(body, bytes) else json.dumps(body))


def source(emulator):  # noqa: F811
    return f"s3://{emulator['stack'].refs['IngestBucket']}/bounds/missing.mp4"


@pytest.mark.filterwarnings("ignore:CognitoUserPoolAuthorizer is not a supported in local mode:UserWarning")
@pytest.mark.parametrize("path", ["/jobs", "/uploads", "/console/api/jobs"])
def test_a_body_over_64_kib_gets_413_before_any_parse(app_client, path):  # noqa: F811
    # before: parsed whole (400 for the unknown field, or a presigned POST); now refused unread
    too_large = b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    import app as app_module
    assert app_module.MAX_BODY_BYTES == MAX_BODY_BYTES == 64 * 1024
    res = post(app_client, path, too_large)
    assert res.status_code == 413
    assert res.json_body["Code"] == "RequestEntityTooLargeError"
    assert res.json_body["Message"] == f"body: {len(too_large)} bytes; the API reads at most 65536 bytes"
    res = post(app_client, path, b"[" * (MAX_BODY_BYTES + 1))  # not JSON either: the size decides first
    assert res.status_code == 413


def test_a_body_at_the_limit_is_read(app_client, emulator):  # noqa: F811
    body = json.dumps({"source": source(emulator), "metadata": {"a": "b"}})
    body = body[:-1] + " " * (MAX_BODY_BYTES - len(body)) + "}"
    res = post(app_client, "/jobs", body.encode())
    assert res.status_code == 400 and res.json_body["Message"].startswith("source:")  # read, validated


@pytest.mark.parametrize("path", ["/jobs", "/uploads"])
def test_deeply_nested_settings_get_400_naming_the_field(app_client, path):  # noqa: F811
    # before: Chalice's json.loads raised RecursionError: 500
    body = '{"metadata": ' + "[" * 1500 + "]" * 1500 + "}"
    res = post(app_client, path, body.encode())
    assert res.status_code == 400
    assert res.json_body["Message"] == f"metadata: nested deeper than {settings_text.MAX_DEPTH} levels of objects and arrays"


@pytest.mark.parametrize("settings, message", [
    ({"ladder": [{**RUNG, "name": f"r{i}", "height": 240 + 2 * i} for i in range(8)] + [{"name": "bad"}]},
     "ladder: an explicit ladder has 1 to 8 rungs, not 9"),
    ({"ladder": [{**RUNG, "name": "audio"}]}, "ladder.0.name: 'audio' is reserved"),
    ({"output_prefix": "shows/ep1\n"}, "output_prefix: part 'ep1\\n' is not allowed"),
    ({"metadata": {"title\n": "x"}}, "metadata: key 'title\\n' is not a name"),
    ({"metadata": {"title": "a\r\nX-Injected: 1"}}, "metadata: value of 'title' holds a control character ('\\r')"),
])
def test_post_jobs_refuses_bounds_names_and_control_characters_naming_the_field(app_client, emulator, settings,
                                                                                 message):  # noqa: F811
    res = post(app_client, "/jobs", {"source": source(emulator), **settings})
    assert res.status_code == 400 and res.json_body["Message"].startswith(message)


def test_post_uploads_refuses_settings_over_s3s_2_kb_of_metadata(app_client):  # noqa: F811
    # valid settings (metadata up to 4 KiB is allowed in a job) that do not fit x-amz-meta-settings:
    # before: a presigned POST whose upload S3 would refuse (MetadataTooLarge) after the file was sent
    body = {"filename": "clip.mp4", "content_type": "video/mp4", "metadata": {f"k{i}": "v" * 400 for i in range(5)}}
    res = post(app_client, "/uploads", body)
    assert res.status_code == 400
    assert res.json_body["Message"].startswith("metadata: the settings take ")
    assert "over S3's 2048-byte limit" in res.json_body["Message"]
    body["metadata"] = {"k0": "v" * 400}  # fits: a presigned POST binding exactly those settings
    res = post(app_client, "/uploads", body)
    assert res.status_code == 200, res.json_body
    fields = res.json_body["fields"]
    assert settings_metadata.s3_metadata_bytes({"settings": fields["x-amz-meta-settings"]}) <= 2048
