"""Progress maths: ffmpeg ``-progress`` parsing, write throttling, weighted job progress.

Units: seconds and percent (0-100, floats rounded to 0.1).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping


class ProgressParser:
    """Incremental parser for ffmpeg's ``-progress`` output (``key=value`` lines, one block per
    update, ending ``progress=continue`` or ``progress=end``).

    ``feed(line)`` returns the percent of ``duration`` seconds processed when a block ends,
    else ``None``. Out-of-range and garbled values are ignored; the result never decreases.
    """

    def __init__(self, duration: float):
        self.duration = max(duration, 1e-6)
        self._out_time: float | None = None
        self.percent = 0.0
        self.speed: float | None = None
        self.finished = False

    def feed(self, line: str) -> float | None:
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        if key in ("out_time_us", "out_time_ms"):  # both are microseconds in ffmpeg
            try:
                us = int(value)
            except ValueError:
                return None
            if us >= 0:
                self._out_time = us / 1e6
        elif key == "speed":
            try:
                self.speed = float(value.rstrip("x"))
            except ValueError:
                pass
        elif key == "progress":
            if value == "end":
                self.finished = True
                self.percent = 100.0
            elif self._out_time is not None:
                self.percent = max(self.percent, min(99.9, round(100.0 * self._out_time / self.duration, 1)))
            return self.percent
        return None


@dataclass
class Throttle:
    """Decides when a progress value is worth writing: when it moved by ``min_step`` percent
    points or ``min_interval`` seconds passed since the last write (and it moved at all), and
    always for 100. ``clock`` values are seconds (monotonic)."""

    min_step: float = 10.0
    min_interval: float = 5.0
    last_value: float = -1.0
    last_time: float = field(default=float("-inf"))

    def should_write(self, value: float, now: float) -> bool:
        if value <= self.last_value:
            return False
        if value >= 100.0 or value - self.last_value >= self.min_step or now - self.last_time >= self.min_interval:
            self.last_value, self.last_time = value, now
            return True
        return False


#: Relative cost of the audio task, in "pixels" of a video rendition.
AUDIO_WEIGHT = 640 * 360 * 0.1


def task_weight(task: Mapping) -> float:
    """Estimated relative cost of one task: its ``weight`` when it has one (a chunk: the
    ladder's pixels x its share of the duration), a video rendition its pixel count; audio
    a fixed fraction of a 360p rendition."""
    if task.get("weight") is not None:
        return float(task["weight"])
    kind = task.get("kind")
    if kind == "video":
        return float(task["width"]) * float(task["height"])
    return AUDIO_WEIGHT


def job_progress(tasks: Iterable[Mapping]) -> float:
    """Weighted job progress (0-100) from its tasks' ``progress`` (a done task counts 100)."""
    total = done = 0.0
    for t in tasks:
        w = task_weight(t)
        p = 100.0 if t.get("status") == "complete" else float(t.get("progress") or 0)
        total += w
        done += w * min(max(p, 0.0), 100.0)
    return round(done / total, 1) if total else 0.0
