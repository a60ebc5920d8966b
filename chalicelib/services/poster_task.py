"""Poster task: one representative frame near the start, found by seeking (no decode of the
whole source), announced with ``ThumbnailReady`` as soon as it exists. The sprite tiles come
from the chunk tasks' decode (``chalicelib.domain.thumbnails``)."""
from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chalicelib.domain import ffmpeg_args as A
from chalicelib.domain import jobs as J
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.ladder import ThumbnailPlan

if TYPE_CHECKING:
    from .transcode import TaskRunner


def make_poster(runner: "TaskRunner", url: str, out_dir: str, job_id: str, msg: dict[str, Any]) -> tuple[dict, tuple[float, float]]:
    """Make and upload ``thumbnails/poster.jpg``; publish ``ThumbnailReady``. Returns (stats,
    (ffmpeg seconds, CPU seconds)). Raises ``PermanentError`` ``NO_DECODABLE_FRAMES`` when no
    frame decodes."""
    ctx, s = runner.ctx, runner.ctx.settings
    t = ThumbnailPlan(**{k: msg["spec"][k] for k in ThumbnailPlan.__dataclass_fields__})
    fps = float(msg.get("frame_rate") or 25)
    poster = os.path.join(out_dir, "poster.jpg")
    res = runner.ffmpeg(A.poster_args(url, poster, t, fps), 1.0, None, "poster", url)
    seconds, cpu = res.seconds, res.cpu_seconds
    if not os.path.exists(poster):  # seek past the last decodable frame: take the first frame instead
        res = runner.ffmpeg(A.poster_args(url, poster, replace(t, poster_time=0.0), fps), 1.0, None, "poster", url)
        seconds, cpu = seconds + res.seconds, cpu + res.cpu_seconds
    if not os.path.exists(poster):  # ffmpeg succeeded but decoded no frame
        raise PermanentError("NO_DECODABLE_FRAMES", "no frame could be decoded for the poster")
    key = J.output_key(J.output_prefix(msg), "thumbnails", "poster.jpg")
    size = ctx.objects.upload_file(poster, s.output_bucket, key)
    base = f"{s.output_base_url.rstrip('/')}/" if s.output_base_url else None
    ctx.events.publish("ThumbnailReady", job_id, J.PROCESSING, {
        "poster": {"uri": f"s3://{s.output_bucket}/{key}", **({"url": base + key} if base else {})}}, msg.get("metadata"))
    return ({"total_bytes": size, "transcode_seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2)}, (seconds, cpu))
