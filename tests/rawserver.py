"""Test servers on 127.0.0.1: a raw TCP server for tests that need a misbehaving HTTP peer (a receiver that
answers garbage, a sender that trickles bytes): each connection's request head is read and
kept with its wall-clock time in ``hits``, then ``reply(conn, stop_at)`` answers. The server
stops by itself after ``lifetime`` seconds (bounded: it never outlives its test for long)."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class RawServer:
    """Serve ``reply`` on a free port (``port``) until ``close()`` or ``lifetime`` seconds."""

    def __init__(self, reply: Callable[[socket.socket, float], None], lifetime: float = 20.0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.reply, self.hits = reply, []
        self.stop_at = time.monotonic() + lifetime
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while time.monotonic() < self.stop_at:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()
        self.sock.close()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            head = conn.recv(65536).decode("latin-1")
            self.hits.append((time.time(), head))
            self.reply(conn, self.stop_at)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        """Stop accepting (the listening socket closes within 0.2 s)."""
        self.stop_at = 0


def garbage(conn: socket.socket, stop_at: float) -> None:
    """Answer with bytes that are not HTTP."""
    conn.sendall(b"SPAM SPAM SPAM\r\n\r\n")


def sending(head: bytes, body: bytes, piece: int = 1 << 20, every: float = 0.0) -> Callable[[socket.socket, float], None]:
    """A reply: ``head`` (status line and headers), then ``body`` in pieces of ``piece`` bytes
    every ``every`` seconds until the server's end, then the connection closes."""
    def reply(conn: socket.socket, stop_at: float) -> None:
        conn.sendall(head)
        for at in range(0, len(body), piece):
            if time.monotonic() > stop_at:
                break
            conn.sendall(body[at:at + piece])
            time.sleep(every)
    return reply


@contextmanager
def recording_receiver():
    """An HTTP receiver on 127.0.0.1 that answers every POST with 204 and records
    ``(headers (lower-case names), raw body, wall time, path)``; yields ``(base URL, records)``
    and shuts down on exit."""
    got: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the handler's name is http.server's
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body, time.time(), self.path))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()
