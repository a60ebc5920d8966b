"""Chunk task: decode one span of the source once and encode it to every video rendition,
with a checkpoint per segment per rendition, the sprite tiles of the span and, in the chunk
that holds ``poster_time``, the poster (published with ``ThumbnailReady`` as soon as ffmpeg
has written it, while the chunk goes on encoding).

A killed or stopped chunk task resumes at the first segment not yet recorded for every
rendition (docs/chunking-and-resume.md: at the boundary after that rendition's last checkpointed frame);
renditions that were further along drop the segments the resumed run makes again.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict
from typing import Any, Callable

from chalicelib.aws.table import now_iso
from chalicelib.domain import chunks, ffmpeg_args
from chalicelib.domain.frame_size import FRAME_SIZE_CHANGED, frame_size_change
from chalicelib.domain.conversions import PicturePlan
from chalicelib.domain import jobs
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.ladder import ThumbnailPlan, VideoRendition
from chalicelib.domain.media import decoder_max_pixels, refused_picture_size
from chalicelib.domain.playlist import h264_codec_string
from chalicelib.domain.presentation import chunk_end_seconds
from chalicelib.domain.thumbnails import poster_in, tiles_in
from chalicelib.tools import ffmpeg

from .checkpoints import ChunkUploader
from .context import Context
from .encode_runtime import EncodeRuntime

log = logging.getLogger("vodpipe.transcode")

#: A chunk whose decoded video ends short of its planned end by more than this fraction of
#: the source's duration (and at least TRUNCATION_MIN_SECONDS) is truncated: ffmpeg exits 0
#: on such files.
TRUNCATION_FRACTION = 0.10
TRUNCATION_MIN_SECONDS = 0.5


def _fields(cls, spec: dict) -> dict:
    names = cls.__dataclass_fields__.keys()
    return {k: spec[k] for k in names if k in spec}


def publish_poster(ctx: Context, job_id: str, msg: dict[str, Any], path: str) -> None:
    """Upload the poster at ``path`` as ``thumbnails/poster.jpg`` under the job's prefix and,
    the first time for the job (``poster_at``, a conditional write), publish
    ``ThumbnailReady`` with its location."""
    s = ctx.settings
    key = jobs.output_key(jobs.output_prefix(msg), "thumbnails", "poster.jpg")
    ctx.objects.upload_file(path, s.output_bucket, key)
    if ctx.store.set_once(job_id, "poster_at", now_iso()):
        base = f"{s.output_base_url.rstrip('/')}/" if s.output_base_url else None
        ctx.events.publish("ThumbnailReady", job_id, jobs.PROCESSING, {
            "poster": {"uri": f"s3://{s.output_bucket}/{key}", **({"url": base + key} if base else {})}},
            msg.get("metadata"))


def check_frame_size(res: ffmpeg.RunResult, frame_size: tuple[int, int] | None, max_pixels: int) -> None:
    """Fail a chunk run whose decoded frames were not all the probed ``frame_size`` (the
    graph's guard, ``frame_size.frame_size_guard``, stopped ffmpeg at the first other size),
    or held a picture over the decoders' cap (``media.decoder_max_pixels`` of ``max_pixels``:
    refused, never allocated). Raises ``PermanentError`` ``FRAME_SIZE_CHANGED``: retrying
    cannot help, the job fails, the worker goes on."""
    changed = frame_size_change(res.stderr) if res.returncode != 0 else None
    refused = refused_picture_size(res.stderr.splitlines())
    if refused and refused[0] * refused[1] <= max_pixels:  # e.g. "0x0 is invalid": a corrupt header
        refused = None
    if not changed and not refused:
        return
    probed = f"{frame_size[0]}x{frame_size[1]}" if frame_size else "its first frame's size"
    if changed:
        detail = f"a frame of {changed[0]}x{changed[1]}"
    else:
        detail = (f"a frame of {refused[0]}x{refused[1]} (over the deployment's {max_pixels} pixels a frame; "
                  f"refused before it was decoded)")
    raise PermanentError(FRAME_SIZE_CHANGED,
                         f"the video changes picture size mid-stream: probed at {probed}, then {detail}; vodpipe "
                         f"encodes files whose frames all have one size (re-export the video at one resolution)")


def encode_chunk(runner: EncodeRuntime, url: str, out_dir: str, job_id: str, msg: dict[str, Any],
                 on_progress: Callable[[float], None]) -> tuple[dict, tuple[float, float]]:
    """Encode (or resume) the chunk of ``msg`` and return (stats to record on the task,
    (ffmpeg seconds, ffmpeg CPU seconds)).

    Stats: ``codecs`` and ``quality`` ({psnr_y dB, ssim_y when asked for, frames}) by rendition, ``tiles``
    (the ``TileRun`` of its sprite sheet, or None), ``total_bytes`` of its segments.
    Raises ``PermanentError`` ``TRUNCATED_MEDIA`` / ``NO_DECODABLE_FRAMES`` when the source
    holds less video than probed, ``FRAME_SIZE_CHANGED`` when a frame is not the probed size
    (``check_frame_size``), and what ``runner.ffmpeg`` / ``runner.raise_if_interrupted`` raise."""
    ctx, s = runner.ctx, runner.ctx.settings
    spec = msg["spec"]
    name, duration = msg["task"], float(msg["duration"])
    renditions = [VideoRendition(**_fields(VideoRendition, r)) for r in spec["renditions"]]
    thumbs = ThumbnailPlan(**_fields(ThumbnailPlan, spec["thumbnails"])) if spec.get("thumbnails") else None
    index, first_segment, last = int(spec["index"]), int(spec["first_segment"]), bool(spec["last"])
    chunk_start, end = float(spec["start"]), duration if spec["last"] else float(spec["end"])
    stored = ctx.checkpoints.of_task(job_id, name)
    recorded = {r.name: list(stored.get(r.name) or []) for r in renditions}
    behind = min(renditions, key=lambda r: len(recorded[r.name]))
    done = len(recorded[behind.name])
    lead = float(msg.get("lead_segment") or 0)  # a short first segment (jobs before it: none)
    phase = ffmpeg_args.grid_phase(lead)
    start = ffmpeg_args.resume_point(float(recorded[behind.name][-1]["last_frame"]), phase) if done else chunk_start
    finished = bool(done) and chunk_end_seconds(recorded[behind.name]) >= end - 0.05
    if done:
        log.info("resuming %s/%s at segment %d (%.3f s)", job_id, name, first_segment + done, start)
        ctx.store.update_task(job_id, name, resumed_at_segment=first_segment + done, resumed_at_seconds=start)
    tiles = tiles_in(thumbs, index, start, end, last) if thumbs and not finished else None
    fps = float(behind.frame_rate or msg.get("frame_rate") or 30)
    poster = poster_in(thumbs, chunk_start, start, end, last, fps) if thumbs and not finished else None
    if poster and ctx.store.get_job_field(job_id, "poster_at"):  # an earlier run published it
        poster = None
    segment_seconds = int(msg.get("segment_duration") or ffmpeg_args.SEGMENT_SECONDS)
    picture = PicturePlan.from_dict(spec["picture"]) if spec.get("picture") else None
    guarded = spec.get("coded_frame_size") if picture else spec.get("frame_size")  # older ingests: none
    frame_size = tuple(guarded) if guarded else None
    end_segment = None if last else ffmpeg_args.segment_of(end, segment_seconds, lead)
    uploader = ChunkUploader(ctx, job_id, name, out_dir, recorded, runner.canceled, 1.0 / fps, first_segment, end_segment,
                             jobs.output_prefix(msg), segment_seconds, lead)
    res = None
    if not finished:
        for r in renditions:
            os.makedirs(os.path.join(out_dir, r.name), exist_ok=True)
        length = max(end - start, 0.001)
        warmup = ffmpeg_args.preroll(start, fps)

        def progress(pct: float) -> None:  # pct of the run, preroll included
            whole = max(end - chunk_start, 0.001)
            encoded = max(0.0, pct / 100.0 * (length + warmup) - warmup)
            on_progress(round(100.0 * (start - chunk_start + encoded) / whole, 1) if pct < 100 else 100.0)

        args = ffmpeg_args.chunk_args(url, out_dir, renditions, start, end, last, s.x264_preset, s.ffmpeg_threads, s.rate_control,
                            tiles, spec.get("quality_metrics", ("psnr",)), frame_rate=fps, poster=poster,
                            frame_size=frame_size, max_pixels=decoder_max_pixels(s.max_pixels), picture=picture,
                            phase=phase)
        if poster:
            uploader.watch(os.path.join(out_dir, poster.file_name), lambda path: publish_poster(ctx, job_id, msg, path))
        uploader.start()
        res = None
        try:
            res = runner.ffmpeg(args, length + warmup, progress, f"chunk {name}", url, check_result=False,
                                measure_quality=True, niceness=chunks.encode_niceness(int(msg.get("index") or 0)))
        finally:
            uploader.finish(ended=res is not None and res.returncode == 0 and not runner.interrupted)
        runner.raise_if_interrupted(job_id, name)
        check_frame_size(res, frame_size, s.max_pixels)
        ffmpeg.check(res, f"chunk {name}", url)
        if uploader.pending_side_outputs:  # its window held no decodable frame; the job goes on without
            log.warning("chunk %s/%s made no poster from %.2f s", job_id, name, poster.time if poster else -1)
    reached = min(chunk_end_seconds(uploader.recorded[r.name]) for r in renditions)
    if not any(uploader.recorded[r.name] for r in renditions):
        if chunk_start > 0:
            raise PermanentError("TRUNCATED_MEDIA", f"no video could be decoded after {chunk_start:.2f} s of the "
                                                    f"{duration:.2f} s file (the file is truncated or corrupt)")
        raise PermanentError("NO_DECODABLE_FRAMES", "no video frame could be decoded")
    if end - reached > max(TRUNCATION_MIN_SECONDS, TRUNCATION_FRACTION * duration):
        raise PermanentError("TRUNCATED_MEDIA", f"only {reached:.2f} s of the {duration:.2f} s video could be decoded "
                                                f"(the file is truncated or corrupt)")
    codecs = dict(uploader.codecs)
    for r in renditions:  # a run that made no new segment of a rendition: read the stored one
        if r.name not in codecs:
            first = ffmpeg_args.SEGMENT_PATTERN % int(uploader.recorded[r.name][0]["index"])
            codecs[r.name] = h264_codec_string(ctx.objects.get_bytes(
                s.output_bucket, jobs.output_key(jobs.output_prefix(msg), r.name, first))) or "avc1.640028"
    quality = {}
    for r, measured in zip(renditions, res.encoder_quality if res else []):
        if measured:
            quality[r.name] = {**measured, "frames": sum(int(x["frames"]) for x in uploader.recorded[r.name])}
    sheet = os.path.join(out_dir, tiles.file_name) if tiles else None
    if sheet and os.path.exists(sheet):
        ctx.objects.upload_file(sheet, s.output_bucket, jobs.output_key(jobs.output_prefix(msg), "thumbnails", tiles.file_name))
    else:
        tiles = None
    seconds, cpu = (res.seconds, res.cpu_seconds) if res else (0.0, 0.0)
    stats = {"codecs": codecs, "quality": quality, "tiles": asdict(tiles) if tiles else None,
             "total_bytes": sum(int(x["bytes"]) for segs in uploader.recorded.values() for x in segs),
             "transcode_seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2)}
    return stats, (seconds, cpu)
