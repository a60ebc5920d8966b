"""vodpipe's Lambda functions (Chalice): ingest from the ingest queue, the HTTP API.

Handlers only: each builds nothing itself and delegates to ``chalicelib.services``.
"""
from __future__ import annotations

import json

from aws_lambda_powertools import Logger
from chalice import BadRequestError, Chalice, NotFoundError

from chalicelib.config import Settings
from chalicelib.services import ingest, query
from chalicelib.services.context import Context

app = Chalice(app_name="vodpipe", configure_logs=False)  # Powertools owns the "vodpipe" logger
# service "vodpipe": the services' loggers ("vodpipe.ingest" ...) propagate to it, so their
# lines are JSON too and carry the appended keys.
logger = Logger(service="vodpipe")

_SETTINGS = Settings.from_env()
_ctx: Context | None = None


def ctx() -> Context:
    """The process's adapters, built on first use (one per Lambda container)."""
    global _ctx
    if _ctx is None:
        _ctx = Context(Settings.from_env())
    return _ctx


@app.on_sqs_message(queue=_SETTINGS.ingest_queue, batch_size=1, name="ingest")
def on_ingest(event):
    """S3 ObjectCreated notifications, one per SQS message: probe, plan, record, fan out.

    Raises on transient errors so the message is retried and, after maxReceiveCount, moved
    to the ingest dead-letter queue."""
    for record in event:
        logger.append_keys(sqs_message_id=record.to_dict().get("messageId"))
        body = json.loads(record.body)
        for result in ingest.ingest_event(ctx(), body):
            logger.info("ingested", extra=result)


@app.route("/jobs/{job_id}", methods=["GET"], cors=True)
def get_job(job_id):
    """The job resource; 404 for an unknown job."""
    job = query.get_job(ctx(), job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    return job


@app.route("/jobs", methods=["GET"], cors=True)
def list_jobs():
    """``?status=&limit=&next_token=`` -> ``{"jobs": [...], "next_token": ...}``."""
    params = app.current_request.query_params or {}
    try:
        limit = int(params.get("limit", 20))
        return query.list_jobs(ctx(), params.get("status"), limit, params.get("next_token"))
    except ValueError as e:
        raise BadRequestError(str(e))


@app.route("/stats", methods=["GET"], cors=True)
def stats():
    """Queue depths, jobs by status, jobs completed per minute."""
    return query.stats(ctx())
