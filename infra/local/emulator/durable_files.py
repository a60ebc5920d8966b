"""Writing a file so that it survives a crash or power cut once the call returns (POSIX): the
bytes to a temporary file in the same directory, fsynced, renamed over the target, the
directory fsynced. Used for the emulator's snapshots and S3 bodies (``durable_state``,
``s3_bodies``)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_durably(path: Path, data: bytes) -> None:
    """``data`` at ``path``, replacing what was there, durable when this returns. Concurrent
    writers each use their own temporary file (``mkstemp``); the last rename wins."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """fsync a directory, so a rename or new file in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
