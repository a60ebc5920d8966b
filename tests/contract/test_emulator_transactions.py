"""The emulator's TransactWriteItems: all or nothing (DynamoDB developer guide, "Amazon DynamoDB
Transactions"), with one rollback snapshot of the table per transaction, not one per action."""
from __future__ import annotations

import copy
import uuid

import pytest
from botocore.exceptions import ClientError

from infra.local.emulator import dynamodb_transactions


def _put(table, pk, sk, value, condition=True):
    action = {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": sk}, "value": {"N": str(value)}}}
    if condition:
        action["ConditionExpression"] = "attribute_not_exists(sk)"
    return {"Put": action}


def test_a_transaction_is_all_or_nothing_and_snapshots_its_table_once(emulator, client, monkeypatch):
    ddb, table = client("dynamodb"), emulator["stack"].refs["JobsTable"]
    pk = f"TXN#{uuid.uuid4().hex}"  # this test's own partition of the shared table
    ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "taken"}, "value": {"N": "1"}})
    snapshots = []

    class Counting:  # the real copy module, counting deep copies of a table
        def __getattr__(self, name):
            return getattr(copy, name)

        @staticmethod
        def deepcopy(obj, memo=None):
            if type(obj).__name__ == "Table":
                snapshots.append(obj)
            return copy.deepcopy(obj, memo)

    monkeypatch.setattr(dynamodb_transactions, "copy", Counting())
    # GIVEN six actions on one table whose last condition fails
    actions = [_put(table, pk, f"new-{i}", i) for i in range(5)] + [_put(table, pk, "taken", 9)]
    # WHEN they run as one transaction THEN it is canceled and none of them is written
    with pytest.raises(ClientError) as failed:
        ddb.transact_write_items(TransactItems=actions)
    assert failed.value.response["Error"]["Code"] == "TransactionCanceledException"
    items = ddb.query(TableName=table, KeyConditionExpression="pk = :p",
                      ExpressionAttributeValues={":p": {"S": pk}})["Items"]
    assert [(i["sk"]["S"], i["value"]["N"]) for i in items] == [("taken", "1")]
    assert len(snapshots) == 1, "one snapshot of the table for six actions"
    # AND without the failing action all five are written, again from one snapshot
    ddb.transact_write_items(TransactItems=actions[:5])
    items = ddb.query(TableName=table, KeyConditionExpression="pk = :p",
                      ExpressionAttributeValues={":p": {"S": pk}})["Items"]
    assert sorted(i["sk"]["S"] for i in items) == ["new-0", "new-1", "new-2", "new-3", "new-4", "taken"]
    assert len(snapshots) == 2
