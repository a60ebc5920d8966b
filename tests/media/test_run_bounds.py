"""Bounded work, for real: GIVEN a run that would take far longer than its bound (a real-time
encode of a looped clip) WHEN its wall-clock bound passes THEN ffmpeg is killed and RunTimeout
(transient, named TASK_TIMEOUT) is raised. (The heartbeat's cap: tests/unit/test_bounds.py.)"""
import time

import pytest

from chalicelib.domain import ffmpeg_args
from chalicelib.domain.errors import RunTimeout, describe
from chalicelib.tools import ffmpeg
from tests.conftest import media


def test_a_run_over_its_bound_is_killed(tmp_path):
    # -re reads at real time: 100 loops of a 5 s clip would take 500 s
    args = ["-re", "-stream_loop", "100", *ffmpeg_args.confined_input(str(media("flower.mp4"))), "-map", "0:v:0",
            "-c:v", "libx264", "-preset", "ultrafast", "-f", "null", "-"]
    started = time.monotonic()
    with pytest.raises(RunTimeout) as err:
        ffmpeg.FfmpegProcess().run(args, 500.0, timeout=1.5)
    assert time.monotonic() - started < 10
    assert describe(err.value)["code"] == "TASK_TIMEOUT"


def test_a_niced_run_has_every_ffmpeg_thread_at_that_niceness():
    from pathlib import Path
    seen: dict[int, int] = {}
    process = ffmpeg.FfmpegProcess()

    def sample(_percent):  # while it runs: the nice value (field 19 of stat) of each thread
        for task in Path(f"/proc/{process._proc.pid}/task").glob("*"):
            try:
                seen[int(task.name)] = int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
            except (OSError, IndexError):
                pass
    args = [*ffmpeg_args.confined_input(str(media("flower.mp4"))), "-map", "0:v:0", "-c:v", "libx264",
            "-preset", "ultrafast", "-threads", "2", "-f", "null", "-"]
    result = process.run(args, 5.0, on_progress=sample, niceness=10)
    assert result.returncode == 0
    assert len(seen) > 1 and set(seen.values()) == {10}, seen


def test_a_running_ffmpeg_can_yield_the_cpu():
    """``FfmpegProcess.renice`` lowers the priority of every thread of a run under way (the
    audio task once its first seconds are published)."""
    from pathlib import Path
    process = ffmpeg.FfmpegProcess()
    seen: dict[int, int] = {}
    calls = []

    def sample(_percent):
        if not calls:
            calls.append(process.renice(19))
            return
        for task in Path(f"/proc/{process._proc.pid}/task").glob("*"):
            try:
                seen[int(task.name)] = int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
            except (OSError, IndexError):
                pass
    args = ["-re", *ffmpeg_args.confined_input(str(media("flower.mp4"))), "-map", "0:v:0", "-c:v", "libx264",
            "-preset", "ultrafast", "-threads", "2", "-f", "null", "-"]  # real time: ~10 progress reports
    assert process.run(args, 5.0, on_progress=sample).returncode == 0
    assert calls and len(seen) > 1 and set(seen.values()) == {19}, seen
    process.renice(19)  # no run going on: nothing happens

