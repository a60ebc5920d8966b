"""The anonymous principal, as AWS sees an unsigned request: what AWS serves without a
signature (CORS preflights, Cognito's public user pool operations and a pool's JWKS, STS's
``AssumeRoleWith*``), the S3 calls a bucket policy opens to Principal ``*``, and the error
each service answers otherwise (``MissingAuthenticationToken``...). Used by the local IAM
check (``enforcement.py``)."""
from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

#: Cognito user pool operations AWS serves without SigV4: public, or authorized by the user's
#: own token (Amazon Cognito API reference, "Authorization models for API operations").
COGNITO_PUBLIC_OPERATIONS = frozenset({
    "InitiateAuth", "RespondToAuthChallenge", "SignUp", "ConfirmSignUp", "ResendConfirmationCode", "ForgotPassword",
    "ConfirmForgotPassword", "GetUser", "ChangePassword", "UpdateUserAttributes", "DeleteUser",
    "DeleteUserAttributes", "GlobalSignOut", "RevokeToken", "GetUserAttributeVerificationCode",
    "VerifyUserAttribute", "AssociateSoftwareToken", "VerifySoftwareToken", "SetUserMFAPreference",
    "SetUserSettings", "ConfirmDevice", "ForgetDevice", "GetDevice", "ListDevices", "UpdateDeviceStatus",
    "UpdateAuthEventFeedback", "GetUserAuthFactors", "GetTokensFromRefreshToken", "StartWebAuthnRegistration",
    "CompleteWebAuthnRegistration", "ListWebAuthnCredentials", "DeleteWebAuthnCredential"})
#: STS operations that take no signature (the caller proves itself with the token it passes).
STS_PUBLIC_ACTIONS = frozenset({"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"})
USER_POOL_DOCUMENT = re.compile(r"^/[\w-]+_[0-9A-Za-z]+/\.well-known/(jwks\.json|openid-configuration)$")


def is_signed(headers: dict[str, str], query: str) -> bool:
    """True when a request carries any credentials: an ``Authorization`` header, or a
    presigned URL's (SigV4 ``X-Amz-Credential`` or ``X-Amz-Signature``, SigV2
    ``AWSAccessKeyId``). Signed is not authenticated: the IAM check refuses credentials that
    name no known access key (``invalid_credentials``)."""
    if headers.get("authorization"):
        return True
    params = parse_qs(query)
    return any(name in params for name in ("X-Amz-Credential", "X-Amz-Signature", "AWSAccessKeyId"))


def missing_authentication(protocol: str, operation: str) -> tuple[str, list[tuple[str, str]], bytes, str, str]:
    """What AWS answers an unsigned call of a service that needs a signature: DynamoDB ``400
    MissingAuthenticationTokenException`` ("Request is missing Authentication Token"); the
    other JSON and query APIs ``403 MissingAuthenticationToken`` (the common error of the AWS
    APIs). Returns (status, headers, body, operation, resource ``*``)."""
    if protocol == "dynamodb":
        body = json.dumps({"__type": "com.amazon.coral.service#MissingAuthenticationTokenException",
                           "message": "Request is missing Authentication Token"}).encode()
        return ("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"),
                                    ("x-amzn-ErrorType", "MissingAuthenticationTokenException")], body, operation, "*")
    message = "Request must contain either a valid (registered) AWS access key ID or X.509 certificate."
    if protocol == "json":
        body = json.dumps({"__type": "MissingAuthenticationToken", "message": message}).encode()
        return ("403 Forbidden", [("Content-Type", "application/x-amz-json-1.0"),
                                  ("x-amzn-ErrorType", "MissingAuthenticationToken"),
                                  ("x-amzn-query-error", "MissingAuthenticationToken;Sender")], body, operation, "*")
    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>MissingAuthenticationToken</Code><Message>{message}"
            f"</Message></Error><RequestId>local</RequestId></ErrorResponse>").encode()
    return "403 Forbidden", [("Content-Type", "text/xml")], body, operation, "*"


def sigv2_access_key(headers: dict[str, str], query: str) -> str | None:
    """The access key of a SigV2 request (``Authorization: AWS <key>:<signature>`` or a presigned
    URL's ``AWSAccessKeyId``), or None."""
    scheme, _, rest = headers.get("authorization", "").partition(" ")
    if scheme == "AWS" and ":" in rest:
        return rest.split(":", 1)[0].strip() or None
    return parse_qs(query).get("AWSAccessKeyId", [""])[0] or None


def invalid_credentials(protocol: str, operation: str,
                        malformed: str | None = None) -> tuple[str, list[tuple[str, str]], bytes, str, str]:
    """What AWS answers a request signed with an access key it does not know, or whose
    credentials cannot be read: S3 ``403 InvalidAccessKeyId``, or for credentials it cannot
    parse (``malformed``: ``"header"`` or ``"query"``) ``400 AuthorizationHeaderMalformed`` /
    ``400 AuthorizationQueryParametersError``; DynamoDB and the other JSON APIs ``400
    UnrecognizedClientException``; the query APIs ``403 InvalidClientTokenId``. Returns
    (status, headers, body, operation, resource ``*``), as ``missing_authentication``."""
    message = "The security token included in the request is invalid."
    if protocol == "s3":
        code, status, message = (
            ("AuthorizationHeaderMalformed", "400 Bad Request",
             "The authorization header is malformed; it names no access key.") if malformed == "header" else
            ("AuthorizationQueryParametersError", "400 Bad Request",
             "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
             "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
            if malformed else
            ("InvalidAccessKeyId", "403 Forbidden", "The AWS Access Key Id you provided does not exist in our records."))
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>local</RequestId></Error>").encode()
        return status, [("Content-Type", "application/xml")], body, operation, "*"
    if protocol in ("dynamodb", "json"):
        code = "UnrecognizedClientException"
        body = json.dumps({"__type": ("com.amazon.coral.service#" if protocol == "dynamodb" else "") + code,
                           "message": message}).encode()
        return ("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code)], body,
                operation, "*")
    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>{message}"
            f"</Message></Error><RequestId>local</RequestId></ErrorResponse>").encode()
    return "403 Forbidden", [("Content-Type", "text/xml")], body, operation, "*"


def _glob(pattern: str, value: str, case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _listed(statement: dict, key: str, value: str, case: bool) -> bool:
    """Whether ``statement``'s ``key`` (Action, Resource) matches ``value``; its ``Not<key>``
    matches what it does not list."""
    if key in statement:
        items = statement[key]
        return any(_glob(p, value, case) for p in ([items] if isinstance(items, str) else items))
    items = statement.get("Not" + key)
    if items is None:
        return False
    return not any(_glob(p, value, case) for p in ([items] if isinstance(items, str) else items))


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        aws = principal.get("AWS")
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


def allows_anyone(policy: str, action: str, resource: str) -> bool:
    """Whether a resource policy (JSON) allows the anonymous principal ``action`` on
    ``resource``: an ``Allow`` statement for Principal ``*`` (or ``{"AWS": "*"}``) without
    conditions matches, and no ``Deny`` for everyone matches. Conditions are not evaluated:
    an allow with conditions does not count and a deny with conditions does (never more
    permissive than AWS)."""
    try:
        statements = json.loads(policy).get("Statement", [])
    except (ValueError, AttributeError):
        return False
    statements = [statements] if isinstance(statements, dict) else statements
    allowed = False
    for statement in statements:
        if not _everyone(statement.get("Principal")):
            continue
        if not (_listed(statement, "Action", action, False) and _listed(statement, "Resource", resource, True)):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow" and not statement.get("Condition"):
            allowed = True
    return allowed


def moto_bucket_policy(bucket: str) -> tuple[str | None, bool]:
    """(policy JSON or None, whether its public access block restricts public policies) of a
    bucket of the embedded moto server."""
    from moto.s3.models import s3_backends
    owner = s3_backends.bucket_accounts.get(bucket)
    if owner is None:
        return None, False
    partition, account = owner
    found = s3_backends[account][partition].buckets.get(bucket)
    if found is None or not found.policy:
        return None, False
    block = found.public_access_block
    return found.policy.decode(), bool(block and block.restrict_public_buckets)
