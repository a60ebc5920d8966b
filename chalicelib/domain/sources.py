"""Sources: the uploaded objects jobs are made from, and the ingest-queue messages that name
them (S3 event notifications, ``POST /jobs`` job requests). Pure: no AWS call.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from . import jobs

#: The ingest-queue message of a ``POST /jobs`` request (beside S3's event notifications).
JOB_REQUEST_KEY = "vodpipe_job_request"


@dataclass(frozen=True)
class ObjectRef:
    """An uploaded object: ``size`` bytes; ``key`` already URL-decoded. A ``POST /jobs``
    request also carries its ``settings`` document and ``request`` (canonical settings, part
    of the job id)."""

    bucket: str
    key: str
    etag: str
    size: int
    version_id: str | None = None
    event_time: str | None = None  # when S3 received the object (ISO 8601)
    settings: dict | None = None
    request: str = ""
    #: a ``POST /jobs`` https source, imported into the ingest bucket by ingest
    source_url: str | None = None

    @property
    def job_id(self) -> str:
        """The job this object (and request) makes (``jobs.job_id_for``; for a URL source, from
        the URL and the request, before and after the import)."""
        if self.source_url:
            return jobs.job_id_for("url", self.source_url, "", self.request)
        return jobs.job_id_for(self.bucket, self.key, self.etag, self.request)


def job_request(ref: ObjectRef) -> dict:
    """The ingest-queue message of a job request for ``ref`` (with ``settings``/``request``):
    ``{JOB_REQUEST_KEY: {"bucket", "key", "etag", "size", "version_id", "settings", "request"
    [, "url"]}}``. Raises nothing."""
    return {JOB_REQUEST_KEY: {"bucket": ref.bucket, "key": ref.key, "etag": ref.etag, "size": ref.size,
                              "version_id": ref.version_id, "settings": ref.settings, "request": ref.request,
                              **({"url": ref.source_url} if ref.source_url else {})}}


def objects_in_s3_event(event: dict[str, Any]) -> list[ObjectRef]:
    """ObjectCreated records of an S3 event notification (the JSON S3 puts in the SQS
    message), or the object of a job request (``job_request``). ``s3:TestEvent`` and other
    event types yield nothing. Keys are decoded with ``unquote_plus`` (S3 URL-encodes them in
    notifications, '+' for spaces). Raises ``KeyError``/``TypeError``/``AttributeError`` for a
    record that is not shaped like S3's."""
    if event.get("Event") == "s3:TestEvent":
        return []
    request = event.get(JOB_REQUEST_KEY)
    if isinstance(request, dict):
        return [ObjectRef(request.get("bucket") or "", request.get("key") or "", request.get("etag") or "",
                          int(request.get("size") or 0), request.get("version_id"),
                          settings=request.get("settings") or {}, request=request.get("request") or "",
                          source_url=request.get("url"))]
    refs = []
    for rec in event.get("Records") or []:
        if not str(rec.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = rec.get("s3") or {}
        obj = s3.get("object") or {}
        refs.append(ObjectRef(bucket=s3["bucket"]["name"], key=unquote_plus(obj["key"]),
                              etag=str(obj.get("eTag") or obj.get("etag") or obj.get("sequencer") or ""),
                              size=int(obj.get("size") or 0), version_id=obj.get("versionId"),
                              event_time=rec.get("eventTime")))
    return refs


def safe_filename(name: Any) -> str:
    """The last path part of ``name`` with anything but letters, digits, ``.``, ``_``, ``-``
    replaced by ``_`` (at most 120 characters; ``upload`` when nothing is left): the file name
    of an object the service itself names in the ingest bucket (browser uploads, URL
    imports)."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", str(name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip("._")
    return base[:120] or "upload"
