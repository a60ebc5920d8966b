"""Lambda's event sources, played locally: the SQS event-source mapping and the EventBridge
schedule of a Chalice function. Both invoke the function through ``invoke`` (in the local
cloud: ``LambdaService.invoke``, its own process, its own role)."""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from typing import Any, Callable

log = logging.getLogger("vodpipe.local")


class EventSourceMapping(threading.Thread):
    """Lambda's SQS event source mapping for one Chalice handler: receive up to
    ``batch_size`` messages, invoke the handler with the Lambda SQS event, delete the batch on
    success, leave it (to reappear after the visibility timeout) on failure. Long polling
    (``WAIT_SECONDS``, what Lambda's pollers use): one request per 20 s on an idle queue,
    answered at once when a message arrives."""

    WAIT_SECONDS = 20

    def __init__(self, function_name: str, queue: str, batch_size: int, invoke: Callable[[str, dict], Any],
                 admin_sqs: Any, function_sqs: Any, region: str):
        """``invoke(function_name, event)`` runs the function; ``admin_sqs`` (a boto3 SQS
        client) reads the queue's URL and ARN when the mapping is created; ``function_sqs``
        polls and deletes with the function's execution role, as Lambda does (it needs
        sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on the queue)."""
        super().__init__(daemon=True, name=f"esm-{function_name}")
        self.function_name, self.queue, self.batch_size = function_name, queue, batch_size
        self.invoke, self.region = invoke, region
        self._halt = threading.Event()
        self.invocations = self.errors = 0
        # configured when the mapping is created (before the cloud is up), not when it polls:
        # the mapping's configuration names the queue (its ARN)
        self.url = admin_sqs.get_queue_url(QueueName=self.queue)["QueueUrl"]
        self.arn = admin_sqs.get_queue_attributes(QueueUrl=self.url,
                                                  AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sqs = function_sqs

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        sqs, url, arn = self.sqs, self.url, self.arn
        while not self._halt.is_set():
            try:
                msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=self.batch_size,
                                           WaitTimeSeconds=self.WAIT_SECONDS,
                                           MessageSystemAttributeNames=["All"],
                                           MessageAttributeNames=["All"]).get("Messages", [])
            except Exception:  # noqa: BLE001 - emulator shutting down or restarting
                if self._halt.wait(0.5):
                    return
                continue
            if not msgs:
                continue
            if self._halt.is_set():  # the mapping was disabled during the poll: the batch reappears later
                return
            event = {"Records": [lambda_sqs_record(m, arn, self.region) for m in msgs]}
            self.invocations += 1
            try:
                self.invoke(self.function_name, event)
            except Exception:  # noqa: BLE001 - a failed invocation leaves the batch for redelivery
                self.errors += 1
                log.exception("function %s failed; batch left on %s for redelivery", self.function_name, self.queue)
                continue
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])


class Schedule(threading.Thread):
    """EventBridge's part for a Chalice ``@app.schedule(Rate(...))`` function: invoke it with a
    scheduled event every ``seconds`` (the rate, unless the local cloud overrides it)."""

    UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}

    def __init__(self, function_name: str, seconds: float, invoke: Callable[[str, dict], Any], account: str,
                 region: str):
        """``invoke(function_name, event)`` runs the function every ``seconds`` with the
        scheduled event of ``account`` and ``region``."""
        super().__init__(daemon=True, name=f"schedule-{function_name}")
        self.function_name, self.seconds, self.invoke = function_name, seconds, invoke
        self.account, self.region = account, region
        self._halt = threading.Event()

    @classmethod
    def rate_seconds(cls, expression) -> float:
        """Seconds of a ``rate(N unit)`` expression (Chalice ``Rate`` or text). Raises
        ValueError for cron expressions, which the local cloud does not run."""
        text = expression.to_string() if hasattr(expression, "to_string") else str(expression)
        if not text.startswith("rate("):
            raise ValueError(f"unsupported schedule {text}")
        value, unit = text[5:-1].split()
        return float(value) * cls.UNITS[unit.lower()]

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.wait(self.seconds):
            event = {"version": "0", "id": uuid.uuid4().hex, "detail-type": "Scheduled Event", "source": "aws.events",
                     "account": self.account, "region": self.region, "detail": {},
                     "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "resources": []}
            try:
                self.invoke(self.function_name, event)
            except Exception:  # noqa: BLE001
                log.exception("scheduled function %s failed", self.function_name)


def lambda_sqs_record(m: dict, queue_arn: str, region: str) -> dict:
    """One record of the event Lambda passes to an SQS-triggered function (AWS Lambda
    developer guide, "Using Lambda with Amazon SQS", example event)."""
    attrs = m.get("Attributes", {})
    return {
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": {k: attrs[k] for k in ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                             "ApproximateFirstReceiveTimestamp") if k in attrs},
        "messageAttributes": {k: {"stringValue": v.get("StringValue"), "binaryValue": v.get("BinaryValue"),
                                  "stringListValues": [], "binaryListValues": [], "dataType": v["DataType"]}
                              for k, v in m.get("MessageAttributes", {}).items()},
        "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
