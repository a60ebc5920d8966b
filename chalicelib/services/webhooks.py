"""Webhook delivery: job events (from the job-events topic through the webhooks queue) POSTed
as signed JSON (Standard Webhooks, ``chalicelib.domain.webhooks``) to the job's own target (its
``webhook_url`` setting) and to the deployment's targets (``VODPIPE_WEBHOOK_URLS``).

Each (event, target) pair is one delivery, with its own id (``webhook-id``, the same on every
retry), its own body (the event plus ``"target"``) and its own record (``Records.delivery``).
Targets are independent: every failure of one target (a refused or malformed URL, a refused
or reset connection, a TLS error, the deadline, an answer that is not HTTP, a non-2xx status)
is caught, recorded with the attempt count and the next attempt's time, and never stops the
other targets; a target that succeeded is never sent the event again. When any target failed
the message fails with ``DeliveryFailed.retry_after`` (``exponential_backoff`` of the fewest
attempts among the failed targets: 10 s x 2^(n-1), at most 15 min); the handler holds the
message back that long, and after maxReceiveCount the redrive policy moves it to the webhooks
dead-letter queue. It runs apart from the pipeline, so a dead or slow receiver
(``webhook_timeout`` seconds in all per POST) never delays a job.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Callable

from chalicelib.domain import webhooks
from chalicelib.domain.backoff import exponential_backoff
from chalicelib.domain.errors import ConfigurationError
from chalicelib.tools.pinned_http import http_post, resolve  # noqa: F401 - http_post: deliver's default

from .context import Context

log = logging.getLogger("vodpipe.webhooks")
USER_AGENT = "vodpipe-webhooks/2"
#: A failed delivery is tried again after 10 s x 2^(attempts-1), at most 15 minutes (s).
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 900


class DeliveryFailed(Exception):
    """At least one target did not accept the event; the message is retried after
    ``retry_after`` seconds (the message is the failures, URLs redacted, as JSON)."""

    def __init__(self, failed: list[dict], retry_after: int):
        super().__init__(json.dumps(failed))
        self.failed, self.retry_after = failed, retry_after


def targets_for(ctx: Context, event: dict) -> list[str]:
    """The job's own webhook URL (if any) and the deployment's, without duplicates."""
    urls = [u.strip() for u in ctx.settings.webhook_urls if u.strip()]
    job_id = event.get("job_id")
    if job_id:
        own = ctx.store.get_job_field(job_id, "webhook_url")  # one projected GetItem per event
        if own:
            urls.insert(0, own)
    return list(dict.fromkeys(urls))


def delivery_id(message_id: str, url: str) -> str:
    """The id of one (event, target) delivery: 32 hex digits of SHA-256 over the event's SQS
    message id and the target URL (no ``.``, as the Standard Webhooks signed content needs)."""
    return hashlib.sha256(f"{message_id}\n{url}".encode()).hexdigest()[:32]


def _error_text(error: Exception, url: str) -> str:
    """``error`` as ``<type>: <message>``, at most 300 characters, with any part of ``url``
    that could hold a token (the URL, its path, its query) replaced by its redacted form, and
    what a receiver sent (e.g. a garbage status line) with its control characters as ``?``."""
    text = "".join(c if c.isprintable() else "?" for c in str(error))
    path, _, query = url.partition("://")[2].partition("/")[2].partition("?")
    for secret in sorted({url, "/" + path, path, query}, key=len, reverse=True):
        if len(secret) >= 6:  # shorter parts hold no token, and would garble the message
            text = text.replace(secret, webhooks.REDACTED)
    return f"{type(error).__name__}: {text}"[:300]


def attempt(ctx: Context, url: str, delivery: str, event: dict, post: Callable, now: Callable) -> str | None:
    """One POST of ``event`` to ``url``: None when the target answered 2xx, else why not (a
    short text naming the error, never the URL). Never raises for anything the target or its
    URL can cause."""
    s = ctx.settings
    try:
        address = webhooks.validate_target(url, resolve, s.webhook_allow_private, "webhook")
        body = webhooks.delivery_body(event, url)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "Vodpipe-Event": str(event.get("event_type")),
                   **webhooks.signed_headers(s.webhook_secret, delivery, int(now()), body)}
        status = post(url, body, headers, s.webhook_timeout, address)
    except Exception as e:  # noqa: BLE001 - refused URL, network, TLS, deadline, not HTTP: all failures
        return _error_text(e, url)
    if 200 <= status < 300:
        return None
    return f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")


def deliver(ctx: Context, message_id: str, body: str, post: Callable = http_post, now: Callable = time.time) -> dict:
    """Deliver one job event to every target that has not had it yet. Returns
    ``{"delivered": [...], "skipped": [...], "failed": [...]}`` (URLs redacted); raises
    ``DeliveryFailed`` (with ``retry_after`` s) when a target failed, after trying every
    other one, and ``ConfigurationError`` when there are targets but no signing secret."""
    s = ctx.settings
    event = json.loads(body)
    result: dict[str, list] = {"delivered": [], "skipped": [], "failed": []}
    targets = targets_for(ctx, event)
    if targets and not s.webhook_secret:
        raise ConfigurationError("VODPIPE_WEBHOOK_SECRET is empty: refusing to send unsigned webhooks "
                                 "(set the WebhookSecret parameter)")
    if targets:
        try:
            webhooks.signing_key(s.webhook_secret)
        except ValueError as e:
            raise ConfigurationError(f"VODPIPE_WEBHOOK_SECRET: {e}") from None
    job_id, event_type = event.get("job_id"), event.get("event_type")
    retry_after: int | None = None
    for url in targets:
        shown = webhooks.redact_url(url)
        delivery = delivery_id(message_id, url)
        record = ctx.records.delivery(delivery)
        if record and record.get("status") == "delivered":
            result["skipped"].append(shown)
            continue
        attempts = int((record or {}).get("attempts") or 0) + 1
        error = attempt(ctx, url, delivery, event, post, now)
        if error is None:
            ctx.records.record_delivery(delivery, shown, job_id, event_type, attempts)
            result["delivered"].append(shown)
            continue
        wait = exponential_backoff(attempts, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS)
        ctx.records.record_delivery_failure(delivery, shown, job_id, event_type, attempts, error, wait)
        log.warning("webhook to %s failed (attempt %d, next in %d s): %s", shown, attempts, wait, error)
        result["failed"].append({"url": shown, "delivery": delivery, "attempts": attempts, "error": error})
        retry_after = wait if retry_after is None else min(retry_after, wait)
    if retry_after is not None:
        raise DeliveryFailed(result["failed"], retry_after)
    return result
