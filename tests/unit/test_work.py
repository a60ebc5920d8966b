"""The work estimate and its bound (chalicelib/domain/work.py), and the picture-size checks
made before any decode (chalicelib/domain/media.py, chalicelib/domain/ffmpeg_args.py)."""
import pytest

from chalicelib.config import Settings
from chalicelib.domain import ffmpeg_args, frame_size, work
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.ladder import plan
from chalicelib.domain.media import (MediaInfo, check_picture_size, decoder_max_pixels, parse_probe,
                                     refused_picture_size)

DEFAULT_LIMIT = Settings().max_job_vcpu_seconds


def source(width, height, fps, seconds, audio=True) -> MediaInfo:
    return MediaInfo(width, height, width, height, 0, seconds, fps, "h264", "yuv420p", "aac" if audio else None,
                     2 if audio else 0, 48000 if audio else None, "mov,mp4", None, None)


def estimate(info):
    p = plan(info)
    return work.estimate(info, p.videos, p.audio is not None)


def test_the_rates_reproduce_the_bench_they_come_from():
    """The README's bench: 588.4 CPU-s for 5 minutes of 1080p30 through the 5-rung ladder (the
    rates were derived from it and from decode/audio runs measured apart)."""
    bench = estimate(source(1920, 1080, 30, 300))
    assert bench.vcpu_seconds == pytest.approx(588.4, rel=0.01)
    assert bench.output_pixels == 3_737_760 * 30 * 300 and bench.frames == 5 * 30 * 300
    assert bench.decoded_pixels == 1920 * 1080 * 30 * 300 and bench.audio_seconds == 300
    assert bench.usd == pytest.approx(588.2 / 3600 * 0.04048, abs=1e-4)


def test_the_default_limit_passes_long_hd_and_refuses_hours_of_8k60():
    assert DEFAULT_LIMIT == 100_000
    two_hours_1080p60 = estimate(source(1920, 1080, 60, 2 * 3600))
    six_hours_1080p60 = estimate(source(1920, 1080, 60, 6 * 3600))
    six_hours_8k60 = estimate(source(7680, 4320, 60, 6 * 3600, audio=False))
    assert two_hours_1080p60.vcpu_seconds == pytest.approx(27_900, rel=0.01)
    work.check_work(two_hours_1080p60, DEFAULT_LIMIT)
    work.check_work(six_hours_1080p60, DEFAULT_LIMIT)
    with pytest.raises(PermanentError) as e:
        work.check_work(six_hours_8k60, DEFAULT_LIMIT)
    assert e.value.code == "TOO_MUCH_WORK"
    assert "282,833 vCPU-seconds" in e.value.message and "limit is 100,000" in e.value.message
    assert "MaxJobVcpuSeconds" in e.value.message


def test_frames_follow_each_renditions_rate_and_decode_the_sources():
    """A 120 fps source: renditions capped at 60 fps, but every source frame is decoded; an
    unknown rate counts as the cap."""
    fast = source(1280, 720, 120, 10, audio=False)
    p = plan(fast, (720, 360), max_frame_rate=60)
    est = work.estimate(fast, p.videos, False, max_frame_rate=60)
    assert est.frames == 2 * 600 and est.decoded_pixels == 1280 * 720 * 1200 and est.audio_seconds == 0
    unknown = source(1280, 720, 0, 10, audio=False)
    assert work.estimate(unknown, plan(unknown, (720,)).videos, False, 60).frames == 600


def test_a_picture_over_the_limit_is_refused_from_its_parameters():
    with pytest.raises(PermanentError) as e:
        check_picture_size(16000, 16000, 7680 * 4320)
    assert e.value.code == "TOO_MANY_PIXELS" and "16000x16000" in e.value.message
    assert "before decoding" in e.value.message
    check_picture_size(7680, 4320, 7680 * 4320, coded=(7680, 4352))  # alignment is not size
    with pytest.raises(PermanentError):
        check_picture_size(64, 64, 7680 * 4320, coded=(16000, 16000))  # a coded size far past the picture
    assert decoder_max_pixels(7680 * 4320) >= 7680 * 4352


def test_ffmpegs_refusals_of_a_picture_size_are_read_back():
    assert refused_picture_size(["[IMGUTILS @ 0x1] Picture size 30000x30000 is invalid"]) == (30000, 30000)
    assert refused_picture_size(["Picture size 2048x2000 exceeds specified max pixel count 1000000, see"]) == \
        (2048, 2000)
    assert refused_picture_size(["Invalid data found when processing input"]) is None


def test_the_chunk_graph_admits_only_the_probed_frame_size():
    info = parse_probe({"format": {"duration": "10"}, "streams": [
        {"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720, "avg_frame_rate": "30/1",
         "side_data_list": [{"rotation": -90}]}]})
    size = frame_size.frame_size_of(info.to_dict())
    assert size == (720, 1280), "autorotate runs before the graph: a 90-degree source arrives transposed"
    p = plan(info, (360,))
    args = ffmpeg_args.chunk_args("in.mp4", "out", p.videos, 0.0, 6.0, False, frame_size=size, max_pixels=41_472_000)
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:v:0]" + frame_size.frame_size_guard(720, 1280) + ",trim=")
    assert args[args.index("-max_pixels") + 1] == "41472000" and args.index("-max_pixels") < args.index("-i")
    line = "[Parsed_crop_0 @ 0x5] Invalid too big or non positive size for width '-640' or height '480'"
    assert frame_size.frame_size_change(line) == (640, 480)
    assert frame_size.frame_size_change("Error while decoding stream #0:0") is None
