"""Picture sizes a small file can ask for (issue 22), against real FFmpeg: the ingest probe
(PyAV) refuses a picture over the limit from the stream's parameters, before decoding it; a
chunk run stops at the first frame that is not the probed size (``FRAME_SIZE_CHANGED``) and
never allocates a frame over the decoders' cap; every real clip still passes both."""
import subprocess
import sys

import pytest

from chalicelib.config import Settings
from chalicelib.domain import ffmpeg_args, frame_size
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.ladder import VideoRendition
from chalicelib.domain.media import decoder_max_pixels, parse_probe
from chalicelib.services.chunk_task import check_frame_size
from chalicelib.tools import media_probe
from chalicelib.tools.ffmpeg import FfmpegProcess, check
from tests.conftest import ROOT, manifest, media
from tests.hostile import huge_still, size_change_clip

MAX_PIXELS = Settings().max_pixels  # 7680 x 4320
#: clips every stage reads (the broken ones fail earlier, on purpose)
DECODABLE = [n for n, row in manifest().items()
             if row["container"] != "UNREADABLE" and row["decode_check"].startswith("ffmpeg rc=0")
             and row["vcodec"] and not n.startswith("broken_")]
SMALL = VideoRendition("small", 160, 120, 200_000, 300_000, 400_000, None)

PEAK = """
import sys
from chalicelib.tools import media_probe
try:
    media_probe.probe(sys.argv[1], **({"max_pixels": int(sys.argv[2])} if len(sys.argv) > 2 else {}))
    print("probed", media_probe._last.get(sys.argv[1]))
except Exception as e:
    print(getattr(e, "code", type(e).__name__), e)
# VmHWM: this process image's own peak (reset by exec; ru_maxrss would carry the forking
# pytest process's size over)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) // 1024)
"""


def probe_peak(path, *args) -> tuple[str, int]:
    """(outcome, peak resident MB) of one probe in a fresh process."""
    out = subprocess.run([sys.executable, "-c", PEAK, str(path), *map(str, args)], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip().splitlines()
    return out[0], int(out[-1])


def test_a_huge_still_is_refused_from_its_header_without_decoding(tmp_path):
    """A 1 MB MJPEG of 16000x16000 grey: before, the probe decoded it (a 256 MB picture) and
    then refused it; now the stream's parameters refuse it and nothing is allocated."""
    still = huge_still(tmp_path / "still.avi", 16000, 16000)
    assert still.stat().st_size < 1_100_000
    decoded, decoded_peak = probe_peak(still)  # unchecked, as the probe ran before
    assert decoded == "probed True" and decoded_peak > 250, (decoded, decoded_peak)
    refused, refused_peak = probe_peak(still, MAX_PIXELS)
    assert refused.startswith("TOO_MANY_PIXELS") and "16000x16000" in refused and "before decoding" in refused
    assert refused_peak < decoded_peak - 200, (refused_peak, decoded_peak)


def test_a_picture_past_ffmpegs_own_limit_is_too_many_pixels_not_invalid_dimensions(tmp_path):
    """30000x30000: FFmpeg itself refuses to allocate it ("Picture size ... is invalid"), which
    left the stream without a size (INVALID_DIMENSIONS); the refusal is read as the size."""
    still = huge_still(tmp_path / "still30k.avi", 30000, 30000)
    with pytest.raises(PermanentError) as e:
        media_probe.probe(str(still), max_pixels=MAX_PIXELS)
    assert e.value.code == "TOO_MANY_PIXELS" and "30000x30000" in e.value.message


@pytest.mark.parametrize("name", DECODABLE)
def test_every_clip_passes_the_picture_checks(name, tmp_path):
    """The ingest probe with the limit reads every real clip as before, and a chunk run with
    the guard and the decoders' cap encodes it (rotated, odd-sized, 10-bit, VFR included)."""
    path = str(media(name))
    plain = media_probe.probe(path)
    checked = media_probe.probe(path, max_pixels=MAX_PIXELS)
    assert checked == plain
    try:
        info = parse_probe(checked)
    except PermanentError:  # no video stream: nothing to encode
        return
    size = frame_size.frame_size_of(info.to_dict())
    (tmp_path / SMALL.name).mkdir()
    res = FfmpegProcess().run(ffmpeg_args.chunk_args(path, str(tmp_path), [SMALL], 0.0, info.duration, True,
                                                     quality_metrics=(), frame_size=size,
                                                     max_pixels=decoder_max_pixels(MAX_PIXELS)),
                              info.duration, measure_quality=True)
    check_frame_size(res, size, MAX_PIXELS)
    check(res, name)
    assert list((tmp_path / SMALL.name).glob("gop_*.ts")), name


def chunk_run(src, out, start, size, max_pixels=MAX_PIXELS, last=True):
    (out / SMALL.name).mkdir(parents=True, exist_ok=True)
    return FfmpegProcess().run(ffmpeg_args.chunk_args(str(src), str(out), [SMALL], start, 4.0, last,
                                                      quality_metrics=(), frame_size=size,
                                                      max_pixels=decoder_max_pixels(max_pixels) if max_pixels else None),
                               4.0 - start, measure_quality=True)


def test_a_mid_stream_size_change_fails_the_chunk_with_frame_size_changed(tmp_path):
    clip = size_change_clip(tmp_path / "change.ts")  # 2 s of 320x240, then 2 s of 640x480
    size = frame_size.frame_size_of(parse_probe(media_probe.probe(str(clip), max_pixels=MAX_PIXELS)).to_dict())
    assert size == (320, 240), "the probe sees the first size only"
    # before: the scale filters reinit silently and the run encodes both sizes, exit 0
    unguarded = chunk_run(clip, tmp_path / "unguarded", 0.0, None, None)
    assert unguarded.returncode == 0 and "640" not in unguarded.stderr
    # now: the run stops at the first 640x480 frame, and the task fails with a readable code
    res = chunk_run(clip, tmp_path / "guarded", 0.0, size)
    assert res.returncode == 1 and res.out_time < 3.0, (res.returncode, res.out_time)
    with pytest.raises(PermanentError) as e:
        check_frame_size(res, size, MAX_PIXELS)
    assert e.value.code == "FRAME_SIZE_CHANGED"
    assert "probed at 320x240, then a frame of 640x480" in e.value.message
    # a chunk that starts after the change fails at its first frame
    later = chunk_run(clip, tmp_path / "later", 2.0, size)
    with pytest.raises(PermanentError) as e:
        check_frame_size(later, size, MAX_PIXELS)
    assert e.value.code == "FRAME_SIZE_CHANGED" and "640x480" in e.value.message


def test_a_later_frame_over_the_limit_is_never_allocated(tmp_path):
    """320x240, then 2000x2000 frames, under a 1-megapixel limit: the decoders refuse the big
    pictures before allocating them (their cap is the limit x 1.25 for alignment), and the
    task fails FRAME_SIZE_CHANGED naming the size."""
    clip = size_change_clip(tmp_path / "bomb.ts", then="2000x2000", seconds=1.0)
    res = chunk_run(clip, tmp_path / "out", 0.0, (320, 240), max_pixels=1_000_000)
    assert "exceeds specified max pixel count" in res.stderr
    with pytest.raises(PermanentError) as e:
        check_frame_size(res, (320, 240), 1_000_000)
    assert e.value.code == "FRAME_SIZE_CHANGED" and "2048x2000" in e.value.message  # the decoder's aligned size
