"""End to end on the local cloud: real clips dropped into the ingest bucket, through the S3
notification, the event-source mapping, the ingest function, the worker processes, to a
playable HLS ladder read back over HTTP like a player would.

A short ladder (360p, 240p) keeps the suite quick: these tests are about the plumbing and the
output contract; the full default ladder is covered by the unit tests and the demo.
"""
from __future__ import annotations

import json
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import m3u8
import pytest

from chalicelib.domain import ffmpeg_args
from chalicelib.domain.media import parse_probe
from infra.local.cloud import LocalCloud
from tests.conftest import ffprobe_json, media, wait_for
from tests.rawserver import recording_receiver

GOOD = {
    "flower.mp4": "clips/flower.mp4",
    "sample_portrait.mp4": "clips/portrait clip.mp4",
    "internal_emulator_transformer_output_270_rotated.mp4": "clips/rotated+270.mp4",
    "bear-vp9-odd-dimensions.webm": "clips/bear odd.webm",
    "bbb_2500ms.ts": "clips/bbb_2500ms.ts",
    "bigbuckbunny.mp4": "clips/bbb 5.1.mp4",
}
BAD = {
    "broken_truncated_nomoov_270_rotated.mp4": ("clips/nomoov.mp4", "UNREADABLE_MEDIA"),
    "broken_truncated_flower_50pct.mp4": ("clips/truncated.mp4", "TRUNCATED_MEDIA"),
}
TIMEOUT = 300


WEBHOOK_SECRET = "e2e-webhook-secret"


@pytest.fixture(scope="module")
def receiver():
    """A webhook receiver on 127.0.0.1 that records (headers, raw body, time, path) of every POST."""
    with recording_receiver() as (base, got):
        yield f"{base}/hooks", got

@pytest.fixture(scope="module")
def cloud(tmp_path_factory, receiver):
    from infra.local.network import free_port
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    env = {"VODPIPE_LADDER": "360,240", "VODPIPE_POLL_WAIT_SECONDS": "1",
           "VODPIPE_WEBHOOK_URLS": f"{receiver[0]},{dead}", "VODPIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    # Stage "e2e": its own buckets, queues and table. moto servers in one process share state
    # (docs/measured-facts.md), so this keeps other tests' jobs out of these counts.
    with LocalCloud(port=0, api_port=0, workers=2, env=env, state_dir=tmp_path_factory.mktemp("state"),
                    params={"Stage": "e2e"}) as c:
        yield c


def api(cloud, path):
    with urllib.request.urlopen(cloud.api_url + path, timeout=10) as r:
        return json.load(r)


def http_get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read(), {k.lower(): v for k, v in r.headers.items()}


@pytest.fixture(scope="module")
def jobs(cloud):
    """Upload every clip at once; wait until each job is terminal. Returns key -> job."""
    s3 = cloud.client("s3")
    bucket = cloud.stack.refs["IngestBucket"]
    uploads = {**GOOD, **{n: k for n, (k, _) in BAD.items()}}
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda item: s3.upload_file(str(media(item[0])), bucket, item[1]), uploads.items()))
    keys = set(uploads.values())
    found: dict[str, dict] = {}

    def all_terminal():  # this module's uploads only: other tests' jobs may share the listing
        listing = api(cloud, "/jobs?limit=100")["jobs"]
        found.clear()
        found.update({j["source"]["key"]: api(cloud, f"/jobs/{j['job_id']}") for j in listing
                      if j["source"]["key"] in keys})
        return (len(found) == len(keys) and all(j["status"] in ("complete", "failed") for j in found.values())
                and dict(found))
    return wait_for(all_terminal, TIMEOUT, interval=1,
                    what=lambda: f"every upload's job to end: {[(k, j['status']) for k, j in found.items()]}")


def keyframe_times(url_or_path: str) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey",
                          "-show_entries", "frame=pts_time", "-of", "json", url_or_path],
                         capture_output=True, text=True, check=True).stdout
    return [float(f["pts_time"]) for f in json.loads(out)["frames"]]


def packet_times(path, stream):
    """(sorted PTS, last packet's duration) of ``stream`` in one segment file, from ffprobe."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
                          "packet=pts_time,duration_time", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    packets = sorted(json.loads(out)["packets"], key=lambda p: float(p["pts_time"]))
    last = packets[-1].get("duration_time")
    return [float(p["pts_time"]) for p in packets], float(last) if last not in (None, "N/A") else None


def assert_extinf_matches_packets(pl, files, stream, frame):
    """Each EXTINF is the next segment's first PTS minus its own, the last one reaches the end
    of its last frame: all within one frame (``frame`` seconds)."""
    times = [packet_times(f, stream) for f in files]
    for i, seg in enumerate(pl.segments):
        pts, last_duration = times[i]
        if i + 1 < len(pl.segments):
            truth = times[i + 1][0][0] - pts[0]
        else:
            step = last_duration or (pts[-1] - pts[-2] if len(pts) > 1 else frame)
            truth = pts[-1] + step - pts[0]
        assert seg.duration == pytest.approx(truth, abs=frame * 1.01), (stream, i, seg.duration, truth)


def decodable_span(path):
    """(first frame PTS, end of the last frame, frame count) of a source's video, from its
    decoded frames."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
                          "-of", "json", path], capture_output=True, text=True, check=True).stdout
    times = sorted(float(f["pts_time"]) for f in json.loads(out)["frames"] if f.get("pts_time") not in (None, "N/A"))
    step = (times[-1] - times[0]) / max(1, len(times) - 1)
    return times[0], times[-1] + step, len(times)


def stream_of(path: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_streams", path],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"]


@pytest.mark.parametrize("name", list(GOOD))
def test_clip_becomes_a_valid_hls_ladder(jobs, cloud, name, tmp_path):
    job = jobs[GOOD[name]]
    assert job["status"] == "complete", job["error"]
    assert job["progress"] == 100 and job["error"] is None
    info = parse_probe(ffprobe_json(name))
    master_url = job["outputs"]["master_playlist"]["url"]
    body, headers = http_get(master_url)
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    master = m3u8.loads(body.decode(), uri=master_url)
    assert master.is_variant and len(master.playlists) == len([r for r in job["renditions"] if r["kind"] == "video"])
    has_audio = info.has_audio
    assert bool(master.media) == has_audio
    keyframes, first_frames = {}, {}
    for variant in master.playlists:
        si = variant.stream_info
        w, h = si.resolution
        assert w <= info.display_width and h <= info.display_height, "never upscale"
        assert (h > w) == info.is_portrait, "orientation kept"
        assert abs(w / h - info.display_width / info.display_height) < 0.03, "aspect ratio kept"
        assert si.bandwidth >= si.average_bandwidth > 0
        assert si.codecs.startswith("avc1.64") and ("mp4a.40.2" in si.codecs) == has_audio
        media_url = variant.absolute_uri
        text, headers = http_get(media_url)
        assert headers["content-type"] == "application/vnd.apple.mpegurl"
        pl = m3u8.loads(text.decode(), uri=media_url)
        assert pl.playlist_type == "vod" and pl.is_endlist and pl.target_duration <= 6
        assert all(seg.duration <= 6.5 for seg in pl.segments)
        whole = tmp_path / f"{w}x{h}.ts"
        parts = []
        with open(whole, "wb") as fh:
            for i, seg in enumerate(pl.segments):
                data, headers = http_get(seg.absolute_uri)
                assert headers["content-type"] == "video/mp2t"
                fh.write(data)
                parts.append(tmp_path / f"{w}x{h}-{i}.ts")
                parts[-1].write_bytes(data)
        # EXTINF tells the truth: read from the segments' own packets, not through the playlist
        frame = 1 / max(si.frame_rate, 1)
        assert_extinf_matches_packets(pl, parts, "v:0", frame)
        start, end, count = decodable_span(str(media(name)))
        assert sum(seg.duration for seg in pl.segments) == pytest.approx(end - start, abs=frame * 1.01)
        assert si.frame_rate == pytest.approx(count / (end - start), rel=0.05), "FRAME-RATE measured, not nominal"
        (v,) = [s for s in stream_of(str(whole)) if s["codec_type"] == "video"]
        assert (v["width"], v["height"]) == (w, h), "RESOLUTION measured from the output"
        assert not any(sd.get("rotation") for sd in v.get("side_data_list", [])), "rotation applied, not tagged"
        first_frames[(w, h)] = (min(packet_times(whole, "v:0")[0]), frame)
        kf = keyframe_times(str(whole))
        keyframes[(w, h)] = [round(t - kf[0], 1) for t in kf]
    for rendition in master.media:  # the audio rendition too
        pl = m3u8.loads(http_get(rendition.absolute_uri)[0].decode(), uri=rendition.absolute_uri)
        parts = []
        for i, seg in enumerate(pl.segments):
            parts.append(tmp_path / f"audio-{i}.ts")
            parts[-1].write_bytes(http_get(seg.absolute_uri)[0])
        assert_extinf_matches_packets(pl, parts, "a:0", 1024 / 44100)
        # lip sync: source time 0 is PTS OUTPUT_TS_BASE in the audio (after the AAC priming
        # frame) as in every variant, whenever the source's audio and video started
        (a,) = stream_of(str(parts[0]))
        assert packet_times(parts[0], "a:0")[0][0] == pytest.approx(
            ffmpeg_args.OUTPUT_TS_BASE - 1024 / int(a["sample_rate"]), abs=1e-4)
    if has_audio:
        starts = {s["codec_type"]: float(s["start_time"]) for s in stream_of(str(media(name)))
                  if s["codec_type"] in ("video", "audio") and "start_time" in s}
        for (w, h), (first_frame, frame) in first_frames.items():  # within a frame: FFmpeg's origin
            # for an MPEG-TS source whose first video DTS precedes its audio is the first frame
            assert first_frame == pytest.approx(ffmpeg_args.OUTPUT_TS_BASE + starts["video"] - min(starts.values()),
                                                abs=frame * 1.01), (w, h)
    assert len({tuple(k) for k in keyframes.values()}) == 1, f"IDRs not aligned: {keyframes}"
    first = next(iter(keyframes.values()))
    assert all(abs(t - round(t / 2) * 2) < 0.1 for t in first), f"IDR not every 2 s: {first}"
    # the whole ladder decodes the way a player would read it: over HTTP from the master
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", master_url, "-map", "0", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=120)
    assert dec.returncode == 0 and not dec.stderr.strip(), dec.stderr[-2000:]


def test_rotated_source_comes_out_portrait(jobs):
    job = jobs[GOOD["internal_emulator_transformer_output_270_rotated.mp4"]]
    assert job["probe"]["rotation"] in (90, 270)
    assert [(r["width"], r["height"]) for r in job["renditions"] if r["kind"] == "video"] == [(360, 640), (240, 426)]


def test_odd_sized_source_gets_one_even_rendition(jobs):
    job = jobs[GOOD["bear-vp9-odd-dimensions.webm"]]
    assert [(r["width"], r["height"]) for r in job["renditions"] if r["kind"] == "video"] == [(160, 120)]
    assert not [r for r in job["renditions"] if r["kind"] == "audio"]


@pytest.mark.parametrize("name", ["flower.mp4", "sample_portrait.mp4"])
def test_thumbnails_poster_sprite_and_track(jobs, name, tmp_path):
    out = jobs[GOOD[name]]["outputs"]
    poster, headers = http_get(out["poster"]["url"])
    assert headers["content-type"] == "image/jpeg"
    (tmp_path / "poster.jpg").write_bytes(poster)
    luma = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "poster.jpg"), "-vf", "scale=1:1,format=gray",
                           "-f", "rawvideo", "-"], capture_output=True, check=True).stdout
    assert luma[0] > 30, f"poster is (nearly) black: mean luma {luma[0]}"
    vtt, headers = http_get(out["thumbnails_vtt"]["url"])
    assert headers["content-type"] == "text/vtt"
    cues = [ln for ln in vtt.decode().splitlines() if "#xywh=" in ln]
    sheets = {u["url"].rsplit("/", 1)[1]: u["url"] for u in out["sprites"]}
    for cue in cues:  # every cue names a sheet of this job and a tile inside it
        sheet, xywh = cue.split("#xywh=")
        assert sheet in sheets, (sheet, list(sheets))
        if not (tmp_path / sheet).exists():
            (tmp_path / sheet).write_bytes(http_get(sheets[sheet])[0])
        (s,) = stream_of(str(tmp_path / sheet))
        x, y, w, h = (int(v) for v in xywh.split(","))
        assert x + w <= s["width"] and y + h <= s["height"]
    assert len(cues) >= 2


def test_output_bucket_answers_cors_for_browser_players(jobs):
    url = jobs[GOOD["flower.mp4"]]["outputs"]["master_playlist"]["url"]
    _, headers = http_get(url, {"Origin": "http://player.example"})
    assert headers.get("access-control-allow-origin") in ("*", "http://player.example")


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_fails_with_a_readable_reason(jobs, name):
    key, code = BAD[name]
    job = jobs[key]
    assert job["status"] == "failed"
    assert job["error"]["code"] == code and len(job["error"]["message"]) > 20
    assert "master_playlist" not in job["outputs"]


def test_every_rendition_ends_terminal_and_stats_add_up(jobs, cloud):
    # a failed job's other renditions may still be running when it fails; they end too
    running: list = []

    def all_tasks_ended():
        fresh = [api(cloud, f"/jobs/{j['job_id']}") for j in jobs.values()]
        running[:] = [(j["job_id"], t["name"], t["status"]) for j in fresh for t in j["tasks"]
                      if t["status"] not in ("complete", "failed")]
        return not running and fresh
    fresh = wait_for(all_tasks_ended, 60, lambda: f"every task to end, still running: {running}", interval=1)
    # by default every encoder measures its luma PSNR (free in x264) and not SSIM (asked for)
    videos = [r for j in fresh if j["status"] == "complete" for r in j["renditions"] if r["kind"] == "video"]
    assert videos and all(25 < r["psnr_y"] < 70 and "ssim_y" not in r for r in videos)
    assert sorted(j["status"] for j in fresh) == sorted(["complete"] * len(GOOD) + ["failed"] * len(BAD))
    # the stats count what the table holds: this module's jobs and any other test's (all ended by
    # now), so they are checked against the listing, not against this test's own numbers
    stats = api(cloud, "/stats")
    listing = api(cloud, "/jobs?limit=100")["jobs"]
    assert {j["job_id"] for j in jobs.values()} <= {j["job_id"] for j in listing}
    assert stats["jobs"]["complete"] == sum(j["status"] == "complete" for j in listing)
    assert stats["jobs"]["failed"] == sum(j["status"] == "failed" for j in listing)
    assert stats["queues"]["tasks_dlq"]["visible"] == 0


def test_duplicate_upload_of_the_same_object_is_one_job(jobs, cloud):
    s3, sqs = cloud.client("s3"), cloud.client("sqs")
    before = api(cloud, f"/jobs/{jobs[GOOD['flower.mp4']]['job_id']}")
    ingest = next(m for m in cloud.lambdas.event_sources if getattr(m, "function_name", "") == "ingest")
    handled = ingest.invocations
    s3.upload_file(str(media("flower.mp4")), cloud.stack.refs["IngestBucket"], GOOD["flower.mp4"])

    def notification_handled():  # the new upload's event went through the ingest function
        attrs = sqs.get_queue_attributes(QueueUrl=cloud.stack.refs["IngestQueue"], AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return ingest.invocations > handled and sum(int(v) for v in attrs.values()) == 0
    wait_for(notification_handled, 30, "the re-upload's notification to be handled", interval=0.2)
    listing = api(cloud, "/jobs?limit=100")["jobs"]
    assert [j["source"]["key"] for j in listing].count(GOOD["flower.mp4"]) == 1
    after = api(cloud, f"/jobs/{before['job_id']}")
    assert after["status"] == "complete" and after["tasks"] == before["tasks"], "nothing re-ran"


def _cli(*args, env=None, timeout=180):
    import os
    import sys
    exe = os.path.join(os.path.dirname(sys.executable), "vodpipe")
    # a user's shell: none of the running test cloud's settings leak in, only what is given
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VODPIPE_", "AWS_", "LOCALSTACK_"))}
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, "COLUMNS": "200", **(env or {})})


def test_cli_submit_follow_status_and_jobs(cloud):
    env = dict(line.removeprefix("export ").split("=", 1) for line in cloud.export_lines())
    res = _cli("submit", str(media("sample_av1.mp4")), "--key", "cli/av1 clip.mp4", "--follow", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "complete" in res.stdout and "master playlist" in res.stdout
    job_id = res.stdout.split("; job ", 1)[1].split()[0]
    res = _cli("status", job_id, "--json", env=env)
    job = json.loads(res.stdout)
    assert job["status"] == "complete" and job["source"]["key"] == "cli/av1 clip.mp4"
    assert job["probe"]["video_codec"] == "av1"
    res = _cli("jobs", "--status", "complete", env=env)
    assert res.returncode == 0 and job_id in res.stdout
    assert _cli("status", "nope", env=env).returncode == 1


def test_cli_env_prints_the_template_names():
    res = _cli("env", env={"AWS_ENDPOINT_URL": "", "VODPIPE_API_URL": ""})
    lines = dict(line.removeprefix("export ").split("=", 1) for line in res.stdout.splitlines())
    assert lines["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert lines["VODPIPE_INGEST_BUCKET"] == "vodpipe-dev-123456789012-ingest"
    assert lines["LOCALSTACK_HOST"] == "127.0.0.1:4566"


def test_demo_runs_the_whole_pipeline_on_a_clip(tmp_path):
    """The README's main job, on a small clip and a one-rung ladder."""
    res = _cli("demo", str(media("bear-vp9-odd-dimensions.webm")), "--no-wait", "--port", "0", "--api-port", "0",
               "--workers", "1", "--output", str(tmp_path), env={"VODPIPE_LADDER": "240"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "complete" in res.stdout and "/master.m3u8" in res.stdout
    (master,) = tmp_path.glob("*/master.m3u8")
    pl = m3u8.load(str(master))
    assert [p.stream_info.resolution for p in pl.playlists] == [(160, 120)]
    assert (master.parent / "thumbnails" / "poster.jpg").stat().st_size > 0


def test_up_runs_in_the_foreground_and_ctrl_c_stops_everything():
    import os
    import signal
    import sys
    from pathlib import Path
    exe = os.path.join(os.path.dirname(sys.executable), "vodpipe")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VODPIPE_", "AWS_", "LOCALSTACK_"))}
    proc = subprocess.Popen([exe, "up", "--port", "0", "--api-port", "0", "--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**base, "COLUMNS": "200"})
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        exports = dict(ln.removeprefix("export ").strip().split("=", 1) for ln in lines if ln.startswith("export "))
        stats = json.load(urllib.request.urlopen(exports["VODPIPE_API_URL"] + "/stats"))  # the API answers
        assert set(stats["jobs"]) == {"queued", "processing", "complete", "failed", "canceled"}
        children = set()
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            children |= {int(p) for p in (task / "children").read_text().split()}
        assert len(children) >= 2, "worker processes are running"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 0
        assert not [p for p in children if Path(f"/proc/{p}").exists()
                    and "zombie" not in Path(f"/proc/{p}/status").read_text()], "workers stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_job_log_lines_are_in_cloudwatch_logs_by_job_id(jobs, cloud):
    job_id = jobs[GOOD["flower.mp4"]]["job_id"]
    logs = cloud.client("logs")
    app = "/aws/lambda/vodpipe-e2e"
    groups = {f"{app}-ingest": "ingest function", "/ecs/vodpipe-e2e-transcoder": "worker tasks"}

    def found():
        hits = {}
        for group in groups:
            events = logs.filter_log_events(logGroupName=group, filterPattern=f'"{job_id}"')["events"]
            hits[group] = [json.loads(e["message"]) for e in events if e["message"].startswith("{")]
        return hits if all(hits.values()) else None

    hits = wait_for(found, 15, "log lines of the job in every group", interval=1)
    worker_lines = hits["/ecs/vodpipe-e2e-transcoder"]
    assert all(line.get("job_id") == job_id for line in worker_lines if "rendition" in line)
    assert {line.get("rendition") for line in worker_lines} >= {"chunk-000", "audio"}
    streams = logs.describe_log_streams(logGroupName="/ecs/vodpipe-e2e-transcoder")["logStreams"]
    assert all(s["logStreamName"].startswith("transcoder/transcoder-firelens-") for s in streams) and len(streams) >= 2
    res = _cli("logs", "--job", job_id, env={**dict(line.removeprefix("export ").split("=", 1)
                                                     for line in cloud.export_lines())})
    assert res.returncode == 0 and job_id in res.stdout and "transcoder" in res.stdout


def test_pipeline_metrics_reach_cloudwatch(jobs, cloud):
    import datetime as dt
    cw = cloud.client("cloudwatch")
    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)
    queries = [("completed", "JobsCompleted", [], "Sum"), ("failed", "JobsFailed", [], "Sum"),
               ("uploads", "Uploads", [], "Sum"), ("latency", "JobLatency", [], "Maximum"),
               ("video", "TranscodeSeconds", [{"Name": "kind", "Value": "chunk"}], "SampleCount"),
               ("speed", "TranscodeSpeed", [{"Name": "kind", "Value": "chunk"}], "Average"),
               ("bytes_out", "BytesOut", [{"Name": "kind", "Value": "chunk"}], "Sum"),
               ("playable", "TimeToPlayable", [], "Maximum")]

    def fetch():
        res = cw.get_metric_data(StartTime=end - dt.timedelta(minutes=30), EndTime=end, MetricDataQueries=[
            {"Id": qid, "MetricStat": {"Metric": {"Namespace": "vodpipe", "MetricName": name,
                                                  "Dimensions": [*dims, {"Name": "service", "Value": "vodpipe"}]},
                                       "Period": 3600, "Stat": stat}} for qid, name, dims, stat in queries])
        return {r["Id"]: sum(r["Values"]) for r in res["MetricDataResults"]}

    got = wait_for(lambda: (m := fetch())["completed"] >= len(GOOD) and m, 15, "the JobsCompleted datapoints",
                   interval=1)
    assert got["completed"] >= len(GOOD) and got["failed"] >= len(BAD)
    assert got["uploads"] >= len(GOOD) + len(BAD)
    assert got["video"] >= len(GOOD) and got["speed"] > 0 and got["bytes_out"] > 0
    assert 0 < got["latency"] < 600


def test_webhooks_are_signed_ordered_and_a_dead_receiver_blocks_nothing(jobs, cloud, receiver):
    from chalicelib.domain.webhooks import verify
    url, got = receiver
    job_id = jobs[GOOD["flower.mp4"]]["job_id"]

    def events_of_job():
        return [(h, json.loads(b), t) for h, b, t, _ in got if json.loads(b).get("job_id") == job_id]

    mine = wait_for(lambda: (events := events_of_job()) and any(e["event_type"] == "JobCompleted" for _, e, _ in events)
                    and events, 20, f"the JobCompleted webhook of {job_id}", interval=0.5)
    origin = url[:url.index("/hooks")]
    for headers, body, when, path in got:
        # Standard Webhooks: HMAC over webhook-id, webhook-timestamp and the body, which names its target
        assert verify(WEBHOOK_SECRET, headers, body, now=when, target=origin + path), "valid signature"
        assert not verify(WEBHOOK_SECRET, headers, body, now=when, target=origin + "/elsewhere"), "bound to its target"
        assert headers["content-type"] == "application/json" and headers["webhook-id"]
    types = [e["event_type"] for _, e, _ in mine]
    assert types[0] == "JobQueued" and types[-1] == "JobCompleted" and types.count("JobCompleted") == 1
    assert "ThumbnailReady" in types and types.index("ThumbnailReady") < types.index("JobCompleted")
    done = next(e for _, e, _ in mine if e["event_type"] == "JobCompleted")
    assert done["outputs"]["master_playlist"]["url"].endswith(f"{job_id}/master.m3u8")
    assert all(h["vodpipe-event"] == e["event_type"] for h, e, _ in mine)
    failed = [json.loads(b) for _, b, _, _ in got if json.loads(b)["event_type"] == "JobFailed"]
    assert {e["error"]["code"] for e in failed} >= {"UNREADABLE_MEDIA", "TRUNCATED_MEDIA"}
    # the second target refuses connections: its deliveries back off on the webhooks queue,
    # while the live receiver got every event once and every job finished regardless
    deliveries = [h["webhook-id"] for h, _, _, _ in got]
    assert len(deliveries) == len(set(deliveries)), "no duplicate delivery to the live receiver"
    depth = cloud.client("sqs").get_queue_attributes(QueueUrl=cloud.stack.refs["WebhooksQueue"], AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert int(depth["ApproximateNumberOfMessagesNotVisible"]) + int(depth["ApproximateNumberOfMessages"]) > 0


def test_per_upload_webhook_target_from_object_metadata(cloud, receiver):
    url, got = receiver
    own = url + "?per-upload=1"
    s3 = cloud.client("s3")
    bucket = cloud.stack.refs["IngestBucket"]
    s3.upload_file(str(media("sample_portrait.mp4")), bucket, "hooks/own.mp4",
                   ExtraArgs={"Metadata": {"webhook-url": own}})
    def own_events():
        mine = [json.loads(b) for _, b, _, path in list(got) if path.endswith("?per-upload=1")]
        return any(e["event_type"] == "JobCompleted" for e in mine) and mine
    mine = wait_for(own_events, 60, "the upload's own JobCompleted webhook", interval=0.5)
    assert [e["event_type"] for e in mine][0] == "JobQueued"
    assert mine[-1]["event_type"] == "JobCompleted" and "master_playlist" in mine[-1]["outputs"]
    assert {e["job_id"] for e in mine} == {mine[0]["job_id"]}, "only this upload's events go to its own URL"
