"""Browser uploads (S3 POST Object with a signed POST policy), checked locally as S3 checks them.

moto stores a form upload without looking at its policy; S3 refuses it unless (Amazon S3 API
reference, "Browser-based uploads using POST", "Creating a POST policy"):

* the SigV4 signature of the base64 policy verifies with the signer's secret
  (``x-amz-signature`` = HMAC-SHA256(signing key for date/region/``s3``, policy));
* the policy has not expired;
* every condition holds for the form: exact matches (``{"field": value}`` or
  ``["eq", "$field", value]``), ``["starts-with", "$field", prefix]`` and
  ``["content-length-range", min, max]`` on the file's size; every form field except
  ``x-amz-signature``, ``file`` and ``policy`` (and ``x-ignore-*``) must be named by a
  condition;
* the signer may ``s3:PutObject`` the key (checked by ``enforcement.IamEnforcingApp``).

``check`` returns the refusal message, or None when S3 would accept the form.
"""
from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import hmac
import json
from datetime import datetime, timezone

#: Form fields a policy need not name.
UNCHECKED_FIELDS = {"x-amz-signature", "file", "policy"}


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], bytes | None]:
    """(fields by lower-case name, the ``file`` part's bytes) of a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, str] = {}
    data = None
    for part in message.iter_parts():
        name = (part.get_param("name", header="content-disposition") or "").lower()
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            data = payload
        else:
            fields[name] = payload.decode()
    return fields, data


def _signing_key(secret: str, date: str, region: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def check(bucket: str, fields: dict[str, str], size: int, secret: str | None,
          now: datetime | None = None) -> str | None:
    """Why S3 would refuse this form upload to ``bucket`` (``size`` bytes of file), or None.
    ``secret``: the signing key's secret (None: unknown access key)."""
    now = now or datetime.now(timezone.utc)
    policy_b64 = fields.get("policy")
    if not policy_b64:
        return "the form has no policy"
    credential = fields.get("x-amz-credential", "").split("/")
    if len(credential) != 5 or secret is None:
        return "the form's x-amz-credential is not a known access key"
    _, date, region, service, _ = credential
    expected = hmac.new(_signing_key(secret, date, region), policy_b64.encode(), hashlib.sha256).hexdigest()
    if service != "s3" or not hmac.compare_digest(expected, fields.get("x-amz-signature", "")):
        return "the policy's signature does not match"
    policy = json.loads(base64.b64decode(policy_b64))
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    if expiration <= now:
        return "the policy expired"
    named = set()
    values = {**fields, "bucket": bucket}
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            (name, value), = condition.items()
            op, name = "eq", name.lower()
        elif condition[0] == "content-length-range":
            if not int(condition[1]) <= size <= int(condition[2]):
                return f"the file has {size} bytes, outside {condition[1]}-{condition[2]}"
            continue
        else:
            op, name, value = condition[0], condition[1].lstrip("$").lower(), condition[2]
        named.add(name)
        actual = values.get(name, "")
        if (op == "eq" and actual != value) or (op == "starts-with" and not actual.startswith(value)):
            return f"the form's {name} does not satisfy the policy condition {condition}"
    extra = [f for f in fields if f not in named and f not in UNCHECKED_FIELDS and not f.startswith("x-ignore-")]
    if extra:
        return f"the form has fields the policy does not name: {', '.join(sorted(extra))}"
    return None
