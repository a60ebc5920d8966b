"""``max_resolution`` on a real 2160p source (issue 23): a second of flower.mp4 scaled to
3840x2160 by ffmpeg, probed as ingest probes it (PyAV, ``media_probe.probe`` +
``parse_probe``), plans a 2160p rung with ``max_resolution`` ``2160p`` and tops out at 1080p
without it; the pipeline's x264 options make that rung at a level x264 picks itself, within
Apple's H.264 limit (High Profile, Level 5.2), and the playlist's codec string says it."""
import subprocess

import pytest

from chalicelib.config import Settings
from chalicelib.domain import ffmpeg_args, job_settings
from chalicelib.domain.ladder import plan
from chalicelib.domain.media import MediaInfo, check_limits, parse_probe
from chalicelib.domain.playlist import h264_codec_string
from chalicelib.domain.presets import presets
from chalicelib.tools import media_probe
from tests.conftest import media


@pytest.fixture(scope="module")
def uhd_clip(tmp_path_factory) -> str:
    """One second of flower.mp4 (960x540) scaled to 3840x2160."""
    path = tmp_path_factory.mktemp("uhd") / "uhd.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(media("flower.mp4")), "-t", "1",
                    "-vf", "scale=3840:2160", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", str(path)],
                   check=True, timeout=120)
    return str(path)


@pytest.fixture(scope="module")
def uhd_info(uhd_clip) -> MediaInfo:
    """The clip as ingest probes it (PyAV) under the default picture-size limit."""
    return parse_probe(media_probe.probe(uhd_clip, max_pixels=Settings().max_pixels))


def uhd_plan(info: MediaInfo, document: dict | None):
    """The video renditions ingest plans for ``info`` with the settings ``document``."""
    s = Settings()
    deployment = presets(s.ladder)
    preset = job_settings.parse(document, deployment).preset(deployment)
    return plan(info, preset.rungs, s.max_frame_rate, preset.native_rung, preset.exact).videos


def test_a_real_2160p_source_plans_a_2160p_rung_only_when_asked(uhd_info):
    s = Settings()
    check_limits(uhd_info, 1, s.max_bytes, s.max_duration, s.max_pixels)  # within the default limits
    assert (uhd_info.display_width, uhd_info.display_height) == (3840, 2160)
    for document, top in (({"max_resolution": "2160p"}, ("2160p", 3840, 2160)),
                          ({"max_resolution": "1440p"}, ("1440p", 2560, 1440)),
                          (None, ("1080p", 1920, 1080))):
        videos = uhd_plan(uhd_info, document)
        assert (videos[0].name, videos[0].width, videos[0].height) == top, document
        assert [r.name for r in videos][-5:] == ["1080p", "720p", "480p", "360p", "240p"]


def test_x264_picks_level_5_1_for_the_2160p_rung(uhd_clip, uhd_info, tmp_path):
    """Nine frames through the pipeline's own x264 options for the planned 2160p rendition:
    x264 is given no level and picks 5.1 (3840x2160 at 30 fps), below Apple's H.264 limit,
    and the SPS carries it into the multivariant playlist's CODECS (avc1.640033)."""
    top = uhd_plan(uhd_info, {"max_resolution": "2160p"})[0]
    assert (top.name, top.video_bitrate) == ("2160p", 12_900_000)
    out = tmp_path / "2160p.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", uhd_clip, "-frames:v", "9", "-map", "0:v",
                    *ffmpeg_args.x264_options(top), str(out)], check=True, timeout=120)
    level = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=profile,level",
                            "-of", "csv=p=0", str(out)], capture_output=True, text=True, check=True).stdout.split()
    assert set(level) == {"High,51"}  # MPEG-TS: listed once per program and stream
    assert h264_codec_string(out.read_bytes()) == "avc1.640033"
