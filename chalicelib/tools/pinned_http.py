"""HTTP to addresses we validated: connections pinned to the address that passed the public-
address check (no second name resolution, so no DNS rebinding), used by webhook delivery and
URL imports. Redirects are never followed blindly: ``get_stream`` re-validates every hop.
"""
from __future__ import annotations

import http.client
import socket
import ssl
from typing import Callable, Iterable
from urllib.parse import urljoin, urlsplit

from chalicelib.domain.webhooks import validate_target


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




class HttpStatusError(Exception):
    """The server answered ``status`` (not 2xx, not a redirect we follow)."""

    def __init__(self, status: int, url: str):
        super().__init__(f"HTTP {status} from {urlsplit(url).hostname}")
        self.status = status


def get_stream(url: str, timeout: float, allow_private: bool = False, max_redirects: int = 5,
               resolver: Callable[[str], Iterable[str]] = resolve, schemes: tuple[str, ...] = ("https",),
               what: str = "source") -> tuple[http.client.HTTPResponse, http.client.HTTPConnection, str]:
    """GET ``url`` and return (the open 200 response to read from, its connection to close,
    the final URL). Every URL, the first and each redirect target (at most ``max_redirects``),
    must have an allowed scheme and pass ``validate_target`` (public addresses only unless
    ``allow_private``); the connection goes to the validated address.

    Raises ValueError (a refused URL, too many redirects), ``HttpStatusError`` (4xx/5xx),
    OSError (network)."""
    for _ in range(max_redirects + 1):
        parts = urlsplit(url)
        if parts.scheme not in schemes:
            raise ValueError(f"{what} URL scheme {parts.scheme or 'none'!r} is not allowed ({', '.join(schemes)})")
        address = validate_target(url, resolver, allow_private, what)
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        conn = (_PinnedHTTPSConnection if secure else _PinnedHTTPConnection)(parts.hostname or "", port, address, timeout)
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                     headers={"User-Agent": "vodpipe-import/1", "Accept": "*/*"})
        response = conn.getresponse()
        if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
            url = urljoin(url, response.getheader("Location"))
            conn.close()
            continue
        if not 200 <= response.status < 300:
            conn.close()
            raise HttpStatusError(response.status, url)
        return response, conn, url
    raise ValueError(f"more than {max_redirects} redirects")
