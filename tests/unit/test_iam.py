"""The local IAM's two hand-written parts: which permissions a request needs, and the
decision (moto's policy evaluator does the matching).

GIVEN requests as boto3 and ffmpeg send them WHEN mapped THEN the actions and resources are
the ones AWS's Service Authorization Reference names; a policy allows exactly those."""
import json

import pytest

from infra.local.iam.actions import request_permissions
from infra.local.iam.enforcement import Principal, denial_response

REGION, ACCOUNT = "us-east-1", "123456789012"


def needs(method, path, query="", headers=None, body=b"", service="s3"):
    return request_permissions(method, path, query, {k.lower(): v for k, v in (headers or {}).items()}, body, service,
                               REGION, ACCOUNT)


@pytest.mark.parametrize("method,path,query,expected", [
    ("GET", "/ingest/a%20b.mp4", "versionId=v1&X-Amz-Credential=x", ("s3:GetObjectVersion", "arn:aws:s3:::ingest/a b.mp4")),
    ("HEAD", "/ingest/k.mp4", "", ("s3:GetObject", "arn:aws:s3:::ingest/k.mp4")),
    ("PUT", "/out/job/360p/seg_00000.ts", "", ("s3:PutObject", "arn:aws:s3:::out/job/360p/seg_00000.ts")),
    ("POST", "/out/big.ts", "uploads=", ("s3:PutObject", "arn:aws:s3:::out/big.ts")),
    ("PUT", "/out/big.ts", "partNumber=1&uploadId=u", ("s3:PutObject", "arn:aws:s3:::out/big.ts")),
    ("DELETE", "/out/big.ts", "uploadId=u", ("s3:AbortMultipartUpload", "arn:aws:s3:::out/big.ts")),
    ("GET", "/out", "list-type=2&prefix=job", ("s3:ListBucket", "arn:aws:s3:::out")),
    ("PUT", "/out", "cors=", ("s3:PutBucketCORS", "arn:aws:s3:::out")),
])
def test_s3_requests(method, path, query, expected):
    assert needs(method, path, query) == [expected]


def test_json_protocol_requests():
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/jobs"
    body = json.dumps({"TableName": "jobs", "IndexName": "by-status"}).encode()
    assert needs("POST", "/", headers={"X-Amz-Target": "DynamoDB_20120810.Query"}, body=body, service="dynamodb") == \
        [("dynamodb:Query", f"{table}/index/by-status")]
    body = json.dumps({"TransactItems": [{"Put": {"TableName": "jobs"}}, {"Update": {"TableName": "jobs"}}]}).encode()
    assert needs("POST", "/", headers={"X-Amz-Target": "DynamoDB_20120810.TransactWriteItems"}, body=body,
                 service="dynamodb") == [("dynamodb:PutItem", table), ("dynamodb:UpdateItem", table)]
    body = json.dumps({"QueueUrl": "http://127.0.0.1:4566/123456789012/tasks"}).encode()
    assert needs("POST", "/", headers={"X-Amz-Target": "AmazonSQS.DeleteMessageBatch"}, body=body, service="sqs") == \
        [("sqs:DeleteMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:tasks")]
    assert needs("POST", "/", body=b"Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3Aevents",
                 service="sns") == [("sns:Publish", "arn:aws:sns:us-east-1:1:events")]


def test_policies_decide_and_explicit_deny_wins():
    allow = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": "arn:aws:s3:::ingest/*"}]}
    role = Principal("task:transcoder", "arn:aws:iam::1:role/T", "AK", "SK", [json.dumps(allow)])
    assert role.decide("s3:GetObjectVersion", "arn:aws:s3:::ingest/a.mp4")
    assert not role.decide("s3:GetObject", "arn:aws:s3:::other/a.mp4")       # other bucket: implicit deny
    assert not role.decide("s3:PutObject", "arn:aws:s3:::ingest/a.mp4")      # other action
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    role.policies.append(json.dumps(deny))
    assert not role.decide("s3:GetObject", "arn:aws:s3:::ingest/a.mp4")


def test_denials_look_like_the_service_s_own():
    role = Principal("function:api", "arn:aws:iam::1:role/ApiFunctionRole", "AK", "SK")
    status, headers, body = denial_response("dynamodb", {"x-amz-target": "DynamoDB_20120810.Scan"}, role,
                                            "dynamodb:Scan", "arn:aws:dynamodb:us-east-1:1:table/jobs")
    assert status.startswith("400") and json.loads(body)["__type"] == "AccessDeniedException"
    assert b"assumed-role/ApiFunctionRole" in body
    status, _, body = denial_response("s3", {}, role, "s3:GetObject", "arn:aws:s3:::b/k")
    assert status.startswith("403") and b"<Code>AccessDenied</Code>" in body
    status, _, body = denial_response("sns", {}, role, "sns:Publish", "arn:aws:sns:us-east-1:1:t")
    assert b"<Code>AuthorizationError</Code>" in body


def test_a_request_whose_client_went_away_is_refused_without_a_denial():
    import io

    from infra.local.iam.enforcement import IamEnforcingApp
    role = Principal("task:transcoder", "arn:aws:iam::1:role/T", "AK", "SK")  # allowed nothing
    passed = []
    app = IamEnforcingApp(lambda environ, start: passed.append(environ) or [b"{}"], [role], REGION, ACCOUNT)
    body = json.dumps({"QueueUrl": "http://127.0.0.1:4566/123456789012/tasks"}).encode()

    def call(sent: bytes):
        statuses = []
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "", "CONTENT_TYPE": "application/x-amz-json-1.0",
                   "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(sent),
                   "HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage",
                   "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AK/20261123/us-east-1/sqs/aws4_request, ..."}
        app(environ, lambda status, headers: statuses.append(status))
        return statuses[0]

    # GIVEN a worker stopped between sending its headers and its body WHEN the body is short
    # THEN the request is refused as incomplete, nothing is authorized and no denial is recorded
    assert call(body[:0]).startswith("400") and app.denials == [] and not passed
    # AND the whole request is still checked: the role may not receive, so that is a denial
    assert call(body).startswith("400") and app.denials == [
        {"principal": "task:transcoder", "action": "sqs:ReceiveMessage",
         "resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:tasks"}]
