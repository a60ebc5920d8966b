"""S3 adapter: presigned GETs for ffmpeg/ffprobe, uploads with the right Content-Type."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from chalicelib import faults
from chalicelib.domain.jobs import content_type_for

from .clients import client

#: Playlists change meaning if cached stale; segments and images never change.
CACHE_CONTROL = {"application/vnd.apple.mpegurl": "max-age=60", "text/vtt": "max-age=300"}
IMMUTABLE = "public, max-age=31536000, immutable"


class Objects:
    """S3 operations used by ingest and the workers."""

    def __init__(self, region: str | None = None, endpoint_url: str | None = None):
        self._s3 = client("s3", region, endpoint_url)

    def presign_get(self, bucket: str, key: str, expires: int = 6 * 3600) -> str:
        """A presigned GET URL (valid ``expires`` seconds) that ffmpeg can read with range
        requests, so sources are never downloaded whole to local disk."""
        return self._s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)

    def head(self, bucket: str, key: str) -> dict:
        """HeadObject response (``ContentLength`` bytes, ``ETag``, ``Metadata``...)."""
        return self._s3.head_object(Bucket=bucket, Key=key)

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
