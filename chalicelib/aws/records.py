"""Operational records in the jobs table, beside the jobs (DESIGN §3): dead letters kept for
``GET /dlq`` and redrive, why an upload's ingest last failed, and which webhook deliveries
succeeded. None of them is part of a job's state machine; all but dead letters expire (TTL).

Keys: dead letters ``pk = "DLQ"``, ``sk = <SQS message id>``; ingest errors
``pk = "INGEST#<job_id>"``; deliveries ``pk = "HOOK#<delivery id>"``.
"""
from __future__ import annotations

import time

from .table import DynamoTable, now_iso

DLQ_PK = "DLQ"


class Records(DynamoTable):
    """Dead letters, ingest errors and webhook deliveries."""

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

