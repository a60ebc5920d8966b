"""S3 object bodies as files of the data directory, not bytes in a pickle or in memory.

moto keeps a key's body in a ``SpooledTemporaryFile`` (memory up to ~5 MB) and pickles it with
the key (``FakeKey.__getstate__`` reads ``value``). ``durable_state``'s pickler saves keys with
``reduce_key`` instead: the body is written once to ``objects_dir/<ab>/<sha256>`` (fsynced
before the snapshot that names it), the digest is recorded on the key, and from then on the key
reads its body from that file (``BodyFile``); loading gives each key a ``BodyFile`` of its
digest. Keys with the same content share one file. ``collect_garbage`` (at load) removes the
files no key names any more (deleted objects and expired versions). moto's own pickling and
copying of keys (``deepcopy`` in listings) is unchanged.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any, Callable

from infra.local.emulator.durable_files import fsync_dir, write_durably

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
    """Write ``data`` under its digest (once, fsynced, its directory entry too); returns the
    digest. Concurrent stores of the same content each write their own temporary file."""
    digest = hashlib.sha256(data).hexdigest()
    path = _path(digest)
    if not path.exists():
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fsync_dir(path.parent.parent)
        write_durably(path, data)
        _COUNT(len(data))
    _REFERENCED.add(digest)
    return digest


def is_key(obj: Any) -> bool:
    """Whether ``obj`` is a moto S3 key (an object version or a multipart part)."""
    return type(obj).__name__ == "FakeKey" and type(obj).__module__ == "moto.s3.models"


def reduce_key(key: Any) -> tuple:
    """How ``durable_state``'s pickler saves a key: its attributes without the body, and the
    digest of the body file (written now if it is not yet). From then on the live key reads
    its body from that file, so it no longer takes memory. A completed multipart object is
    saved without its parts (moto keeps them on the key: the body would be stored twice)."""
    with key.lock:
        digest = getattr(key, DIGEST, None)
        if digest is None or not _path(digest).exists():
            try:
                key._value_buffer.seek(0)
                data = key._value_buffer.read()
            except ValueError:  # disposed (deleted) key: moto's own pickling saves "" too
                data = b""
            digest = _store(data)
            setattr(key, DIGEST, digest)
            if not isinstance(key._value_buffer, BodyFile) and not key._value_buffer.closed:
                key._value_buffer.close()
                key._value_buffer = BodyFile(_path(digest))
        _REFERENCED.add(digest)
        state = {k: v for k, v in key.__dict__.items() if k not in ("_value_buffer", "lock")}
    if state.get("multipart") is not None:
        state["multipart"] = None
    return _restore_key, (type(key), state, digest)


def _restore_key(kind: type, state: dict, digest: str) -> Any:
    """A key of ``kind`` with ``state``, its body read from the file of ``digest``."""
    import threading
    key = kind.__new__(kind)
    key.__dict__.update(state)
    key._value_buffer = BodyFile(_path(digest))
    key.lock = threading.Lock()
    _REFERENCED.add(digest)
    return key


def _install() -> None:
    """Wrap ``FakeKey``'s ``value`` setter (once per process): a key given a new body forgets
    its body file."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.s3.models import FakeKey

    value_property = FakeKey.value

    def set_value(self: Any, new_value: bytes) -> None:
        if isinstance(getattr(self, "_value_buffer", None), BodyFile):
            self._value_buffer = tempfile.SpooledTemporaryFile(max_size=self._max_buffer_size)
        self.__dict__.pop(DIGEST, None)
        value_property.fset(self, new_value)

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
