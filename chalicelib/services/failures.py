"""Failure operations: dead letters, operator retries, cancellation.

* A task message that failed ``maxReceiveCount`` times is moved by the redrive policy to the
  tasks dead-letter queue; ``dead_letter`` (the DLQ's function) keeps it (``GET /dlq``),
  fails the task and the job with the last error, and publishes ``JobFailed`` once.
* ``redrive_dead_letter`` and ``retry_job`` reopen failed tasks (keeping their segment
  checkpoints, so they resume) and send their messages again (moto has no
  StartMessageMoveTask; this also works on AWS).
* ``cancel_job`` moves a job to ``canceled``; workers stop its ffmpeg within seconds.
"""
from __future__ import annotations

import json
import logging

from chalicelib import metrics
from chalicelib.aws.table import now_iso
from chalicelib.domain import jobs
from chalicelib.domain.sources import objects_in_s3_event
from chalicelib.domain.task_messages import makes_playable, task_message_for

from .context import Context
from .job_failure import fail_job

log = logging.getLogger("vodpipe.failures")


class Conflict(Exception):
    """The job is not in a state that allows the operation (HTTP 409)."""


class NotFound(Exception):
    """No such job or dead letter (HTTP 404)."""


def dead_letter(ctx: Context, message_id: str, body: str, receive_count: int | None = None) -> dict:
    """Handle one message (``body``, SQS ``message_id``, ``receive_count`` receives) from a
    task dead-letter queue: keep it for ``GET /dlq``, fail its task and its job with
    ``RETRIES_EXHAUSTED`` naming the last error (``job_failure.fail_job``: ``JobFailed``
    once). Returns the stored record ``{"job_id", "task", "body", "error", "last_error",
    "receive_count"}`` (``MALFORMED_TASK`` for a body that is not a task message). Raises AWS
    errors."""
    try:
        msg = json.loads(body)
        job_id, name = msg["job_id"], msg["task"]
    except (json.JSONDecodeError, KeyError, TypeError):
        record = {"job_id": None, "task": None, "body": body[:10000],
                  "error": {"code": "MALFORMED_TASK", "message": "the dead-lettered message is not a vodpipe task"}}
        ctx.records.put_dead_letter(message_id, record)
        return record
    task = ctx.store.get_task(job_id, name) or {}
    last = task.get("last_error") or {}
    attempts = task.get("attempts") or receive_count
    error = {"code": "RETRIES_EXHAUSTED", "task": name,
             "message": f"task {name} failed {attempts} time(s); last error: {last.get('message', 'unknown')}"}
    record = {"job_id": job_id, "task": name, "body": body, "error": error, "last_error": last or None,
              "receive_count": receive_count}
    ctx.records.put_dead_letter(message_id, record)
    ctx.store.fail_task(job_id, name, error)
    values = [("DeadLetters", 1, metrics.Unit.Count), ("DeadLettersPending", _pending(ctx), metrics.Unit.Count)]
    fail_job(ctx, job_id, error, metadata=msg.get("metadata"), metric_values=values)
    metrics.emit(values)
    log.warning("task %s/%s dead-lettered: %s", job_id, name, error["message"])
    return record


def ingest_dead_letter(ctx: Context, message_id: str, body: str, receive_count: int | None = None) -> dict:
    """Handle one message from the ingest dead-letter queue: an upload that could not be
    ingested after every retry. Its job (created now if ingest never got that far) fails with
    ``INGEST_FAILED`` naming the last error, ``JobFailed`` is published once, and the message
    is kept for ``GET /dlq`` and a redrive. Never raises for a malformed body."""
    try:
        refs = objects_in_s3_event(json.loads(body))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        refs = None
    if not refs:
        record = {"queue": "ingest", "job_id": None, "task": None, "body": body[:10000],
                  "error": {"code": "MALFORMED_EVENT", "message": "the dead-lettered message is not an S3 upload event"}}
        ctx.records.put_dead_letter(message_id, record)
        metrics.emit([("IngestDeadLetters", 1, metrics.Unit.Count)])
        return record
    values = [("IngestDeadLetters", 1, metrics.Unit.Count)]
    job_ids = []
    for ref in refs:
        job_id = ref.job_id
        job_ids.append(job_id)
        last = ctx.records.last_ingest_error(job_id) or {}
        error = {"code": "INGEST_FAILED", "cause": last.get("code", "UNKNOWN"),
                 "message": f"the upload {ref.key} could not be ingested (every retry failed); "
                            f"last error: {last.get('message', 'unknown')}"}
        # created failed if ingest never recorded the job, else moved to failed
        fail_job(ctx, job_id, error, event_detail={"source": {"bucket": ref.bucket, "key": ref.key}},
                 metric_values=values,
                 create={"job_id": job_id, "source_bucket": ref.bucket, "source_key": ref.key,
                         "source_size": ref.size, "source_etag": ref.etag.strip('"'),
                         "job_status": jobs.FAILED, "error": error, "fanned_out": True, "completed_at": now_iso()})
        log.warning("upload %s dead-lettered at ingest: %s", ref.key, error["message"])
    record = {"queue": "ingest", "job_id": job_ids[0], "task": None, "body": body, "receive_count": receive_count,
              "error": {"code": "INGEST_FAILED", "message": f"{len(refs)} upload(s) could not be ingested"}}
    ctx.records.put_dead_letter(message_id, record)
    values.append(("DeadLettersPending", _pending(ctx), metrics.Unit.Count))
    metrics.emit(values)
    return record


def list_dead_letters(ctx: Context, limit: int = 100) -> dict:
    """``{"dead_letters": [{message_id, job_id, task, error, last_error, dead_at}]}``."""
    items = ctx.records.list_dead_letters(limit)
    keep = ("message_id", "queue", "job_id", "task", "error", "last_error", "dead_at", "receive_count")
    return {"dead_letters": [{k: i.get(k) for k in keep} for i in items]}


def redrive_dead_letter(ctx: Context, message_id: str) -> dict:
    """Send a dead letter back to the tasks queue, reopening its task and job.
    Raises ``NotFound`` for an unknown message id, ``Conflict`` for a malformed one."""
    item = ctx.records.get_dead_letter(message_id)
    if item is None:
        raise NotFound(f"dead letter {message_id} not found")
    if not item.get("job_id"):
        raise Conflict("this dead letter is not a vodpipe task or upload event and cannot be redriven")
    if item.get("queue") == "ingest":
        # the failed job only records the failure: remove it so the event makes the real job
        for ref in objects_in_s3_event(json.loads(item["body"])):
            ctx.store.delete_job_record(ref.job_id)
        ctx.queues.send_raw(ctx.settings.ingest_queue, item["body"])
        ctx.records.delete_dead_letter(message_id)
        metrics.emit([("DeadLettersPending", _pending(ctx), metrics.Unit.Count)])
        return {"message_id": message_id, "job_id": item["job_id"], "queue": "ingest", "requeued": True}
    ctx.store.reopen_task(item["job_id"], item["task"])
    ctx.store.reopen_job(item["job_id"])
    body = json.loads(item["body"])
    ctx.queues.send_json(ctx.settings.tasks_queue_for(body.get("priority"), makes_playable(body)), [body])
    ctx.records.delete_dead_letter(message_id)
    metrics.emit([("DeadLettersPending", _pending(ctx), metrics.Unit.Count)])
    return {"message_id": message_id, "job_id": item["job_id"], "task": item["task"], "requeued": True}


def retry_job(ctx: Context, job_id: str) -> dict:
    """Re-run the tasks of a failed job that did not complete. Raises ``NotFound``/``Conflict``.

    Each step can be cut short by a crash and the retry asked again: tasks are reopened first
    (idempotently: failed or already queued), then the job, which records the tasks still to
    send as ``requeue_pending``; then the messages are sent and the mark removed. A job left
    ``processing`` with ``requeue_pending`` is retried by sending them (a duplicate message is
    harmless: a task runs under one lease)."""
    got = ctx.store.get(job_id)
    if got is None:
        raise NotFound(f"job {job_id} not found")
    job, tasks = got
    pending = job.get("requeue_pending")
    if job["status"] == jobs.PROCESSING and pending:
        by_name = {t["name"]: t for t in tasks}
        reopened = [by_name[name] for name in pending if name in by_name]
    else:
        if job["status"] != jobs.FAILED:
            raise Conflict(f"job {job_id} is {job['status']}; only failed jobs can be retried")
        if not job.get("tasks"):
            raise Conflict(f"job {job_id} failed at ingest ({(job.get('error') or {}).get('code')}); upload a new file")
        reopened = [t for t in tasks if t.get("status") != jobs.COMPLETE and ctx.store.reopen_task(job_id, t["name"])]
        if not ctx.store.reopen_job(job_id, [t["name"] for t in reopened]):
            raise Conflict(f"job {job_id} is {ctx.store.get_job_status(job_id)}; only failed jobs can be retried")
    for first in (True, False):
        ctx.queues.send_json(ctx.settings.tasks_queue_for(job.get("priority"), first),
                             [task_message_for(job, t) for t in reopened if makes_playable(t) == first])
    ctx.store.requeued(job_id)
    return {"job_id": job_id, "requeued": [t["name"] for t in reopened]}


def cancel_job(ctx: Context, job_id: str) -> dict:
    """Cancel a queued or processing job. Raises ``NotFound``/``Conflict``."""
    status = ctx.store.get_job_status(job_id)
    if status is None:
        raise NotFound(f"job {job_id} not found")
    if not ctx.store.set_job_status(job_id, jobs.CANCELED, completed_at=now_iso()):
        raise Conflict(f"job {job_id} is already {ctx.store.get_job_status(job_id)}")
    got = ctx.store.get(job_id)
    ctx.events.publish("JobCanceled", job_id, jobs.CANCELED, {}, jobs.metadata_of(got[0]) if got else None)
    return {"job_id": job_id, "status": jobs.CANCELED}


def publish_pending_gauge(ctx: Context) -> int:
    """Emit ``DeadLettersPending`` now; returns the count."""
    n = _pending(ctx)
    metrics.emit([("DeadLettersPending", n, metrics.Unit.Count)])
    return n


def _pending(ctx: Context) -> int:
    """Dead letters waiting for an operator (the gauge behind the dead-letters alarm)."""
    return len(ctx.records.list_dead_letters(1000))

