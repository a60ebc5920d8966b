"""Finalizing a job: the multivariant playlist from the tasks' measured stats, then
``complete`` with a conditional write (exactly one ``JobCompleted``)."""
from __future__ import annotations

import logging

from chalicelib import metrics
from chalicelib.aws.jobstore import now_iso, seconds_since
from chalicelib.domain import ffmpeg_args as A
from chalicelib.domain import jobs as J
from chalicelib.domain.playlist import master_playlist

from .context import Context

log = logging.getLogger("vodpipe.transcode")
Unit = metrics.Unit


def finalize(ctx: Context, job: dict, tasks: list[dict]) -> bool:
    """Write ``<job_id>/master.m3u8`` from the tasks' measured stats and mark the job
    ``complete``. Idempotent: the playlist is a pure function of the stored stats; only the
    call that wins the conditional status write publishes ``JobCompleted``. Returns True for
    that call."""
    job_id = job["job_id"]
    videos = [{**t, "width": t["out_width"], "height": t["out_height"], "uri": f"{t['name']}/{A.PLAYLIST_NAME}"}
              for t in tasks if t.get("kind") == "video"]
    audio = next(({**t, "uri": f"{t['name']}/{A.PLAYLIST_NAME}"} for t in tasks if t.get("kind") == "audio"), None)
    ctx.objects.put_bytes(ctx.settings.output_bucket, J.output_key(job_id, "master.m3u8"),
                          master_playlist(videos, audio).encode())
    if not ctx.store.set_job_status(job_id, J.COMPLETE, completed_at=now_iso(), master_written=True):
        return False
    fresh = ctx.store.get(job_id)
    outputs = J.job_outputs(job_id, ctx.settings.output_bucket, ctx.settings.output_base_url,
                            fresh[1] if fresh else tasks, True)
    ctx.events.publish("JobCompleted", job_id, J.COMPLETE, {"outputs": outputs})
    latency = seconds_since(job.get("uploaded_at") or job.get("created_at"))
    metrics.emit([("JobsCompleted", 1, Unit.Count), ("JobLatency", latency, Unit.Seconds)])
    log.info("job %s complete", job_id)
    return True
