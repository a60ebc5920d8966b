"""The ingest handler on real clips (PyAV probes and decodes them, as in the Lambda runtime),
through chalice.test.Client on the emulator: GIVEN an upload WHEN its real S3 notification reaches
the ingest function THEN one job and its tasks, or a failed job naming why. (The handlers on
inputs that never reach the probe: tests/handlers/test_app.py, whose fixtures these use.)"""
import json

import pytest

from tests.conftest import media
from tests.contract.conftest import client, emulator  # noqa: F401  (fixtures)
from tests.handlers.test_app import (app_client, invoke_ingest, job_of, queues,  # noqa: F401  (fixtures)
                                     task_messages, upload_and_get_event)


def test_ingest_creates_one_job_and_fans_out_audio_and_chunks(app_client, client, emulator, queues):  # noqa: F811
    key = "uploads/My Clip + ümlaut 100%.mp4"  # spaces, '+', unicode, '%', a folder
    body = upload_and_get_event(client, emulator, queues, media("flower.mp4"), key)
    assert "My+Clip" in body or "My%20Clip" in body  # S3 URL-encodes keys in notifications
    invoke_ingest(app_client, body)
    tasks = task_messages(queues, emulator)
    names = sorted(t["task"] for t in tasks)
    assert names == ["audio", "chunk-000"]  # 5 s: one chunk carrying the whole ladder, tiles and poster
    (chunk,) = [t for t in tasks if t["kind"] == "chunk"]
    assert [r["name"] for r in chunk["spec"]["renditions"]] == ["540p", "480p", "360p", "240p"]
    assert chunk["spec"]["start"] == 0 and chunk["spec"]["last"] and chunk["spec"]["thumbnails"]["count"] == 6
    job_id = tasks[0]["job_id"]
    assert {t["source"]["key"] for t in tasks} == {key}
    # a duplicate delivery of the same notification creates nothing
    invoke_ingest(app_client, body)
    assert sorted(t["task"] for t in task_messages(queues, emulator)) == names
    res = app_client.http.get(f"/jobs/{job_id}")
    assert res.status_code == 200
    job = res.json_body
    assert job["status"] == "queued" and job["error"] is None and job["progress"] == 0
    assert job["source"]["key"] == key and job["source"]["size"] == media("flower.mp4").stat().st_size
    assert job["probe"]["width"] == 960 and job["probe"]["video_codec"] == "h264" and job["probe"]["audio_codec"] == "aac"
    assert [r["name"] for r in job["renditions"]][:4] == ["540p", "480p", "360p", "240p"]
    assert all(r["status"] == "queued" for r in job["renditions"])


@pytest.mark.parametrize("name,key,code,words", [
    ("broken_truncated_nomoov_270_rotated.mp4", "nomoov.mp4", "UNREADABLE_MEDIA", "moov atom not found"),
    ("invalid-bitstream.webm", "corrupt.webm", "UNDECODABLE_VIDEO", "cannot be decoded"),
])
def test_unreadable_input_fails_the_job_at_once_with_a_reason(app_client, client, emulator, queues, name, key, code, words):  # noqa: F811
    body = upload_and_get_event(client, emulator, queues, media(name), key)
    invoke_ingest(app_client, body)  # does not raise: no retry storm for bad input
    assert task_messages(queues, emulator) == []
    job = job_of(app_client, body)
    assert job["status"] == "failed" and job["source"]["key"] == key
    assert job["error"]["code"] == code and words in job["error"]["message"]


def test_an_upload_is_found_by_its_upload_id_once_s3_has_it(app_client, client, emulator, queues):  # noqa: F811
    """GIVEN a presigned upload WHEN the file lands and ingest runs THEN GET /uploads/{id}
    names the job its S3 event made."""
    res = app_client.http.post("/uploads", headers={"Content-Type": "application/json"},
                               body=json.dumps({"filename": "flower.mp4", "content_type": "video/mp4"}))
    upload = res.json_body
    assert app_client.http.get(f"/uploads/{upload['upload_id']}").json_body == {
        "upload_id": upload["upload_id"], "received": False, "key": None, "size": None, "job_id": None,
        "job_status": None}
    body = upload_and_get_event(client, emulator, queues, media("flower.mp4"), upload["key"])
    found = app_client.http.get(f"/uploads/{upload['upload_id']}").json_body
    assert found["received"] and found["key"] == upload["key"] and found["job_status"] is None
    invoke_ingest(app_client, body)
    after = app_client.http.get(f"/uploads/{upload['upload_id']}").json_body
    assert after["job_id"] == found["job_id"] and after["job_status"] == "queued"
    assert app_client.http.get(f"/jobs/{found['job_id']}").json_body["source"]["key"] == upload["key"]
    assert app_client.http.get("/uploads/..%2Fjobs").status_code == 400
