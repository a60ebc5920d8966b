"""vodpipe's Lambda functions (Chalice): ingest from the ingest queue, the HTTP API.

Handlers only: each builds nothing itself and delegates to ``chalicelib.services``.
"""
from __future__ import annotations

import json

from aws_lambda_powertools import Logger
from chalice import (BadRequestError, Chalice, ChaliceViewError, CognitoUserPoolAuthorizer, ConflictError,
                     IAMAuthorizer, NotFoundError, Rate, Response)

from chalicelib.config import Settings
from chalicelib.domain import settings_text
from chalicelib.domain.errors import InvalidSettings
from chalicelib.services import failures, ingest, operations, query, submit, uploads, webhooks
from chalicelib.services.context import Context

app = Chalice(app_name="vodpipe", configure_logs=False)  # Powertools owns the "vodpipe" logger
# service "vodpipe": the services' loggers ("vodpipe.ingest" ...) propagate to it, so their
# lines are JSON too and carry the appended keys.
logger = Logger(service="vodpipe")

_SETTINGS = Settings.from_env()
_ctx: Context | None = None
#: Every route is authorized with IAM (SigV4 signed requests, API Gateway AWS_IAM); read-only
#: GETs too unless VODPIPE_API_READ_AUTH=false (the local cloud's default). Decided when the
#: app is imported, i.e. when `chalice package` builds the API definition. CORS only on GETs:
#: browsers may read jobs, never cancel or redrive them from another origin.
IAM = IAMAuthorizer()
READ_AUTH = IAM if _SETTINGS.api_read_auth else None
#: The web console's twin of every route, under ``CONSOLE_API``, authorized by the console's
#: Cognito user pool (API Gateway gives a method one authorizer, so the ID token and SigV4 are
#: accepted on separate paths of one API, by the same handlers). The pool's ARN is not known
#: when the app is imported: ``infra/package.py`` replaces this placeholder with the template's
#: ``ConsoleUserPool``, and the local cloud checks tokens against its own pool. CORS is on:
#: the console is served from the CDN, another origin, and every call carries the token
#: explicitly (no cookie a third-party page could borrow).
CONSOLE_API = "/console/api"
CONSOLE_USER_POOL_PLACEHOLDER = "arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_VodpipeConsoleUsers"
CONSOLE_USERS = CognitoUserPoolAuthorizer("ConsoleUsers", provider_arns=[CONSOLE_USER_POOL_PLACEHOLDER])
#: Largest request body the HTTP API reads (bytes): 64 KiB, ``settings_text.MAX_DOCUMENT_BYTES``
#: (a settings document is far smaller: at most 8 rungs, 4 KiB of metadata). Larger bodies get
#: 413 before anything parses them (API Gateway itself would pass up to 10 MB to the function).
MAX_BODY_BYTES = settings_text.MAX_DOCUMENT_BYTES


class RequestEntityTooLargeError(ChaliceViewError):
    """413: a request body over ``MAX_BODY_BYTES`` (JSON ``{"Code", "Message"}`` like every error)."""

    STATUS_CODE = 413


def request_json():
    """The current request's JSON body, read within bounds, for every route that reads one:
    over ``MAX_BODY_BYTES`` -> 413 before any parse; then ``settings_text.load_json`` (nesting at
    most ``settings_text.MAX_DEPTH``, linear time) -> 400 naming the field. ``None`` when the
    body is not ``application/json`` (as Chalice's ``json_body``)."""
    request = app.current_request
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise RequestEntityTooLargeError(f"body: {len(raw)} bytes; the API reads at most {MAX_BODY_BYTES} bytes")
    if not (request.headers.get("content-type") or "").startswith("application/json"):
        return None
    try:
        return settings_text.load_json(raw, "body")
    except InvalidSettings as e:
        raise BadRequestError(e.message) from None


def api_route(path: str, methods: list[str], authorizer, cors: bool = False):
    """Register a view on ``path`` (``authorizer``: IAM or None) and on ``CONSOLE_API + path``
    (the console's Cognito authorizer)."""
    def register(view):
        app.route(path, methods=methods, cors=cors, authorizer=authorizer)(view)
        app.route(CONSOLE_API + path, methods=methods, cors=True, authorizer=CONSOLE_USERS)(view)
        return view
    return register


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
        try:
            body = json.loads(record.body)
        except json.JSONDecodeError:
            logger.error("not an S3 event; left for the ingest dead-letter queue")
            raise
        try:
            for result in ingest.ingest_event(ctx(), body):
                logger.set_correlation_id(result.get("job_id"))
                logger.info("ingested", extra=result)
        except Exception as e:
            ingest.record_failure(ctx(), body, e)  # the dead-letter function names this cause
            raise


@app.on_sqs_message(queue=_SETTINGS.ingest_dlq, batch_size=1, name="ingest_dead_letters")
def on_ingest_dead_letter(event):
    """Upload events the ingest queue's redrive policy gave up on: fail their jobs with the
    last error (creating the job record if ingest never did), publish ``JobFailed``, keep the
    event for ``GET /dlq`` and a redrive. No upload is lost silently."""
    _each_dead_letter(event, failures.ingest_dead_letter, "ingest dead letter")


@app.on_sqs_message(queue=_SETTINGS.tasks_dlq, batch_size=1, name="dead_letters")
def on_dead_letter(event):
    """Task messages the redrive policy moved to the dead-letter queue: keep them for
    ``GET /dlq``, fail the task and its job with the last error, publish ``JobFailed``."""
    _each_dead_letter(event, failures.dead_letter, "dead letter")


@app.on_sqs_message(queue=_SETTINGS.tasks_high_dlq, batch_size=1, name="high_dead_letters")
def on_high_dead_letter(event):
    """The high-priority task queue's dead letters, handled as ``on_dead_letter``'s."""
    _each_dead_letter(event, failures.dead_letter, "dead letter")


def _each_dead_letter(event, handle, what: str) -> None:
    """Pass each record of a dead-letter queue's event to ``handle(ctx, message_id, body,
    receive_count)`` and log what it kept."""
    for record in event:
        raw = record.to_dict()
        logger.append_keys(sqs_message_id=raw.get("messageId"))
        count = raw.get("attributes", {}).get("ApproximateReceiveCount")
        result = handle(ctx(), raw["messageId"], record.body, int(count) if count else None)
        logger.warning(what, extra={k: result.get(k) for k in ("job_id", "task", "error")})


@app.on_sqs_message(queue=_SETTINGS.webhooks_queue, batch_size=1, name="webhooks")
def on_webhook(event):
    """Job events (SNS -> webhooks queue) POSTed, signed, to the webhook targets, each target
    on its own (``services/webhooks.py``). When a target failed (after every other one was
    tried), the message is held back for ``retry_after`` (10 s x 2^(n-1), 15 min at most;
    n = that target's recorded attempts) and the invocation fails so SQS retries it; the
    redrive policy ends in the webhooks DLQ. URLs in the log lines are redacted."""
    for record in event:
        raw = record.to_dict()
        try:
            result = webhooks.deliver(ctx(), raw["messageId"], record.body)
            if any(result.values()):  # nothing to log when no target is configured
                logger.info("webhook delivered", extra={k: v for k, v in result.items() if v})
        except webhooks.DeliveryFailed as failed:
            logger.warning("webhook delivery failed", extra={"failed": failed.failed, "retry_after": failed.retry_after})
            try:
                ctx().queues.change_visibility(ctx().settings.webhooks_queue, raw["receiptHandle"], failed.retry_after)
            except Exception:  # noqa: BLE001 - the queue's own visibility timeout applies then
                logger.exception("could not back the webhook message off")
            raise


@app.schedule(Rate(1, unit=Rate.MINUTES), name="dead_letter_gauge")
def on_schedule_gauge(event):
    """Every minute: publish DeadLettersPending, the gauge behind the dead-letters alarm (a
    gauge must keep reporting, or the alarm would never see it return to 0)."""
    failures.publish_pending_gauge(ctx())


def _operation(fn, *args):
    try:
        return fn(ctx(), *args)
    except failures.NotFound as e:
        raise NotFoundError(str(e))
    except failures.Conflict as e:
        raise ConflictError(str(e))


@api_route("/jobs/{job_id}", ["GET"], READ_AUTH, cors=True)
def get_job(job_id):
    """The job resource; 404 for an unknown job."""
    job = query.get_job(ctx(), job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    return job


@api_route("/jobs", ["POST"], IAM)
def create_job():
    """Submit a job for a file in the ingest bucket: ``{"source": "s3://...", ...settings}``
    (README: job settings) -> 202 with ``job_id``; 400 naming the invalid field; an
    ``Idempotency-Key`` header returns the first response to a retry (422 if its body differs)."""
    request = app.current_request
    body = request_json()
    try:
        accepted = submit.idempotent_submit(ctx(), body, request.headers.get("idempotency-key"))
    except submit.FolderInUse as e:  # 400 with the job failure's code: OUTPUT_PREFIX_IN_USE
        return Response({"Code": e.code, "Message": str(e)}, status_code=400)
    except submit.BadRequest as e:
        raise BadRequestError(str(e))
    except submit.KeyReused as e:
        return Response({"Code": "UnprocessableEntity", "Message": str(e)}, status_code=422)
    return Response(accepted, status_code=202, headers={"Location": f"/jobs/{accepted['job_id']}"})


@api_route("/uploads", ["POST"], IAM)
def create_upload():
    """A presigned POST for a direct upload: ``{"filename", "content_type", ...settings}`` ->
    ``{"url", "fields", "key", "expires_at", "max_bytes"}``; 400 naming the invalid field."""
    try:
        return uploads.presigned_upload(ctx(), request_json())
    except submit.FolderInUse as e:
        return Response({"Code": e.code, "Message": str(e)}, status_code=400)
    except submit.BadRequest as e:
        raise BadRequestError(str(e))


@api_route("/uploads/{upload_id}", ["GET"], READ_AUTH, cors=True)
def get_upload(upload_id):
    """Where a ``POST /uploads`` upload stands: ``{"upload_id", "received", "key", "size",
    "job_id", "job_status"}`` (the job its S3 event makes, once S3 has the object)."""
    try:
        return uploads.upload_status(ctx(), upload_id)
    except submit.BadRequest as e:
        raise BadRequestError(str(e))


@api_route("/presets", ["GET"], READ_AUTH, cors=True)
def list_presets():
    """``{"presets": [{name, description, ladder [{name, height, bitrate}], absolute_uris,
    playlist_content_type}]}``."""
    return query.list_presets(ctx())


@api_route("/jobs/{job_id}/renditions/{name}", ["GET"], READ_AUTH, cors=True)
def get_rendition(job_id, name):
    """302 to a rendition: ``720p`` -> its media playlist, ``720p.mp4`` / ``audio.m4a`` -> the
    progressive file, ``subtitles.vtt`` -> a text rendition's whole WebVTT; 404 when the job or the rendition does not exist (yet)."""
    location = query.rendition_url(ctx(), job_id, name)
    if location is None:
        raise NotFoundError(f"job {job_id} has no published rendition {name}")
    return Response("", status_code=302, headers={"Location": location})


@api_route("/jobs", ["GET"], READ_AUTH, cors=True)
def list_jobs():
    """``?status=&limit=&next_token=`` -> ``{"jobs": [...], "next_token": ...}``."""
    params = app.current_request.query_params or {}
    try:
        limit = int(params.get("limit", 20))
        return query.list_jobs(ctx(), params.get("status"), limit, params.get("next_token"))
    except ValueError as e:
        raise BadRequestError(str(e))


@api_route("/stats", ["GET"], READ_AUTH, cors=True)
def stats():
    """Queue depths, jobs by status, jobs completed per minute."""
    return query.stats(ctx())


@api_route("/jobs/{job_id}", ["DELETE"], IAM)
def cancel_job(job_id):
    """Cancel a queued or processing job: its ffmpeg processes stop within seconds; 409 if it
    already ended."""
    return _operation(failures.cancel_job, job_id)


@api_route("/jobs/{job_id}/retry", ["POST"], IAM)
def retry_job(job_id):
    """Re-run only the failed tasks of a failed job (they resume from checkpoints)."""
    return _operation(failures.retry_job, job_id)


@api_route("/dlq", ["GET"], IAM)
def get_dead_letters():
    """Dead letters (task messages and ingest events) with their job, task and last error."""
    return failures.list_dead_letters(ctx())


@api_route("/dlq/{message_id}/retry", ["POST"], IAM)
def redrive(message_id):
    """Send one dead letter back to its queue (the task queue, or the ingest queue for an upload event)."""
    return _operation(failures.redrive_dead_letter, message_id)


@api_route("/alarms", ["GET"], IAM)
def get_alarms():
    """The stack's alarms: state, reason and time of the last transition (ALARM first)."""
    return operations.alarms(ctx())


@api_route("/metrics", ["GET"], IAM)
def get_metrics():
    """``?window=3600&period=60`` (s) -> throughput, latency P50/P95, failures and queue
    depth series from CloudWatch (``services.operations.metrics``)."""
    params = app.current_request.query_params or {}
    try:
        return operations.metrics(ctx(), int(params.get("window", 3600)), int(params.get("period", 60)))
    except ValueError as e:
        raise BadRequestError(str(e))
