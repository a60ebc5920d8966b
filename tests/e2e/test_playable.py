"""Playable in seconds, end to end on the local cloud: an upload long enough for it starts with
a short first segment (0.5 s, the template's ``FirstChunkSeconds``) in a chunk of its own,
published before the rest; the chunk boundary stays invisible (every source frame once,
timestamps continuous, each segment opening on an IDR, IDRs at 0 s and every 2 s from 0.5 s,
read from the published segments with ffprobe); the job reports where its time to
playable went and when it became watchable. With a backlog of other jobs' later chunks, every
job's first chunk is taken before any later chunk (the fairness rule).
"""
from __future__ import annotations

import json
import subprocess
import urllib.request

import m3u8
import pytest

from tests import variants
from tests.conftest import looped_clip
from tests.e2e.conftest import quick_cloud, upload_and_wait

TIMEOUT = 300
JOBS = 2
#: seconds the late-picture upload's video starts after its sound: past the 0.5 s first segment
LATE = 1.0


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with quick_cloud(tmp_path_factory, "playable", "240") as c:
        yield c


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """flower.mp4 three times: 15.2 s, 455 frames."""
    return looped_clip(tmp_path_factory.mktemp("playable"), "flower.mp4", 2)


@pytest.fixture(scope="module")
def jobs(cloud, clip, tmp_path_factory):
    uploads = {f"clip-{n}.mp4": (clip, {}) for n in range(JOBS)}
    uploads["long-sound.mp4"] = (variants.long_sound(tmp_path_factory.mktemp("sound")), {"normalize-audio": "true"})
    uploads["late-picture.ts"] = (variants.late_picture(tmp_path_factory.mktemp("late"), clip, LATE), {})
    return upload_and_wait(cloud, "playable", uploads, TIMEOUT)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def packets(path, fields: str = "pts,flags") -> list[dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", f"packet={fields}",
                          "-of", "json", str(path)], capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)["packets"]


def frame_count(path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                          "stream=nb_read_packets", "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return int(out.strip())


def test_a_short_first_segment_in_a_chunk_of_its_own_and_an_invisible_boundary(jobs, clip, tmp_path):
    job = jobs["clip-0.mp4"]
    assert job["status"] == "complete", job["error"]
    chunks = sorted((t for t in job["tasks"] if t["kind"] == "chunk"), key=lambda t: t["name"])
    assert [(t["start"], t["end"]) for t in chunks][0] == (0.0, 0.5) and len(chunks) == 2
    variant = m3u8.load(job["outputs"]["variants"]["240p"]["url"])
    durations = [s.duration for s in variant.segments]
    assert durations[0] == pytest.approx(0.5, abs=0.04) and durations[1] == pytest.approx(6.0, abs=0.04)
    assert variant.target_duration == 6
    joined = tmp_path / "240p.ts"
    opened_on_idr = []
    with open(joined, "wb") as fh:
        for segment in variant.segments:
            data = fetch(segment.absolute_uri)
            part = tmp_path / "part.ts"
            part.write_bytes(data)
            opened_on_idr.append("K" in packets(part)[0]["flags"])
            fh.write(data)
    assert all(opened_on_idr), opened_on_idr
    # every source frame once, at its own time (the output timeline is source time + 1 s)
    published = sorted(int(p["pts"]) / 90000 - 1.0 for p in packets(joined))
    source = sorted(float(p["pts_time"]) for p in packets(clip, "pts_time"))
    assert len(published) == len(source) == frame_count(clip)
    assert max(abs(a - b) for a, b in zip(published, source)) < 0.002
    # the IDR grid starts at the short first segment's end: 0, 0.5, 2.5, 4.5 ... s (within a frame)
    idrs = sorted(int(p["pts"]) / 90000 - 1.0 for p in packets(joined) if "K" in p["flags"])
    expected = [0.0, *(0.5 + 2 * k for k in range(int((source[-1] - 0.5) // 2) + 1))]
    assert len(idrs) == len(expected) and max(abs(a - b) for a, b in zip(idrs, expected)) < 1 / 29.97, idrs


def test_a_picture_that_starts_late_still_gets_a_first_chunk_with_frames(jobs, clip, tmp_path):
    """The first decodable frame 1 s after the file's start, past a 0.5 s first segment: the
    first chunk reaches 0.5 s past that frame (a chunk of no frame would fail the job
    NO_DECODABLE_FRAMES), and every source frame is published once, at its own time."""
    job = jobs["late-picture.ts"]
    assert job["status"] == "complete", job["error"]
    first = next(t for t in job["tasks"] if t["name"] == "chunk-000")
    assert (first["start"], first["end"]) == (0.0, pytest.approx(LATE + 0.5, abs=0.01))
    variant = m3u8.load(job["outputs"]["variants"]["240p"]["url"])
    assert variant.segments[0].duration == pytest.approx(0.5, abs=0.04)  # its frames: from 1.0 to 1.5 s
    joined = tmp_path / "late.ts"
    joined.write_bytes(b"".join(fetch(s.absolute_uri) for s in variant.segments))
    published = sorted(int(p["pts"]) / 90000 - 1.0 for p in packets(joined))
    source = sorted(float(p["pts_time"]) for p in packets(clip, "pts_time"))
    assert len(published) == len(source)
    assert max(abs(a - (b + LATE)) for a, b in zip(published, source)) < 0.002


def test_the_job_says_where_its_time_to_playable_went(jobs):
    job = jobs["clip-0.mp4"]
    stages = job["time_to_playable"]
    assert all(stages[k] is not None and stages[k] >= 0 for k in ("to_ingest", "ingest", "to_first_task",
                                                                    "first_task_to_playable", "total"))
    assert stages["total"] == pytest.approx(sum(stages[k] for k in ("to_ingest", "ingest", "to_first_task",
                                                                    "first_task_to_playable")), abs=0.01)
    # within the last stage: the first chunk's own time, then what publishing waited for
    first = next(t for t in job["tasks"] if t["name"] == "chunk-000")
    assert stages["first_chunk"] > 0 and stages["publish"] >= 0
    assert stages["first_chunk"] + stages["publish"] <= stages["first_task_to_playable"] + 0.01
    assert first["completed_at"] <= job["playable_at"]
    assert job["playable_at"] <= job["watchable_at"] <= job["completed_at"]
    assert stages["watchable"] >= stages["total"]


def test_the_audios_first_seconds_make_a_job_playable_before_its_audio_task_ends(jobs, tmp_path):
    """A minute of 5.1 sound, measured then normalized (two passes), under a 240p picture: the
    audio task runs long after the first chunk; its segments are published as ffmpeg makes
    them, so the job is playable before the task ends, and the audio ends whole."""
    job = jobs["long-sound.mp4"]
    assert job["status"] == "complete", job["error"]
    audio = next(t for t in job["tasks"] if t["kind"] == "audio")
    first = next(t for t in job["tasks"] if t["name"] == "chunk-000")
    assert first["completed_at"] <= job["playable_at"] < audio["completed_at"], (job["playable_at"], audio)
    # the published audio: every segment, from the media itself, contiguous to the minute's end
    url = job["outputs"]["master_playlist"]["url"].rsplit("/", 1)[0] + "/audio/index.m3u8"
    playlist = m3u8.load(url)
    joined = tmp_path / "audio.ts"
    joined.write_bytes(b"".join(fetch(s.absolute_uri) for s in playlist.segments))
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pts",
                          "-of", "json", str(joined)], capture_output=True, text=True, timeout=60, check=True).stdout
    pts = sorted(int(p["pts"]) for p in json.loads(out)["packets"])
    assert {b - a for a, b in zip(pts, pts[1:])} == {1920}  # 1024 samples at 48 kHz, in 90 kHz ticks
    assert (pts[-1] + 1920) / 90000 - 1.0 == pytest.approx(60.0, abs=0.05)
