"""The HTTP API refuses what would touch another job's data (issue 22), through
chalice.test.Client on the emulator, as tests/handlers/test_app.py: an output folder that is,
contains or lies inside another job's -> 400 ``OUTPUT_PREFIX_IN_USE``; ``source_after``
delete/archive of an object the job did not upload -> 400 naming ``source_after``, nothing
queued, the object version untouched."""
import json
import uuid

import pytest

from tests.contract.conftest import client, ctx, emulator  # noqa: F401  (fixtures)
from tests.handlers.test_app import app_client, queues  # noqa: F401  (fixtures)

JSON = {"Content-Type": "application/json"}


def post(app_client, path, body):  # noqa: F811
    return app_client.http.post(path, headers=JSON, body=json.dumps(body))


def ingest_messages(queues, emulator):  # noqa: F811
    msgs = queues.receive_message(QueueUrl=emulator["stack"].refs["IngestQueue"], MaxNumberOfMessages=10,
                                  WaitTimeSeconds=0, VisibilityTimeout=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in msgs]


@pytest.fixture
def uploaded(client, emulator):  # noqa: F811
    """An object someone uploaded to the ingest bucket: (s3:// source, key, version id)."""
    bucket, key = emulator["stack"].refs["IngestBucket"], f"owned/{uuid.uuid4().hex[:8]}.mp4"
    version = client("s3").put_object(Bucket=bucket, Key=key, Body=b"not probed here")["VersionId"]
    return f"s3://{bucket}/{key}", key, version


def test_an_output_prefix_naming_another_jobs_folder_gets_400(app_client, ctx, uploaded, queues, emulator):  # noqa: F811
    # GIVEN a job that holds its default folder (its id) and one that holds shows/<x>, as ingest
    # claims them
    source, _, _ = uploaded
    other = uuid.uuid4().hex[:20]
    show = f"shows-{uuid.uuid4().hex[:6]}/pilot"
    assert ctx.records.claim_folder(other, other) is None
    assert ctx.records.claim_folder(show, uuid.uuid4().hex[:20]) is None
    # WHEN requests name those folders, one inside them or one containing them THEN 400
    for prefix in (other, f"{other}/360p", show, show.split("/")[0]):
        res = post(app_client, "/jobs", {"source": source, "output_prefix": prefix})
        assert res.status_code == 400, (prefix, res.body)
        assert res.json_body["Code"] == "OUTPUT_PREFIX_IN_USE"
        assert res.json_body["Message"].startswith("output_prefix: ")
    assert other in post(app_client, "/jobs", {"source": source, "output_prefix": other}).json_body["Message"]
    assert ingest_messages(queues, emulator) == [], "nothing queued"
    # a browser upload (POST /uploads) asking for it is refused the same way
    res = post(app_client, "/uploads", {"filename": "a.mp4", "output_prefix": f"{other}/x"})
    assert res.status_code == 400 and res.json_body["Code"] == "OUTPUT_PREFIX_IN_USE"
    # AND a free folder is accepted
    res = post(app_client, "/jobs", {"source": source, "output_prefix": f"{show}-2"})
    assert res.status_code == 202, res.body


@pytest.mark.parametrize("after", ["delete", "archive"])
def test_source_after_of_an_object_the_job_did_not_upload_gets_400(app_client, client, uploaded, queues,  # noqa: F811
                                                                   emulator, after):  # noqa: F811
    source, key, version = uploaded
    res = post(app_client, "/jobs", {"source": source, "source_after": after})
    assert res.status_code == 400, res.body
    assert res.json_body["Message"].startswith("source_after: ") and source in res.json_body["Message"]
    assert ingest_messages(queues, emulator) == []
    s3 = client("s3")
    head = s3.head_object(Bucket=emulator["stack"].refs["IngestBucket"], Key=key, VersionId=version)
    assert head["VersionId"] == version and not s3.get_object_tagging(
        Bucket=emulator["stack"].refs["IngestBucket"], Key=key, VersionId=version)["TagSet"]
    # keep is still fine, and an upload of one's own (POST /uploads) may ask for it
    assert post(app_client, "/jobs", {"source": source, "source_after": "keep"}).status_code == 202
    assert post(app_client, "/uploads", {"filename": "mine.mp4", "source_after": after}).status_code == 200


def test_an_output_prefix_in_the_job_id_form_is_reserved_for_default_folders(app_client, uploaded, queues,  # noqa: F811
                                                                             emulator):  # noqa: F811
    """Issue 22, B4. Before: job ids are predictable, so ``output_prefix: <the id a future
    upload will get>`` was accepted (202) and claimed that job's default folder first: the
    upload then failed OUTPUT_PREFIX_IN_USE. After: the job-id form is refused as a first part."""
    from chalicelib.domain import jobs
    source, _, _ = uploaded
    bucket = emulator["stack"].refs["IngestBucket"]
    future = jobs.job_id_for(bucket, f"not-uploaded-{uuid.uuid4().hex[:8]}.mp4", uuid.uuid4().hex)
    for prefix in (future, f"{future}/x"):
        res = post(app_client, "/jobs", {"source": source, "output_prefix": prefix})
        assert res.status_code == 400, (prefix, res.body)
        assert res.json_body["Code"] == "OUTPUT_PREFIX_IN_USE"
        assert res.json_body["Message"].startswith("output_prefix: ") and "reserved" in res.json_body["Message"]
        res = post(app_client, "/uploads", {"filename": "a.mp4", "output_prefix": prefix})
        assert res.status_code == 400 and res.json_body["Code"] == "OUTPUT_PREFIX_IN_USE", res.body
    assert ingest_messages(queues, emulator) == [], "nothing queued"
    # the form anywhere but first is an ordinary folder name
    assert post(app_client, "/jobs", {"source": source, "output_prefix": f"shows/{future}"}).status_code == 202
    assert post(app_client, "/uploads", {"filename": "a.mp4", "output_prefix": f"shows/{future}-up"}).status_code == 200


def test_a_caption_file_in_another_bucket_gets_400(app_client, uploaded, queues, emulator):  # noqa: F811
    source, _, _ = uploaded
    foreign = {"source": "s3://someone-elses-bucket/private/en.srt", "language": "en"}
    res = post(app_client, "/jobs", {"source": source, "captions": [foreign]})
    assert res.status_code == 400, res.body
    bucket = emulator["stack"].refs["IngestBucket"]
    assert res.json_body["Message"].startswith("captions.0.source: ") and f"s3://{bucket}/" in res.json_body["Message"]
    assert ingest_messages(queues, emulator) == []
    mine = {"source": f"s3://{bucket}/captions/en.srt", "language": "en"}
    assert post(app_client, "/jobs", {"source": source, "captions": [mine]}).status_code == 202
