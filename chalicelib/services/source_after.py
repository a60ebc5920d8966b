"""What happens to a job's source once the job is complete (``source_after`` setting): ``keep``
(the default), ``delete`` (the exact version the job read is removed for good) or ``archive``
(that version is tagged ``vodpipe-source=archive``; the ingest bucket's lifecycle rule
``archive-processed-sources`` moves it to S3 Glacier Deep Archive). Never applied to a failed
or canceled job: a retry needs its source. Never applied to a source the job does not own
(``ownership.source_owner``: its own upload or URL import): ``POST /jobs`` refuses such a
request, ingest fails it, and a job recorded without an owner (one created before owners were
recorded included) keeps its source.
"""
from __future__ import annotations

import logging

from chalicelib.domain import ownership
from chalicelib.domain.errors import describe

from .context import Context

log = logging.getLogger("vodpipe.transcode")

ARCHIVE_TAG = {"vodpipe-source": "archive"}


def apply(ctx: Context, job: dict) -> str:
    """Apply the job's ``source_after`` to its source; return what became of it: ``kept``,
    ``kept: not the job's own upload`` (a source the job does not own: never touched),
    ``deleted``, ``archived``, or ``error: <message>`` (logged, never raised: the outputs are
    done and the job stays complete)."""
    action = job.get("source_after") or "keep"
    if action == "keep":
        return "kept"
    if job.get("source_owner") not in (ownership.UPLOAD, ownership.IMPORT):
        log.warning("job %s: source_after %s refused: the source is not the job's own", job["job_id"], action)
        return "kept: not the job's own upload"
    bucket, key, version = job["source_bucket"], job["source_key"], job.get("source_version_id")
    try:
        if action == "delete":
            ctx.objects.delete_version(bucket, key, version)
            return "deleted"
        ctx.objects.tag_version(bucket, key, version, ARCHIVE_TAG)
        return "archived"
    except Exception as e:  # noqa: BLE001 - reported on the job, never fails it
        log.warning("job %s: source_after %s failed: %s", job["job_id"], action, e)
        return f"error: {describe(e)['message']}"
