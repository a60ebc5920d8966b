"""Input confinement's rules alone: the protocols FFmpeg may open for a URL, and what error
messages keep of URLs and paths (hostile inputs against the real tools: tests/media/test_confinement.py)."""
import pytest

from chalicelib.domain import confinement


def test_protocols_follow_the_url_and_messages_are_redacted():
    assert confinement.protocols_for("https://b.s3.amazonaws.com/k?X-Amz-Signature=1") == "https,tls,tcp"
    assert confinement.protocols_for("http://127.0.0.1:4566/b/k") == "http,tcp"
    assert confinement.protocols_for("/tmp/x.ts") == "file"
    with pytest.raises(ValueError):
        confinement.protocols_for("rtmp://example.com/live")
    assert confinement.redact("open http://10.0.0.1/a.ts and file:/etc/passwd /etc/shadow") == \
        "open <url> and <url> <path>"
