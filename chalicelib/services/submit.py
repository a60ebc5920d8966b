"""``POST /jobs``: a job for a file already in storage, with per-job settings.

The request is validated here (settings: ``job_settings.parse``; source: an object in the
ingest bucket, which every role of the deployment may read), then queued on the ingest queue
as a job request, so it follows the S3 path's probe, retries and dead-letter queue. The job
id is derived from the object version and the canonical settings: the same request twice is
the same job; the same object with other settings is another job. An ``Idempotency-Key``
(Powertools Idempotency, on the jobs table) returns the first response to a retried request
and refuses the key with a different body.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from chalicelib.domain import captions, job_settings, ownership
from chalicelib.domain.presets import presets
from chalicelib.domain.sources import ObjectRef, job_request
from chalicelib.domain.webhooks import redact_settings, redact_url, validate_target
from chalicelib.tools.pinned_http import resolve

from . import url_import
from .context import Context

#: How long an Idempotency-Key is remembered (s).
IDEMPOTENCY_SECONDS = 24 * 3600


class BadRequest(Exception):
    """The request cannot be accepted (HTTP 400); the message names the field."""


class SourceNotFound(BadRequest):
    """The named source object does not exist (HTTP 400 with ``source`` named)."""


class FolderInUse(BadRequest):
    """The job's output folder is, contains or lies inside another job's (HTTP 400, ``Code``
    ``OUTPUT_PREFIX_IN_USE``, ``output_prefix`` named)."""

    code = "OUTPUT_PREFIX_IN_USE"


def check_folder(ctx: Context, settings: job_settings.JobSettings, job_id: str) -> None:
    """Refuse a request whose output folder (``output_prefix``, else the job id; ``job_id``
    "" when not known yet: any holder conflicts) overlaps a folder another job has claimed
    (``ownership``; ingest's claim is what decides, this answers early when the conflict is
    already known), or one whose first part has the job-id form, reserved for the jobs' own
    default folders (``ownership.reserved_folder_message``: ids are predictable; checked after
    the real claims, so a folder another job holds names that job). Raises ``FolderInUse``, or
    ``BadRequest`` for a folder too deep to claim."""
    folder = settings.output_prefix or job_id
    if not folder:
        return
    try:
        conflict = ctx.records.folder_conflict(folder, job_id)
        reserved = ownership.reserved_folder_message(folder, job_id)
    except job_settings.InvalidSettings as e:
        raise BadRequest(e.message) from None
    if conflict:
        raise FolderInUse(f"output_prefix: {ownership.conflict_message(folder, conflict)}")
    if reserved:
        raise FolderInUse(f"output_prefix: {reserved}")


def parse_source(value: Any, ingest_bucket: str) -> tuple[str, str]:
    """``(bucket, key)`` of a ``source`` given as ``s3://bucket/key``. Raises ``BadRequest``
    for anything else, or a bucket other than the ingest bucket."""
    if not isinstance(value, str) or not value:
        raise BadRequest("source: required, e.g. s3://<ingest bucket>/<key> or an https URL")
    parts = urlsplit(value)
    if parts.scheme != "s3":
        raise BadRequest(f"source: {parts.scheme or 'no'} scheme; expected s3://{ingest_bucket}/<key> or https://...")
    key = parts.path.lstrip("/")
    if parts.netloc != ingest_bucket or not key:
        raise BadRequest(f"source: the deployment reads sources from s3://{ingest_bucket}/<key> only")
    return parts.netloc, key


def request_id(settings: job_settings.JobSettings) -> str:
    """What makes a request distinct beside its source: its settings as canonical JSON."""
    return json.dumps(settings.to_dict(), sort_keys=True, separators=(",", ":"))


def submit(ctx: Context, body: Any) -> dict:
    """Accept a job request. ``body``: ``{"source": "s3://...", ...settings}``. Returns
    ``{"job_id", "status": "submitted", "source", "settings"}`` (HTTP 202; a source or webhook
    URL redacted, ``webhooks.redact_url``). Raises
    ``BadRequest`` (``InvalidSettings`` is turned into one naming the field): among others
    ``source_after`` ``delete``/``archive`` of an ``s3://`` source, a caption file in another
    bucket than the ingest bucket (an object already in the
    bucket is not the job's own: ``ownership.check_source_after``), and ``FolderInUse``."""
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    document = {k: v for k, v in body.items() if k != "source"}
    try:
        settings = job_settings.parse(document, presets(ctx.settings.ladder))
    except job_settings.InvalidSettings as e:
        raise BadRequest(e.message) from None
    foreign = captions.foreign_source(settings.captions, ctx.settings.ingest_bucket)  # what ingest would refuse
    if foreign is not None:
        raise BadRequest(f"captions.{foreign}.source: the deployment reads caption files from "
                         f"s3://{ctx.settings.ingest_bucket}/<key> or https only")
    source = body.get("source")
    if isinstance(source, str) and urlsplit(source).scheme in ("http", "https"):
        return _submit_url(ctx, source, settings)
    bucket, key = parse_source(source, ctx.settings.ingest_bucket)
    try:
        ownership.check_source_after(settings.source_after, ownership.source_owner(from_request=True, imported=False),
                                     f"s3://{bucket}/{key}")
    except job_settings.InvalidSettings as e:
        raise BadRequest(e.message) from None
    head = ctx.objects.head_if_exists(bucket, key)
    if head is None:
        raise SourceNotFound(f"source: s3://{bucket}/{key} does not exist")
    version = head.get("VersionId") if head.get("VersionId") not in (None, "null") else None
    ref = ObjectRef(bucket, key, str(head.get("ETag") or "").strip('"'), int(head.get("ContentLength") or 0), version,
                    settings=settings.to_dict(), request=request_id(settings))
    check_folder(ctx, settings, ref.job_id)
    ctx.queues.send_json(ctx.settings.ingest_queue, [job_request(ref)])
    return {"job_id": ref.job_id, "status": "submitted",
            "source": {"bucket": bucket, "key": key, "etag": ref.etag, "version_id": version, "size": ref.size},
            "settings": redact_settings(settings.to_dict()), "links": {"job": f"/jobs/{ref.job_id}"}}


def _submit_url(ctx: Context, url: str, settings: job_settings.JobSettings) -> dict:
    """Accept an https source: checked now (scheme, public address, as the import will check
    it again), imported by ingest (``url_import``)."""
    s = ctx.settings
    if len(url) > 2048:
        raise BadRequest("source: the URL is longer than 2048 characters")
    if urlsplit(url).scheme not in url_import.source_schemes(s.import_allow_private):
        raise BadRequest("source: only https URLs are imported")
    try:
        validate_target(url, resolve, s.import_allow_private, "source")
    except ValueError as e:
        raise BadRequest(f"source: {e}") from None
    ref = ObjectRef("", "", "", 0, settings=settings.to_dict(), request=request_id(settings), source_url=url)
    check_folder(ctx, settings, ref.job_id)
    ctx.queues.send_json(s.ingest_queue, [job_request(ref)])
    return {"job_id": ref.job_id, "status": "submitted", "source": {"url": redact_url(url)},
            "settings": redact_settings(settings.to_dict()),
            "links": {"job": f"/jobs/{ref.job_id}"}}


def idempotent_submit(ctx: Context, body: Any, key: str | None) -> dict:
    """``submit`` under an ``Idempotency-Key``: the same key and body return the first
    response (for ``IDEMPOTENCY_SECONDS``); the same key with another body raises
    ``KeyReused``. Without a key, ``submit`` (itself idempotent per source and settings)."""
    if not key:
        return submit(ctx, body)
    if len(key) > 255:
        raise BadRequest("Idempotency-Key: at most 255 characters")
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError

    config = IdempotencyConfig(event_key_jmespath="key", payload_validation_jmespath="body",
                               expires_after_seconds=IDEMPOTENCY_SECONDS, raise_on_no_idempotency_key=True)
    store = ctx.idempotency

    @idempotent_function(data_keyword_argument="request", persistence_store=store, config=config)
    def once(request: dict) -> dict:
        return submit(ctx, request["body"])

    try:
        return once(request={"key": key, "body": body})
    except IdempotencyValidationError:
        raise KeyReused(f"Idempotency-Key {key!r} was used with a different request body") from None


class KeyReused(Exception):
    """An ``Idempotency-Key`` sent again with a different body (HTTP 422)."""
