"""The emulator's state on disk: which calls change state, the format check, what a snapshot keeps.

A restart of the whole local cloud is tested end to end in tests/e2e/test_durable_state.py."""
from __future__ import annotations

import io
import json
import pickle
import threading

import pytest

from infra.local.emulator import durable_state
from infra.local.emulator.durable_state import DurableState, StateFormatError
from infra.local.emulator.durable_writes import changes_state, operation

SIGNED = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0"


def call(method="POST", path="/", target=None, scope=None, query="", content_type="", body=b""):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "CONTENT_TYPE": content_type}
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    if scope:
        environ["HTTP_AUTHORIZATION"] = SIGNED.format(scope)
    service, action = operation(environ, body)
    return service, action, changes_state(environ, action)


@pytest.mark.parametrize("request_, expected", [
    (dict(target="DynamoDB_20120810.PutItem", scope="dynamodb"), ("dynamodb", "PutItem", True)),
    (dict(target="DynamoDB_20120810.TransactWriteItems"), ("dynamodb", "TransactWriteItems", True)),
    (dict(target="DynamoDB_20120810.Query", scope="dynamodb"), ("dynamodb", "Query", False)),
    (dict(target="DynamoDB_20120810.BatchGetItem"), ("dynamodb", "BatchGetItem", False)),
    (dict(target="AmazonSQS.SendMessage", scope="sqs"), ("sqs", "SendMessage", True)),
    (dict(target="AmazonSQS.DeleteMessage", scope="sqs"), ("sqs", "DeleteMessage", True)),
    # a delivery changes state, but under the receive loop's own lock (install_receive)
    (dict(target="AmazonSQS.ReceiveMessage", scope="sqs"), ("sqs", "ReceiveMessage", False)),
    (dict(target="AmazonSQS.GetQueueAttributes", scope="sqs"), ("sqs", "GetQueueAttributes", False)),
    (dict(target="Logs_20140328.PutLogEvents", scope="logs"), ("logs", "PutLogEvents", True)),
    (dict(target="AWSCognitoIdentityProviderService.InitiateAuth"), ("cognito-idp", "InitiateAuth", True)),
    # CloudWatch over smithy RPC v2 CBOR: the operation is in the path
    (dict(path="/service/GraniteServiceVersion20100801/operation/PutMetricData", scope="monitoring"),
     ("cloudwatch", "PutMetricData", True)),
    (dict(path="/service/GraniteServiceVersion20100801/operation/GetMetricData", scope="monitoring"),
     ("cloudwatch", "GetMetricData", False)),
    # query protocol: the action in the form body
    (dict(scope="sns", content_type="application/x-www-form-urlencoded", body=b"Action=Publish&TopicArn=x"),
     ("sns", "Publish", True)),
    (dict(scope="sns", content_type="application/x-www-form-urlencoded", body=b"Action=ListTopics"),
     ("sns", "ListTopics", False)),
    # S3 (REST): by method, signed, presigned or anonymous (a browser's POST upload)
    (dict(method="PUT", path="/bucket/key", scope="s3"), ("s3", None, True)),
    (dict(method="DELETE", path="/bucket/key", scope="s3"), ("s3", None, True)),
    (dict(method="GET", path="/bucket/key", scope="s3"), ("s3", None, False)),
    (dict(method="HEAD", path="/bucket/key"), ("s3", None, False)),
    (dict(method="PUT", path="/bucket/key", query="X-Amz-Credential=AKID%2F20261202%2Fus-east-1%2Fs3%2Faws4_request"),
     ("s3", None, True)),
    (dict(method="POST", path="/bucket", content_type="multipart/form-data; boundary=x"), ("s3", None, True)),
])
def test_each_call_is_told_apart_by_service_and_whether_it_changes_state(request_, expected):
    assert call(**request_) == expected


def test_a_new_directory_gets_the_format_and_another_format_is_refused_untouched(tmp_path):
    DurableState(tmp_path / "data").check_format()
    marker = tmp_path / "data" / "FORMAT"
    assert json.loads(marker.read_text()) == {"format": durable_state.FORMAT, "moto": durable_state.moto_version()}
    DurableState(tmp_path / "data").check_format()  # the same format opens

    marker.write_text(json.dumps({"format": durable_state.FORMAT + 1, "moto": "9.9.9"}))
    (tmp_path / "data" / "services").mkdir()
    (tmp_path / "data" / "services" / "s3.pickle").write_bytes(b"kept")
    with pytest.raises(StateFormatError) as refused:
        DurableState(tmp_path / "data").check_format()
    message = str(refused.value)
    assert f"format {durable_state.FORMAT + 1} and moto 9.9.9" in message and "vodpipe up --fresh" in message
    assert (tmp_path / "data" / "services" / "s3.pickle").read_bytes() == b"kept"
    assert json.loads(marker.read_text())["moto"] == "9.9.9"


def test_a_directory_of_something_else_is_not_taken(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(StateFormatError, match="not a vodpipe data directory"):
        DurableState(tmp_path / "photos").check_format()
    assert not (tmp_path / "photos" / "FORMAT").exists()


def test_fresh_discards_only_a_vodpipe_directory_and_only_what_it_wrote(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(StateFormatError, match="nothing was removed"):
        DurableState(tmp_path / "photos").discard()
    assert (tmp_path / "photos" / "cat.jpg").exists()

    data = tmp_path / "data"
    DurableState(data).check_format()
    (data / "services").mkdir()
    (data / "services" / "sqs.pickle").write_bytes(b"state")
    (data / "notes.txt").write_text("the user's own file")
    DurableState(data).discard()
    assert sorted(p.name for p in data.iterdir()) == ["LOCK", "notes.txt"]


def test_one_data_directory_serves_one_cloud_at_a_time(tmp_path):
    first = DurableState(tmp_path / "data")
    first.lock_directory()
    with pytest.raises(durable_state.StateInUseError, match="in use by another vodpipe up"):
        DurableState(tmp_path / "data").lock_directory()
    with pytest.raises(durable_state.StateInUseError):
        DurableState(tmp_path / "data").discard()
    first._unlock()
    DurableState(tmp_path / "data").lock_directory()


def test_objects_and_versions_come_back_from_their_files_stored_once(tmp_path):
    import boto3
    from moto import mock_aws
    from moto.core.base_backend import BackendDict

    with mock_aws():
        state = DurableState(tmp_path / "data").open()
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="ingest")
        s3.put_bucket_versioning(Bucket="ingest", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="ingest", Key="a.mp4", Body=b"first take")
        s3.put_object(Bucket="ingest", Key="a.mp4", Body=b"second take")
        s3.put_object(Bucket="ingest", Key="copy.mp4", Body=b"second take")  # same content: one file
        part = b"p" * (5 << 20)
        upload = s3.create_multipart_upload(Bucket="ingest", Key="big.mp4")["UploadId"]
        etags = [s3.upload_part(Bucket="ingest", Key="big.mp4", UploadId=upload, PartNumber=n, Body=part)["ETag"]
                 for n in (1, 2)]
        s3.complete_multipart_upload(Bucket="ingest", Key="big.mp4", UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags)]})
        state.wait(state.changed({"s3"}))
        state.close()
        bodies = sorted(p.stat().st_size for p in (tmp_path / "data" / "objects").glob("*/*"))
        # the parts went into the completed object: 10 MiB once, not again as parts
        assert bodies == sorted([len(b"first take"), len(b"second take"), 10 << 20])

        BackendDict.reset()  # as a new process would start
        with pytest.raises(s3.exceptions.NoSuchBucket):
            s3.list_objects_v2(Bucket="ingest")
        state = DurableState(tmp_path / "data").open()
        try:
            listed = s3.list_object_versions(Bucket="ingest", Prefix="a.mp4")["Versions"]
            assert [s3.get_object(Bucket="ingest", Key="a.mp4", VersionId=v["VersionId"])["Body"].read()
                    for v in listed] == [b"second take", b"first take"]
            assert s3.get_object(Bucket="ingest", Key="big.mp4")["Body"].read() == part * 2
            assert s3.get_object(Bucket="ingest", Key="copy.mp4")["Body"].read() == b"second take"
        finally:
            state.close()


def test_a_snapshot_keeps_every_version_of_a_key_and_makes_fresh_locks():
    from moto.s3.utils import _VersionedKeyStore

    store = _VersionedKeyStore()
    store["clip.mp4"] = "version 1"
    store["clip.mp4"] = "version 2"
    assert pickle.loads(pickle.dumps(store)).getlist("clip.mp4") == ["version 2"]  # moto's own pickling
    buffer = io.BytesIO()
    held = threading.Lock()
    held.acquire()
    durable_state._Pickler(buffer).dump({"keys": store, "lock": held, "rlock": threading.RLock()})
    loaded = pickle.loads(buffer.getvalue())
    assert loaded["keys"].getlist("clip.mp4") == ["version 1", "version 2"] and loaded["keys"]["clip.mp4"] == "version 2"
    assert loaded["lock"].acquire(blocking=False), "a lock held when the snapshot was taken is free after a load"
