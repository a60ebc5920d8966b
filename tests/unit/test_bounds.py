"""Bounded work: no ffmpeg run and no task message lives forever.

GIVEN a run that would take far longer than its bound (a real-time encode of a looped clip)
WHEN its wall-clock bound passes THEN ffmpeg is killed and RunTimeout (transient, named
TASK_TIMEOUT) is raised; a heartbeat stops extending a message past its cap and reports it."""
import threading
import time

import pytest

from chalicelib.domain import ffmpeg_args as A
from chalicelib.domain.errors import RunTimeout, describe
from chalicelib.tools import ffmpeg
from chalicelib.worker import Heartbeat
from tests.conftest import media


def test_a_run_over_its_bound_is_killed(tmp_path):
    # -re reads at real time: 100 loops of a 5 s clip would take 500 s
    args = ["-re", "-stream_loop", "100", *A.confined_input(str(media("flower.mp4"))), "-map", "0:v:0",
            "-c:v", "libx264", "-preset", "ultrafast", "-f", "null", "-"]
    started = time.monotonic()
    with pytest.raises(RunTimeout) as err:
        ffmpeg.FfmpegProcess().run(args, 500.0, timeout=1.5)
    assert time.monotonic() - started < 10
    assert describe(err.value)["code"] == "TASK_TIMEOUT"


def test_time_limit_follows_duration_and_minimum_speed():
    assert A.run_time_limit(60, 0.05, 120) == 1200.0   # 1 min of media at 1/20 real time
    assert A.run_time_limit(2, 0.05, 120) == 120.0     # never under the floor
    assert A.read_limit(10) == 12.5                    # -t: 5 % + 2 s past the probed duration


class FakeQueues:
    def __init__(self):
        self.extensions = 0

    def change_visibility(self, queue, receipt, seconds):
        self.extensions += 1


class FakeCtx:
    def __init__(self):
        self.queues = FakeQueues()
        self.settings = type("S", (), {"tasks_queue": "q"})()


def test_heartbeat_stops_extending_past_its_cap():
    ctx, overdue = FakeCtx(), threading.Event()
    beat = Heartbeat(ctx, "q", "receipt", timeout=3, max_seconds=2.5, on_overdue=overdue.set)
    beat.start()
    assert overdue.wait(10), "the cap was reported"
    beat.join(5)
    assert not beat.is_alive() and ctx.queues.extensions == 2  # at 1 s and 2 s, then no more
