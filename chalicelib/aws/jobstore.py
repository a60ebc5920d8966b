"""Job store on DynamoDB (one table, docs/state.md).

Items, all under partition ``pk = JOB#<job_id>`` so one Query reads a whole job:

* the job: ``sk = "JOB"``, ``job_status`` (also the ``by-status`` index partition, with
  ``created_at`` as its sort key), source, probe, ``tasks`` (names), ``done`` (string set of
  finished task names), ``master_written``, ``error``, timestamps;
* one item per task: ``sk = "TASK#<name>"``, ``kind``, spec fields, ``status``, ``progress``,
  ``attempts``, measured output stats; a chunk task also holds ``seg_counts``, its number
  of segment checkpoints by rendition;
* one item per segment checkpoint: ``sk = "CKPT#<task>#<rendition>#<index>"``, written and
  read by ``chalicelib.aws.checkpoints``. They sort before ``JOB``, so reads of a job that
  need no checkpoint (status, the API's resource) skip them.

Conditional writes keep the state machine honest under duplicate deliveries and races:
statuses only move forward, progress never goes back, completion is a set (``ADD``), and the
job turns ``complete`` or ``failed`` exactly once. Losing a condition is reported as ``False``,
not raised.
"""
from __future__ import annotations

import base64
import json
import time
from typing import Any, Iterable

from botocore.exceptions import ClientError

from chalicelib.domain import jobs

from .checkpoints import PREFIX as CHECKPOINT_PREFIX, group
from .table import DynamoTable, conditional_failed, now_iso, seconds_since  # noqa: F401 - now_iso/seconds_since are part of this API

JOB_SK = "JOB"
STATUS_INDEX = "by-status"


def _pk(job_id: str) -> str:
    return f"JOB#{job_id}"


class JobStore(DynamoTable):
    """DynamoDB adapter for jobs and their tasks."""

    # --- writes ----------------------------------------------------------------------
    def create_job(self, job: dict, tasks: Iterable[dict]) -> bool:
        """Create the job item and one item per task in one transaction, unless the job
        exists. ``job`` needs ``job_id``; tasks need ``name``. Returns False for a duplicate."""
        ts = now_iso()
        job_id = job["job_id"]
        tasks = list(tasks)
        job_item = {**job, "pk": _pk(job_id), "sk": JOB_SK, "created_at": job.get("created_at", ts), "updated_at": ts,
                    "tasks": [t["name"] for t in tasks]}
        items = [{"Put": {"TableName": self.table_name, "Item": self._item(job_item),
                          "ConditionExpression": "attribute_not_exists(pk)"}}]
        for t in tasks:
            items.append({"Put": {"TableName": self.table_name, "Item": self._item(
                {"status": jobs.QUEUED, "progress": 0, "attempts": 0, **t, "pk": _pk(job_id),
                 "sk": f"TASK#{t['name']}",
                 "job_id": job_id, "updated_at": ts})}})
        try:
            self._ddb.transact_write_items(TransactItems=items)
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

    def update_job(self, job_id: str, **fields: Any) -> None:
        """Set plain attributes on the job item (no status change)."""
        fields["updated_at"] = now_iso()
        names = {f"#{k}": k for k in fields}
        self._ddb.update_item(TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": JOB_SK}),
                              UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
                              ExpressionAttributeNames=names,
                              ExpressionAttributeValues=self._vals({f":{k}": v for k, v in fields.items()}))

    def set_once(self, job_id: str, field: str, value: Any) -> bool:
        """Set a job attribute only if it is not set yet; True for the call that set it."""
        try:
            self._ddb.update_item(TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": JOB_SK}),
                                  UpdateExpression="SET #f = :v", ConditionExpression="attribute_exists(pk) AND "
                                                                                      "attribute_not_exists(#f)",
                                  ExpressionAttributeNames={"#f": field},
                                  ExpressionAttributeValues=self._vals({":v": value}))
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

    def set_job_status(self, job_id: str, status: str, **fields: Any) -> bool:
        """Move the job forward to ``status`` (setting ``fields`` too). Returns False when the
        state machine forbids it (already terminal, or not a forward move)."""
        allowed = [s for s in jobs.STATUSES if jobs.can_move(s, status)]
        fields = {**fields, "job_status": status, "updated_at": now_iso()}
        names = {f"#{k}": k for k in fields}
        values = {f":{k}": v for k, v in fields.items()}
        values.update({f":a{i}": s for i, s in enumerate(allowed)})
        cond = "#job_status IN (" + ", ".join(f":a{i}" for i in range(len(allowed))) + ")" if allowed else "attribute_not_exists(pk)"
        try:
            self._ddb.update_item(TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": JOB_SK}),
                                  UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
                                  ConditionExpression=f"attribute_exists(pk) AND {cond}",
                                  ExpressionAttributeNames=names, ExpressionAttributeValues=self._vals(values))
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

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
                TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": f"TASK#{name}"}),
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
        res = self._ddb.get_item(TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": f"TASK#{name}"}),
                                 ConsistentRead=True)
        return self._plain(res["Item"]) if "Item" in res else None

    def renew_lease(self, job_id: str, name: str, owner: str, lease_seconds: int, now: float | None = None) -> bool:
        """Extend ``owner``'s lease; False when the lease was lost (or the task ended)."""
        now = time.time() if now is None else now
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": f"TASK#{name}"}),
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
                TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": f"TASK#{name}"}),
                UpdateExpression="SET lease_until = :z", ConditionExpression="lease_owner = :o",
                ExpressionAttributeValues=self._vals({":z": 0, ":o": owner}))
        except ClientError as e:
            if not conditional_failed(e):
                raise

    def update_task(self, job_id: str, name: str, **fields: Any) -> None:
        """Set plain attributes on a task item."""
        names = {f"#{k}": k for k in fields}
        self._ddb.update_item(TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": f"TASK#{name}"}),
                              UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
                              ExpressionAttributeNames=names,
                              ExpressionAttributeValues=self._vals({f":{k}": v for k, v in fields.items()}))

    def set_task_progress(self, job_id: str, name: str, progress: float) -> bool:
        """Raise a processing task's progress (percent); never lowers it. Returns False when
        the write was refused (lower value, or task no longer processing)."""
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": f"TASK#{name}"}),
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
        ``done`` set. Returns (this call finished it, the job item after the update)."""
        first = True
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": f"TASK#{name}"}),
                UpdateExpression="SET #s = :c, progress = :h, updated_at = :t, completed_at = :t" +
                                 "".join(f", #f_{k} = :f_{k}" for k in stats),
                ConditionExpression="attribute_exists(pk) AND #s <> :c",
                ExpressionAttributeNames={"#s": "status", **{f"#f_{k}": k for k in stats}},
                ExpressionAttributeValues=self._vals({":c": jobs.COMPLETE, ":h": 100, ":t": now_iso(),
                                                      **{f":f_{k}": v for k, v in stats.items()}}))
        except ClientError as e:
            if not conditional_failed(e):
                raise
            first = False
        res = self._ddb.update_item(
            TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": JOB_SK}),
            UpdateExpression="ADD done :n SET updated_at = :t",
            ExpressionAttributeValues={":n": {"SS": [name]}, ":t": {"S": now_iso()}},
            ReturnValues="ALL_NEW")
        return first, self._plain(res["Attributes"])

    def fail_task(self, job_id: str, name: str, error: dict) -> bool:
        """Mark a task ``failed`` with ``error`` {code, message}. False if already terminal."""
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": f"TASK#{name}"}),
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
        """An operator's retry: a ``failed`` task goes back to ``queued`` (its segment
        checkpoints are kept, so it resumes). False unless the task was failed."""
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": f"TASK#{name}"}),
                UpdateExpression="SET #s = :q, lease_until = :z, updated_at = :t REMOVE #e",
                ConditionExpression="#s = :f", ExpressionAttributeNames={"#s": "status", "#e": "error"},
                ExpressionAttributeValues=self._vals({":q": jobs.QUEUED, ":f": jobs.FAILED, ":z": 0, ":t": now_iso()}))
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

    def reopen_job(self, job_id: str) -> bool:
        """An operator's retry: a ``failed`` job goes back to ``processing``, error cleared."""
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": JOB_SK}),
                UpdateExpression="SET job_status = :p, updated_at = :t REMOVE #e, completed_at",
                ConditionExpression="job_status = :f", ExpressionAttributeNames={"#e": "error"},
                ExpressionAttributeValues=self._vals({":p": jobs.PROCESSING, ":f": jobs.FAILED, ":t": now_iso()}))
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

    def task_states(self, job_id: str) -> list[dict]:
        """``[{"name", "status", "updated_at"}]`` of the job's tasks: one Query projected to
        those fields (none of the checkpoints), for pollers that only need the states."""
        items = self._query(KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
                            ExpressionAttributeValues={":pk": {"S": _pk(job_id)}, ":t": {"S": "TASK#"}},
                            ProjectionExpression="sk, #s, updated_at", ExpressionAttributeNames={"#s": "status"})
        return [{"name": i["sk"][5:], "status": i.get("status"), "updated_at": i.get("updated_at")} for i in items]

    def get_job_field(self, job_id: str, field: str) -> Any:
        """One top-level field of the job item (one GetItem, projected), or None."""
        res = self._ddb.get_item(TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": JOB_SK}),
                                 ProjectionExpression="#f", ExpressionAttributeNames={"#f": field}, ConsistentRead=True)
        item = res.get("Item")
        return self._plain(item).get(field) if item else None

    def get_job_status(self, job_id: str) -> str | None:
        """The job's status alone (one GetItem), or None when the job does not exist."""
        return self.get_job_field(job_id, "job_status")

    def delete_job_record(self, job_id: str) -> None:
        """Delete a job item that holds no tasks (a failure recorded at ingest), so a redriven
        upload event can create the real job. Jobs with tasks are left alone."""
        try:
            self._ddb.delete_item(TableName=self.table_name, Key=self._item({"pk": _pk(job_id), "sk": JOB_SK}),
                                  ConditionExpression="attribute_not_exists(tasks) OR size(tasks) = :zero",
                                  ExpressionAttributeValues=self._vals({":zero": 0}))
        except ClientError as e:
            if not conditional_failed(e):
                raise

    # --- reads -----------------------------------------------------------------------
    def get(self, job_id: str, checkpoints: bool = False) -> tuple[dict, list[dict]] | None:
        """(job item, task items) of a job, or None when it does not exist. The job item's
        ``job_status`` is also given as ``status``. With ``checkpoints`` (one Query of the
        whole partition), each chunk task also gets ``segs``, its checkpoints by rendition
        (``chalicelib.aws.checkpoints.group``); without, the Query skips them."""
        key = "pk = :pk" if checkpoints else "pk = :pk AND sk >= :j"
        values = {":pk": {"S": _pk(job_id)}, **({} if checkpoints else {":j": {"S": JOB_SK}})}
        items = self._query(KeyConditionExpression=key, ExpressionAttributeValues=values, ConsistentRead=True)
        job = next((i for i in items if i["sk"] == JOB_SK), None)
        if job is None:
            return None
        job["status"] = job.get("job_status")
        tasks = [i for i in items if i["sk"].startswith("TASK#")]
        if checkpoints:
            by_task = group(i for i in items if i["sk"].startswith(CHECKPOINT_PREFIX))
            for t in tasks:
                if t.get("kind") == "chunk":
                    t["segs"] = {r: by_task.get(t["name"], {}).get(r, []) for r in (t.get("seg_counts") or {})}
        return job, tasks

    def list_jobs(self, status: str | None = None, limit: int = 20, next_token: str | None = None) -> tuple[list[dict], str | None]:
        """Job items, newest first when filtered by ``status`` (the ``by-status`` index),
        table order otherwise. Returns (items, next_token or None). ``next_token`` is opaque."""
        limit = max(1, min(int(limit), 100))
        kwargs: dict[str, Any] = {"TableName": self.table_name}
        if next_token:
            kwargs["ExclusiveStartKey"] = json.loads(base64.urlsafe_b64decode(next_token.encode()))
        if status:
            kwargs.update(IndexName=STATUS_INDEX, KeyConditionExpression="job_status = :s",
                          ExpressionAttributeValues={":s": {"S": status}}, ScanIndexForward=False)
            call = self._ddb.query
        else:  # the scan's filter runs after Limit: keep reading until the page is full
            kwargs.update(FilterExpression="sk = :j", ExpressionAttributeValues={":j": {"S": JOB_SK}})
            call = self._ddb.scan
        items: list[dict] = []
        last = None
        while len(items) < limit:
            res = call(**kwargs, Limit=limit - len(items))
            items += [self._plain(i) for i in res.get("Items", [])]
            last = res.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        for i in items:
            i["status"] = i.get("job_status")
        token = base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if last else None
        return items, token

    def count_by_status(self) -> dict[str, int]:
        """Number of jobs per status (index queries with ``Select=COUNT``)."""
        counts = {}
        for s in jobs.STATUSES:
            n, kwargs = 0, {"TableName": self.table_name, "IndexName": STATUS_INDEX, "Select": "COUNT",
                            "KeyConditionExpression": "job_status = :s", "ExpressionAttributeValues": {":s": {"S": s}}}
            while True:
                res = self._ddb.query(**kwargs)
                n += res.get("Count", 0)
                if "LastEvaluatedKey" not in res:
                    break
                kwargs["ExclusiveStartKey"] = res["LastEvaluatedKey"]
            counts[s] = n
        return counts

    def completed_since(self, since_iso: str) -> int:
        """Number of jobs that completed at or after ``since_iso`` (ISO 8601 UTC)."""
        n, kwargs = 0, {"TableName": self.table_name, "IndexName": STATUS_INDEX, "Select": "COUNT",
                        "KeyConditionExpression": "job_status = :s", "FilterExpression": "completed_at >= :t",
                        "ExpressionAttributeValues": {":s": {"S": jobs.COMPLETE}, ":t": {"S": since_iso}}}
        while True:
            res = self._ddb.query(**kwargs)
            n += res.get("Count", 0)
            if "LastEvaluatedKey" not in res:
                return n
            kwargs["ExclusiveStartKey"] = res["LastEvaluatedKey"]
