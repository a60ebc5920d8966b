"""Real-world pictures end to end on the local cloud: an HLG phone-style clip, a 1080i25 broadcast
clip, a mirrored clip and a Dolby Vision profile 5 file dropped into the ingest bucket. The job
resource says what the source is and what was done; the published segments and poster are
checked from their own pixels, tags and ``idet``, never through our playlists' claims.
"""
from __future__ import annotations

import subprocess
import urllib.request

import av
import numpy
import pytest

from tests import variants
from tests.conftest import media
from tests.e2e.conftest import quick_cloud, upload_and_wait
from tests.media.test_pictures import REFERENCE, assert_bt709, frames_rgb, idet, saturation

TIMEOUT = 240


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with quick_cloud(tmp_path_factory, "pictures", "540,360") as c:
        yield c


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("variants")
    return {"hlg.mp4": variants.hdr(folder, "arib-std-b67"), "interlaced.mp4": variants.interlaced(folder),
            "mirrored.mp4": media("sample_rotate_and_reflect.mp4"), "dv5.mov": variants.dolby_vision_profile_5(folder)}


@pytest.fixture(scope="module")
def jobs(cloud, sources):
    return upload_and_wait(cloud, "pictures", {name: (path, {}) for name, path in sources.items()}, TIMEOUT)


def download_top(job, folder):
    """The top rendition's segments joined into one MPEG-TS file, fetched over HTTP from the
    rendition's media playlist (its segment list only: the segments are checked themselves)."""
    name = job["renditions"][0]["name"]
    url = job["outputs"]["variants"][name]["url"]
    base = url.rsplit("/", 1)[0]
    with urllib.request.urlopen(url, timeout=10) as response:
        lines = [ln for ln in response.read().decode().splitlines() if ln and not ln.startswith("#")]
    path = folder / f"{job['job_id']}-{name}.ts"
    with open(path, "wb") as out:
        for line in lines:
            with urllib.request.urlopen(line if "://" in line else f"{base}/{line}", timeout=10) as response:
                out.write(response.read())
    return path


def test_hlg_upload_is_tone_mapped_and_says_so(jobs, sources, tmp_path):
    job = jobs["hlg.mp4"]
    assert job["status"] == "complete", job["error"]
    picture = job["probe"]["picture"]
    assert (picture["dynamic_range"], picture["transfer"], picture["primaries"], picture["bit_depth"]) == \
        ("HLG", "arib-std-b67", "bt2020", 10)
    assert any(c.startswith("tone-mapped HLG -> BT.709") for c in job["conversions"]), job["conversions"]
    top = download_top(job, tmp_path)
    assert_bt709(top)
    width, height = job["renditions"][0]["width"], job["renditions"][0]["height"]
    mine = frames_rgb(top, 1)[0]
    ref = frames_rgb(sources["hlg.mp4"], 1, REFERENCE, (width, height))[0]
    assert saturation(mine) == pytest.approx(saturation(ref), abs=0.03)
    poster = tmp_path / "poster.jpg"
    with urllib.request.urlopen(job["outputs"]["poster"]["url"], timeout=10) as response:
        poster.write_bytes(response.read())
    # the JPEG decoded as every browser decodes JPEG (full-range BT.601) has the segment's colours
    jpeg = frames_rgb(poster, 1)[0]
    assert saturation(jpeg) == pytest.approx(saturation(ref), abs=0.04), "poster tone-mapped too"


def test_interlaced_upload_is_deinterlaced(jobs):
    job = jobs["interlaced.mp4"]
    assert job["status"] == "complete", job["error"]
    assert job["probe"]["picture"]["scan"] == "tff" and job["probe"]["picture"]["field_order"] == "tt"
    assert any(c.startswith("deinterlaced (bwdif") for c in job["conversions"])
    assert all(r["frame_rate"] == pytest.approx(50, abs=0.1) for r in job["renditions"] if r["kind"] == "video")


def test_interlaced_outputs_are_progressive(jobs, tmp_path):
    top = download_top(jobs["interlaced.mp4"], tmp_path)
    counts = idet(top)
    assert counts["progressive"] >= 0.9 * sum(counts.values()), counts
    frames = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                             "stream=nb_read_frames", "-of", "csv=p=0", str(top)], capture_output=True, text=True,
                            check=True).stdout.split()[0]
    assert int(frames) == 50


def test_mirrored_upload_is_shown_as_its_display_matrix_says(jobs, tmp_path):
    job = jobs["mirrored.mp4"]
    assert job["status"] == "complete", job["error"]
    assert job["probe"]["picture"]["mirrored"] is True and job["probe"]["rotation"] == 90
    top = download_top(job, tmp_path)
    mine = frames_rgb(top, 1)[0]
    with av.open(str(media("sample_rotate_and_reflect.mp4"))) as container:
        coded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    transposed = numpy.ascontiguousarray(coded.transpose(1, 0, 2))
    height, width = mine.shape[:2]
    by_hand = frames_rgb_of(transposed, width, height, tmp_path)
    assert numpy.abs(mine - by_hand).mean() < numpy.abs(mine - by_hand[:, ::-1]).mean() / 3


def frames_rgb_of(rgb, width, height, folder):
    """An RGB array scaled to ``width`` x ``height`` by ffmpeg (as the renditions are)."""
    raw = folder / "hand.rgb"
    raw.write_bytes(rgb.tobytes())
    out = subprocess.run(["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                          f"{rgb.shape[1]}x{rgb.shape[0]}", "-i", str(raw), "-vf", f"scale={width}:{height}",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return numpy.frombuffer(out, numpy.uint8).reshape(height, width, 3).astype(float)


def test_dolby_vision_profile_5_fails_with_its_reason(jobs):
    job = jobs["dv5.mov"]
    assert job["status"] == "failed" and job["error"]["code"] == "UNSUPPORTED_DYNAMIC_RANGE"
    assert "profile 5" in job["error"]["message"]
