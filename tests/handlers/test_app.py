"""The Chalice handlers through chalice.test.Client, on the emulator (contract fixtures):
GIVEN an upload WHEN its real S3 notification reaches the ingest function THEN ...
"""
import json
import time

import pytest
from chalice.test import Client

from tests.conftest import media
from tests.contract.conftest import client, ctx, emulator  # noqa: F401  (fixtures)


@pytest.fixture
def app_client(emulator, monkeypatch):  # noqa: F811
    import app as app_module
    # uploads here carry no settings: ingest them at once (test_sidecars covers the wait)
    monkeypatch.setenv("VODPIPE_SIDECAR_WAIT_SECONDS", "0")
    app_module._ctx = None  # adapters for this emulator
    with Client(app_module.app, stage_name="dev") as c:
        yield c
    app_module._ctx = None


@pytest.fixture
def queues(emulator, client):  # noqa: F811
    sqs = client("sqs")
    stack = emulator["stack"]
    for q in ("IngestQueue", "TasksQueue"):  # drain (PurgeQueue is limited to once a minute)
        while msgs := sqs.receive_message(QueueUrl=stack.refs[q], MaxNumberOfMessages=10,
                                          WaitTimeSeconds=0).get("Messages", []):
            for m in msgs:
                sqs.delete_message(QueueUrl=stack.refs[q], ReceiptHandle=m["ReceiptHandle"])
    return sqs


def upload_and_get_event(client, emulator, queues, path, key):  # noqa: F811
    """Upload like a user, then take the real S3 notification moto put on the ingest queue."""
    stack = emulator["stack"]
    client("s3").upload_file(str(path), stack.refs["IngestBucket"], key)
    deadline = time.time() + 10
    while time.time() < deadline:
        for m in queues.receive_message(QueueUrl=stack.refs["IngestQueue"], MaxNumberOfMessages=10,
                                        WaitTimeSeconds=1).get("Messages", []):
            queues.delete_message(QueueUrl=stack.refs["IngestQueue"], ReceiptHandle=m["ReceiptHandle"])
            body = json.loads(m["Body"])
            if body.get("Event") == "s3:TestEvent":
                continue
            return m["Body"]
    raise AssertionError("no S3 notification arrived on the ingest queue")


def invoke_ingest(app_client, body, queue="vodpipe-dev-ingest"):
    event = app_client.events.generate_sqs_event(message_bodies=[body], queue_name=queue)
    return app_client.lambda_.invoke("ingest", event)


def task_messages(queues, emulator):  # noqa: F811
    msgs = queues.receive_message(QueueUrl=emulator["stack"].refs["TasksQueue"], MaxNumberOfMessages=10,
                                  WaitTimeSeconds=0, VisibilityTimeout=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in msgs]


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


def test_test_event_is_skipped(app_client, queues, emulator):  # noqa: F811
    invoke_ingest(app_client, json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}))
    assert task_messages(queues, emulator) == []


@pytest.mark.parametrize("name,key,code,words", [
    ("broken_truncated_nomoov_270_rotated.mp4", "nomoov.mp4", "UNREADABLE_MEDIA", "moov atom not found"),
    ("invalid-bitstream.webm", "corrupt.webm", "UNDECODABLE_VIDEO", "cannot be decoded"),
])
def test_unreadable_input_fails_the_job_at_once_with_a_reason(app_client, client, emulator, queues, name, key, code, words):  # noqa: F811
    body = upload_and_get_event(client, emulator, queues, media(name), key)
    invoke_ingest(app_client, body)  # does not raise: no retry storm for bad input
    assert task_messages(queues, emulator) == []
    jobs = app_client.http.get("/jobs?status=failed&limit=100").json_body["jobs"]
    job = next(j for j in jobs if j["source"]["key"] == key)
    assert job["error"]["code"] == code and words in job["error"]["message"]


def test_zero_byte_upload_fails_with_a_reason(app_client, client, emulator, queues, tmp_path):  # noqa: F811
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    invoke_ingest(app_client, upload_and_get_event(client, emulator, queues, empty, "empty.mp4"))
    jobs = app_client.http.get("/jobs?status=failed&limit=100").json_body["jobs"]
    assert next(j for j in jobs if j["source"]["key"] == "empty.mp4")["error"]["code"] == "EMPTY_FILE"


def test_api_errors_are_json(app_client):
    res = app_client.http.get("/jobs/doesnotexist")
    assert res.status_code == 404 and "doesnotexist" in res.json_body["Message"]
    res = app_client.http.get("/jobs?status=bogus")
    assert res.status_code == 400 and "unknown status" in res.json_body["Message"]


def test_stats_reports_queues_and_jobs(app_client):
    stats = app_client.http.get("/stats").json_body
    assert set(stats["queues"]) == {"ingest", "ingest_dlq", "tasks", "tasks_dlq", "tasks_high", "tasks_high_dlq"}
    assert set(stats["queues"]["tasks"]) == {"visible", "in_flight", "delayed"}
    assert set(stats["jobs"]) == {"queued", "processing", "complete", "failed", "canceled"}
    assert stats["jobs_completed_per_minute"] >= 0


def test_upload_deleted_before_ingest_fails_source_not_found(app_client, client, emulator, queues):  # noqa: F811
    body = upload_and_get_event(client, emulator, queues, media("flower.mp4"), "gone/flower.mp4")
    s3, bucket = client("s3"), emulator["stack"].refs["IngestBucket"]
    for v in s3.list_object_versions(Bucket=bucket, Prefix="gone/flower.mp4").get("Versions", []):
        s3.delete_object(Bucket=bucket, Key="gone/flower.mp4", VersionId=v["VersionId"])
    invoke_ingest(app_client, body)  # permanent: does not raise
    jobs = app_client.http.get("/jobs?status=failed&limit=100").json_body["jobs"]
    assert next(j for j in jobs if j["source"]["key"] == "gone/flower.mp4")["error"]["code"] == "SOURCE_NOT_FOUND"
    assert task_messages(queues, emulator) == []


def test_ingest_dead_letter_fails_the_job_with_the_last_error(app_client, client, emulator, queues):  # noqa: F811
    # GIVEN an upload whose ingest raised (the store remembers why) and whose event was dead-lettered
    body = upload_and_get_event(client, emulator, queues, media("flower.mp4"), "dlq/flower.mp4")
    import app as app_module
    from chalicelib.services import ingest
    ingest.record_failure(app_module.ctx(), json.loads(body), RuntimeError("DynamoDB was unreachable"))
    # WHEN the ingest dead-letter function gets it
    event = app_client.events.generate_sqs_event(message_bodies=[body], queue_name="vodpipe-dev-ingest-dlq")
    app_client.lambda_.invoke("ingest_dead_letters", event)
    # THEN the job exists, failed, naming the cause; both messages are kept for GET /dlq
    jobs = app_client.http.get("/jobs?status=failed&limit=100").json_body["jobs"]
    job = next(j for j in jobs if j["source"]["key"] == "dlq/flower.mp4")
    assert job["error"]["code"] == "INGEST_FAILED" and job["error"]["cause"] == "RuntimeError"
    assert "DynamoDB was unreachable" in job["error"]["message"]
    record = app_module.ctx().records.get_dead_letter("message-id")  # chalice's test events all have this id
    assert record["queue"] == "ingest" and record["job_id"] == job["job_id"]
    # a body that is no S3 event is kept too, and does not make the function fail (no retry loop)
    event = app_client.events.generate_sqs_event(message_bodies=["not json"], queue_name="vodpipe-dev-ingest-dlq")
    app_client.lambda_.invoke("ingest_dead_letters", event)
    assert app_module.ctx().records.get_dead_letter("message-id")["error"]["code"] == "MALFORMED_EVENT"


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
