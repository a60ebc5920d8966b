"""The AWS/SQS metrics the local cloud publishes, read from the emulator's queues (Amazon SQS
developer guide, "Available CloudWatch metrics for Amazon SQS")."""
from __future__ import annotations

import uuid

import pytest

from infra.local.cloudwatch.sqs_metrics import ApiQueueMetrics, QueueMetrics


def test_visible_messages_and_the_age_of_the_oldest_non_deleted_message(emulator, client):
    sqs, stack = client("sqs"), emulator["stack"]
    name = f"metrics-test-{uuid.uuid4().hex[:12]}"  # a queue of its own: counts start from nothing
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    metrics = QueueMetrics(stack.account, "us-east-1")
    # GIVEN an empty queue THEN nothing is visible and the age is 0
    assert metrics.visible(name) == 0 and metrics.oldest_age(name) == 0.0
    # WHEN two messages are sent THEN both are visible
    sqs.send_message(QueueUrl=url, MessageBody="first")
    sqs.send_message(QueueUrl=url, MessageBody="second")
    assert metrics.visible(name) == 2
    # AND through the API (an emulator in another process) the same count, and no age
    over_api = ApiQueueMetrics(sqs)
    assert over_api.visible(name) == 2 and over_api.oldest_age(name) is None

    def receive_first():
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=30,
                                  AttributeNames=["SentTimestamp"])["Messages"]
        assert [m["Body"] for m in got] == ["first"]
        return got[0]

    # WHEN the first is received THEN it is in flight: not visible, but still the oldest
    first = receive_first()
    sent_first = int(first["Attributes"]["SentTimestamp"]) / 1000
    assert metrics.visible(name) == 1
    assert metrics.oldest_age(name, now=sent_first + 60) == pytest.approx(60.0)
    # WHEN it has been received three times THEN the age is the second message's
    for _ in range(2):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
        first = receive_first()
    second = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["SentTimestamp"])["Messages"][0]
    sent_second = int(second["Attributes"]["SentTimestamp"]) / 1000
    assert second["Body"] == "second" and metrics.visible(name) == 0
    assert metrics.oldest_age(name, now=sent_first + 60) == pytest.approx(60.0 - (sent_second - sent_first))
    # AND deleted messages count for neither
    for m in (first, second):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert metrics.visible(name) == 0 and metrics.oldest_age(name) == 0.0
