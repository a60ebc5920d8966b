"""Webhook delivery: job events (from the job-events topic through the webhooks queue) POSTed
as signed JSON to the job's own target (S3 object metadata ``webhook-url`` at upload) and to
the deployment's targets (``VODPIPE_WEBHOOK_URLS``).

Each (event, target) delivery is recorded with a conditional write, so a retried message
re-sends only to the targets that failed. A failed target makes the message fail: the caller
backs off through the message's visibility, and after maxReceiveCount the redrive policy moves
it to the webhooks dead-letter queue. It runs apart from the pipeline, so a dead or slow
receiver (``webhook_timeout`` seconds at most per POST) never delays a job.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Callable

from chalicelib.domain import webhooks
from chalicelib.domain.errors import ConfigurationError
from chalicelib.tools.pinned_http import http_post, resolve  # noqa: F401 - http_post: deliver's default

from .context import Context

log = logging.getLogger("vodpipe.webhooks")
USER_AGENT = "vodpipe-webhooks/1"


class DeliveryFailed(Exception):
    """At least one target did not accept the event; the message is retried."""


def targets_for(ctx: Context, event: dict) -> list[str]:
    """The job's own webhook URL (if any) and the deployment's, without duplicates."""
    urls = list(ctx.settings.webhook_urls)
    job_id = event.get("job_id")
    if job_id:
        own = ctx.store.get_job_field(job_id, "webhook_url")  # one projected GetItem per event
        if own:
            urls.insert(0, own)
    return list(dict.fromkeys(urls))


def deliver(ctx: Context, message_id: str, body: str, post: Callable = http_post, now: Callable = time.time) -> dict:
    """Deliver one job event to every target. Returns ``{"delivered": [...], "skipped":
    [...], "invalid": [...]}``; raises ``DeliveryFailed`` when a valid target failed."""
    s = ctx.settings
    event = json.loads(body)
    payload = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    result: dict[str, list] = {"delivered": [], "skipped": [], "invalid": [], "failed": []}
    targets = targets_for(ctx, event)
    if targets and not s.webhook_secret:
        raise ConfigurationError("VODPIPE_WEBHOOK_SECRET is empty: refusing to send unsigned webhooks "
                                 "(set the WebhookSecret parameter)")
    for url in targets:
        try:
            address = webhooks.validate_target(url, resolve, s.webhook_allow_private)
        except ValueError as e:
            log.warning("webhook target refused: %s", e)
            result["invalid"].append({"url": url, "reason": str(e)})
            continue
        delivery = hashlib.sha256(f"{message_id}\n{url}".encode()).hexdigest()[:32]
        if ctx.records.delivery_done(delivery):
            result["skipped"].append(url)
            continue
        ts = int(now())
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   webhooks.SIGNATURE_HEADER: webhooks.sign(s.webhook_secret, ts, payload),
                   "Vodpipe-Event": str(event.get("event_type")), "Vodpipe-Delivery": delivery}
        try:
            status = post(url, payload, headers, s.webhook_timeout, address)
        except OSError as e:  # refused, reset, timed out, TLS failure
            status, error = None, str(e)
        else:
            error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        if status is not None and 200 <= status < 300:
            ctx.records.record_delivery(delivery, url, event.get("job_id"), event.get("event_type"))
            result["delivered"].append(url)
        else:
            log.warning("webhook to %s failed: %s", url, error)
            result["failed"].append({"url": url, "error": error})
    if result["failed"]:
        raise DeliveryFailed(json.dumps(result["failed"]))
    return result
