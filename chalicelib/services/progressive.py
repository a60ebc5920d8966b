"""Progressive files at completion: an MP4 per requested rung (``outputs.mp4``) and an M4A of
the audio rendition (``outputs.audio``), remuxed from the HLS segments the tasks already made
(no second encode), ``moov`` first, under ``<output prefix>/mp4/<rung>.mp4`` and
``<output prefix>/audio/audio.m4a``.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any

from chalicelib.domain import ffmpeg_args
from chalicelib.domain import track_args
from chalicelib.domain import jobs
from chalicelib.domain.presentation import rendition_entries
from chalicelib.tools import ffmpeg

from .context import Context

log = logging.getLogger("vodpipe.transcode")


def planned(job: dict[str, Any], tasks: list[dict]) -> dict[str, dict]:
    """The progressive files a job asked for, by name: ``{"720p.mp4": {"video": "720p",
    "audio": "audio"|None, "key"}}``: each MP4 carries the default audio track; ``outputs.audio``
    adds ``<rendition>.m4a`` for every audio rendition (``audio/audio.m4a``,
    ``audio_1/audio_1.m4a`` ...). Rungs dropped by never-upscale get none (they are in
    ``dropped_rungs``); a source without audio gets silent MP4s and no M4A."""
    outputs = (job.get("settings") or {}).get("outputs") or {}
    prefix = jobs.output_prefix(job)
    ladder = {r["name"] for r in job.get("ladder") or []}
    audios = sorted((t for t in tasks if t.get("kind") == "audio"), key=lambda t: (not t.get("default", True), t["name"]))
    audio = audios[0]["name"] if audios else None  # the default track
    files = {f"{name}.mp4": {"video": name, "audio": audio, "key": jobs.output_key(prefix, "mp4", f"{name}.mp4")}
             for name in outputs.get("mp4") or [] if name in ladder}
    if outputs.get("audio"):
        for track in audios:  # one M4A per audio rendition, in its own folder
            files[f"{track['name']}.m4a"] = {"video": None, "audio": track["name"],
                                              "key": jobs.output_key(prefix, track["name"], f"{track['name']}.m4a")}
    return files


def _join(ctx: Context, bucket: str, keys: list[str], path: str) -> None:
    """Concatenate the MPEG-TS segments at ``keys`` into ``path`` (segments of one rendition
    join by bytes: docs/chunking-and-resume.md)."""
    with open(path, "wb") as out:
        for key in keys:
            out.write(ctx.objects.get_bytes(bucket, key))


def _segment_keys(prefix: str, rendition: str, tasks: list[dict]) -> list[str]:
    """Keys of a rendition's segments in order: the audio task's, or the chunks' checkpoints
    as the published playlist lists them (``presentation.rendition_entries``)."""
    audio = next((t for t in tasks if t.get("kind") == "audio" and t["name"] == rendition), None)
    if audio is not None:
        names = [ffmpeg_args.SEGMENT_PATTERN % i for i in range(len(audio.get("extinf") or []))]
    else:
        chunks = sorted((t for t in tasks if t.get("kind") == "chunk"), key=lambda t: int(t["index"]))
        names = [uri for uri, _ in rendition_entries(chunks, rendition)[0]]
    return [jobs.output_key(prefix, rendition, name) for name in names]


def make_files(ctx: Context, job: dict[str, Any], tasks: list[dict], workdir: str | None = None) -> dict[str, dict]:
    """Remux and upload every planned progressive file; return ``{name: {key, bytes,
    duration (s, the file's own), content_type}}`` for the job's ``files``. Raises what
    ``ffmpeg.check`` raises for a failed remux (the task is retried)."""
    wanted = planned(job, tasks)
    if not wanted:
        return {}
    bucket, prefix = ctx.settings.output_bucket, jobs.output_prefix(job)
    folder = tempfile.mkdtemp(prefix=f"vodpipe-{job['job_id']}-files-", dir=workdir)
    made: dict[str, dict] = {}
    try:
        joined: dict[str, str] = {}
        for spec in wanted.values():
            for rendition in (spec["video"], spec["audio"]):
                if rendition and rendition not in joined:
                    joined[rendition] = os.path.join(folder, f"{rendition}.ts")
                    _join(ctx, bucket, _segment_keys(prefix, rendition, tasks), joined[rendition])
        for name, spec in wanted.items():
            out = os.path.join(folder, name)
            args = track_args.progressive_args(joined.get(spec["video"]) if spec["video"] else None,
                                      joined.get(spec["audio"]) if spec["audio"] else None, out)
            res = ffmpeg.FfmpegProcess().run(args, float((job.get("probe") or {}).get("duration") or 1))
            ffmpeg.check(res, f"progressive file {name}")
            duration = float(ffmpeg.probe(out)["format"]["duration"])
            size = ctx.objects.upload_file(out, bucket, spec["key"])
            made[name] = {"key": spec["key"], "bytes": size, "duration": round(duration, 3),
                          "content_type": jobs.content_type_for(name)}
            log.info("job %s: %s made (%d bytes, %.3f s)", job["job_id"], name, size, duration)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return made
