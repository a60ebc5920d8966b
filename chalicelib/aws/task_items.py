"""Task items of the job store: ``sk = "TASK#<name>"`` under the job's partition
(docs/state.md): the lease a worker takes and renews, progress that never goes back, and the
task's completion (one transaction with the job's ``done`` set), failure and reopening, each
one conditional write (a lost condition is ``False``, not an exception). ``JobStore`` (``jobstore.py``) adds the job item's writes and
the reads."""
from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain import jobs

from .table import DynamoTable, conditional_failed, now_iso, transaction_conflict

JOB_SK = "JOB"
#: A completion's transaction is tried this many times when a concurrent one on the same job
#: item cancels it (``TransactionConflict``).
COMPLETION_ATTEMPTS = 8


def job_key(job_id: str) -> str:
    """The partition key of every item of job ``job_id``: ``JOB#<job_id>``."""
    return f"JOB#{job_id}"


class TaskItems(DynamoTable):
    """Writes and reads of one task item at a time (see the module docstring)."""

    def start_task(self, job_id: str, name: str, owner: str = "worker", lease_seconds: int = 120,
                   now: float | None = None) -> tuple[str, dict | None]:
        """Take the task's lease (a conditional write) and count the attempt.

        Returns ``("acquired", item)``; ``("done", None)`` when the task is already terminal (a
        duplicate delivery: nothing to do); ``("leased", None)`` when another worker holds an
        unexpired lease (two deliveries of one message at once). ``owner`` identifies the
        worker; the lease lasts ``lease_seconds`` and is renewed by ``renew_lease``."""
        now = time.time() if now is None else now
        try:
            res = self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": f"TASK#{name}"}),
                UpdateExpression="SET #s = :p, updated_at = :t, started_at = if_not_exists(started_at, :t), "
                                 "lease_owner = :o, lease_until = :u ADD attempts :one",
                ConditionExpression="attribute_exists(pk) AND (#s = :q OR (#s = :p AND (attribute_not_exists(lease_until)"
                                    " OR lease_until < :now OR lease_owner = :o)))",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=self._vals({":p": jobs.PROCESSING, ":q": jobs.QUEUED, ":t": now_iso(), ":one": 1,
                                                      ":o": owner, ":u": now + lease_seconds, ":now": now}),
                ReturnValues="ALL_NEW")
            return "acquired", self._plain(res["Attributes"])
        except ClientError as e:
            if not conditional_failed(e):
                raise
        got = self.get_task(job_id, name)
        if got is None or got.get("status") in jobs.TERMINAL:
            return "done", None
        return "leased", None

    def get_task(self, job_id: str, name: str) -> dict | None:
        """One task item, or None."""
        res = self._ddb.get_item(TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": f"TASK#{name}"}),
                                 ConsistentRead=True)
        return self._plain(res["Item"]) if "Item" in res else None

    def renew_lease(self, job_id: str, name: str, owner: str, lease_seconds: int, now: float | None = None) -> bool:
        """Extend ``owner``'s lease; False when the lease was lost (or the task ended)."""
        now = time.time() if now is None else now
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": f"TASK#{name}"}),
                UpdateExpression="SET lease_until = :u", ConditionExpression="lease_owner = :o AND #s = :p",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=self._vals({":u": now + lease_seconds, ":o": owner, ":p": jobs.PROCESSING}))
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

    def release_lease(self, job_id: str, name: str, owner: str) -> None:
        """Give the lease up at once (graceful stop), so another worker can resume the task."""
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": f"TASK#{name}"}),
                UpdateExpression="SET lease_until = :z", ConditionExpression="lease_owner = :o",
                ExpressionAttributeValues=self._vals({":z": 0, ":o": owner}))
        except ClientError as e:
            if not conditional_failed(e):
                raise

    def update_task(self, job_id: str, name: str, **fields: Any) -> None:
        """Set plain attributes on a task item."""
        names = {f"#{k}": k for k in fields}
        self._ddb.update_item(TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": f"TASK#{name}"}),
                              UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
                              ExpressionAttributeNames=names,
                              ExpressionAttributeValues=self._vals({f":{k}": v for k, v in fields.items()}))

    def record_partial_output(self, job_id: str, name: str, covered: float, **fields: Any) -> bool:
        """Record what a running task has published so far: ``covered`` (source seconds its
        uploaded segments reach) and ``fields`` (e.g. their ``extinf``), only when it reaches
        further than what is recorded and the task is still processing, so a redelivered run
        never shrinks what a player was shown (RFC 8216 §6.2.1: an EVENT playlist only grows).
        Returns False when refused. Raises other DynamoDB errors."""
        values = {f":{k}": v for k, v in fields.items()}
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": f"TASK#{name}"}),
                UpdateExpression="SET covered = :covered, updated_at = :t" + "".join(f", #{k} = :{k}" for k in fields),
                ConditionExpression="#s = :p AND (attribute_not_exists(covered) OR covered < :covered)",
                ExpressionAttributeNames={"#s": "status", **{f"#{k}": k for k in fields}},
                ExpressionAttributeValues=self._vals({":covered": round(covered, 6), ":t": now_iso(),
                                                      ":p": jobs.PROCESSING, **values}))
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

    def set_task_progress(self, job_id: str, name: str, progress: float) -> bool:
        """Raise a processing task's progress (percent); never lowers it. Returns False when
        the write was refused (lower value, or task no longer processing)."""
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": f"TASK#{name}"}),
                UpdateExpression="SET progress = :v, updated_at = :t",
                ConditionExpression="#s = :p AND (attribute_not_exists(progress) OR progress < :v)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=self._vals({":v": round(progress, 1), ":t": now_iso(), ":p": jobs.PROCESSING}))
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

    def complete_task(self, job_id: str, name: str, stats: dict) -> tuple[bool, dict]:
        """Record a finished task (``stats``: measured output fields) and add it to the job's
        ``done`` set, in one transaction (a worker killed in between can never leave a complete
        task outside ``done``, which would keep its job ``processing`` for ever: finalize waits
        for ``done`` to hold every task). Returns (this call finished it, the job item after).

        A task already complete (a duplicate delivery) is left as it is and only the ``done``
        set is made sure of (an idempotent ``ADD``). A transaction conflict with a concurrent
        completion of the same job is retried at once, a few times; what else DynamoDB raises
        propagates (the message is redelivered)."""
        task_key = self._item({"pk": job_key(job_id), "sk": f"TASK#{name}"})
        job = self._item({"pk": job_key(job_id), "sk": JOB_SK})
        finish = {"Update": {
            "TableName": self.table_name, "Key": task_key,
            "UpdateExpression": "SET #s = :c, progress = :h, updated_at = :t, completed_at = :t" +
                                "".join(f", #f_{k} = :f_{k}" for k in stats),
            "ConditionExpression": "attribute_exists(pk) AND #s <> :c",
            "ExpressionAttributeNames": {"#s": "status", **{f"#f_{k}": k for k in stats}},
            "ExpressionAttributeValues": self._vals({":c": jobs.COMPLETE, ":h": 100, ":t": now_iso(),
                                                     **{f":f_{k}": v for k, v in stats.items()}})}}
        mark_done = {"TableName": self.table_name, "Key": job, "UpdateExpression": "ADD done :n SET updated_at = :t",
                     "ExpressionAttributeValues": {":n": {"SS": [name]}, ":t": {"S": now_iso()}}}
        first = True
        for attempt in range(COMPLETION_ATTEMPTS):
            try:
                self._ddb.transact_write_items(TransactItems=[finish, {"Update": mark_done}])
                break
            except ClientError as e:
                if transaction_conflict(e) and attempt + 1 < COMPLETION_ATTEMPTS:
                    time.sleep(0.02 * (attempt + 1))
                    continue
                if not conditional_failed(e):
                    raise
                first = False  # complete already: make sure of the done set alone
                self._ddb.update_item(**mark_done)
                break
        item = self._ddb.get_item(TableName=self.table_name, Key=job, ConsistentRead=True).get("Item")
        return first, self._plain(item or {})

    def fail_task(self, job_id: str, name: str, error: dict) -> bool:
        """Mark a task ``failed`` with ``error`` {code, message}. False if already terminal."""
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": f"TASK#{name}"}),
                UpdateExpression="SET #s = :f, #e = :e, updated_at = :t",
                ConditionExpression="attribute_exists(pk) AND #s IN (:q, :p)",
                ExpressionAttributeNames={"#s": "status", "#e": "error"},
                ExpressionAttributeValues=self._vals({":f": jobs.FAILED, ":e": error, ":t": now_iso(),
                                                      ":q": jobs.QUEUED, ":p": jobs.PROCESSING}))
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

    def reopen_task(self, job_id: str, name: str) -> bool:
        """An operator's retry: a ``failed`` (or already reopened, ``queued``) task goes back to
        ``queued`` (its segment checkpoints are kept, so it resumes). Idempotent, so a retry cut
        short by a crash can be asked again. False unless the task was failed or queued."""
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": f"TASK#{name}"}),
                UpdateExpression="SET #s = :q, lease_until = :z, updated_at = :t REMOVE #e",
                ConditionExpression="#s IN (:f, :q)", ExpressionAttributeNames={"#s": "status", "#e": "error"},
                ExpressionAttributeValues=self._vals({":q": jobs.QUEUED, ":f": jobs.FAILED, ":z": 0, ":t": now_iso()}))
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise
