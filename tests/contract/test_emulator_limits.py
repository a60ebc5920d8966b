"""The emulator refuses what AWS refuses for its size or count (``infra/local/emulator/limits.py``),
with the service's own error, and takes what is exactly at the limit.

Sources: DynamoDB developer guide, "Service, account, and table quotas in Amazon DynamoDB"; S3
user guide, "Working with object metadata"; SQS developer guide, "Amazon SQS message quotas"."""
from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from infra.local.emulator.limits import (MAX_ITEM_BYTES, MAX_MESSAGE_BYTES, MAX_METADATA_BYTES,
                                         MAX_TRANSACTION_BYTES, item_size)


def refused(call) -> dict:
    with pytest.raises(ClientError) as err:
        call()
    return {"code": err.value.response["Error"]["Code"], "message": err.value.response["Error"].get("Message", ""),
            "status": err.value.response["ResponseMetadata"]["HTTPStatusCode"]}


@pytest.fixture
def table(emulator):
    return emulator["stack"].refs["JobsTable"]


@pytest.fixture
def pk():
    return f"LIMIT#{uuid.uuid4().hex}"  # this test's own partition of the shared table


def sized_item(pk: str, sk: str, size: int) -> dict:
    """An item of exactly ``size`` bytes as DynamoDB counts them."""
    item = {"pk": {"S": pk}, "sk": {"S": sk}, "v": {"S": ""}}
    item["v"]["S"] = "x" * (size - item_size(item))
    assert item_size(item) == size
    return item


def test_an_item_of_400_kb_is_written_and_one_byte_more_is_refused(client, table, pk):
    ddb = client("dynamodb")
    ddb.put_item(TableName=table, Item=sized_item(pk, "at-limit", MAX_ITEM_BYTES))
    assert refused(lambda: ddb.put_item(TableName=table, Item=sized_item(pk, "over", MAX_ITEM_BYTES + 1))) == {
        "code": "ValidationException", "message": "Item size has exceeded the maximum allowed size", "status": 400}
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": "over"}})
    # the same limit inside a transaction and a batch
    put = {"Put": {"TableName": table, "Item": sized_item(pk, "txn", MAX_ITEM_BYTES + 1)}}
    assert refused(lambda: ddb.transact_write_items(TransactItems=[put]))["code"] == "ValidationException"
    batch = {table: [{"PutRequest": {"Item": sized_item(pk, "batch", MAX_ITEM_BYTES + 1)}}]}
    assert refused(lambda: ddb.batch_write_item(RequestItems=batch))["message"] == \
        "Item size has exceeded the maximum allowed size"


def test_an_update_whose_result_is_over_400_kb_is_refused_and_changes_nothing(client, table, pk):
    ddb = client("dynamodb")
    key = {"pk": {"S": pk}, "sk": {"S": "grows"}}
    ddb.put_item(TableName=table, Item=sized_item(pk, "grows", MAX_ITEM_BYTES - 20))
    # "w" plus a 19-byte string: exactly 400 KB
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET w = :w",
                    ExpressionAttributeValues={":w": {"S": "y" * 19}})
    assert refused(lambda: ddb.update_item(TableName=table, Key=key, UpdateExpression="SET w2 = :w",
                                           ExpressionAttributeValues={":w": {"S": "z"}})) == {
        "code": "ValidationException", "message": "Item size to update has exceeded the maximum allowed size",
        "status": 400}
    item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert "w2" not in item and item_size(item) == MAX_ITEM_BYTES
    # an update that would create an oversized item creates nothing
    new_key = {"pk": {"S": pk}, "sk": {"S": "new"}}
    refused(lambda: ddb.update_item(TableName=table, Key=new_key, UpdateExpression="SET w = :w",
                                    ExpressionAttributeValues={":w": {"S": "y" * MAX_ITEM_BYTES}}))
    assert "Item" not in ddb.get_item(TableName=table, Key=new_key, ConsistentRead=True)


def test_a_transaction_takes_100_actions_and_4_mb_no_more(client, table, pk):
    ddb = client("dynamodb")
    put = lambda sk, size=None: {"Put": {"TableName": table, "Item": (sized_item(pk, sk, size) if size else  # noqa: E731
                                                                       {"pk": {"S": pk}, "sk": {"S": sk}})}}
    ddb.transact_write_items(TransactItems=[put(f"a-{i:03d}") for i in range(100)])
    answer = refused(lambda: ddb.transact_write_items(TransactItems=[put(f"b-{i:03d}") for i in range(101)]))
    assert answer["code"] == "ValidationException" and answer["status"] == 400
    assert "Member must have length less than or equal to 100" in answer["message"]
    assert not ddb.query(TableName=table, KeyConditionExpression="pk = :p AND begins_with(sk, :b)",
                         ExpressionAttributeValues={":p": {"S": pk}, ":b": {"S": "b-"}})["Items"]
    # 4 MB in all: ten items of 400 KB pass, a transaction over 4 MB does not
    ddb.transact_write_items(TransactItems=[put(f"c-{i}", MAX_ITEM_BYTES) for i in range(10)])
    over = [put(f"d-{i}", MAX_ITEM_BYTES) for i in range(MAX_TRANSACTION_BYTES // MAX_ITEM_BYTES + 1)]
    assert refused(lambda: ddb.transact_write_items(TransactItems=over))["code"] == "ValidationException"


def test_a_batch_write_takes_25_requests(client, table, pk):
    ddb = client("dynamodb")
    request = lambda i: {"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"S": f"batch-{i:02d}"}}}}  # noqa: E731
    ddb.batch_write_item(RequestItems={table: [request(i) for i in range(25)]})
    answer = refused(lambda: ddb.batch_write_item(RequestItems={table: [request(i) for i in range(26)]}))
    assert answer["code"] == "ValidationException" and "less than or equal to 25" in answer["message"]


def test_s3_user_metadata_of_2_kb_is_stored_and_more_is_refused(client, emulator):
    s3, bucket = client("s3"), emulator["stack"].refs["IngestBucket"]
    at_limit = {"k": "v" * (MAX_METADATA_BYTES - len("x-amz-meta-k"))}  # header name and value: exactly 2 KB
    s3.put_object(Bucket=bucket, Key="limits/at.bin", Body=b"x", Metadata=at_limit)
    assert s3.head_object(Bucket=bucket, Key="limits/at.bin")["Metadata"] == at_limit
    over = {"k": "v" * (MAX_METADATA_BYTES - len("x-amz-meta-k") + 1)}
    assert refused(lambda: s3.put_object(Bucket=bucket, Key="limits/over.bin", Body=b"x", Metadata=over)) == {
        "code": "MetadataTooLarge", "message": "Your metadata headers exceed the maximum allowed metadata size.",
        "status": 400}
    assert refused(lambda: s3.create_multipart_upload(Bucket=bucket, Key="limits/mpu.bin", Metadata=over))["code"] \
        == "MetadataTooLarge"
    assert refused(lambda: s3.copy_object(Bucket=bucket, Key="limits/copy.bin", Metadata=over, MetadataDirective="REPLACE",
                                          CopySource={"Bucket": bucket, "Key": "limits/at.bin"}))["code"] \
        == "MetadataTooLarge"
    s3.copy_object(Bucket=bucket, Key="limits/copy.bin", CopySource={"Bucket": bucket, "Key": "limits/at.bin"})
    # a presigned PUT carries its metadata in the query string: counted the same
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "limits/presigned.bin",
                                                          "Metadata": over})
    import urllib.error
    import urllib.request
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="PUT",
                                                      headers={"x-amz-meta-k": over["k"]}))
    assert err.value.code == 400 and b"MetadataTooLarge" in err.value.read()


def test_a_browser_form_with_metadata_over_2_kb_is_refused(emulator):
    import urllib.error
    import urllib.request
    bucket = emulator["stack"].refs["IngestBucket"]
    boundary = "limits-boundary"
    fields = {"key": "limits/form.bin", "x-amz-meta-k": "v" * MAX_METADATA_BYTES}
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields.items())
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\nx\r\n'
             f"--{boundary}--\r\n").encode()
    request = urllib.request.Request(f"{emulator['endpoint']}/{bucket}", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request)
    assert err.value.code == 400 and b"<Code>MetadataTooLarge</Code>" in err.value.read()


def test_an_sqs_message_of_256_kib_is_sent_and_more_is_refused(client):
    sqs = client("sqs")
    queue = sqs.create_queue(QueueName=f"limits-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    attributes = {"kind": {"DataType": "String", "StringValue": "chunk"}}  # 4 + 6 + 5 bytes count too
    sqs.send_message(QueueUrl=queue, MessageBody="x" * (MAX_MESSAGE_BYTES - 15), MessageAttributes=attributes)
    assert refused(lambda: sqs.send_message(QueueUrl=queue, MessageBody="x" * (MAX_MESSAGE_BYTES - 14),
                                            MessageAttributes=attributes)) == {
        "code": "InvalidParameterValue", "status": 400,
        "message": "One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes."}
    # a batch: 256 KiB in all
    entries = [{"Id": str(i), "MessageBody": "x" * (MAX_MESSAGE_BYTES // 2)} for i in range(2)]
    sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    entries.append({"Id": "2", "MessageBody": "y"})
    answer = refused(lambda: sqs.send_message_batch(QueueUrl=queue, Entries=entries))
    assert answer["code"] == "BatchRequestTooLong" and answer["status"] == 400
    assert int(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"]) == 3
