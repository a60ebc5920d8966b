"""One DynamoDB table with plain-Python (de)serialisation, and the time helpers every item
uses (ISO 8601 UTC timestamps that sort as text)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from .clients import client


def cancellation_reasons(error: ClientError) -> list[str]:
    """The ``Code`` of each action's ``CancellationReasons`` entry of a
    ``TransactionCanceledException`` (``"None"`` for an action that was not the cause, e.g.
    ``["None", "ConditionalCheckFailed"]`` or ``["TransactionConflict", "None"]``); ``[]`` for
    any other error, or a cancellation that carries no reasons."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return []
    return [str((r or {}).get("Code") or "None") for r in error.response.get("CancellationReasons") or []]


def conditional_failed(error: ClientError) -> bool:
    """True when ``error`` is a lost condition (a conditional write, or a transaction
    cancelled because a condition failed: a ``ConditionalCheckFailed`` cancellation reason),
    which the adapters report as ``False`` rather than raise. A transaction cancelled only for
    another reason (``TransactionConflict`` with a concurrent transaction, throttling) is not:
    the caller raises it as transient. A cancellation that carries no reasons at all counts as
    a lost condition (as before reasons were read)."""
    code = error.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = cancellation_reasons(error)
    return not reasons or "ConditionalCheckFailed" in reasons


def transaction_conflict(error: ClientError) -> bool:
    """True when ``error`` cancelled a transaction because of a concurrent one on the same
    items (a ``TransactionConflict`` reason) and no condition failed: worth retrying at once."""
    reasons = cancellation_reasons(error)
    return "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons


def iso_utc(moment: datetime, timespec: str = "milliseconds") -> str:
    """``moment`` (timezone-aware) as ISO 8601 UTC with a ``Z`` (``timespec`` as
    ``datetime.isoformat``), e.g. ``2026-11-22T18:05:00.000Z``."""
    return moment.astimezone(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def now_iso() -> str:
    """Current UTC time, ISO 8601 with milliseconds (sorts as text)."""
    return iso_utc(datetime.now(timezone.utc))


def seconds_since(iso: str | None, until_iso: str | None = None) -> float:
    """Seconds from ``iso`` to ``until_iso`` (default now); 0.0 when ``iso`` is unknown."""
    if not iso:
        return 0.0
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    end = parse(until_iso) if until_iso else datetime.now(timezone.utc)
    return max(0.0, (end - parse(iso)).total_seconds())


def _to_ddb(value: Any) -> Any:
    return json.loads(json.dumps(value), parse_float=Decimal)


def _from_ddb(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_ddb(v) for v in value]
    if isinstance(value, set):
        return sorted(_from_ddb(v) for v in value)
    if isinstance(value, dict):
        return {k: _from_ddb(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class DynamoTable:
    """One DynamoDB table (``table`` is its name) with plain-Python (de)serialisation; the
    base of the adapters that share the jobs table."""

    def __init__(self, table: str, region: str | None = None, endpoint_url: str | None = None):
        self.table_name = table
        self._ddb = client("dynamodb", region, endpoint_url)
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
        self._ser, self._de = TypeSerializer(), TypeDeserializer()

    # --- (de)serialisation -------------------------------------------------------------
    def _item(self, d: dict) -> dict:
        return {k: self._ser.serialize(v) for k, v in _to_ddb(d).items() if v is not None}

    def _plain(self, item: dict) -> dict:
        return _from_ddb({k: self._de.deserialize(v) for k, v in item.items()})

    def _vals(self, d: dict) -> dict:
        return {k: self._ser.serialize(v) for k, v in _to_ddb(d).items()}

    def _query(self, **kwargs: Any) -> list[dict]:
        """Every item a Query returns, all pages, as plain values."""
        items: list[dict] = []
        while True:
            res = self._ddb.query(TableName=self.table_name, **kwargs)
            items += [self._plain(i) for i in res.get("Items", [])]
            if "LastEvaluatedKey" not in res:
                return items
            kwargs["ExclusiveStartKey"] = res["LastEvaluatedKey"]
