"""Which emulator calls change state, and holding their answers until the change is on disk.

``DurableWrites`` (WSGI middleware in front of moto, inside the IAM check and AWS's limits, so a
refused call never gets here) lets reads through untouched. A call that changes a service:

1. has its request body read in full first, into a temporary file past 16 MiB (a slow upload
   holds no lock);
2. runs in moto under ``DurableState.lock``;
3. marks its service dirty, with the services moto changes on its behalf (``FANS_OUT``: an S3
   write sends its event notification into SQS or SNS, an SNS publish delivers into SQS);
4. is answered only after ``DurableState.wait``: a snapshot holding its change is on disk. A
   call refused by moto (4xx) changed nothing and waits for nothing.

SQS ``ReceiveMessage`` changes state too (a message goes in flight, its receive count grows, a
message past ``maxReceiveCount`` moves to the dead-letter queue). Its long poll must not hold
the lock for 20 s, so ``install_receive`` replaces moto's wait loop with one of short receives,
each under the lock, and a delivery waits for its snapshot like any write.

What changes state, by protocol: JSON and CBOR calls (``X-Amz-Target`` or the
``/service/<target>/operation/<name>`` path) and query calls (``Action=``) by their action:
everything but ``Get*``, ``List*``, ``Describe*``, ``Query``, ``Scan`` and the other
``READ_PREFIXES``; REST calls (S3) by their method: everything but ``GET``, ``HEAD`` and
``OPTIONS``.
"""
from __future__ import annotations

import re
import tempfile
import time
import urllib.parse
from typing import Any, Callable

from infra.local.emulator.durable_state import DurableState

#: Operation names that read. Anything else changes its service.
READ_PREFIXES = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "TransactGet", "Filter", "Head", "Lookup",
                 "Search", "Select", "Test", "Validate", "Check", "Estimate", "Preview")

#: ``X-Amz-Target`` prefix -> moto's backend name.
TARGETS = {"DynamoDB_": "dynamodb", "AmazonSQS": "sqs", "Logs_": "logs", "AWSCognitoIdentityProviderService": "cognito-idp",
           "AmazonEC2ContainerService": "ecs", "GraniteServiceVersion20100801": "cloudwatch", "AWSEvents": "events",
           "AmazonSSM": "ssm", "secretsmanager": "secretsmanager", "AWSStepFunctions": "stepfunctions"}

#: SigV4 credential scope service -> moto's backend name, where they differ.
SCOPES = {"monitoring": "cloudwatch", "email": "ses", "states": "stepfunctions"}

#: A write to the key's service may change these too (moto delivers notifications in-process;
#: for S3 only when the bucket has notifications: ``_notifies``).
FANS_OUT = {"s3": {"s3", "sqs", "sns"}, "sns": {"sns", "sqs"}}

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_ACTIVE: DurableState | None = None


def operation(environ: dict, body: bytes) -> tuple[str, str | None]:
    """(moto backend name, operation name or None for a REST call) of one WSGI request."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    path = environ.get("PATH_INFO", "")
    if not target and path.startswith("/service/") and "/operation/" in path:  # smithy RPC v2 (CBOR)
        target = path.split("/")[2] + "." + path.rsplit("/", 1)[1]
    if target:
        prefix, _, action = target.rpartition(".")
        service = next((name for start, name in TARGETS.items() if prefix.startswith(start)), None)
        return service or _scope_service(environ) or prefix.lower(), action
    service = _scope_service(environ) or "s3"
    action = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("Action", [None])[0]
    if action is None and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded") \
            and len(body) < 1 << 20:
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
    return service, action


def _scope_service(environ: dict) -> str | None:
    """The service of the SigV4 credential scope (header or presigned query), mapped to moto's name."""
    found = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found:
        scope = found.group(1)
    else:
        credential = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
        parts = credential.split("/")
        scope = parts[3] if len(parts) > 3 else None
    return SCOPES.get(scope, scope) if scope else None


def changes_state(environ: dict, action: str | None) -> bool:
    """Whether a call may change what its service holds (``ReceiveMessage``: see
    ``install_receive``)."""
    if action is None:
        return environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD", "OPTIONS")
    return action != "ReceiveMessage" and not action.startswith(READ_PREFIXES)


def _read_body(environ: dict) -> bytes:
    """Read the whole request body into a fresh stream left in ``environ`` (memory up to 16 MiB,
    then a temporary file); returns it when it is at most 1 MiB (enough to find a query call's
    ``Action``), else b""."""
    stream, length = environ.get("wsgi.input"), environ.get("CONTENT_LENGTH") or ""
    copy = tempfile.SpooledTemporaryFile(max_size=16 << 20)
    if stream is not None and (length.isdigit() or environ.get("wsgi.input_terminated")):
        remaining = int(length) if length.isdigit() else None
        while remaining is None or remaining > 0:
            part = stream.read(1 << 20 if remaining is None else min(remaining, 1 << 20))
            if not part:
                break
            copy.write(part)
            if remaining is not None:
                remaining -= len(part)
    size = copy.tell()
    copy.seek(0)
    head = copy.read() if size <= 1 << 20 else b""
    copy.seek(0)
    environ["wsgi.input"] = copy
    return head


def _notifies(environ: dict) -> bool:
    """Whether the S3 call's bucket (path-style, as the local cloud addresses it) has event
    notifications, so a write may put a message into SQS or SNS."""
    from moto.s3.models import s3_backends

    name = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0]
    owner = s3_backends.bucket_accounts.get(name)
    if owner is None:
        return False
    bucket = s3_backends[owner[1]][owner[0]].buckets.get(name)
    return bool(bucket is not None and bucket.notification_configuration)


class DurableWrites:
    """WSGI middleware: calls that change state wait until ``state`` has them on disk."""

    def __init__(self, app: Callable, state: DurableState):
        global _ACTIVE
        self.app, self.state = app, state
        install_receive()
        _ACTIVE = state

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        if method in ("GET", "HEAD", "OPTIONS") and "HTTP_X_AMZ_TARGET" not in environ:
            if "Action=" not in environ.get("QUERY_STRING", ""):
                return self.app(environ, start_response)
        body = _read_body(environ)
        service, action = operation(environ, body)
        if not changes_state(environ, action):
            return self.app(environ, start_response)
        answered: list[str] = []

        def remember(status: str, headers: list, exc_info: Any = None) -> Any:
            answered.append(status)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        with self.state.lock:
            result = self.app(environ, remember)
            try:
                chunks = list(result)
            finally:
                getattr(result, "close", lambda: None)()
            status = int(answered[0].split()[0]) if answered else 500
            touched = FANS_OUT.get(service, {service}) if service != "s3" or _notifies(environ) else {service}
            ticket = self.state.changed(touched) if not 400 <= status < 500 else None
        if ticket is not None:
            self.state.wait(ticket)
        return chunks

    def close(self) -> None:
        """Stop holding answers (the state is closed by its owner)."""
        global _ACTIVE
        if _ACTIVE is self.state:
            _ACTIVE = None


_RECEIVE_INSTALLED = False


def install_receive() -> None:
    """Replace moto's SQS receive wait loop with short receives under the write lock (once per
    process; without an active state moto's own loop runs)."""
    global _RECEIVE_INSTALLED
    if _RECEIVE_INSTALLED:
        return
    from moto.sqs.models import SQSBackend

    original = SQSBackend.receive_message

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int, visibility_timeout: int,
                        *args: Any, **kwargs: Any) -> list:
        state = _ACTIVE
        if state is None:
            return original(self, queue_name, count, wait_seconds_timeout, visibility_timeout, *args, **kwargs)
        queue = self.get_queue(queue_name)
        deadline = time.monotonic() + wait_seconds_timeout
        while True:
            with state.lock:
                dead_letters = queue.dead_letter_queue
                before = (len(queue._messages), len(dead_letters._messages) if dead_letters is not None else 0)
                result = original(self, queue_name, count, 0, visibility_timeout, *args, **kwargs)
                after = (len(queue._messages), len(dead_letters._messages) if dead_letters is not None else 0)
                ticket = state.changed({"sqs"}) if result or after != before else None
            if ticket is not None:
                state.wait(ticket)
            remaining = deadline - time.monotonic()
            if result or remaining <= 0:
                return result
            started = time.monotonic()
            queue.wait_for_messages(min(remaining, 1.0))
            if time.monotonic() - started < 0.01:  # visible but not deliverable (a FIFO group in flight)
                time.sleep(min(remaining, 0.05))

    SQSBackend.receive_message = receive_message
    _RECEIVE_INSTALLED = True
