"""Ladder planning on real clips: never upscale, aspect ratio and rotation kept, even sizes."""
import pytest

from chalicelib.domain.ladder import plan, plan_video
from chalicelib.domain.media import parse_probe
from tests.conftest import ffprobe_json, manifest

READABLE = [n for n, row in manifest().items() if row["container"] != "UNREADABLE"]


@pytest.mark.parametrize("name", READABLE)
def test_every_clip_gets_a_valid_ladder(name):
    info = parse_probe(ffprobe_json(name))
    videos = plan_video(info, (1080, 720, 480, 360, 240))
    assert videos, "at least one rendition"
    src_aspect = info.display_width / info.display_height
    for r in videos:
        assert r.width % 2 == 0 and r.height % 2 == 0
        assert r.width <= info.display_width and r.height <= info.display_height, "never upscale"
        assert (r.height > r.width) == info.is_portrait or r.width == r.height
        # aspect kept within the rounding to even pixels
        assert abs(r.width / r.height - src_aspect) <= 2.5 / min(r.width, r.height) * src_aspect
        assert r.max_bitrate > r.video_bitrate > 0
    sizes = [r.width * r.height for r in videos]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)


def test_1080p_source_gets_the_default_ladder():
    info = parse_probe(ffprobe_json("bbb_2500ms.ts"))
    assert [(r.name, r.width, r.height) for r in plan_video(info, (1080, 720, 480, 360, 240))] == [
        ("1080p", 1920, 1080), ("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360), ("240p", 426, 240)]


def test_540p_source_yields_540p_and_below():
    info = parse_probe(ffprobe_json("flower.mp4"))
    assert [r.name for r in plan_video(info, (1080, 720, 480, 360, 240))] == ["540p", "480p", "360p", "240p"]
    assert plan_video(info, (1080, 720, 480, 360, 240))[0].width == 960


def test_rotated_source_plans_portrait_renditions():
    info = parse_probe(ffprobe_json("internal_emulator_transformer_output_270_rotated.mp4"))
    assert [(r.name, r.width, r.height) for r in plan_video(info, (1080, 720, 480))] == [
        ("720p", 720, 1280), ("480p", 480, 854)]


def test_source_below_every_rung_gets_one_even_rendition():
    info = parse_probe(ffprobe_json("bear-vp9-odd-dimensions.webm"))  # 161x121
    assert [(r.width, r.height) for r in plan_video(info, (1080, 720, 480, 360, 240))] == [(160, 120)]


def test_top_rung_caps_the_ladder():
    info = parse_probe(ffprobe_json("bbb_2500ms.ts"))
    assert [r.name for r in plan_video(info, (360, 240))] == ["360p", "240p"]


def test_frame_rate_is_capped_never_raised():
    """Above the cap, every k-th frame down to a standard rate (50 -> 25 under a 30 cap, not an
    uneven 30); at or under it, the source's own timing."""
    info = parse_probe(ffprobe_json("sowt-with-video.mov"))  # 50 fps
    assert all(r.frame_rate is None for r in plan_video(info, (360,), max_frame_rate=60))
    assert all(r.frame_rate == 25 for r in plan_video(info, (360,), max_frame_rate=30))


def test_audio_rendition_downmixes_surround_and_is_absent_without_audio():
    five_one = plan(parse_probe(ffprobe_json("bigbuckbunny.mp4")))
    assert five_one.audio.channels == 2 and five_one.audio.sample_rate == 48000
    assert plan(parse_probe(ffprobe_json("bear-vp9-odd-dimensions.webm"))).audio is None


def test_thumbnail_plan_covers_the_duration():
    p = plan(parse_probe(ffprobe_json("flower.mp4"))).thumbnails
    assert p.count * p.interval >= 5.0 and p.count == 6 and p.columns * p.rows >= p.count
    assert p.width == 160 and p.height == 90
