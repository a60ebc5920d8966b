"""One rollback snapshot per table per ``TransactWriteItems`` in the emulator.

DynamoDB's transactions are all-or-nothing (DynamoDB developer guide, "Amazon DynamoDB
Transactions"). moto 5.2.5 keeps that promise by deep-copying the table before it applies
the actions, but it does so once per *action*: a checkpoint sweep of five renditions plus the
task's counts (six actions) copied the whole table six times, and the table grows with every
job's checkpoints. Measured on a 5-minute bench job: 52 transactions took 3.0 CPU-s of the
emulator (57 ms each) and held the DynamoDB lock (``emulator.AtomicItemWrites``) meanwhile.

``install`` wraps moto's ``transact_write_items`` so that, within one call, every copy of a
table after the first returns the first: the snapshot is taken before any action applies
(moto makes every copy in its first loop), so it is the same state, and a failed transaction
restores it exactly as before. DynamoDB requests run one at a time (``AtomicItemWrites``),
so the call's own copy function cannot meet another transaction's.
"""
from __future__ import annotations

import copy
from typing import Any

_INSTALLED = False


class _SnapshotOncePerTable:
    """Stands in for the ``copy`` module inside one ``transact_write_items`` call: a moto
    ``Table`` is deep-copied once, anything else as usual."""

    def __init__(self, table_type: type):
        self.table_type = table_type
        self.snapshots: dict[int, Any] = {}

    def deepcopy(self, obj: Any, memo: dict | None = None) -> Any:
        if isinstance(obj, self.table_type):
            if id(obj) not in self.snapshots:
                self.snapshots[id(obj)] = copy.deepcopy(obj, memo)
            return self.snapshots[id(obj)]
        return copy.deepcopy(obj, memo)

    def __getattr__(self, name: str) -> Any:  # copy.copy and the rest, unchanged
        return getattr(copy, name)


def install() -> None:
    """Patch moto's DynamoDB backend (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        models.copy = _SnapshotOncePerTable(models.Table)
        try:
            return original(self, transact_items)
        finally:
            models.copy = copy

    models.DynamoDBBackend.transact_write_items = transact_write_items
    _INSTALLED = True
