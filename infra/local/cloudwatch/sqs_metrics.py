"""The ``AWS/SQS`` metrics SQS publishes to CloudWatch, read from the emulator's own queues.

On AWS these metrics come from SQS itself, not from its API: ``ApproximateAgeOfOldestMessage``
has no API at all, and Application Auto Scaling reads ``ApproximateNumberOfMessagesVisible``
from CloudWatch, not with ``GetQueueAttributes``. The local cloud plays that service side in
the emulator's process, so it reads moto's SQS backend directly (the emulator is in this
process), instead of ~1 ``GetQueueAttributes`` per second and a DynamoDB scan of the queued
tasks every evaluation (measured on a 5-minute bench job: 556 calls and ~90 Queries, ~4 CPU-s).

Definitions (Amazon SQS developer guide, "Available CloudWatch metrics for Amazon SQS"):

* ``ApproximateNumberOfMessagesVisible``: messages available for retrieval (not in flight,
  not delayed);
* ``ApproximateAgeOfOldestMessage``: age in seconds of the oldest non-deleted message (in
  flight too); a message received three times or more without being deleted no longer
  counts ("the metric points at the second-oldest message that hasn't been received more
  than three times"); 0 for an empty queue.

Against an external emulator (``AWS_ENDPOINT_URL``) there is no state to read:
``ApiQueueMetrics`` asks ``GetQueueAttributes`` for the visible count and has no age (the
alarm on it then sees missing data).
"""
from __future__ import annotations

import time
from typing import Any

#: Receives after which a message no longer sets ApproximateAgeOfOldestMessage.
RECEIVES_NOT_COUNTED = 3


class QueueMetrics:
    """Reads the metrics of the queues of ``account``/``region`` in moto's in-process SQS
    backend. Queue names, not URLs; a queue that does not exist raises moto's
    ``QueueDoesNotExist``."""

    def __init__(self, account: str, region: str):
        from moto.sqs.models import sqs_backends

        self._backend = sqs_backends[account][region]

    def visible(self, queue_name: str) -> int:
        """ApproximateNumberOfMessagesVisible (count)."""
        return self._backend.get_queue(queue_name).approximate_number_of_messages

    def oldest_age(self, queue_name: str, now: float | None = None) -> float:
        """ApproximateAgeOfOldestMessage (s) at ``now`` (Unix time, default: now)."""
        now = time.time() if now is None else now
        sent = [m.sent_timestamp for m in list(self._backend.get_queue(queue_name)._messages)
                if m.sent_timestamp and m.approximate_receive_count < RECEIVES_NOT_COUNTED]
        return max(0.0, now - min(sent) / 1000) if sent else 0.0


class ApiQueueMetrics:
    """The same readings through the SQS API (``sqs``: a boto3 client), for an emulator in
    another process: the visible count from ``GetQueueAttributes``; no age (None)."""

    def __init__(self, sqs: Any):
        self._sqs = sqs
        self._urls: dict[str, str] = {}

    def visible(self, queue_name: str) -> int:
        """ApproximateNumberOfMessagesVisible (count; the API's ``ApproximateNumberOfMessages``)."""
        if queue_name not in self._urls:
            self._urls[queue_name] = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        attrs = self._sqs.get_queue_attributes(QueueUrl=self._urls[queue_name],
                                               AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"])

    def oldest_age(self, queue_name: str, now: float | None = None) -> float | None:
        """Not exposed by the SQS API: None."""
        return None


def queue_metrics(in_process: bool, account: str, region: str, sqs: Any) -> QueueMetrics | ApiQueueMetrics:
    """The reader of the queues of ``account``/``region``: the emulator's own queues when it
    runs in this process (``in_process``), else the SQS API through ``sqs`` (a boto3 client)."""
    return QueueMetrics(account, region) if in_process else ApiQueueMetrics(sqs)
