"""WebVTT thumbnails track for a sprite sheet (the "image track" convention that JW Player,
Video.js and Shaka read: each cue's text is ``sprite.jpg#xywh=x,y,w,h``, W3C Media Fragments
URI §4.2.1 spatial dimension)."""
from __future__ import annotations

from .ladder import ThumbnailPlan


def _timestamp(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def sprite_vtt(plan: ThumbnailPlan, duration: float, sprite_uri: str = "sprite.jpg") -> str:
    """WebVTT text with one cue per tile: cue ``i`` covers [i*interval, min((i+1)*interval,
    duration)) seconds and points at tile ``i`` (row-major) of the sprite sheet."""
    lines = ["WEBVTT", ""]
    for i in range(plan.count):
        start = i * plan.interval
        end = min((i + 1) * plan.interval, duration)
        if end <= start:
            break
        x, y = (i % plan.columns) * plan.width, (i // plan.columns) * plan.height
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}", f"{sprite_uri}#xywh={x},{y},{plan.width},{plan.height}", ""]
    return "\n".join(lines)
