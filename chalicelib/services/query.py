"""Read side for the HTTP API: job resources, listings, pipeline stats."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from chalicelib.domain import jobs
from chalicelib.aws.table import iso_utc
from chalicelib.domain.presets import presets

from .context import Context

#: Window over which ``jobs_completed_per_minute`` is averaged, in minutes.
THROUGHPUT_WINDOW_MINUTES = 10


def get_job(ctx: Context, job_id: str) -> dict | None:
    """The job resource (``chalicelib.domain.jobs.job_resource``), or None if unknown."""
    got = ctx.store.get(job_id)
    if got is None:
        return None
    job, tasks = got
    return jobs.job_resource(job, tasks, ctx.settings.output_bucket, ctx.settings.output_base_url)


def list_presets(ctx: Context) -> dict:
    """``{"presets": [...]}`` (``presets.Preset.to_dict``), ``web`` first."""
    return {"presets": [p.to_dict() for p in presets(ctx.settings.ladder).values()]}


def rendition_url(ctx: Context, job_id: str, name: str) -> str | None:
    """Where rendition ``name`` of the job is served: a variant's media playlist, a
    progressive file (``720p.mp4``, ``audio.m4a``) or a text rendition's whole WebVTT
    (``subtitles.vtt``); None when unknown or not published."""
    got = ctx.store.get(job_id)
    if got is None:
        return None
    outputs = jobs.job_outputs(got[0], got[1], ctx.settings.output_bucket, ctx.settings.output_base_url)
    found = (outputs.get("variants") or {}).get(name) or (outputs.get("files") or {}).get(name) \
        or (outputs.get("subtitles") or {}).get(name.removesuffix(".vtt") if name.endswith(".vtt") else "")
    return (found.get("url") or found.get("uri")) if found else None


def list_jobs(ctx: Context, status: str | None, limit: int, next_token: str | None) -> dict:
    """``{"jobs": [summary...], "next_token": str | None}``; summaries have job_id, status,
    source, created_at, updated_at, error. Raises ValueError for an unknown status."""
    if status and status not in jobs.STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(jobs.STATUSES)}")
    items, token = ctx.store.list_jobs(status, limit, next_token)
    summaries = [{"job_id": i["job_id"], "status": i["status"],
             "source": {"bucket": i.get("source_bucket"), "key": i.get("source_key"), "size": i.get("source_size")},
             "created_at": i.get("created_at"), "updated_at": i.get("updated_at"), "error": i.get("error")}
            for i in items]
    return {"jobs": summaries, "next_token": token}


def stats(ctx: Context) -> dict:
    """Queue depths (ingest, tasks, first tasks, high-priority tasks and their DLQs), jobs by status, dead letters kept for
    ``GET /dlq``, and jobs completed per minute over the last ``THROUGHPUT_WINDOW_MINUTES``."""
    s = ctx.settings
    since = iso_utc(datetime.now(timezone.utc) - timedelta(minutes=THROUGHPUT_WINDOW_MINUTES))
    return {
        "queues": {"ingest": ctx.queues.depth(s.ingest_queue), "ingest_dlq": ctx.queues.depth(s.ingest_dlq),
                   "tasks": ctx.queues.depth(s.tasks_queue), "tasks_dlq": ctx.queues.depth(s.tasks_dlq),
                   "tasks_high": ctx.queues.depth(s.tasks_high_queue),
                   "tasks_first": ctx.queues.depth(s.tasks_first_queue),
                   "tasks_high_dlq": ctx.queues.depth(s.tasks_high_dlq)},
        "jobs": ctx.store.count_by_status(),
        "dead_letters": len(ctx.records.list_dead_letters(1000)),
        "jobs_completed_per_minute": round(ctx.store.completed_since(since) / THROUGHPUT_WINDOW_MINUTES, 2),
    }
