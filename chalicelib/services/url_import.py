"""URL imports: a ``POST /jobs`` source given as an https URL is streamed into the ingest bucket
by the ingest function, then follows the normal path (probe, plan, tasks) under the job id the
API returned.

The transfer is bounded: public addresses only (``webhooks.is_public_address``: what the IANA
special-purpose registries call globally reachable; every redirect re-validated, the connection
pinned to the validated address), at most ``max_bytes``, and ``import_timeout`` seconds in all:
one deadline for the connect, TLS, every redirect and every read of the body (each socket
call waits only for the time left, so a sender trickling a byte now and then is cut at the
deadline: ``IMPORT_TIMEOUT``). The body must be exactly its ``Content-Length`` when it has
one: a shorter body (the connection closed early) is never stored. Streamed in 8 MiB
multipart parts (nothing held in memory or on the function's disk); any failure aborts the
multipart upload. The imported object is ``imports/<job id>/<file name>`` with metadata
``import-job: <job id>``, so its own S3 event makes no second job.
"""
from __future__ import annotations

import http.client
import time
from dataclasses import replace
from typing import Iterator
from urllib.parse import unquote, urlsplit

from chalicelib.domain.errors import PermanentError, TransientError
from chalicelib.domain.sources import safe_filename
from chalicelib.tools.pinned_http import DeadlineExceeded, HttpStatusError, get_stream

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


def content_length(value: str | None) -> int | None:
    """The ``Content-Length`` header's byte count (RFC 9110 §8.6: digits only), or None when
    absent or malformed (the body is then read to its end, within the same limits)."""
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def _parts(response, max_bytes: int, deadline: float, url: str, expected: int | None = None) -> Iterator[bytes]:
    """The response body in ``PART_BYTES`` pieces. Raises ``PermanentError``
    (``FILE_TOO_LARGE``) past ``max_bytes``, ``DeadlineExceeded`` past ``deadline`` (a
    ``time.monotonic()`` value; the sockets enforce it on every recv, this checks between
    reads too), and ``TransientError`` when the body ends short of ``expected`` bytes (its
    ``Content-Length``)."""
    total, buffer = 0, bytearray()
    while True:
        if time.monotonic() > deadline:
            raise DeadlineExceeded("the import's deadline passed")
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
    if expected is not None and total != expected:
        raise TransientError(f"the source at {urlsplit(url).hostname} sent {total} of its {expected} bytes "
                             f"(Content-Length); nothing was stored")
    if buffer or total == 0:
        yield bytes(buffer)


def open_url(ctx: Context, url: str, deadline: float, what: str = "source", refused: str = "SOURCE_URL_REFUSED",
             failed: str = "SOURCE_URL_FAILED") -> tuple[http.client.HTTPResponse, http.client.HTTPConnection, str]:
    """GET ``url`` under the import rules (module docstring; ``pinned_http.get_stream``) until
    ``deadline`` (``time.monotonic()``): (the open 200 response, its connection to close, the
    final URL). Raises ``PermanentError`` ``refused`` (a refused address or scheme), ``failed``
    (a 4xx answer) or ``IMPORT_TIMEOUT``, and ``TransientError`` (5xx, network), which the
    ingest queue retries. ``what`` names the URL in messages."""
    s = ctx.settings
    try:
        return get_stream(url, s.import_timeout, s.import_allow_private, schemes=source_schemes(s.import_allow_private),
                          what=what, deadline=deadline)
    except ValueError as e:
        raise PermanentError(refused, str(e)) from None
    except HttpStatusError as e:
        if 400 <= e.status < 500:
            raise PermanentError(failed, f"the {what} URL answered {e}") from None
        raise TransientError(f"the {what} URL answered {e}") from None
    except DeadlineExceeded:
        raise PermanentError("IMPORT_TIMEOUT", f"the download of {urlsplit(url).hostname} took longer than "
                                               f"{s.import_timeout:g} s") from None
    except (OSError, http.client.HTTPException) as e:
        raise TransientError(f"the {what} URL could not be reached: {e!r}") from None


def import_source(ctx: Context, ref, job_id: str):
    """Stream ``ref.source_url`` into the ingest bucket; return ``ref`` pointing at the imported
    object (bucket, key, etag, size, version), its ``source_url`` kept (the job id stays).

    Raises ``PermanentError`` (``SOURCE_URL_REFUSED`` for a refused address or scheme,
    ``SOURCE_URL_FAILED`` for a 4xx answer, ``FILE_TOO_LARGE``, ``IMPORT_TIMEOUT``) or
    ``TransientError`` (5xx, network), which the ingest queue retries."""
    s = ctx.settings
    deadline = time.monotonic() + s.import_timeout
    host = urlsplit(ref.source_url).hostname
    timed_out = PermanentError("IMPORT_TIMEOUT", f"the download of {host} took longer than {s.import_timeout:g} s")
    response, conn, final = open_url(ctx, ref.source_url, deadline)
    try:
        length = content_length(response.getheader("Content-Length"))
        if length is not None and length > s.max_bytes:
            raise PermanentError("FILE_TOO_LARGE", f"the source has {length} bytes; the limit is {s.max_bytes}")
        key = f"{IMPORT_PREFIX}/{job_id}/{file_name(final)}"
        stored = ctx.objects.upload_stream(s.ingest_bucket, key, _parts(response, s.max_bytes, deadline, final, length),
                                           {IMPORT_JOB_KEY: job_id},
                                           response.getheader("Content-Type") or "application/octet-stream")
    except DeadlineExceeded:
        raise timed_out from None
    except (OSError, http.client.HTTPException) as e:  # reset, TLS error, a chunked body cut short
        raise TransientError(f"the download was interrupted: {e!r}") from None
    finally:
        conn.close()
    return replace(ref, bucket=s.ingest_bucket, key=key, etag=str(stored["ETag"]).strip('"'), size=int(stored["size"]),
                   version_id=stored.get("VersionId"))
