"""S3 object bodies as files of the data directory, not bytes in a pickle or in memory.

moto keeps a key's body in a ``SpooledTemporaryFile`` (memory up to ~5 MB) and pickles it with
the key (``FakeKey.__getstate__`` reads ``value``). With ``activate(objects_dir)``, pickling a
key writes its body once to ``objects_dir/<ab>/<sha256>`` (fsynced before the snapshot that
names it), records the digest on the key and from then on reads the body from that file
(``BodyFile``); unpickling a key gives it a ``BodyFile`` of its digest. Keys with the same
content share one file. ``collect_garbage`` (at load) removes the files no key names any more
(deleted objects and expired versions). Without ``activate`` moto's behaviour is unchanged.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

_OBJECTS: Path | None = None
_COUNT: Callable[[int], None] = lambda written: None  # noqa: E731 - replaced by activate
_REFERENCED: set[str] = set()
_INSTALLED = False

#: The attribute of a ``FakeKey`` that names its body file (a SHA-256, hex).
DIGEST = "_vodpipe_body"


class BodyFile:
    """A read-only file object over one body file, opened for each read (a bucket of thousands
    of keys holds no descriptors). Supports what ``FakeKey`` does with its buffer: ``seek``,
    ``read``, ``tell``, ``close``."""

    def __init__(self, path: Path):
        self.path, self.position, self.closed = path, 0, False

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self.position = offset
        elif whence == 1:
            self.position += offset
        else:
            self.position = self.path.stat().st_size + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def read(self, size: int = -1) -> bytes:
        with open(self.path, "rb") as body:
            body.seek(self.position)
            data = body.read(size)
        self.position += len(data)
        return data

    def close(self) -> None:
        self.closed = True


def _path(digest: str) -> Path:
    return _OBJECTS / digest[:2] / digest


def _store(data: bytes) -> str:
    """Write ``data`` under its digest (once, fsynced); returns the digest."""
    digest = hashlib.sha256(data).hexdigest()
    path = _path(digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{digest}.{os.getpid()}.tmp")
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _COUNT(len(data))
    _REFERENCED.add(digest)
    return digest


def _install() -> None:
    """Wrap ``FakeKey``'s pickling and ``value`` setter (once per process)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.s3.models import FakeKey

    original_getstate, original_setstate = FakeKey.__getstate__, FakeKey.__setstate__
    value_property = FakeKey.value

    def __getstate__(self: Any) -> dict:
        if _OBJECTS is None:
            return original_getstate(self)
        with self.lock:
            digest = getattr(self, DIGEST, None)
            if digest is None or not _path(digest).exists():
                self._value_buffer.seek(0)
                digest = _store(self._value_buffer.read())
                setattr(self, DIGEST, digest)
                if not isinstance(self._value_buffer, BodyFile):  # the file holds it now: free the memory
                    self._value_buffer.close()
                    self._value_buffer = BodyFile(_path(digest))
            _REFERENCED.add(digest)
        state = {k: v for k, v in self.__dict__.items() if k not in ("_value_buffer", "lock")}
        return state

    def __setstate__(self: Any, state: dict) -> None:
        digest = state.get(DIGEST)
        if digest is None or _OBJECTS is None:
            return original_setstate(self, state)
        import threading
        self.__dict__.update(state)
        self._value_buffer = BodyFile(_path(digest))
        self.lock = threading.Lock()
        _REFERENCED.add(digest)

    def set_value(self: Any, new_value: bytes) -> None:
        if isinstance(getattr(self, "_value_buffer", None), BodyFile):
            self._value_buffer = tempfile.SpooledTemporaryFile(max_size=self._max_buffer_size)
        self.__dict__.pop(DIGEST, None)
        value_property.fset(self, new_value)

    FakeKey.__getstate__ = __getstate__
    FakeKey.__setstate__ = __setstate__
    FakeKey.value = property(value_property.fget, set_value)
    _INSTALLED = True


def activate(objects_dir: Path, count: Callable[[int], None]) -> None:
    """Keep bodies in ``objects_dir`` from now on; ``count(bytes)`` hears of each file written."""
    global _OBJECTS, _COUNT
    _install()
    objects_dir.mkdir(parents=True, exist_ok=True)
    _OBJECTS, _COUNT = objects_dir, count
    _REFERENCED.clear()


def deactivate() -> None:
    """Back to moto's own pickling (bodies inside the pickle)."""
    global _OBJECTS
    _OBJECTS = None


def collect_garbage() -> int:
    """After a load: remove body files that no loaded key names (and temporary files of a
    write that was cut short). Returns how many bodies are kept."""
    if _OBJECTS is None:
        return 0
    kept = 0
    for path in _OBJECTS.glob("*/*"):
        if path.name.endswith(".tmp") or path.name not in _REFERENCED:
            path.unlink(missing_ok=True)
        else:
            kept += 1
    return kept
