"""Which IAM actions and resources an AWS request asks for, as AWS's Service Authorization
Reference names them: mostly ``<service>:<Operation>`` on the resource's ARN; S3 by method and
sub-resource. Used by the local IAM check (``enforcement.py``) and the anonymous rules
(``anonymous.py``)."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote, urlsplit

_S3_SUBRESOURCES = {
    "cors": "BucketCORS", "versioning": "BucketVersioning", "lifecycle": "LifecycleConfiguration",
    "notification": "BucketNotification", "policy": "BucketPolicy", "publicAccessBlock": "BucketPublicAccessBlock",
    "acl": "BucketAcl", "tagging": "BucketTagging", "location": "BucketLocation",
}


def request_permissions(method: str, path: str, query: str, headers: dict[str, str], body: bytes, service: str,
                        region: str, account: str) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs a request needs (all must be allowed). Unknown
    operations map to ``<service>:<Operation>`` on ``*``; an S3 request on a bucket to the
    S3 action of its sub-resource. ``headers`` are lower-cased."""
    if service == "s3":
        return s3_permissions(method, path, query, headers)
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
        return json_permissions(service, operation, payload, region, account)
    return [(f"{service}:{operation}", form.get("TopicArn") or form.get("TargetArn") or "*")]


def json_permissions(service: str, operation: str, payload: dict, region: str,
                      account: str) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs of a JSON-protocol call (``X-Amz-Target``:
    DynamoDB, SQS, CloudWatch Logs, ECS...) of ``operation`` with the decoded request body
    ``payload``. DynamoDB: ``dynamodb:<Operation>`` on the table's ARN (``/index/<name>`` for an
    index), each item of ``TransactWriteItems``/``TransactGetItems`` as its own action on its
    table; SQS: the batch operations as their single-message action, on the queue named by
    ``QueueName`` or ``QueueUrl``; CloudWatch Logs: on the log group (``:*``) or its stream;
    anything else ``<service>:<Operation>`` on ``*``."""
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


def s3_permissions(method: str, path: str, query: str, headers: dict[str, str]) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs of an S3 REST request (path-style ``/<bucket>/<key>``,
    percent-decoded), by method and sub-resource as the Service Authorization Reference names
    them: on an object (``arn:aws:s3:::<bucket>/<key>``) ``GetObject`` (``GetObjectVersion``
    with ``versionId``), ``PutObject`` (also multipart create/part/complete),
    ``AbortMultipartUpload``, ``DeleteObject``, the object tagging actions; on a bucket
    (``arn:aws:s3:::<bucket>``) its sub-resource's ``Get``/``Put``/``Delete`` action (``?cors``,
    ``?policy``...), ``ListBucket``/``ListBucketVersions``, ``CreateBucket``, ``DeleteBucket``,
    a multi-object delete as ``DeleteObject`` on ``<bucket>/*``; ``/`` is
    ``ListAllMyBuckets``. Used for signed calls and for the anonymous principal's."""
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
