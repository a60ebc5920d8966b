"""Ingest use case: an S3 ObjectCreated record -> a probed, planned, recorded job with one
task message per chunk of the timeline (each encodes the whole video ladder), plus the audio
rendition and the poster.

Idempotent: the job id is derived from bucket, key and ETag, the job is created with a
conditional write, and fan-out is recorded (``fanned_out``), so a duplicate event creates
nothing and a retried event after a crash between the write and the fan-out finishes it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace

from chalicelib import faults, metrics
from chalicelib.aws.table import now_iso
from chalicelib.domain import captions, jobs, ownership, sound, webvtt
from chalicelib.domain.errors import PermanentError, SourceUnreachable, describe
from chalicelib.domain.chunks import check_video_start, first_seconds_for, lead_for, plan_chunks
from chalicelib.domain.conversions import plan_picture
from chalicelib.domain.ffmpeg_args import SEGMENT_SECONDS
from chalicelib.domain import job_settings
from chalicelib.domain import settings_metadata, settings_text
from chalicelib.domain.ladder import Plan, dropped_rungs
from chalicelib.domain.ladder import plan as plan_ladder
from chalicelib.domain.presets import presets
from chalicelib.domain.media import check_limits, parse_probe
from chalicelib.domain.sources import ObjectRef, objects_in_s3_event
from chalicelib.domain.task_messages import chunk_extra, job_fields, makes_playable, task_message
from chalicelib.domain.work import check_work, estimate
from chalicelib.tools import media_probe

from . import caption_import, url_import
from .context import Context
from .job_failure import fail_job

Unit = metrics.Unit


def _iso(event_time: str | None) -> str:
    """S3's eventTime (e.g. 2026-11-22T02:19:14.996Z) or now, as ISO 8601 UTC."""
    return event_time if event_time and event_time.endswith("Z") else now_iso()

log = logging.getLogger("vodpipe.ingest")


def plan_tasks(plan: Plan, duration: float, settings, segment_seconds: int = SEGMENT_SECONDS,
               texts: tuple[captions.TextRendition, ...] = (), first_seconds: float | None = None) -> list[dict]:
    """The job's task items, in the order they are queued: the first chunk (the longest of the
    tasks that make the job playable: the audio publishes its first segments as it makes them,
    ``services/audio_segments.py``), the text renditions (``texts``: short), the audio
    renditions (with ``yield_after``, the first chunk's end, when later chunks follow), then
    the other chunks: one task per chunk of the timeline (``chunks.plan_chunks`` on the
    ``segment_seconds`` grid with the deployment's parallelism and chunk bounds, and a first
    chunk of ``first_seconds``: ``chunks.first_seconds_for``, the deployment's by default), each
    encoding every video rendition (and making the job's thumbnails of its span). A chunk's ``weight`` is its share
    of the ladder's pixels x seconds (job progress)."""
    pixels = sum(r.width * r.height for r in plan.videos)
    chunks = plan_chunks(duration, settings.chunk_parallelism, segment_seconds, settings.min_chunk_seconds,
                         settings.max_chunk_seconds,
                         settings.first_chunk_seconds if first_seconds is None else first_seconds)
    planned = [{**c.to_dict(), "kind": "chunk", "last": c.index == len(chunks) - 1,
                "seg_counts": {r.name: 0 for r in plan.videos},
                "weight": round(pixels * c.seconds / max(duration, 1e-3), 1)} for c in chunks]
    # when later chunks follow, the audio yields the CPU to the first chunk (chunks.audio_niceness)
    yield_after = {"yield_after": planned[0]["end"]} if len(planned) > 1 else {}
    return [planned[0], *(t.to_dict() for t in texts), *({**t.to_dict(), **yield_after} for t in plan.audios),
            *planned[1:]]


#: A sidecar settings document sits next to its upload as ``<key>.json``, at most 64 KiB.
SIDECAR_SUFFIX = ".json"
SIDECAR_MAX_BYTES = 64 * 1024
#: Key added to an S3 event sent back to the ingest queue to wait for its sidecar: seconds
#: it has waited.
WAITED_KEY = "vodpipe_waited_seconds"


def load_sidecar(ctx: Context, ref: ObjectRef) -> dict | None:
    """The sidecar settings document of an upload (``<key>.json`` in its bucket), or None.
    Raises ``InvalidSettings`` (field ``sidecar``) when it is not a JSON object or too large."""
    try:
        raw = ctx.objects.get_small(ref.bucket, ref.key + SIDECAR_SUFFIX, SIDECAR_MAX_BYTES)
    except ValueError:
        raise job_settings.InvalidSettings("sidecar", f"{ref.key}{SIDECAR_SUFFIX} is larger than {SIDECAR_MAX_BYTES} bytes")
    if raw is None:
        return None
    try:  # bounded: size, nesting depth (settings_text.MAX_DEPTH) checked before json recurses
        document = settings_text.load_json(raw, "sidecar")
    except job_settings.InvalidSettings as e:
        raise job_settings.InvalidSettings("sidecar", f"{ref.key}{SIDECAR_SUFFIX}: {e.reason}") from None
    if not isinstance(document, dict):
        raise job_settings.InvalidSettings("sidecar", f"{ref.key}{SIDECAR_SUFFIX} is not a JSON object")
    return document


def job_settings_for(ctx: Context, ref: ObjectRef, metadata: dict[str, str],
                     document: dict | None) -> job_settings.JobSettings:
    """The validated settings of a job, from the first source that has any: ``document`` (a
    ``POST /jobs`` body), the upload's S3 metadata, its sidecar (``load_sidecar``); else the
    defaults. Raises ``InvalidSettings``."""
    if document is None:
        document = settings_metadata.settings_from_metadata(metadata)
    if document is None:
        document = load_sidecar(ctx, ref)
    return job_settings.parse(document, presets(ctx.settings.ladder))


def ingest_object(ctx: Context, ref: ObjectRef) -> dict:
    """Create (or finish creating) the job for one uploaded object.

    ``ref.settings``: the settings of a ``POST /jobs`` request (else the object's metadata or
    its sidecar decide, ``job_settings_for``); ``ref.request`` distinguishes that request (its
    canonical settings), part of the job id so one object may be submitted with several
    settings. Returns ``{"job_id", "status", "new_job": bool, "tasks": n}``. A file that is
    not a decodable video, or invalid settings, create a ``failed`` job with ``error`` {code,
    message} and no tasks, and publish ``JobFailed``. Raises only for transient failures (AWS
    errors, ffprobe unreachable), so the ingest message is retried.
    """
    s = ctx.settings
    job_id = ref.job_id
    existing = ctx.store.get(job_id)
    if existing and existing[0].get("fanned_out"):
        log.info("duplicate event for job %s ignored", job_id)
        return {"job_id": job_id, "status": existing[0]["status"], "new_job": False, "tasks": 0}
    source = {"job_id": job_id, "source_bucket": ref.bucket, "source_key": ref.key, "source_size": ref.size,
              "source_etag": ref.etag.strip('"'), "uploaded_at": _iso(ref.event_time), "ingest_started_at": now_iso()}
    if ref.source_url:
        source["source_url"] = ref.source_url
    faults.check("ingest", ref.key)
    # a POST /jobs naming an object already in the bucket reads someone's upload; a URL
    # import or an upload's own event owns its source (ownership.source_owner)
    owner = ownership.source_owner(from_request=ref.settings is not None, imported=bool(ref.source_url))
    source["source_owner"] = owner
    try:
        if ref.source_url and not ref.bucket:
            ref = url_import.import_source(ctx, ref, job_id)
            source.update(source_bucket=ref.bucket, source_key=ref.key, source_size=ref.size,
                          source_etag=ref.etag.strip('"'))
        # Pin the exact bytes the event announced (ETag, and the version on a versioned bucket)
        head = ctx.objects.pin_source(ref.bucket, ref.key, ref.etag, ref.version_id)
        imported_for = (head.get("Metadata") or {}).get(url_import.IMPORT_JOB_KEY)
        if imported_for and not ref.source_url:  # the import's own S3 event: its job is made already
            log.info("%s was imported for job %s; its upload event makes no job", ref.key, imported_for)
            return {"job_id": imported_for, "status": "imported", "new_job": False, "tasks": 0}
        if head.get("VersionId") and head["VersionId"] != "null":
            ref = replace(ref, version_id=head["VersionId"])
            source["source_version_id"] = ref.version_id
        settings = job_settings_for(ctx, ref, head.get("Metadata") or {}, ref.settings)
        source.update(settings_fields(settings, job_id))
        folder = jobs.output_prefix(source)
        ownership.folder_parts(folder)  # claimable (InvalidSettings when too deep)
        ownership.check_source_after(settings.source_after, owner, f"s3://{ref.bucket}/{ref.key}")
        url = ctx.objects.presign_get(ref.bucket, ref.key, s.presign_expiry, ref.version_id)
        received = [("Uploads", 1, Unit.Count), ("BytesIn", ref.size, Unit.Bytes)]
        if ref.size == 0:
            raise PermanentError("EMPTY_FILE", "the uploaded file is empty (0 bytes)")
        if ref.size > s.max_bytes:
            raise PermanentError("FILE_TOO_LARGE", f"the file has {ref.size} bytes; the limit is {s.max_bytes}")
        try:
            # PyAV: the Lambda runtime has no ffprobe. The picture size is checked from the
            # stream's header before any frame is decoded (TOO_MANY_PIXELS)
            info = parse_probe(media_probe.probe(url, max_pixels=s.max_pixels))
            check_limits(info, ref.size, s.max_bytes, s.max_duration, s.max_pixels)
            decodes = media_probe.first_video_frame_decodes(url)
        except SourceUnreachable:
            # Name the cause: gone or overwritten is permanent; anything else is retried.
            ctx.objects.pin_source(ref.bucket, ref.key, ref.etag, ref.version_id)
            raise
        if not decodes:
            raise PermanentError("UNDECODABLE_VIDEO",
                                 f"the {info.video_codec} video stream cannot be decoded (corrupt bitstream?)")
        preset = settings.preset(presets(s.ladder))
        plan = plan_ladder(info, preset.rungs, s.max_frame_rate, preset.native_rung, preset.exact,
                           settings.audio_tracks, sound.loudness_target(settings.normalize_audio))
        texts, skipped_text = captions.plan_text(info.subtitle_tracks, settings.captions)
        check_caption_sources(settings.captions, s.ingest_bucket)
        check_video_start(info.video_start, settings.segment_duration)  # LATE_VIDEO_START
        top = plan.videos[0]  # UNSUPPORTED_DYNAMIC_RANGE before any task
        picture = plan_picture(info, (top.width, top.height), s.max_frame_rate)
        work = estimate(info, plan.videos, len(plan.audios), s.max_frame_rate,
                        picture.size if picture.tone_map or picture.convert_from else None)
        source["work"] = work.to_dict()
        check_work(work, s.max_job_vcpu_seconds)  # TOO_MUCH_WORK, before any task exists
        # the output folder, default (the job id) or explicit, is claimed before anything is
        # written: none that is, contains or lies inside another job's (docs/state.md); an
        # explicit folder in the job-id form (reserved for default folders: ids are
        # predictable) is refused without claiming it, naming a job that holds it if any
        reserved = ownership.reserved_folder_message(folder, job_id)
        if reserved:
            conflict = ctx.records.folder_conflict(folder, job_id)
            raise PermanentError("OUTPUT_PREFIX_IN_USE",
                                 ownership.conflict_message(folder, conflict) if conflict else reserved)
        conflict = ctx.records.claim_folder(folder, job_id)
        if conflict:
            raise PermanentError("OUTPUT_PREFIX_IN_USE", ownership.conflict_message(folder, conflict))
        # caption files fetched, checked (INVALID_CAPTIONS) and pinned before any task
        texts = caption_import.import_captions(ctx, texts, job_id,
                                               webvtt.segment_durations(info.duration, settings.segment_duration))
    except PermanentError as e:
        received = [("Uploads", 1, Unit.Count), ("BytesIn", ref.size, Unit.Bytes)]
        # created failed, or nothing: a job that exists already is left as it is
        created = fail_job(ctx, job_id, e.as_dict(), event_detail={"source": {"bucket": ref.bucket, "key": ref.key}},
                           metadata=jobs.metadata_of(source), update_existing=False, metric_values=received,
                           create={**source, "job_status": jobs.FAILED, "error": e.as_dict(), "fanned_out": True})
        if created:
            metrics.emit(received)
        log.warning("job %s failed at ingest: %s", job_id, e)
        return {"job_id": job_id, "status": jobs.FAILED, "new_job": created, "tasks": 0}
    first_seconds = first_seconds_for(s.first_chunk_seconds, info.video_start)
    tasks = plan_tasks(plan, info.duration, s, settings.segment_duration, texts, first_seconds)
    job = {**source, "job_status": jobs.QUEUED, "probe": info.to_dict(), "fanned_out": False,
           "ladder": [r.to_dict() for r in plan.videos], "dropped_rungs": dropped_rungs(info, preset.rungs),
           "lead_segment": lead_for(info.duration, first_seconds, settings.segment_duration),
           "picture_plan": picture.to_dict(), "conversions": list(picture.conversions),
           "skipped_subtitles": list(skipped_text), "absolute_uris": preset.absolute_uris, "playlist_content_type": preset.playlist_content_type,
           **({"thumbnails": plan.thumbnails.to_dict()} if settings.outputs.thumbnails else {})}
    created = ctx.store.create_job(job, tasks)
    if not created:
        current = ctx.store.get(job_id)
        if current and current[0].get("fanned_out"):
            return {"job_id": job_id, "status": current[0]["status"], "new_job": False, "tasks": 0}
    extra, output = chunk_extra(job), job_fields(job)
    # the tasks that make the job playable (its audio and first chunk) go to the first queue,
    # which workers take from before any job's later tasks; in order within each queue
    for first in (True, False):
        ctx.queues.send_json(s.tasks_queue_for(settings.priority, first),
                             (task_message(job_id, ref, t, info.duration, info.frame_rate,
                                           extra if t["kind"] == "chunk" else None, output)
                              for t in tasks if makes_playable(t) == first))
    ctx.store.update_job(job_id, fanned_out=True)
    if created:
        metrics.emit([*received, ("JobsStarted", 1, Unit.Count)])
    renditions = [r.name for r in plan.videos] + [a.name for a in plan.audios] + [t.name for t in texts]
    ctx.events.publish("JobQueued", job_id, jobs.QUEUED, {"renditions": renditions,
                                                      "chunks": sum(t["kind"] == "chunk" for t in tasks),
                                                      "dropped_rungs": job["dropped_rungs"],
                                                      "source": {"bucket": ref.bucket, "key": ref.key}},
                       settings.metadata)
    log.info("job %s queued with %d tasks", job_id, len(tasks))
    return {"job_id": job_id, "status": jobs.QUEUED, "new_job": created, "tasks": len(tasks)}


def check_caption_sources(entries, ingest_bucket: str) -> None:
    """Refuse a ``captions`` entry in another bucket than the ingest bucket (the one bucket
    every caller may name, as for sources). Raises ``PermanentError``
    (``CAPTIONS_SOURCE_REFUSED``)."""
    i = captions.foreign_source(entries, ingest_bucket)
    if i is not None:
        raise PermanentError("CAPTIONS_SOURCE_REFUSED", f"captions[{i}]: {entries[i].source} is not in the ingest "
                                                        f"bucket ({ingest_bucket}); upload the file there")


def settings_fields(settings: job_settings.JobSettings, job_id: str) -> dict:
    """The job item's fields from its settings: the document itself (``settings``), and the
    ones other code reads directly (``output_prefix``, ``segment_duration``, ``priority``,
    ``webhook_url``, ``source_after``)."""
    return {"settings": settings.to_dict(), "output_prefix": settings.output_prefix or job_id,
            "segment_duration": settings.segment_duration, "priority": settings.priority,
            "source_after": settings.source_after,
            **({"webhook_url": settings.webhook_url} if settings.webhook_url else {})}


def awaits_sidecar(ctx: Context, ref: ObjectRef) -> bool:
    """True when an upload should wait for a sidecar: it exists, its metadata carries no
    settings and no ``<key>.json`` is there yet."""
    head = ctx.objects.head_if_exists(ref.bucket, ref.key)
    if head is None:
        return False  # gone: ingest_object names the error
    try:
        if settings_metadata.settings_from_metadata(head.get("Metadata") or {}) is not None:
            return False
    except job_settings.InvalidSettings:
        return False  # ingest_object fails the job with it
    return ctx.objects.head_if_exists(ref.bucket, ref.key + SIDECAR_SUFFIX) is None


def ingest_sidecar(ctx: Context, ref: ObjectRef) -> dict:
    """A sidecar arrived: ingest its upload now if the upload is there (the upload's own event
    may be waiting for it; whichever comes second makes the job, the other is a duplicate),
    else leave it for the upload's event to find."""
    video = ref.key[: -len(SIDECAR_SUFFIX)]
    head = ctx.objects.head_if_exists(ref.bucket, video) if video else None
    if head is None:
        log.info("sidecar %s waits for its upload %s", ref.key, video)
        return {"job_id": None, "status": "sidecar waiting", "new_job": False, "tasks": 0}
    upload = ObjectRef(ref.bucket, video, str(head.get("ETag") or ""), int(head.get("ContentLength") or 0),
                       version_id=head.get("VersionId") if head.get("VersionId") not in (None, "null") else None,
                       event_time=_iso(head["LastModified"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
                                       if head.get("LastModified") else None))
    return ingest_object(ctx, upload)


def ingest_event(ctx: Context, event: dict) -> list[dict]:
    """Ingest every ObjectCreated record of one S3 event notification. A sidecar
    (``<key>.json``) ingests its upload if that is there; an upload without settings in its
    metadata and without a sidecar first waits ``sidecar_wait_seconds`` for one: the event goes
    back to the ingest queue with that delay (``WAITED_KEY``), once."""
    wait = ctx.settings.sidecar_wait_seconds
    refs = objects_in_s3_event(event)
    uploads = [r for r in refs if not r.key.endswith(SIDECAR_SUFFIX) and r.settings is None
               and not r.key.lower().endswith(CAPTION_SUFFIXES)]
    if wait > 0 and int(event.get(WAITED_KEY) or 0) < wait and any(awaits_sidecar(ctx, r) for r in uploads):
        ctx.queues.send_raw(ctx.settings.ingest_queue, json.dumps({**event, WAITED_KEY: wait}), min(900, wait))
        log.info("upload %s waits %d s for a sidecar", ", ".join(r.key for r in uploads), wait)
        return [{"job_id": None, "status": "waiting for a sidecar", "new_job": False, "tasks": 0}]
    return [ingest_sidecar(ctx, r) if r.key.endswith(SIDECAR_SUFFIX) and r.settings is None
            else caption_file(r) if r.settings is None and is_caption_file(ctx, r)
            else ingest_object(ctx, r) for r in refs]


#: Uploads with these suffixes are caption files a job's ``captions`` names, not videos.
CAPTION_SUFFIXES = (".srt", ".vtt")


def is_caption_file(ctx: Context, ref: ObjectRef) -> bool:
    """True for an upload named like a caption file (``CAPTION_SUFFIXES``) that carries no job
    settings in its metadata (one that does was sent as a video: it fails as one, saying why)."""
    if not ref.key.lower().endswith(CAPTION_SUFFIXES):
        return False
    head = ctx.objects.head_if_exists(ref.bucket, ref.key)
    try:
        return head is None or settings_metadata.settings_from_metadata(head.get("Metadata") or {}) is None
    except job_settings.InvalidSettings:
        return False


def caption_file(ref: ObjectRef) -> dict:
    """An uploaded caption file (``CAPTION_SUFFIXES``) makes no job: a job names it in its
    ``captions`` setting."""
    log.info("%s is a caption file; it makes no job", ref.key)
    return {"job_id": None, "status": "caption file", "new_job": False, "tasks": 0}


def record_failure(ctx: Context, event: dict, error: BaseException) -> None:
    """Remember why ingesting the objects of ``event`` failed this time, for the ingest
    dead-letter function (best effort: the store may be what failed)."""
    for ref in objects_in_s3_event(event):
        try:
            ctx.records.record_ingest_error(ref.job_id, describe(error))
        except Exception:  # noqa: BLE001 - the dead letter then says "unknown"
            log.exception("could not record the ingest error")
