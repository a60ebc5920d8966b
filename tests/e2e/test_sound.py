"""Real-world sound end to end on the local cloud: a source with two audio languages becomes two
audio renditions in one group, each carrying its own track; a quiet and a loud source with
``normalize_audio`` come out at -16 LUFS within 1 LU with the true peak at or under -1 dBTP,
measured with FFmpeg's ``ebur128`` on the published segments, not from our report.
"""
from __future__ import annotations

import re
import urllib.request

import pytest

from tests import variants
from tests.e2e.conftest import quick_cloud, upload_and_wait

TIMEOUT = 240


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with quick_cloud(tmp_path_factory, "sound", "240") as c:
        yield c


@pytest.fixture(scope="module")
def jobs(cloud, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sound")
    return upload_and_wait(cloud, "sound", {
        "two-languages.mp4": (variants.two_languages(folder), {}),
        "quiet.mp4": (variants.at_loudness(folder, -8), {"normalize-audio": "true"}),
        "loud.mp4": (variants.at_loudness(folder, 24), {"normalize-audio": "-16"})}, TIMEOUT)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def rendition_file(job: dict, name: str, folder) -> object:
    """The audio rendition ``name``'s segments joined, fetched over HTTP from its media playlist."""
    url = job["outputs"]["variants"][name]["url"]
    base = url.rsplit("/", 1)[0]
    lines = [ln for ln in fetch(url).decode().splitlines() if ln and not ln.startswith("#")]
    path = folder / f"{job['job_id']}-{name}.ts"
    path.write_bytes(b"".join(fetch(ln if "://" in ln else f"{base}/{ln}") for ln in lines))
    return path


def media_tags(master: str) -> list[dict[str, str]]:
    """The attributes of every EXT-X-MEDIA line of a multivariant playlist."""
    return [dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]))
            for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:")]


def test_every_audio_track_becomes_a_rendition_with_its_language(jobs, tmp_path):
    job = jobs["two-languages.mp4"]
    assert job["status"] == "complete", job["error"]
    assert [(t["language"], t["default"], t["describes_video"]) for t in job["probe"]["audio_tracks"]] == \
        [("en", True, False), ("es", False, True)]
    master = fetch(job["outputs"]["master_playlist"]["url"]).decode()
    tags = media_tags(master)
    assert [(t["LANGUAGE"], t["NAME"], t["DEFAULT"], t["AUTOSELECT"]) for t in tags] == [
        ('"en"', '"English"', "YES", "YES"), ('"es"', '"Spanish (audio description)"', "NO", "YES")]
    assert "CHARACTERISTICS" not in tags[0] and tags[1]["CHARACTERISTICS"] == '"public.accessibility.describes-video"'
    assert len({t["GROUP-ID"] for t in tags}) == 1
    assert all('AUDIO="audio"' in line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF"))
    # each rendition carries its own track: English is the 440 Hz one, Spanish the 880 Hz one
    assert variants.dominant_frequency(rendition_file(job, "audio", tmp_path)) == pytest.approx(440, abs=5)
    assert variants.dominant_frequency(rendition_file(job, "audio_1", tmp_path)) == pytest.approx(880, abs=5)


@pytest.mark.parametrize("key", ["quiet.mp4", "loud.mp4"])
def test_normalized_loudness_is_on_target(jobs, tmp_path, key):
    job = jobs[key]
    assert job["status"] == "complete", job["error"]
    (audio,) = [r for r in job["renditions"] if r["kind"] == "audio"]
    before = audio["loudness_in"]["integrated_lufs"]
    assert before < -40 if key == "quiet.mp4" else before > -13, audio["loudness_in"]
    measured = variants.measured_loudness(rendition_file(job, "audio", tmp_path))
    assert measured["integrated"] == pytest.approx(-16, abs=1.0), measured
    assert measured["true_peak"] <= -1.0, measured
    assert audio["loudness_out"]["integrated_lufs"] == pytest.approx(measured["integrated"], abs=0.5)
