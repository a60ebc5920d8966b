"""Operational records in the jobs table, beside the jobs (docs/state.md): dead letters kept for
``GET /dlq`` and redrive, why an upload's ingest last failed, and which webhook deliveries
succeeded, and which job owns an output prefix. None of them is part of a job's state machine;
ingest errors and deliveries expire (TTL).

Keys: dead letters ``pk = "DLQ"``, ``sk = <SQS message id>``; ingest errors
``pk = "INGEST#<job_id>"``; deliveries ``pk = "HOOK#<delivery id>"``; output prefixes
``pk = "PREFIX#<prefix>"``.
"""
from __future__ import annotations

import time

from botocore.exceptions import ClientError

from .table import DynamoTable, conditional_failed, now_iso

DLQ_PK = "DLQ"


class Records(DynamoTable):
    """Dead letters, ingest errors, webhook deliveries and output-prefix owners."""

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
    def delivery_done(self, delivery_id: str) -> bool:
        """True when this (event, target) delivery already succeeded."""
        res = self._ddb.get_item(TableName=self.table_name, Key=self._item({"pk": f"HOOK#{delivery_id}", "sk": "HOOK"}),
                                 ConsistentRead=True)
        return "Item" in res

    def record_delivery(self, delivery_id: str, url: str, job_id: str | None, event_type: str | None) -> None:
        """Remember a successful delivery (expires after 14 days through the table's TTL)."""
        self._ddb.put_item(TableName=self.table_name, Item=self._item({
            "pk": f"HOOK#{delivery_id}", "sk": "HOOK", "url": url, "job_id": job_id, "event_type": event_type,
            "delivered_at": now_iso(), "expires_at": int(time.time()) + 14 * 86400}))

    def claim_prefix(self, prefix: str, job_id: str) -> str | None:
        """Claim the output ``prefix`` for ``job_id`` (item ``pk = PREFIX#<prefix>``, a
        conditional put: idempotent for the same job). Returns None when the job holds it, else
        the job id that does."""
        key = {"pk": f"PREFIX#{prefix}", "sk": "PREFIX"}
        try:
            self._ddb.put_item(TableName=self.table_name, Item=self._item({**key, "job_id": job_id, "created_at": now_iso()}),
                               ConditionExpression="attribute_not_exists(pk) OR job_id = :j",
                               ExpressionAttributeValues=self._vals({":j": job_id}))
            return None
        except ClientError as e:
            if not conditional_failed(e):
                raise
        owner = self._ddb.get_item(TableName=self.table_name, Key=self._item(key), ConsistentRead=True).get("Item")
        return self._plain(owner).get("job_id") if owner else "another job"
