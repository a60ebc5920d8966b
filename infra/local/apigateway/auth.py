"""API authorization in the local cloud: what API Gateway does for routes with Chalice's
``IAMAuthorizer`` (``AWS_IAM`` authorization) and ``CognitoUserPoolAuthorizer`` (Cognito user
pool authorizers), so the local API is not more permissive than AWS's.

API Gateway checks the request's Signature Version 4 (service ``execute-api``) against the
caller's credentials before the function runs; a missing or wrong signature is answered with
403 and never reaches the handler. Chalice's local server admits every such request
(``LocalGatewayAuthorizer`` only runs custom authorizers), so here the signature is recomputed
with botocore's own SigV4 implementation from the local credentials and compared. Clients sign
with ``sign_request`` (the ``vodpipe`` CLI, the tests), exactly as they would for AWS.

Chalice's local server would also admit any token on a Cognito-authorized route (it only
decodes the claims). Here the ID token in the ``Authorization`` header must verify against the
user pool's JSON Web Key Set (RS256), be issued by that pool (``iss``), to one of its app
clients (``aud``), as an ID token (``token_use``), and not be expired; anything else is answered
401 ``{"message": "Unauthorized"}`` before the function runs, and the verified claims reach it in
``requestContext.authorizer.claims`` as API Gateway passes them.

Rules: AWS General Reference, "Signature Version 4 signing process" (canonical request,
string to sign, 5-minute clock skew); API Gateway developer guide, "Control access to an API
with IAM permissions" (403 responses, ``x-amzn-ErrorType``) and "Control access to a REST API
using Amazon Cognito user pools as authorizer"; Cognito developer guide, "Verifying a JSON Web
Token".
"""
from __future__ import annotations

import hmac
import json
import re
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import urlsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from chalice.app import CognitoUserPoolAuthorizer, IAMAuthorizer
from chalice.local import ForbiddenError, LocalGatewayAuthorizer, NotAuthorizedError

SERVICE = "execute-api"
MAX_SKEW_SECONDS = 300
_AUTH = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                   r"SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})")


class SignatureRejected(Exception):
    """The request is not signed by a known principal. ``error_type`` is API Gateway's
    ``x-amzn-ErrorType``; ``message`` its response message."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type, self.message = error_type, message


def sign_request(method: str, url: str, body: bytes | None, access_key: str, secret_key: str, region: str,
                 session_token: str | None = None) -> dict[str, str]:
    """Headers that sign a request to ``url`` with SigV4 for ``execute-api`` (what a client
    of an IAM-authorized API Gateway route sends). Returns the headers to add."""
    request = AWSRequest(method=method, url=url, data=body or b"")
    SigV4Auth(Credentials(access_key, secret_key, session_token), SERVICE, region).add_auth(request)
    return {k: v for k, v in request.headers.items()}


def verify(method: str, url: str, headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str],
           region: str, now: datetime | None = None) -> str:
    """Check the SigV4 ``Authorization`` of a request (``url`` absolute, as received;
    ``headers`` as received, any case). ``secrets`` maps access key ids to secret keys.
    Returns the access key id of the caller.

    Raises ``SignatureRejected`` (missing token, unknown key, wrong scope, expired date, bad
    signature), in API Gateway's terms."""
    lower = {k.lower(): v for k, v in headers.items()}
    header = lower.get("authorization")
    if not header:
        raise SignatureRejected("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTH.fullmatch(header.strip())
    if not match:
        raise SignatureRejected("IncompleteSignatureException",
                                "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders'")
    access_key, day, scope_region, service, signed, signature = match.groups()
    if access_key not in secrets:
        raise SignatureRejected("UnrecognizedClientException", "The security token included in the request is invalid")
    if service != SERVICE or scope_region != region:
        raise SignatureRejected("InvalidSignatureException", f"Credential should be scoped to {region}/{SERVICE}")
    stamp = lower.get("x-amz-date", "")
    try:
        when = datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        raise SignatureRejected("IncompleteSignatureException", "Authorization requires an X-Amz-Date header")
    now = now or datetime.now(timezone.utc)
    if abs((now - when).total_seconds()) > MAX_SKEW_SECONDS or not stamp.startswith(day):
        raise SignatureRejected("InvalidSignatureException", "Signature expired or not yet valid")
    names = signed.split(";")
    if "host" not in names:
        raise SignatureRejected("InvalidSignatureException", "The host header must be signed")
    request = AWSRequest(method=method, url=url, data=body or b"",
                         headers={name: lower.get(name, "") for name in names})
    request.context["timestamp"] = stamp
    auth = SigV4Auth(Credentials(access_key, secrets[access_key], lower.get("x-amz-security-token")), SERVICE, region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if not hmac.compare_digest(expected, signature):
        raise SignatureRejected("InvalidSignatureException",
                                "The request signature we calculated does not match the signature you provided")
    return access_key


class TokenRejected(Exception):
    """An ID token a Cognito user pool authorizer refuses; the message says why (for logs)."""


class UserPoolTokens:
    """Verifies ID tokens of one user pool: ``issuer`` (``https://cognito-idp.<region>.
    amazonaws.com/<pool id>``), its app ``client_ids``, and ``jwks`` (the pool's JSON Web Key
    Set, as served at ``<issuer>/.well-known/jwks.json``)."""

    def __init__(self, issuer: str, client_ids: list[str], jwks: dict):
        from joserfc.jwk import KeySet
        self.issuer, self.client_ids = issuer, set(client_ids)
        self.keys = KeySet.import_key_set(jwks)

    def verify(self, token: str, now: float | None = None) -> dict:
        """The claims of ``token`` (a compact JWS). Raises ``TokenRejected`` for a bad
        signature or algorithm, another issuer or client, an access token, or an expired one."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        try:
            claims = jwt.decode(token, self.keys, algorithms=["RS256"]).claims
        except (JoseError, ValueError) as e:
            raise TokenRejected(f"not a valid token of this pool: {e}") from None
        if claims.get("iss") != self.issuer:
            raise TokenRejected(f"issuer {claims.get('iss')!r} is not {self.issuer}")
        if claims.get("token_use") != "id":
            raise TokenRejected("not an ID token (an authorizer without scopes accepts ID tokens only)")
        if claims.get("aud") not in self.client_ids:
            raise TokenRejected("issued to another app client")
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= (now or datetime.now(timezone.utc).timestamp()):
            raise TokenRejected("expired")
        return claims


class SigV4GatewayAuthorizer(LocalGatewayAuthorizer):
    """Chalice's local authorizer plus API Gateway's ``AWS_IAM`` check for routes whose
    authorizer is ``IAMAuthorizer`` and the user pool check (``user_pool``) for routes whose
    authorizer is ``CognitoUserPoolAuthorizer``; custom authorizers behave as in Chalice."""

    def __init__(self, app_object: Any, secrets: Mapping[str, str], region: str, origin: str,
                 user_pool: "UserPoolTokens | None" = None):
        super().__init__(app_object)
        self.secrets, self.region, self.origin = dict(secrets), region, origin.rstrip("/")
        self.user_pool = user_pool

    def authorize(self, raw_path: str, lambda_event: dict, lambda_context: Any):
        route = self._route_for_event(lambda_event)
        if route is not None and isinstance(route.authorizer, CognitoUserPoolAuthorizer):
            token = (lambda_event.get("headers") or {}).get("authorization") or ""
            try:
                if self.user_pool is None:
                    raise TokenRejected("no user pool in this stack")
                claims = self.user_pool.verify(token)
            except TokenRejected:
                raise NotAuthorizedError({"x-amzn-RequestId": lambda_context.aws_request_id,
                                          "x-amzn-ErrorType": "UnauthorizedException"},
                                         json.dumps({"message": "Unauthorized"}).encode())
            lambda_event["requestContext"]["authorizer"] = {"claims": {k: str(v) for k, v in claims.items()}}
            return lambda_event, lambda_context
        if route is not None and isinstance(route.authorizer, IAMAuthorizer):
            body = lambda_event.get("body") or b""
            body = body.encode() if isinstance(body, str) else body
            method = lambda_event["requestContext"]["httpMethod"]
            try:
                caller = verify(method, self.origin + raw_path, lambda_event.get("headers") or {}, body,
                                self.secrets, self.region)
            except SignatureRejected as e:
                raise ForbiddenError({"x-amzn-RequestId": lambda_context.aws_request_id,
                                      "x-amzn-ErrorType": e.error_type},
                                     json.dumps({"message": e.message}).encode())
            identity = lambda_event["requestContext"].setdefault("identity", {})
            identity["accessKey"] = caller
            return lambda_event, lambda_context
        return super().authorize(raw_path, lambda_event, lambda_context)


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
