"""Transcode-task messages: the JSON body of one message on a task queue, built by ingest
when it fans a job out and rebuilt from the stored job for an operator's retry. Pure: no AWS
call.
"""
from __future__ import annotations

from . import job_settings, jobs
from .ffmpeg_args import SEGMENT_SECONDS
from .frame_size import frame_size_of
from .sources import ObjectRef

#: The task item's fields a task message's ``spec`` carries, by task kind.
SPEC_FIELDS = {"chunk": ("name", "index", "start", "end", "first_segment", "last"),
               "audio": ("name", "bitrate", "channels", "sample_rate", "track", "language", "label", "default",
                         "describes_video", "loudness", "true_peak"),
               "text": ("name", "language", "label", "hearing_impaired", "default", "forced", "track", "source",
                        "source_version")}


def makes_playable(task: dict) -> bool:
    """Whether a task is one a job needs before it is playable: its first chunk, its audio and
    its subtitle renditions (``presentation`` publishes when every variant serves a first
    segment, every audio rendition's published segments reach as far and every text
    rendition is complete; text tasks take well under a second). ``task``: a task item (``kind``, ``index``) or a task message (``kind``,
    ``spec.index``). A chunk without an index is not taken for the first. With
    ``FirstChunkSeconds`` 0 the first chunk is a whole chunk (60-600 s) and still counts."""
    kind = task.get("kind")
    if kind in ("audio", "text"):
        return True
    index = task.get("index", (task.get("spec") or {}).get("index"))
    return kind == "chunk" and index is not None and int(index) == 0


def task_message(job_id: str, ref: ObjectRef, task: dict, duration: float, frame_rate: float,
                 extra: dict | None = None, output: dict | None = None) -> dict:
    """The body of one transcode-tasks message: ``{"job_id", "task", "kind", "spec", "source",
    "duration" (s), "frame_rate" (frames/s), ...output}``. ``source`` pins the probed bytes:
    ``etag`` always, ``version_id`` on a versioned bucket (the template versions the ingest
    bucket). ``spec`` is the task item without its bookkeeping (``seg_counts``, ``weight``)
    plus ``extra``. ``output`` (``job_fields``): what the message carries from its job."""
    source = {"bucket": ref.bucket, "key": ref.key, "etag": ref.etag.strip('"'),
              **({"version_id": ref.version_id} if ref.version_id else {})}
    spec = {k: v for k, v in task.items() if k not in ("seg_counts", "weight")}
    return {"job_id": job_id, "task": task["name"], "kind": task["kind"], "spec": {**spec, **(extra or {})},
            "source": source, "duration": duration, "frame_rate": frame_rate, **(output or {})}


def job_fields(job: dict) -> dict:
    """What every task message of ``job`` carries from it: ``output_prefix`` (key prefix, no
    trailing ``/``), ``segment_duration`` (s), ``lead_segment`` (s: the first segment's length
    when shorter, ``chunks.lead_segment``; 0 otherwise), ``metadata`` (echoed in events) and
    ``priority`` (which task queue it goes back to on a retry or redrive)."""
    return {"output_prefix": jobs.output_prefix(job), "segment_duration": int(job.get("segment_duration") or SEGMENT_SECONDS),
            "lead_segment": float(job.get("lead_segment") or 0),
            "metadata": jobs.metadata_of(job), "priority": job.get("priority") or "normal"}


def task_message_for(job: dict, task: dict) -> dict:
    """Rebuild a task's message from the stored job and task items (operator retries).
    Raises ``KeyError`` for a task of an unknown kind or a job item without its source."""
    spec = {"kind": task["kind"], **{k: task.get(k) for k in SPEC_FIELDS[task["kind"]]}}
    ref = ObjectRef(job["source_bucket"], job["source_key"], job.get("source_etag", ""), int(job.get("source_size") or 0),
                    version_id=job.get("source_version_id"))
    probe = job.get("probe") or {}
    return task_message(job["job_id"], ref, spec, float(probe.get("duration") or 0), float(probe.get("frame_rate") or 0),
                        chunk_extra(job) if task["kind"] == "chunk" else None, job_fields(job))


def chunk_extra(job: dict) -> dict:
    """What every chunk message carries besides its span: the video ladder, the thumbnails
    plan (its tiles, and the poster for the chunk that holds ``poster_time``, come from the
    chunk's decode), the job's ``quality_metrics``, the probed [width, height] every decoded
    frame must have (``frame_size.frame_size_of``; absent without a probe): ``coded_frame_size``
    with ``picture``, the job's ``conversions.PicturePlan`` (deinterlacing, orientation, tone
    mapping; the graph receives frames as coded), else ``frame_size`` (after autorotate). Raises ``KeyError`` for a job item without its ``ladder``."""
    metrics = (job.get("settings") or {}).get("quality_metrics", job_settings.DEFAULT_QUALITY_METRICS)
    picture = job.get("picture_plan")
    size = frame_size_of(job.get("probe") or {}, autorotate=not picture)
    if not size:
        guard = {}
    elif picture:  # the coded size under its own name: a worker that predates ``picture`` ignores it
        guard = {"coded_frame_size": list(size)}
    else:
        guard = {"frame_size": list(size)}
    return {"renditions": job["ladder"], "thumbnails": job.get("thumbnails"), "quality_metrics": list(metrics),
            **guard, **({"picture": picture} if picture else {})}
