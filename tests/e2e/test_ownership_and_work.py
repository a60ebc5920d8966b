"""Hostile callers and huge inputs end to end on the local cloud (issue 22): no job writes into
another job's folder or deletes another job's source, and what a small file can cost is
bounded (work estimate, picture size from the header, frames that change size).

Its own stage ("bounds") with ``MaxJobVcpuSeconds`` = 10: flower.mp4 on the one-rung ladder
estimates 0.8 vCPU-s and passes; two seconds of 8K at 60 fps estimate 19.9 and do not.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from chalicelib.domain.jobs import job_id_for
from infra.local.cloud import LocalCloud
from tests.conftest import media, wait_for
from tests.hostile import huge_still, size_change_clip

LIMIT = 10


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    env = {"VODPIPE_LADDER": "240", "VODPIPE_POLL_WAIT_SECONDS": "1"}
    params = {"Stage": "bounds", "MaxJobVcpuSeconds": LIMIT, "SidecarWaitSeconds": 0}
    with LocalCloud(port=0, api_port=0, workers=1, env=env, params=params,
                    state_dir=tmp_path_factory.mktemp("state")) as c:
        yield c


def upload(cloud, key, path: Path) -> str:
    bucket = cloud.stack.refs["IngestBucket"]
    etag = cloud.client("s3").put_object(Bucket=bucket, Key=key, Body=path.read_bytes())["ETag"]
    return job_id_for(bucket, key, etag)


def job(cloud, job_id):
    status, body = cloud.api_call("GET", f"/jobs/{job_id}", signed=False)
    return body if status == 200 else None


def terminal(cloud, job_id, timeout=180):
    return wait_for(lambda: (j := job(cloud, job_id)) and j["status"] in ("complete", "failed", "canceled") and j,
                    timeout, f"job {job_id} to end", interval=0.5)


def post_job(cloud, body):
    import json
    return cloud.api_call("POST", "/jobs", json.dumps(body).encode())


def outputs_of(cloud, prefix) -> dict[str, str]:
    """Key -> ETag of every object under ``prefix/`` in the output bucket."""
    s3, bucket = cloud.client("s3"), cloud.stack.refs["OutputBucket"]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def ingest_pids(cloud) -> list[int]:
    """The processes of the ingest function's live environments (the local cloud runs each
    execution environment as a process)."""
    pool = cloud.lambdas.pools.get("ingest")
    return [c._proc.pid for c in (pool.containers if pool else []) if c._proc and c._proc.poll() is None]


def reset_ingest_peaks(cloud) -> None:
    """Reset the peak resident size of every ingest environment to its current size (Linux:
    ``5`` into ``/proc/<pid>/clear_refs``), so a later peak is the next upload's alone."""
    for pid in ingest_pids(cloud):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def ingest_peak_mb(cloud) -> int:
    """The highest peak resident size (VmHWM, MB) of the ingest function's environments."""
    peaks = [0]
    for pid in ingest_pids(cloud):
        status = Path(f"/proc/{pid}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) // 1024)
    return max(peaks)


@pytest.fixture(scope="module")
def first(cloud):
    """A plain upload's job, complete: its default folder (its id) holds its outputs."""
    job_id = upload(cloud, "owned/flower.mp4", media("flower.mp4"))
    done = terminal(cloud, job_id)
    assert done["status"] == "complete", done["error"]
    assert done["work"]["vcpu_seconds"] < LIMIT and done["source"]["owner"] == "upload"
    return done


def test_an_output_prefix_naming_another_jobs_folder_is_refused_and_its_outputs_stay(cloud, first):
    """Before: ``POST /jobs {"output_prefix": "<an existing job id>"}`` was accepted (202) and
    its job wrote into that job's folder (segments cached immutable for a year)."""
    owner = first["job_id"]
    before = outputs_of(cloud, owner)
    assert any(k.endswith("/index.m3u8") for k in before)
    other = f"s3://{cloud.stack.refs['IngestBucket']}/owned/flower.mp4"
    for prefix in (owner, f"{owner}/240p"):
        status, body = post_job(cloud, {"source": other, "ladder": "240:200k", "output_prefix": prefix})
        assert status == 400 and body["Code"] == "OUTPUT_PREFIX_IN_USE", (prefix, status, body)
        assert owner in body["Message"] and body["Message"].startswith("output_prefix: ")
    # a request for a folder of its own is fine, and its folder is then its own
    status, accepted = post_job(cloud, {"source": other, "ladder": "240:200k", "output_prefix": "owned/copy"})
    assert status == 202, accepted
    done = terminal(cloud, accepted["job_id"])
    assert done["status"] == "complete", done["error"]
    assert outputs_of(cloud, "owned/copy") and outputs_of(cloud, owner) == before, "the first job's outputs untouched"
    status, body = post_job(cloud, {"source": other, "ladder": "240:300k", "output_prefix": "owned"})
    assert status == 400 and body["Code"] == "OUTPUT_PREFIX_IN_USE" and accepted["job_id"] in body["Message"]


def test_source_after_delete_of_another_jobs_source_is_refused(cloud, first):
    """Before: ``POST /jobs`` naming any object with ``source_after: "delete"`` deleted the
    exact version the upload's own job (and any retry of it) reads."""
    s3, bucket = cloud.client("s3"), cloud.stack.refs["IngestBucket"]
    key, version = first["source"]["key"], first["source"]["version_id"]
    for after in ("delete", "archive"):
        status, body = post_job(cloud, {"source": f"s3://{bucket}/{key}", "ladder": "240:250k", "source_after": after})
        assert status == 400 and body["Message"].startswith("source_after: "), (after, status, body)
    versions = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])]
    assert version in versions, "the version is still there"
    assert not s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version)["TagSet"]
    status, kept = post_job(cloud, {"source": f"s3://{bucket}/{key}", "ladder": "240:250k", "source_after": "keep"})
    assert status == 202
    assert terminal(cloud, kept["job_id"])["source"]["state"] in (None, "kept")


def test_a_tiny_8k60_clip_fails_too_much_work_with_no_task(cloud, tmp_path):
    """Two seconds of 8K black at 60 fps, 200 KB: before, accepted and encoded; now refused
    at ingest with the estimate, before any task exists."""
    one = tmp_path / "8k60-half.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=black:size=7680x4320:rate=60:duration=0.5",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", str(one)], check=True)
    clip = tmp_path / "8k60.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "3", "-i", str(one), "-c", "copy", str(clip)],
                   check=True)
    assert clip.stat().st_size < 500_000
    j = terminal(cloud, upload(cloud, "huge/8k60.mp4", clip))
    assert j["status"] == "failed" and j["error"]["code"] == "TOO_MUCH_WORK", j["error"]
    work = j["work"]
    assert work["vcpu_seconds"] == pytest.approx(19.9, abs=0.5) and work["decoded_pixels"] == 7680 * 4320 * 120
    assert work["usd"] > 0 and "limit is 10 vCPU-seconds" in j["error"]["message"]
    assert f"{work['vcpu_seconds']}" in j["error"]["message"]
    assert j["tasks"] == [] and j["renditions"] == [] and outputs_of(cloud, j["job_id"]) == {}


def test_a_huge_still_fails_too_many_pixels_without_decoding(cloud, tmp_path):
    """A 1 MB MJPEG of 16000x16000: before, the ingest probe decoded the 256 MB picture and
    only then refused it (the ingest function peaked at 337 MB); now the stream's parameters
    refuse it and the function stays near its resting size (103 MB measured)."""
    still = huge_still(tmp_path / "still.avi", 16000, 16000)
    reset_ingest_peaks(cloud)
    j = terminal(cloud, upload(cloud, "huge/still.avi", still))
    assert j["status"] == "failed" and j["error"]["code"] == "TOO_MANY_PIXELS", j["error"]
    assert "16000x16000" in j["error"]["message"] and "before decoding" in j["error"]["message"]
    peak = ingest_peak_mb(cloud)
    assert peak < 250, f"the ingest function peaked at {peak} MB (337 MB before: the picture alone is 256 MB)"


def test_a_mid_stream_size_change_fails_frame_size_changed_and_the_worker_lives(cloud, tmp_path):
    """320x240 for 2 s, then 640x480: before, the job completed (ffmpeg rescaled the new size
    silently); now the chunk fails with a readable code and the next upload still encodes."""
    restarts = cloud.transcoder.restarts
    clip = size_change_clip(tmp_path / "change.ts")
    j = terminal(cloud, upload(cloud, "huge/change.ts", clip))
    assert j["status"] == "failed" and j["error"]["code"] == "FRAME_SIZE_CHANGED", j["error"]
    assert "probed at 320x240, then a frame of 640x480" in j["error"]["message"]
    after = terminal(cloud, upload(cloud, "huge/after.mp4", media("bear-vp9-odd-dimensions.webm")))
    assert after["status"] == "complete", after["error"]
    assert cloud.transcoder.restarts == restarts, "no worker died"
