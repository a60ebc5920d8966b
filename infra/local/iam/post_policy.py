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

The form itself (``parse_form``) must name each field once, with the file last: the POST Object
reference says "The file or content must be the last field in the form. Any fields below it are
ignored." and "You cannot upload more than one file at a time" (S3 answers ``400
InvalidArgument``, "POST requires exactly one file upload per request.", ArgumentName
``file``). So a field after the file is ignored, as S3 ignores it: neither stored nor checked
(``parse_form`` drops it and hands moto the form without it, see ``enforcement``). A
duplicated field is refused too (``400 InvalidArgument`` naming the field): the S3 documentation
does not say which of two values it would use, and moto keeps the first while a dict keeps the
last, so the value checked against the policy could differ from the value stored. Refusing is
never more permissive than S3. Field names compare without case, as the policy's do.
"""
from __future__ import annotations

import base64
import email.message
import email.parser
import email.policy
import hashlib
import hmac
import json
import re
from datetime import datetime, timezone

#: Form fields a policy need not name.
UNCHECKED_FIELDS = {"x-amz-signature", "file", "policy"}


class MalformedForm(ValueError):
    """A form S3 refuses before its policy (``400 InvalidArgument``): ``argument`` names the
    field."""

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument, self.message = argument, message


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], bytes | None]:
    """(fields by lower-case name, the ``file`` part's bytes) of a multipart/form-data body.
    Fields after the file are ignored, as S3 ignores them (module docstring). Raises
    ``MalformedForm`` for a field named twice before the file, no file or a second one."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, str] = {}
    data = None
    for part in message.iter_parts():
        name = (part.get_param("name", header="content-disposition") or "").lower()
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            if data is not None:
                raise MalformedForm("file", "POST requires exactly one file upload per request.")
            data = payload
        elif data is not None:
            continue  # after the file: ignored ("Any fields below it are ignored.")
        elif name in fields:
            raise MalformedForm(name, f"The form field {name} appears more than once; each field may be given "
                                      f"once.")
        else:
            fields[name] = payload.decode()
    if data is None:
        raise MalformedForm("file", "POST requires exactly one file upload per request.")
    return fields, data


_FILE_PART = re.compile(rb'(?im)^content-disposition:[^\r\n]*;\s*name="?file"?\s*(;|\r?$)')


def up_to_file(content_type: str, body: bytes) -> bytes:
    """``body`` (a form ``parse_form`` accepted) without the fields after its file, so the form
    moto stores is the form S3 would: S3 ignores them (module docstring)."""
    boundary = email.message.Message()
    boundary["Content-Type"] = content_type
    delimiter = b"\r\n--" + (boundary.get_param("boundary") or "").encode()
    pieces = (b"\r\n" + body).split(delimiter)  # preamble, each part, the closing "--"
    for at, piece in enumerate(pieces[1:-1], start=1):
        if _FILE_PART.search(piece.split(b"\r\n\r\n", 1)[0]):
            if at == len(pieces) - 2:
                return body  # the file is the last part already
            return delimiter.join(pieces[:at + 1])[2:] + delimiter + b"--\r\n"
    return body


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
