"""The emulator's state on disk: what a call changed survives a SIGKILL once the call returned.

The design (``docs/local-cloud.md``, "State on disk") follows LocalStack's on-request
persistence of moto's backends, with two changes for our guarantee and our sizes:

* **Snapshot before the answer.** A call that changes a service (``durable_writes``) holds
  the write lock while moto applies it, marks the service dirty and waits until a snapshot
  taken after its change is on disk (written to a temporary file, fsynced, renamed over
  ``<service>.pickle``, directory fsynced). Concurrent writers share one snapshot (group commit),
  so a burst of writes costs one pickle per service, not one per call.
* **Object bodies are files, not pickles.** An S3 object's body is written once, under its
  SHA-256, to ``objects/``; the S3 snapshot holds each key's metadata and the digest
  (``s3_bodies``). After its first snapshot a body is read from its file, not held in memory.

Layout of a data directory::

    LOCK                        flock'ed by the one process that uses the directory
    FORMAT                      {"format": 1, "moto": "5.2.5"}; checked at open, written first
    services/<service>.pickle   moto's backends of one service (all accounts and regions)
    objects/<ab>/<sha256>       S3 object bodies, shared by every key and version with that content

``StateFormatError`` is raised at open when the directory was written by another format or
moto version: the caller says so and how to discard it (``vodpipe up --fresh``); nothing is
loaded half-way and nothing is overwritten.
"""
from __future__ import annotations

import fcntl
import io
import json
import logging
import pickle
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from infra.local.emulator import s3_bodies
from infra.local.emulator.durable_files import write_durably

log = logging.getLogger("vodpipe.local.state")

#: Bumped whenever the layout above or what a snapshot holds changes.
FORMAT = 1


class StateFormatError(RuntimeError):
    """The data directory was written by another state format or moto version."""


class StateInUseError(RuntimeError):
    """Another process holds the data directory (two clouds must not share one)."""


class StateWriteError(RuntimeError):
    """A snapshot could not be written (disk full, permissions): the call that waited for it
    is answered with an error, as AWS answers ``InternalError``, never acknowledged."""


def moto_version() -> str:
    """The installed moto's version: snapshots are moto's own objects, pickled."""
    import moto
    return moto.__version__


class _Pickler(pickle.Pickler):
    """Pickles moto's backends: locks become fresh locks, a Cognito pool's signing key
    becomes this process's key (``cognito_keys``: tokens of an earlier run stop verifying,
    as after a key rotation), and S3's key store keeps every version (moto's own pickling of
    that dict subclass keeps only the latest)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _LOCK_TYPES):
            return (threading.RLock if isinstance(obj, _RLOCK_TYPE) else threading.Lock), ()
        if type(obj).__name__ == "RSAKey" and type(obj).__module__.startswith("joserfc"):
            from infra.local.emulator import cognito_keys
            return cognito_keys.run_key, ()
        if s3_bodies.is_key(obj):  # the body in its own file, not in the pickle
            return s3_bodies.reduce_key(obj)
        if type(obj).__name__ == "_VersionedKeyStore":  # its items() holds only each key's latest version
            return _versioned_key_store, (type(obj), [(key, list(versions)) for key, versions in dict.items(obj)])
        return NotImplemented


def _versioned_key_store(kind: type, items: list) -> Any:
    """moto's S3 key store with every version of every key (``_Pickler``)."""
    store = kind()
    for key, versions in items:
        dict.__setitem__(store, key, versions)
    return store


_RLOCK_TYPE = type(threading.RLock())
_LOCK_TYPES = (type(threading.Lock()), _RLOCK_TYPE)


def dir_size(path: Path) -> int:
    """Bytes of the files under ``path`` (0 when it does not exist)."""
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class DurableState:
    """moto's state of this process, kept in ``data_dir``.

    ``open()`` checks the format, loads every snapshot into moto's backends (before the
    emulator answers a call) and starts the writer thread; ``close()`` writes what is dirty and
    stops it. Between them ``lock`` is the write lock (``durable_writes`` holds it while moto
    applies a change), ``changed(services)`` marks services dirty and returns a ticket, and
    ``wait(ticket)`` returns once a snapshot holding that change is on disk (raises
    ``StateWriteError`` when it could not be written). ``bytes_written`` counts every byte
    this process wrote (snapshots and bodies), for ``make bench``.
    """

    def __init__(self, data_dir: Path | str):
        self.data_dir = Path(data_dir)
        self.services_dir = self.data_dir / "services"
        self.lock = threading.RLock()
        self.bytes_written = 0  # snapshots and bodies
        self.body_bytes_written = 0
        self.snapshots_written = 0
        self._lock_file = None
        self._failed_upto = 0  # tickets up to this one were in a round that could not be written
        self._cond = threading.Condition()
        self._dirty: set[str] = set()
        self._issued = 0  # tickets handed out
        self._durable = 0  # every ticket up to this one is on disk
        self._failure: BaseException | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- opening ----------------------------------------------------------------------
    def check_format(self) -> None:
        """Raise ``StateFormatError`` unless ``data_dir`` is empty or of this format and moto;
        write the ``FORMAT`` file into a new directory."""
        marker = self.data_dir / "FORMAT"
        want = {"format": FORMAT, "moto": moto_version()}
        if marker.exists():
            try:
                found = json.loads(marker.read_text())
            except ValueError:
                found = {"format": "unreadable"}
            if found != want:
                raise StateFormatError(
                    f"the local cloud's data in {self.data_dir} was written by state format {found.get('format')} "
                    f"and moto {found.get('moto')}; this vodpipe reads format {FORMAT} with moto {want['moto']}. "
                    f"Nothing was loaded or changed. Start with the vodpipe that wrote it, or discard it: "
                    f"vodpipe up --fresh (or remove {self.data_dir})")
            return
        if self.data_dir.exists() and any(p.name != "LOCK" for p in self.data_dir.iterdir()):
            raise StateFormatError(f"{self.data_dir} is not empty and holds no FORMAT file: not a vodpipe data "
                                   f"directory; choose another with --data-dir")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_durably(marker, json.dumps(want).encode())

    def lock_directory(self) -> None:
        """Hold ``data_dir/LOCK`` (an exclusive ``flock``) until ``close``. Raises
        ``StateInUseError`` when another process holds it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.data_dir / "LOCK", "a")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise StateInUseError(f"{self.data_dir} is in use by another vodpipe up; stop it first, or give this "
                                  f"one its own --data-dir") from None

    def discard(self) -> None:
        """Remove the state (``vodpipe up --fresh``): only from a vodpipe data directory, only
        while holding its lock, only what this module writes. Raises ``StateFormatError`` for a
        directory that is not one, ``StateInUseError`` when another process holds it."""
        if not self.data_dir.exists():
            return
        if not (self.data_dir / "FORMAT").exists() and any(p.name != "LOCK" for p in self.data_dir.iterdir()):
            raise StateFormatError(f"{self.data_dir} holds no FORMAT file: not a vodpipe data directory, "
                                   f"so nothing was removed")
        self.lock_directory()
        try:
            for part in ("services", "objects"):
                shutil.rmtree(self.data_dir / part, ignore_errors=True)
            (self.data_dir / "FORMAT").unlink(missing_ok=True)
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def open(self) -> "DurableState":
        """Lock the directory, check the format, load the snapshots, start writing. Returns
        self. Raises ``StateInUseError``, ``StateFormatError``."""
        self.lock_directory()
        try:
            self.check_format()
            self.services_dir.mkdir(parents=True, exist_ok=True)
            s3_bodies.activate(self.data_dir / "objects", self._count)
            self._load()
        except BaseException:
            s3_bodies.deactivate()
            self._unlock()
            raise
        self._thread = threading.Thread(target=self._writer, name="emulator-state-writer", daemon=True)
        self._thread.start()
        return self

    def _load(self) -> None:
        from moto.backends import get_backend
        from moto.core.base_backend import BackendDict
        from moto.s3.models import s3_backends

        # this process's moto state is what the directory holds, nothing of an earlier cloud
        # in the same process (moto's backends are process-global: tests, make bench)
        BackendDict.reset()
        s3_backends.bucket_accounts.clear()
        loaded = []
        for leftover in self.services_dir.glob("*.tmp"):  # a snapshot cut short: its previous one stands
            leftover.unlink(missing_ok=True)
        for path in sorted(self.services_dir.glob("*.pickle")):
            service = path.stem
            with open(path, "rb") as snapshot:
                accounts = pickle.load(snapshot)
            backends = get_backend(service)
            for account, regions in accounts.items():
                for region, backend in regions.items():
                    backends[account][region] = backend
                    if service == "s3":  # moto's registry of bucket names lives beside the backends
                        for name in backend.buckets:
                            backends.bucket_accounts[name] = (region, account)
            loaded.append(service)
        kept = s3_bodies.collect_garbage()
        if loaded:
            log.info("state loaded from %s: %s; %d object bodies", self.data_dir, ", ".join(loaded), kept)

    # --- writing ----------------------------------------------------------------------
    def _count(self, written: int) -> None:
        self.bytes_written += written
        self.body_bytes_written += written

    def changed(self, services: Iterable[str]) -> int:
        """Mark ``services`` (moto's backend names: ``s3``, ``sqs``...) dirty; call it while
        holding ``lock``, after moto applied the change. Returns the ticket for ``wait``."""
        with self._cond:
            self._dirty.update(services)
            self._issued += 1
            self._cond.notify_all()
            return self._issued

    def wait(self, ticket: int) -> None:
        """Block until the change of ``ticket`` is on disk. Raises ``StateWriteError``."""
        with self._cond:
            while self._durable < ticket and ticket > self._failed_upto:
                self._cond.wait()
            if self._durable < ticket:
                raise StateWriteError(f"the emulator's state could not be written to {self.data_dir}: "
                                      f"{self._failure}")

    def _writer(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._stopping:
                    self._cond.wait()
                if not self._dirty:
                    return
                services, ticket = sorted(self._dirty), self._issued
                self._dirty = set()
            try:
                self._snapshot(services)
            except Exception as error:  # noqa: BLE001 - the round's callers hear of it; the next round retries
                log.exception("state snapshot of %s failed", services)
                with self._cond:
                    self._failure, self._failed_upto = error, ticket
                    self._dirty.update(services)
                    self._cond.notify_all()
                if self._stopping:
                    return
                time.sleep(1.0)
                continue
            with self._cond:
                self._durable = ticket
                self._cond.notify_all()

    def _snapshot(self, services: list[str]) -> None:
        from moto.backends import get_backend

        blobs = {}
        # S3 last: a crash between two renames may keep a notification without its object
        # (ingest finds no object and ignores it), never an object without its notification
        services = sorted(services, key=lambda name: name == "s3")
        with self.lock:  # no call is half-applied while moto's objects are read
            for service in services:
                backends = get_backend(service)
                buffer = io.BytesIO()
                _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(
                    {account: dict(regions) for account, regions in backends.items()})
                blobs[service] = buffer.getvalue()
        for service, blob in blobs.items():
            write_durably(self.services_dir / f"{service}.pickle", blob)
            self.bytes_written += len(blob)
        self.snapshots_written += len(blobs)

    def close(self) -> None:
        """Write what is still dirty, stop the writer, stop keeping S3 bodies in files."""
        if self._thread is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            self._thread.join(timeout=60)
            self._thread = None
        s3_bodies.deactivate()
        self._unlock()

    def size(self) -> int:
        """Bytes the data directory holds."""
        return dir_size(self.data_dir)
