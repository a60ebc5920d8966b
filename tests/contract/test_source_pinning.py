"""Pinned sources on the emulator: every read of an upload asks for exactly the bytes ingest
probed, and what happened to them otherwise has a name.

GIVEN an object in the (versioned) ingest bucket and its ETag/version
WHEN the key is overwritten, or the object deleted, or read from an unversioned bucket
THEN reads by version still return the original bytes; a changed key fails SOURCE_CHANGED;
a deleted object SOURCE_NOT_FOUND."""
import urllib.request

import pytest

from chalicelib.domain.errors import PermanentError


def put(client, bucket, key, body):
    return client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def test_versioned_ingest_bucket_keeps_the_probed_bytes(ctx, client):
    bucket = ctx.settings.ingest_bucket
    first = put(client, bucket, "pin/a.mp4", b"original bytes")
    assert first.get("VersionId"), "the template versions the ingest bucket"
    put(client, bucket, "pin/a.mp4", b"replacement")
    head = ctx.objects.pin_source(bucket, "pin/a.mp4", first["ETag"], first["VersionId"])
    assert head["VersionId"] == first["VersionId"]
    url = ctx.objects.presign_get(bucket, "pin/a.mp4", 60, first["VersionId"])
    assert urllib.request.urlopen(url).read() == b"original bytes"
    with pytest.raises(PermanentError) as err:  # pinned by ETag alone, the key now holds other bytes
        ctx.objects.pin_source(bucket, "pin/a.mp4", first["ETag"])
    assert err.value.code == "SOURCE_CHANGED"


def test_deleted_source_is_source_not_found(ctx, client):
    bucket = ctx.settings.ingest_bucket
    first = put(client, bucket, "pin/gone.mp4", b"x")
    client("s3").delete_object(Bucket=bucket, Key="pin/gone.mp4", VersionId=first["VersionId"])
    with pytest.raises(PermanentError) as err:
        ctx.objects.pin_source(bucket, "pin/gone.mp4", first["ETag"], first["VersionId"])
    assert err.value.code == "SOURCE_NOT_FOUND"
    with pytest.raises(PermanentError) as err:
        ctx.objects.pin_source(bucket, "pin/never.mp4", "abc")
    assert err.value.code == "SOURCE_NOT_FOUND"
