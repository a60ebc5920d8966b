"""Fixtures and media checks of the end-to-end modules."""
import json
import subprocess
import urllib.request

import m3u8
import pytest


@pytest.fixture(scope="module")
def faults_file(tmp_path_factory):
    """The fault-injection file of a module's local cloud (``VODPIPE_FAULTS_FILE``)."""
    return tmp_path_factory.mktemp("faults") / "faults.txt"


def quick_cloud(tmp_path_factory, stage: str, ladder: str):
    """A local cloud of its own ``stage`` with a short ``ladder`` (``VODPIPE_LADDER``), 2
    workers, 1 s polls and no sidecar wait: for modules that drop a few clips and read the jobs."""
    from infra.local.cloud import LocalCloud
    env = {"VODPIPE_LADDER": ladder, "VODPIPE_POLL_WAIT_SECONDS": "1", "VODPIPE_SIDECAR_WAIT_SECONDS": "0"}
    return LocalCloud(port=0, api_port=0, workers=2, env=env, state_dir=tmp_path_factory.mktemp("state"),
                      params={"Stage": stage})


def upload_and_wait(cloud, folder: str, uploads: dict, timeout: float) -> dict[str, dict]:
    """Upload each ``{name: (path, S3 metadata)}`` as ``<folder>/<name>`` to the ingest bucket
    and wait until every job is complete or failed. Returns {name: job resource}."""
    from tests.conftest import wait_for
    s3, bucket = cloud.client("s3"), cloud.stack.refs["IngestBucket"]
    for name, (path, metadata) in uploads.items():
        s3.upload_file(str(path), bucket, f"{folder}/{name}", ExtraArgs={"Metadata": metadata})
    found: dict[str, dict] = {}

    def all_terminal():
        for item in cloud.api_call("GET", "/jobs?limit=100", signed=False)[1]["jobs"]:
            name = item["source"]["key"].removeprefix(f"{folder}/")
            if name in uploads:
                found[name] = cloud.api_call("GET", f"/jobs/{item['job_id']}", signed=False)[1]
        return len(found) == len(uploads) and all(j["status"] in ("complete", "failed") for j in found.values())
    wait_for(all_terminal, timeout, lambda: f"every job to end: {[(k, j['status']) for k, j in found.items()]}",
             interval=1)
    return found


def source_frames(path) -> int:
    """Video packets of the file at ``path`` (ffprobe): the frames a presentation must hold."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                          "stream=nb_read_packets", "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return int(out.strip())


def variant_packets(url: str, tmp_path) -> list[dict]:
    """The video packets (pts, flags) of every segment of the media playlist at ``url``, read by
    ffprobe from the segments joined in one file."""
    pl = m3u8.load(url)
    target = tmp_path / "variant.ts"
    with open(target, "wb") as fh:
        for seg in pl.segments:
            with urllib.request.urlopen(seg.absolute_uri) as r:
                fh.write(r.read())
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts,flags",
                          "-of", "json", str(target)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["packets"]
