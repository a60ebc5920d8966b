"""Webhook signatures and target validation. Pure: no network (name resolution is passed in).

Signature scheme (what receivers verify; same idea as Stripe's and Svix's):

    Vodpipe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

A receiver recomputes the HMAC over the timestamp, a dot and the raw request body with the
shared secret, compares in constant time, and rejects timestamps more than ``TOLERANCE_SECONDS``
from its clock (replay protection); ``Vodpipe-Delivery`` is unique per (event, target) for
de-duplication, since deliveries are at least once.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Callable, Iterable
from urllib.parse import urlsplit

SIGNATURE_HEADER = "Vodpipe-Signature"
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Vodpipe-Signature`` header value for ``body`` sent at ``timestamp`` (Unix s)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """True when ``header`` is a valid signature of ``body`` made within ``tolerance`` seconds
    of ``now``. Malformed headers are simply invalid."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - ts) > tolerance:
        return False
    expected = sign(secret, ts, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def validate_url(url: str, resolve: Callable[[str], Iterable[str]], allow_private: bool = False,
                 what: str = "webhook") -> str:
    """Check a webhook target: http(s) with a host; unless ``allow_private``, every address
    the host resolves to (``resolve(host)`` -> IP strings) must be public (not private,
    loopback, link-local, reserved or multicast: SSRF protection). Returns the URL.

    Raises ValueError with the reason."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{what} URL must be http or https, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise ValueError(f"{what} URL has no host")
    if parts.username or parts.password:
        raise ValueError(f"{what} URL must not carry credentials")
    if allow_private:
        return url
    addresses = list(resolve(parts.hostname))
    if not addresses:
        raise ValueError(f"{what} host {parts.hostname} does not resolve")
    for a in addresses:
        ip = ipaddress.ip_address(a)
        if not ip.is_global or ip.is_multicast:
            raise ValueError(f"{what} host {parts.hostname} resolves to a non-public address ({ip})")
    return url


def validate_target(url: str, resolve: Callable[[str], Iterable[str]], allow_private: bool = False,
                    what: str = "webhook") -> str:
    """``validate_url`` on one resolution of the host, then the address to connect to: the
    first of the addresses that all passed. Delivery connects to exactly this address, so a
    name that resolves differently a moment later (DNS rebinding) changes nothing. Raises
    ValueError with the reason (also when the host does not resolve)."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = list(resolve(host)) if host else []
    validate_url(url, lambda _host: addresses, allow_private, what)  # checks this one answer
    if not addresses:
        raise ValueError(f"{what} host {host} does not resolve")
    return addresses[0]
