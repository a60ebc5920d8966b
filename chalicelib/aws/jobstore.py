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
from typing import Any, Iterable

from botocore.exceptions import ClientError

from chalicelib.domain import jobs

from .checkpoints import MAX_TRANSACTION_ITEMS, PREFIX as CHECKPOINT_PREFIX, group
from .task_items import JOB_SK, TaskItems, job_key
from .table import conditional_failed, now_iso

STATUS_INDEX = "by-status"


class JobStore(TaskItems):
    """DynamoDB adapter for jobs and their tasks (the task items' writes: ``TaskItems``)."""

    # --- writes ----------------------------------------------------------------------
    def create_job(self, job: dict, tasks: Iterable[dict]) -> bool:
        """Create the job item and one item per task, unless the job exists. ``job`` needs
        ``job_id``; tasks need ``name``. Returns False for a duplicate.

        Any number of tasks fits (DynamoDB takes at most ``MAX_TRANSACTION_ITEMS`` actions per
        ``TransactWriteItems``): the job item and the first 99 tasks are one transaction whose
        job ``Put`` is conditional on ``attribute_not_exists(pk)``, so the job is created once,
        atomically with its first tasks; the other tasks follow in transactions of up to 100,
        each ``Put`` conditional on the task item not existing. When the job exists already (a
        redelivered ingest, perhaps after a crash between two batches) and has not fanned out,
        the task items its ``tasks`` names that are still missing are written the same way, and
        no existing one is touched (a worker may hold it). So when this returns, every task
        item of the job exists and the fan-out may follow."""
        ts = now_iso()
        job_id = job["job_id"]
        tasks = list(tasks)
        job_item = {**job, "pk": job_key(job_id), "sk": JOB_SK, "created_at": job.get("created_at", ts), "updated_at": ts,
                    "tasks": [t["name"] for t in tasks]}
        first = MAX_TRANSACTION_ITEMS - 1
        items = [{"Put": {"TableName": self.table_name, "Item": self._item(job_item),
                          "ConditionExpression": "attribute_not_exists(pk)"}}]
        items += [{"Put": {"TableName": self.table_name, "Item": self._task_item(job_id, t, ts)}} for t in tasks[:first]]
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except ClientError as e:
            if not conditional_failed(e):
                raise
            stored = self._ddb.get_item(TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": JOB_SK}),
                                        ConsistentRead=True).get("Item")
            if stored is None:  # canceled for another reason than an existing job
                raise
            stored = self._plain(stored)
            if not stored.get("fanned_out"):
                names = set(stored.get("tasks") or [])
                self._create_missing_tasks(job_id, [t for t in tasks if t["name"] in names], ts)
            return False
        if tasks[first:]:
            self._create_missing_tasks(job_id, tasks[first:], ts, existing=set())
        return True

    def _task_item(self, job_id: str, task: dict, ts: str) -> dict:
        return self._item({"status": jobs.QUEUED, "progress": 0, "attempts": 0, **task, "pk": job_key(job_id),
                           "sk": f"TASK#{task['name']}", "job_id": job_id, "updated_at": ts})

    def _create_missing_tasks(self, job_id: str, tasks: list[dict], ts: str, existing: set[str] | None = None,
                              attempts: int = 5) -> None:
        """Write the items of ``tasks`` that do not exist yet, in transactions of up to
        ``MAX_TRANSACTION_ITEMS`` conditional ``Put``s (create if absent). ``existing``: task
        names known to exist (None: read them). A transaction canceled by a concurrent writer
        of the same items is retried after reading again."""
        for _ in range(attempts):
            if existing is None:
                existing = {i["sk"][len("TASK#"):] for i in self._query(
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :t)", ProjectionExpression="sk",
                    ExpressionAttributeValues={":pk": {"S": job_key(job_id)}, ":t": {"S": "TASK#"}}, ConsistentRead=True)}
            missing = [t for t in tasks if t["name"] not in existing]
            try:
                for start in range(0, len(missing), MAX_TRANSACTION_ITEMS):
                    self._ddb.transact_write_items(TransactItems=[
                        {"Put": {"TableName": self.table_name, "Item": self._task_item(job_id, t, ts),
                                 "ConditionExpression": "attribute_not_exists(pk)"}}
                        for t in missing[start:start + MAX_TRANSACTION_ITEMS]])
                return
            except ClientError as e:
                if not conditional_failed(e):
                    raise
                existing = None  # another writer made some of them: read again
        raise RuntimeError(f"the task items of job {job_id} kept changing while being created")

    def update_job(self, job_id: str, **fields: Any) -> None:
        """Set plain attributes on the job item (no status change)."""
        fields["updated_at"] = now_iso()
        names = {f"#{k}": k for k in fields}
        self._ddb.update_item(TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": JOB_SK}),
                              UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
                              ExpressionAttributeNames=names,
                              ExpressionAttributeValues=self._vals({f":{k}": v for k, v in fields.items()}))

    def record_publication(self, job_id: str, seconds: float, **fields: Any) -> None:
        """Set ``fields`` on the job item and append ``{"seconds", "at"}`` (media seconds now
        published, the time) to its ``publications`` list, in one write (``list_append``)."""
        fields["updated_at"] = now = now_iso()
        names = {f"#{k}": k for k in fields}
        self._ddb.update_item(TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": JOB_SK}),
                              UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields) +
                                               ", publications = list_append(if_not_exists(publications, :none), :p)",
                              ExpressionAttributeNames=names,
                              ExpressionAttributeValues=self._vals({**{f":{k}": v for k, v in fields.items()},
                                                                    ":none": [], ":p": [{"seconds": seconds, "at": now}]}))

    def set_once(self, job_id: str, field: str, value: Any) -> bool:
        """Set a job attribute only if it is not set yet; True for the call that set it."""
        try:
            self._ddb.update_item(TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": JOB_SK}),
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
            self._ddb.update_item(TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": JOB_SK}),
                                  UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
                                  ConditionExpression=f"attribute_exists(pk) AND {cond}",
                                  ExpressionAttributeNames=names, ExpressionAttributeValues=self._vals(values))
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

    def reopen_job(self, job_id: str, requeue: list[str] | None = None) -> bool:
        """An operator's retry: a ``failed`` job goes back to ``processing``, error cleared.
        ``requeue`` (task names) is recorded as ``requeue_pending`` until ``requeued``: the
        tasks whose messages this retry still has to send (a retry cut short by a crash after
        this write is asked again and sends them). False unless the job was failed."""
        try:
            self._ddb.update_item(
                TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": JOB_SK}),
                UpdateExpression="SET job_status = :p, updated_at = :t, requeue_pending = :r REMOVE #e, completed_at",
                ConditionExpression="job_status = :f", ExpressionAttributeNames={"#e": "error"},
                ExpressionAttributeValues=self._vals({":p": jobs.PROCESSING, ":f": jobs.FAILED, ":t": now_iso(),
                                                      ":r": list(requeue or [])}))
            return True
        except ClientError as e:
            if conditional_failed(e):
                return False
            raise

    def requeued(self, job_id: str) -> None:
        """The retry's task messages are sent: ``requeue_pending`` goes."""
        self._ddb.update_item(TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": JOB_SK}),
                              UpdateExpression="REMOVE requeue_pending")

    def get_job_field(self, job_id: str, field: str) -> Any:
        """One top-level field of the job item (one GetItem, projected), or None."""
        res = self._ddb.get_item(TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": JOB_SK}),
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
            self._ddb.delete_item(TableName=self.table_name, Key=self._item({"pk": job_key(job_id), "sk": JOB_SK}),
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
        values = {":pk": {"S": job_key(job_id)}, **({} if checkpoints else {":j": {"S": JOB_SK}})}
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
