"""Ingest use case: an S3 ObjectCreated record -> a probed, planned, recorded job with one
task message per chunk of the timeline (each encodes the whole video ladder), plus the audio
rendition and the poster.

Idempotent: the job id is derived from bucket, key and ETag, the job is created with a
conditional write, and fan-out is recorded (``fanned_out``), so a duplicate event creates
nothing and a retried event after a crash between the write and the fan-out finishes it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote_plus

from chalicelib import faults, metrics
from chalicelib.aws.jobstore import now_iso
from chalicelib.domain import jobs as J
from chalicelib.domain.errors import PermanentError, SourceUnreachable, describe
from chalicelib.domain.chunks import plan_chunks
from chalicelib.domain.ffmpeg_args import SEGMENT_SECONDS
from chalicelib.domain.ladder import Plan
from chalicelib.domain.ladder import plan as plan_ladder
from chalicelib.domain.progress import THUMBNAILS_WEIGHT
from chalicelib.domain.media import check_limits, parse_probe
from chalicelib.tools import media_probe

from .context import Context

Unit = metrics.Unit


def _iso(event_time: str | None) -> str:
    """S3's eventTime (e.g. 2026-11-22T02:19:14.996Z) or now, as ISO 8601 UTC."""
    return event_time if event_time and event_time.endswith("Z") else now_iso()

log = logging.getLogger("vodpipe.ingest")


@dataclass(frozen=True)
class ObjectRef:
    """An uploaded object: ``size`` bytes; ``key`` already URL-decoded."""

    bucket: str
    key: str
    etag: str
    size: int
    version_id: str | None = None
    event_time: str | None = None  # when S3 received the object (ISO 8601)


def objects_in_s3_event(event: dict[str, Any]) -> list[ObjectRef]:
    """ObjectCreated records of an S3 event notification (the JSON S3 puts in the SQS
    message). ``s3:TestEvent`` and other event types yield nothing. Keys are decoded with
    ``unquote_plus`` (S3 URL-encodes them in notifications, '+' for spaces)."""
    if event.get("Event") == "s3:TestEvent":
        return []
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


def task_message(job_id: str, ref: ObjectRef, task: dict, duration: float, frame_rate: float,
                 extra: dict | None = None) -> dict:
    """The body of one transcode-tasks message. ``source`` pins the probed bytes: ``etag``
    always, ``version_id`` on a versioned bucket (the template versions the ingest bucket)."""
    source = {"bucket": ref.bucket, "key": ref.key, "etag": ref.etag.strip('"'),
              **({"version_id": ref.version_id} if ref.version_id else {})}
    spec = {k: v for k, v in task.items() if k not in ("segs", "weight")}
    return {"job_id": job_id, "task": task["name"], "kind": task["kind"], "spec": {**spec, **(extra or {})},
            "source": source, "duration": duration, "frame_rate": frame_rate}


SPEC_FIELDS = {"chunk": ("name", "index", "start", "end", "first_segment", "last"),
               "audio": ("name", "bitrate", "channels", "sample_rate"),
               "thumbnails": ("name", "interval", "count", "columns", "rows", "width", "height", "poster_time",
                              "poster_width", "poster_height")}


def task_message_for(job: dict, task: dict) -> dict:
    """Rebuild a task's message from the stored job and task items (operator retries)."""
    spec = {"kind": task["kind"], **{k: task.get(k) for k in SPEC_FIELDS[task["kind"]]}}
    ref = ObjectRef(job["source_bucket"], job["source_key"], job.get("source_etag", ""), int(job.get("source_size") or 0),
                    version_id=job.get("source_version_id"))
    probe = job.get("probe") or {}
    return task_message(job["job_id"], ref, spec, float(probe.get("duration") or 0), float(probe.get("frame_rate") or 0),
                        chunk_extra(job) if task["kind"] == "chunk" else None)


def chunk_extra(job: dict) -> dict:
    """What every chunk message carries besides its span: the video ladder and the
    thumbnails plan (its tiles come from the chunk's decode)."""
    return {"renditions": job["ladder"], "thumbnails": job["thumbnails"]}


def plan_tasks(plan: Plan, duration: float, settings) -> list[dict]:
    """The job's task items, in the order they are queued: the audio rendition (playback
    needs it first), the poster, then one task per chunk of the timeline (``chunks.plan_chunks``
    with the deployment's parallelism and chunk bounds), each encoding every video rendition.
    A chunk's ``weight`` is its share of the ladder's pixels x seconds (job progress)."""
    pixels = sum(r.width * r.height for r in plan.videos)
    chunks = plan_chunks(duration, settings.chunk_parallelism, SEGMENT_SECONDS, settings.min_chunk_seconds,
                         settings.max_chunk_seconds)
    tasks = [t.to_dict() for t in ([plan.audio] if plan.audio else [])]
    tasks.append({**plan.thumbnails.to_dict(), "weight": THUMBNAILS_WEIGHT})
    for c in chunks:
        tasks.append({**c.to_dict(), "kind": "chunk", "last": c.index == len(chunks) - 1,
                      "segs": {r.name: [] for r in plan.videos},
                      "weight": round(pixels * c.seconds / max(duration, 1e-3), 1)})
    return tasks


def ingest_object(ctx: Context, ref: ObjectRef) -> dict:
    """Create (or finish creating) the job for one uploaded object.

    Returns ``{"job_id", "status", "new_job": bool, "tasks": n}``. A file that is not a
    decodable video creates a ``failed`` job with ``error`` {code, message} and no tasks, and
    publishes ``JobFailed``. Raises only for transient failures (AWS errors, ffprobe
    unreachable), so the ingest message is retried.
    """
    s = ctx.settings
    job_id = J.job_id_for(ref.bucket, ref.key, ref.etag)
    existing = ctx.store.get(job_id)
    if existing and existing[0].get("fanned_out"):
        log.info("duplicate event for job %s ignored", job_id)
        return {"job_id": job_id, "status": existing[0]["status"], "new_job": False, "tasks": 0}
    source = {"job_id": job_id, "source_bucket": ref.bucket, "source_key": ref.key, "source_size": ref.size,
              "source_etag": ref.etag.strip('"'), "uploaded_at": _iso(ref.event_time)}
    received = [("Uploads", 1, Unit.Count), ("BytesIn", ref.size, Unit.Bytes)]
    faults.check("ingest", ref.key)
    try:
        # Pin the exact bytes the event announced (ETag, and the version on a versioned bucket)
        head = ctx.objects.pin_source(ref.bucket, ref.key, ref.etag, ref.version_id)
        if head.get("VersionId") and head["VersionId"] != "null":
            ref = replace(ref, version_id=head["VersionId"])
            source["source_version_id"] = ref.version_id
        hook = (head.get("Metadata") or {}).get("webhook-url")  # a per-upload webhook target
        if hook:
            source["webhook_url"] = hook
        url = ctx.objects.presign_get(ref.bucket, ref.key, s.presign_expiry, ref.version_id)
        if ref.size == 0:
            raise PermanentError("EMPTY_FILE", "the uploaded file is empty (0 bytes)")
        if ref.size > s.max_bytes:
            raise PermanentError("FILE_TOO_LARGE", f"the file has {ref.size} bytes; the limit is {s.max_bytes}")
        try:
            info = parse_probe(media_probe.probe(url))  # PyAV: the Lambda runtime has no ffprobe
            check_limits(info, ref.size, s.max_bytes, s.max_duration, s.max_pixels)
            decodes = media_probe.first_video_frame_decodes(url)
        except SourceUnreachable:
            # Name the cause: gone or overwritten is permanent; anything else is retried.
            ctx.objects.pin_source(ref.bucket, ref.key, ref.etag, ref.version_id)
            raise
        if not decodes:
            raise PermanentError("UNDECODABLE_VIDEO",
                                 f"the {info.video_codec} video stream cannot be decoded (corrupt bitstream?)")
        plan = plan_ladder(info, s.ladder, s.max_frame_rate)
    except PermanentError as e:
        created = ctx.store.create_job({**source, "job_status": J.FAILED, "error": e.as_dict(), "fanned_out": True}, [])
        if created:
            ctx.events.publish("JobFailed", job_id, J.FAILED, {"error": e.as_dict(), "source": {"bucket": ref.bucket, "key": ref.key}})
            metrics.emit([*received, ("JobsFailed", 1, Unit.Count)])
        log.warning("job %s failed at ingest: %s", job_id, e)
        return {"job_id": job_id, "status": J.FAILED, "new_job": created, "tasks": 0}
    tasks = plan_tasks(plan, info.duration, s)
    job = {**source, "job_status": J.QUEUED, "probe": info.to_dict(), "fanned_out": False,
           "ladder": [r.to_dict() for r in plan.videos], "thumbnails": plan.thumbnails.to_dict()}
    created = ctx.store.create_job(job, tasks)
    if not created:
        current = ctx.store.get(job_id)
        if current and current[0].get("fanned_out"):
            return {"job_id": job_id, "status": current[0]["status"], "new_job": False, "tasks": 0}
    extra = chunk_extra(job)
    ctx.queues.send_json(s.tasks_queue, (task_message(job_id, ref, t, info.duration, info.frame_rate,
                                                      extra if t["kind"] == "chunk" else None) for t in tasks))
    ctx.store.update_job(job_id, fanned_out=True)
    if created:
        metrics.emit([*received, ("JobsStarted", 1, Unit.Count)])
    renditions = [r.name for r in plan.videos] + ([plan.audio.name] if plan.audio else [])
    ctx.events.publish("JobQueued", job_id, J.QUEUED, {"renditions": renditions,
                                                      "chunks": sum(t["kind"] == "chunk" for t in tasks),
                                                      "source": {"bucket": ref.bucket, "key": ref.key}})
    log.info("job %s queued with %d tasks", job_id, len(tasks))
    return {"job_id": job_id, "status": J.QUEUED, "new_job": created, "tasks": len(tasks)}


def ingest_event(ctx: Context, event: dict) -> list[dict]:
    """Ingest every ObjectCreated record of one S3 event notification."""
    return [ingest_object(ctx, ref) for ref in objects_in_s3_event(event)]


def record_failure(ctx: Context, event: dict, error: BaseException) -> None:
    """Remember why ingesting the objects of ``event`` failed this time, for the ingest
    dead-letter function (best effort: the store may be what failed)."""
    for ref in objects_in_s3_event(event):
        try:
            ctx.records.record_ingest_error(J.job_id_for(ref.bucket, ref.key, ref.etag), describe(error))
        except Exception:  # noqa: BLE001 - the dead letter then says "unknown"
            log.exception("could not record the ingest error")
