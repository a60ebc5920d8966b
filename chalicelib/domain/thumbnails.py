"""Sprite-sheet thumbnails and their WebVTT track (the "image track" convention that JW
Player, Video.js and Shaka read: each cue's text is ``<sheet>#xywh=x,y,w,h``, W3C Media
Fragments URI §4.2.1 spatial dimension).

Tile ``k`` shows the first frame at or after ``k * interval`` seconds. Each chunk task picks
the tiles whose times fall in its span from the frames it decodes anyway, and writes them as
one sheet (``sprite_<chunk>.jpg``, row-major, at most ``columns`` per row); the track maps
every tile to its sheet and cell, so no task decodes the source again for thumbnails. The
poster comes from the same decode: the chunk that holds ``poster_time`` adds one more branch
(``poster_in``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .ladder import ThumbnailPlan


def _timestamp(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


@dataclass(frozen=True)
class TileRun:
    """The tiles one chunk picks: ``first`` (index of its first tile) and ``count`` tiles,
    the first at ``first_time`` seconds of the source, then every ``interval`` seconds;
    ``width`` x ``height`` pixels each, laid out ``columns`` x ``rows`` in ``file_name``."""

    first: int
    count: int
    first_time: float
    interval: float
    width: int
    height: int
    columns: int
    rows: int
    file_name: str


def sheet_name(chunk_index: int) -> str:
    """File name of a chunk's sprite sheet: ``sprite_000.jpg``..."""
    return f"sprite_{chunk_index:03d}.jpg"


def tiles_in(plan: ThumbnailPlan, chunk_index: int, start: float, end: float, last: bool) -> TileRun | None:
    """The tiles whose times ``k * interval`` fall in ``[start, end)`` seconds (every
    remaining tile of the plan for the ``last`` chunk), or None when there are none."""
    first = math.ceil(round(start / plan.interval, 6))
    stop = plan.count if last else min(plan.count, math.ceil(round(end / plan.interval, 6)))
    count = stop - first
    if count <= 0:
        return None
    columns = min(plan.columns, count)
    return TileRun(first=first, count=count, first_time=first * plan.interval, interval=plan.interval,
                   width=plan.width, height=plan.height, columns=columns, rows=math.ceil(count / columns),
                   file_name=sheet_name(chunk_index))


#: Seconds of frames the poster is picked from, starting at ``poster_time``.
POSTER_WINDOW_SECONDS = 2.0
POSTER_FILE = "poster.jpg"


def poster_window(frame_rate: float) -> int:
    """Frames the ``thumbnail`` filter compares for the poster: ``POSTER_WINDOW_SECONDS`` at
    ``frame_rate`` frames/s (25 when unknown), 2 to 100 (the filter's bounds)."""
    return max(2, min(100, int(round((frame_rate or 25) * POSTER_WINDOW_SECONDS))))


@dataclass(frozen=True)
class PosterRun:
    """The poster a chunk run picks: the most representative frame (ffmpeg's ``thumbnail``
    filter, which avoids black and transition frames) of ``frames`` frames from ``time``
    seconds of the source, scaled to ``width`` x ``height`` pixels, written as ``file_name``."""

    time: float
    frames: int
    width: int
    height: int
    file_name: str = POSTER_FILE


def poster_in(plan: ThumbnailPlan, chunk_start: float, run_start: float, end: float, last: bool,
              frame_rate: float) -> PosterRun | None:
    """The poster of the chunk ``[chunk_start, end)`` (s) when ``plan.poster_time`` falls in it
    (or after it, for the ``last`` chunk), else None. A run resumed at ``run_start`` past
    ``poster_time`` picks from its own first frames instead."""
    if plan.poster_time < chunk_start or (plan.poster_time >= end and not last):
        return None
    return PosterRun(time=max(plan.poster_time, run_start), frames=poster_window(frame_rate),
                     width=plan.poster_width, height=plan.poster_height)


def sprite_vtt(plan: ThumbnailPlan, duration: float, runs: Sequence[TileRun]) -> str:
    """WebVTT text with one cue per tile: cue ``k`` covers [k*interval, min((k+1)*interval,
    duration)) seconds and points at the tile's cell in its chunk's sheet. ``runs`` in
    order; tiles of a missing run get no cue."""
    lines = ["WEBVTT", ""]
    for run in runs:
        for j in range(run.count):
            k = run.first + j
            start, end = k * plan.interval, min((k + 1) * plan.interval, duration)
            if end <= start:
                break
            x, y = (j % run.columns) * run.width, (j // run.columns) * run.height
            lines += [f"{_timestamp(start)} --> {_timestamp(end)}",
                      f"{run.file_name}#xywh={x},{y},{run.width},{run.height}", ""]
    return "\n".join(lines)
