"""AWS's size and count limits, enforced by the emulator as the services enforce them.

moto 5.2.5 checks few of them (it refuses a ``TransactWriteItems`` of more than 100 actions and,
approximately, an ``UpdateItem`` result over ~405,000 bytes; it stores a 1 MB ``PutItem``, 3 KB
of S3 user metadata and SQS messages up to 1 MiB). A local run that passes must not hide a
failure AWS would produce (docs/local-cloud.md), so ``AwsLimits`` sits in front of moto and
refuses, with the service's own error code:

* **DynamoDB** (DynamoDB developer guide, "Service, account, and table quotas in Amazon
  DynamoDB", and the API reference of each operation):

  - an item is at most 400 KB (``MAX_ITEM_BYTES`` = 409,600 bytes: DynamoDB's KB is 1,024 bytes,
    as in its capacity units), counted as the guide's "Item sizes and formats" counts it: the
    UTF-8 length of every attribute name plus its value (a string's UTF-8 bytes, a binary's
    bytes, a number ~1 byte per two significant digits + 1, 1 byte for a boolean or null, 3
    bytes plus 1 per element for a list or map, a set the sum of its elements). ``PutItem``,
    a transaction's ``Put`` and a ``BatchWriteItem`` ``PutRequest`` over it get
    ``ValidationException: Item size has exceeded the maximum allowed size``; an ``UpdateItem``
    (alone or in a transaction) whose *result* is over it gets ``ValidationException: Item
    size to update has exceeded the maximum allowed size`` and writes nothing (``install``);
  - ``TransactWriteItems``: at most 100 actions (``ValidationException: ... Member must have
    length less than or equal to 100``) whose items add up to at most 4 MB
    (``MAX_TRANSACTION_BYTES``; the API reference says "The aggregate size of the items in the
    transaction cannot exceed 4 MB"; the exact wording of that refusal is ours);
  - ``BatchWriteItem``: at most 25 requests (per table: the constraint message; in all: "Too
    many items requested for the BatchWriteItem call").

* **S3** (S3 user guide, "Working with object metadata"): user-defined metadata is at most 2 KB,
  "measured by taking the sum of the number of bytes in the UTF-8 encoding of each key and
  value". Whether the key counts with its ``x-amz-meta-`` prefix is not said; this counts it
  (the stricter reading, the one the service applies before an upload). ``PutObject``, ``CopyObject`` with
  replaced metadata, ``CreateMultipartUpload`` (headers, or a presigned URL's query) and a
  browser's POST form (``x-amz-meta-*`` fields) over ``MAX_METADATA_BYTES`` get
  ``400 MetadataTooLarge``.

* **SQS** (SQS developer guide, "Amazon SQS message quotas"): a message, its body plus its
  attributes (each attribute's name, data type and value), is at most 256 KiB
  (``MAX_MESSAGE_BYTES`` = 262,144 bytes): ``SendMessage`` gets ``InvalidParameterValue``
  ("Message must be shorter than 262144 bytes"), ``SendMessageBatch`` whose messages add up
  to more gets ``BatchRequestTooLong``. AWS raised the quota to 1 MiB in 2025 (a queue's
  ``MaximumMessageSize`` now goes up to 1,048,576); the local cloud keeps 256 KiB, the bound
  SNS (which feeds the webhooks queue) and the pipeline's design still assume: stricter than
  AWS, never more permissive.

``install`` also replaces moto's approximate item-size check on updates by the exact one above.
"""
from __future__ import annotations

import base64
import copy
import io
import json
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from chalicelib.domain.settings_metadata import s3_metadata_bytes

#: DynamoDB: one item, 400 KB.
MAX_ITEM_BYTES = 400 * 1024
#: DynamoDB: actions in one TransactWriteItems, and their items' aggregate size (4 MB).
MAX_TRANSACTION_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
#: DynamoDB: requests in one BatchWriteItem.
MAX_BATCH_WRITE_REQUESTS = 25
#: S3: user-defined metadata of one object, 2 KB.
MAX_METADATA_BYTES = 2 * 1024
#: SQS: one message (body and attributes), 256 KiB; also a whole SendMessageBatch.
MAX_MESSAGE_BYTES = 256 * 1024

META_PREFIX = "x-amz-meta-"
_INSTALLED = False


# --- sizes --------------------------------------------------------------------------------
def _binary_length(value: Any) -> int:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    try:
        return len(base64.b64decode(value, validate=False))
    except (ValueError, TypeError):
        return len(str(value).encode())


def _number_size(value: Any) -> int:
    """~1 byte per two significant digits, plus 1 (leading and trailing zeros trimmed)."""
    try:
        digits = Decimal(str(value)).normalize().as_tuple().digits
    except InvalidOperation:
        digits = tuple(c for c in str(value) if c.isdigit())
    return (max(len(digits), 1) + 1) // 2 + 1


def attribute_size(value: Any) -> int:
    """Bytes of one attribute value, as DynamoDB counts them: ``value`` is wire format
    (``{"S": "..."}``) or a moto ``DynamoType`` (``.type``, ``.value``)."""
    if hasattr(value, "type") and hasattr(value, "value"):
        kind, raw = value.type, value.value
    else:
        (kind, raw), = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return _number_size(raw)
    if kind == "B":
        return _binary_length(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in raw)
    if kind == "NS":
        return sum(_number_size(v) for v in raw)
    if kind == "BS":
        return sum(_binary_length(v) for v in raw)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in raw.items())
    return len(json.dumps(raw, default=str).encode())


def item_size(attributes: dict[str, Any]) -> int:
    """Bytes of an item (attribute name -> value): every name's UTF-8 length plus its value."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in attributes.items())


def metadata_size(pairs: Iterable[tuple[str, str]]) -> int:
    """Bytes of S3 user metadata in ``(header name, value)`` pairs, counted as the service
    counts it before an upload (``chalicelib.domain.settings_metadata.s3_metadata_bytes``: UTF-8
    of every ``x-amz-meta-<key>`` header name and value; the stricter reading of S3's rule, so
    the emulator is never more permissive than S3 and agrees with what the service checks)."""
    return s3_metadata_bytes({k[len(META_PREFIX):]: v for k, v in pairs if k.lower().startswith(META_PREFIX)})


def message_size(body: str, attributes: dict[str, Any] | None) -> int:
    """Bytes of an SQS message: its body's UTF-8 plus each attribute's name, data type and
    value (``StringValue`` UTF-8 or ``BinaryValue`` bytes)."""
    size = len(body.encode())
    for name, attribute in (attributes or {}).items():
        size += len(name.encode()) + len(str(attribute.get("DataType", "")).encode())
        if "StringValue" in attribute:
            size += len(str(attribute["StringValue"]).encode())
        if "BinaryValue" in attribute:
            size += _binary_length(attribute["BinaryValue"])
    return size


# --- the checks, by service ------------------------------------------------------------------
class Refusal(Exception):
    """A request AWS refuses: HTTP ``status``, error ``code`` and ``message`` (plus extra XML
    elements for S3)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _validation(message: str) -> Refusal:
    return Refusal(400, "ValidationException", message)


def check_dynamodb(operation: str, payload: dict) -> None:
    """Raise ``Refusal`` when DynamoDB refuses this request for its size or count."""
    too_large = "Item size has exceeded the maximum allowed size"
    if operation == "PutItem":
        if item_size(payload.get("Item") or {}) > MAX_ITEM_BYTES:
            raise _validation(too_large)
    elif operation == "TransactWriteItems":
        actions = payload.get("TransactItems") or []
        if len(actions) > MAX_TRANSACTION_ACTIONS:
            raise _validation("1 validation error detected: Value at 'transactItems' failed to satisfy constraint: "
                              f"Member must have length less than or equal to {MAX_TRANSACTION_ACTIONS}")
        total = 0
        for action in actions:
            for kind, spec in action.items():
                if kind == "Put":
                    size = item_size(spec.get("Item") or {})
                    if size > MAX_ITEM_BYTES:
                        raise _validation(too_large)
                else:  # the key, and what an update writes
                    size = item_size(spec.get("Key") or {}) + item_size(spec.get("ExpressionAttributeValues") or {})
                total += size
        if total > MAX_TRANSACTION_BYTES:
            raise _validation(f"Transaction request cannot exceed {MAX_TRANSACTION_BYTES} bytes: the aggregate size "
                              f"of its items is {total} bytes")
    elif operation == "BatchWriteItem":
        requests = payload.get("RequestItems") or {}
        for table, writes in requests.items():
            if len(writes) > MAX_BATCH_WRITE_REQUESTS:
                raise _validation(f"1 validation error detected: Value at 'requestItems' failed to satisfy constraint: "
                                  f"Map value must satisfy constraint: [Member must have length less than or equal "
                                  f"to {MAX_BATCH_WRITE_REQUESTS}, Member must have length greater than or equal "
                                  f"to 1]")
        if sum(len(writes) for writes in requests.values()) > MAX_BATCH_WRITE_REQUESTS:
            raise _validation("Too many items requested for the BatchWriteItem call")
        for writes in requests.values():
            for write in writes:
                if item_size((write.get("PutRequest") or {}).get("Item") or {}) > MAX_ITEM_BYTES:
                    raise _validation(too_large)


def check_sqs(operation: str, payload: dict) -> None:
    """Raise ``Refusal`` when SQS refuses this send for its size (``payload`` in the JSON
    protocol's shape)."""
    if operation == "SendMessage":
        size = message_size(str(payload.get("MessageBody", "")), payload.get("MessageAttributes"))
        if size > MAX_MESSAGE_BYTES:
            raise Refusal(400, "InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be "
                                                        f"shorter than {MAX_MESSAGE_BYTES} bytes.")
    elif operation == "SendMessageBatch":
        size = sum(message_size(str(e.get("MessageBody", "")), e.get("MessageAttributes"))
                   for e in payload.get("Entries") or [])
        if size > MAX_MESSAGE_BYTES:
            raise Refusal(400, "BatchRequestTooLong", f"Batch requests cannot be longer than {MAX_MESSAGE_BYTES} "
                                                      f"bytes. You have sent {size} bytes.")


def _sqs_query_payload(form: dict[str, list[str]]) -> dict:
    """A query-protocol SendMessage(Batch) form as the JSON protocol's payload."""
    def attributes(prefix: str) -> dict:
        out: dict[str, dict] = {}
        n = 1
        while f"{prefix}MessageAttribute.{n}.Name" in form:
            base = f"{prefix}MessageAttribute.{n}."
            out[form[base + "Name"][0]] = {k: form[base + "Value." + k][0] for k in
                                           ("DataType", "StringValue", "BinaryValue") if base + "Value." + k in form}
            n += 1
        return out
    if "MessageBody" in form:
        return {"MessageBody": form["MessageBody"][0], "MessageAttributes": attributes("")}
    entries, n = [], 1
    while f"SendMessageBatchRequestEntry.{n}.Id" in form:
        prefix = f"SendMessageBatchRequestEntry.{n}."
        entries.append({"MessageBody": form.get(prefix + "MessageBody", [""])[0],
                        "MessageAttributes": attributes(prefix)})
        n += 1
    return {"Entries": entries}


def check_s3_metadata(pairs: Iterable[tuple[str, str]]) -> None:
    """Raise ``Refusal`` when S3 user metadata is over 2 KB."""
    size = metadata_size(pairs)
    if size > MAX_METADATA_BYTES:
        raise Refusal(400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.",
                      Size=size, MaxSizeAllowed=MAX_METADATA_BYTES)


def refusal_response(refusal: Refusal, protocol: str, service: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of ``refusal`` in the protocol of the request: ``json``
    (X-Amz-Target), ``query`` (XML ErrorResponse) or ``s3`` (XML Error)."""
    reasons = {400: "Bad Request", 403: "Forbidden"}
    status = f"{refusal.status} {reasons.get(refusal.status, 'Error')}"
    if protocol == "json":
        prefix = {"dynamodb": "com.amazon.coral.validate#", "sqs": "com.amazonaws.sqs#"}.get(service, "")
        body = json.dumps({"__type": prefix + refusal.code, "message": refusal.message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", refusal.code)]
        if service == "sqs":
            headers.append(("x-amzn-query-error", f"{refusal.code};Sender"))
        return status, headers, body
    from xml.sax.saxutils import escape
    if protocol == "s3":
        extra = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in refusal.extra.items())
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{refusal.code}</Code>'
                f"<Message>{escape(refusal.message)}</Message>{extra}<RequestId>local</RequestId></Error>").encode()
        return status, [("Content-Type", "application/xml")], body
    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{refusal.code}</Code><Message>{escape(refusal.message)}"
            f"</Message></Error><RequestId>local</RequestId></ErrorResponse>").encode()
    return status, [("Content-Type", "text/xml")], body


class AwsLimits:
    """WSGI middleware in front of moto: refuses what AWS refuses for its size or count
    (module docstring). Other requests pass untouched; only the bodies of DynamoDB writes, SQS
    sends and S3 POST forms are read (and handed on)."""

    DYNAMODB_WRITES = ("PutItem", "TransactWriteItems", "BatchWriteItem")
    SQS_SENDS = ("SendMessage", "SendMessageBatch")

    def __init__(self, app: Callable):
        self.app = app

    @staticmethod
    def _body(environ: dict) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def _check(self, environ: dict) -> None:
        """Raise ``Refusal`` for a request over a limit."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        method = environ.get("REQUEST_METHOD", "")
        if target:
            prefix, _, operation = target.partition(".")
            if prefix.startswith("DynamoDB_") and operation in self.DYNAMODB_WRITES:
                check_dynamodb(operation, _json(self._body(environ)))
            elif prefix == "AmazonSQS" and operation in self.SQS_SENDS:
                check_sqs(operation, _json(self._body(environ)))
            return
        content_type = environ.get("CONTENT_TYPE", "")
        query = environ.get("QUERY_STRING", "")
        if method == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
            form = parse_qs(self._body(environ).decode("utf-8", "replace"), keep_blank_values=True)
            action = form.get("Action", [""])[0]
            if action in self.SQS_SENDS:  # SQS's query protocol
                check_sqs(action, _sqs_query_payload(form))
            return
        if method == "POST" and content_type.startswith("multipart/form-data"):  # a browser upload: key in the form
            from infra.local.iam.post_policy import MalformedForm, parse_form
            try:
                fields, _data = parse_form(content_type, self._body(environ))
            except MalformedForm:
                return  # refused by the POST policy check (or by moto without the IAM check)
            check_s3_metadata(fields.items())
            return
        path = environ.get("PATH_INFO", "/").lstrip("/")
        if "/" not in path or not path.split("/", 1)[1]:
            return  # not an object
        if method == "PUT" or (method == "POST" and "uploads" in parse_qs(query, keep_blank_values=True)):
            if environ.get("HTTP_X_AMZ_COPY_SOURCE") and environ.get("HTTP_X_AMZ_METADATA_DIRECTIVE", "").upper() \
                    != "REPLACE":
                return  # a copy keeps the source's metadata (at most 2 KB already)
            pairs = [(k[5:].replace("_", "-").lower(), v) for k, v in environ.items() if k.startswith("HTTP_X_AMZ_META_")]
            pairs += [(k.lower(), v[0]) for k, v in parse_qs(query).items() if k.lower().startswith(META_PREFIX)]
            check_s3_metadata(pairs)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        try:
            self._check(environ)
        except Refusal as refusal:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if target:
                protocol, service = "json", "dynamodb" if target.startswith("DynamoDB_") else "sqs"
            elif environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
                protocol, service = "query", "sqs"
            else:
                protocol, service = "s3", "s3"
            status, headers, payload = refusal_response(refusal, protocol, service)
            start_response(status, [*headers, ("Content-Length", str(len(payload)))])
            return [payload]
        return self.app(environ, start_response)


def _json(body: bytes) -> dict:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


# --- DynamoDB: the size of an update's result -------------------------------------------------
def install() -> None:
    """Patch moto's DynamoDB backend (idempotent): an ``UpdateItem`` whose resulting item is over
    ``MAX_ITEM_BYTES`` is refused and leaves the item as it was; moto's own approximate check
    (``LimitedSizeDict``, ~405,000 bytes by its own count) is replaced by this exact one."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.dynamodb import models
    from moto.dynamodb.exceptions import ItemSizeToUpdateTooLarge
    from moto.dynamodb.models import dynamo_type

    dynamo_type.LimitedSizeDict.__setitem__ = dict.__setitem__  # type: ignore[method-assign, assignment]
    original = models.DynamoDBBackend.update_item

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        table = self.get_table(table_name)
        hash_value, range_value = self.get_keys_value(table, key)
        before = table.get_item(hash_value, range_value)
        saved = copy.deepcopy(before) if before is not None else None
        item = original(self, table_name, key, *args, **kwargs)
        if item is not None and item_size(item.attrs) > MAX_ITEM_BYTES:
            if saved is None:
                table.delete_item(hash_value, range_value)
            elif range_value is not None:
                table.items[hash_value][range_value] = saved
            else:
                table.items[hash_value] = saved
            raise ItemSizeToUpdateTooLarge()
        return item

    models.DynamoDBBackend.update_item = update_item
    _INSTALLED = True
