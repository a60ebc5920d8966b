"""SNS adapter for job events (``JobQueued``, ``JobCompleted``, ``JobFailed`` ...).

Every message carries ``event_type`` and ``status`` message attributes so subscribers can
filter with a subscription filter policy."""
from __future__ import annotations

import json

from .clients import client


class Events:
    """Publishes job events to the job-events topic ``topic_arn``."""

    def __init__(self, topic_arn: str, region: str | None = None, endpoint_url: str | None = None):
        self.topic_arn = topic_arn
        self._sns = client("sns", region, endpoint_url)

    def publish(self, event_type: str, job_id: str, status: str, detail: dict, metadata: dict | None = None) -> str:
        """Publish ``{"event_type", "job_id", "status", "metadata", ...detail}`` as JSON;
        ``metadata`` is the job's free-form ``metadata`` setting, echoed in every event
        (``{}`` when it has none). Returns the SNS message id."""
        body = {"event_type": event_type, "job_id": job_id, "status": status, "metadata": metadata or {}, **detail}
        res = self._sns.publish(TopicArn=self.topic_arn, Message=json.dumps(body, default=str),
                                MessageAttributes={
                                    "event_type": {"DataType": "String", "StringValue": event_type},
                                    "status": {"DataType": "String", "StringValue": status}})
        return res["MessageId"]
