"""Nothing lost, nothing stuck: fault injection end to end on the local cloud.

Its own stage ("faults") with a 20 s visibility timeout and maxReceiveCount 3 (template
parameters), so recovery through SQS is measurable in seconds, and a faults file the workers
read (``chalicelib/faults.py``).
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
from pathlib import Path
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import m3u8
import pytest

from infra.local.cloud import LocalCloud
from tests.conftest import MEDIA, looped_clip, manifest, media, wait_for
from tests.e2e.conftest import source_frames, variant_packets

VISIBILITY = 20
#: Where the transcoder's runs keep their files (VODPIPE_WORKDIR of its image), one folder per
#: run, ``vodpipe-<job id>-<task>-*``, removed when the run has ended.
WORKDIR = Path("/tmp")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, faults_file):
    # two chunks of 30 s for the 60 s clips below, whatever this machine's cores (a prefix can
    # be playable, both resume)
    env = {"VODPIPE_LADDER": "360,240", "VODPIPE_POLL_WAIT_SECONDS": "1", "VODPIPE_FAULTS_FILE": str(faults_file),
           "VODPIPE_CHUNK_PARALLELISM": "2"}
    params = {"Stage": "faults", "TaskVisibilityTimeout": VISIBILITY, "TaskMaxReceiveCount": 3,
              "AlarmPeriodSeconds": 10, "ChunkMinSeconds": 30, "FirstChunkSeconds": 0}
    with LocalCloud(port=0, api_port=0, workers=2, env=env, params=params, alarm_interval=2, schedule_seconds=3,
                    state_dir=tmp_path_factory.mktemp("state")) as c:
        yield c


def call(cloud, path, method="GET", signed=True):
    """The API as an IAM principal (SigV4 with the local credentials) or anonymously."""
    return cloud.api_call(method, path, b"{}" if method == "POST" else None, signed=signed)


def job(cloud, job_id):
    return call(cloud, f"/jobs/{job_id}")[1]


def upload(cloud, path, key) -> str:
    """Upload like a user; return the job id once ingest created it."""
    s3 = cloud.client("s3")
    bucket = cloud.stack.refs["IngestBucket"]
    s3.upload_file(str(path), bucket, key)
    from chalicelib.domain.jobs import job_id_for
    job_id = job_id_for(bucket, key, s3.head_object(Bucket=bucket, Key=key)["ETag"])
    wait_for(lambda: call(cloud, f"/jobs/{job_id}")[0] == 200, 30, f"ingest of {key}")
    return job_id


def terminal(cloud, job_id, timeout=180):
    return wait_for(lambda: (j := job(cloud, job_id))["status"] in ("complete", "failed", "canceled") and j,
                    timeout, f"job {job_id} to end")


def all_jobs(cloud) -> list[dict]:
    """Every job of the cloud (the listing, page by page): what other tests made too."""
    jobs, token = [], None
    while True:
        query = "limit=100" + (f"&next_token={urllib.parse.quote(token, safe='')}" if token else "")
        page = call(cloud, f"/jobs?{query}", signed=False)[1]  # reads are open locally
        jobs += page["jobs"]
        token = page.get("next_token")
        if not token:
            return jobs


def rendition(j, name):
    return next(r for r in j["renditions"] if r["name"] == name)


def task(j, name):
    return next(t for t in j["tasks"] if t["name"] == name)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """A 60.7 s clip (flower.mp4, CC0, looped 12 times): eleven segments per rendition."""
    return looped_clip(tmp_path_factory.mktemp("long"), "flower.mp4", 11)


def worker_pid(r) -> int:
    return int(r["worker"].rsplit("-", 1)[1])


# --------------------------------------------------------------------------------------
def test_every_media_file_and_bad_upload_ends_terminal_and_no_worker_dies(cloud, tmp_path):
    restarts = cloud.transcoder.restarts
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "report.pdf.mp4").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n" * 50)
    (odd / "empty.mp4").write_bytes(b"")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac",
                    str(odd / "audio_only.m4a")], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=8200x8200:rate=1:duration=1",
                    "-c:v", "mjpeg", "-q:v", "31", str(odd / "huge.avi")], check=True)
    expected_failures = {"odd/report.pdf.mp4": "UNREADABLE_MEDIA", "odd/empty.mp4": "EMPTY_FILE",
                         "odd/audio_only.m4a": "NO_VIDEO_STREAM", "odd/huge.avi": "TOO_MANY_PIXELS",
                         "media/broken_truncated_nomoov_270_rotated.mp4": "UNREADABLE_MEDIA",
                         "media/broken_truncated_flower_50pct.mp4": "TRUNCATED_MEDIA",
                         "media/invalid-bitstream.webm": "UNDECODABLE_VIDEO"}
    uploads = {f"media/{n}": MEDIA / n for n in manifest()}
    uploads.update({f"odd/{p.name}": p for p in odd.iterdir()})
    uploads["nested/a/../../../escape attempt+%41.webm"] = media("bear-vp9-odd-dimensions.webm")
    with ThreadPoolExecutor(4) as pool:
        ids = dict(zip(uploads, pool.map(lambda kv: upload(cloud, kv[1], kv[0]), uploads.items())))
    for key, job_id in ids.items():
        j = terminal(cloud, job_id)
        if key in expected_failures:
            assert j["status"] == "failed" and j["error"]["code"] == expected_failures[key], (key, j["error"])
            assert len(j["error"]["message"]) > 15
        else:
            assert j["status"] == "complete", (key, j["error"])
            master = m3u8.load(j["outputs"]["master_playlist"]["url"])
            assert master.playlists and all(p.stream_info.resolution for p in master.playlists)
            for name, out in j["outputs"]["variants"].items():
                assert out["uri"].startswith(f"s3://{cloud.stack.refs['OutputBucket']}/{job_id}/")
    s3 = cloud.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=cloud.stack.refs["OutputBucket"]).get("Contents", [])]
    assert any(k.split("/", 1)[0] in ids.values() for k in keys)
    known = {j["job_id"] for j in all_jobs(cloud)}  # the bucket holds the module's other tests' jobs too
    assert all(k.split("/", 1)[0] in known for k in keys), "no output outside a job prefix"
    assert cloud.transcoder.restarts == restarts, "no worker process died"


def test_sigkill_mid_rendition_resumes_from_the_last_segment(cloud, long_clip, tmp_path):
    job_id = upload(cloud, long_clip, "kill/flower60.mp4")
    r = wait_for(lambda: (x := task(job(cloud, job_id), "chunk-000")).get("segments_done", 0) >= 2
                 and x.get("worker") and x, 60, "two checkpointed segments in every rendition")
    killed_at = time.monotonic()
    os.killpg(worker_pid(r), signal.SIGKILL)  # the whole task, as a container kill would
    j = terminal(cloud, job_id, timeout=180)
    recovered = time.monotonic() - killed_at
    assert j["status"] == "complete", j["error"]
    r = task(j, "chunk-000")
    assert r["attempts"] == 2 and r["resumed_at_segment"] >= 2, r
    assert all(x["attempts"] == 1 for x in j["tasks"] if x["name"] != "chunk-000"), "others not redone"
    url = j["outputs"]["variants"]["360p"]["url"]
    pl = m3u8.load(url)
    duration = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                     str(long_clip)], capture_output=True, text=True, check=True).stdout)
    assert len(pl.segments) == math.ceil(duration / 6) and all(s.duration <= 6.5 for s in pl.segments)
    assert abs(sum(s.duration for s in pl.segments) - duration) < 0.1
    packets = variant_packets(url, tmp_path)
    assert len(packets) == source_frames(long_clip), "every frame once: no gap, no duplicate"
    pts = sorted(p["pts"] for p in packets)
    assert len(set(pts)) == len(pts)
    keys = [round((p["pts"] - pts[0]) / 90000, 1) for p in packets if "K" in p["flags"]]
    assert keys == sorted(keys) and all(abs(k - round(k / 2) * 2) <= 0.1 for k in keys)
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", j["outputs"]["master_playlist"]["url"], "-map", "0",
                          "-f", "null", "-"], capture_output=True, text=True)
    assert dec.returncode == 0 and not dec.stderr.strip(), dec.stderr[-1000:]
    print(f"\nSIGKILL: recovered in {recovered:.1f} s (visibility {VISIBILITY} s); resumed at segment "
          f"{r['resumed_at_segment']} of {len(pl.segments)} ({r['resumed_at_seconds']:.1f} s of work kept)")


def test_sigterm_releases_the_task_at_once(cloud, long_clip):
    job_id = upload(cloud, long_clip, "term/flower60.mp4")
    r = wait_for(lambda: (x := task(job(cloud, job_id), "chunk-000")).get("segments_done", 0) >= 1
                 and x.get("worker") and x, 60, "a checkpointed segment")
    old = r["worker"]
    os.kill(worker_pid(r), signal.SIGTERM)
    t0 = time.monotonic()
    wait_for(lambda: (x := task(job(cloud, job_id), "chunk-000")).get("worker") not in (None, old)
             or x["status"] == "complete", VISIBILITY - 5, "another worker to take the task")
    picked_up = time.monotonic() - t0
    j = terminal(cloud, job_id)
    assert j["status"] == "complete"
    assert task(j, "chunk-000")["resumed_at_segment"] >= 1
    assert picked_up < 10, f"picked up after {picked_up:.1f} s, not within a few seconds"
    print(f"\nSIGTERM: task picked up again after {picked_up:.1f} s")


def test_transient_upload_faults_are_absorbed(cloud, faults_file):
    fired = Path(str(faults_file) + ".fired")
    fired.unlink(missing_ok=True)
    faults_file.write_text("s3_upload 2 /360p/seg_00000.ts\n")
    try:
        job_id = upload(cloud, media("flower.mp4"), "faults/upload.mp4")
        j = terminal(cloud, job_id)
    finally:
        faults_file.unlink()
    assert j["status"] == "complete", j["error"]
    # the fault really fired twice on that segment, and the worker absorbed it in-run
    assert fired.read_text().splitlines() == [f"s3_upload {job_id}/360p/seg_00000.ts"] * 2
    assert rendition(j, "360p")["segments_done"] == 1 and task(j, "chunk-000")["attempts"] == 1


def test_task_that_always_fails_goes_to_the_dlq_and_a_redrive_completes_it(cloud, faults_file):
    events = subscribe(cloud, "faults-test-failed", ["JobFailed"])
    alarm_mail = subscribe_alarms(cloud, "faults-test-alarms")
    alarm = "vodpipe-faults-dead-letters"
    earlier = {d["message_id"] for d in call(cloud, "/dlq")[1]["dead_letters"]}  # other tests' dead letters
    faults_file.write_text("task_start always /chunk-000\n")
    job_id = upload(cloud, media("sample_portrait.mp4"), "faults/always.mp4")
    j = terminal(cloud, job_id, timeout=120)
    assert j["status"] == "failed" and j["error"]["code"] == "RETRIES_EXHAUSTED"
    assert "injected fault" in j["error"]["message"] and j["error"]["task"] == "chunk-000"
    assert task(j, "chunk-000")["status"] == "failed" and rendition(j, "240p")["status"] == "failed"
    failed_events = drain(cloud, events)
    assert [e["job_id"] for e in failed_events if e["event_type"] == "JobFailed"].count(job_id) == 1
    status, dlq = call(cloud, "/dlq")
    new = [d for d in dlq["dead_letters"] if d["message_id"] not in earlier]
    assert [d["job_id"] for d in new] == [job_id], f"one new dead letter, this job's: {new}"
    (dead,) = new
    assert dead["task"] == "chunk-000" and "injected fault" in dead["last_error"]["message"]
    # the dead letter drives the dead-letters alarm to ALARM, with an SNS notification
    wait_for(lambda: alarm_state(cloud, alarm) == "ALARM", 30, "the dead-letters alarm")
    notes = wait_for(lambda: [n for n in alarm_notes(cloud, alarm_mail) if n["AlarmName"] == alarm], 15,
                     "an ALARM notification")
    assert notes[-1]["NewStateValue"] == "ALARM" and "Threshold Crossed" in notes[-1]["NewStateReason"]
    faults_file.unlink()
    assert call(cloud, f"/dlq/{dead['message_id']}/retry", "POST")[0] == 200
    j = terminal(cloud, job_id, timeout=120)
    assert j["status"] == "complete" and j["error"] is None
    # drained: back to OK, with an OK notification
    wait_for(lambda: alarm_state(cloud, alarm) == "OK", 45, "the alarm to return to OK")
    oks = wait_for(lambda: [n for n in alarm_notes(cloud, alarm_mail) if n["NewStateValue"] == "OK"
                            and n["AlarmName"] == alarm], 15, "an OK notification")
    assert oks[-1]["OldStateValue"] == "ALARM"
    history = [(h["AlarmName"], h["NewStateValue"]) for h in cloud.alarms.history]
    assert history.index((alarm, "INSUFFICIENT_DATA")) < history.index((alarm, "ALARM")) < \
        len(history) - 1 - history[::-1].index((alarm, "OK"))
    assert not [d for d in call(cloud, "/dlq")[1]["dead_letters"] if d["job_id"] == job_id]
    assert call(cloud, f"/dlq/{dead['message_id']}/retry", "POST")[0] == 404


def test_retry_reruns_only_the_failed_renditions(cloud, faults_file):
    faults_file.write_text("task_start always /audio\n")
    try:
        job_id = upload(cloud, media("sample_av1.mp4"), "faults/retry.mp4")
        j = terminal(cloud, job_id, timeout=120)
    finally:
        faults_file.unlink()
    assert j["status"] == "failed"
    before = {t["name"]: t["attempts"] for t in j["tasks"]}
    assert call(cloud, f"/jobs/{job_id}/retry", "POST")[1]["requeued"] == ["audio"]
    j = terminal(cloud, job_id)
    assert j["status"] == "complete" and "audio" in j["outputs"]["variants"] and "poster" in j["outputs"]
    assert all(t["attempts"] == before[t["name"]] for t in j["tasks"] if t["name"] != "audio")
    assert call(cloud, f"/jobs/{job_id}/retry", "POST")[0] == 409


def test_cancel_stops_ffmpeg_within_seconds_and_writes_nothing_more(cloud, long_clip):
    began = time.time()  # the job id is the same in every run: a killed earlier run's folders are older
    job_id = upload(cloud, long_clip, "cancel/flower60.mp4")
    wait_for(lambda: rendition(job(cloud, job_id), "360p").get("segments_done", 0) >= 1, 60, "encoding")
    status, body = call(cloud, f"/jobs/{job_id}", "DELETE")
    assert status == 200 and body["status"] == "canceled"
    t0 = time.monotonic()
    wait_for(lambda: all(t["status"] in ("complete", "failed") for t in job(cloud, job_id)["tasks"]
                         if t["kind"] == "chunk"), 15, "the running chunks to stop")
    stopped = time.monotonic() - t0
    s3 = cloud.client("s3")
    prefix = {"Bucket": cloud.stack.refs["OutputBucket"], "Prefix": f"{job_id}/"}
    before = sorted(o["Key"] for o in s3.list_objects_v2(**prefix).get("Contents", []))
    # the stopped runs end for good (ffmpeg gone, uploads done): their work folders are removed
    def running():
        found = []
        for folder in WORKDIR.glob(f"vodpipe-{job_id}-*"):
            try:
                if folder.stat().st_ctime >= began - 1:
                    found.append(folder)
            except FileNotFoundError:  # removed meanwhile: that run ended
                pass
        return found
    wait_for(lambda: not running(), 15, lambda: f"the canceled runs to end: {running()}")
    after = sorted(o["Key"] for o in s3.list_objects_v2(**prefix).get("Contents", []))
    assert before == after and f"{job_id}/master.m3u8" not in after
    assert job(cloud, job_id)["status"] == "canceled"
    assert call(cloud, f"/jobs/{job_id}", "DELETE")[0] == 409
    print(f"\ncancel: running renditions stopped {stopped:.1f} s after DELETE")


def test_duplicate_notifications_make_one_job(cloud):
    s3, sqs = cloud.client("s3"), cloud.client("sqs")
    events = subscribe(cloud, "faults-test-dups", ["JobQueued", "JobCompleted"])
    job_id = upload(cloud, media("bear-vp9-odd-dimensions.webm"), "dup/bear.webm")
    terminal(cloud, job_id)
    obj = s3.head_object(Bucket=cloud.stack.refs["IngestBucket"], Key="dup/bear.webm")
    event = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": cloud.stack.refs["IngestBucket"]},
                                 "object": {"key": "dup/bear.webm", "size": obj["ContentLength"], "eTag": obj["ETag"]}}}]}
    ingest = next(m for m in cloud.lambdas.event_sources if getattr(m, "function_name", "") == "ingest")
    handled = ingest.invocations
    for _ in range(2):  # S3 delivers at least once
        sqs.send_message(QueueUrl=cloud.stack.refs["IngestQueue"], MessageBody=json.dumps(event))
    # wait until the ingest function has handled both deliveries (not a fixed sleep)
    wait_for(lambda: ingest.invocations >= handled + 2 and queue_empty(cloud, "IngestQueue"), 30, "both deliveries")
    assert [j["source"]["key"] for j in all_jobs(cloud)].count("dup/bear.webm") == 1
    assert all(t["attempts"] == 1 for t in job(cloud, job_id)["tasks"])
    mine = [e["event_type"] for e in drain(cloud, events) if e.get("job_id") == job_id]
    assert mine.count("JobQueued") == 1 and mine.count("JobCompleted") == 1, mine


def queue_empty(cloud, logical):
    attrs = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.stack.refs[logical],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0


def subscribe(cloud, name, event_types):
    """An SQS queue subscribed to the job-events topic for ``event_types``; returns its URL."""
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=cloud.stack.refs["JobEventsTopic"], Protocol="sqs", Endpoint=arn,
                  Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps({"event_type": event_types})})
    return url


def subscribe_alarms(cloud, name):
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=cloud.stack.refs["AlarmTopic"], Protocol="sqs", Endpoint=arn,
                  Attributes={"RawMessageDelivery": "true"})
    return {"url": url, "seen": []}


def alarm_notes(cloud, box):
    box["seen"] += drain(cloud, box["url"])
    return box["seen"]


def alarm_state(cloud, name):
    return cloud.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]


def drain(cloud, url) -> list[dict]:
    sqs, out = cloud.client("sqs"), []
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
        out += [json.loads(m["Body"]) for m in msgs]
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def test_twenty_clips_at_once(cloud, tmp_path):
    completed_events = subscribe(cloud, "faults-test-completed", ["JobCompleted"])
    restarts = cloud.transcoder.restarts
    clips = ["bear-vp9-odd-dimensions.webm", "sample_av1.mp4", "sample_portrait.mp4", "sample.mkv",
             "bbb_176x144_192kbps_15fps_mpeg4.mp4"]
    uploads = {f"burst/{i:02d}-{clips[i % len(clips)]}": media(clips[i % len(clips)]) for i in range(20)}
    with ThreadPoolExecutor(10) as pool:
        ids = list(pool.map(lambda kv: upload(cloud, kv[1], kv[0]), uploads.items()))
    assert len(set(ids)) == 20
    s3 = cloud.client("s3")
    for job_id in ids:
        j = terminal(cloud, job_id, timeout=300)
        assert j["status"] == "complete", j["error"]
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=cloud.stack.refs["OutputBucket"],
                                                            Prefix=f"{job_id}/").get("Contents", []))
        expected = {f"{job_id}/master.m3u8", f"{job_id}/thumbnails/poster.jpg", f"{job_id}/thumbnails/sprite_000.jpg",
                    f"{job_id}/thumbnails/thumbnails.vtt"}
        for r in j["renditions"]:
            if r["kind"] in ("video", "audio"):
                expected.add(f"{job_id}/{r['name']}/index.m3u8")
                expected |= {f"{job_id}/{r['name']}/seg_{i:05d}.ts" for i in range(r["segments"])}
        assert set(keys) == expected and len(keys) == len(expected), "no missing or extra outputs"
    assert cloud.transcoder.restarts == restarts
    events = [e for e in drain(cloud, completed_events) if e["job_id"] in ids]  # other tests' jobs may end too
    assert sorted(e["job_id"] for e in events) == sorted(ids), "exactly one JobCompleted per job"
    assert all(e["outputs"]["master_playlist"]["uri"].endswith("/master.m3u8") for e in events)


def test_a_finished_prefix_is_playable_before_the_job_completes(cloud, long_clip, faults_file, tmp_path):
    # GIVEN a two-chunk job whose second chunk fails its first attempt (so the first finishes first)
    events = subscribe(cloud, "faults-test-playable", ["JobPlayable", "JobCompleted"])
    faults_file.write_text("task_start 1 /chunk-001\n")
    try:
        job_id = upload(cloud, long_clip, "playable/flower60.mp4")
        # WHEN chunk 0 and the audio are done THEN the job is playable: an EVENT presentation of 30 s
        early = wait_for(lambda: (j := job(cloud, job_id)).get("playable_at") and j, 120, "playable_at")
        assert early["status"] == "processing" and early["chunks"] == {"total": 2, "published": 1}
        media = m3u8.load(early["outputs"]["variants"]["360p"]["url"])
        assert media.playlist_type == "event" and not media.is_endlist and len(media.segments) == 5
        # the published segments hold exactly the source's frames of [0, 30 s), each once
        shown = variant_packets(early["outputs"]["variants"]["360p"]["url"], tmp_path)
        times = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
                                "-of", "csv=p=0", str(long_clip)], capture_output=True, text=True, check=True).stdout
        starts = sorted(float(t) for t in times.split())
        assert len(shown) == sum(t - starts[0] < 30 for t in starts)
        assert len({p["pts"] for p in shown}) == len(shown)
        j = terminal(cloud, job_id)
    finally:
        faults_file.unlink()
    # THEN at completion the same playlist lines, then the rest and ENDLIST (RFC 8216 §6.2.1)
    assert j["status"] == "complete"
    final = m3u8.load(j["outputs"]["variants"]["360p"]["url"])
    assert final.playlist_type == "event" and final.is_endlist and len(final.segments) == 11
    assert [s.uri for s in final.segments[:5]] == [s.uri for s in media.segments]
    assert [s.duration for s in final.segments[:5]] == [s.duration for s in media.segments]
    mine = [e for e in drain(cloud, events) if e.get("job_id") == job_id]
    assert [e["event_type"] for e in mine] == ["JobPlayable", "JobCompleted"]
    assert mine[0]["seconds_playable"] == 30.0 and mine[0]["complete"] is False


#: The write boundaries of the task path where a worker is killed (``chalicelib/faults.py``).
KILL_POINTS = ("task_started", "checkpoint_written", "task_completed", "presentation_published", "job_completed")


def test_a_worker_killed_at_every_write_boundary_leaves_no_job_stuck(cloud, faults_file, tmp_path):
    """One job per write boundary of the task path; its worker is SIGKILLed (with its ffmpeg)
    the first time it passes that boundary. The task's message comes back after its visibility
    timeout, a new worker takes it, and every job completes with a whole presentation; the job
    killed between its ``complete`` status and the announcement still gets ``JobCompleted``."""
    import hashlib
    from chalicelib.domain.jobs import job_id_for
    events = subscribe(cloud, "faults-test-completed", ["JobCompleted"])
    bucket, data = cloud.stack.refs["IngestBucket"], media("flower.mp4").read_bytes()
    etag = hashlib.md5(data).hexdigest()  # a single-part upload's ETag
    ids = {point: job_id_for(bucket, f"faults/kill-{point}.mp4", etag) for point in KILL_POINTS}
    fired = Path(str(faults_file) + ".fired")
    fired.unlink(missing_ok=True)
    faults_file.write_text("".join(f"kill {point} 1 {ids[point]}\n" for point in KILL_POINTS))
    try:
        for point in KILL_POINTS:
            cloud.client("s3").put_object(Bucket=bucket, Key=f"faults/kill-{point}.mp4", Body=data)
        for point in KILL_POINTS:
            wait_for(lambda: call(cloud, f"/jobs/{ids[point]}")[0] == 200, 60, f"ingest of the {point} job")
        ended = {point: terminal(cloud, ids[point], timeout=300) for point in KILL_POINTS}
    finally:
        faults_file.unlink()
    # every kill really happened, once
    assert sorted(line.split()[1] for line in fired.read_text().splitlines()) == sorted(KILL_POINTS), fired.read_text()
    for point, j in ended.items():
        assert j["status"] == "complete", (point, j["error"])
        if point in ("task_started", "checkpoint_written"):  # the task ran again (after it: found done)
            assert any(t["attempts"] >= 2 for t in j["tasks"]), (point, j["tasks"])
        variant = m3u8.load(j["outputs"]["master_playlist"]["url"]).playlists[0].absolute_uri
        playlist = m3u8.load(variant)
        assert playlist.is_endlist and sum(s.duration for s in playlist.segments) == pytest.approx(5.0, abs=0.1), point
    announced: set[str] = set()
    wait_for(lambda: announced.update(e["job_id"] for e in drain(cloud, events)) or set(ids.values()) <= announced,
             60, "JobCompleted of every job")
