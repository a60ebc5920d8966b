"""S3 lifecycle rules, applied by the emulator on a schedule as S3 applies them (moto stores
the rules and never acts on them).

``apply_rules(backend, now)`` runs every enabled rule of every bucket of one moto S3 backend
once, as of ``now`` (UTC), and returns what it did. What a rule does (Amazon S3 User Guide,
"Lifecycle configuration elements"; an object's age counts from its ``LastModified``, a
noncurrent version's from the moment a newer version replaced it):

* ``Expiration`` ``Days``: the current version is deleted (a delete marker in a versioned
  bucket, the object itself otherwise);
* ``NoncurrentVersionExpiration`` ``NoncurrentDays``: the noncurrent version is removed for good;
* ``Transitions`` ``Days`` + ``StorageClass``: the current version moves to that class in place
  (same version id; a ``GLACIER``/``DEEP_ARCHIVE`` object then needs a restore to be read);
  objects under 128 KB stay (S3's default minimum object size for transitions);
* ``AbortIncompleteMultipartUpload`` ``DaysAfterInitiation``: the upload and its parts go.

A rule applies to keys under its prefix that carry all of its tags (``Filter`` with
``Prefix``, ``Tag`` or ``And``). S3 acts at the midnight after an object reaches the age;
here an object qualifies once it reaches it, at the next run (``LifecycleScheduler``: at
start, then hourly). The template's rules are in ``infra/template.yaml`` (the ingest bucket).
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any, Callable

log = logging.getLogger("vodpipe.local.lifecycle")

DAY = timedelta(days=1)
#: S3's default since September 2024: objects under 128 KB are not transitioned.
MIN_TRANSITION_BYTES = 128 * 1024


def _selector(rule: Any) -> tuple[str, dict[str, str]]:
    """(prefix, tags) a key must have for ``rule`` (a moto ``LifecycleRule``)."""
    prefix, tags = rule.prefix or "", {}
    found = rule.filter
    if found is not None:
        if found.prefix is not None:
            prefix = found.prefix
        elif found.tag_key:
            tags = {found.tag_key: found.tag_value}
        elif found.and_filter is not None:
            prefix, tags = found.and_filter.prefix or "", dict(found.and_filter.tags or {})
    return prefix, tags


def _is_marker(version: Any) -> bool:
    return type(version).__name__ == "FakeDeleteMarker"


def apply_rules(backend: Any, now: datetime) -> list[str]:
    """Apply every enabled lifecycle rule of every bucket of ``backend`` (a moto
    ``S3Backend``) as of ``now`` (naive UTC, as moto stamps ``last_modified``). Returns one
    line per action, e.g. ``"ingest: noncurrent clip.mp4 v1 removed (rule expire-replaced-uploads)"``."""
    done: list[str] = []
    for bucket in list(backend.buckets.values()):
        for rule in [r for r in bucket.rules if r.status == "Enabled"]:
            prefix, tags = _selector(rule)

            def selected(key: Any) -> bool:
                if not key.name.startswith(prefix):
                    return False
                return not tags or tags.items() <= backend.tagger.get_tag_dict_for_resource(key.arn).items()

            for name in [n for n in list(bucket.keys) if n.startswith(prefix)]:
                versions = list(bucket.keys.getlist(name) or [])
                if not versions:
                    continue
                current = versions[-1]
                if rule.nve_noncurrent_days is not None:
                    for older, newer in zip(versions, versions[1:]):
                        if not _is_marker(older) and selected(older) \
                                and now - newer.last_modified >= int(rule.nve_noncurrent_days) * DAY:
                            backend.delete_object(bucket.name, name, version_id=older.version_id)
                            done.append(f"{bucket.name}: noncurrent {name} {older.version_id} removed (rule {rule.id})")
                if _is_marker(current) or not selected(current):
                    continue
                age = now - current.last_modified
                for transition in rule.transitions or []:
                    if transition.days is not None and age >= int(transition.days) * DAY \
                            and current.size >= MIN_TRANSITION_BYTES \
                            and current.storage_class != transition.storage_class:
                        current._storage_class = transition.storage_class
                        done.append(f"{bucket.name}: {name} to {transition.storage_class} (rule {rule.id})")
                if rule.expiration_days is not None and age >= int(rule.expiration_days) * DAY:
                    backend.delete_object(bucket.name, name)
                    done.append(f"{bucket.name}: {name} expired (rule {rule.id})")
            if rule.aimu_days is not None:
                for upload_id, upload in list(bucket.multiparts.items()):
                    started = getattr(upload, "_vodpipe_seen_at", None)
                    if started is None:  # moto keeps no initiation time: the first run that sees it
                        started = upload._vodpipe_seen_at = now
                        done.append("")  # nothing to report, but a change to keep
                    if upload.key_name.startswith(prefix) and now - started >= int(rule.aimu_days) * DAY:
                        backend.abort_multipart_upload(bucket.name, upload_id)
                        done.append(f"{bucket.name}: incomplete upload of {upload.key_name} aborted (rule {rule.id})")
    return done


class LifecycleScheduler(threading.Thread):
    """Runs ``apply_rules`` over every account's S3 backend at start and then every
    ``interval`` seconds (default hourly) until ``stop``. ``lock`` and ``changed`` are the
    durable state's (``DurableState.lock``/``changed``/``wait``) when there is one, so what a
    run removes stays removed after a restart."""

    def __init__(self, interval: float = 3600.0, state: Any = None, clock: Callable[[], datetime] | None = None):
        super().__init__(name="s3-lifecycle", daemon=True)
        self.interval, self.state = interval, state
        self.clock = clock or (lambda: datetime.utcnow())
        self._halt = threading.Event()
        self.actions: list[str] = []

    def run_once(self) -> list[str]:
        """One pass over every bucket; returns the actions."""
        from moto.s3.models import s3_backends

        lock = self.state.lock if self.state is not None else threading.Lock()
        with lock:
            done = []
            for account in list(s3_backends):
                done += apply_rules(s3_backends[account]["aws"], self.clock())
            ticket = self.state.changed({"s3"}) if self.state is not None and done else None
        if ticket is not None:
            self.state.wait(ticket)
        done = [line for line in done if line]
        for line in done:
            log.info("lifecycle: %s", line)
        self.actions += done
        return done

    def run(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - a bad rule must not stop the next runs
                log.exception("lifecycle run failed")
            if self._halt.wait(self.interval):
                return

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=10)
