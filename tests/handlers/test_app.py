"""The Chalice handlers through chalice.test.Client, on the emulator (contract fixtures):
GIVEN an upload WHEN its real S3 notification reaches the ingest function THEN ...
(Ingests that probe and decode a real clip with PyAV: tests/media/test_ingest_handler.py.)
"""
import json
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote_plus

import pytest
from chalice.test import Client

from chalicelib.aws.table import iso_utc
from chalicelib.domain import jobs
from tests.conftest import media, wait_for
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
    for q in ("IngestQueue", "TasksQueue", "TasksHighQueue", "TasksFirstQueue"):  # drain (PurgeQueue: once a minute)
        while msgs := sqs.receive_message(QueueUrl=stack.refs[q], MaxNumberOfMessages=10,
                                          WaitTimeSeconds=0).get("Messages", []):
            for m in msgs:
                sqs.delete_message(QueueUrl=stack.refs[q], ReceiptHandle=m["ReceiptHandle"])
    return sqs


def event_key(body: str) -> str | None:
    """The object key an S3 notification names (decoded as S3 encodes it), None for other bodies."""
    records = json.loads(body).get("Records") or [{}]
    key = records[0].get("s3", {}).get("object", {}).get("key")
    return unquote_plus(key) if key is not None else None


def upload_and_get_event(client, emulator, queues, path, key):  # noqa: F811
    """Upload like a user, then take the real S3 notification moto put on the ingest queue for
    this key (other messages, such as S3's test event, are taken off and dropped)."""
    stack = emulator["stack"]
    client("s3").upload_file(str(path), stack.refs["IngestBucket"], key)

    def notification():
        for m in queues.receive_message(QueueUrl=stack.refs["IngestQueue"], MaxNumberOfMessages=10,
                                        WaitTimeSeconds=1).get("Messages", []):
            queues.delete_message(QueueUrl=stack.refs["IngestQueue"], ReceiptHandle=m["ReceiptHandle"])
            if event_key(m["Body"]) == key:
                return m["Body"]
        return None
    return wait_for(notification, 10, f"the S3 notification of {key} on the ingest queue")


def job_of(app_client, body):
    """GET /jobs/{id} of the job the S3 notification ``body`` makes (its id from the object's
    bucket, key and ETag), not a search through a shared listing."""
    s3 = json.loads(body)["Records"][0]["s3"]
    job_id = jobs.job_id_for(s3["bucket"]["name"], unquote_plus(s3["object"]["key"]), s3["object"]["eTag"])
    res = app_client.http.get(f"/jobs/{job_id}")
    assert res.status_code == 200, (job_id, res.body)
    return res.json_body


def invoke_ingest(app_client, body, queue="vodpipe-dev-ingest"):
    event = app_client.events.generate_sqs_event(message_bodies=[body], queue_name=queue)
    return app_client.lambda_.invoke("ingest", event)


def task_messages(queues, emulator):  # noqa: F811
    """The task messages waiting on the task queues (high, first, normal)."""
    msgs = [m for q in ("TasksHighQueue", "TasksFirstQueue", "TasksQueue") for m in queues.receive_message(
        QueueUrl=emulator["stack"].refs[q], MaxNumberOfMessages=10, WaitTimeSeconds=0,
        VisibilityTimeout=0).get("Messages", [])]
    return [json.loads(m["Body"]) for m in msgs]


def test_test_event_is_skipped(app_client, queues, emulator):  # noqa: F811
    invoke_ingest(app_client, json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}))
    assert task_messages(queues, emulator) == []


def test_zero_byte_upload_fails_with_a_reason(app_client, client, emulator, queues, tmp_path):  # noqa: F811
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    body = upload_and_get_event(client, emulator, queues, empty, "empty.mp4")
    invoke_ingest(app_client, body)
    job = job_of(app_client, body)
    assert job["status"] == "failed" and job["error"]["code"] == "EMPTY_FILE"


def test_api_errors_are_json(app_client):
    res = app_client.http.get("/jobs/doesnotexist")
    assert res.status_code == 404 and "doesnotexist" in res.json_body["Message"]
    res = app_client.http.get("/jobs?status=bogus")
    assert res.status_code == 400 and "unknown status" in res.json_body["Message"]


def test_stats_reports_queues_and_jobs(app_client, ctx):  # noqa: F811
    before = app_client.http.get("/stats").json_body
    # GIVEN two jobs that completed just now and one that completed 11 minutes ago
    now = datetime.now(timezone.utc)
    for completed in (now, now, now - timedelta(minutes=11)):
        job_id = uuid.uuid4().hex[:20]
        assert ctx.store.create_job({"job_id": job_id, "job_status": jobs.QUEUED, "source_key": f"stats/{job_id}.mp4"}, [])
        assert ctx.store.set_job_status(job_id, jobs.COMPLETE, completed_at=iso_utc(completed))
    # WHEN the stats are read again THEN all three count as complete, and the throughput (jobs
    # completed per minute over the last 10 minutes) grew by the two recent ones only: 2 / 10
    stats = app_client.http.get("/stats").json_body
    assert set(stats["queues"]) == {"ingest", "ingest_dlq", "tasks", "tasks_dlq", "tasks_high", "tasks_high_dlq", "tasks_first"}
    assert set(stats["queues"]["tasks"]) == {"visible", "in_flight", "delayed"}
    assert set(stats["jobs"]) == {"queued", "processing", "complete", "failed", "canceled"}
    assert stats["jobs"]["complete"] == before["jobs"]["complete"] + 3
    assert stats["jobs_completed_per_minute"] == pytest.approx(before["jobs_completed_per_minute"] + 0.2)


def test_upload_deleted_before_ingest_fails_source_not_found(app_client, client, emulator, queues):  # noqa: F811
    body = upload_and_get_event(client, emulator, queues, media("flower.mp4"), "gone/flower.mp4")
    s3, bucket = client("s3"), emulator["stack"].refs["IngestBucket"]
    for v in s3.list_object_versions(Bucket=bucket, Prefix="gone/flower.mp4").get("Versions", []):
        s3.delete_object(Bucket=bucket, Key="gone/flower.mp4", VersionId=v["VersionId"])
    invoke_ingest(app_client, body)  # permanent: does not raise
    job = job_of(app_client, body)
    assert job["status"] == "failed" and job["error"]["code"] == "SOURCE_NOT_FOUND"
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
    job = job_of(app_client, body)
    assert job["status"] == "failed" and job["source"]["key"] == "dlq/flower.mp4"
    assert job["error"]["code"] == "INGEST_FAILED" and job["error"]["cause"] == "RuntimeError"
    assert "DynamoDB was unreachable" in job["error"]["message"]
    record = app_module.ctx().records.get_dead_letter("message-id")  # chalice's test events all have this id
    assert record["queue"] == "ingest" and record["job_id"] == job["job_id"]
    # a body that is no S3 event is kept too, and does not make the function fail (no retry loop)
    event = app_client.events.generate_sqs_event(message_bodies=["not json"], queue_name="vodpipe-dev-ingest-dlq")
    app_client.lambda_.invoke("ingest_dead_letters", event)
    assert app_module.ctx().records.get_dead_letter("message-id")["error"]["code"] == "MALFORMED_EVENT"


