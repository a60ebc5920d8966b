"""A crash between two writes of the job store is finished by whoever comes next: the task
message's redelivery, or the operator asking for the retry again (docs/state.md)."""
from __future__ import annotations

import json
import uuid

from chalicelib.domain import jobs
from chalicelib.services.failures import retry_job
from chalicelib.services.transcode import TranscodeTaskRunner

TASKS = [{"name": "chunk-000", "kind": "chunk", "index": 0, "start": 0, "end": 2, "seg_counts": {"360p": 1}},
         {"name": "chunk-001", "kind": "chunk", "index": 1, "start": 2, "end": 8, "seg_counts": {"360p": 1}},
         {"name": "audio", "kind": "audio"}]


def new_job(ctx):
    job_id = uuid.uuid4().hex[:20]
    assert ctx.store.create_job({"job_id": job_id, "job_status": jobs.QUEUED, "source_key": "k",
                                 "source_bucket": "b", "priority": "normal",
                                 "ladder": [{"name": "360p", "width": 640, "height": 360, "bitrate": 800000}]}, TASKS)
    ctx.store.set_job_status(job_id, jobs.PROCESSING)
    return job_id


def test_a_task_failure_whose_job_write_was_lost_fails_the_job_on_redelivery(ctx):
    job_id = new_job(ctx)
    ctx.store.start_task(job_id, "chunk-001")
    # the worker recorded the task's failure and was killed before the job's (``fail``)
    ctx.store.fail_task(job_id, "chunk-001", {"code": "FFMPEG_FAILED", "message": "decode error at 4.2 s"})
    assert ctx.store.get(job_id)[0]["status"] == jobs.PROCESSING

    outcome = TranscodeTaskRunner(ctx).run({"job_id": job_id, "task": "chunk-001", "kind": "chunk"})
    assert outcome.status == "skipped"
    job = ctx.store.get(job_id)[0]
    assert job["status"] == jobs.FAILED
    assert job["error"]["code"] == "FFMPEG_FAILED" and job["error"]["task"] == "chunk-001"


def test_a_retry_cut_short_by_a_crash_is_finished_by_asking_again(ctx, client):
    job_id = new_job(ctx)
    ctx.store.start_task(job_id, "chunk-000")
    ctx.store.complete_task(job_id, "chunk-000", {"segments": 1})
    for name in ("chunk-001", "audio"):
        ctx.store.fail_task(job_id, name, {"code": "FFMPEG_FAILED", "message": "x"})
    ctx.store.set_job_status(job_id, jobs.FAILED, error={"code": "FFMPEG_FAILED", "message": "x"})
    # the first retry reopened one task, then the process died
    assert ctx.store.reopen_task(job_id, "chunk-001")
    sqs = client("sqs")
    # a normal job's audio goes to the first queue, its later chunks to the normal one
    queues = {"first": ctx.settings.tasks_queue_for("normal", first=True), "normal": ctx.settings.tasks_queue_for("normal")}

    def sent_tasks() -> list[str]:  # this job's task messages on the queues (taken off them), "queue:task"
        found = []
        for kind, queue in queues.items():
            while True:
                got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
                if not got:
                    break
                for message in got:
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                    body = json.loads(message["Body"])
                    found += [f"{kind}:{body['task']}"] if body.get("job_id") == job_id else []
        return sorted(found)
    assert sent_tasks() == []

    # asked again: both unfinished tasks go back, the complete one does not
    assert sorted(retry_job(ctx, job_id)["requeued"]) == ["audio", "chunk-001"]
    job, tasks = ctx.store.get(job_id)
    assert job["status"] == jobs.PROCESSING and "requeue_pending" not in job
    assert {t["name"]: t["status"] for t in tasks} == {"chunk-000": jobs.COMPLETE, "chunk-001": jobs.QUEUED,
                                                       "audio": jobs.QUEUED}
    assert sent_tasks() == ["first:audio", "normal:chunk-001"]

    # a retry that reopened the job but died before sending: the job says what is pending
    ctx.store.set_job_status(job_id, jobs.FAILED, error={"code": "FFMPEG_FAILED", "message": "x"})
    for name in ("chunk-001", "audio"):
        ctx.store.fail_task(job_id, name, {"code": "FFMPEG_FAILED", "message": "x"})
    assert ctx.store.reopen_task(job_id, "audio") and ctx.store.reopen_task(job_id, "chunk-001")
    assert ctx.store.reopen_job(job_id, ["audio", "chunk-001"])
    assert sorted(retry_job(ctx, job_id)["requeued"]) == ["audio", "chunk-001"]
    assert "requeue_pending" not in ctx.store.get(job_id)[0]
    assert sent_tasks() == ["first:audio", "normal:chunk-001"]
