"""The pieces of the local cloud's refusals that need no server: sizes as AWS counts them, the
anonymous principal against a bucket policy, browser forms that name a field twice, and the
gate in front of moto's admin API."""
from __future__ import annotations

import io
import json

import pytest

from infra.local.emulator.limits import (MAX_ITEM_BYTES, MAX_METADATA_BYTES, Refusal, check_dynamodb, check_s3_metadata,
                                         check_sqs, item_size, message_size, metadata_size)
from infra.local.emulator.server import ADMIN_TOKEN_HEADER, AdminGate
from infra.local.iam.anonymous import allows_anyone
from infra.local.iam.post_policy import MalformedForm, parse_form


@pytest.mark.parametrize("value, size", [
    ({"S": "héllo"}, 6), ({"N": "123.4500"}, 4), ({"N": "-0.001"}, 2), ({"N": "1E+10"}, 2), ({"B": "AAEC"}, 3),
    ({"BOOL": True}, 1), ({"NULL": True}, 1), ({"SS": ["a", "bc"]}, 3), ({"L": [{"S": "ab"}, {"N": "1"}]}, 3 + 3 + 3),
    ({"M": {"k": {"S": "v"}}}, 3 + 1 + 1 + 1),
])
def test_attribute_sizes_as_dynamodb_counts_them(value, size):
    assert item_size({"a": value}) == 1 + size


def test_an_item_over_400_kb_is_refused_wherever_it_is_written():
    at_limit = {"pk": {"S": "p"}, "v": {"S": "x" * (MAX_ITEM_BYTES - 4)}}
    over = {"pk": {"S": "p"}, "v": {"S": "x" * (MAX_ITEM_BYTES - 3)}}
    assert item_size(at_limit) == MAX_ITEM_BYTES
    check_dynamodb("PutItem", {"Item": at_limit})
    for operation, payload in [("PutItem", {"Item": over}),
                               ("TransactWriteItems", {"TransactItems": [{"Put": {"Item": over}}]}),
                               ("BatchWriteItem", {"RequestItems": {"t": [{"PutRequest": {"Item": over}}]}})]:
        with pytest.raises(Refusal) as refused:
            check_dynamodb(operation, payload)
        assert (refused.value.code, refused.value.message) == ("ValidationException",
                                                               "Item size has exceeded the maximum allowed size")


def test_counts_of_transactions_and_batches():
    put = {"Put": {"Item": {"pk": {"S": "p"}}}}
    check_dynamodb("TransactWriteItems", {"TransactItems": [put] * 100})
    with pytest.raises(Refusal, match="less than or equal to 100"):
        check_dynamodb("TransactWriteItems", {"TransactItems": [put] * 101})
    write = {"PutRequest": {"Item": {"pk": {"S": "p"}}}}
    check_dynamodb("BatchWriteItem", {"RequestItems": {"a": [write] * 25}})
    with pytest.raises(Refusal, match="Too many items requested"):
        check_dynamodb("BatchWriteItem", {"RequestItems": {"a": [write] * 13, "b": [write] * 13}})


def test_s3_metadata_counts_utf8_bytes_of_header_names_and_values():
    # the stricter reading of S3's rule, as the service counts before an upload
    assert metadata_size([("x-amz-meta-title", "é"), ("content-type", "video/mp4")]) == len("x-amz-meta-title") + 2
    check_s3_metadata([("x-amz-meta-k", "v" * (MAX_METADATA_BYTES - len("x-amz-meta-k")))])
    with pytest.raises(Refusal) as refused:
        check_s3_metadata([("x-amz-meta-k", "é" * (MAX_METADATA_BYTES // 2))])  # 1,024 characters, 2,049 bytes
    assert refused.value.code == "MetadataTooLarge" and refused.value.extra["MaxSizeAllowed"] == 2048


def test_sqs_message_size_counts_body_and_attributes():
    attributes = {"kind": {"DataType": "String", "StringValue": "chunk"}, "raw": {"DataType": "Binary",
                                                                              "BinaryValue": "AAEC"}}
    assert message_size("héllo", attributes) == 6 + (4 + 6 + 5) + (3 + 6 + 3)
    with pytest.raises(Refusal, match="Message must be shorter than 262144 bytes"):
        check_sqs("SendMessage", {"MessageBody": "x" * 262145})
    with pytest.raises(Refusal) as refused:
        check_sqs("SendMessageBatch", {"Entries": [{"MessageBody": "x" * 131072}] * 2 + [{"MessageBody": "y"}]})
    assert refused.value.code == "BatchRequestTooLong"


PUBLIC_READ = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::out/*"}]})


@pytest.mark.parametrize("policy, action, resource, allowed", [
    (PUBLIC_READ, "s3:GetObject", "arn:aws:s3:::out/job/master.m3u8", True),
    (PUBLIC_READ, "s3:PutObject", "arn:aws:s3:::out/job/master.m3u8", False),
    (PUBLIC_READ, "s3:GetObject", "arn:aws:s3:::other/job/master.m3u8", False),
    (PUBLIC_READ, "s3:ListBucket", "arn:aws:s3:::out", False),
    # only everyone counts: a service principal (CloudFront's read) is not the anonymous caller
    (json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudfront.amazonaws.com"},
                                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::out/*"}]}),
     "s3:GetObject", "arn:aws:s3:::out/a", False),
    # an allow with a condition is not evaluated, so it does not count; a deny for everyone wins
    (json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:*",
                                "Resource": "arn:aws:s3:::out/*", "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4"}}}]}),
     "s3:GetObject", "arn:aws:s3:::out/a", False),
    (json.dumps({"Statement": [json.loads(PUBLIC_READ)["Statement"][0],
                               {"Effect": "Deny", "Principal": "*", "Action": "s3:Get*", "Resource": "arn:aws:s3:::out/private/*"}]}),
     "s3:GetObject", "arn:aws:s3:::out/private/a", False),
    ("not json", "s3:GetObject", "arn:aws:s3:::out/a", False),
])
def test_the_anonymous_principal_gets_only_what_a_policy_grants_everyone(policy, action, resource, allowed):
    assert allows_anyone(policy, action, resource) is allowed


def form(*parts: tuple[str, str]) -> tuple[str, bytes]:
    filename = '; filename="f"'
    body = b"".join(f'--b\r\nContent-Disposition: form-data; name="{n}"{filename if n == "file" else ""}'
                    f"\r\n\r\n{v}\r\n".encode() for n, v in parts)
    return "multipart/form-data; boundary=b", body + b"--b--\r\n"


def test_a_form_is_read_once_per_field_with_the_file_last():
    fields, data = parse_form(*form(("key", "uploads/a.mp4"), ("Policy", "p"), ("file", "bytes")))
    assert fields == {"key": "uploads/a.mp4", "policy": "p"} and data == b"bytes"


@pytest.mark.parametrize("parts, argument", [
    ((("key", "uploads/a.mp4"), ("key", "elsewhere/a.mp4"), ("file", "x")), "key"),
    ((("key", "uploads/a.mp4"), ("KEY", "elsewhere/a.mp4"), ("file", "x")), "key"),
    ((("key", "k"), ("file", "x"), ("file", "y")), "file"),
    ((("key", "k"),), "file"),
])
def test_a_form_naming_a_field_twice_or_without_one_file_is_refused(parts, argument):
    with pytest.raises(MalformedForm) as refused:
        parse_form(*form(*parts))
    assert refused.value.argument == argument


def test_fields_after_the_file_are_ignored_as_s3_ignores_them():
    """S3: "The file or content must be the last field in the form. Any fields below it are
    ignored." Neither checked against the policy nor handed on to be stored."""
    from infra.local.iam.post_policy import up_to_file
    content_type, body = form(("key", "uploads/a.mp4"), ("file", "bytes"), ("x-amz-meta-a", "after"),
                              ("key", "elsewhere/a.mp4"))
    fields, data = parse_form(content_type, body)
    assert fields == {"key": "uploads/a.mp4"} and data == b"bytes"
    kept = up_to_file(content_type, body)
    assert b"after" not in kept and b"elsewhere" not in kept
    assert parse_form(content_type, kept) == (fields, data)
    content_type, body = form(("key", "k"), ("file", "x"))
    assert up_to_file(content_type, body) == body


def test_the_admin_api_answers_only_with_the_run_s_token():
    seen = []

    def moto(environ, start_response):
        seen.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"reset"]

    gate = AdminGate(moto, "the-token")

    def call(path, token=None):
        environ = {"PATH_INFO": path, "REQUEST_METHOD": "POST", "wsgi.input": io.BytesIO()}
        if token is not None:
            environ["HTTP_" + ADMIN_TOKEN_HEADER.upper().replace("-", "_")] = token
        status = []
        gate(environ, lambda s, h: status.append(s))
        return status[0]

    assert call("/moto-api/reset").startswith("403") and call("//moto-api/reset").startswith("403")
    assert call("/MOTO-API/reset").startswith("403") and call("/moto-api/reset", "wrong").startswith("403")
    assert seen == []
    assert call("/moto-api/reset", "the-token").startswith("200")
    assert call("/bucket/moto-api/reset").startswith("200")  # an object key that merely contains the name
