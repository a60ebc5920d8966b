"""URL imports: a ``POST /jobs`` source given as an https URL is streamed into the ingest bucket
by the ingest function, then follows the normal path (probe, plan, tasks) under the job id the
API returned.

The transfer is bounded: public addresses only (the webhooks' check, every redirect
re-validated, the connection pinned to the validated address), at most ``max_bytes`` and
``import_timeout`` seconds, streamed in 8 MiB multipart parts (nothing held in memory or on
the function's disk). The imported object is ``imports/<job id>/<file name>`` with metadata
``import-job: <job id>``, so its own S3 event makes no second job.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Iterator
from urllib.parse import unquote, urlsplit

from chalicelib.domain.errors import PermanentError, TransientError
from chalicelib.domain.sources import safe_filename
from chalicelib.tools.pinned_http import HttpStatusError, get_stream

from .context import Context

#: The imported object's metadata key naming the job it was imported for.
IMPORT_JOB_KEY = "import-job"
PART_BYTES = 8 * 1024 * 1024
IMPORT_PREFIX = "imports"


def source_schemes(allow_private: bool) -> tuple[str, ...]:
    """URL schemes a source may use: https; also http where private addresses are allowed
    (the local cloud's test servers)."""
    return ("https", "http") if allow_private else ("https",)


def file_name(url: str) -> str:
    """A safe object name from the URL's last path part (``source`` when it has none)."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return safe_filename(name) if name else "source"


def _parts(response, max_bytes: int, deadline: float, url: str) -> Iterator[bytes]:
    """The response body in ``PART_BYTES`` pieces; raises ``PermanentError`` past ``max_bytes``
    or ``deadline`` (a ``time.monotonic()`` value)."""
    total, buffer = 0, bytearray()
    while True:
        if time.monotonic() > deadline:
            raise PermanentError("IMPORT_TIMEOUT", f"the download of {urlsplit(url).hostname} took too long")
        data = response.read(1024 * 1024)
        if not data:
            break
        total += len(data)
        if total > max_bytes:
            raise PermanentError("FILE_TOO_LARGE", f"the source at {urlsplit(url).hostname} is larger than "
                                                   f"{max_bytes} bytes")
        buffer += data
        if len(buffer) >= PART_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer or total == 0:
        yield bytes(buffer)


def import_source(ctx: Context, ref, job_id: str):
    """Stream ``ref.source_url`` into the ingest bucket; return ``ref`` pointing at the imported
    object (bucket, key, etag, size, version), its ``source_url`` kept (the job id stays).

    Raises ``PermanentError`` (``SOURCE_URL_REFUSED`` for a refused address or scheme,
    ``SOURCE_URL_FAILED`` for a 4xx answer, ``FILE_TOO_LARGE``, ``IMPORT_TIMEOUT``) or
    ``TransientError`` (5xx, network), which the ingest queue retries."""
    s = ctx.settings
    deadline = time.monotonic() + s.import_timeout
    try:
        response, conn, final = get_stream(ref.source_url, min(60.0, s.import_timeout), s.import_allow_private,
                                           schemes=source_schemes(s.import_allow_private))
    except ValueError as e:
        raise PermanentError("SOURCE_URL_REFUSED", str(e)) from None
    except HttpStatusError as e:
        if 400 <= e.status < 500:
            raise PermanentError("SOURCE_URL_FAILED", f"the source URL answered {e}") from None
        raise TransientError(f"the source URL answered {e}") from None
    except OSError as e:
        raise TransientError(f"the source URL could not be reached: {e}") from None
    try:
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > s.max_bytes:
            raise PermanentError("FILE_TOO_LARGE", f"the source has {length} bytes; the limit is {s.max_bytes}")
        key = f"{IMPORT_PREFIX}/{job_id}/{file_name(final)}"
        stored = ctx.objects.upload_stream(s.ingest_bucket, key, _parts(response, s.max_bytes, deadline, final),
                                           {IMPORT_JOB_KEY: job_id},
                                           response.getheader("Content-Type") or "application/octet-stream")
    except OSError as e:
        raise TransientError(f"the download was interrupted: {e}") from None
    finally:
        conn.close()
    return replace(ref, bucket=s.ingest_bucket, key=key, etag=str(stored["ETag"]).strip('"'), size=int(stored["size"]),
                   version_id=stored.get("VersionId"))
