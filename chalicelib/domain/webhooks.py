"""Webhook and import URLs: the syntax rule, the public-address rule, Standard Webhooks
signatures and the redaction of URLs shown to people. Pure: no network (name resolution is
passed in), no clock (``now`` is passed in).

**URL rule** (``check_url``; RFC 3986 for the syntax): at most ``MAX_URL_LENGTH`` characters,
only the characters RFC 3986 §2 allows (unreserved, reserved, ``%`` + two hex digits): no
space, CR/LF, tab or other control character, nothing outside ASCII (percent-encode it);
scheme https (http only to a loopback host, which only a deployment that allows private
targets, the local cloud, ever delivers to; ``allow_http`` lifts the host condition there);
a host (a DNS name of letters, digits, ``-`` and ``_`` in labels of at most 63 characters, at
most 253 in all, the last label not all digits; a dotted-quad IPv4 address; or an IPv6 address
in brackets without a zone); no ``user:password@`` (RFC 3986 §3.2.1 deprecates a password in
a URI); a port, if any, 1-65535.

**Addresses** (``is_public_address``): only what the IANA special-purpose address registries
call globally reachable; every address a host resolves to must be public, unless the
deployment allows private targets (``VODPIPE_WEBHOOK_ALLOW_PRIVATE`` /
``VODPIPE_IMPORT_ALLOW_PRIVATE``: the local cloud, whose test receivers listen on 127.0.0.1).

**Signatures** (the Standard Webhooks specification, v1 symmetric scheme,
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)::

    webhook-id: <delivery id>            (unique per event and target; the same on every retry)
    webhook-timestamp: <unix seconds>    (of this attempt)
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<raw body>")>

The key is the secret's UTF-8 bytes, or for a ``whsec_<base64>`` secret the decoded bytes (the
specification's serialization). The body carries ``"target"``: the URL it was sent to, so a
captured delivery replayed to another receiver fails that receiver's target check. A receiver
rejects timestamps more than ``TOLERANCE_SECONDS`` from its clock (replay window) and
de-duplicates on ``webhook-id`` (deliveries are at least once). ``verify`` does all of it.

**Redaction** (``redact_url``): URLs often carry tokens; what people see (job resources,
delivery records, logs) keeps the scheme, host and port, the leading path segments that are
plain lower-case words, and the query's keys; the first other path segment and everything
after it, every query value, any ``user:password@`` and the fragment become ``…``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import re
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

# --- the URL rule -------------------------------------------------------------------------
#: Longest URL accepted (characters). Browsers and CDNs handle 2,000+; a webhook or source URL
#: has no reason to be longer (and it is stored in every job item that names it).
MAX_URL_LENGTH = 2048
#: RFC 3986 §2: unreserved (ALPHA DIGIT - . _ ~), gen-delims (: / ? # [ ] @), sub-delims
#: (! $ & ' ( ) * + , ; =) and ``%`` of a percent-encoding.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*\Z")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: One DNS label (RFC 1035 §2.3.1 letters, digits, hyphen; ``_`` as DNS itself allows),
#: 1-63 characters, no hyphen at either end.
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")
MAX_HOST_LENGTH = 253


def _control_character(url: str) -> str | None:
    """How to name the first character outside printable ASCII in ``url``, or None."""
    for c in url:
        if c == " ":
            return "a space (percent-encode it as %20)"
        if c in "\r\n":
            return "a line break (CR/LF)"
        if ord(c) < 0x20 or ord(c) == 0x7F:
            return f"a control character (U+{ord(c):04X})"
        if ord(c) > 0x7E:
            return f"a non-ASCII character (U+{ord(c):04X}; percent-encode it)"
    return None


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback address literals (127.0.0.0/8, ::1)."""
    host = host.lower().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_host(host: str, bracketed: bool) -> None:
    """Raise ValueError unless ``host`` (as ``urlsplit().hostname`` gives it) is a DNS name,
    a dotted-quad IPv4 address, or (``bracketed``) an IPv6 address without a zone."""
    if bracketed:
        if "%" in host:
            raise ValueError("has an IPv6 zone in its host")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("has an invalid IPv6 host") from None
        return
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if all(label.isdigit() for label in labels):  # an address, only as a dotted quad
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise ValueError("has an invalid host (an IPv4 address is four decimal numbers 0-255)") from None
        return
    if len(name) > MAX_HOST_LENGTH or not all(_LABEL.match(label) for label in labels):
        raise ValueError("has an invalid host (a DNS name: letters, digits, '-' in labels of 1-63 characters)")
    if labels[-1].isdigit():
        raise ValueError("has an invalid host (its last label is a number)")


def check_url(url: Any, allow_http: bool = False) -> str:
    """``url`` if it follows the URL rule (module docstring), else ``ValueError`` whose message
    completes a sentence starting with the field's name ("webhook_url: must be https ...").

    ``allow_http``: plain http to any host (a deployment that allows private targets, i.e.
    the local cloud); otherwise http only to a loopback host. Pure: resolves nothing."""
    if not isinstance(url, str) or not url:
        raise ValueError("must be a URL")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"is longer than {MAX_URL_LENGTH} characters")
    bad = _control_character(url)
    if bad:
        raise ValueError(f"contains {bad}")
    if not _URI_CHARS.match(url):
        char = next(c for c in url if not _URI_CHARS.match(c))
        raise ValueError(f"contains {char!r}, which RFC 3986 does not allow in a URL (percent-encode it)")
    if _BAD_PERCENT.search(url):
        raise ValueError("has a '%' that is not followed by two hex digits")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError("is not a valid URL (RFC 3986): unbalanced brackets around its host") from None
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port (1-65535)") from None
    scheme = parts.scheme.lower()
    if "[" in url.replace(parts.netloc, "", 1) or "]" in url.replace(parts.netloc, "", 1):
        raise ValueError("has '[' or ']' outside its host (RFC 3986 allows them only around an IPv6 host)")
    if scheme not in ("https", "http"):
        raise ValueError(f"must be an https URL, not {scheme or 'schemeless'}")
    if "@" in parts.netloc:
        raise ValueError("must not carry a user name or password (user:password@)")
    host = parts.hostname
    if not host:
        raise ValueError("has no host")
    _check_host(host, parts.netloc.startswith("["))
    if port == 0 or (parts.netloc.rstrip("0123456789").endswith(":") and port is None):
        raise ValueError("has an invalid port (1-65535)")
    if scheme == "http" and not allow_http and not is_loopback_host(host):
        raise ValueError("must be an https URL (plain http only to a loopback host, for local tests)")
    return url


# --- public addresses ---------------------------------------------------------------------
#: IPv4 blocks that are never a target: the IANA IPv4 Special-Purpose Address Registry's
#: blocks whose "Globally Reachable" is False (RFC 6890 and updates: this network, private-use
#: RFC 1918, shared CGN space RFC 6598, loopback, link-local RFC 3927, IETF protocol
#: assignments 192.0.0.0/24 whole, documentation TEST-NET-1/2/3 RFC 5737, benchmarking RFC 2544,
#: reserved 240.0.0.0/4 with the limited broadcast), multicast 224.0.0.0/4 (RFC 5771) and the
#: deprecated 6to4 relay anycast 192.88.99.0/24 (RFC 7526).
NON_PUBLIC_V4 = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"))
#: IPv6: only the global unicast space 2000::/3 (IANA IPv6 Address Space registry). Outside
#: it lie the unspecified and loopback addresses, IPv4-mapped ::ffff:0:0/96 (RFC 4291),
#: IPv4-translated ::ffff:0:0:0/96 (RFC 2765), IPv4-compatible ::/96, NAT64 64:ff9b::/96 (RFC 6052)
#: and 64:ff9b:1::/48 (RFC 8215), discard-only 100::/64 (RFC 6666), SRv6 5f00::/16 (RFC 9602),
#: unique-local fc00::/7 (RFC 4193), link-local fe80::/10 and multicast ff00::/8.
V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
#: Inside 2000::/3, blocks that are never a target (IANA IPv6 Special-Purpose Address
#: Registry): IETF protocol assignments 2001::/23 whole (Teredo 2001::/32, RFC 4380, among them),
#: documentation 2001:db8::/32 (RFC 3849) and 3fff::/20 (RFC 9637), and 6to4 2002::/16 (RFC 3056,
#: it embeds an IPv4 address).
NON_PUBLIC_V6 = tuple(ipaddress.IPv6Network(n) for n in ("2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20"))


def is_public_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True when ``address`` (an IP string or object) may be a webhook or import target:
    globally reachable unicast by the IANA special-purpose address registries (the tables
    above), and ``is_global`` by Python's ``ipaddress`` too. Any IPv6 address that embeds or
    translates an IPv4 address (mapped, translated, compatible, NAT64, 6to4, Teredo) is
    refused outright, whatever IPv4 address it carries. Raises ValueError for a string that
    is not an IP address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id or ip not in V6_GLOBAL_UNICAST or any(ip in net for net in NON_PUBLIC_V6):
            return False
    elif any(ip in net for net in NON_PUBLIC_V4):
        return False
    return ip.is_global and not ip.is_multicast


def validate_url(url: str, resolve: Callable[[str], Iterable[str]], allow_private: bool = False,
                 what: str = "webhook") -> str:
    """Check a target: ``check_url`` (plain http too when ``allow_private``); unless
    ``allow_private``, every address the host resolves to (``resolve(host)`` -> IP strings)
    must be public (``is_public_address``: SSRF protection). Returns the URL.

    Raises ValueError with the reason, starting with ``what`` ("webhook URL has no host")."""
    try:
        check_url(url, allow_http=allow_private)
    except ValueError as e:
        raise ValueError(f"{what} URL {e}") from None
    if allow_private:
        return url
    host = urlsplit(url).hostname or ""
    addresses = list(resolve(host))
    if not addresses:
        raise ValueError(f"{what} host {host} does not resolve")
    for a in addresses:
        try:
            public = is_public_address(a)
        except ValueError:
            public = False
        if not public:
            raise ValueError(f"{what} host {host} resolves to a non-public address ({a})")
    return url


def validate_target(url: str, resolve: Callable[[str], Iterable[str]], allow_private: bool = False,
                    what: str = "webhook") -> str:
    """``validate_url`` on one resolution of the host, then the address to connect to: the
    first of the addresses that all passed. Delivery connects to exactly this address, so a
    name that resolves differently a moment later (DNS rebinding) changes nothing. Raises
    ValueError with the reason (also when the host does not resolve)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = list(resolve(host)) if host else []
    validate_url(url, lambda _host: addresses, allow_private, what)  # checks this one answer
    if not addresses:
        raise ValueError(f"{what} host {host} does not resolve")
    return addresses[0]


# --- signatures (Standard Webhooks) --------------------------------------------------------
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
#: A receiver accepts a ``webhook-timestamp`` at most this far from its clock (s): the replay
#: window (the specification's and its reference libraries' 5 minutes).
TOLERANCE_SECONDS = 300
#: The specification's serialization of a symmetric secret: ``whsec_`` + base64 of the key.
SECRET_PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: base64-decoded after ``whsec_``, else its UTF-8 bytes.
    Raises ValueError for a ``whsec_`` secret that is not base64."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
        except binascii.Error:
            raise ValueError("a whsec_ secret must be base64 after its prefix") from None
    return secret.encode()


def sign(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) of ``body`` sent as ``delivery_id``
    at ``timestamp`` (Unix s): HMAC-SHA256 over ``"<id>.<timestamp>.<body>"``."""
    mac = hmac.new(signing_key(secret), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery attempt."""
    return {ID_HEADER: delivery_id, TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, delivery_id, timestamp, body)}


def delivery_body(event: Mapping[str, Any], target: str) -> bytes:
    """The JSON body POSTed to ``target``: the event plus ``"target": <that URL>`` (compact,
    sorted keys), so the signature covers the receiver it was meant for."""
    return json.dumps({**event, "target": target}, separators=(",", ":"), sort_keys=True).encode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: int = TOLERANCE_SECONDS,
           target: str | None = None) -> bool:
    """True when ``headers`` (any case) carry a valid Standard Webhooks signature of ``body``
    made by ``secret``: a ``webhook-timestamp`` within ``tolerance`` seconds of ``now`` (Unix
    s), one ``v1,`` signature of the space-separated list matching in constant time, and, when
    ``target`` is given, the body's ``"target"`` equal to it (the receiver's own URL). Missing
    or malformed headers are simply invalid."""
    lower = {k.lower(): v for k, v in headers.items()}
    delivery_id, stamp, signatures = (lower.get(h, "") for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not delivery_id or "." in delivery_id or not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    try:
        expected = sign(secret, delivery_id, int(stamp), body)
    except ValueError:
        return False
    if not any(hmac.compare_digest(expected.encode(), s.encode()) for s in signatures.split(" ") if s.startswith("v1,")):
        return False
    if target is not None:
        try:
            return json.loads(body).get("target") == target
        except (ValueError, AttributeError):
            return False
    return True


# --- redaction ----------------------------------------------------------------------------
REDACTED = "…"
#: A path segment kept in a redacted URL: a plain lower-case word (``hooks``, ``vodpipe-events``).
_WORD = re.compile(r"[a-z][a-z._-]{0,23}\Z")
#: A query key kept in a redacted URL (its value never is).
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,31}\Z")
_HOST = re.compile(r"[a-z0-9._:-]+\Z")


def redact_url(url: Any) -> str:
    """``url`` as people may see it (module docstring): ``https://hooks.slack.com/services/…``
    for ``https://hooks.slack.com/services/T0/B0/XXXX``, ``https://example.com/hook?token=…``
    for ``https://example.com/hook?token=abc#x``. Anything unparsable is ``…`` whole."""
    if not isinstance(url, str):
        return REDACTED
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return REDACTED
    if not host or not _HOST.match(host) or not parts.scheme.isalpha():
        return REDACTED
    out = f"{parts.scheme.lower()}://{'[' + host + ']' if ':' in host else host}{f':{port}' if port else ''}"
    segments = parts.path.split("/")
    kept = segments[:1]
    for segment in segments[1:]:
        if segment and not _WORD.match(segment):
            kept.append(REDACTED)
            break
        kept.append(segment)
    out += "/".join(kept)
    if parts.query:
        pairs = (pair.split("=", 1) for pair in parts.query.split("&") if pair)
        out += "?" + "&".join(f"{p[0]}={REDACTED}" if len(p) == 2 and _KEY.match(p[0]) else REDACTED for p in pairs)
    return out


def redact_settings(settings: Any) -> Any:
    """A settings document (``job_settings.JobSettings.to_dict()`` as stored) with its
    ``webhook_url`` redacted; anything else unchanged."""
    if isinstance(settings, Mapping) and settings.get("webhook_url"):
        return {**settings, "webhook_url": redact_url(settings["webhook_url"])}
    return settings
