"""Subtitles and captions end to end on the local cloud: an embedded subtitle track (mov_text
made with FFmpeg from an SRT, and the corpus's Matroska SubRip track) and sidecar caption
files (an SRT in the ingest bucket, a WebVTT over HTTP) become WebVTT subtitle renditions
whose cues keep their text and timing, checked by reading the published files with FFmpeg
against the source files; each segment's X-TIMESTAMP-MAP is checked against the video
segments' own first PTS. A broken caption file fails its job ``INVALID_CAPTIONS`` naming the
file and line.
"""
from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request

import m3u8
import pytest

from tests import variants
from tests.conftest import media
from tests.e2e.conftest import quick_cloud, upload_and_wait
from tests.e2e.test_job_settings import NoRedirect
from tests.rawserver import RawServer, sending

TIMEOUT = 240
ENGLISH_SRT = """1
00:00:00,200 --> 00:00:01,000
[soft music]

2
00:00:02,500 --> 00:00:03,500
A flower opens & <b>blooms</b>.
"""
SPANISH_VTT = """WEBVTT

NOTE made by the test

intro
00:00:01.000 --> 00:00:02.500 line:0
Una flor.
"""
#: Text a WebVTT file must escape: an arrow, an ampersand, a less-than sign.
TRICKY_SRT = """1
00:00:00,500 --> 00:00:01,500
He said --> go

2
00:00:02,000 --> 00:00:03,000
x & y < z
"""
#: Its only cue lies past the 5 s clip: the track is cut empty.
LATE_SRT = """1
00:01:40,000 --> 00:01:41,000
Too late.
"""
#: A timing line with one arrow missing its '>' on line 6.
BROKEN_SRT = ENGLISH_SRT.replace("00:00:02,500 --> 00:00:03,500", "00:00:02,500 -- 00:00:03,500")


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with quick_cloud(tmp_path_factory, "text", "240") as c:
        yield c


@pytest.fixture(scope="module")
def jobs(cloud, tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    s3, bucket = cloud.client("s3"), cloud.stack.refs["IngestBucket"]
    s3.put_object(Bucket=bucket, Key="text/captions/en.srt", Body=ENGLISH_SRT.encode())
    s3.put_object(Bucket=bucket, Key="text/captions/broken.srt", Body=BROKEN_SRT.encode())
    body = SPANISH_VTT.encode()
    server = RawServer(sending(b"HTTP/1.1 200 OK\r\nContent-Type: text/vtt\r\nContent-Length: %d\r\n\r\n" % len(body),
                               body), lifetime=TIMEOUT + 60)
    captions = [{"source": f"s3://{bucket}/text/captions/en.srt", "language": "eng", "kind": "captions"},
                {"source": f"http://127.0.0.1:{server.port}/subs/es.vtt", "language": "es"}]
    broken = [{"source": f"s3://{bucket}/text/captions/broken.srt", "language": "en"}]
    found = upload_and_wait(cloud, "text", {
        "embedded.mp4": (variants.with_subtitles(folder), {"segment-duration": "2", "captions": json.dumps(captions)}),
        "sample_with_srt.mkv": (media("sample_with_srt.mkv"), {}),
        "tricky.mkv": (variants.with_subtitles(folder, TRICKY_SRT, "eng", "subrip", name="-tricky"), {}),
        "empty-track.mp4": (variants.with_subtitles(folder, LATE_SRT, "ger", name="-late"), {}),
        "broken.mp4": (media("flower.mp4"), {"captions": json.dumps(broken)})}, TIMEOUT)
    server.close()
    return found


def published_cues(base: str, playlist_uri: str, folder) -> tuple[list[int], list[tuple[float, float, str]]]:
    """The X-TIMESTAMP-MAP MPEG-TS values and the cues (read by FFmpeg, repeated cues once) of
    a subtitle rendition's published WebVTT segments."""
    playlist = m3u8.loads(fetch(f"{base}/{playlist_uri}").decode())
    maps, cues = [], []
    for index, segment in enumerate(playlist.segments):
        text = fetch(f"{base}/{playlist_uri.rsplit('/', 1)[0]}/{segment.uri}").decode()
        maps.append(int(re.search(r"X-TIMESTAMP-MAP=MPEGTS:(\d+),LOCAL:00:00:00\.000", text).group(1)))
        path = folder / f"segment-{index}.vtt"
        path.write_text(text.replace(re.search(r"X-TIMESTAMP-MAP=[^\n]*\n", text).group(0), ""))
        if "-->" in text:
            cues += [c for c in variants.subtitle_cues(path) if c not in cues]
    return maps, cues


def first_video_pts(base: str, playlist_uri: str) -> int:
    """The 90 kHz PTS of the first video frame of a rendition's first segment (ffprobe)."""
    playlist = m3u8.loads(fetch(f"{base}/{playlist_uri}").decode())
    url = f"{base}/{playlist_uri.rsplit('/', 1)[0]}/{playlist.segments[0].uri}"
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts",
                          "-of", "csv=p=0", url], capture_output=True, text=True, timeout=60, check=True).stdout
    return min(int(line.strip(" ,")) for line in out.split() if line.strip(" ,").isdigit())


def subtitle_media(master: m3u8.M3U8) -> list[m3u8.Media]:
    return [m for m in master.media if m.type == "SUBTITLES"]


def test_embedded_and_sidecar_subtitles_become_webvtt_renditions(cloud, jobs, tmp_path):
    job = jobs["embedded.mp4"]
    assert job["status"] == "complete", job["error"]
    master_url = job["outputs"]["master_playlist"]["url"]
    base = master_url.rsplit("/", 1)[0]
    master = m3u8.loads(fetch(master_url).decode())
    tracks = subtitle_media(master)
    assert [(m.language, m.name, m.default, m.autoselect, m.forced) for m in tracks] == [
        ("fr", "French", "NO", "YES", "NO"), ("en", "English (captions)", "NO", "YES", "NO"),
        ("es", "Spanish", "NO", "YES", "NO")]
    assert tracks[1].characteristics == ("public.accessibility.transcribes-spoken-dialog,"
                                         "public.accessibility.describes-music-and-sound")
    assert len({m.group_id for m in tracks}) == 1
    assert all(v.stream_info.subtitles == tracks[0].group_id and v.stream_info.closed_captions == "NONE"
               for v in master.playlists)
    video_pts = first_video_pts(base, master.playlists[0].uri)
    (tmp_path / "en.srt").write_text(ENGLISH_SRT)
    (tmp_path / "es.vtt").write_text(SPANISH_VTT)
    # what FFmpeg reads from each source file: the embedded track, the SRT, the WebVTT
    sources = [variants.subtitle_cues(variants.with_subtitles(tmp_path)), variants.subtitle_cues(tmp_path / "en.srt"),
               variants.subtitle_cues(tmp_path / "es.vtt")]
    assert [len(cues) for cues in sources] == [3, 2, 1]
    for track, expected in zip(tracks, sources):
        folder = tmp_path / track.uri.split("/")[0]
        folder.mkdir()
        maps, cues = published_cues(base, track.uri, folder)
        assert len(maps) == 3  # 5 s on a 2 s grid
        assert set(maps) == {video_pts}, (maps, video_pts)  # cue time 0 is the video's first frame
        assert cues == expected, track.name
    # the whole file of each language beside the MP4s, as FFmpeg reads it
    whole = job["outputs"]["subtitles"]
    assert sorted((v["language"], v["label"]) for v in whole.values()) == [
        ("en", "English (captions)"), ("es", "Spanish"), ("fr", "French")]
    path = tmp_path / "whole.vtt"
    path.write_bytes(fetch(whole["subtitles"]["url"]))
    assert variants.subtitle_cues(path) == sources[0]
    # GET /jobs/{id}/renditions/subtitles_2.vtt redirects to the whole file
    with pytest.raises(urllib.error.HTTPError) as redirect:
        urllib.request.build_opener(NoRedirect).open(
            f"{cloud.api_url}/jobs/{job['job_id']}/renditions/subtitles_2.vtt", timeout=10)
    assert redirect.value.code == 302 and redirect.value.headers["Location"] == whole["subtitles_2"]["url"]


def test_the_corpus_subrip_track_keeps_its_cue(jobs, tmp_path):
    job = jobs["sample_with_srt.mkv"]
    assert job["status"] == "complete", job["error"]
    assert [(t["codec"], t["language"]) for t in job["probe"]["subtitle_tracks"]] == [("srt", "en")]
    master_url = job["outputs"]["master_playlist"]["url"]
    (track,) = subtitle_media(m3u8.loads(fetch(master_url).decode()))
    assert (track.language, track.name) == ("en", "Subs Label")
    _, cues = published_cues(master_url.rsplit("/", 1)[0], track.uri, tmp_path)
    assert cues == variants.subtitle_cues(media("sample_with_srt.mkv")) == [(0.0, 1.234, "This is the first subtitle.")]


def test_a_broken_caption_file_fails_the_job_naming_file_and_line(jobs):
    job = jobs["broken.mp4"]
    assert job["status"] == "failed"
    assert job["error"]["code"] == "INVALID_CAPTIONS"
    assert job["error"]["message"].startswith("broken.srt, line 6:"), job["error"]
    assert job["tasks"] == []  # refused at ingest: nothing was encoded


def test_a_source_track_needing_escapes_keeps_its_text(jobs, tmp_path):
    job = jobs["tricky.mkv"]
    assert job["status"] == "complete", job["error"]
    master_url = job["outputs"]["master_playlist"]["url"]
    (track,) = subtitle_media(m3u8.loads(fetch(master_url).decode()))
    _, cues = published_cues(master_url.rsplit("/", 1)[0], track.uri, tmp_path)
    source = variants.subtitle_cues(variants.with_subtitles(tmp_path, TRICKY_SRT, "eng", "subrip", name="-tricky"))
    assert cues == source == [(0.5, 1.5, "He said --> go"), (2.0, 3.0, "x & y < z")]


def test_an_empty_source_track_is_an_empty_rendition_not_a_failure(jobs):
    job = jobs["empty-track.mp4"]
    assert job["status"] == "complete", job["error"]
    (text,) = [r for r in job["renditions"] if r["kind"] == "text"]
    assert (text["language"], text["cues"]) == ("de", 0)
