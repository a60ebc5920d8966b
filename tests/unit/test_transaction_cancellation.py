"""Why a DynamoDB transaction was cancelled (``chalicelib.aws.table.cancellation_reasons``):
only a ``ConditionalCheckFailed`` reason is a lost condition (an overlapping folder, a lost
race); a ``TransactionConflict`` with a concurrent transaction is retried by the folder claim
(``Records.claim_folder``) and raised as transient when it persists (issue 22, B2)."""
import pytest
from botocore.exceptions import ClientError

from chalicelib.aws import records as records_module
from chalicelib.aws.records import Records
from chalicelib.aws.table import cancellation_reasons, conditional_failed, transaction_conflict


def cancelled(*codes: str) -> ClientError:
    """A ``TransactionCanceledException`` as botocore parses it: the modeled
    ``CancellationReasons`` at the top of the response, one per action."""
    return ClientError({"Error": {"Code": "TransactionCanceledException",
                                  "Message": f"Transaction cancelled, please refer cancellation reasons for specific "
                                             f"reasons [{', '.join(codes)}]"},
                        "CancellationReasons": [{"Code": c, **({"Message": "The conditional request failed"}
                                                               if c == "ConditionalCheckFailed" else {})}
                                                for c in codes]},
                       "TransactWriteItems")


def test_only_a_failed_condition_is_a_lost_condition():
    overlap, conflict = cancelled("None", "ConditionalCheckFailed"), cancelled("TransactionConflict", "None")
    assert cancellation_reasons(overlap) == ["None", "ConditionalCheckFailed"]
    assert cancellation_reasons(conflict) == ["TransactionConflict", "None"]
    assert conditional_failed(overlap) and not transaction_conflict(overlap)
    assert not conditional_failed(conflict) and transaction_conflict(conflict)
    both = cancelled("TransactionConflict", "ConditionalCheckFailed")
    assert conditional_failed(both) and not transaction_conflict(both), "a failed condition decides"
    throttled = cancelled("ThrottlingError")
    assert not conditional_failed(throttled) and not transaction_conflict(throttled)
    # a plain conditional write, and a cancellation that carries no reasons (as before)
    plain = ClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": "x"}}, "UpdateItem")
    assert conditional_failed(plain) and cancellation_reasons(plain) == []
    assert conditional_failed(ClientError({"Error": {"Code": "TransactionCanceledException"}}, "TransactWriteItems"))
    assert not conditional_failed(ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem"))


class ConflictingDynamo:
    """A DynamoDB client whose first ``conflicts`` transactions are cancelled by a concurrent
    one (``TransactionConflict``), then succeed."""

    def __init__(self, conflicts: int):
        self.conflicts, self.calls = conflicts, 0

    def transact_write_items(self, TransactItems):  # noqa: N803
        self.calls += 1
        if self.calls <= self.conflicts:
            raise cancelled("None", "TransactionConflict")
        return {}

    def get_item(self, **kwargs):
        raise AssertionError("a transaction conflict is not an overlap: nothing to read back")


def records_on(ddb) -> Records:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
    r = Records.__new__(Records)
    r.table_name, r._ddb, r._ser, r._de = "jobs", ddb, TypeSerializer(), TypeDeserializer()
    return r


@pytest.fixture
def sleeps(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(records_module.time, "sleep", slept.append)
    return slept


def test_a_claim_cancelled_by_a_concurrent_transaction_is_retried(sleeps):
    ddb = ConflictingDynamo(conflicts=2)
    assert records_on(ddb).claim_folder("course/l1", "J") is None
    assert ddb.calls == 3 and len(sleeps) == 2
    # jittered exponential backoff from a small base
    assert 0 <= sleeps[0] <= records_module.CLAIM_BACKOFF_SECONDS
    assert 0 <= sleeps[1] <= 2 * records_module.CLAIM_BACKOFF_SECONDS


def test_a_claim_that_keeps_conflicting_is_raised_as_transient(sleeps):
    ddb = ConflictingDynamo(conflicts=records_module.CLAIM_ATTEMPTS)
    with pytest.raises(ClientError) as e:
        records_on(ddb).claim_folder("course/l1", "J")
    assert transaction_conflict(e.value)
    assert ddb.calls == records_module.CLAIM_ATTEMPTS and len(sleeps) == records_module.CLAIM_ATTEMPTS - 1
