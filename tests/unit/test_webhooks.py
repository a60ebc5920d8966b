import pytest

from chalicelib.domain.webhooks import SIGNATURE_HEADER, sign, validate_target, validate_url, verify
from chalicelib.services.webhooks import http_post

SECRET = "s3cr3t"
BODY = b'{"event_type":"JobCompleted","job_id":"abc"}'


def test_signature_round_trip_and_tampering():
    header = sign(SECRET, 1_700_000_000, BODY)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify(SECRET, header, BODY, now=1_700_000_010)
    assert not verify(SECRET, header, BODY + b" ", now=1_700_000_010)       # body changed
    assert not verify("other", header, BODY, now=1_700_000_010)             # wrong secret
    assert not verify(SECRET, header, BODY, now=1_700_000_000 + 301)        # replayed too late
    assert not verify(SECRET, "garbage", BODY, now=1_700_000_000)


def public(host):
    return ["93.184.216.34"]


@pytest.mark.parametrize("url,why", [
    ("ftp://example.com/x", "http or https"), ("http:///x", "no host"),
    ("https://user:pw@example.com/", "credentials"),
])
def test_bad_urls_are_refused(url, why):
    with pytest.raises(ValueError, match=why):
        validate_url(url, public)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.5.4", "169.254.169.254",
                                     "::1", "fd00::1", "0.0.0.0"])
def test_private_and_loopback_targets_are_refused_unless_allowed(address):
    with pytest.raises(ValueError, match="non-public"):
        validate_url("https://hooks.example.com/x", lambda h: [address])
    assert validate_url("http://127.0.0.1:9000/hook", lambda h: [address], allow_private=True)


def test_public_target_is_accepted():
    assert validate_url("https://hooks.example.com/x", public) == "https://hooks.example.com/x"


def test_target_is_resolved_once_and_that_address_is_used():
    """DNS rebinding: a resolver that answers public first and loopback next changes nothing."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    assert validate_target("https://hooks.example.com/x", lambda h: next(answers)) == "93.184.216.34"
    with pytest.raises(ValueError, match="non-public"):
        validate_target("https://hooks.example.com/x", lambda h: ["93.184.216.34", "127.0.0.1"])
    with pytest.raises(ValueError, match="does not resolve"):
        validate_target("https://nowhere.example/x", lambda h: [], allow_private=True)


class Receiver:
    """A local HTTP receiver: answers ``status`` (and ``Location`` for redirects); records
    each request's Host header and path."""

    def __init__(self, status):
        import http.server
        import threading
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                seen.append((self.headers["Host"], self.path, self.headers.get(SIGNATURE_HEADER)))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(status):
    receiver = Receiver(status)
    try:
        port = receiver.server.server_port
        got = http_post(f"http://hooks.example.com:{port}/hook?a=1", b"{}", {SIGNATURE_HEADER: "t=1,v1=x"}, 5,
                        "127.0.0.1")
        assert got == status
        assert receiver.seen == [(f"hooks.example.com:{port}", "/hook?a=1", "t=1,v1=x")], \
            "one request, to the validated address, with the URL's Host; the Location is never fetched"
    finally:
        receiver.close()
