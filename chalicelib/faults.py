"""Fault injection for tests and failure drills. A no-op unless ``VODPIPE_FAULTS_FILE`` names
a file; the file is re-read at every check, so removing it (or a line) ends the fault.

One rule a line: ``<point> <count|always> [substring]``: the first ``count`` calls at
``point`` whose detail contains ``substring`` (in this process) raise ``TransientError``.
Points: ``s3_upload`` (detail: the object key, in ``Objects.upload_file``), ``task_start``
(detail: ``<job_id>/<task>``, before a worker starts ffmpeg) and ``ingest`` (detail: the
uploaded key, before ingest reads the object). Example::

    s3_upload 2 /360p/seg_00001.ts
    task_start always /chunk-000

Every fault that fires appends ``<point> <detail>`` to ``<faults file>.fired``, so a test can
assert that the fault it set up really happened.
"""
from __future__ import annotations

import threading
from collections import Counter

from chalicelib.config import faults_file
from chalicelib.domain.errors import TransientError

_counts: Counter = Counter()
_lock = threading.Lock()


def check(point: str, detail: str = "") -> None:
    """Raise ``TransientError`` if a rule for ``point`` matches ``detail`` and is not spent."""
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
        if len(parts) < 2 or parts[0] != point or (len(parts) == 3 and parts[2] not in detail):
            continue
        with _lock:
            key = (line, detail)
            if parts[1] == "always" or _counts[key] < int(parts[1]):
                _counts[key] += 1
                with open(path + ".fired", "a") as fired:  # what tests assert the fault did
                    fired.write(f"{point} {detail}\n")
                raise TransientError(f"injected fault at {point} ({detail}), #{_counts[key]}", "INJECTED_FAULT")
