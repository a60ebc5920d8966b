"""IAM, enforced by the local cloud: every AWS call a function or a worker task makes is
checked against its own role's policies from the template, as AWS would check it.

moto's own enforcement cannot serve (docs/local-cloud.md: resources other than S3 are checked against
``*`` only, presigned GETs answer 500, ``sts:AssumeRole`` crashes on service principals), so:

* each principal (a role of the template whose ``Metadata.VodpipePrincipal`` names a function or
  the worker task) gets its own access key; its processes run with it;
* ``IamEnforcingApp`` wraps moto's WSGI application: it reads the caller's access key from the
  SigV4 ``Authorization`` header or a presigned URL's ``X-Amz-Credential``, works out the IAM
  action(s) and resource ARN(s) of the request (``actions.request_permissions``, after AWS's Service
  Authorization Reference: mostly ``<service>:<Operation>``; S3 by method and sub-resource),
  evaluates the role's policies with moto's policy evaluator (explicit deny wins, then an
  allow, else implicit deny) and answers a denied call with the service's own error
  (``AccessDeniedException``, S3 ``AccessDenied``, SNS ``AuthorizationError``...), logging
  principal, action and resource;
* the local cloud's own administrative key (``test``: provisioning, log shipping, alarms, the
  user at the terminal) is not restricted, like the account's administrator;
* a request with credentials (an ``Authorization`` header, or any of a presigned URL's
  ``X-Amz-Credential``, ``X-Amz-Signature``, ``AWSAccessKeyId``) must name a known access key
  (a principal's or the administrator's), as AWS requires: otherwise S3 answers ``403
  InvalidAccessKeyId`` (``400 AuthorizationHeaderMalformed`` / ``AuthorizationQueryParameters
  Error`` when no access key can be read, e.g. ``?X-Amz-Signature=x`` alone), the JSON APIs
  ``400 UnrecognizedClientException``, the query APIs ``403 InvalidClientTokenId``
  (``anonymous.invalid_credentials``); what AWS serves unsigned (below) still passes;
* an unsigned request (no ``Authorization`` header, no presigned URL's credential) is the
  anonymous principal, as AWS sees it: an S3 call passes only where the bucket's policy allows
  Principal ``*`` that action on that resource (the output bucket's public ``GetObject`` when
  ``PublicOutputs`` is "true", so players read the outputs) and its public access block does not
  restrict public policies, else ``403 AccessDenied``; DynamoDB answers ``400
  MissingAuthenticationTokenException``, the other JSON and query APIs ``403
  MissingAuthenticationToken``. What AWS serves unsigned still passes: CORS preflights
  (``OPTIONS``), Cognito's public user pool operations (``InitiateAuth``... the console's
  sign-in) and a pool's JWKS, STS's ``AssumeRoleWith*``. Refusals (these and unknown keys') are
  logged and kept in ``anonymous_denials``.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote

from moto.iam.access_control import IAMPolicy, PermissionResult

from infra.local.iam.actions import request_permissions, s3_permissions
from infra.local.iam.anonymous import (COGNITO_PUBLIC_OPERATIONS, STS_PUBLIC_ACTIONS, USER_POOL_DOCUMENT, allows_anyone,
                                       invalid_credentials, is_signed, missing_authentication, moto_bucket_policy,
                                       sigv2_access_key)

log = logging.getLogger("vodpipe.local.iam")
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass
class Principal:
    """A role: ``name`` (e.g. ``function:ingest``), ``role_arn``, its access key pair and its
    policy documents (JSON strings)."""

    name: str
    role_arn: str
    access_key: str
    secret_key: str
    policies: list[str] = field(default_factory=list)

    def credentials(self) -> dict[str, str]:
        """The environment that makes boto3 (and ffmpeg's presigned URLs) act as this role."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def decide(self, action: str, resource: str) -> bool:
        """True when the policies allow ``action`` on ``resource``."""
        allowed = False
        for document in self.policies:
            result = _parsed(document).is_action_permitted(action, resource)
            if result == PermissionResult.DENIED:
                return False
            allowed = allowed or result == PermissionResult.PERMITTED
        return allowed


@lru_cache(maxsize=256)
def _parsed(document: str) -> IAMPolicy:
    """A policy document parsed once: every AWS call of every process is decided here."""
    return IAMPolicy(document)


def access_key_for(name: str) -> str:
    """A stable, distinct 20-character access key id for a principal name."""
    return "ASIA" + hashlib.sha256(name.encode()).hexdigest()[:16].upper()


def denial_response(service: str, headers: dict[str, str], principal: Principal, action: str,
                    resource: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """The status line, headers and body AWS answers a denied call with, per protocol."""
    message = (f"User: {principal.role_arn.replace(':role/', ':assumed-role/')}/local is not authorized to "
               f"perform: {action} on resource: {resource} because no identity-based policy allows the "
               f"{action} action")
    if service == "s3":
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                f"<Message>{message}</Message></Error>").encode()
        return "403 Forbidden", [("Content-Type", "application/xml")], body
    if headers.get("x-amz-target"):
        code = "AccessDenied" if service == "sqs" else "AccessDeniedException"
        extra = [("x-amzn-query-error", "AccessDenied;Sender")] if service == "sqs" else []
        body = json.dumps({"__type": code, "message": message}).encode()
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code),
                                   *extra], body
    code = "AuthorizationError" if service == "sns" else "AccessDenied"
    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>local</RequestId></ErrorResponse>").encode()
    return "403 Forbidden", [("Content-Type", "text/xml")], body


def query_action(environ: dict, query: str) -> str:
    """The ``Action`` of a query-protocol request (SNS, STS, SQS's older protocol): from the
    query string, or a form-encoded POST body (read, and put back for the application); ``""``
    for other protocols."""
    action = parse_qs(query).get("Action", [""])[0]
    if environ.get("REQUEST_METHOD") == "POST" and \
            environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [action])[0]
    return action


class IamEnforcingApp:
    """WSGI middleware in front of moto: denies what the caller's role does not allow.
    ``principals`` by access key; the administrator's keys (``admin_secrets``) pass; any other
    key, or credentials naming none, is refused as AWS refuses an unknown key."""

    def __init__(self, app: Callable, principals: Iterable[Principal], region: str, account: str,
                 admin_secrets: dict[str, str] | None = None):
        self.app, self.region, self.account = app, region, account
        self.admin_secrets = dict(admin_secrets or {"test": "test"})
        self.principals = {p.access_key: p for p in principals}
        self.denials: list[dict[str, str]] = []
        #: calls refused that no known key signed ({principal: "anonymous" or "unknown access key
        #: <key>", action, resource}); kept apart from ``denials``, which are the stack's principals'
        self.anonymous_denials: list[dict[str, str]] = []
        self.bucket_policy: Callable[[str], tuple[str | None, bool]] = moto_bucket_policy
        self._lock = threading.Lock()

    def set_principals(self, principals: Iterable[Principal]) -> None:
        with self._lock:
            self.principals = {p.access_key: p for p in principals}

    def _form_upload(self, environ: dict, start_response: Callable, content_type: str) -> Any:
        """An S3 POST Object (browser upload): its POST policy and signature checked as S3
        does (``post_policy.check``), then the signer's ``s3:PutObject`` on the key."""
        from infra.local.iam.post_policy import MalformedForm, check, parse_form, up_to_file
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            fields, data = parse_form(content_type, body)
        except MalformedForm as e:
            log.warning("InvalidArgument: browser upload refused: %s", e.message)
            from xml.sax.saxutils import escape
            payload = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code>'
                       f"<Message>{escape(e.message)}</Message><ArgumentName>{escape(e.argument)}</ArgumentName>"
                       f"</Error>").encode()
            start_response("400 Bad Request", [("Content-Type", "application/xml"),
                                               ("Content-Length", str(len(payload)))])
            return [payload]
        bucket = environ.get("PATH_INFO", "/").strip("/").split("/")[0]
        access_key = fields.get("x-amz-credential", "").split("/")[0]
        principal = self.principals.get(access_key)
        secret = principal.secret_key if principal else self.admin_secrets.get(access_key)
        refusal = check(bucket, fields, len(data or b""), secret)
        resource = f"arn:aws:s3:::{bucket}/{fields.get('key', '')}"
        if refusal is None and principal is not None and not principal.decide("s3:PutObject", resource):
            refusal = f"{principal.name} may not s3:PutObject on {resource}"
        if refusal is None:
            body = up_to_file(content_type, body)  # S3 ignores the fields after the file
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
            return self.app(environ, start_response)
        log.warning("AccessDenied: browser upload to %s refused: %s", bucket, refusal)
        with self._lock:
            self.denials.append({"principal": principal.name if principal else access_key, "action": "s3:PutObject",
                                 "resource": resource})
        payload = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>"
                   f"<Message>Invalid according to Policy: {refusal}</Message></Error>").encode()
        start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(payload)))])
        return [payload]

    def _anonymous(self, environ: dict, start_response: Callable, headers: dict[str, str], query: str) -> Any:
        """An unsigned request, evaluated as the anonymous principal (module docstring)."""
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        if method == "OPTIONS" or path.lstrip("/").startswith("moto-api"):
            # a CORS preflight carries no credentials (S3 and Cognito answer it by their CORS
            # rules); the emulator's admin API has its own gate (emulator.server.AdminGate)
            return self.app(environ, start_response)
        target = headers.get("x-amz-target", "")
        refusal = None
        if target:
            prefix, _, operation = target.partition(".")
            if not (prefix == "AWSCognitoIdentityProviderService" and operation in COGNITO_PUBLIC_OPERATIONS):
                refusal = missing_authentication("dynamodb" if prefix.startswith("DynamoDB_") else "json", target)
        elif method == "GET" and USER_POOL_DOCUMENT.match(path):
            pass  # a user pool's JWKS and OpenID configuration are public
        else:
            action = query_action(environ, query)
            if action:  # the query protocol (SNS, STS, SQS's older one...)
                if action not in STS_PUBLIC_ACTIONS:
                    refusal = missing_authentication("query", action)
            else:  # S3: what a bucket policy grants everyone ("*"), nothing else
                for s3_action, resource in s3_permissions(method, path, query, headers):
                    if not self.anonymous_allowed(s3_action, resource):
                        log.warning("AccessDenied: anonymous may not %s on %s", s3_action, resource)
                        body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                                b"<Message>Access Denied</Message><RequestId>local</RequestId></Error>")
                        refusal = ("403 Forbidden", [("Content-Type", "application/xml")], body, s3_action, resource)
                        break
        if refusal is None:
            return self.app(environ, start_response)
        status, response_headers, payload, action_name, resource = refusal
        with self._lock:
            self.anonymous_denials.append({"principal": "anonymous", "action": action_name, "resource": resource})
        start_response(status, [*response_headers, ("Content-Length", str(len(payload)))])
        return [payload]

    def _unrecognized(self, environ: dict, start_response: Callable, headers: dict[str, str], query: str,
                      match: re.Match | None, access_key: str | None) -> Any:
        """A request whose credentials name no known access key (``access_key`` None: none can
        be read), answered with the service's error (module docstring). What AWS serves
        without any credentials passes, as unsigned (``_anonymous``)."""
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        if method == "OPTIONS" or path.lstrip("/").startswith("moto-api"):
            return self.app(environ, start_response)  # as unsigned: preflights; the admin API's own gate
        target, resource = headers.get("x-amz-target", ""), "*"
        if target:
            prefix, _, operation = target.partition(".")
            if prefix == "AWSCognitoIdentityProviderService" and operation in COGNITO_PUBLIC_OPERATIONS:
                return self.app(environ, start_response)
            refusal = invalid_credentials("dynamodb" if prefix.startswith("DynamoDB_") else "json", target)
        else:
            action = query_action(environ, query)
            if action in STS_PUBLIC_ACTIONS:
                return self.app(environ, start_response)
            if action or (match is not None and match.group(3) != "s3"):
                refusal = invalid_credentials("query", action or "Unknown")
            else:
                malformed = None if access_key else "header" if headers.get("authorization") else "query"
                operation, resource = s3_permissions(method, path, query, headers)[0]
                refusal = invalid_credentials("s3", operation, malformed)
        status, response_headers, payload, operation, _ = refusal
        log.warning("%s: credentials naming access key %r refused (%s on %s)", status, access_key, operation, resource)
        with self._lock:
            self.anonymous_denials.append({"principal": f"unknown access key {access_key or '(none)'}",
                                           "action": operation, "resource": resource})
        start_response(status, [*response_headers, ("Content-Length", str(len(payload)))])
        return [payload]

    def anonymous_allowed(self, action: str, resource: str) -> bool:
        """Whether the bucket of ``resource`` (an S3 ARN) lets anyone ``action`` it: its policy
        allows Principal ``*`` (and denies nothing of it), and its public access block does not
        restrict public policies (``RestrictPublicBuckets``)."""
        bucket = resource.split(":::", 1)[1].split("/", 1)[0] if ":::" in resource else ""
        policy, restricted = self.bucket_policy(bucket)
        return bool(policy) and not restricted and allows_anyone(policy, action, resource)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        content_type = environ.get("CONTENT_TYPE", "")
        if environ.get("REQUEST_METHOD") == "POST" and content_type.startswith("multipart/form-data"):
            return self._form_upload(environ, start_response, content_type)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        query = environ.get("QUERY_STRING", "")
        match = _CREDENTIAL.search(headers.get("authorization", "")) or _CREDENTIAL.search(
            "Credential=" + unquote(parse_qs(query).get("X-Amz-Credential", [""])[0]))
        if match is None and not is_signed(headers, query):
            return self._anonymous(environ, start_response, headers, query)
        access_key = match.group(1) if match else sigv2_access_key(headers, query)
        principal = self.principals.get(access_key or "")
        if principal is None:
            if access_key in self.admin_secrets:  # the local administrator: unrestricted
                return self.app(environ, start_response)
            return self._unrecognized(environ, start_response, headers, query, match, access_key)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if len(body) < length:
            # the client went away mid-request (a worker stopped by SIGTERM between sending the
            # headers and the body): nothing to authorize, and no AccessDenied to record
            start_response("400 Bad Request", [("Content-Type", "text/plain"), ("Content-Length", "18")])
            return [b"incomplete request"]
        environ["wsgi.input"] = io.BytesIO(body)
        service = match.group(3) if match else "s3"  # SigV2: S3's presigned URLs
        for action, resource in request_permissions(environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/"), query,
                                                    headers, body, service, self.region, self.account):
            if not principal.decide(action, resource):
                log.warning("AccessDenied: %s may not %s on %s", principal.name, action, resource)
                with self._lock:
                    self.denials.append({"principal": principal.name, "action": action, "resource": resource})
                status, response_headers, payload = denial_response(service, headers, principal, action, resource)
                start_response(status, [*response_headers, ("Content-Length", str(len(payload)))])
                return [payload]
        return self.app(environ, start_response)
