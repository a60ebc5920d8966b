"""URL imports (``chalicelib/services/url_import.py`` over ``chalicelib/tools/pinned_http.py``):
one total deadline against slow senders, the body checked against its Content-Length and the
size limit, non-global addresses refused. Real sockets on 127.0.0.1 (private targets allowed,
as in the local cloud); the object store is a fake that behaves like ``Objects.upload_stream``
(an exception from the parts aborts the upload). Every server stops by itself."""
import time
from types import SimpleNamespace

import pytest

from chalicelib.config import Settings
from chalicelib.domain.errors import PermanentError, TransientError
from chalicelib.domain.sources import ObjectRef
from chalicelib.services.url_import import import_source
from tests.rawserver import RawServer, sending


class FakeObjects:
    def __init__(self):
        self.stored, self.aborted = {}, []

    def upload_stream(self, bucket, key, parts, metadata, content_type="application/octet-stream"):
        data = bytearray()
        try:
            for part in parts:
                data += part
        except BaseException:
            self.aborted.append(key)
            raise
        self.stored[key] = bytes(data)
        return {"ETag": '"e"', "size": len(data)}


def import_ctx(**settings):
    return SimpleNamespace(settings=Settings(ingest_bucket="ingest", import_allow_private=True, **settings),
                           objects=FakeObjects())


class Sender(RawServer):
    """Answers every GET with ``head`` (status line and headers), then ``body`` in pieces of
    ``piece`` bytes every ``every`` seconds, then closes; gone after ``lifetime`` seconds."""

    def __init__(self, head: bytes, body: bytes, piece: int = 1 << 20, every: float = 0.0, lifetime: float = 10.0):
        super().__init__(sending(head, body, piece, every), lifetime)
        self.url = f"http://127.0.0.1:{self.port}/clip.mp4"


def head(length: int | None) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\n" + \
        (f"Content-Length: {length}\r\n".encode() if length is not None else b"Connection: close\r\n") + b"\r\n"


def ref(url):
    return ObjectRef("", "", "", 0, source_url=url)


def test_a_sender_trickling_bytes_is_cut_at_the_deadline():
    """One byte every 0.25 s never trips a per-recv timeout; the total deadline (1.5 s) cuts
    it: IMPORT_TIMEOUT (permanent: not retried), and nothing is stored."""
    sender = Sender(head(200), b"x" * 200, piece=1, every=0.25, lifetime=12)
    ctx = import_ctx(import_timeout=1.5)
    try:
        started = time.monotonic()
        with pytest.raises(PermanentError) as refused:
            import_source(ctx, ref(sender.url), "job1")
        assert refused.value.code == "IMPORT_TIMEOUT"
        assert time.monotonic() - started < 6.0, "cut at the deadline (1.5 s), not when the sender stops (12 s)"
        assert ctx.objects.stored == {} and ctx.objects.aborted == ["imports/job1/clip.mp4"]
    finally:
        sender.close()


def test_a_sender_trickling_its_headers_is_cut_at_the_deadline():
    sender = Sender(b"", b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100, piece=1, every=0.25, lifetime=12)  # a byte at a time
    ctx = import_ctx(import_timeout=1.5)
    try:
        started = time.monotonic()
        with pytest.raises(PermanentError, match="longer than 1.5 s"):
            import_source(ctx, ref(sender.url), "job1")
        assert time.monotonic() - started < 6.0  # the deadline (1.5 s), not the sender's end (12 s)
    finally:
        sender.close()


def test_a_body_shorter_than_its_content_length_is_never_stored():
    sender = Sender(head(1000), b"x" * 500)
    ctx = import_ctx(import_timeout=10)
    try:
        with pytest.raises(TransientError, match="500 of its 1000 bytes"):
            import_source(ctx, ref(sender.url), "job1")
        assert ctx.objects.stored == {} and ctx.objects.aborted == ["imports/job1/clip.mp4"]
    finally:
        sender.close()


def test_a_body_of_exactly_its_content_length_is_stored():
    sender = Sender(head(3000), b"v" * 3000, piece=1000, every=0.01)
    ctx = import_ctx(import_timeout=10)
    try:
        got = import_source(ctx, ref(sender.url), "job1")
        assert ctx.objects.stored == {"imports/job1/clip.mp4": b"v" * 3000}
        assert (got.bucket, got.key, got.size, got.source_url) == ("ingest", "imports/job1/clip.mp4", 3000, sender.url)
    finally:
        sender.close()


@pytest.mark.parametrize("length", [5000, None])
def test_a_body_over_the_size_limit_is_refused(length):
    """Announced (Content-Length over the limit: refused before reading) or not (counted)."""
    sender = Sender(head(length), b"z" * 5000)
    ctx = import_ctx(import_timeout=10, max_bytes=4096)
    try:
        with pytest.raises(PermanentError) as refused:
            import_source(ctx, ref(sender.url), "job1")
        assert refused.value.code == "FILE_TOO_LARGE" and ctx.objects.stored == {}
    finally:
        sender.close()


@pytest.mark.parametrize("url", [
    "https://[64:ff9b::7f00:1]/clip.mp4",      # NAT64 of 127.0.0.1
    "https://[::ffff:169.254.169.254]/x",      # IPv4-mapped metadata address
    "https://[2002:a9fe:a9fe::1]/x",           # 6to4 of 169.254.169.254
    "https://[2001:0:4136:e378::1]/x",         # Teredo
    "https://[3fff::1]/x", "https://192.0.2.1/x", "https://100.64.0.1/x",
])
def test_every_non_global_address_is_refused(url):
    ctx = SimpleNamespace(settings=Settings(ingest_bucket="ingest", import_timeout=2), objects=FakeObjects())
    with pytest.raises(PermanentError) as refused:
        import_source(ctx, ref(url), "job1")
    assert refused.value.code == "SOURCE_URL_REFUSED" and "non-public" in refused.value.message
