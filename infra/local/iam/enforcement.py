"""IAM, enforced by the local cloud: every AWS call a function or a worker task makes is
checked against its own role's policies from the template, as AWS would check it.

moto's own enforcement cannot serve (docs/local-cloud.md: resources other than S3 are checked against
``*`` only, presigned GETs answer 500, ``sts:AssumeRole`` crashes on service principals), so:

* each principal (a role of the template whose ``Metadata.VodpipePrincipal`` names a function or
  the worker task) gets its own access key; its processes run with it;
* ``IamEnforcingApp`` wraps moto's WSGI application: it reads the caller's access key from the
  SigV4 ``Authorization`` header or a presigned URL's ``X-Amz-Credential``, works out the IAM
  action(s) and resource ARN(s) of the request (``request_permissions``, after AWS's Service
  Authorization Reference: mostly ``<service>:<Operation>``; S3 by method and sub-resource),
  evaluates the role's policies with moto's policy evaluator (explicit deny wins, then an
  allow, else implicit deny) and answers a denied call with the service's own error
  (``AccessDeniedException``, S3 ``AccessDenied``, SNS ``AuthorizationError``...), logging
  principal, action and resource;
* the local cloud's own administrative key (``test``: provisioning, log shipping, alarms, the
  user at the terminal) is not restricted, like the account's administrator.
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
from urllib.parse import parse_qs, unquote, urlsplit

from moto.iam.access_control import IAMPolicy, PermissionResult

log = logging.getLogger("vodpipe.local.iam")
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_S3_SUBRESOURCES = {
    "cors": "BucketCORS", "versioning": "BucketVersioning", "lifecycle": "LifecycleConfiguration",
    "notification": "BucketNotification", "policy": "BucketPolicy", "publicAccessBlock": "BucketPublicAccessBlock",
    "acl": "BucketAcl", "tagging": "BucketTagging", "location": "BucketLocation",
}


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


def request_permissions(method: str, path: str, query: str, headers: dict[str, str], body: bytes, service: str,
                        region: str, account: str) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs a request needs (all must be allowed). Unknown
    operations map to ``<service>:<Operation>`` on ``*``; an S3 request on a bucket to the
    S3 action of its sub-resource. ``headers`` are lower-cased."""
    if service == "s3":
        return _s3_permissions(method, path, query, headers)
    target = headers.get("x-amz-target", "")
    form = {} if target else {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace") if body else query).items()}
    # the operation, by wire protocol: JSON (X-Amz-Target), smithy RPC v2 (/service/<id>/operation/<Op>), query
    operation = (target.split(".", 1)[1] if target else path.rsplit("/", 1)[1] if "/operation/" in path
                 else form.get("Action", "Unknown"))
    if service == "monitoring":  # CloudWatch signs as "monitoring"; its IAM prefix is "cloudwatch"
        if operation == "DescribeAlarms":  # resource type alarm (Service Authorization Reference,
            # Amazon CloudWatch): a query by name prefix is checked as one on every alarm
            return [("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{region}:{account}:alarm:*")]
        return [(f"cloudwatch:{operation}", "*")]
    if target:  # JSON protocol: DynamoDB, SQS, CloudWatch Logs, ECS...
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = {}
        return _json_permissions(service, operation, payload, region, account)
    return [(f"{service}:{operation}", form.get("TopicArn") or form.get("TargetArn") or "*")]


def _json_permissions(service: str, operation: str, payload: dict, region: str,
                      account: str) -> list[tuple[str, str]]:
    if service == "dynamodb":
        table = lambda name, index=None: (f"arn:aws:dynamodb:{region}:{account}:table/{name}"  # noqa: E731
                                          + (f"/index/{index}" if index else ""))
        if operation == "TransactWriteItems":  # IAM checks each item's own action
            kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
            return [(f"dynamodb:{kinds[k]}", table(v["TableName"])) for item in payload.get("TransactItems", [])
                    for k, v in item.items()]
        if operation == "TransactGetItems":
            return [("dynamodb:GetItem", table(i["Get"]["TableName"])) for i in payload.get("TransactItems", [])]
        if "TableName" in payload:
            return [(f"dynamodb:{operation}", table(payload["TableName"], payload.get("IndexName")))]
        return [(f"dynamodb:{operation}", "*")]
    if service == "sqs":
        # batch actions are authorized as their single-message action (SQS developer guide,
        # "Amazon SQS API permissions: Actions and resource reference")
        operation = operation[:-len("Batch")] if operation.endswith("Batch") else operation
        name = payload.get("QueueName") or unquote(urlsplit(payload.get("QueueUrl", "")).path.rstrip("/").rsplit("/", 1)[-1])
        return [(f"sqs:{operation}", f"arn:aws:sqs:{region}:{account}:{name}" if name else "*")]
    if service == "logs" and payload.get("logGroupName"):
        group = f"arn:aws:logs:{region}:{account}:log-group:{payload['logGroupName']}"
        stream = payload.get("logStreamName")
        return [(f"logs:{operation}", f"{group}:log-stream:{stream}" if stream else f"{group}:*")]
    return [(f"{service}:{operation}", "*")]


def _s3_permissions(method: str, path: str, query: str, headers: dict[str, str]) -> list[tuple[str, str]]:
    parts = unquote(path).lstrip("/").split("/", 1)
    bucket, key = parts[0], (parts[1] if len(parts) > 1 else "")
    params = parse_qs(query, keep_blank_values=True)
    if not bucket:
        return [("s3:ListAllMyBuckets", "*")]
    if key:
        resource = f"arn:aws:s3:::{bucket}/{key}"
        versioned = "versionId" in params
        if "tagging" in params:  # object tags: their own actions (Service Authorization Reference)
            verb = {"GET": "Get", "DELETE": "Delete"}.get(method, "Put")
            return [(f"s3:{verb}Object{'Version' if versioned else ''}Tagging", resource)]
        if method in ("GET", "HEAD"):
            return [("s3:GetObjectVersion" if versioned else "s3:GetObject", resource)]
        if method in ("PUT", "POST"):  # PutObject, multipart create/part/complete
            return [("s3:PutObject", resource)]
        if method == "DELETE":
            if "uploadId" in params:
                return [("s3:AbortMultipartUpload", resource)]
            return [("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", resource)]
    resource = f"arn:aws:s3:::{bucket}"
    sub = next((name for name in _S3_SUBRESOURCES if name in params), None)
    if sub:
        verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, "Put")
        return [(f"s3:{verb}{_S3_SUBRESOURCES[sub]}", resource)]
    if method in ("GET", "HEAD"):
        return [("s3:ListBucketVersions" if "versions" in params else "s3:ListBucket", resource)]
    if method == "PUT":
        return [("s3:CreateBucket", resource)]
    if method == "DELETE":
        return [("s3:DeleteBucket", resource)]
    return [("s3:DeleteObject", f"{resource}/*")] if "delete" in params else [("s3:Unknown", resource)]


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


class IamEnforcingApp:
    """WSGI middleware in front of moto: denies what the caller's role does not allow.
    ``principals`` by access key; keys not listed (the local administrator) pass."""

    def __init__(self, app: Callable, principals: Iterable[Principal], region: str, account: str,
                 admin_secrets: dict[str, str] | None = None):
        self.app, self.region, self.account = app, region, account
        self.admin_secrets = dict(admin_secrets or {"test": "test"})
        self.principals = {p.access_key: p for p in principals}
        self.denials: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def set_principals(self, principals: Iterable[Principal]) -> None:
        with self._lock:
            self.principals = {p.access_key: p for p in principals}

    def _form_upload(self, environ: dict, start_response: Callable, content_type: str) -> Any:
        """An S3 POST Object (browser upload): its POST policy and signature checked as S3
        does (``post_policy.check``), then the signer's ``s3:PutObject`` on the key."""
        from infra.local.iam.post_policy import check, parse_form
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        fields, data = parse_form(content_type, body)
        bucket = environ.get("PATH_INFO", "/").strip("/").split("/")[0]
        access_key = fields.get("x-amz-credential", "").split("/")[0]
        principal = self.principals.get(access_key)
        secret = principal.secret_key if principal else self.admin_secrets.get(access_key)
        refusal = check(bucket, fields, len(data or b""), secret)
        resource = f"arn:aws:s3:::{bucket}/{fields.get('key', '')}"
        if refusal is None and principal is not None and not principal.decide("s3:PutObject", resource):
            refusal = f"{principal.name} may not s3:PutObject on {resource}"
        if refusal is None:
            return self.app(environ, start_response)
        log.warning("AccessDenied: browser upload to %s refused: %s", bucket, refusal)
        with self._lock:
            self.denials.append({"principal": principal.name if principal else access_key, "action": "s3:PutObject",
                                 "resource": resource})
        payload = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>"
                   f"<Message>Invalid according to Policy: {refusal}</Message></Error>").encode()
        start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(payload)))])
        return [payload]

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        content_type = environ.get("CONTENT_TYPE", "")
        if environ.get("REQUEST_METHOD") == "POST" and content_type.startswith("multipart/form-data"):
            return self._form_upload(environ, start_response, content_type)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        query = environ.get("QUERY_STRING", "")
        match = _CREDENTIAL.search(headers.get("authorization", "")) or _CREDENTIAL.search(
            "Credential=" + unquote(parse_qs(query).get("X-Amz-Credential", [""])[0]))
        principal = self.principals.get(match.group(1)) if match else None
        if principal is None:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if len(body) < length:
            # the client went away mid-request (a worker stopped by SIGTERM between sending the
            # headers and the body): nothing to authorize, and no AccessDenied to record
            start_response("400 Bad Request", [("Content-Type", "text/plain"), ("Content-Length", "18")])
            return [b"incomplete request"]
        environ["wsgi.input"] = io.BytesIO(body)
        service = match.group(3)
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
