"""The local cloud keeps what it was given: `vodpipe up` killed, stopped and started again.

One data directory, four runs of ``vodpipe up`` as a user starts it (its own process group,
fixed ports, ``--data-dir``), with a 20 s task visibility timeout so a killed task's message
comes back in seconds, as SQS would bring it back after the template's 120 s:

1. job A completes; job B is mid-encode (a task has checkpointed segments): SIGKILL of the whole
   process group, at no particular instant;
2. restart: A is complete with byte-identical outputs, both uploads are there, B resumes from
   its checkpoints and completes with a presentation that holds every source frame once;
   job C is mid-encode: Ctrl-C;
3. restart: C resumes and completes, A and B unchanged: Ctrl-C with no job running;
4. restart: everything unchanged, and a new upload still becomes a job and completes.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

from chalicelib.domain.jobs import job_id_for
from chalicelib.domain.settings_metadata import metadata_for
from infra.local.network import LOCAL_CREDENTIALS, free_port
from tests.conftest import looped_clip, media, wait_for
from tests.e2e.conftest import source_frames, variant_packets

VISIBILITY = 20
SETTINGS = metadata_for({"ladder": "360:800k,240:400k"})
BUCKETS = {"ingest": "vodpipe-dev-123456789012-ingest", "output": "vodpipe-dev-123456789012-output"}


class Up:
    """``vodpipe up`` in its own process group on fixed ports, with ``data_dir``."""

    def __init__(self, data_dir: Path, log_dir: Path):
        self.data_dir, self.log_dir = data_dir, log_dir
        self.port, self.api_port = free_port(), free_port()
        self.endpoint, self.api = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.api_port}"
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        exe = os.path.join(os.path.dirname(sys.executable), "vodpipe")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VODPIPE_", "AWS_", "LOCALSTACK_"))}
        log = open(self.log_dir / f"up-{self.runs}.log", "w")
        self.proc = subprocess.Popen(
            [exe, "up", "--port", str(self.port), "--api-port", str(self.api_port), "--workers", "2",
             "--data-dir", str(self.data_dir), "--param", f"TaskVisibilityTimeout={VISIBILITY}"],
            stdout=log, stderr=subprocess.STDOUT, env={**env, "COLUMNS": "200"}, start_new_session=True)
        log.close()
        wait_for(lambda: "Ctrl-C stops everything" in self.output() or self.proc.poll() is not None, 180,
                 "vodpipe up to start")
        assert self.proc.poll() is None, self.output()[-3000:]

    def output(self) -> str:
        return (self.log_dir / f"up-{self.runs}.log").read_text(errors="replace")

    def processes(self) -> set[int]:
        """``vodpipe up`` and every process it started (worker tasks, function runtimes)."""
        found, todo = set(), [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.add(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    todo += [int(p) for p in (task / "children").read_text().split()]
                except OSError:
                    pass
        return found

    def kill(self) -> None:
        """SIGKILL of the whole process group; returns when no process of the run is left."""
        everything = self.processes()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        wait_for(lambda: not [p for p in everything if _alive(p)], 30,
                 lambda: f"every process of the killed cloud to end: {[p for p in everything if _alive(p)]}")

    def interrupt(self) -> None:
        """Ctrl-C; returns when it exited 0."""
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(90) == 0, self.output()[-3000:]

    def s3(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
                            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def job(self, job_id: str) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.api}/jobs/{job_id}", timeout=10) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def upload(self, path: Path, key: str) -> str:
        s3 = self.s3()
        s3.upload_file(str(path), BUCKETS["ingest"], key, ExtraArgs={"Metadata": SETTINGS})
        job_id = job_id_for(BUCKETS["ingest"], key, s3.head_object(Bucket=BUCKETS["ingest"], Key=key)["ETag"])
        wait_for(lambda: self.job(job_id) is not None, 60, f"the job of {key}")
        return job_id

    def complete(self, job_id: str, timeout: float = 240) -> dict:
        found = wait_for(lambda: (j := self.job(job_id))["status"] in ("complete", "failed", "canceled") and j,
                         timeout, f"job {job_id} to end")
        assert found["status"] == "complete", found.get("error")
        return found

    def mid_encode(self, job_id: str) -> dict:
        """Wait until a task of the job has checkpointed two segments and the job is not done."""
        def checkpointed():
            j = self.job(job_id)
            busy = [t for t in j["tasks"] if t["status"] != "complete" and t.get("segments_done", 0) >= 2]
            return j["status"] == "processing" and busy and j
        return wait_for(checkpointed, 120, f"job {job_id} to be mid-encode", interval=0.2)

    def outputs(self, job_id: str) -> dict[str, str]:
        """{key: SHA-256 of the bytes} of every object under the job's output prefix."""
        s3, out = self.s3(), {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKETS["output"], Prefix=f"{job_id}/"):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=BUCKETS["output"], Key=item["Key"])["Body"].read()
                out[item["Key"]] = hashlib.sha256(body).hexdigest()
        return out

    def written(self, job_id: str) -> dict[str, tuple[str, str]]:
        """{key: (ETag, LastModified)} of the job's published media segments."""
        s3, out = self.s3(), {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKETS["output"], Prefix=f"{job_id}/"):
            for item in page.get("Contents", []):
                if item["Key"].endswith((".ts", ".m4s")):
                    out[item["Key"]] = (item["ETag"], item["LastModified"].isoformat())
        return out


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@pytest.fixture
def up(tmp_path):
    run = Up(tmp_path / "data", tmp_path)
    yield run
    if run.proc is not None and run.proc.poll() is None:
        os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait()


def resumed_truthfully(up: Up, job_id: str, before: dict, checkpointed: dict, long_clip: Path, tmp_path: Path) -> dict:
    """Job ``job_id`` completes after the restart: the tasks interrupted mid-encode resumed at
    a checkpointed segment, segments published before the interruption were kept (not encoded
    again), and the 360p presentation holds every source frame once, IDRs on the job's grid."""
    j = up.complete(job_id)
    interrupted = [t["name"] for t in checkpointed["tasks"] if t["status"] != "complete" and t.get("segments_done", 0) >= 2]
    for name in interrupted:
        task = next(t for t in j["tasks"] if t["name"] == name)
        assert task["attempts"] >= 2 and task["resumed_at_segment"] >= 1, task
    after = up.written(job_id)
    kept = [k for k, v in before.items() if after.get(k) == v]
    assert kept, f"every segment published before the interruption was written again: {sorted(before)}"
    url = j["outputs"]["variants"]["360p"]["url"]
    packets = variant_packets(url, tmp_path)
    assert len(packets) == source_frames(long_clip), "every frame once: no gap, no duplicate"
    pts = sorted(p["pts"] for p in packets)
    assert len(set(pts)) == len(pts)
    keys = [round((p["pts"] - pts[0]) / 90000, 1) for p in packets if "K" in p["flags"]]
    # IDRs at 0, then every 2 s from the 0.5 s first segment's end (FirstChunkSeconds 0.5)
    assert keys[0] == 0 and all(abs(k - 0.5 - round((k - 0.5) / 2) * 2) <= 0.1 for k in keys[1:]), keys
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", j["outputs"]["master_playlist"]["url"], "-map", "0",
                          "-f", "null", "-"], capture_output=True, text=True)
    assert dec.returncode == 0 and not dec.stderr.strip(), dec.stderr[-1000:]
    return j


def test_a_killed_or_stopped_local_cloud_keeps_every_job_and_resumes_the_interrupted_ones(up, tmp_path):
    long_clip = looped_clip(tmp_path, "flower.mp4", 11)  # 60.7 s: two chunks of 30 s
    short = media("flower.mp4")

    # 1. A complete, B mid-encode, SIGKILL of everything
    up.start()
    a = up.upload(short, "keep/a.mp4")
    up.complete(a, timeout=120)
    a_outputs = up.outputs(a)
    assert any(k.endswith("master.m3u8") for k in a_outputs) and len(a_outputs) > 5
    b = up.upload(long_clip, "keep/b.mp4")
    b_checkpointed = up.mid_encode(b)
    b_before = up.written(b)
    up.kill()

    # 2. restart: nothing lost; B resumes; then C mid-encode and Ctrl-C
    up.start()
    assert up.job(a)["status"] == "complete"
    assert up.outputs(a) == a_outputs, "the finished job's outputs are byte for byte the same"
    for key in ("keep/a.mp4", "keep/b.mp4"):
        assert up.s3().head_object(Bucket=BUCKETS["ingest"], Key=key)["ContentLength"] > 0
    restarted = time.monotonic()
    resumed_truthfully(up, b, b_before, b_checkpointed, long_clip, tmp_path)
    print(f"\nafter SIGKILL: B completed {time.monotonic() - restarted:.1f} s after the restart "
          f"(visibility timeout {VISIBILITY} s)")
    b_outputs = up.outputs(b)
    c = up.upload(long_clip, "keep/c.mp4")
    c_checkpointed = up.mid_encode(c)
    c_before = up.written(c)
    up.interrupt()

    # 3. restart after Ctrl-C: C resumes; A and B unchanged; Ctrl-C with nothing running
    up.start()
    resumed_truthfully(up, c, c_before, c_checkpointed, long_clip, tmp_path)
    c_outputs = up.outputs(c)
    assert up.outputs(a) == a_outputs and up.outputs(b) == b_outputs
    up.interrupt()

    # 4. restart with no job running: everything as it was, and the cloud still works
    up.start()
    assert [up.job(x)["status"] for x in (a, b, c)] == ["complete"] * 3
    assert (up.outputs(a), up.outputs(b), up.outputs(c)) == (a_outputs, b_outputs, c_outputs)
    d = up.upload(short, "keep/d.mp4")
    up.complete(d, timeout=120)
    sizes = subprocess.run([os.path.join(os.path.dirname(sys.executable), "vodpipe"), "status", "--data-dir",
                            str(up.data_dir)], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert f"data directory {up.data_dir}:" in sizes.stdout and "MiB" in sizes.stdout, sizes.stdout
    up.interrupt()
