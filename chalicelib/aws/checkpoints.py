"""Segment checkpoints of chunk tasks on DynamoDB: one small item per segment per rendition.

Items sit in the job's partition (``pk = JOB#<job_id>``) with
``sk = "CKPT#<task>#<rendition>#<index:06d>"``; ``CKPT#`` sorts before ``JOB`` and ``TASK#``,
so a Query over ``sk >= "JOB"`` reads a job and its tasks without any checkpoint, and one over
``begins_with(sk, "CKPT#<task>#")`` reads one chunk's. Each item holds ``task``,
``rendition``, ``index`` (the segment's number on the job's grid), ``bytes``, ``frames`` and
``start``, ``last_frame``, ``end`` (s on the output timeline,
``chalicelib.domain.mpegts.SegmentTiming``).

The chunk's task item keeps ``seg_counts`` {rendition: number of checkpoints}: the job
resource shows progress from it, and every write is one transaction that raises those counts
on the condition that they still hold what the writer read, so checkpoints stay ordered and a
duplicate or a stale worker writes nothing. A write costs one write unit per ~1 KB item
instead of rewriting an item that grows with the chunk (DynamoDB charges a write by the whole
item's size, up to 400 KB).
"""
from __future__ import annotations

from typing import Any, Iterable

from botocore.exceptions import ClientError

from .table import DynamoTable, conditional_failed, now_iso

PREFIX = "CKPT#"
#: DynamoDB's limit of actions per TransactWriteItems (one is the task's count update; DynamoDB
#: developer guide, "Service, account, and table quotas in Amazon DynamoDB"). The job store's
#: ``create_job`` splits by it too.
MAX_TRANSACTION_ITEMS = 100
TIMING_FIELDS = ("start", "last_frame", "end")


def checkpoint_sk(task: str, rendition: str, index: int) -> str:
    """Sort key of one checkpoint item."""
    return f"{PREFIX}{task}#{rendition}#{int(index):06d}"


def group(items: Iterable[dict]) -> dict[str, dict[str, list[dict]]]:
    """``{task: {rendition: [entry...]}}`` of checkpoint items (plain values, any order),
    each list ordered by segment index; an entry is ``{index, bytes, frames, start,
    last_frame, end}``."""
    out: dict[str, dict[str, list[dict]]] = {}
    for i in sorted(items, key=lambda i: i["sk"]):
        entry = {"index": int(i["index"]), "bytes": int(i["bytes"]), "frames": int(i["frames"]),
                 **{k: float(i[k]) for k in TIMING_FIELDS}}
        out.setdefault(i["task"], {}).setdefault(i["rendition"], []).append(entry)
    return out


class CheckpointStore(DynamoTable):
    """Writes and reads the segment checkpoints of chunk tasks (module docstring)."""

    def record(self, job_id: str, task: str, new: dict[str, list[dict]], recorded: dict[str, int]) -> bool:
        """Checkpoint segments of several renditions of chunk ``task``: ``new[rendition]``
        lists entries ``{index, bytes, frames, start, last_frame, end}``, recorded only when
        the task holds exactly ``recorded[rendition]`` checkpoints of that rendition.

        Returns False, with nothing written, when any count differs (a duplicate, a gap or a
        stale worker). Writes that exceed one transaction (``MAX_TRANSACTION_ITEMS``) go in
        several, in order, each conditional on the counts the previous one left."""
        pending = {r: list(v) for r, v in new.items() if v}
        counts = {r: int(recorded[r]) for r in pending}
        while pending:
            share = max(1, (MAX_TRANSACTION_ITEMS - 1) // len(pending))
            batch = {r: v[:share] for r, v in pending.items()}
            if not self._write(job_id, task, batch, counts):
                return False
            for r, entries in batch.items():
                counts[r] += len(entries)
                pending[r] = pending[r][len(entries):]
            pending = {r: v for r, v in pending.items() if v}
        return True

    def _write(self, job_id: str, task: str, batch: dict[str, list[dict]], counts: dict[str, int]) -> bool:
        pk = f"JOB#{job_id}"
        rungs = list(batch)
        values: dict[str, Any] = {":t": now_iso()}
        for i, r in enumerate(rungs):
            values[f":n{i}"] = counts[r]
            values[f":m{i}"] = counts[r] + len(batch[r])
        update = {"Update": {
            "TableName": self.table_name, "Key": self._item({"pk": pk, "sk": f"TASK#{task}"}),
            "UpdateExpression": "SET " + ", ".join(f"seg_counts.#r{i} = :m{i}" for i in range(len(rungs))) +
                                ", updated_at = :t",
            "ConditionExpression": " AND ".join(f"seg_counts.#r{i} = :n{i}" for i in range(len(rungs))),
            "ExpressionAttributeNames": {f"#r{i}": r for i, r in enumerate(rungs)},
            "ExpressionAttributeValues": self._vals(values)}}
        puts = [{"Put": {"TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)",
                         "Item": self._item({"pk": pk, "sk": checkpoint_sk(task, r, e["index"]), "task": task,
                                             "rendition": r, "index": int(e["index"]), "bytes": int(e["bytes"]),
                                             "frames": int(e["frames"]),
                                             **{k: round(float(e[k]), 6) for k in TIMING_FIELDS}})}}
                for r in rungs for e in batch[r]]
        try:
            self._ddb.transact_write_items(TransactItems=[update, *puts])
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

    def of_task(self, job_id: str, task: str) -> dict[str, list[dict]]:
        """``{rendition: [entry...]}`` of one chunk task, ordered by index (``group``)."""
        items = self._query(ConsistentRead=True, KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
                            ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}, ":p": {"S": f"{PREFIX}{task}#"}})
        return group(items).get(task, {})
