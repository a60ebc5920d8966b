"""The frame-size guard of a chunk run: every decoded frame must have the probed size (a
stream that changes picture size mid-way fails its job ``FRAME_SIZE_CHANGED``). Pure: filter
text and log parsing; ``ffmpeg_args.chunk_args`` puts the guard at the head of the graph.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

#: The code a chunk run fails with when a decoded frame is not the probed size.
FRAME_SIZE_CHANGED = "FRAME_SIZE_CHANGED"


def frame_size_of(probe: Mapping[str, Any], autorotate: bool = True) -> tuple[int, int] | None:
    """The size of the frames the chunk's filter graph receives, from the job's ``probe``
    (``MediaInfo.to_dict``): the coded width x height, swapped for a 90/270 degree rotation
    when ffmpeg's autorotate runs before the graph (``autorotate=False``: the graph orients
    them itself, ``conversions``; the sample aspect ratio is left to ``scale``). None when
    the probe has no size."""
    width, height = int(probe.get("width") or 0), int(probe.get("height") or 0)
    if not width or not height:
        return None
    return (height, width) if autorotate and int(probe.get("rotation") or 0) in (90, 270) else (width, height)


def frame_size_guard(width: int, height: int) -> str:
    """A filter that passes frames of exactly ``width`` x ``height`` unchanged and fails the
    run on any other size: ``crop`` to the input's own size, whose width is evaluated (at the
    graph's configuration: the first frame, and again whenever ffmpeg reconfigures the graph
    for a frame of another size) as ``-iw`` unless the input is the expected size. ffmpeg 5.1
    then exits 1 at that frame with "Invalid too big or non positive size for width '-<new
    width>' or height '<new height>'" and "Error reinitializing filters!" (measured on two
    H.264 streams of 320x240 and 640x480 joined as MPEG-TS: the scale filters alone reinit
    silently and go on encoding the new size). ``frame_size_change`` reads the new size back."""
    return f"crop=w='if(eq(iw\\,{width})*eq(ih\\,{height})\\,iw\\,-iw)':h=ih:x=0:y=0:exact=1"


def frame_size_change(log: str) -> tuple[int, int] | None:
    """The size of the frame ``frame_size_guard`` refused, from a run's error lines, or None."""
    m = re.search(r"Invalid too big or non positive size for width '-(\d+)' or height '(\d+)'", log)
    return (int(m.group(1)), int(m.group(2))) if m else None
