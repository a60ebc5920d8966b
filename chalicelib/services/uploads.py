"""``POST /uploads``: a presigned POST for a direct upload from a browser or a client into the
ingest bucket, with the job's settings bound into the POST policy as the object's metadata
(``x-amz-meta-settings``, exact match), a size range, a video content type and a short expiry.
The upload then triggers the normal S3 path, which reads the settings from the metadata.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.domain import job_settings

from chalicelib.domain import settings_metadata
from chalicelib.domain import jobs
from chalicelib.aws.table import iso_utc
from chalicelib.domain.presets import presets
from chalicelib.domain.sources import safe_filename

from .context import Context
from .submit import BadRequest, check_folder

#: How long a presigned POST stays valid (s).
UPLOAD_EXPIRY_SECONDS = 900
#: Key prefix of browser uploads in the ingest bucket.
UPLOAD_PREFIX = "uploads"


def presigned_upload(ctx: Context, body: Any) -> dict:
    """``body``: ``{"filename", "content_type" (video/*), ...settings}``. Returns ``{"url",
    "fields" (the form fields to send before the file), "upload_id", "key", "bucket",
    "max_bytes", "expires_at"}``. Raises ``BadRequest`` naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    document = {k: v for k, v in body.items() if k not in ("filename", "content_type")}
    try:
        settings = job_settings.parse(document, presets(ctx.settings.ladder))
        # the policy binds the settings as the object's metadata: over S3's 2 KB limit the
        # upload itself would be refused (MetadataTooLarge) after the client sent the file
        meta = settings_metadata.metadata_for(settings.to_dict()) or {"settings": "{}"}
    except job_settings.InvalidSettings as e:
        raise BadRequest(e.message) from None
    content_type = str(body.get("content_type") or "video/mp4")
    if not re.fullmatch(r"video/[A-Za-z0-9.+-]{1,64}", content_type):
        raise BadRequest("content_type: must be a video/* media type")
    check_folder(ctx, settings, "")  # an upload makes a new job: any holder of the folder conflicts
    upload_id = uuid.uuid4().hex
    key = f"{UPLOAD_PREFIX}/{upload_id}/{safe_filename(body.get('filename'))}"
    fields = {"Content-Type": content_type, **{f"x-amz-meta-{k}": v for k, v in meta.items()}}
    conditions = [{"Content-Type": content_type}, *({f"x-amz-meta-{k}": v} for k, v in meta.items()),
                  ["content-length-range", 1, ctx.settings.max_bytes]]
    post = ctx.objects.presign_post(ctx.settings.ingest_bucket, key, fields, conditions, UPLOAD_EXPIRY_SECONDS)
    expires = datetime.now(timezone.utc) + timedelta(seconds=UPLOAD_EXPIRY_SECONDS)
    return {"upload_id": upload_id, "url": post["url"], "fields": post["fields"],
            "bucket": ctx.settings.ingest_bucket, "key": key,
            "max_bytes": ctx.settings.max_bytes, "settings": settings.to_dict(),
            "expires_at": iso_utc(expires, "seconds")}


def upload_status(ctx: Context, upload_id: str) -> dict:
    """Where the upload ``upload_id`` (from ``presigned_upload``) stands: ``{"upload_id",
    "received": bool, "key", "size" (bytes), "job_id", "job_status"}``. Once S3 holds the
    object, ``job_id`` is the job its event makes (``jobs.job_id_for`` over bucket, key and
    ETag, as ingest computes it); ``job_status`` stays None until ingest has recorded the job.
    Raises ``BadRequest`` for an id that ``presigned_upload`` cannot have made."""
    if not re.fullmatch(r"[0-9a-f]{32}", upload_id or ""):
        raise BadRequest("upload_id: not an upload id")
    found = ctx.objects.first_object(ctx.settings.ingest_bucket, f"{UPLOAD_PREFIX}/{upload_id}/")
    if found is None:
        return {"upload_id": upload_id, "received": False, "key": None, "size": None, "job_id": None,
                "job_status": None}
    job_id = jobs.job_id_for(ctx.settings.ingest_bucket, found["key"], found["etag"])
    return {"upload_id": upload_id, "received": True, "key": found["key"], "size": found["size"],
            "job_id": job_id, "job_status": ctx.store.get_job_status(job_id)}
