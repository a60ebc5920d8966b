"""Publishing a job's presentation as its chunks finish, and finalizing the job.

``publish`` writes the playlists the finished tasks allow (``chalicelib.domain.presentation``):
an EVENT presentation of the finished prefix of chunks that the audio has reached as soon as
the first chunk and the audio's first segments are in (the job gets ``playable_at`` and one
``JobPlayable``; the audio task calls it as its segments are recorded,
``services/audio_segments.py``), and the whole one, with EXT-X-ENDLIST, when every task is. Several workers may publish at once: each re-reads the job
after writing and writes again until what it wrote is current, so the last write always
describes the latest state (a playlist may be stale for the milliseconds of a race, never
for good). ``finalize`` moves the job to ``complete`` with a conditional write: exactly one
``JobCompleted`` even when two tasks finish at once or a message is delivered twice.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from chalicelib import faults, metrics
from chalicelib.aws.table import now_iso, seconds_since
from chalicelib.domain import jobs
from chalicelib.domain import presentation
from chalicelib.domain.ladder import ThumbnailPlan

from . import progressive, source_after
from .context import Context

log = logging.getLogger("vodpipe.transcode")
Unit = metrics.Unit

#: How many times one publisher re-reads and rewrites before leaving the rest to the others.
MAX_PUBLISH_ROUNDS = 5
#: Playlists one publication writes at once (a job has up to ~8 video, 8 audio and 16 text renditions).
PUBLISH_WRITERS = 8


def _absolute_base(ctx: Context, job: dict) -> str | None:
    """Where the job's outputs are served, for presets that write absolute URIs (None: relative
    URIs; also when no output base URL is configured)."""
    base = ctx.settings.output_base_url
    if not job.get("absolute_uris") or not base:
        return None
    return f"{base.rstrip('/')}/{jobs.output_prefix(job)}"


def _build(ctx: Context, job: dict, tasks: list[dict]) -> presentation.Presentation | None:
    thumbs = job.get("thumbnails")
    return presentation.build(job.get("ladder") or [], tasks, float((job.get("probe") or {}).get("duration") or 0),
                              bool(job.get("event_published")),
                              ThumbnailPlan(**{k: thumbs[k] for k in ThumbnailPlan.__dataclass_fields__}) if thumbs else None,
                              int(job.get("segment_duration") or presentation.SEGMENT_SECONDS), _absolute_base(ctx, job))


def _write_files(ctx: Context, job: dict, files: dict[str, str]) -> None:
    """Write a presentation's ``files`` under the job's output prefix: the media playlists and
    the thumbnails track at once (a publication waits for one round trip, not one per
    rendition), then ``master.m3u8``, so a player that finds the master finds every playlist
    it names. Raises the first write's error."""
    bucket, prefix = ctx.settings.output_bucket, jobs.output_prefix(job)

    def put(key: str) -> None:
        ctx.objects.put_bytes(bucket, jobs.output_key(prefix, *key.split("/")), files[key].encode(),
                              job.get("playlist_content_type") if key.endswith(".m3u8") else None)
    first = [key for key in files if key != presentation.MASTER_NAME]
    with ThreadPoolExecutor(max_workers=PUBLISH_WRITERS, thread_name_prefix="publish") as pool:
        for done in [pool.submit(put, key) for key in first]:
            done.result()
    if presentation.MASTER_NAME in files:
        put(presentation.MASTER_NAME)


def publish(ctx: Context, job_id: str) -> presentation.Presentation | None:
    """Write the presentation the job's finished tasks allow, under the job's output prefix (media
    playlists and the thumbnails track first, ``master.m3u8`` last); return it, or None when
    nothing is playable yet or the job failed or was canceled. An unfinished presentation of no
    more chunks than the job's ``published_chunks`` is returned without being written."""
    wrote = None
    for _ in range(MAX_PUBLISH_ROUNDS):
        got = ctx.store.get(job_id, checkpoints=True)
        if got is None or got[0]["status"] in (jobs.FAILED, jobs.CANCELED):
            return None
        job, tasks = got
        built = _build(ctx, job, tasks)
        if built is None:
            return None
        if (wrote is None and not built.complete and job.get("master_written")
                and built.chunks <= int(job.get("published_chunks") or 0)):
            # nothing new (the audio task asks as its segments grow): never rewrite the same
            # prefix, nor a shorter one a publisher with an older read would (RFC 8216 §6.2.1)
            return built
        if wrote is not None and built.state == wrote.state:
            break
        if built.playlist_type == "EVENT" and not job.get("event_published"):
            # recorded before any EVENT playlist is visible, so the final one stays EVENT
            ctx.store.update_job(job_id, event_published=True)
        _write_files(ctx, job, built.files)
        ctx.store.record_publication(job_id, built.seconds, variants=built.variants, published_chunks=built.chunks,
                                     master_written=True)
        faults.check("presentation_published", job_id)
        wrote = built
    if wrote is not None and ctx.store.set_once(job_id, "playable_at", now_iso()):
        latency = seconds_since(got[0].get("uploaded_at") or got[0].get("created_at"))
        ctx.events.publish("JobPlayable", job_id, jobs.PROCESSING, {
            "outputs": jobs.job_outputs({**got[0], "master_written": True}, got[1], ctx.settings.output_bucket,
                                     ctx.settings.output_base_url),
            "seconds_playable": wrote.seconds, "complete": wrote.complete}, jobs.metadata_of(got[0]))
        metrics.emit([("TimeToPlayable", latency, Unit.Seconds)])
        log.info("job %s playable (%.1f s of media) %.1f s after upload", job_id, wrote.seconds, latency)
    return wrote


def finalize(ctx: Context, job_id: str) -> bool:
    """When every task of the job is done: publish the whole presentation, make the progressive
    files it asked for (``progressive.make_files``), mark the job ``complete`` and announce it
    (``announce``). Idempotent: only the call that wins the conditional status write goes on,
    and a job found ``complete`` but never announced (its finalizer died in between: the last
    task's message is redelivered) is announced then. Returns True when this call announced
    the completion."""
    got = ctx.store.get(job_id)
    if got is None:
        return False
    job, tasks = got
    if job["status"] == jobs.COMPLETE and job.get("completion_announced") is False:
        log.warning("job %s is complete but was never announced: announcing it now", job_id)
        return announce(ctx, job)
    if job["status"] in jobs.TERMINAL or not set(job.get("tasks") or []) <= set(job.get("done") or []):
        return False
    shown = publish(ctx, job_id)
    if shown is None or not shown.complete:
        raise RuntimeError(f"job {job_id}: every task is done but the presentation is not whole")
    if progressive.planned(job, tasks):  # remuxed from the segments the checkpoints list
        files = progressive.make_files(ctx, job, ctx.store.get(job_id, checkpoints=True)[1])
    else:
        files = {}
    if files:
        ctx.store.update_job(job_id, files=files)
    if not ctx.store.set_job_status(job_id, jobs.COMPLETE, completed_at=now_iso(), completion_announced=False):
        return False
    faults.check("job_completed", job_id)
    return announce(ctx, job)


def announce(ctx: Context, job: dict) -> bool:
    """What follows a job's ``complete`` status write: its ``source_after`` (once:
    ``source_state`` is kept), ``JobCompleted`` with the outputs, the completion metrics, then
    ``completion_announced`` on the job. A crash before that last write repeats the
    announcement on the redelivered message (events are at least once). Returns True."""
    job_id = job["job_id"]
    if job.get("source_state") is None:
        ctx.store.update_job(job_id, source_state=source_after.apply(ctx, job))
    fresh = ctx.store.get(job_id)
    outputs = jobs.job_outputs(fresh[0] if fresh else job, fresh[1] if fresh else [], ctx.settings.output_bucket,
                               ctx.settings.output_base_url)
    ctx.events.publish("JobCompleted", job_id, jobs.COMPLETE, {"outputs": outputs}, jobs.metadata_of(job))
    latency = seconds_since(job.get("uploaded_at") or job.get("created_at"))
    metrics.emit([("JobsCompleted", 1, Unit.Count), ("JobLatency", latency, Unit.Seconds)])
    ctx.store.update_job(job_id, completion_announced=True)
    log.info("job %s complete", job_id)
    return True
