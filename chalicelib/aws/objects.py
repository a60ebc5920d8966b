"""S3 adapter: presigned GETs for ffmpeg/ffprobe, uploads with the right Content-Type."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from typing import Iterable

from botocore.exceptions import ClientError

from chalicelib import faults
from chalicelib.domain.errors import ConfigurationError, PermanentError
from chalicelib.domain.jobs import content_type_for

from .clients import client

#: Playlists change meaning if cached stale; segments and images never change.
CACHE_CONTROL = {"application/vnd.apple.mpegurl": "max-age=60", "text/vtt": "max-age=300"}
IMMUTABLE = "public, max-age=31536000, immutable"


class Objects:
    """S3 operations used by ingest and the workers."""

    def __init__(self, region: str | None = None, endpoint_url: str | None = None):
        self._s3 = client("s3", region, endpoint_url)

    def presign_get(self, bucket: str, key: str, expires: int = 6 * 3600, version_id: str | None = None) -> str:
        """A presigned GET URL (valid ``expires`` seconds) that ffmpeg can read with range
        requests, so sources are never downloaded whole to local disk. With ``version_id``
        every read returns exactly that version's bytes, whatever is uploaded under the key
        later."""
        params = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        return self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

    def pin_source(self, bucket: str, key: str, etag: str, version_id: str | None = None) -> dict:
        """HeadObject of the source a job was made for: the version ``version_id`` when
        known, and only if its ETag is still ``etag`` (``If-Match``). Returns the HeadObject
        response (``VersionId`` present on a versioned bucket).

        Raises ``PermanentError`` ``SOURCE_NOT_FOUND`` (the object or version is gone),
        ``SOURCE_CHANGED`` (the key now holds other bytes), ``ConfigurationError`` when our
        own role may not read it (AccessDenied: retried and alarmed, never blamed on the
        media); other errors propagate (throttling, 5xx: transient)."""
        params = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        if etag:
            params["IfMatch"] = f'"{etag.strip(chr(34))}"'
        try:
            return self._s3.head_object(**params)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code"))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("404", "NoSuchKey", "NoSuchVersion", "NotFound") or status == 404:
                raise PermanentError("SOURCE_NOT_FOUND", f"the uploaded object {key} no longer exists") from e
            if code in ("412", "PreconditionFailed") or status == 412:
                raise PermanentError("SOURCE_CHANGED", f"{key} was overwritten with different bytes after the job "
                                                       f"was created; upload it again to make a new job") from e
            if code in ("403", "AccessDenied", "Forbidden") or status == 403:
                raise ConfigurationError(f"access denied reading s3://{bucket}/{key}: check the role's "
                                         f"s3:GetObject/s3:GetObjectVersion permission") from e
            if code in ("400", "InvalidArgument") and version_id:  # a version id on an unversioned bucket
                raise PermanentError("SOURCE_NOT_FOUND", f"version {version_id} of {key} does not exist") from e
            raise

    def head(self, bucket: str, key: str) -> dict:
        """HeadObject response (``ContentLength`` bytes, ``ETag``, ``Metadata``...)."""
        return self._s3.head_object(Bucket=bucket, Key=key)

    def presign_post(self, bucket: str, key: str, fields: dict[str, str], conditions: list, expires: int) -> dict:
        """A presigned POST (``{"url", "fields"}``) for ``key`` with ``fields`` and policy
        ``conditions`` (S3 API reference, "Creating a POST policy"), valid ``expires`` seconds."""
        return self._s3.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires)

    def upload_stream(self, bucket: str, key: str, parts: Iterable[bytes], metadata: dict[str, str],
                      content_type: str = "application/octet-stream") -> dict:
        """Multipart-upload the byte chunks of ``parts`` (each >= 5 MiB but the last) as one
        object; returns ``{"ETag", "VersionId"?, "size"}``. Whatever ``parts`` raises aborts the
        upload (no orphan parts) and propagates."""
        upload = self._s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata, ContentType=content_type)
        done, size = [], 0
        try:
            for number, data in enumerate(parts, start=1):
                res = self._s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=data)
                done.append({"PartNumber": number, "ETag": res["ETag"]})
                size += len(data)
            if not done:  # an empty body: one empty part
                res = self._s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"")
                done.append({"PartNumber": 1, "ETag": res["ETag"]})
            res = self._s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                                     MultipartUpload={"Parts": done})
        except BaseException:
            self._s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
            raise
        return {"ETag": res["ETag"], "size": size, **({"VersionId": res["VersionId"]} if res.get("VersionId") else {})}

    def delete_version(self, bucket: str, key: str, version_id: str | None) -> None:
        """Remove ``version_id`` of the object for good (no delete marker), or the object
        itself on an unversioned bucket."""
        self._s3.delete_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))

    def tag_version(self, bucket: str, key: str, version_id: str | None, tags: dict[str, str]) -> None:
        """Set the tags of one object version (replacing any)."""
        self._s3.put_object_tagging(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}),
                                    Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})

    def head_if_exists(self, bucket: str, key: str) -> dict | None:
        """HeadObject response, or None when there is no such object (other errors raise)."""
        try:
            return self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise

    def first_object(self, bucket: str, prefix: str) -> dict | None:
        """``{"key", "etag", "size"}`` of the first object (in key order) under ``prefix``, or
        None when there is none (ListObjectsV2, one key)."""
        found = self._s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("Contents") or []
        if not found:
            return None
        return {"key": found[0]["Key"], "etag": found[0]["ETag"].strip('"'), "size": found[0]["Size"]}

    def get_small(self, bucket: str, key: str, limit: int, version_id: str | None = None) -> bytes | None:
        """The object's bytes (of ``version_id`` when given) if it exists and holds at most
        ``limit`` bytes; None when it does not exist. Raises ValueError when it is larger (only
        the first ``limit + 1`` bytes are read)."""
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{limit}",
                                       **({"VersionId": version_id} if version_id else {}))["Body"].read()
        except ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (404, 416):
                return None if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404 else b""
            raise
        if len(body) > limit:
            raise ValueError(f"s3://{bucket}/{key} is larger than {limit} bytes")
        return body

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str | None = None) -> None:
        """Upload ``data`` with ``content_type`` (default: by the key's extension)."""
        ctype = content_type or content_type_for(key)
        self._s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=ctype,
                            CacheControl=CACHE_CONTROL.get(ctype, IMMUTABLE))

    def upload_file(self, path: str, bucket: str, key: str) -> int:
        """Upload a local file (multipart above 8 MiB) with Content-Type by extension.
        Returns its size in bytes."""
        faults.check("s3_upload", key)
        ctype = content_type_for(key)
        self._s3.upload_file(path, bucket, key, ExtraArgs={"ContentType": ctype,
                                                           "CacheControl": CACHE_CONTROL.get(ctype, IMMUTABLE)})
        return os.path.getsize(path)

    def upload_files(self, pairs: list[tuple[str, str]], bucket: str, workers: int = 8) -> int:
        """Upload (local path, key) pairs concurrently; returns total bytes."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return sum(pool.map(lambda p: self.upload_file(p[0], bucket, p[1]), pairs))

    def get_bytes(self, bucket: str, key: str) -> bytes:
        """The whole object's body."""
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
