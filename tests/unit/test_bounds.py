"""Bounded work: no task message lives forever (the ffmpeg run's own bound, killed for real, is
in tests/media/test_run_bounds.py).

GIVEN a message's heartbeat WHEN its cap passes THEN it stops extending the message and
reports it; the time limits follow the media's duration."""
from chalicelib import worker
from chalicelib.domain import ffmpeg_args
from chalicelib.worker import Heartbeat


def test_time_limit_follows_duration_and_minimum_speed():
    assert ffmpeg_args.run_time_limit(60, 0.05, 120) == 1200.0   # 1 min of media at 1/20 real time
    assert ffmpeg_args.run_time_limit(2, 0.05, 120) == 120.0     # never under the floor
    assert ffmpeg_args.read_limit(10) == 12.5                    # -t: 5 % + 2 s past the probed duration


class FakeClock:
    """Time that passes only while the heartbeat waits (its halt event's ``wait``), never halted."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def wait(self, seconds):
        self.now += seconds
        return False

    def set(self):
        raise AssertionError("nothing stops this heartbeat but its cap")


class FakeQueues:
    def __init__(self, clock):
        self.clock, self.extensions = clock, []

    def change_visibility(self, queue, receipt, seconds):
        self.extensions.append((self.clock.now, seconds))


class FakeCtx:
    def __init__(self, clock):
        self.queues = FakeQueues(clock)
        self.settings = type("S", (), {"tasks_queue": "q"})()


def test_heartbeat_stops_extending_past_its_cap(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(worker, "time", clock)  # the heartbeat's clock, not the process's
    ctx, overdue = FakeCtx(clock), []
    beat = Heartbeat(ctx, "q", "receipt", timeout=3, max_seconds=2.5, on_overdue=lambda: overdue.append(clock.now))
    beat._halt = clock
    beat.run()  # in this thread: returns once the cap is reported
    assert ctx.queues.extensions == [(1.0, 3), (2.0, 3)]  # every timeout / 3 s, to the timeout, then no more
    assert overdue == [3.0], "the cap was reported once, at the first beat past it"
