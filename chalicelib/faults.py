"""Fault injection for tests and failure drills. A no-op unless ``VODPIPE_FAULTS_FILE`` names
a file; the file is re-read at every check, so removing it (or a line) ends the fault.

One rule a line: ``<point> <count|always> [substring]``: the first ``count`` calls at
``point`` whose detail contains ``substring`` (in this process) raise ``TransientError``.
Points: ``s3_upload`` (detail: the object key, in ``Objects.upload_file``), ``task_start``
(detail: ``<job_id>/<task>``, before a worker starts ffmpeg) and ``ingest`` (detail: the
uploaded key, before ingest reads the object).

``kill <point> <count> [substring]`` kills the calling process and its process group with
SIGKILL instead (a crash at that instant: the task's container dies; its ffmpeg runs die with it), the first ``count``
times counted across processes (from the ``.fired`` file: a replaced worker does not die
again). The write boundaries of the task path are kill points: ``task_started`` (lease taken,
job ``processing``), ``checkpoint_written`` (a batch of segment checkpoints recorded) and
``task_completed`` (the task and the job's ``done`` set written, before publishing) and
``task_failed`` (a permanent failure written on the task, before the job's), with the
detail ``<job_id>/<task>``; ``presentation_published`` (playlists and the job's ``variants``
written) and ``job_completed`` (the status written ``complete``, before the source is handled
and ``JobCompleted`` announced), with the detail ``<job_id>``. Example::

    s3_upload 2 /360p/seg_00001.ts
    task_start always /chunk-000
    kill task_completed 1 3f2a9c/chunk-000

Every fault that fires appends ``<point> <detail>`` to ``<faults file>.fired``, so a test can
assert that the fault it set up really happened.
"""
from __future__ import annotations

import os
import signal
import threading
from collections import Counter

from chalicelib.config import faults_file
from chalicelib.domain.errors import TransientError

_counts: Counter = Counter()
_lock = threading.Lock()


def check(point: str, detail: str = "") -> None:
    """Raise ``TransientError`` if a rule for ``point`` matches ``detail`` and is not spent; a
    ``kill`` rule SIGKILLs this process's group instead."""
    path = faults_file()
    if not path:
        return
    try:
        with open(path) as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        parts = line.split(maxsplit=2)
        kill = bool(parts) and parts[0] == "kill"
        if kill:
            parts = line.split(maxsplit=3)[1:]
        if len(parts) < 2 or parts[0] != point or (len(parts) == 3 and parts[2] not in detail):
            continue
        with _lock:
            if kill:
                done = [f for f in _fired(path) if f.startswith(f"kill {point} ") and (len(parts) < 3 or parts[2] in f)]
                if len(done) < int(parts[1]):
                    _record(path, f"kill {point} {detail}")
                    # a task's or function's process leads its own group; its ffmpeg runs, each in a
                    # session of its own, die with it (tools.scheduling.tied_to_parent)
                    if os.getpgid(0) == os.getpid():
                        os.killpg(os.getpgid(0), signal.SIGKILL)
                    os.kill(os.getpid(), signal.SIGKILL)
                continue
            key = (line, detail)
            if parts[1] == "always" or _counts[key] < int(parts[1]):
                _counts[key] += 1
                _record(path, f"{point} {detail}")  # what tests assert the fault did
                raise TransientError(f"injected fault at {point} ({detail}), #{_counts[key]}", "INJECTED_FAULT")


def _fired(path: str) -> list[str]:
    try:
        with open(path + ".fired") as fh:
            return fh.read().splitlines()
    except FileNotFoundError:
        return []


def _record(path: str, line: str) -> None:
    with open(path + ".fired", "a") as fired:
        fired.write(line + "\n")
        fired.flush()
        os.fsync(fired.fileno())
