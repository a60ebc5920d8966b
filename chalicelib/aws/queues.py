"""SQS adapter: queue URLs by name, batched sends, long-poll receive, visibility changes,
queue depth."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Iterable

from .clients import client


class Queues:
    """SQS operations by queue *name* (URLs are looked up once and cached)."""

    def __init__(self, region: str | None = None, endpoint_url: str | None = None):
        self._sqs = client("sqs", region, endpoint_url)

    @lru_cache(maxsize=64)
    def url(self, name: str) -> str:
        """Queue URL of queue ``name``."""
        return self._sqs.get_queue_url(QueueName=name)["QueueUrl"]

    def send_json(self, queue: str, bodies: Iterable[dict]) -> list[str]:
        """Send each dict as a JSON message, 10 per SendMessageBatch call. Returns message ids.
        Raises RuntimeError listing the entries SQS refused."""
        bodies = list(bodies)
        ids: list[str] = []
        for i in range(0, len(bodies), 10):
            chunk = bodies[i:i + 10]
            res = self._sqs.send_message_batch(QueueUrl=self.url(queue), Entries=[
                {"Id": f"m{j}", "MessageBody": json.dumps(b, separators=(",", ":"))} for j, b in enumerate(chunk)])
            if res.get("Failed"):
                raise RuntimeError(f"SQS refused {len(res['Failed'])} task messages: {res['Failed']}")
            ids += [s["MessageId"] for s in res.get("Successful", [])]
        return ids

    def send_raw(self, queue: str, body: str, delay_seconds: int = 0) -> str:
        """Send ``body`` unchanged (e.g. an S3 event redriven to the ingest queue), visible
        after ``delay_seconds`` (0-900, SQS DelaySeconds). Returns the message id."""
        return self._sqs.send_message(QueueUrl=self.url(queue), MessageBody=body,
                                      DelaySeconds=int(delay_seconds))["MessageId"]

    def receive(self, queue: str, max_messages: int = 1, wait_seconds: int = 5,
                visibility_timeout: int | None = None) -> list[dict]:
        """Long-poll up to ``max_messages`` messages (with ``ApproximateReceiveCount`` and the
        other system attributes). ``wait_seconds`` 0-20."""
        kwargs = {"QueueUrl": self.url(queue), "MaxNumberOfMessages": max_messages, "WaitTimeSeconds": wait_seconds,
                  "MessageSystemAttributeNames": ["All"], "MessageAttributeNames": ["All"]}
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout
        return self._sqs.receive_message(**kwargs).get("Messages", [])

    def delete(self, queue: str, receipt_handle: str) -> None:
        """Delete a received message."""
        self._sqs.delete_message(QueueUrl=self.url(queue), ReceiptHandle=receipt_handle)

    def change_visibility(self, queue: str, receipt_handle: str, seconds: int) -> None:
        """Set a received message's visibility timeout (seconds from now; 0 releases it)."""
        self._sqs.change_message_visibility(QueueUrl=self.url(queue), ReceiptHandle=receipt_handle,
                                            VisibilityTimeout=int(seconds))

    def depth(self, queue: str) -> dict[str, int]:
        """``{"visible": n, "in_flight": n, "delayed": n}`` (approximate, as SQS reports)."""
        attrs = self._sqs.get_queue_attributes(QueueUrl=self.url(queue), AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return {"visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
                "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0))}

    def arn(self, queue: str) -> str:
        """ARN of queue ``queue``."""
        return self._sqs.get_queue_attributes(QueueUrl=self.url(queue), AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
