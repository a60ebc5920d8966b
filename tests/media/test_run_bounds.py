"""Bounded work, for real: GIVEN a run that would take far longer than its bound (a real-time
encode of a looped clip) WHEN its wall-clock bound passes THEN ffmpeg is killed and RunTimeout
(transient, named TASK_TIMEOUT) is raised. (The heartbeat's cap: tests/unit/test_bounds.py.)"""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chalicelib.domain import ffmpeg_args
from chalicelib.domain.errors import RunTimeout, describe
from chalicelib.tools import ffmpeg
from tests.conftest import ROOT, media


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


def test_a_niced_run_has_a_scheduling_group_of_its_own_at_that_niceness():
    """A nice value ranks threads only inside one scheduling group, and Linux gives each
    session a group of its own (autogroup): a niced ffmpeg leads a session whose group has that
    niceness, so it yields to other tasks' programs too (``chalicelib.tools.scheduling``)."""
    from pathlib import Path
    enabled = Path("/proc/sys/kernel/sched_autogroup_enabled")
    process = ffmpeg.FfmpegProcess()
    seen = []

    def sample(_percent):
        pid = process._proc.pid
        seen.append((os.getsid(pid) == pid, Path(f"/proc/{pid}/autogroup").read_text().split()[-1]
                     if enabled.exists() else None))
    args = ["-re", *ffmpeg_args.confined_input(str(media("flower.mp4"))), "-map", "0:v:0", "-t", "1", "-c:v",
            "libx264", "-preset", "ultrafast", "-f", "null", "-"]
    assert process.run(args, 1.0, on_progress=sample, niceness=10).returncode == 0
    assert seen and all(leader for leader, _ in seen), "its own session"
    if enabled.exists():  # a kernel built with autogroups (this machine's and CI's)
        assert {nice for _, nice in seen} == {"10"}, seen


def test_an_ffmpeg_does_not_outlive_the_worker_that_started_it(tmp_path):
    """In a session of its own, ffmpeg is outside its worker's process group; the kernel still
    ends it when the worker dies (``PR_SET_PDEATHSIG``): a killed worker leaves no encoder
    writing into a task another worker has taken over."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys\n"
        "from chalicelib.domain import ffmpeg_args\n"
        "from chalicelib.tools import ffmpeg\n"
        "process = ffmpeg.FfmpegProcess()\n"
        "def report(_percent):\n"
        "    print(process._proc.pid, flush=True)\n"
        f"args = ['-re', '-stream_loop', '100', *ffmpeg_args.confined_input({str(media('flower.mp4'))!r}), '-map', '0:v:0',\n"
        "        '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'null', '-']\n"
        "process.run(args, 500.0, on_progress=report, niceness=10)\n")
    worker = subprocess.Popen([sys.executable, str(script)], cwd=str(ROOT), stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        encoder = int(worker.stdout.readline())
        assert os.getsid(encoder) == encoder != os.getpgid(worker.pid)
        worker.kill()
        worker.wait(timeout=10)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{encoder}").exists() and _state(encoder) != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the kernel's kill, bounded by the deadline
        assert not Path(f"/proc/{encoder}").exists() or _state(encoder) == "Z", "ffmpeg outlived its worker"
    finally:
        worker.kill()


def test_an_ffmpeg_is_ended_when_its_progress_report_fails():
    """A progress callback that raises (a lost connection to the job table) ends the run: the
    error reaches the caller and ffmpeg, in a session of its own, is killed and reaped, not
    left encoding beside the next task."""
    process = ffmpeg.FfmpegProcess()
    pids = []

    def report(_percent):
        pids.append(process._proc.pid)
        raise RuntimeError("progress write failed")
    args = ["-re", "-stream_loop", "100", *ffmpeg_args.confined_input(str(media("flower.mp4"))), "-map", "0:v:0",
            "-c:v", "libx264", "-preset", "ultrafast", "-f", "null", "-"]
    with pytest.raises(RuntimeError, match="progress write failed"):
        process.run(args, 500.0, on_progress=report, niceness=10)
    assert pids and not Path(f"/proc/{pids[0]}").exists(), "ffmpeg outlived its run"


def _state(pid: int) -> str:
    """The one-letter state of process ``pid`` (``Z``: a zombie, dead but not reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
