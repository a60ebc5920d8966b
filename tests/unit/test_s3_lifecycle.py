"""The template's S3 lifecycle rules, applied by the emulator (moto stores rules, never acts)."""
from __future__ import annotations

from datetime import datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from infra.local.cloudformation.provision import lifecycle_rule
from infra.local.cloudformation.template import load_template
from infra.local.emulator.s3_lifecycle import apply_rules

ACCOUNT = "123456789012"


@pytest.fixture
def ingest():
    """A versioned bucket with the ingest bucket's rules from infra/template.yaml."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="ingest")
        s3.put_bucket_versioning(Bucket="ingest", VersioningConfiguration={"Status": "Enabled"})
        rules = load_template()["Resources"]["IngestBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        s3.put_bucket_lifecycle_configuration(Bucket="ingest", LifecycleConfiguration={
            "Rules": [lifecycle_rule(r) for r in rules]})
        from moto.s3.models import s3_backends
        yield s3, s3_backends[ACCOUNT]["aws"]


def versions(s3, key):
    return [(v["VersionId"], v["IsLatest"]) for v in s3.list_object_versions(Bucket="ingest", Prefix=key)["Versions"]]


def test_a_replaced_upload_is_removed_seven_days_after_it_was_replaced(ingest):
    s3, backend = ingest
    first = s3.put_object(Bucket="ingest", Key="clip.mp4", Body=b"first")["VersionId"]
    second = s3.put_object(Bucket="ingest", Key="clip.mp4", Body=b"second")["VersionId"]
    replaced = backend.buckets["ingest"].keys.getlist("clip.mp4")[1].last_modified

    assert apply_rules(backend, replaced + timedelta(days=6, hours=23)) == []
    assert {v for v, _ in versions(s3, "clip.mp4")} == {first, second}

    done = apply_rules(backend, replaced + timedelta(days=7))
    assert done == [f"ingest: noncurrent clip.mp4 {first} removed (rule expire-replaced-uploads)"]
    assert versions(s3, "clip.mp4") == [(second, True)]
    assert s3.get_object(Bucket="ingest", Key="clip.mp4")["Body"].read() == b"second"
    assert apply_rules(backend, replaced + timedelta(days=30)) == [], "the current version never expires"


def test_a_processed_source_tagged_archive_moves_to_deep_archive_and_others_stay(ingest):
    s3, backend = ingest
    video = b"v" * (128 * 1024)
    s3.put_object(Bucket="ingest", Key="done.mp4", Body=video, Tagging="vodpipe-source=archive")
    s3.put_object(Bucket="ingest", Key="kept.mp4", Body=video, Tagging="vodpipe-source=keep")
    s3.put_object(Bucket="ingest", Key="tiny.mp4", Body=b"x", Tagging="vodpipe-source=archive")  # < 128 KB: stays
    done = apply_rules(backend, datetime.utcnow())
    assert done == ["ingest: done.mp4 to DEEP_ARCHIVE (rule archive-processed-sources)"]
    assert s3.head_object(Bucket="ingest", Key="done.mp4")["StorageClass"] == "DEEP_ARCHIVE"
    assert "StorageClass" not in s3.head_object(Bucket="ingest", Key="kept.mp4")  # STANDARD
    with pytest.raises(s3.exceptions.InvalidObjectState):
        s3.get_object(Bucket="ingest", Key="done.mp4")  # archived: a restore first, as on AWS
    assert apply_rules(backend, datetime.utcnow()) == [], "moved once"


def test_an_incomplete_multipart_upload_is_aborted_two_days_after_it_was_first_seen(ingest):
    s3, backend = ingest
    upload = s3.create_multipart_upload(Bucket="ingest", Key="big.mp4")["UploadId"]
    s3.upload_part(Bucket="ingest", Key="big.mp4", UploadId=upload, PartNumber=1, Body=b"part")
    now = datetime.utcnow()
    assert apply_rules(backend, now) == [""], "its clock starts: a change to keep"
    assert apply_rules(backend, now + timedelta(days=1)) == []
    assert apply_rules(backend, now + timedelta(days=2)) == [
        "ingest: incomplete upload of big.mp4 aborted (rule expire-replaced-uploads)"]
    assert s3.list_multipart_uploads(Bucket="ingest").get("Uploads", []) == []


def test_a_checked_caption_copy_expires_after_thirty_days_and_an_imported_source_does_not(ingest):
    s3, backend = ingest
    s3.put_object(Bucket="ingest", Key="imports/captions/job1/subtitles.vtt", Body=b"WEBVTT\n")
    s3.put_object(Bucket="ingest", Key="imports/job1/film.mp4", Body=b"source")  # a URL import: the job's source
    written = backend.buckets["ingest"].keys["imports/captions/job1/subtitles.vtt"].last_modified
    assert apply_rules(backend, written + timedelta(days=29)) == []
    assert apply_rules(backend, written + timedelta(days=30)) == [
        "ingest: imports/captions/job1/subtitles.vtt expired (rule expire-caption-copies)"]
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="ingest", Prefix="imports/").get("Contents", [])]
    assert listed == ["imports/job1/film.mp4"]
