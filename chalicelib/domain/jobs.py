"""Jobs: identity, the status state machine, output keys and the public job resource.

Status only moves forward (docs/state.md): queued -> processing -> complete | failed | canceled.
A task (a chunk of the timeline encoded to every video rendition, or the audio rendition)
moves queued -> processing -> complete | failed. The one way back is an operator's explicit
retry of a failed job (``POST
/jobs/{id}/retry`` or a dead-letter redrive), which reopens it: failed -> processing.
"""
from __future__ import annotations

import hashlib
import posixpath
from datetime import datetime
from typing import Any, Iterable, Mapping

from .presentation import watchable_from
from .progress import job_progress
from .webhooks import redact_settings

QUEUED, PROCESSING, COMPLETE, FAILED, CANCELED = "queued", "processing", "complete", "failed", "canceled"
STATUSES = (QUEUED, PROCESSING, COMPLETE, FAILED, CANCELED)
TERMINAL = (COMPLETE, FAILED, CANCELED)
_ORDER = {QUEUED: 0, PROCESSING: 1, COMPLETE: 2, FAILED: 2, CANCELED: 2}


def can_move(current: str, new: str) -> bool:
    """True when a status may move from ``current`` to ``new`` (forward only; terminal stays)."""
    if current in TERMINAL:
        return False
    return _ORDER[new] > _ORDER[current]


def job_id_for(bucket: str, key: str, etag: str, request: str = "") -> str:
    """Deterministic job id for an uploaded object version: the first 20 hex digits of
    SHA-256 over bucket, key and ETag (quotes stripped), and ``request`` when a ``POST /jobs``
    names the object (its canonical settings: one object, several jobs). Duplicate S3 events
    for the same upload (S3 delivers at least once) map to the same job."""
    text = f"{bucket}\n{key}\n{etag.strip(chr(34))}" + (f"\n{request}" if request else "")
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def output_prefix(job: Mapping[str, Any]) -> str:
    """Key prefix of every output object of a job or task message, without the trailing
    ``/``: its ``output_prefix`` setting (``job_settings.JobSettings``) or, by default, its
    job id."""
    return str(job.get("output_prefix") or job["job_id"])


def metadata_of(job: Mapping[str, Any]) -> dict[str, str]:
    """The free-form ``metadata`` of a stored job's settings (``{}`` without), echoed in the
    job resource and every event."""
    return dict((job.get("settings") or {}).get("metadata") or {})


def output_key(prefix: str, *parts: str) -> str:
    """Key of an output object under ``prefix`` (``output_prefix``).

    Raises ValueError when a part would escape the prefix (absolute, ``..``, empty).
    """
    for p in parts:
        if not p or p.startswith("/") or ".." in p.split("/"):
            raise ValueError(f"invalid output key part {p!r}")
    key = posixpath.join(prefix, *parts)
    if not key.startswith(prefix.rstrip("/") + "/"):
        raise ValueError(f"output key {key!r} escapes the job prefix")
    return key


CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".m4s": "video/iso.segment",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
    ".json": "application/json",
}


def content_type_for(name: str) -> str:
    """Content-Type for an output file by extension (RFC 8216 §4: playlists are
    ``application/vnd.apple.mpegurl``; MPEG-TS segments ``video/mp2t``)."""
    return CONTENT_TYPES.get(posixpath.splitext(name)[1].lower(), "application/octet-stream")


def _url(base: str | None, bucket: str, key: str) -> dict[str, str]:
    out = {"uri": f"s3://{bucket}/{key}"}
    if base:
        out["url"] = f"{base.rstrip('/')}/{key}"
    return out


def job_outputs(job: Mapping[str, Any], tasks: Iterable[Mapping], bucket: str, base_url: str | None) -> dict[str, Any]:
    """The ``outputs`` of the job resource: where the master playlist, each variant, the
    poster, the sprite sheets and the thumbnails track are (``s3://`` URIs and, when a base
    URL is known, http URLs). Only published or finished outputs are listed."""
    prefix = output_prefix(job)
    tasks = list(tasks)
    out: dict[str, Any] = {}
    if job.get("master_written"):
        out["master_playlist"] = _url(base_url, bucket, output_key(prefix, "master.m3u8"))
        names = list((job.get("variants") or {}).keys())
        # an audio rendition is published while its task runs (services/audio_segments.py)
        names += [t["name"] for t in tasks if t.get("kind") in ("audio", "text")
                  and (t.get("status") == COMPLETE or (t.get("kind") == "audio" and t.get("covered")))]
        out["variants"] = {n: _url(base_url, bucket, output_key(prefix, n, "index.m3u8")) for n in names}
        sheets = [t["tiles"]["file_name"] for t in sorted(tasks, key=lambda t: int(t.get("index") or 0))
                  if t.get("kind") == "chunk" and t.get("status") == COMPLETE and t.get("tiles")]
        if sheets:
            out["thumbnails_vtt"] = _url(base_url, bucket, output_key(prefix, "thumbnails", "thumbnails.vtt"))
            out["sprites"] = [_url(base_url, bucket, output_key(prefix, "thumbnails", n)) for n in sheets]
    if job.get("poster_at"):  # set when the chunk that holds the poster uploaded it
        out["poster"] = _url(base_url, bucket, output_key(prefix, "thumbnails", "poster.jpg"))
    for t in tasks:  # a text rendition's whole WebVTT file, written by its task
        if t.get("kind") == "text" and t.get("status") == COMPLETE and t.get("vtt"):
            out.setdefault("subtitles", {})[t["name"]] = {**_url(base_url, bucket, t["vtt"]),
                                                          "language": t.get("language") or "und", "label": t.get("label")}
    for name, made in (job.get("files") or {}).items():  # progressive MP4 / M4A, made at completion
        out.setdefault("files", {})[name] = {**_url(base_url, bucket, made["key"]),
                                             **{k: made[k] for k in ("bytes", "duration", "content_type") if k in made}}
    return out


#: Task fields the job resource shows when present.
TASK_FIELDS = ("start", "end", "attempts", "resumed_at_segment", "resumed_at_seconds", "last_error", "error",
               "transcode_seconds", "cpu_seconds", "worker_cpu_seconds", "started_at", "completed_at")
#: Measured fields of a published video rendition (``chalicelib.domain.presentation``).
VARIANT_FIELDS = ("codecs", "peak_bandwidth", "average_bandwidth", "segments", "duration", "total_bytes", "frames",
                  "frame_rate", "psnr_y", "ssim_y")


def _rendition_status(chunks: list[Mapping]) -> str:
    statuses = {c.get("status") for c in chunks}
    if statuses == {COMPLETE}:
        return COMPLETE
    if FAILED in statuses:
        return FAILED
    return PROCESSING if statuses & {PROCESSING, COMPLETE} else QUEUED


def _task_view(t: Mapping) -> dict:
    view = {"name": t.get("name"), "kind": t.get("kind"), "status": t.get("status"),
            "progress": 100.0 if t.get("status") == COMPLETE else float(t.get("progress") or 0)}
    if t.get("kind") == "chunk":
        view["segments_done"] = min((int(n) for n in (t.get("seg_counts") or {}).values()), default=0)
    if t.get("status") == PROCESSING and t.get("lease_owner"):
        view["worker"] = t["lease_owner"]
    view.update({k: t[k] for k in TASK_FIELDS if t.get(k) is not None})
    return view


def _moment(iso: str) -> datetime:
    return datetime.fromisoformat(str(iso).replace("Z", "+00:00"))


def _between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((_moment(end) - _moment(start)).total_seconds(), 3)


def time_to_playable(job: Mapping[str, Any], tasks: Iterable[Mapping]) -> dict[str, float | None]:
    """Where the time from upload to playable went, in seconds, from the job's own timestamps:
    ``to_ingest`` (S3's event time to the ingest function's start: event delivery, queueing,
    a sidecar wait, a cold function), ``ingest`` (probe, plan, record: to the job's
    ``created_at``), ``to_first_task`` (fan-out to the first task's start: queueing, a worker
    scaled from zero), ``first_task_to_playable`` (encoding what a player needs first, and
    publishing), ``total`` (upload to ``playable_at``), ``watchable`` (upload to
    ``watchable_at``); and within ``first_task_to_playable``, ``first_chunk`` (the first
    chunk task's start to its completion: ffmpeg, uploads, checkpoints, its record) and
    ``publish`` (that completion to ``playable_at``: the audio's first segments if they are
    not in yet, the playlists). A stage not reached (or not recorded, on older jobs) is None."""
    tasks = list(tasks)
    uploaded = job.get("uploaded_at")
    first = min((t["started_at"] for t in tasks if t.get("started_at")), default=None)
    chunk = next((t for t in tasks if t.get("kind") == "chunk" and int(t.get("index") or 0) == 0), {})
    return {"to_ingest": _between(uploaded, job.get("ingest_started_at")),
            "ingest": _between(job.get("ingest_started_at"), job.get("created_at")),
            "to_first_task": _between(job.get("created_at"), first),
            "first_task_to_playable": _between(first, job.get("playable_at")),
            "total": _between(uploaded, job.get("playable_at")),
            "watchable": _between(uploaded, watchable_at(job)),
            "first_chunk": _between(chunk.get("started_at"), chunk.get("completed_at")),
            "publish": _between(chunk.get("completed_at"), job.get("playable_at"))}


def watchable_at(job: Mapping[str, Any]) -> str | None:
    """``presentation.watchable_from`` of the job's recorded publications, or None."""
    found = watchable_from(job.get("publications") or [], float((job.get("probe") or {}).get("duration") or 0))
    return found[0] if found else None


def job_resource(job: Mapping[str, Any], tasks: Iterable[Mapping[str, Any]], output_bucket: str,
                 base_url: str | None) -> dict[str, Any]:
    """The public job resource served by ``GET /jobs/{job_id}``.

    ``job`` and ``tasks`` are the stored items (see ``chalicelib.aws.jobstore``). Shape:
    ``job_id``, ``status``, ``progress`` (0-100, weighted by task cost), ``source``
    {bucket, key, size}, ``probe`` {width, height, duration, rotation, video_codec,
    audio_codec, frame_rate, picture {dynamic_range, hdr_format, primaries, transfer, matrix,
    color_range, bit_depth, scan, field_order, idet, mirrored, dolby_vision, ...}, ...}
    (``media.MediaInfo``, ``picture.Picture``), ``conversions`` (what was done to the picture,
    in words: ``conversions.PicturePlan``), ``renditions`` [{name, kind, width, height,
    video_bitrate, status, progress, segments_done, and once published the measured
    codecs, peak/average_bandwidth (bits/s), frame_rate, psnr_y (dB), ssim_y...}], ``tasks``
    [{name, kind (chunk, audio, text), status, progress, attempts, worker, start/end
    (s), segments_done, resumed_at_segment...}], ``chunks`` {total, published},
    ``outputs`` (``job_outputs``), ``settings`` (the validated document, its ``webhook_url``
    redacted: ``webhooks.redact_url``), ``dropped_rungs``
    (ladder rungs above the source, never upscaled), ``skipped_subtitles`` (source subtitle
    tracks not published, with the reason: bitmap formats, ``captions.plan_text``), ``metadata`` (echoed from the settings),
    ``work`` (ingest's estimate, ``chalicelib.domain.work.WorkEstimate``: output_pixels, frames,
    decoded_pixels, audio_seconds, vcpu_seconds, usd; null before ingest planned the job),
    ``source.owner`` (``upload``, ``import`` or null: a source the job may not delete or archive,
    ``chalicelib.domain.ownership``),
    ``error`` {code, message} or null, ``uploaded_at`` (S3's time of the upload), ``created_at``, ``updated_at``,
    ``poster_at``, ``playable_at``, ``watchable_at`` (from when playback runs to the end without
    stalling: ``presentation.watchable_from``; null until the whole presentation is published),
    ``time_to_playable`` (``time_to_playable``: seconds per stage from upload to playable),
    ``completed_at`` (ISO 8601 UTC).
    """
    tasks = sorted(tasks, key=lambda t: (0 if t.get("kind") == "audio" else 1, int(t.get("index") or 0)))
    chunks = [t for t in tasks if t.get("kind") == "chunk"]
    variants = job.get("variants") or {}
    renditions = []
    total = sum(float(c["end"]) - float(c["start"]) for c in chunks) or 1.0
    progress = sum((100.0 if c.get("status") == COMPLETE else float(c.get("progress") or 0))
                   * (float(c["end"]) - float(c["start"])) for c in chunks) / total
    for spec in job.get("ladder") or []:
        name = spec["name"]
        r = {"name": name, "kind": "video", "status": _rendition_status(chunks), "progress": round(progress, 1),
             "width": spec.get("width"), "height": spec.get("height"), "video_bitrate": spec.get("video_bitrate"),
             "segments_done": sum(int((c.get("seg_counts") or {}).get(name) or 0) for c in chunks)}
        r.update({k: variants[name][k] for k in VARIANT_FIELDS if variants.get(name, {}).get(k) is not None})
        renditions.append(r)
    for t in tasks:
        if t.get("kind") == "audio":
            r = _task_view(t)
            r.update({k: t[k] for k in ("bitrate", "channels", "codecs", "peak_bandwidth", "average_bandwidth",
                                        "segments", "track", "language", "label", "default", "describes_video",
                                        "loudness_target", "loudness_in", "loudness_out", "normalization")
                      if t.get(k) is not None})
            renditions.append(r)
        elif t.get("kind") == "text":
            r = _task_view(t)
            r.update({k: t[k] for k in ("track", "language", "label", "default", "forced", "hearing_impaired",
                                        "cues", "vtt") if t.get(k) is not None})
            r["origin"] = "source" if t.get("track") is not None else "captions"
            renditions.append(r)
    status = job.get("status", QUEUED)
    progress = 100.0 if status == COMPLETE else job_progress(tasks)
    return {
        "job_id": job["job_id"],
        "status": status,
        "progress": progress,
        "priority": job.get("priority") or "normal",
        "source": {"bucket": job.get("source_bucket"), "key": job.get("source_key"), "size": job.get("source_size"),
                   "etag": job.get("source_etag"), "version_id": job.get("source_version_id"),
                   "after": job.get("source_after") or "keep", "state": job.get("source_state"),
                   "owner": job.get("source_owner")},
        "probe": job.get("probe"),
        "work": job.get("work"),
        "renditions": renditions,
        "tasks": [_task_view(t) for t in tasks],
        "chunks": {"total": len(chunks), "published": int(job.get("published_chunks") or 0)},
        "outputs": job_outputs(job, tasks, output_bucket, base_url),
        "settings": redact_settings(job.get("settings")),  # a webhook URL's tokens stay in the item
        "dropped_rungs": job.get("dropped_rungs") or [],
        "skipped_subtitles": job.get("skipped_subtitles") or [],
        "conversions": job.get("conversions") or [],
        "metadata": metadata_of(job),
        "error": job.get("error"),
        "uploaded_at": job.get("uploaded_at"),
        "created_at": job.get("created_at"),
        "updated_at": job.get("updated_at"),
        "poster_at": job.get("poster_at"),
        "playable_at": job.get("playable_at"),
        "watchable_at": watchable_at(job),
        "time_to_playable": time_to_playable(job, tasks),
        "completed_at": job.get("completed_at"),
    }
