"""Picture facts and decisions (chalicelib/domain/picture.py, conversions.py) on probe JSON:
scan rules with idet counts, every display-matrix orientation, frame-rate decimation, the
colour path chosen for each kind of source, the filter order."""
from __future__ import annotations

from fractions import Fraction

import pytest

from chalicelib.domain.conversions import plan_picture, prefix_filters, scale_options, standard_frame_rate
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.media import parse_probe
from chalicelib.domain.picture import decide_scan


def probe(width=1920, height=1080, fps="25/1", **stream):
    """ffprobe-shaped JSON of one video stream."""
    video = {"codec_type": "video", "codec_name": "h264", "width": width, "height": height, "pix_fmt": "yuv420p",
             "avg_frame_rate": fps, "r_frame_rate": fps, **stream}
    return {"format": {"duration": "10.0", "format_name": "mov"}, "streams": [video]}


def matrix(a, b, c, d):
    """ffprobe's displaymatrix text for the 2x2 part (a, b; c, d)."""
    values = [a * 65536, b * 65536, 0, c * 65536, d * 65536, 0, 0, 0, 1 << 30]
    return "\n" + "".join(f"{r:08x}: {values[3 * r]:12d}{values[3 * r + 1]:12d}{values[3 * r + 2]:12d}\n" for r in range(3))


@pytest.mark.parametrize("flag,idet,expected", [
    ("tt", None, ("tff", "flag", "video")),
    ("bb", {"tff": 0, "bff": 30, "progressive": 2}, ("bff", "flag", "video")),
    ("tt", {"tff": 1, "bff": 0, "progressive": 30, "single_progressive": 30},
     ("progressive", "flag, idet found progressive frames", "video")),
    # multi-frame says progressive, but single frames comb in a film pattern: the flag stands
    ("tt", {"tff": 0, "bff": 0, "progressive": 30, "single_tff": 12, "single_progressive": 18}, ("tff", "flag", "video")),
    ("progressive", {"tff": 25, "bff": 0, "progressive": 0}, ("tff", "idet", "video")),
    (None, {"tff": 0, "bff": 28, "progressive": 2}, ("bff", "idet", "video")),
    (None, {"tff": 19, "bff": 8, "progressive": 0, "single_tff": 15, "single_bff": 9}, ("progressive", "idet", "video")),
    ("progressive", {"tff": 5, "bff": 0, "progressive": 3}, ("progressive", "flag", "video")),  # too few decided
    (None, {"tff": 0, "bff": 0, "progressive": 32, "single_progressive": 30}, ("progressive", "idet", "video")),
    # 3:2 pulldown: 2 frames in 5 combed, never 3 in a row
    ("progressive", {"tff": 0, "bff": 0, "progressive": 30, "single_tff": 12, "single_progressive": 18},
     ("tff", "idet, a film cadence", "film")),
])
def test_scan_from_flag_and_idet(flag, idet, expected):
    assert decide_scan(flag, idet) == expected


def test_film_cadence_is_deinterlaced_one_frame_per_frame():
    idet = {"tff": 0, "bff": 0, "progressive": 16, "single_tff": 6, "single_progressive": 10}
    info = parse_probe(probe(720, 480, fps="30000/1001", field_order="progressive", idet=idet))
    plan = plan_picture(info, (720, 480))
    assert plan.deinterlace == "tff" and not plan.field_rate
    assert prefix_filters(plan)[0] == "bwdif=mode=send_frame:parity=tff:deint=all"


def test_pixel_format_bit_depths():
    from chalicelib.domain.picture import bit_depth_of
    depths = {"nv12": 8, "nv16": 8, "yuv420p": 8, "yuvj420p": 8, "p010le": 10, "yuv420p10le": 10, "yuv420p9le": 9,
              "gray10le": 10, "yuv422p12be": 12, "rgb48le": 16, "p016le": 16}
    assert {name: bit_depth_of({"pix_fmt": name}) for name in depths} == depths


@pytest.mark.parametrize("signs,rotation,mirrored,filters,displayed", [
    ((1, 0, 0, 1), 0, False, [], (1920, 1080)),
    ((0, 1, -1, 0), 90, False, ["transpose=clock"], (1080, 1920)),
    ((-1, 0, 0, -1), 180, False, ["hflip", "vflip"], (1920, 1080)),
    ((0, -1, 1, 0), 270, False, ["transpose=cclock"], (1080, 1920)),
    ((-1, 0, 0, 1), 0, True, ["hflip"], (1920, 1080)),
    ((0, 1, 1, 0), 90, True, ["transpose=cclock_flip"], (1080, 1920)),
    ((1, 0, 0, -1), 180, True, ["vflip"], (1920, 1080)),
    ((0, -1, -1, 0), 270, True, ["transpose=clock_flip"], (1080, 1920)),
])
def test_every_display_matrix_orientation(signs, rotation, mirrored, filters, displayed):
    side = [{"side_data_type": "Display Matrix", "displaymatrix": matrix(*signs), "rotation": 0}]
    info = parse_probe(probe(side_data_list=side, color_space="bt709", color_transfer="bt709", color_primaries="bt709"))
    assert (info.picture.rotation, info.picture.mirrored) == (rotation, mirrored)
    assert (info.display_width, info.display_height) == displayed
    plan = plan_picture(info, displayed)
    assert prefix_filters(plan) == filters
    assert bool(plan.conversions) == bool(filters)


@pytest.mark.parametrize("fps,cap,expected", [
    (120, 60, Fraction(60)), (119.88, 60, Fraction(60000, 1001)), (240, 60, Fraction(60)), (100, 60, Fraction(50)),
    (90, 60, Fraction(30)), (50, 30, Fraction(25)), (60, 60, None), (59.94, 60, None), (30, 60, None),
    (60.1, 60, None), (60.5, 60, None), (61, 60, Fraction(60)),
])
def test_decimation_keeps_every_kth_frame_to_a_standard_rate(fps, cap, expected):
    assert standard_frame_rate(fps, cap) == expected


def test_interlaced_is_deinterlaced_first_then_turned_and_tone_mapped():
    side = [{"side_data_type": "Display Matrix", "displaymatrix": matrix(0, 1, -1, 0)}]
    info = parse_probe(probe(field_order="tt", pix_fmt="yuv420p10le", color_transfer="arib-std-b67",
                             color_primaries="bt2020", color_space="bt2020nc", side_data_list=side))
    plan = plan_picture(info, (1080, 1920))
    chain = prefix_filters(plan)
    assert chain[0] == "bwdif=mode=send_field:parity=tff:deint=all"
    assert chain[1] == "transpose=clock"
    assert chain[2] == "setparams=color_primaries=bt2020:color_trc=arib-std-b67:colorspace=bt2020nc:range=tv"
    assert chain[3].startswith("zscale=w=1080:h=1920:") and "t=linear" in chain[3]
    assert "tonemap=hable:desat=0:peak=10" in chain and chain[-1] == "format=yuv420p"
    assert plan.field_rate and "deinterlaced" in plan.conversions[0] and ": 50p)" in plan.conversions[0]


def test_odd_sized_hdr_is_cropped_even_before_zscale():
    info = parse_probe(probe(1279, 719, color_transfer="arib-std-b67", color_primaries="bt2020", color_space="bt2020nc",
                             pix_fmt="yuv420p10le"))
    chain = prefix_filters(plan_picture(info, (1278, 718)))
    assert chain[0] == "crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0" and chain[1].startswith("setparams=")


def test_decimation_grid_is_absolute_source_time():
    info = parse_probe(probe(fps="120/1", color_space="bt709"))
    plan = plan_picture(info, (1920, 1080))
    assert prefix_filters(plan) == ["fps=60"]
    assert prefix_filters(plan, 29.733333) == ["setpts=PTS+29.733333/TB", "fps=60", "settb=AVTB",
                                               "setpts=PTS-29.733333/TB"]
    assert plan.conversions == ("frame rate 120 -> 60 fps (1 frame in 2 kept)",)


def test_pq_peak_from_maxcll_then_mastering_display_then_nominal():
    pq = dict(color_transfer="smpte2084", color_primaries="bt2020", color_space="bt2020nc", pix_fmt="yuv420p10le")
    light = {"side_data_type": "Content light level metadata", "max_content": 4000, "max_average": 400}
    mastering = {"side_data_type": "Mastering display metadata", "max_luminance": "10000000/10000",
                 "min_luminance": "50/10000"}
    assert plan_picture(parse_probe(probe(**pq, side_data_list=[light, mastering])), (1920, 1080)).tone_map["peak"] == 4000
    info = parse_probe(probe(**pq, side_data_list=[mastering]))
    assert info.picture.hdr_format == "HDR10" and plan_picture(info, (1920, 1080)).tone_map["peak"] == 1000
    assert plan_picture(parse_probe(probe(**pq)), (1920, 1080)).tone_map["peak"] == 1000
    bogus = {**light, "max_content": 65535}  # not believed: the mastering display's maximum instead
    assert plan_picture(parse_probe(probe(**pq, side_data_list=[bogus, mastering])), (1920, 1080)).tone_map["peak"] == 1000


def test_sdr_colour_paths():
    sd = plan_picture(parse_probe(probe(720, 480, fps="30000/1001")), (720, 480))
    assert "in_color_matrix=bt601:out_color_matrix=bt709" in scale_options(sd) and not prefix_filters(sd)
    hd = plan_picture(parse_probe(probe()), (1920, 1080))
    assert hd.conversions == () and "in_range=tv:out_range=tv" in scale_options(hd)
    full = plan_picture(parse_probe(probe(color_range="pc", pix_fmt="yuvj420p")), (1920, 1080))
    assert "in_range=pc:out_range=tv" in scale_options(full)
    wide = plan_picture(parse_probe(probe(color_primaries="bt2020", color_space="bt2020nc",
                                          color_transfer="bt2020-10", pix_fmt="yuv420p10le")), (1920, 1080))
    assert wide.convert_from["primaries"] == "bt2020"
    assert any(f.startswith("zscale=") and "p=bt709" in f and "dither=ordered" in f for f in prefix_filters(wide))


def test_dolby_vision_records():
    def dovi(profile, compat, **tags):
        record = {"side_data_type": "DOVI configuration record", "dv_profile": profile, "dv_level": 6,
                  "dv_bl_signal_compatibility_id": compat}
        return parse_probe(probe(side_data_list=[record], pix_fmt="yuv420p10le", **tags))
    assert dovi(8, 1).picture.dynamic_range == "PQ"  # untagged base layer: the record says PQ
    assert dovi(8, 4, color_transfer="arib-std-b67").picture.hdr_format == "Dolby Vision 8.4 (HLG base layer)"
    assert dovi(9, 2).picture.dynamic_range == "SDR"
    assert dovi(7, 6).picture.dynamic_range == "PQ"  # the UHD Blu-ray base layer is HDR10
    rpu_only = parse_probe(probe(dovi_rpu=True, pix_fmt="yuv420p10le"))  # no record, untagged: profile 5
    assert rpu_only.picture.dynamic_range == "DV"
    profile5 = dovi(5, 0, color_transfer="smpte2084")
    assert profile5.picture.dynamic_range == "DV"
    with pytest.raises(PermanentError) as err:
        plan_picture(profile5, (1920, 1080))
    assert err.value.code == "UNSUPPORTED_DYNAMIC_RANGE"
