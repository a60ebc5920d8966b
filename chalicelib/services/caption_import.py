"""Caption imports: every caption file a job names (``captions`` setting) is fetched by the
ingest function, checked (``webvtt.parse_captions``: a broken file fails the job
``INVALID_CAPTIONS`` naming the file and line before any task is queued) and stored as WebVTT
under ``imports/<job id>/<rendition>.vtt`` in the ingest bucket, the copy its text task reads
(pinned: a caption file changed after ingest changes nothing).

Fetched like a media import (``url_import``): an https URL with public addresses only, every
redirect re-validated, the connection pinned to the validated address, one deadline of
``import_timeout`` seconds, at most ``captions.MAX_CAPTION_BYTES``; an ``s3://`` source only
in the ingest bucket (``ingest.check_caption_sources``). The stored copy ends in ``.vtt``, so
its own S3 event makes no job (``ingest.CAPTION_SUFFIXES``).
"""
from __future__ import annotations

import http.client
import time
from dataclasses import replace
from typing import Sequence
from urllib.parse import unquote, urlsplit

from chalicelib.domain import captions, webvtt
from chalicelib.domain.errors import PermanentError, TransientError
from chalicelib.domain.settings_text import printable_name
from chalicelib.tools.pinned_http import DeadlineExceeded

from .context import Context
from .url_import import IMPORT_JOB_KEY, IMPORT_PREFIX, open_url


#: All the caption files of one job are fetched within this many seconds (ingest's function
#: has 60 s, a URL import of the source takes up to ``import_timeout`` of them).
CAPTIONS_TIMEOUT = 10.0


def caption_key(job_id: str, rendition: str) -> str:
    """Key of a job's stored caption copy in the ingest bucket: ``imports/captions/<job id>/``,
    a folder apart from URL imports of sources (``imports/<job id>/``), which the bucket's
    ``expire-caption-copies`` lifecycle rule expires after 30 days (``infra/template.yaml``)."""
    return f"{IMPORT_PREFIX}/captions/{job_id}/{rendition}.vtt"


def file_label(source: str) -> str:
    """How errors name a caption source: its file name (``fr.srt``), else the whole URI, in
    printable characters, at most 100."""
    name = unquote(urlsplit(source).path.rsplit("/", 1)[-1]) if "://" in source else ""
    return printable_name(name or source)[:100]


def fetch(ctx: Context, source: str, deadline: float | None = None) -> bytes:
    """The bytes of caption file ``source`` (``s3://`` in the ingest bucket, or https).

    Raises ``PermanentError``: ``CAPTIONS_NOT_FOUND`` (no such object, a 4xx answer),
    ``CAPTIONS_SOURCE_REFUSED`` (a refused address or scheme, another bucket),
    ``INVALID_CAPTIONS`` (larger than ``MAX_CAPTION_BYTES``), ``IMPORT_TIMEOUT``; or
    ``TransientError`` (5xx, network), which the ingest queue retries. ``deadline``
    (``time.monotonic()``) ends an https fetch; default ``import_timeout`` from now."""
    s, limit, label = ctx.settings, captions.MAX_CAPTION_BYTES, file_label(source)
    where = captions.parse_s3_uri(source)
    if where:
        if where[0] != s.ingest_bucket:
            raise PermanentError("CAPTIONS_SOURCE_REFUSED", f"{source} is not in the ingest bucket ({s.ingest_bucket})")
        try:
            data = ctx.objects.get_small(where[0], where[1], limit)
        except ValueError:
            raise PermanentError("INVALID_CAPTIONS", f"{label} is larger than {limit} bytes") from None
        if data is None:
            raise PermanentError("CAPTIONS_NOT_FOUND", f"{source} does not exist")
        return data
    deadline = time.monotonic() + s.import_timeout if deadline is None else deadline
    host = urlsplit(source).hostname
    response, conn, _ = open_url(ctx, source, deadline, "caption", "CAPTIONS_SOURCE_REFUSED", "CAPTIONS_NOT_FOUND")
    try:
        data = response.read(limit + 1)
    except DeadlineExceeded:
        raise PermanentError("IMPORT_TIMEOUT", f"the download of {host} took longer than {s.import_timeout:g} s") from None
    except (OSError, http.client.HTTPException) as e:
        raise TransientError(f"the caption download was interrupted: {e!r}") from None
    finally:
        conn.close()
    if len(data) > limit:
        raise PermanentError("INVALID_CAPTIONS", f"{label} is larger than {limit} bytes")
    return data


def import_captions(ctx: Context, texts: Sequence[captions.TextRendition], job_id: str,
                    durations: Sequence[float] = ()) -> tuple[captions.TextRendition, ...]:
    """``texts`` with every caption file fetched (all within ``CAPTIONS_TIMEOUT``), checked and
    stored (``caption_key``); each such rendition's ``source`` and ``source_version`` then name
    the stored copy. ``durations``: the job's segment grid (s), to refuse cues that would write
    more than ``captions.MAX_SEGMENT_BYTES`` of segments now rather than in the task. Raises
    what ``fetch`` raises and ``PermanentError`` ``INVALID_CAPTIONS`` ("<file>, line <n>:
    <reason>", or a copy or segments too large)."""
    out, deadline = [], time.monotonic() + min(ctx.settings.import_timeout, CAPTIONS_TIMEOUT)
    for text in texts:
        if text.source is None:
            out.append(text)
            continue
        label = file_label(text.source)
        cues = webvtt.parse_captions(fetch(ctx, text.source, deadline), label)
        body = webvtt.document(cues).encode()
        if len(body) > captions.MAX_STORED_BYTES:
            raise PermanentError("INVALID_CAPTIONS", f"{label} takes more than {captions.MAX_STORED_BYTES} bytes "
                                                     f"as WebVTT")
        if webvtt.segments_size(cues, durations) > captions.MAX_SEGMENT_BYTES:
            raise PermanentError("INVALID_CAPTIONS", f"{label}: its cues, repeated in every segment they span, "
                                                     f"would take more than {captions.MAX_SEGMENT_BYTES} bytes of segments")
        key = caption_key(job_id, text.name)
        stored = ctx.objects.upload_stream(ctx.settings.ingest_bucket, key, [body], {IMPORT_JOB_KEY: job_id}, "text/vtt")
        out.append(replace(text, source=f"s3://{ctx.settings.ingest_bucket}/{key}",
                           source_version=stored.get("VersionId")))
    return tuple(out)
