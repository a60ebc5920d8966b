"""The emulator behind the local IAM refuses what AWS refuses, and nothing AWS serves:

* unsigned calls are the anonymous principal: DynamoDB answers ``MissingAuthenticationToken
  Exception``, S3 ``AccessDenied`` unless the bucket's policy lets everyone (the output bucket's
  public ``GetObject``), while CORS preflights, Cognito's sign-in and a pool's JWKS pass;
* credentials naming no known access key (an unknown key, ``?X-Amz-Signature=x`` alone) are
  refused with the service's error, while the administrator's and a principal's keys work;
* a browser form naming a field twice is refused, fields after its file are ignored
  (``post_policy.parse_form``);
* moto's admin API (``/moto-api/reset`` wiped every job when a webhook aimed at it) needs this
  run's admin token;
* the user pools sign with a key made for this run, not moto's published one.
"""
from __future__ import annotations

import gzip
import json
import logging
import time
import urllib.error
import urllib.request
from importlib import resources

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.local.network import free_port

PUBLIC, PRIVATE = "refusals-public", "refusals-private"


@pytest.fixture(scope="module")
def cloud():
    """An emulator with the IAM check on (as ``LocalCloud`` runs it), a bucket whose policy lets
    anyone GET its objects (``PublicOutputs``' policy) and a private one."""
    from infra.local.emulator.server import EmulatorServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = EmulatorServer("127.0.0.1", free_port(), enforce_iam=True)
    server.start()
    endpoint = f"http://127.0.0.1:{server.port}"
    admin = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    anonymous = dict(endpoint_url=endpoint, region_name="us-east-1", config=Config(signature_version=UNSIGNED))
    s3 = boto3.client("s3", **admin)
    for bucket in (PUBLIC, PRIVATE):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="job/master.m3u8", Body=b"#EXTM3U\n")
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
            {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"]}]})
    s3.put_bucket_policy(Bucket=PUBLIC, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "PublicReadOfHlsOutputs", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{PUBLIC}/*"}]}))
    from infra.local.iam.enforcement import Principal
    reader = Principal("function:reader", "arn:aws:iam::123456789012:role/Reader", "ASIAREADER0000000001", "reader-secret",
                       [json.dumps({"Version": "2012-10-17", "Statement": [
                           {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{PRIVATE}/*"}]})])
    server.iam.set_principals([reader])
    ddb = boto3.client("dynamodb", **admin)
    ddb.create_table(TableName="refusals", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    yield {"server": server, "endpoint": endpoint, "admin": admin, "anonymous": anonymous,
           "reader": dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=reader.access_key,
                          aws_secret_access_key=reader.secret_key)}
    server.stop()


def http(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers or {}),
                                    timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def error_of(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]


# --- unsigned calls ----------------------------------------------------------------------------
def test_unsigned_dynamodb_calls_are_refused_as_aws_refuses_them(cloud):
    ddb = boto3.client("dynamodb", **cloud["anonymous"])
    assert error_of(ddb.list_tables) == ("MissingAuthenticationTokenException", 400)
    assert error_of(lambda: ddb.put_item(TableName="refusals", Item={"pk": {"S": "x"}})) == \
        ("MissingAuthenticationTokenException", 400)
    admin = boto3.client("dynamodb", **cloud["admin"])
    assert "Item" not in admin.get_item(TableName="refusals", Key={"pk": {"S": "x"}})
    assert error_of(boto3.client("sqs", **cloud["anonymous"]).list_queues) == ("MissingAuthenticationToken", 403)


def test_unsigned_s3_reads_pass_only_where_the_bucket_policy_lets_everyone(cloud):
    anonymous = boto3.client("s3", **cloud["anonymous"])
    assert anonymous.get_object(Bucket=PUBLIC, Key="job/master.m3u8")["Body"].read() == b"#EXTM3U\n"
    assert error_of(lambda: anonymous.get_object(Bucket=PRIVATE, Key="job/master.m3u8")) == ("AccessDenied", 403)
    # the public policy grants GetObject, nothing else
    assert error_of(lambda: anonymous.put_object(Bucket=PUBLIC, Key="job/master.m3u8", Body=b"defaced")) == \
        ("AccessDenied", 403)
    assert error_of(lambda: anonymous.delete_object(Bucket=PUBLIC, Key="job/master.m3u8")) == ("AccessDenied", 403)
    assert error_of(lambda: anonymous.list_objects_v2(Bucket=PUBLIC)) == ("AccessDenied", 403)
    status, _ = http(f"{cloud['endpoint']}/{PUBLIC}/job/x.json", "POST", b'{"event": "webhook"}',
                     {"Content-Type": "application/json"})
    assert status == 403
    admin = boto3.client("s3", **cloud["admin"])
    assert admin.get_object(Bucket=PUBLIC, Key="job/master.m3u8")["Body"].read() == b"#EXTM3U\n"


def test_presigned_urls_and_cors_preflights_still_work(cloud):
    admin = boto3.client("s3", **cloud["admin"])
    url = admin.generate_presigned_url("get_object", Params={"Bucket": PRIVATE, "Key": "job/master.m3u8"})
    assert http(url) == (200, b"#EXTM3U\n")
    put = admin.generate_presigned_url("put_object", Params={"Bucket": PRIVATE, "Key": "job/up.bin"})
    assert http(put, "PUT", b"bytes")[0] == 200
    # the preflight of the console's form upload (to the bucket's URL) carries no credentials
    status, _ = http(f"{cloud['endpoint']}/{PUBLIC}", "OPTIONS",
                     headers={"Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "POST"})
    assert status == 200


def test_a_public_access_block_that_restricts_public_buckets_wins_over_the_policy(cloud):
    admin = boto3.client("s3", **cloud["admin"])
    admin.put_public_access_block(Bucket=PUBLIC, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": True})
    try:
        assert http(f"{cloud['endpoint']}/{PUBLIC}/job/master.m3u8")[0] == 403
    finally:
        admin.put_public_access_block(Bucket=PUBLIC, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False})
    assert http(f"{cloud['endpoint']}/{PUBLIC}/job/master.m3u8")[0] == 200


# --- signed calls: only known access keys ----------------------------------------------------
def test_an_unknown_access_key_is_refused_as_aws_refuses_it(cloud):
    unknown = {**cloud["admin"], "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "anything"}
    s3 = boto3.client("s3", **unknown)
    assert error_of(lambda: s3.get_object(Bucket=PRIVATE, Key="job/master.m3u8")) == ("InvalidAccessKeyId", 403)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": PRIVATE, "Key": "job/master.m3u8"})
    status, body = http(url)
    assert status == 403 and b"<Code>InvalidAccessKeyId</Code>" in body and b"#EXTM3U" not in body
    ddb = boto3.client("dynamodb", **unknown)
    assert error_of(ddb.list_tables) == ("UnrecognizedClientException", 400)
    assert error_of(lambda: ddb.put_item(TableName="refusals", Item={"pk": {"S": "unknown"}})) == \
        ("UnrecognizedClientException", 400)
    code, status = error_of(boto3.client("sqs", **unknown).list_queues)
    assert status in (400, 403) and code in ("UnrecognizedClientException", "InvalidClientTokenId")
    assert "Item" not in boto3.client("dynamodb", **cloud["admin"]).get_item(TableName="refusals",
                                                                             Key={"pk": {"S": "unknown"}})


@pytest.mark.parametrize("query", ["X-Amz-Signature=x", "X-Amz-Signature=x&X-Amz-Algorithm=AWS4-HMAC-SHA256",
                                   "X-Amz-Credential=garbage&X-Amz-Signature=x", "AWSAccessKeyId=nobody&Signature=x"])
def test_a_signature_without_a_known_credential_reads_nothing(cloud, query):
    """The URL import's hole: ``?X-Amz-Signature=x`` once counted as signed by nobody in
    particular, and moto served the object."""
    status, body = http(f"{cloud['endpoint']}/{PRIVATE}/job/master.m3u8?{query}")
    assert status in (400, 403) and b"#EXTM3U" not in body
    status, body = http(f"{cloud['endpoint']}/{PRIVATE}/job/master.m3u8", headers={"Authorization": "garbage"})
    assert status in (400, 403) and b"#EXTM3U" not in body


def test_the_administrator_and_a_principal_still_sign(cloud):
    admin = boto3.client("s3", **cloud["admin"])
    assert admin.get_object(Bucket=PRIVATE, Key="job/master.m3u8")["Body"].read() == b"#EXTM3U\n"
    assert boto3.client("dynamodb", **cloud["admin"]).list_tables()["TableNames"]
    boto3.client("sqs", **cloud["admin"]).list_queues()
    reader = boto3.client("s3", **cloud["reader"])
    assert reader.get_object(Bucket=PRIVATE, Key="job/master.m3u8")["Body"].read() == b"#EXTM3U\n"
    assert error_of(lambda: reader.get_object(Bucket=PUBLIC, Key="job/master.m3u8")) == ("AccessDenied", 403)
    url = reader.generate_presigned_url("get_object", Params={"Bucket": PRIVATE, "Key": "job/master.m3u8"})
    assert http(url) == (200, b"#EXTM3U\n")
    url = boto3.client("s3", **cloud["reader"], config=Config(signature_version="s3v4")).generate_presigned_url(
        "get_object", Params={"Bucket": PRIVATE, "Key": "job/master.m3u8"})
    assert http(url) == (200, b"#EXTM3U\n")


# --- the user pool: sign-in unsigned, tokens signed with this run's key -----------------------
@pytest.fixture(scope="module")
def pool(cloud):
    cognito = boto3.client("cognito-idp", **cloud["admin"])
    pool_id = cognito.create_user_pool(PoolName="refusals", UsernameAttributes=["email"])["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(UserPoolId=pool_id, ClientName="console",
                                                ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(UserPoolId=pool_id, Username="op@example.com", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username="op@example.com", Password="Password-12345",
                                    Permanent=True)
    return {"id": pool_id, "client": client_id}


def tokens_of(cloud, pool):
    from infra.local.apigateway.auth import UserPoolTokens
    status, body = http(f"{cloud['endpoint']}/{pool['id']}/.well-known/jwks.json")  # unsigned, as on AWS
    assert status == 200
    return UserPoolTokens(f"https://cognito-idp.us-east-1.amazonaws.com/{pool['id']}", [pool["client"]],
                          json.loads(body))


def test_a_fresh_sign_in_is_accepted(cloud, pool):
    """The console's sign-in: an unsigned InitiateAuth (a public Cognito operation)."""
    anonymous = boto3.client("cognito-idp", **cloud["anonymous"])
    answer = anonymous.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId=pool["client"],
                                     AuthParameters={"USERNAME": "op@example.com", "PASSWORD": "Password-12345"})
    claims = tokens_of(cloud, pool).verify(answer["AuthenticationResult"]["IdToken"])
    assert claims["email"] == "op@example.com"
    # the pool's management API is not public
    assert error_of(lambda: anonymous.list_users(UserPoolId=pool["id"]))[1] == 403


def test_a_token_signed_with_moto_s_published_key_is_refused(cloud, pool):
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    from infra.local.apigateway.auth import TokenRejected
    packaged = resources.files("moto.cognitoidp") / "resources" / "jwks-private.json.gz"
    published = RSAKey.import_key(json.loads(gzip.decompress(packaged.read_bytes())))
    claims = {"iss": f"https://cognito-idp.us-east-1.amazonaws.com/{pool['id']}", "aud": pool["client"],
              "token_use": "id", "sub": "forged", "email": "intruder@example.com", "exp": int(time.time()) + 600}
    forged = jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, published)
    with pytest.raises(TokenRejected, match="not a valid token"):
        tokens_of(cloud, pool).verify(forged)


# --- browser forms: each field once ---------------------------------------------------------
def form_post(cloud, fields: list[tuple[str, str]], file_last: bool = True) -> tuple[int, bytes]:
    boundary = "refusals-boundary"
    part = lambda name, value: f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'  # noqa: E731
    file_part = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nvideo\r\n'
    body = "".join(part(n, v) for n, v in fields)
    body = body + file_part if file_last else file_part + body
    return http(f"{cloud['endpoint']}/{PRIVATE}", "POST", (body + f"--{boundary}--\r\n").encode(),
                {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def signed_form(cloud, key: str = "uploads/a.mp4") -> list[tuple[str, str]]:
    post = boto3.client("s3", **cloud["admin"], config=Config(signature_version="s3v4")).generate_presigned_post(
        PRIVATE, key, Conditions=[["starts-with", "$key", "uploads/"]], ExpiresIn=600)
    return list(post["fields"].items())


def test_a_signed_form_is_stored(cloud):
    assert form_post(cloud, signed_form(cloud))[0] in (200, 204)
    assert boto3.client("s3", **cloud["admin"]).get_object(Bucket=PRIVATE, Key="uploads/a.mp4")["Body"].read() == \
        b"video"


@pytest.mark.parametrize("extra, argument", [
    ([("key", "outside/evil.mp4")], "key"),    # checked "uploads/...", moto would store the first or the last
    ([("KEY", "uploads/b.mp4")], "key"),       # names compare without case
    ([("policy", "e30=")], "policy"),
])
def test_a_form_naming_a_field_twice_is_refused(cloud, extra, argument):
    fields = signed_form(cloud)
    for at, field in enumerate(extra):
        fields.insert(at, field)  # before the signed one, and after it
    status, body = form_post(cloud, fields)
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body
    assert f"<ArgumentName>{argument}</ArgumentName>".encode() in body
    status, body = form_post(cloud, signed_form(cloud) + extra)
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body
    assert "Contents" not in boto3.client("s3", **cloud["admin"]).list_objects_v2(Bucket=PRIVATE, Prefix="outside/")


def test_a_form_with_two_files_is_refused(cloud):
    status, body = form_post(cloud, signed_form(cloud) + [("file", "second")])
    assert status == 400 and b"POST requires exactly one file upload per request." in body


def test_fields_after_the_file_are_ignored_as_s3_ignores_them(cloud):
    """S3: "Any fields below it are ignored." A form whose policy comes after the file has no
    policy; a field after the file is neither checked nor stored."""
    status, body = form_post(cloud, signed_form(cloud, "uploads/late.mp4"), file_last=False)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    admin = boto3.client("s3", **cloud["admin"])
    assert "Contents" not in admin.list_objects_v2(Bucket=PRIVATE, Prefix="uploads/late.mp4")
    boundary = "refusals-boundary"
    part = lambda name, value: f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'  # noqa: E731
    body = ("".join(part(n, v) for n, v in signed_form(cloud, "uploads/trailing.mp4"))
            + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nvideo\r\n'
            + part("x-amz-meta-late", "unchecked") + part("key", "outside/late.mp4") + f"--{boundary}--\r\n")
    status, _ = http(f"{cloud['endpoint']}/{PRIVATE}", "POST", body.encode(),
                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status in (200, 204)
    stored = admin.get_object(Bucket=PRIVATE, Key="uploads/trailing.mp4")
    assert stored["Body"].read() == b"video" and "late" not in stored["Metadata"]
    assert "Contents" not in admin.list_objects_v2(Bucket=PRIVATE, Prefix="outside/")


# --- moto's admin API -------------------------------------------------------------------------
def test_moto_s_admin_api_needs_this_run_s_token_and_state_survives_without(cloud):
    """GIVEN a webhook or an import aimed at the emulator's reset WHEN it is called without this
    run's admin token THEN 403 and every table, bucket and object is still there."""
    from infra.local.emulator.server import ADMIN_TOKEN_HEADER
    ddb = boto3.client("dynamodb", **cloud["admin"])
    for method, path in [("POST", "/moto-api/reset"), ("GET", "/moto-api/reset"), ("POST", "//moto-api/reset"),
                         ("GET", "/moto-api/data.json"), ("POST", "/moto-api/state-manager/set-transition"),
                         ("GET", "/moto-api/")]:
        status, _ = http(cloud["endpoint"] + path, method, b"{}" if method == "POST" else None,
                         {ADMIN_TOKEN_HEADER: "guessed"} if path.endswith("json") else {})
        assert status == 403, (method, path)
    assert "refusals" in ddb.list_tables()["TableNames"]
    assert boto3.client("s3", **cloud["admin"]).head_object(Bucket=PUBLIC, Key="job/master.m3u8")
    # the local cloud's own process holds the token (nothing of the project uses it)
    status, body = http(cloud["endpoint"] + "/moto-api/data.json", headers={ADMIN_TOKEN_HEADER: cloud["server"].admin_token})
    assert status == 200 and json.loads(body)
