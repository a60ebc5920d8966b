"""The probe model on real clips (ffprobe JSON of ../shared/media); on hand-written JSON:
tests/unit/test_probe_model.py."""
import pytest

from chalicelib.domain.errors import PermanentError
from chalicelib.domain.media import parse_probe
from tests.conftest import ffprobe_json, manifest


@pytest.mark.parametrize("name", [n for n, row in manifest().items() if row["container"] != "UNREADABLE"])
def test_probe_matches_manifest(name):
    row = manifest()[name]
    info = parse_probe(ffprobe_json(name))
    w, h = (int(x) for x in row["WxH"].split("x"))
    assert (info.width, info.height) == (w, h)
    assert abs(info.duration - float(row["duration_s"])) < 0.15
    assert info.has_audio == (row["audio"] != "none")
    assert 0 < info.frame_rate <= 60.5


def test_rotation_from_display_matrix_swaps_displayed_size():
    info = parse_probe(ffprobe_json("internal_emulator_transformer_output_270_rotated.mp4"))
    assert (info.width, info.height) == (1280, 720)
    assert info.rotation in (90, 270)
    assert (info.display_width, info.display_height) == (720, 1280)
    assert info.is_portrait and info.short_side == 720


def test_portrait_by_pixels():
    info = parse_probe(ffprobe_json("sample_portrait.mp4"))
    assert info.rotation == 0 and info.is_portrait and info.short_side == 720


def test_bogus_average_frame_rate_is_rejected():
    # sample.mkv reports avg_frame_rate 1000/1 for a 30 fps stream (MANIFEST notes)
    info = parse_probe(ffprobe_json("sample.mkv"))
    assert info.frame_rate <= 60


def test_variable_frame_rate_phone_capture_uses_average():
    info = parse_probe(ffprobe_json("mv_with_2_top_shots.mp4"))
    assert 29 < info.frame_rate < 31  # r_frame_rate says 120


def test_limits_are_enforced_with_readable_codes():
    from chalicelib.domain.media import check_limits
    info = parse_probe(ffprobe_json("flower.mp4"))  # 960x540, 5.05 s
    check_limits(info, 1_000_000, max_bytes=2_000_000, max_duration=10, max_pixels=960 * 540)
    for kwargs, code in (({"max_bytes": 10}, "FILE_TOO_LARGE"), ({"max_duration": 5}, "TOO_LONG"),
                         ({"max_pixels": 960 * 540 - 1}, "TOO_MANY_PIXELS")):
        limits = {"max_bytes": 2_000_000, "max_duration": 10, "max_pixels": 960 * 540, **kwargs}
        with pytest.raises(PermanentError) as e:
            check_limits(info, 1_000_000, **limits)
        assert e.value.code == code
