"""Operational records in the jobs table, beside the jobs (docs/state.md): dead letters kept for
``GET /dlq`` and redrive, why an upload's ingest last failed, how each webhook delivery went
(delivered, or failed: attempts, last error, next attempt), and which job owns each output
folder. None of them is part of a job's state machine; ingest errors and deliveries expire
(TTL); folder claims never do.

Keys: dead letters ``pk = "DLQ"``, ``sk = <SQS message id>``; ingest errors
``pk = "INGEST#<job_id>"``; deliveries ``pk = "HOOK#<delivery id>"``; output folders
``pk = "PREFIX#<folder>"`` (``job_id``: the job whose folder it is; ``nested``: true when some
job's folder lies inside it, ``first_nested``: the first such job, a fixed-size marker;
``chalicelib.domain.ownership``).
"""
from __future__ import annotations

import random
import time
from datetime import datetime, timezone

from botocore.exceptions import ClientError

from chalicelib.domain import ownership
from chalicelib.domain.backoff import exponential_backoff

from .table import DynamoTable, conditional_failed, iso_utc, now_iso, transaction_conflict

DLQ_PK = "DLQ"
#: Attempts of a folder claim cancelled by a concurrent transaction (``TransactionConflict``,
#: e.g. sibling claims marking the same parent) before it is raised as transient, and the
#: base of the jittered backoff between them (seconds: up to 0.05, 0.1, 0.2, 0.4).
CLAIM_ATTEMPTS = 5
CLAIM_BACKOFF_SECONDS = 0.05


class Records(DynamoTable):
    """Dead letters, ingest errors, webhook deliveries and output-folder claims."""

    def put_dead_letter(self, message_id: str, record: dict) -> None:
        """Keep a dead-lettered task message (``record``: job_id, task, body, error,
        receive_count) for ``GET /dlq`` and a later redrive."""
        self._ddb.put_item(TableName=self.table_name, Item=self._item(
            {**record, "pk": DLQ_PK, "sk": message_id, "message_id": message_id, "dead_at": now_iso()}))

    def list_dead_letters(self, limit: int = 100) -> list[dict]:
        """Dead letters, oldest first."""
        res = self._ddb.query(TableName=self.table_name, KeyConditionExpression="pk = :p",
                              ExpressionAttributeValues={":p": {"S": DLQ_PK}}, Limit=max(1, min(limit, 1000)))
        items = [self._plain(i) for i in res.get("Items", [])]
        return sorted(items, key=lambda i: i.get("dead_at", ""))

    def get_dead_letter(self, message_id: str) -> dict | None:
        res = self._ddb.get_item(TableName=self.table_name, Key=self._item({"pk": DLQ_PK, "sk": message_id}),
                                 ConsistentRead=True)
        return self._plain(res["Item"]) if "Item" in res else None

    def delete_dead_letter(self, message_id: str) -> None:
        self._ddb.delete_item(TableName=self.table_name, Key=self._item({"pk": DLQ_PK, "sk": message_id}))

    # --- ingest attempts -------------------------------------------------------------
    def record_ingest_error(self, job_id: str, error: dict) -> None:
        """Remember why ingesting an object failed (``error``: code, message), for the ingest
        dead-letter function to name the cause. Expires after 14 days (TTL)."""
        self._ddb.put_item(TableName=self.table_name, Item=self._item({
            "pk": f"INGEST#{job_id}", "sk": "INGEST", "error": error, "at": now_iso(),
            "expires_at": int(time.time()) + 14 * 86400}))

    def last_ingest_error(self, job_id: str) -> dict | None:
        """The last ``record_ingest_error`` error of ``job_id``, or None."""
        res = self._ddb.get_item(TableName=self.table_name, Key=self._item({"pk": f"INGEST#{job_id}", "sk": "INGEST"}),
                                 ConsistentRead=True)
        return self._plain(res["Item"]).get("error") if "Item" in res else None

    # --- webhook deliveries -------------------------------------------------------------
    def delivery(self, delivery_id: str) -> dict | None:
        """The record of one (event, target) delivery: ``status`` (``delivered`` or ``failed``),
        ``attempts``, ``url`` (redacted), ``job_id``, ``event_type``, ``last_error``,
        ``last_attempt_at``, ``next_attempt_at`` (ISO 8601 UTC), or None before any attempt."""
        res = self._ddb.get_item(TableName=self.table_name, Key=self._item({"pk": f"HOOK#{delivery_id}", "sk": "HOOK"}),
                                 ConsistentRead=True)
        if "Item" not in res:
            return None
        item = self._plain(res["Item"])
        item.setdefault("status", "delivered")  # records written before failures were recorded
        return item

    def delivery_done(self, delivery_id: str) -> bool:
        """True when this (event, target) delivery already succeeded."""
        return (self.delivery(delivery_id) or {}).get("status") == "delivered"

    def record_delivery(self, delivery_id: str, url: str, job_id: str | None, event_type: str | None,
                        attempts: int = 1) -> None:
        """Remember a successful delivery after ``attempts`` tries (``url`` as people may see
        it: redacted). Expires after 14 days through the table's TTL."""
        self._ddb.put_item(TableName=self.table_name, Item=self._item({
            "pk": f"HOOK#{delivery_id}", "sk": "HOOK", "status": "delivered", "url": url, "job_id": job_id,
            "event_type": event_type, "attempts": attempts, "delivered_at": now_iso(), "last_attempt_at": now_iso(),
            "expires_at": int(time.time()) + 14 * 86400}))

    def record_delivery_failure(self, delivery_id: str, url: str, job_id: str | None, event_type: str | None,
                                attempts: int, error: str, retry_in: float) -> None:
        """Remember a failed attempt (the ``attempts``-th) and when the next one is due
        (``retry_in`` s from now), unless the delivery succeeded meanwhile (a concurrent
        redelivery of the message: a conditional put). Expires after 14 days (TTL)."""
        now = time.time()
        try:
            self._ddb.put_item(TableName=self.table_name, Item=self._item({
                "pk": f"HOOK#{delivery_id}", "sk": "HOOK", "status": "failed", "url": url, "job_id": job_id,
                "event_type": event_type, "attempts": attempts, "last_error": error[:1000], "last_attempt_at": now_iso(),
                "next_attempt_at": iso_utc(datetime.fromtimestamp(now + retry_in, timezone.utc)),
                "expires_at": int(now) + 14 * 86400}),
                ConditionExpression="attribute_not_exists(pk) OR #status <> :delivered",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=self._vals({":delivered": "delivered"}))
        except ClientError as e:
            if not conditional_failed(e):
                raise

    # --- output-folder claims (chalicelib.domain.ownership) ------------------------------
    def _claim_key(self, folder: str) -> dict:
        return self._item({"pk": f"{ownership.CLAIM_PK}{folder}", "sk": "PREFIX"})

    def claim_folder(self, folder: str, job_id: str) -> dict[str, str] | None:
        """Claim the output ``folder`` for ``job_id``: one transaction that sets the folder's
        owner and marks every ancestor (``ownership.claim_updates``; the conditions are in
        that module's docstring). Idempotent for the same job. Returns None when the job holds
        the folder, else the overlapping job (``ownership.conflict_of``: ``{"job_id",
        "relation", "folder"}``). A transaction cancelled by a concurrent one
        (``TransactionConflict``, no condition failed: e.g. a sibling's claim marking the same
        parent) is retried here up to ``CLAIM_ATTEMPTS`` times with jittered exponential
        backoff. Raises ``InvalidSettings`` for a folder too deep to claim, and ``ClientError``
        (``TransactionCanceledException``) when it still conflicts after the last attempt or
        lost a condition without a conflict left to name (transient: the ingest is retried)."""
        legacy = self._default_folder_owner(folder, job_id)
        if legacy:
            return legacy
        now = now_iso()
        actions = []
        for update in ownership.claim_updates(folder, job_id):
            if update["set_owner"]:
                actions.append({"Update": {
                    "TableName": self.table_name, "Key": self._claim_key(update["folder"]),
                    "UpdateExpression": "SET job_id = :j, claimed_at = if_not_exists(claimed_at, :t)",
                    "ConditionExpression": "(attribute_not_exists(job_id) OR job_id = :j) AND attribute_not_exists(nested)",
                    "ExpressionAttributeValues": self._vals({":j": job_id, ":t": now})}})
            else:
                actions.append({"Update": {
                    "TableName": self.table_name, "Key": self._claim_key(update["folder"]),
                    # a fixed-size marker (never a set of every job below: that grew past
                    # DynamoDB's 400 KB item limit under a busy common root)
                    "UpdateExpression": "SET nested = :true, first_nested = if_not_exists(first_nested, :j)",
                    "ConditionExpression": "attribute_not_exists(job_id)",
                    "ExpressionAttributeValues": self._vals({":true": True, ":j": job_id})}})
        for attempt in range(1, CLAIM_ATTEMPTS + 1):
            try:
                self._ddb.transact_write_items(TransactItems=actions)
                return None
            except ClientError as e:
                if conditional_failed(e):
                    conflict = self.folder_conflict(folder, job_id)
                    if conflict is None:
                        raise
                    return conflict
                if not transaction_conflict(e) or attempt == CLAIM_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, exponential_backoff(attempt, CLAIM_BACKOFF_SECONDS)))
        raise AssertionError("unreachable")  # pragma: no cover

    def folder_conflict(self, folder: str, job_id: str) -> dict[str, str] | None:
        """The job whose claimed output folder overlaps ``folder`` (``ownership.conflict_of``),
        read without writing (``POST /jobs`` refuses such a request with a 400). ``job_id``: the
        job that would claim it ("" for one not known yet: then any holder conflicts)."""
        items = {}
        for update in ownership.claim_updates(folder, job_id):
            found = self._ddb.get_item(TableName=self.table_name, Key=self._claim_key(update["folder"]),
                                       ConsistentRead=True).get("Item")
            items[update["folder"]] = self._plain(found) if found else None
        return ownership.conflict_of(folder, job_id, items) or self._default_folder_owner(folder, job_id)

    def _default_folder_owner(self, folder: str, job_id: str) -> dict[str, str] | None:
        """The existing job whose default folder (its id) ``folder`` is or lies inside, read
        from the job item (``ownership.default_folder_candidate``; one GetItem, only when the
        folder's first part looks like a job id): covers jobs made before default folders were
        claimed. None when there is none."""
        other = ownership.default_folder_candidate(folder, job_id)
        if other is None:
            return None
        found = self._ddb.get_item(TableName=self.table_name, Key=self._item({"pk": f"JOB#{other}", "sk": "JOB"}),
                                   ConsistentRead=True, ProjectionExpression="job_id, output_prefix").get("Item")
        if not found or (self._plain(found).get("output_prefix") or other) != other:
            return None
        exact = "/".join(ownership.folder_parts(folder))
        return {"job_id": other, "relation": "is" if exact == other else "inside", "folder": other}
