"""Webhooks: the URL rule, public addresses, Standard Webhooks signatures, redaction, the
delivery deadline and independent, recorded, backed-off deliveries (``chalicelib/domain/
webhooks.py``, ``chalicelib/services/webhooks.py``, ``chalicelib/tools/pinned_http.py``).
Real sockets on 127.0.0.1 only; every server stops by itself."""
import json
import threading
import time
from types import SimpleNamespace

import pytest

from chalicelib.config import Settings
from chalicelib.domain import job_settings
from chalicelib.domain import settings_metadata
from chalicelib.domain.webhooks import (ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, check_url, delivery_body,
                                        is_public_address, redact_url, sign, signed_headers, validate_target,
                                        validate_url, verify)
from chalicelib.services import webhooks as service
from chalicelib.tools.pinned_http import DeadlineExceeded, http_post
from tests.rawserver import RawServer, garbage

SECRET = "s3cr3t"
BODY = b'{"event_type":"JobCompleted","job_id":"abc","target":"https://hooks.example.com/x"}'
T0 = 1_700_000_000


# --- signatures ---------------------------------------------------------------------------
def test_signature_matches_the_standard_webhooks_test_vector():
    """The specification's published vector: any Standard Webhooks library verifies ours."""
    secret, msg_id, stamp, body = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, \
        b'{"test": 2432232314}'
    assert sign(secret, msg_id, stamp, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert verify(secret, signed_headers(secret, msg_id, stamp, body), body, now=stamp + 1)


def test_signature_covers_id_timestamp_body_and_target():
    headers = signed_headers(SECRET, "d1", T0, BODY)
    assert headers[SIGNATURE_HEADER].startswith("v1,") and headers[TIMESTAMP_HEADER] == str(T0)
    assert verify(SECRET, headers, BODY, now=T0 + 10, target="https://hooks.example.com/x")
    upper = {k.upper(): v for k, v in headers.items()}
    assert verify(SECRET, upper, BODY, now=T0 + 10), "header names in any case"
    assert not verify(SECRET, headers, BODY + b" ", now=T0 + 10)                          # body changed
    assert not verify(SECRET, {**headers, ID_HEADER: "d2"}, BODY, now=T0 + 10)            # another delivery id
    assert not verify(SECRET, {**headers, TIMESTAMP_HEADER: str(T0 + 5)}, BODY, now=T0 + 10)  # timestamp changed
    assert not verify("other", headers, BODY, now=T0 + 10)                                # wrong secret
    assert not verify(SECRET, headers, BODY, now=T0 + 301)                                # replayed too late
    assert not verify(SECRET, headers, BODY, now=T0 - 301)                                # from the future
    assert not verify(SECRET, headers, BODY, now=T0, target="https://other.example.com/x"), \
        "a delivery replayed to another receiver fails that receiver's target check"
    assert not verify(SECRET, {"webhook-signature": "garbage"}, BODY, now=T0)
    assert not verify(SECRET, {**headers, ID_HEADER: "a.b"}, BODY, now=T0)


def test_rotation_signatures_and_whsec_secrets():
    """Several space-separated signatures (secret rotation): one valid is enough."""
    old = sign("old-secret", "d1", T0, BODY)
    headers = {**signed_headers(SECRET, "d1", T0, BODY)}
    headers[SIGNATURE_HEADER] = f"{old} {headers[SIGNATURE_HEADER]}"
    assert verify(SECRET, headers, BODY, now=T0) and verify("old-secret", headers, BODY, now=T0)
    whsec = "whsec_" + "c2VjcmV0LWtleS1vZi0yNC1ieXRlcyEh"
    assert verify(whsec, signed_headers(whsec, "d1", T0, BODY), BODY, now=T0)
    with pytest.raises(ValueError, match="base64"):
        sign("whsec_not base64!", "d1", T0, BODY)


def test_delivery_body_names_its_target():
    body = delivery_body({"event_type": "JobQueued", "job_id": "j"}, "https://a.example.com/h?t=1")
    assert json.loads(body) == {"event_type": "JobQueued", "job_id": "j", "target": "https://a.example.com/h?t=1"}


# --- the URL rule -------------------------------------------------------------------------
@pytest.mark.parametrize("url,why", [
    ("https://hooks.example.com/a b", "a space"),
    ("https://hooks.example.com/x\r\nX-Injected: 1", "line break"),
    ("https://hooks.example.com/x\nfoo", "line break"),
    ("https://hooks.example.com/\x00", "control character"),
    ("https://hooks.example.com/\t", "control character"),
    ("https://hooks.example.com/é", "non-ASCII"),
    ("https://user:pw@hooks.example.com/", "user name or password"),
    ("https://token@hooks.example.com/", "user name or password"),
    ("https:///x", "no host"),
    ("https://", "no host"),
    ("ftp://hooks.example.com/x", "https"),
    ("http://hooks.example.com/x", "https"),
    ("hooks.example.com/x", "https"),
    ("https://hooks.example.com:99999/x", "port"),
    ("https://hooks.example.com:/x", "port"),
    ("https://hooks.example.com/" + "a" * 2048, "longer than 2048"),
    ("https://hooks.example.com/<script>", "RFC 3986"),
    ("https://hooks.example.com/%zz", "two hex digits"),
    ("https://exa mple.com/", "a space"),
    ("https://-bad-.example.com/", "invalid host"),
    ("https://2130706433/", "invalid host"),
    ("https://0x7f.1/", "invalid host"),
    ("https://[fe80::1%25eth0]/", "zone"),
    ("https://hooks.example.com/a[0]", "outside its host"),
])
def test_bad_urls_are_refused_with_the_reason(url, why):
    with pytest.raises(ValueError, match=why):
        check_url(url)
    with pytest.raises(ValueError, match=why):
        validate_url(url, public)


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/x", "https://hooks.example.com:8443/a/b?token=x%20y&z=1#frag", "HTTPS://Hooks.Example.COM/",
    "https://1.2.3.4/h", "https://[2606:4700:4700::1111]:443/h", "http://127.0.0.1:9000/hook?per-upload=1",
    "http://localhost:9000/hook", "http://[::1]:9000/hook", "https://hooks_1.example.com./x",
])
def test_good_urls_pass(url):
    assert check_url(url) == url


def test_plain_http_to_any_host_only_where_private_targets_are_allowed():
    with pytest.raises(ValueError, match="https"):
        check_url("http://10.0.0.5/hook")
    assert check_url("http://10.0.0.5/hook", allow_http=True)
    assert validate_url("http://10.0.0.5/hook", public, allow_private=True)


@pytest.mark.parametrize("url,why", [
    ("https://u:p@hooks.example.com/x", "user name or password"), ("https://hooks.example.com/a b", "a space"),
    ("https://hooks.example.com/a\r\nb", "line break"), ("http://hooks.example.com/x", "https"), ("https://", "no host"),
])
def test_job_settings_refuse_bad_webhook_urls_naming_the_field(url, why):
    """``POST /jobs`` bodies, sidecars and S3 metadata all go through ``job_settings.parse``."""
    with pytest.raises(job_settings.InvalidSettings, match=why) as refused:
        job_settings.parse({"webhook_url": url})
    assert refused.value.field == "webhook_url" and refused.value.code == "INVALID_SETTINGS"
    with pytest.raises(job_settings.InvalidSettings, match=why):
        job_settings.parse(settings_metadata.settings_from_metadata({"webhook-url": url}))
    with pytest.raises(job_settings.InvalidSettings, match=why):
        job_settings.parse(json.loads(settings_metadata.metadata_for({"webhook_url": url})["settings"]))


def test_job_settings_keep_good_webhook_urls():
    url = "https://hooks.example.com/h?token=abc"
    assert job_settings.parse({"webhook_url": url}).webhook_url == url


def test_the_templates_webhook_urls_parameter_refuses_what_the_rule_refuses():
    """CloudFormation checks ``WebhookUrls`` against its AllowedPattern at deploy time."""
    import re

    from infra.local.cloudformation.template import load_template
    pattern = load_template()["Parameters"]["WebhookUrls"]["AllowedPattern"]
    for good in ("", "https://a.example.com/hook", "https://a.example.com:8443/h?x=1,https://b.example.com"):
        assert re.fullmatch(pattern, good), good
    for bad in ("https://u:p@a.example.com/", "https://a.example.com/a b", "http://a.example.com/",
                "https://a.example.com/x\nb", "https://a.example.com,", " https://a.example.com"):
        assert not re.fullmatch(pattern, bad), bad


# --- public addresses ---------------------------------------------------------------------
def public(host):
    return ["93.184.216.34"]


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.5.4", "169.254.169.254", "0.0.0.0", "100.64.0.1",
    "192.0.0.9", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "192.88.99.1", "224.0.0.1",
    "240.0.0.1", "255.255.255.255",
    "::1", "::", "fd00::1", "fe80::1", "ff02::1", "100::1", "5f00::1",
    "::ffff:127.0.0.1", "::ffff:93.184.216.34",     # IPv4-mapped (RFC 4291), even of a public address
    "::ffff:0:7f00:1",                              # IPv4-translated (RFC 2765)
    "::7f00:1",                                     # IPv4-compatible (deprecated)
    "64:ff9b::7f00:1", "64:ff9b:1::a00:1",          # NAT64 (RFC 6052, RFC 8215)
    "2002:7f00:1::1", "2002:5db8:d822::1",          # 6to4 (RFC 3056)
    "2001:0:4136:e378::1",                          # Teredo (RFC 4380)
    "2001:db8::1", "3fff::1",                       # documentation (RFC 3849, RFC 9637)
])
def test_non_global_addresses_are_refused_unless_private_targets_are_allowed(address):
    assert not is_public_address(address)
    with pytest.raises(ValueError, match="non-public"):
        validate_url("https://hooks.example.com/x", lambda h: [address])
    assert validate_url("http://127.0.0.1:9000/hook", lambda h: [address], allow_private=True)


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111",
                                     "2a00:1450:4001:82a::200e"])
def test_global_unicast_addresses_are_public(address):
    assert is_public_address(address)
    assert validate_url("https://hooks.example.com/x", lambda h: [address])


def test_a_literal_non_global_host_is_refused_without_resolving():
    with pytest.raises(ValueError, match="non-public"):
        validate_target("https://[64:ff9b::a9fe:a9fe]/latest/meta-data", lambda h: pytest.fail("resolved"))


def test_target_is_resolved_once_and_that_address_is_used():
    """DNS rebinding: a resolver that answers public first and loopback next changes nothing."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    assert validate_target("https://hooks.example.com/x", lambda h: next(answers)) == "93.184.216.34"
    with pytest.raises(ValueError, match="non-public"):
        validate_target("https://hooks.example.com/x", lambda h: ["93.184.216.34", "127.0.0.1"])
    with pytest.raises(ValueError, match="does not resolve"):
        validate_target("https://nowhere.example/x", lambda h: [], allow_private=True)


# --- redaction ----------------------------------------------------------------------------
@pytest.mark.parametrize("url,shown", [
    ("https://hooks.slack.com/services/T000/B000/XXXXXXXX", "https://hooks.slack.com/services/…"),
    ("https://discord.com/api/webhooks/1234567/abcDEF", "https://discord.com/api/webhooks/…"),
    ("https://example.com/hook?token=abc123&mode=x#frag", "https://example.com/hook?token=…&mode=…"),
    ("https://user:pw@example.com/hook", "https://example.com/hook"),
    ("http://127.0.0.1:8080/hooks?per-upload=1", "http://127.0.0.1:8080/hooks?per-upload=…"),
    ("https://example.com/h?s3cr3tt0ken", "https://example.com/h?…"),
    ("https://[2001:db8::1]:8443/a/Tok3n/b", "https://[2001:db8::1]:8443/a/…"),
    ("https://example.com", "https://example.com"),
    ("not a url", "…"), (None, "…"),
])
def test_urls_are_redacted_for_people(url, shown):
    assert redact_url(url) == shown


def test_job_resource_shows_the_webhook_url_redacted():
    from chalicelib.domain.jobs import job_resource
    job = {"job_id": "j", "status": "queued", "settings": {"webhook_url": "https://example.com/h/Secr3t?token=abc"},
           "webhook_url": "https://example.com/h/Secr3t?token=abc"}
    shown = json.dumps(job_resource(job, [], "out", None))
    assert "Secr3t" not in shown and "abc" not in shown
    assert job_resource(job, [], "out", None)["settings"]["webhook_url"] == "https://example.com/h/…?token=…"


# --- delivery over real sockets -------------------------------------------------------------
class Receiver:
    """A local HTTP receiver: answers ``status`` (and ``Location`` for redirects); records
    each request's Host header, path, headers and body."""

    def __init__(self, status=204):
        import http.server
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                seen.append((self.headers["Host"], self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def trickle(conn, stop_at):
    """A status line, then one header byte every 0.2 s until the server's end."""
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while time.monotonic() < stop_at:
        conn.sendall(b"X")
        time.sleep(0.2)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(status):
    receiver = Receiver(status)
    try:
        port = receiver.server.server_port
        got = http_post(f"http://hooks.example.com:{port}/hook?a=1", b"{}", {SIGNATURE_HEADER: "v1,x"}, 5, "127.0.0.1")
        assert got == status
        assert [(h, p, hd[SIGNATURE_HEADER]) for h, p, hd, _ in receiver.seen] == \
            [(f"hooks.example.com:{port}", "/hook?a=1", "v1,x")], \
            "one request, to the validated address, with the URL's Host; the Location is never fetched"
    finally:
        receiver.close()


def test_a_receiver_trickling_its_answer_is_cut_at_the_deadline():
    """``webhook_timeout`` bounds the whole POST, not each recv (a byte every 0.2 s would
    never trip a per-recv timeout of 1 s)."""
    server = RawServer(trickle, lifetime=8)
    try:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            http_post(f"http://127.0.0.1:{server.port}/h", b"{}", {}, 1.0, "127.0.0.1")
        assert time.monotonic() - started < 5.0  # the deadline (1 s), not the server's end (8 s)
    finally:
        server.close()


class FakeRecords:
    def __init__(self):
        self.items = {}

    def delivery(self, delivery_id):
        return self.items.get(delivery_id)

    def record_delivery(self, delivery_id, url, job_id, event_type, attempts=1):
        self.items[delivery_id] = {"status": "delivered", "url": url, "attempts": attempts}

    def record_delivery_failure(self, delivery_id, url, job_id, event_type, attempts, error, retry_in):
        self.items[delivery_id] = {"status": "failed", "url": url, "attempts": attempts, "last_error": error,
                                   "retry_in": retry_in}


def webhook_ctx(urls, own=None):
    settings = Settings(webhook_urls=tuple(urls), webhook_secret=SECRET, webhook_allow_private=True,
                        webhook_timeout=2.0)
    return SimpleNamespace(settings=settings, records=FakeRecords(),
                           store=SimpleNamespace(get_job_field=lambda job_id, field: own))


def test_every_target_is_tried_and_each_failure_is_recorded_and_backed_off():
    """A receiver answering garbage and a URL with a space (http.client's InvalidURL before the
    rule) come first; the good target still gets the event, once; the failures are recorded
    per target, retried with the backoff policy, and never re-send to the good target."""
    good, bad = Receiver(204), RawServer(garbage)
    invalid = f"http://127.0.0.1:{bad.port}/a b"  # a deployment URL from before the rule
    ctx = webhook_ctx([f"http://127.0.0.1:{bad.port}/hook", invalid, good.url + "/hooks?token=Secr3tT0ken"])
    event = json.dumps({"event_type": "JobQueued", "job_id": "j1"})
    try:
        with pytest.raises(service.DeliveryFailed) as first:
            service.deliver(ctx, "m1", event)
        assert first.value.retry_after == 10
        assert len(good.seen) == 1 and len(bad.hits) == 1
        failed = {f["url"]: f for f in first.value.failed}
        assert set(failed) == {f"http://127.0.0.1:{bad.port}/hook", f"http://127.0.0.1:{bad.port}/…"}
        assert all(f["attempts"] == 1 for f in failed.values())
        assert "BadStatusLine" in failed[f"http://127.0.0.1:{bad.port}/hook"]["error"]
        records = list(ctx.records.items.values())
        assert sorted(r["status"] for r in records) == ["delivered", "failed", "failed"]
        assert "Secr3tT0ken" not in json.dumps(records) + json.dumps(first.value.failed), "URLs recorded redacted"
        with pytest.raises(service.DeliveryFailed) as second:
            service.deliver(ctx, "m1", event)   # SQS brings the message back
        assert second.value.retry_after == 20 and {f["attempts"] for f in second.value.failed} == {2}
        assert len(good.seen) == 1, "the good target is never sent the event again"
        _, path, headers, body = good.seen[0]
        assert path == "/hooks?token=Secr3tT0ken"
        assert verify(SECRET, headers, body, now=time.time(), target=good.url + "/hooks?token=Secr3tT0ken")
        assert json.loads(body)["job_id"] == "j1"
    finally:
        good.close()
        bad.close()


def test_a_refused_target_is_a_recorded_failure_too():
    ctx = webhook_ctx([])
    ctx.settings = Settings(webhook_urls=("https://hooks.example.com/x",), webhook_secret=SECRET)  # no private
    with pytest.raises(service.DeliveryFailed) as failed:
        service.deliver(ctx, "m1", json.dumps({"event_type": "JobQueued"}),
                        post=lambda *a: pytest.fail("posted to a refused target"))
    assert failed.value.failed[0]["attempts"] == 1 and "ValueError" in failed.value.failed[0]["error"]


def test_no_target_no_secret_needed_and_no_secret_no_sending():
    assert service.deliver(webhook_ctx([]), "m1", json.dumps({"event_type": "JobQueued"})) == \
        {"delivered": [], "skipped": [], "failed": []}
    ctx = webhook_ctx(["https://hooks.example.com/x"])
    ctx.settings = Settings(webhook_urls=("https://hooks.example.com/x",))
    from chalicelib.domain.errors import ConfigurationError
    with pytest.raises(ConfigurationError, match="VODPIPE_WEBHOOK_SECRET"):
        service.deliver(ctx, "m1", json.dumps({"event_type": "JobQueued"}))
