"""The web console in a real browser (Debian's chromium through Playwright) against the local
cloud: drop a real clip, watch it, play it, switch level, see the poster and a sprite preview;
a broken upload shows its reason; a dead letter is redriven from the operations view. The
console's API twin refuses calls without a valid ID token of the console user pool.

Screenshots and the measured timings go to ``output/console-screenshots/`` (not committed).
"""
import base64
import json
import time
import urllib.error
import urllib.request

import pytest

from infra.local.cloud import LocalCloud
from tests.conftest import looped_clip, media, wait_for

FLOWER = "flower.mp4"


@pytest.fixture(scope="module")
def faults_file(tmp_path_factory):
    return tmp_path_factory.mktemp("faults") / "faults.txt"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, faults_file):
    env = {"VODPIPE_LADDER": "360,240", "VODPIPE_POLL_WAIT_SECONDS": "1", "VODPIPE_FAULTS_FILE": str(faults_file)}
    params = {"Stage": "console", "TaskVisibilityTimeout": 15, "TaskMaxReceiveCount": 2, "AlarmPeriodSeconds": 10}
    with LocalCloud(port=0, api_port=0, workers=2, env=env, params=params, alarm_interval=2, schedule_seconds=3,
                    state_dir=tmp_path_factory.mktemp("state")) as c:
        yield c


def api(cloud, path, method="GET"):
    """The IAM-authorized API (SigV4 with the local credentials): what the test checks against."""
    status, body = cloud.api_call(method, path, b"{}" if method == "POST" else None)
    return body


def drop(page, path, target="#drop", content_type="video/mp4"):
    """Drop the file at ``path`` on ``target`` as a user dragging it from the desktop would (a
    DataTransfer holding a File with the file's bytes)."""
    transfer = page.evaluate_handle("""([name, b64, type]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type }));
        return transfer; }""", [path.name, base64.b64encode(path.read_bytes()).decode(), content_type])
    page.dispatch_event(target, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(target, "drop", {"dataTransfer": transfer})


def console_token(cloud) -> str:
    """An ID token of the console's user pool, signed in the way the page signs in."""
    config = json.load(urllib.request.urlopen(cloud.console_url + "config.json"))
    request = {"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": config["cognito"]["client_id"],
               "AuthParameters": {"USERNAME": config["sign_in"]["username"], "PASSWORD": config["sign_in"]["password"]}}
    answer = urllib.request.urlopen(urllib.request.Request(
        config["cognito"]["endpoint"] + "/", json.dumps(request).encode(),
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"}))
    return json.load(answer)["AuthenticationResult"]["IdToken"]


def status_of(url, token=None) -> int:
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": token} if token else {})).status
    except urllib.error.HTTPError as e:
        return e.code


def test_the_console_api_needs_an_id_token_of_the_console_pool(cloud):
    jobs = cloud.api_url + "/console/api/jobs"
    token = console_token(cloud)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "email": "intruder@example.com"}).encode()).decode().rstrip("=")
    assert status_of(jobs) == 401
    assert status_of(jobs, "not-a-token") == 401
    assert status_of(jobs, f"{header}.{forged}.{signature}") == 401  # claims changed: the signature fails
    assert status_of(jobs, token) == 200
    assert status_of(cloud.api_url + "/console/api/dlq", token) == 200
    assert status_of(cloud.api_url + "/dlq") == 403  # the IAM twin still wants SigV4


def test_drop_a_clip_then_watch_play_switch_level_poster_and_sprite_preview(cloud, page, screenshots, tmp_path):
    clip = looped_clip(tmp_path, FLOWER, 2)  # 15 s: three segments to play through
    page.goto(cloud.console_url)
    page.wait_for_selector("#settings select[name=preset] option", state="attached")
    page.fill("#settings input[name=mp4]", "360p")
    page.screenshot(path=str(screenshots / "1-jobs-and-upload.png"))
    dropped = time.monotonic()
    drop(page, clip)
    page.wait_for_url("**/#/jobs/*", timeout=60_000)
    job_id = page.url.rsplit("/", 1)[1]
    on_job_page = time.monotonic() - dropped

    # progress per rendition only goes up, to 100 %
    # and the first frame is decoded in the page's player (often before the job completes)
    seen: dict[str, list[int]] = {"360p": [], "240p": []}
    first_frame = None

    def progress_done():  # one sample of every progress bar (and of the player) per poll
        nonlocal first_frame
        for name in seen:
            value = page.get_attribute(f'[data-rendition="{name}"] [role=progressbar]', "aria-valuenow", timeout=60_000)
            seen[name].append(int(value))
        if first_frame is None and page.evaluate("document.querySelector('#video')?.readyState >= 2"):
            first_frame = time.monotonic() - dropped
        return all(v[-1] == 100 for v in seen.values())
    wait_for(progress_done, 180 - (time.monotonic() - dropped), lambda: f"progress to reach 100 %, stuck at {seen}",
             interval=0.1)
    assert all(v == sorted(v) for v in seen.values()), seen
    page.wait_for_function("document.querySelector('#video').readyState >= 2", timeout=60_000)
    first_frame = first_frame or time.monotonic() - dropped
    page.click("#play")
    played_past(page, 6)
    # the player decoded real pictures: the frame on screen is not a flat colour
    contrast = page.evaluate("""() => {
        const video = document.querySelector('#video'); const canvas = document.createElement('canvas');
        canvas.width = 64; canvas.height = 36; const g = canvas.getContext('2d'); g.drawImage(video, 0, 0, 64, 36);
        const d = g.getImageData(0, 0, 64, 36).data; let lo = 255, hi = 0;
        for (let i = 0; i < d.length; i += 4) { const y = (d[i] + d[i + 1] + d[i + 2]) / 3; lo = Math.min(lo, y); hi = Math.max(hi, y); }
        return hi - lo; }""")
    assert contrast > 40, f"the decoded frame is nearly flat (luma range {contrast})"

    # level switching: 240p chosen, then decoded at 240 lines
    labels = page.locator("#level option").all_inner_texts()
    assert labels[0] == "Auto" and any(t.startswith("360p") for t in labels) and any(t.startswith("240p") for t in labels)
    page.select_option("#level", label=next(t for t in labels if t.startswith("240p")))
    page.wait_for_selector('#playing[data-height="240"]', timeout=30_000)
    page.evaluate("document.querySelector('#video').currentTime = 1")
    page.wait_for_function("document.querySelector('#video').videoHeight === 240", timeout=30_000)

    # the poster, loaded from the output bucket
    poster = page.wait_for_selector("#poster img")
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", poster)
    # a sprite preview over the seek bar, from the thumbnails WebVTT track
    page.wait_for_function("document.querySelector('#seek').max > 10")
    box = page.locator("#seek").bounding_box()
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2

    def hover_previews():  # the track is fetched once the job lists it: hover until a cue answers
        page.mouse.move(x - 1, y)
        page.mouse.move(x, y)
        found = page.query_selector("#preview[data-time]")
        return found if found and found.is_visible() else None
    preview = wait_for(hover_previews, 30, "a sprite preview over the seek bar")
    style = preview.get_attribute("style")
    assert "background-image" in style and ".jpg" in style and 5 < float(preview.get_attribute("data-time")) < 10
    sprite = style.split('url("', 1)[1].split('"', 1)[0]
    assert page.evaluate("async (u) => { const r = await fetch(u); return [r.status, r.headers.get('content-type')] }",
                         sprite) == [200, "image/jpeg"]
    page.screenshot(path=str(screenshots / "2-job-playing-with-preview.png"), full_page=True)

    job = api(cloud, f"/jobs/{job_id}")
    assert job["status"] == "complete"
    # the renditions table shows what the API measured; the MP4 is linked
    table = page.inner_text("#renditions")
    for rendition in job["renditions"]:
        assert rendition["codecs"] in table
    link = page.get_attribute('#files a[download]', "href")
    assert link == job["outputs"]["files"]["360p.mp4"]["url"] and status_of(link) == 200
    assert not page.errors, page.errors
    (screenshots / "timings.json").write_text(json.dumps({
        "clip": clip.name, "job_id": job_id, "drop_to_job_page_s": round(on_job_page, 2),
        "drop_to_first_frame_s": round(first_frame, 2),
        "upload_to_playable_s": round((_ts(job["playable_at"]) - _ts(job["uploaded_at"])), 2),
        "upload_to_complete_s": round((_ts(job["completed_at"]) - _ts(job["uploaded_at"])), 2)}, indent=1))


def played_past(page, seconds: float) -> None:
    """Wait (60 s) until the page's video plays past ``seconds``; else fail with what the
    element and the player said (position, buffered ranges, paused, network state) and the
    end of chromium's media log."""
    try:
        page.wait_for_function(f"document.querySelector('#video').currentTime > {seconds}", timeout=60_000)
    except Exception:
        state = page.evaluate("""() => { const v = document.querySelector('#video'); const b = [];
            for (let i = 0; i < v.buffered.length; i++) b.push([v.buffered.start(i), v.buffered.end(i)]);
            return {currentTime: v.currentTime, paused: v.paused, ended: v.ended, readyState: v.readyState,
                    networkState: v.networkState, error: v.error && v.error.message, buffered: b,
                    player: document.querySelector('#playing').textContent,
                    play: document.querySelector('#play').textContent}; }""")
        log = "\n".join(page.media_log[-60:])
        raise AssertionError(f"the video did not play past {seconds} s in 60 s: {state}\nchromium's media log:\n{log}") from None


def _ts(iso: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_a_broken_upload_shows_its_reason(cloud, page, screenshots):
    page.goto(cloud.console_url)
    page.wait_for_selector("#settings select[name=preset] option", state="attached")
    page.fill("#settings input[name=ladder]", "720:lots")  # refused before anything is uploaded
    drop(page, media(FLOWER))
    alert = page.wait_for_selector("#upload-state [role=alert]")
    assert "ladder" in alert.inner_text()
    page.fill("#settings input[name=ladder]", "")
    drop(page, media("broken_truncated_nomoov_270_rotated.mp4"))
    page.wait_for_url("**/#/jobs/*", timeout=60_000)
    job_id = page.url.rsplit("/", 1)[1]
    code = page.wait_for_selector("#error-code", timeout=60_000).inner_text()
    job = api(cloud, f"/jobs/{job_id}")
    assert job["status"] == "failed" and code == job["error"]["code"]
    assert page.inner_text("#error-message") == job["error"]["message"] and job["error"]["message"]
    assert page.is_visible("#retry") and not page.is_visible("#cancel")
    page.screenshot(path=str(screenshots / "3-failed-upload.png"), full_page=True)


def test_the_player_offers_every_audio_language(cloud, page, screenshots, tmp_path):
    """A clip with an English and a Spanish audio-description track: the job page lists both audio
    renditions with their languages, the player's Audio menu offers both by name, and choosing
    Spanish makes hls.js load and play the Spanish rendition."""
    from tests import variants
    clip = variants.two_languages(tmp_path)
    page.goto(cloud.console_url)
    page.wait_for_selector("#settings select[name=preset] option", state="attached")
    drop(page, clip)
    page.wait_for_url("**/#/jobs/*", timeout=60_000)
    page.wait_for_function("document.querySelectorAll('#audio option').length === 2", timeout=120_000)
    options = page.eval_on_selector_all("#audio option", "els => els.map(e => [e.textContent, e.dataset.lang])")
    assert options == [["English (en)", "en"], ["Spanish (audio description) (es)", "es"]]
    assert "English (en)" in page.inner_text('[data-row="audio"]')
    assert "Spanish (audio description) (es)" in page.inner_text('[data-row="audio_1"]')
    spanish = []
    page.on("request", lambda request: spanish.append(request.url) if "/audio_1/" in request.url else None)
    page.select_option("#audio", "1")
    page.wait_for_function("document.querySelector('#audio').dataset.playing === 'es'", timeout=30_000)
    page.click("#play")
    wait_for(lambda: any(url.endswith(".ts") for url in spanish), 30, "a Spanish audio segment to be fetched")
    page.screenshot(path=str(screenshots / "5-audio-languages.png"))
    assert page.errors == []


def test_the_player_shows_the_subtitles_of_the_source(cloud, page, screenshots, tmp_path):
    """A clip with an embedded French subtitle track (mov_text): the job page lists the subtitles
    rendition with its language, cue count and whole .vtt, the player's Subtitles menu offers it by
    name and language, and choosing it makes hls.js load the WebVTT segments and show their cues
    at the source's times (X-TIMESTAMP-MAP maps them onto the video's timeline). The upload form's
    "Normalize loudness" reaches the job's settings."""
    from tests import variants
    clip = variants.with_subtitles(tmp_path)
    page.goto(cloud.console_url)
    page.wait_for_selector("#settings select[name=preset] option", state="attached")
    page.check("#settings input[name=normalize_audio]")
    drop(page, clip)
    page.wait_for_url("**/#/jobs/*", timeout=60_000)
    job_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#status .badge.complete", timeout=180_000)
    page.wait_for_function("document.querySelectorAll('#subtitles option').length === 2", timeout=60_000)
    options = page.eval_on_selector_all("#subtitles option", "els => els.map(e => [e.value, e.textContent])")
    assert options == [["-1", "Off"], ["0", "French (fr)"]]
    assert page.input_value("#subtitles") == "-1" and not page.is_disabled("#subtitles")  # DEFAULT=NO: off at first
    fetched = []
    page.on("request", lambda request: fetched.append(request.url) if "/subtitles/" in request.url else None)
    page.select_option("#subtitles", label="French (fr)")
    page.wait_for_function("document.querySelector('#subtitles').dataset.showing === 'fr'")
    # the cues hls.js parsed into the video's showing text track, once the middle one is in
    cues = page.wait_for_function("""(text) => {
        const track = Array.from(document.querySelector('#video').textTracks).find((t) => t.mode === 'showing');
        const cues = track && track.cues ? Array.from(track.cues).map((c) => [c.startTime, c.endTime, c.text]) : [];
        return cues.some((c) => c[2] === text) && cues; }""", arg="Elle s'ouvre\nlentement.", timeout=30_000).json_value()
    # hls.js puts the source's time 0 where the first frame is shown (initPTS is the first DTS: with
    # flower.mp4's B-frames that is 2 frames, 0.067 s, in): a cue at source time t must be at first + t
    page.wait_for_function("document.querySelector('#video').buffered.length > 0")  # video appended too
    first = page.evaluate("document.querySelector('#video').buffered.start(0)")
    assert 0 <= first < 0.2, first
    assert any(text == "Elle s'ouvre\nlentement." and abs(start - first - 1.9) < 0.05 and abs(end - first - 4.2) < 0.05
               for start, end, text in cues), (first, cues)
    assert any(url.split("?")[0].endswith("/subtitles/seg_00000.vtt") for url in fetched), fetched
    # shown at its time on the picture
    page.evaluate("document.querySelector('#video').currentTime = 2.5")
    page.wait_for_function("""() => Array.from(document.querySelector('#video').textTracks)
        .some((t) => t.mode === 'showing' && t.activeCues && t.activeCues.length > 0)""")
    page.screenshot(path=str(screenshots / "6-subtitles.png"))

    job = api(cloud, f"/jobs/{job_id}")
    row = page.inner_text('[data-row="subtitles"]')
    assert "French" in row and "(fr)" in row and "3 cues" in row
    vtt = job["outputs"]["subtitles"]["subtitles"]["url"]
    assert page.get_attribute('[data-row="subtitles"] a[data-vtt]', "href") == vtt and status_of(vtt) == 200
    assert job["settings"]["normalize_audio"] is True  # from the form (flower.mp4's sound is silent: left as is)
    assert page.errors == []


def test_a_running_job_is_canceled_from_its_page(cloud, page, faults_file):
    faults_file.write_text("task_start always /chunk-000\n")  # the chunk keeps failing: the job stays open
    try:
        page.goto(cloud.console_url)
        page.wait_for_selector("#settings select[name=preset] option", state="attached")
        drop(page, media("sample_portrait.mp4"))
        page.wait_for_url("**/#/jobs/*", timeout=60_000)
        job_id = page.url.rsplit("/", 1)[1]
        page.click("#cancel")
        page.wait_for_selector("#status .badge.canceled", timeout=30_000)
        assert not page.is_visible("#cancel") and not page.is_visible("#retry")
        assert api(cloud, f"/jobs/{job_id}")["status"] == "canceled"
    finally:
        faults_file.unlink()


def test_a_dead_letter_is_redriven_from_the_operations_view(cloud, page, screenshots, faults_file):
    faults_file.write_text("task_start always /chunk-000\n")
    s3 = cloud.client("s3")
    bucket = cloud.stack.refs["IngestBucket"]
    s3.upload_file(str(media("sample_portrait.mp4")), bucket, "console/dead.mp4")
    from chalicelib.domain.jobs import job_id_for
    job_id = job_id_for(bucket, "console/dead.mp4", s3.head_object(Bucket=bucket, Key="console/dead.mp4")["ETag"])
    wait_for(lambda: [d for d in api(cloud, "/dlq")["dead_letters"] if d["job_id"] == job_id], 120, "the dead letter")
    faults_file.unlink()
    page.goto(cloud.console_url + "#/ops")
    row = page.wait_for_selector(f'#dead tr:has(a[href="#/jobs/{job_id}"])')
    assert "injected fault" in row.inner_text()
    page.wait_for_selector('#alarms tr[data-alarm="vodpipe-console-dead-letters"] .badge.ALARM', timeout=60_000)
    assert page.locator('.card[data-queue="tasks_dlq"]').count() == 1
    page.screenshot(path=str(screenshots / "4-operations-dead-letter.png"), full_page=True)
    page.locator(f'#dead tr:has(a[href="#/jobs/{job_id}"]) button[data-redrive]').click()
    page.wait_for_selector(f'#dead-state:has-text("Redriven: job {job_id}")')
    page.wait_for_selector(f'#dead a[href="#/jobs/{job_id}"]', state="detached")
    wait_for(lambda: api(cloud, f"/jobs/{job_id}")["status"] == "complete", 120, "the redriven job")
    # the charts read the metrics the pipeline published (GetMetricData through the API)
    page.reload()
    page.wait_for_function("Number(document.querySelector('[data-chart=throughput]')?.dataset.points) > 0",
                           timeout=60_000)
    page.wait_for_function("Number(document.querySelector('[data-chart=latency]')?.dataset.points) > 0")
    page.screenshot(path=str(screenshots / "5-operations-after-redrive.png"), full_page=True)
    assert not page.errors, page.errors
