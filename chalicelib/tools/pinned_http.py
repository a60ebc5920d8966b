"""HTTP to addresses we validated: connections pinned to the address that passed the public-
address check (no second name resolution, so no DNS rebinding), used by webhook delivery and
URL imports. Redirects are never followed blindly: ``get_stream`` re-validates every hop.

Every request runs against one total deadline (a ``time.monotonic()`` value): the connect, the
TLS handshake, every send and every recv get the time left as their timeout, so a peer that
trickles a byte now and then is cut at the deadline, not after each read; past it,
``DeadlineExceeded`` (a ``TimeoutError``, hence an ``OSError``).
"""
from __future__ import annotations

import http.client
import io
import socket
import ssl
import time
from typing import Any, Callable, Iterable
from urllib.parse import urljoin, urlsplit

from chalicelib.domain.webhooks import validate_target


def resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to."""
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
    except (socket.gaierror, UnicodeError):
        return []


class DeadlineExceeded(TimeoutError):
    """A request's total deadline passed (during connect, send or receive)."""


def _time_left(deadline: float) -> float:
    """Seconds until ``deadline`` (monotonic); raises ``DeadlineExceeded`` when none are left."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the request's deadline passed")
    return left


class _DeadlineSocket:
    """A connected socket (plain or TLS) whose every blocking call waits at most until
    ``deadline``: before each recv and send its timeout is set to the time left (for TLS,
    CPython applies one socket timeout to a whole ``read``/``sendall`` call, not to each
    underlying recv). What ``http.client`` uses of a socket: ``sendall``, ``makefile("rb")``
    (reads through ``recv_into``), ``close``."""

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock, self.deadline = sock, deadline
        self._io_refs, self._closed = 0, False

    def _call(self, method: Callable, *args: Any) -> Any:
        self._sock.settimeout(_time_left(self.deadline))
        try:
            return method(*args)
        except TimeoutError:  # the timeout was the time left: the deadline passed
            raise DeadlineExceeded("the request's deadline passed") from None

    def recv_into(self, *args: Any) -> int:
        return self._call(self._sock.recv_into, *args)

    def recv(self, *args: Any) -> bytes:
        return self._call(self._sock.recv, *args)

    def sendall(self, *args: Any) -> None:
        return self._call(self._sock.sendall, *args)

    def send(self, *args: Any) -> int:
        return self._call(self._sock.send, *args)

    def makefile(self, mode: str = "rb", buffering: int | None = None, **_: Any) -> io.BufferedReader:
        if mode != "rb":
            raise ValueError("only 'rb' is supported")
        self._io_refs += 1
        return io.BufferedReader(socket.SocketIO(self, "rb"), buffering or io.DEFAULT_BUFFER_SIZE)  # type: ignore[arg-type]

    def _decref_socketios(self) -> None:  # as socket.socket: the last reader closes a closed socket
        self._io_refs -= 1
        if self._closed and self._io_refs <= 0:
            self._sock.close()

    def close(self) -> None:
        self._closed = True
        if self._io_refs <= 0:
            self._sock.close()

    def __getattr__(self, name: str) -> Any:  # fileno, getpeername, ...
        return getattr(self._sock, name)


def _connect(address: str, port: int, deadline: float) -> socket.socket:
    try:
        return socket.create_connection((address, port), _time_left(deadline))
    except TimeoutError:
        raise DeadlineExceeded(f"connecting to {address}:{port} took past the deadline") from None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``address`` (the one that passed validation) while the request keeps
    the URL's host in its Host header: no second name resolution, so no DNS rebinding.
    Everything it does ends by ``deadline`` (monotonic)."""

    def __init__(self, host: str, port: int, address: str, deadline: float):
        super().__init__(host, port, timeout=_time_left(deadline))
        self.address, self.deadline = address, deadline

    def connect(self) -> None:
        self.sock = _DeadlineSocket(_connect(self.address, self.port, self.deadline), self.deadline)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As ``_PinnedHTTPConnection`` over TLS: SNI and certificate checks use the URL's host;
    the handshake too ends by the deadline."""

    def __init__(self, host: str, port: int, address: str, deadline: float):
        super().__init__(host, port, timeout=_time_left(deadline), context=ssl.create_default_context())
        self.address, self.deadline = address, deadline

    def connect(self) -> None:
        raw = _connect(self.address, self.port, self.deadline)
        try:
            raw.settimeout(_time_left(self.deadline))
            tls = self._context.wrap_socket(raw, server_hostname=self.host)
        except TimeoutError:
            raw.close()
            raise DeadlineExceeded("the TLS handshake took past the deadline") from None
        except BaseException:
            raw.close()
            raise
        self.sock = _DeadlineSocket(tls, self.deadline)


def _connection(url: str, address: str, deadline: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    return (_PinnedHTTPSConnection if secure else _PinnedHTTPConnection)(parts.hostname or "", port, address, deadline)


def _target(url: str) -> str:
    """The request target of ``url``: its path (``/`` when empty) and query."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float, address: str) -> int:
    """POST ``body`` to ``url`` through a connection to ``address`` (Host header and TLS SNI
    stay the URL's host), all of it (connect, TLS, request, status line and headers) within
    ``timeout`` seconds. Returns the HTTP status; a redirect is returned, never followed
    (following would re-send the signature to a host nobody validated). Raises OSError
    (``DeadlineExceeded`` past the deadline) for connection failures, ``http.client.
    HTTPException`` for an answer that is not HTTP."""
    conn = _connection(url, address, time.monotonic() + timeout)
    try:
        conn.request("POST", _target(url), body=body, headers=headers)
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
               what: str = "source", deadline: float | None = None,
               ) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection, str]:
    """GET ``url`` and return (the open 200 response to read from, its connection to close,
    the final URL). Every URL, the first and each redirect target (at most ``max_redirects``),
    must have an allowed scheme and pass ``validate_target`` (public addresses only unless
    ``allow_private``); the connection goes to the validated address. Everything, the reads
    of the returned response's body included, ends by ``deadline`` (monotonic; default
    ``timeout`` seconds from now).

    Raises ValueError (a refused URL, too many redirects), ``HttpStatusError`` (4xx/5xx),
    OSError (network; ``DeadlineExceeded`` past the deadline), ``http.client.HTTPException``
    (an answer that is not HTTP)."""
    deadline = time.monotonic() + timeout if deadline is None else deadline
    for _ in range(max_redirects + 1):
        parts = urlsplit(url)
        if parts.scheme not in schemes:
            raise ValueError(f"{what} URL scheme {parts.scheme or 'none'!r} is not allowed ({', '.join(schemes)})")
        address = validate_target(url, resolver, allow_private, what)
        conn = _connection(url, address, deadline)
        try:
            conn.request("GET", _target(url), headers={"User-Agent": "vodpipe-import/1", "Accept": "*/*"})
            response = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
            url = urljoin(url, response.getheader("Location"))
            conn.close()
            continue
        if not 200 <= response.status < 300:
            conn.close()
            raise HttpStatusError(response.status, url)
        return response, conn, url
    raise ValueError(f"more than {max_redirects} redirects")
