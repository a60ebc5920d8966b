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
import socket
import time
import urllib.error
import urllib.request
from typing import Callable

from chalicelib.domain import webhooks as W

from .context import Context

log = logging.getLogger("vodpipe.webhooks")
USER_AGENT = "vodpipe-webhooks/1"


class DeliveryFailed(Exception):
    """At least one target did not accept the event; the message is retried."""


def resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to."""
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
    except socket.gaierror:
        return []


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body``; returns the HTTP status (raises OSError for connection failures)."""
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def targets_for(ctx: Context, event: dict) -> list[str]:
    """The job's own webhook URL (if any) and the deployment's, without duplicates."""
    urls = list(ctx.settings.webhook_urls)
    job_id = event.get("job_id")
    if job_id:
        got = ctx.store.get(job_id)
        own = got[0].get("webhook_url") if got else None
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
    for url in targets_for(ctx, event):
        try:
            W.validate_url(url, resolve, s.webhook_allow_private)
        except ValueError as e:
            log.warning("webhook target refused: %s", e)
            result["invalid"].append({"url": url, "reason": str(e)})
            continue
        delivery = hashlib.sha256(f"{message_id}\n{url}".encode()).hexdigest()[:32]
        if ctx.store.delivery_done(delivery):
            result["skipped"].append(url)
            continue
        ts = int(now())
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   W.SIGNATURE_HEADER: W.sign(s.webhook_secret, ts, payload),
                   "Vodpipe-Event": str(event.get("event_type")), "Vodpipe-Delivery": delivery}
        try:
            status = post(url, payload, headers, s.webhook_timeout)
        except OSError as e:  # refused, reset, timed out
            status, error = None, str(e)
        else:
            error = f"HTTP {status}"
        if status is not None and 200 <= status < 300:
            ctx.store.record_delivery(delivery, url, event.get("job_id"), event.get("event_type"))
            result["delivered"].append(url)
        else:
            log.warning("webhook to %s failed: %s", url, error)
            result["failed"].append({"url": url, "error": error})
    if result["failed"]:
        raise DeliveryFailed(json.dumps(result["failed"]))
    return result
