import pytest

from chalicelib.domain.webhooks import sign, validate_url, verify

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
