"""Untrusted uploads end to end on the local cloud: hostile files reach nothing, a source
overwritten mid-job is never mixed in, an upload whose ingest keeps failing is not lost, and
the API refuses unsigned changes.

Its own stage ("untrusted") with a 5 s ingest visibility timeout, so the ingest redrive
policy (3 receives) ends in the ingest dead-letter queue within seconds.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import m3u8
import pytest

from chalicelib.domain.jobs import job_id_for
from infra.local.apigateway.auth import sign_request
from infra.local.cloud import LocalCloud
from tests.conftest import media
from tests.e2e.test_failures import alarm_state, drain, subscribe, wait_for
from tests.hostile import FifoTrap, Listener, crafted_files


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, faults_file):
    env = {"VODPIPE_LADDER": "240", "VODPIPE_POLL_WAIT_SECONDS": "1", "VODPIPE_FAULTS_FILE": str(faults_file)}
    params = {"Stage": "untrusted", "IngestVisibilityTimeout": 5, "AlarmPeriodSeconds": 10}
    with LocalCloud(port=0, api_port=0, workers=1, env=env, params=params, alarm_interval=2, schedule_seconds=3,
                    state_dir=tmp_path_factory.mktemp("state")) as c:
        yield c


def upload_bytes(cloud, key, data) -> str:
    s3 = cloud.client("s3")
    bucket = cloud.stack.refs["IngestBucket"]
    etag = s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"]
    return job_id_for(bucket, key, etag)


def job(cloud, job_id):
    status, body = cloud.api_call("GET", f"/jobs/{job_id}")
    return body if status == 200 else None


def terminal(cloud, job_id, timeout=120):
    return wait_for(lambda: (j := job(cloud, job_id)) and j["status"] in ("complete", "failed") and j, timeout,
                    f"job {job_id} terminal")


def test_hostile_uploads_fail_cleanly_and_reach_nothing(cloud, tmp_path):
    fifo = FifoTrap(tmp_path)
    try:
        with Listener() as listener:
            files = crafted_files(listener.url, fifo.path, tmp_path)
            ids = {name: upload_bytes(cloud, f"hostile/{name}", data) for name, data in files.items()}
            for name, job_id in ids.items():
                j = terminal(cloud, job_id)
                # The ingest probe's FFmpeg 8 (PyAV) does not even detect a playlist behind a video
                # extension, nor DASH (no XML demuxer in the wheel): those are not readable media
                assert j["status"] == "failed", (name, j)
                if name in ("playlist-as-video.mp4", "manifest.mpd"):
                    assert j["error"]["code"] in ("UNSUPPORTED_FORMAT", "UNREADABLE_MEDIA"), (name, j["error"])
                else:
                    assert j["error"]["code"] == "UNSUPPORTED_FORMAT", (name, j["error"])
                    assert "detected format" in j["error"]["message"]
                assert listener.url not in json.dumps(j) and str(fifo.path) not in json.dumps(j), "nothing echoed"
            assert listener.requests == [], "no request reached the listener"
            assert not fifo.opened.is_set(), "no local file was opened"
    finally:
        fifo.close()
    # good media still goes through the same confinement
    j = terminal(cloud, upload_bytes(cloud, "hostile/then-a-real-clip.mp4", media("flower.mp4").read_bytes()))
    assert j["status"] == "complete", j["error"]


def frames_in(master_url: str, tmp_path: Path) -> int:
    """Video packets in the first variant's segments, counted in the segment bytes."""
    master = m3u8.load(master_url)
    variant = m3u8.load(master.playlists[0].absolute_uri)
    whole = tmp_path / "variant.ts"
    whole.write_bytes(b"".join(urllib.request.urlopen(seg.absolute_uri).read() for seg in variant.segments))
    out = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_packets", "-of", "json", str(whole)], capture_output=True, text=True,
                         check=True)
    return int(json.loads(out.stdout)["streams"][0]["nb_read_packets"])


def test_a_source_overwritten_during_the_job_is_not_mixed_in(cloud, tmp_path):
    """The job reads the version it probed (150 frames of flower.mp4), not the 15-frame clip
    uploaded under the same key once the job exists."""
    job_id = upload_bytes(cloud, "pinned/clip.mp4", media("flower.mp4").read_bytes())
    wait_for(lambda: job(cloud, job_id), 30, "ingest")
    replacement = upload_bytes(cloud, "pinned/clip.mp4", media("bbb_176x144_192kbps_15fps_mpeg4.mp4").read_bytes())
    j = terminal(cloud, job_id)
    assert j["status"] == "complete", j["error"]
    assert j["source"].get("version_id"), "the job records the version it pinned"
    assert frames_in(j["outputs"]["master_playlist"]["url"], tmp_path) == 150
    terminal(cloud, replacement)  # the new upload is its own job


def test_an_upload_whose_ingest_keeps_failing_is_not_lost(cloud, faults_file):
    failed = subscribe(cloud, "untrusted-failed", ["JobFailed"])
    faults_file.write_text("ingest always lost/clip.mp4\n")
    try:
        job_id = upload_bytes(cloud, "lost/clip.mp4", media("flower.mp4").read_bytes())
        j = wait_for(lambda: (x := job(cloud, job_id)) and x["status"] == "failed" and x, 90, "ingest dead letter")
    finally:
        faults_file.unlink()
    assert j["error"]["code"] == "INGEST_FAILED" and j["error"]["cause"] == "INJECTED_FAULT", j["error"]
    assert "injected fault" in j["error"]["message"]
    events = [e for e in drain(cloud, failed) if e.get("job_id") == job_id]
    assert len(events) == 1 and events[0]["error"]["code"] == "INGEST_FAILED"
    dead = [d for d in cloud.api_call("GET", "/dlq")[1]["dead_letters"] if d["job_id"] == job_id]
    assert len(dead) == 1 and dead[0]["queue"] == "ingest"
    alarm = f"{cloud.stack.params['AppName']}-untrusted-ingest-dead-letters"
    wait_for(lambda: alarm_state(cloud, alarm) == "ALARM", 60, "the ingest dead-letters alarm")
    # the operator fixes the cause and redrives: the upload becomes its real job
    status, body = cloud.api_call("POST", f"/dlq/{dead[0]['message_id']}/retry", b"{}")
    assert status == 200 and body["queue"] == "ingest"
    j = wait_for(lambda: (x := job(cloud, job_id)) and x["status"] == "complete" and x, 120, "redriven upload")
    assert j["error"] is None


def test_the_api_refuses_unsigned_and_badly_signed_changes(cloud):
    assert cloud.api_call("POST", "/jobs/nope/retry", b"{}", signed=False)[0] == 403
    assert cloud.api_call("DELETE", "/jobs/nope", signed=False)[0] == 403
    assert cloud.api_call("GET", "/dlq", signed=False)[0] == 403
    import urllib.error
    import urllib.request
    url = cloud.api_url + "/jobs/nope"
    forged = sign_request("DELETE", url, None, "test", "not-the-secret", cloud.region)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE", headers=forged))
    assert err.value.code == 403 and err.value.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert cloud.api_call("DELETE", "/jobs/nope")[0] == 404  # signed: reaches the function
    assert cloud.api_call("GET", "/jobs/nope", signed=False)[0] == 404  # reads are open locally
    preflight = urllib.request.urlopen(urllib.request.Request(url, method="OPTIONS"))
    assert preflight.headers["Access-Control-Allow-Methods"].replace(" ", "") == "GET,OPTIONS"


def test_a_role_missing_one_statement_fails_where_aws_would(tmp_path):
    """GIVEN the template with the ingest role's SendMessage statement removed WHEN a clip is
    uploaded THEN the ingest function's fan-out is denied (AccessDenied, logged with principal,
    action and resource), retried, and the upload ends INGEST_FAILED naming AccessDenied."""
    import copy

    from infra.local.cloudformation.template import load_template
    template = copy.deepcopy(load_template())
    policy = template["Resources"]["IngestFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "FanOut"]
    params = {"Stage": "iamcheck", "IngestVisibilityTimeout": 3}
    with LocalCloud(port=0, api_port=0, workers=1, env={"VODPIPE_LADDER": "240"}, params=params, template=template,
                    state_dir=tmp_path / "state") as c:
        job_id = upload_bytes(c, "denied/flower.mp4", media("flower.mp4").read_bytes())
        j = wait_for(lambda: (x := job(c, job_id)) and x["status"] == "failed" and x, 90, "the denied ingest to end")
        assert j["error"]["code"] == "INGEST_FAILED" and j["error"]["cause"] == "AccessDenied", j["error"]
        assert "is not authorized to perform: sqs:GetQueueUrl" in j["error"]["message"]  # its first call there
        # flower.mp4 makes a first chunk and audio only: both for the first queue
        tasks_queue = f"arn:aws:sqs:{c.region}:{c.stack.account}:vodpipe-iamcheck-transcode-tasks-first"
        assert {"principal": "function:ingest", "action": "sqs:GetQueueUrl", "resource": tasks_queue} in c.denials
        assert all(d["principal"] == "function:ingest" for d in c.denials), "nothing else was denied"


def test_functions_run_from_the_package_without_what_lambda_lacks(cloud):
    """What the Lambda runtime lacks is missing locally too. A function's execution environment
    is the unzipped deployment package plus the runtime's boto3, with no host site-packages and
    a PATH without ffmpeg/ffprobe: a module the package does not ship (PyYAML, installed on this
    host) cannot be imported, code that shells out to ffmpeg fails as on Lambda, and the ingest
    probe (PyAV, in the package) works."""
    env = cloud.lambdas.function_env("ingest")
    package = cloud.lambdas.package
    assert shutil.which("ffprobe", path=env["PATH"]) is None and shutil.which("ffmpeg", path=env["PATH"]) is None
    assert not any(k.startswith("PYTHON") for k in env), "nothing of the host's Python setup"
    check = ("import sys\n"
             f"sys.path[:0] = [{str(package.task_dir)!r}, {str(package.runtime_dir)!r}]\n"
             "try:\n    import yaml\nexcept ModuleNotFoundError:\n    print('no yaml')\n"
             "import av, chalicelib\n"
             "print(av.__file__.startswith(sys.path[0]), chalicelib.__file__.startswith(sys.path[0]))\n"
             "from chalicelib.tools import ffmpeg, media_probe\n"
             "from chalicelib.domain.errors import ToolMissingError\n"
             "try:\n    ffmpeg.binaries()\nexcept ToolMissingError:\n    print('no ffmpeg')\n"
             f"print(media_probe.probe({str(media('flower.mp4'))!r})['format']['format_name'])\n")
    out = subprocess.run([str(package.bin_dir / "python3"), "-S", "-E", "-c", check], env=env,
                         cwd=str(package.task_dir), capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["no", "yaml", "True", "True", "no", "ffmpeg", "mov,mp4,m4a,3gp,3g2,mj2"], out.stderr
    # the handler the packaged template names is the one that ran the uploads of this module
    assert cloud.lambdas.functions["ingest"].handler == "app.on_ingest"
    assert cloud.lambdas.functions["ingest"].environment["VODPIPE_JOBS_TABLE"] == cloud.stack.refs["JobsTable"]
