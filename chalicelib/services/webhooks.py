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
import http.client
import socket
import ssl
import time
from typing import Callable
from urllib.parse import urlsplit

from chalicelib.domain import webhooks as W
from chalicelib.domain.errors import ConfigurationError

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


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``address`` (the one that passed validation) while the request keeps
    the URL's host in its Host header: no second name resolution, so no DNS rebinding."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As ``_PinnedHTTPConnection`` over TLS: SNI and certificate checks use the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float, address: str) -> int:
    """POST ``body`` to ``url`` through a connection to ``address`` (Host header and TLS SNI
    stay the URL's host). Returns the HTTP status; a redirect is returned, never followed
    (following would re-send the signature to a host nobody validated). Raises OSError for
    connection failures."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    conn_cls = _PinnedHTTPSConnection if secure else _PinnedHTTPConnection
    conn = conn_cls(parts.hostname or "", port, address, timeout)
    try:
        conn.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body=body,
                     headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


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
    targets = targets_for(ctx, event)
    if targets and not s.webhook_secret:
        raise ConfigurationError("VODPIPE_WEBHOOK_SECRET is empty: refusing to send unsigned webhooks "
                                 "(set the WebhookSecret parameter)")
    for url in targets:
        try:
            address = W.validate_target(url, resolve, s.webhook_allow_private)
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
                   W.SIGNATURE_HEADER: W.sign(s.webhook_secret, ts, payload),
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
