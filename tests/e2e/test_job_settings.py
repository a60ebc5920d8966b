"""Per-job settings end to end on the local cloud: every way in (``POST /jobs`` with an S3
source, an S3 drop with metadata, an S3 drop with a sidecar before or after the upload) on a
real clip, with the settings honoured in the outputs, checked from the media itself.
"""
from __future__ import annotations

import json
import struct
from datetime import datetime
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from chalicelib.domain.settings_metadata import metadata_for
from infra.local.cloud import LocalCloud
from tests.conftest import ffprobe_json, looped_clip, media, wait_for

TIMEOUT = 180
FLOWER = "flower.mp4"  # 960x540, 5.055 s, AAC stereo


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    env = {"VODPIPE_LADDER": "360,240", "VODPIPE_POLL_WAIT_SECONDS": "1"}
    # a deployment that waits 5 s for a sidecar arriving after its upload (the default is 0)
    with LocalCloud(port=0, api_port=0, workers=2, env=env, state_dir=tmp_path_factory.mktemp("state"),
                    params={"Stage": "settings", "SidecarWaitSeconds": 5}) as c:
        yield c


def post_job(cloud, body, key=None):
    headers = {"Idempotency-Key": key} if key else None
    return cloud.api_call("POST", "/jobs", json.dumps(body).encode(), headers=headers)


def job(cloud, job_id):
    return cloud.api_call("GET", f"/jobs/{job_id}", signed=False)[1]


def wait_terminal(cloud, job_id):
    def terminal():
        status, found = cloud.api_call("GET", f"/jobs/{job_id}", signed=False)
        return status == 200 and found["status"] in ("complete", "failed", "canceled") and found
    return wait_for(terminal, TIMEOUT, f"job {job_id} to end", interval=0.5)


def wait_for_key(cloud, key):
    """The job made from upload ``key`` (the listing), once terminal."""
    def job_of_key():
        listing = cloud.api_call("GET", "/jobs?limit=100", signed=False)[1]["jobs"]
        return next((j for j in listing if j["source"]["key"] == key), None)
    return wait_terminal(cloud, wait_for(job_of_key, TIMEOUT, f"a job for {key}", interval=0.5)["job_id"])


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read(), r.headers.get("Content-Type")


def top_level_boxes(data: bytes) -> list[str]:
    """ISO BMFF top-level box types in file order (ISO/IEC 14496-12 §4.2)."""
    boxes, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8:at + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        at += size
    return boxes


def probe_file(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,width,height",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def segment_starts(playlist_url, text):
    """First video PTS of every segment of a media playlist, from the segment files."""
    base = playlist_url.rsplit("/", 1)[0]
    starts = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            data, _ = fetch(line if "://" in line else f"{base}/{line}")
            out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
                                  "-of", "csv=p=0", "-i", "pipe:0"], input=data, capture_output=True, check=True).stdout
            starts.append(min(float(x.strip(",")) for x in out.decode().split() if x.strip(",")))
    return starts


def test_presets_are_listed(cloud):
    status, body = cloud.api_call("GET", "/presets", signed=False)
    presets = {p["name"]: p for p in body["presets"]}
    assert status == 200 and set(presets) >= {"web", "roku-hls"}
    assert [r["height"] for r in presets["web"]["ladder"]] == [360, 240]  # the deployment's ladder
    assert presets["roku-hls"]["absolute_uris"]


def test_post_jobs_validates_and_names_the_field(cloud):
    status, body = post_job(cloud, {"source": "s3://elsewhere/x.mp4"})
    assert status == 400 and body["Message"].startswith("source:")
    status, body = post_job(cloud, {"source": f"s3://{cloud.stack.refs['IngestBucket']}/x.mp4",
                                    "ladder": [{"name": "a", "height": 360, "bitrate": 10}]})
    assert status == 400 and body["Message"].startswith("ladder.0.bitrate:")
    status, body = post_job(cloud, {"source": f"s3://{cloud.stack.refs['IngestBucket']}/missing.mp4"})
    assert status == 400 and "does not exist" in body["Message"]


def test_post_jobs_with_an_s3_source_honours_every_setting(cloud, tmp_path):
    bucket = cloud.stack.refs["IngestBucket"]
    cloud.client("s3").upload_file(str(media(FLOWER)), bucket, "library/flower.mp4",
                                   ExtraArgs={"Metadata": metadata_for({"segment_duration": 2})})
    body = {"source": f"s3://{bucket}/library/flower.mp4",
            "ladder": [{"name": "big", "height": 1080, "bitrate": 4_000_000},
                       {"name": "small", "height": 360, "bitrate": 600_000}],
            "outputs": {"mp4": ["small"], "audio": True}, "segment_duration": 4,
            "output_prefix": "shows/flower", "metadata": {"title": "Flower", "customer": "c-42"},
            "quality_metrics": ["ssim", "psnr"]}
    # GIVEN a request with an Idempotency-Key WHEN it is sent twice THEN one job, one response
    status, first = post_job(cloud, body, key="req-1")
    assert status == 202 and first["status"] == "submitted"
    assert post_job(cloud, body, key="req-1") == (202, first)
    # AND the key with another body is refused
    status, refused = post_job(cloud, {**body, "segment_duration": 6}, key="req-1")
    assert status == 422 and "Idempotency-Key" in refused["Message"]

    done = wait_terminal(cloud, first["job_id"])
    assert done["status"] == "complete", done.get("error")
    # the API body wins over the object's own metadata (segment_duration 2)
    assert done["settings"]["segment_duration"] == 4 and done["metadata"] == {"title": "Flower", "customer": "c-42"}
    # never upscale: 1080 is above the 540p source and reported
    assert done["dropped_rungs"] == ["big"]
    assert [(r["name"], r["height"]) for r in done["renditions"] if r["kind"] == "video"] == [("small", 360)]
    small = next(r for r in done["renditions"] if r["name"] == "small")
    assert small["video_bitrate"] == 600_000
    # SSIM asked for: each encoder measured both (x264's own luma PSNR and SSIM of its output)
    assert done["settings"]["quality_metrics"] == ["psnr", "ssim"]
    assert 30 < small["psnr_y"] < 60 and 0.9 < small["ssim_y"] <= 1
    outputs = done["outputs"]
    assert outputs["master_playlist"]["uri"].endswith("/shows/flower/master.m3u8")
    # 4 s segments: TARGETDURATION 4 and, after the 0.5 s first segment (FirstChunkSeconds), each
    # segment starts on the 4 s grid continued from it (from the packets: 0, 0.5, 4.5 s)
    url = outputs["variants"]["small"]["url"]
    text = fetch(url)[0].decode()
    assert "#EXT-X-TARGETDURATION:4" in text
    starts = segment_starts(url, text)
    assert [round(t - starts[0], 1) for t in starts] == [0.0, 0.5, 4.5], starts

    # the MP4: moov before mdat (faststart), the source's duration, video + audio, no re-encode
    source_duration = float(ffprobe_json(FLOWER)["format"]["duration"])
    mp4 = outputs["files"]["small.mp4"]
    assert mp4["uri"].endswith("/shows/flower/mp4/small.mp4")
    data, ctype = fetch(mp4["url"])
    (tmp_path / "small.mp4").write_bytes(data)
    boxes = top_level_boxes(data)
    assert ctype == "video/mp4" and boxes.index("moov") < boxes.index("mdat")
    info = probe_file(tmp_path / "small.mp4")
    assert float(info["format"]["duration"]) == pytest.approx(source_duration, abs=0.1)
    assert mp4["duration"] == pytest.approx(source_duration, abs=0.1) and mp4["bytes"] == len(data)
    assert {s["codec_type"] for s in info["streams"]} == {"video", "audio"}
    assert [(s["width"], s["height"]) for s in info["streams"] if s["codec_type"] == "video"] == [(640, 360)]
    m4a, _ = fetch(outputs["files"]["audio.m4a"]["url"])
    (tmp_path / "audio.m4a").write_bytes(m4a)
    assert [s["codec_type"] for s in probe_file(tmp_path / "audio.m4a")["streams"]] == ["audio"]

    # GET /jobs/{id}/renditions/{name} redirects to the playlist or the file
    opener = urllib.request.build_opener(NoRedirect)
    for name, target in (("small", url), ("small.mp4", mp4["url"])):
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(f"{cloud.api_url}/jobs/{first['job_id']}/renditions/{name}", timeout=10)
        assert redirect.value.code == 302 and redirect.value.headers["Location"] == target


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_an_s3_drop_with_metadata_uses_the_roku_preset(cloud):
    bucket = cloud.stack.refs["IngestBucket"]
    cloud.client("s3").upload_file(str(media(FLOWER)), bucket, "drops/roku.mp4",
                                   ExtraArgs={"Metadata": {"preset": "roku-hls", "meta-title": "Roku"}})
    done = wait_for_key(cloud, "drops/roku.mp4")
    assert done["status"] == "complete", done.get("error")
    assert [r["name"] for r in done["renditions"] if r["kind"] == "video"] == ["480p", "360p"]
    assert done["dropped_rungs"] == ["1080p", "720p"] and done["metadata"] == {"title": "Roku"}
    master, ctype = fetch(done["outputs"]["master_playlist"]["url"])
    uris = [line for line in master.decode().splitlines() if line and not line.startswith("#")]
    uris += [line.split('URI="')[1].split('"')[0] for line in master.decode().splitlines() if 'URI="' in line]
    assert ctype == "application/x-mpegURL" and uris and all(u.startswith("http://") for u in uris)
    media_text = fetch(done["outputs"]["variants"]["360p"]["url"])[0].decode()
    segments = [line for line in media_text.splitlines() if line and not line.startswith("#")]
    assert segments and all(s.startswith("http://") and "/360p/" in s for s in segments)


@pytest.mark.parametrize("sidecar_first", [True, False])
def test_an_s3_drop_with_a_sidecar_before_or_after_the_upload(cloud, sidecar_first):
    s3, bucket = cloud.client("s3"), cloud.stack.refs["IngestBucket"]
    key = f"sidecars/{'first' if sidecar_first else 'after'}.mp4"
    sidecar = json.dumps({"ladder": "360:500k", "outputs": {"thumbnails": False}, "metadata": {"via": "sidecar"}})
    if sidecar_first:
        s3.put_object(Bucket=bucket, Key=key + ".json", Body=sidecar.encode())
    s3.upload_file(str(media(FLOWER)), bucket, key)
    if not sidecar_first:  # within the upload's wait for its sidecar
        s3.put_object(Bucket=bucket, Key=key + ".json", Body=sidecar.encode())
    done = wait_for_key(cloud, key)
    assert done["status"] == "complete", done.get("error")
    assert done["metadata"] == {"via": "sidecar"}
    assert [(r["name"], r["video_bitrate"]) for r in done["renditions"] if r["kind"] == "video"] == [("360p", 500_000)]
    assert "poster" not in done["outputs"] and not any(t["kind"] == "thumbnails" for t in done["tasks"])


def test_invalid_metadata_fails_the_job_naming_the_key(cloud):
    bucket = cloud.stack.refs["IngestBucket"]
    cloud.client("s3").upload_file(str(media(FLOWER)), bucket, "drops/typo.mp4",
                                   ExtraArgs={"Metadata": {"priorty": "high"}})
    done = wait_for_key(cloud, "drops/typo.mp4")
    assert done["status"] == "failed"
    assert done["error"]["code"] == "INVALID_SETTINGS" and done["error"]["message"].startswith("x-amz-meta-priorty:")


@pytest.mark.parametrize("carrier, levels", [("sidecar", 1500), ("metadata", 1000)])
def test_deeply_nested_settings_fail_the_job_at_once(cloud, carrier, levels):
    """GIVEN an upload whose settings document nests 1,500 levels deep (in its sidecar; as
    ``x-amz-meta-settings`` 1,000, as deep as S3's 2 KB of metadata allows) WHEN it is ingested
    THEN its job fails ``INVALID_SETTINGS`` naming the depth, on the first ingest attempt: no
    error left for a retry, within seconds. (Before: ``json`` raised RecursionError, retried
    every ``IngestVisibilityTimeout``, 360 s, toward ``INGEST_FAILED``.)"""
    s3, bucket = cloud.client("s3"), cloud.stack.refs["IngestBucket"]
    key = f"deep/{carrier}.mp4"
    document = '{"metadata":' + "[" * (levels - 1) + "]" * (levels - 1) + "}"
    started = time.monotonic()
    if carrier == "sidecar":
        s3.put_object(Bucket=bucket, Key=key + ".json", Body=document.encode())
        s3.upload_file(str(media(FLOWER)), bucket, key)
    else:
        s3.upload_file(str(media(FLOWER)), bucket, key, ExtraArgs={"Metadata": {"settings": document}})
    done = wait_for_key(cloud, key)
    assert done["status"] == "failed" and done["error"]["code"] == "INVALID_SETTINGS", done.get("error")
    field = "sidecar" if carrier == "sidecar" else "x-amz-meta-settings"
    assert done["error"]["message"].startswith(f"{field}: ") and "nested deeper than 8 levels" in done["error"]["message"]
    assert time.monotonic() - started < 60  # one attempt; a retry comes only after 360 s
    attempts = cloud.client("dynamodb").get_item(TableName=cloud.stack.refs["JobsTable"], ConsistentRead=True,
                                                 Key={"pk": {"S": f"INGEST#{done['job_id']}"}, "sk": {"S": "INGEST"}})
    assert "Item" not in attempts  # ingest raised nothing (services/ingest.record_failure records every raise)


def test_a_high_priority_job_overtakes_a_normal_backlog(tmp_path_factory):
    """GIVEN one worker busy with a backlog of normal jobs WHEN a high-priority job arrives THEN
    its tasks are the next ones the worker takes: every normal task still queued then starts
    after the high job's last task."""
    env = {"VODPIPE_LADDER": "240", "VODPIPE_POLL_WAIT_SECONDS": "1"}
    with LocalCloud(port=0, api_port=0, workers=1, env=env, state_dir=tmp_path_factory.mktemp("state"),
                    params={"Stage": "priority"}) as cloud:
        s3, bucket = cloud.client("s3"), cloud.stack.refs["IngestBucket"]
        normal = [f"backlog/{i}.mp4" for i in range(3)]
        for key in normal:
            s3.upload_file(str(media(FLOWER)), bucket, key, ExtraArgs={"Metadata": metadata_for({"priority": "normal"})})
        wait_for(lambda: cloud.api_call("GET", "/jobs?status=processing", signed=False)[1]["jobs"], TIMEOUT,
                 "the worker to start the backlog", interval=0.2)
        s3.upload_file(str(media(FLOWER)), bucket, "urgent.mp4",
                       ExtraArgs={"Metadata": metadata_for({"priority": "high"})})
        high = wait_for_key(cloud, "urgent.mp4")
        backlog = [wait_for_key(cloud, key) for key in normal]
    assert high["status"] == "complete" and high["priority"] == "high"
    assert all(j["status"] == "complete" and j["priority"] == "normal" for j in backlog)
    def at(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    queued = at(high["created_at"])  # its tasks were queued right after
    high_done = max(at(t["completed_at"]) for t in high["tasks"])
    later = [t for j in backlog for t in j["tasks"] if at(t["started_at"]) > queued]
    assert later, "a normal backlog was still queued when the high job's tasks were"
    assert all(at(t["started_at"]) >= high_done for t in later), (high_done, [t["started_at"] for t in later])


def test_a_new_uploads_first_chunk_runs_before_a_backlogs_later_chunks(tmp_path_factory):
    """The fairness rule (docs/architecture.md, "Which task runs next"): GIVEN one worker busy
    with a backlog of long normal jobs (each a 0.5 s first chunk, its audio and a long later
    chunk) WHEN a short normal upload arrives THEN its first chunk and audio run before every
    later chunk of the backlog that had not started, so it is playable before the backlog ends."""
    # several later chunks per backlog job, so some are still queued when the new upload arrives
    env = {"VODPIPE_LADDER": "240", "VODPIPE_POLL_WAIT_SECONDS": "1", "VODPIPE_CHUNK_PARALLELISM": "3"}
    long_clip = looped_clip(tmp_path_factory.mktemp("long"), FLOWER, 5)  # 30.3 s
    with LocalCloud(port=0, api_port=0, workers=1, env=env, state_dir=tmp_path_factory.mktemp("state"),
                    params={"Stage": "fairness", "ChunkMinSeconds": 6}) as cloud:
        s3, bucket = cloud.client("s3"), cloud.stack.refs["IngestBucket"]
        backlog_keys = [f"backlog/{i}.mp4" for i in range(2)]
        for key in backlog_keys:
            s3.upload_file(str(long_clip), bucket, key)
        wait_for(lambda: cloud.api_call("GET", "/jobs?status=processing", signed=False)[1]["jobs"], TIMEOUT,
                 "the worker to start the backlog", interval=0.2)
        s3.upload_file(str(media(FLOWER)), bucket, "new.mp4")
        new = wait_for_key(cloud, "new.mp4")
        backlog = [wait_for_key(cloud, key) for key in backlog_keys]

    def at(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert new["status"] == "complete" and all(j["status"] == "complete" for j in backlog)
    assert all(len([t for t in j["tasks"] if t["kind"] == "chunk"]) >= 3 for j in backlog), "later chunks exist"
    queued = at(new["created_at"])  # its tasks were queued right after
    firsts = [t for t in new["tasks"] if t["kind"] == "audio" or t["name"] == "chunk-000"]
    later = [t for j in backlog for t in j["tasks"]
             if t["kind"] == "chunk" and t["name"] != "chunk-000" and at(t["started_at"]) > queued]
    assert later, "a later chunk of the backlog was still queued when the new upload's tasks were"
    assert max(at(t["started_at"]) for t in firsts) <= min(at(t["started_at"]) for t in later), \
        ([(t["name"], t["started_at"]) for t in firsts], [(t["name"], t["started_at"]) for t in later])
    assert at(new["playable_at"]) < max(at(j["completed_at"]) for j in backlog)


def form_post(url, fields, data, filename="clip.mp4"):
    """POST a multipart/form-data form (the fields, then the file) like a browser; returns
    (status, body)."""
    boundary = "vodpipe-test-boundary"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: video/mp4\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_a_presigned_browser_upload_carries_its_settings_and_nothing_else(cloud):
    settings = {"ladder": "240:300k", "outputs": {"mp4": ["240p"]}, "metadata": {"via": "browser"}}
    status, upload = cloud.api_call("POST", "/uploads", json.dumps(
        {"filename": "../../My Clip.mp4", "content_type": "video/mp4", **settings}).encode())
    assert status == 200 and upload["key"].startswith("uploads/") and upload["key"].endswith("/My_Clip.mp4")
    data = media(FLOWER).read_bytes()
    # S3 refuses a form whose settings were changed, or another content type, or a file past the range
    tampered = {**upload["fields"], "x-amz-meta-settings": json.dumps({"priority": "high"})}
    assert form_post(upload["url"], tampered, data)[0] == 403
    assert form_post(upload["url"], {**upload["fields"], "Content-Type": "text/html"}, data)[0] == 403
    status, _ = form_post(upload["url"], upload["fields"], data)
    assert status in (200, 204)
    done = wait_for_key(cloud, upload["key"])
    assert done["status"] == "complete", done.get("error")
    assert done["metadata"] == {"via": "browser"} and list(done["outputs"]["files"]) == ["240p.mp4"]
    status, refused = cloud.api_call("POST", "/uploads", json.dumps({"content_type": "text/html"}).encode())
    assert status == 400 and refused["Message"].startswith("content_type:")


@pytest.fixture(scope="module")
def file_server():
    """An HTTP server on 127.0.0.1 serving the media folder, with /redirect/<name> -> /<name>."""
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    folder = str(media(FLOWER).parent)

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=folder, **kwargs)

        def do_GET(self):
            if self.path.startswith("/redirect/"):
                self.send_response(302)
                self.send_header("Location", "/" + self.path.split("/", 2)[2])
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_post_jobs_with_a_url_imports_it_through_a_redirect(cloud, file_server):
    status, accepted = post_job(cloud, {"source": f"{file_server}/redirect/{FLOWER}", "ladder": "240:300k"})
    assert status == 202, accepted
    done = wait_terminal(cloud, accepted["job_id"])
    assert done["status"] == "complete", done.get("error")
    assert done["source"]["key"] == f"imports/{accepted['job_id']}/{FLOWER}"
    assert done["source"]["size"] == media(FLOWER).stat().st_size
    # the imported object's own upload event made no second job
    listing = cloud.api_call("GET", "/jobs?limit=100", signed=False)[1]["jobs"]
    assert [j["job_id"] for j in listing if j["source"]["key"] == done["source"]["key"]] == [accepted["job_id"]]
    status, missing = post_job(cloud, {"source": f"{file_server}/nothing-here.mp4"})
    failed = wait_terminal(cloud, missing["job_id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "SOURCE_URL_FAILED"
    assert "404" in failed["error"]["message"]


@pytest.mark.parametrize("after", ["delete", "archive"])
def test_source_after_a_silent_portrait_job_with_an_mp4(cloud, tmp_path, after):
    """A source without audio, portrait: the MP4 is silent video at the rendition's size; then
    the source version is deleted for good, or tagged for the archive lifecycle rule."""
    s3, bucket = cloud.client("s3"), cloud.stack.refs["IngestBucket"]
    key = f"after/{after}.mp4"
    s3.upload_file(str(media("mv_with_2_top_shots.mp4")), bucket, key,  # HEVC, rotated 90: portrait; no audio
                   ExtraArgs={"Metadata": metadata_for({"ladder": "240:300k", "outputs": {"mp4": ["240p"]},
                                                        "source_after": after})})
    done = wait_for_key(cloud, key)
    assert done["status"] == "complete", done.get("error")
    # source_after runs right after the status turns complete
    done = wait_for(lambda: (j := job(cloud, done["job_id"]))["source"]["state"] is not None and j, 30,
                    f"source_after ({after}) of {key}", interval=0.2)
    data, _ = fetch(done["outputs"]["files"]["240p.mp4"]["url"])
    (tmp_path / "out.mp4").write_bytes(data)
    streams = probe_file(tmp_path / "out.mp4")["streams"]
    assert [(s["codec_type"], s["width"], s["height"]) for s in streams] == [("video", 240, 320)]
    version = done["source"]["version_id"]
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    if after == "delete":
        assert done["source"]["state"] == "deleted" and not [v for v in versions if v["VersionId"] == version]
    else:
        tags = s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version)["TagSet"]
        assert done["source"]["state"] == "archived" and tags == [{"Key": "vodpipe-source", "Value": "archive"}]
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        archive = next(r for r in rules if r["ID"] == "archive-processed-sources")
        assert archive["Filter"] == {"Tag": {"Key": "vodpipe-source", "Value": "archive"}}
        assert archive["Transitions"][0]["StorageClass"] == "DEEP_ARCHIVE"


def test_an_output_prefix_belongs_to_one_job(cloud):
    """Two jobs asking for one output prefix: the second fails, the first's outputs stay."""
    bucket = cloud.stack.refs["IngestBucket"]
    body = {"ladder": "240:300k", "output_prefix": "shared/name"}
    cloud.client("s3").upload_file(str(media(FLOWER)), bucket, "prefix/first.mp4",
                                   ExtraArgs={"Metadata": metadata_for(body)})
    first = wait_for_key(cloud, "prefix/first.mp4")
    cloud.client("s3").upload_file(str(media("bigbuckbunny.mp4")), bucket, "prefix/second.mp4",
                                   ExtraArgs={"Metadata": metadata_for(body)})
    second = wait_for_key(cloud, "prefix/second.mp4")
    assert first["status"] == "complete" and first["outputs"]["master_playlist"]["uri"].endswith("/shared/name/master.m3u8")
    assert second["status"] == "failed" and second["error"]["code"] == "OUTPUT_PREFIX_IN_USE"
    assert first["job_id"] in second["error"]["message"]
    text, _ = fetch(first["outputs"]["variants"]["240p"]["url"])
    assert b"#EXT-X-ENDLIST" in text
