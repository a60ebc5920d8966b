"""Real-world pictures through the worker's own ffmpeg arguments (``ffmpeg_args.chunk_args`` with
the job's ``conversions.PicturePlan``), probed as ingest probes them (PyAV), checked from the
decoded output pixels: HLG, PQ and Dolby Vision tone-mapped, interlaced deinterlaced, mirrored
shown as the display matrix says, full range and 10 bits brought to 8-bit limited range, 120 fps
decimated evenly, every rendition signalled BT.709.

GIVEN a corpus clip or a variant made from one (``tests.variants``) WHEN one chunk run encodes
it THEN the output's pixels, timestamps and tags are what a viewer should get."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import av
import numpy
import pytest

from chalicelib.domain import ffmpeg_args, frame_size
from chalicelib.domain.chunks import plan_chunks
from chalicelib.domain.conversions import plan_picture
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.ladder import plan
from chalicelib.domain.media import parse_probe
from chalicelib.tools import media_probe
from tests import variants
from tests.conftest import media, segments_of_run

def reference(peak: float = 1000.0) -> str:
    """The documented tone mapping (docs/pictures.md) written by hand for ffmpeg, independent of
    the pipeline's code: linear light (100 cd/m² = 1), BT.709 primaries, hable with the peak
    ``peak`` cd/m², back to BT.709 limited range."""
    return (f"zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=hable:desat=0:peak={peak / 100:g},"
            "zscale=t=bt709:m=bt709:r=tv,format=yuv420p")


REFERENCE = reference()


def encode(src: Path, out: Path, rungs=(1080, 720, 480, 360, 240), max_frame_rate: float = 60.0):
    """Probe ``src`` as ingest does, plan it, encode it as one chunk to every rendition.
    Returns (info, renditions, picture plan, {rendition name: joined .ts path})."""
    info = parse_probe(media_probe.probe(str(src)))
    ladder = plan(info, rungs, max_frame_rate)
    top = ladder.videos[0]
    picture = plan_picture(info, (top.width, top.height), max_frame_rate)
    for r in ladder.videos:
        (out / r.name).mkdir(parents=True, exist_ok=True)
    args = ffmpeg_args.chunk_args(str(src), str(out), ladder.videos, 0.0, info.duration, True,
                                  frame_rate=info.frame_rate or 30, picture=picture,
                                  frame_size=frame_size.frame_size_of(info.to_dict(), autorotate=False))
    variants.ffmpeg(*args)
    joined = {}
    for r in ladder.videos:
        target = out / f"{r.name}.ts"
        target.write_bytes(b"".join(p.read_bytes() for p in sorted((out / r.name).glob("gop_*.ts"))))
        joined[r.name] = target
    return info, ladder.videos, picture, joined


def frames_rgb(path: Path, count: int = 5, vf: str | None = None, size: tuple[int, int] | None = None) -> list:
    """The first ``count`` frames of ``path`` as RGB arrays (ffmpeg decodes with the colour tags
    of the stream; ``vf`` filters first; ``size`` scales last)."""
    chain = ",".join(x for x in (vf, f"scale={size[0]}:{size[1]}" if size else None) if x)
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", str(count), *(["-vf", chain] if chain else []),
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                       "stream=width,height", "-of", "json", str(path)],
                                      capture_output=True, check=True).stdout)["streams"][0]
    width, height = size or (probe["width"], probe["height"])
    pixels = numpy.frombuffer(raw, numpy.uint8)
    return list(pixels.reshape(-1, height, width, 3).astype(float))


def saturation(rgb) -> float:
    """Mean HSV saturation (0-1) of an RGB frame."""
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    return float(numpy.where(high > 0, (high - low) / numpy.maximum(high, 1), 0).mean())


def tags(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=pix_fmt,color_range,color_space,color_transfer,color_primaries,field_order",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"][0]


def idet(path: Path) -> dict[str, int]:
    """ffmpeg ``idet``'s multi-frame counts over the whole file."""
    err = subprocess.run(["ffmpeg", "-v", "info", "-nostats", "-i", str(path), "-an", "-vf", "idet", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    line = next(ln for ln in err.splitlines() if "Multi frame detection" in ln)
    words = line.split("Multi frame detection:")[1].replace(":", " ").split()
    return {words[i].lower(): int(words[i + 1]) for i in range(0, len(words), 2)}


def assert_bt709(path: Path) -> None:
    assert {k: v for k, v in tags(path).items() if k.startswith("color") or k == "pix_fmt"} == {
        "pix_fmt": "yuv420p", "color_range": "tv", "color_space": "bt709", "color_transfer": "bt709",
        "color_primaries": "bt709"}, "8-bit output signalled as BT.709 limited range, never BT.2020/HLG/PQ"


@pytest.mark.parametrize("transfer", ["arib-std-b67", "smpte2084"])
def test_hdr_is_tone_mapped_to_sdr(tmp_path, transfer):
    src = variants.hdr(tmp_path, transfer)
    info, renditions, picture, out = encode(src, tmp_path / "out", rungs=(540, 360))
    assert info.picture.dynamic_range == ("HLG" if transfer == "arib-std-b67" else "PQ")
    peak = 1000
    if transfer == "smpte2084":
        assert info.picture.hdr_format == "HDR10" and info.picture.max_cll == variants.PQ_MAX_CLL, "read from the SEI"
        assert picture.tone_map["peak"] == variants.PQ_MAX_CLL, "the peak is the source's MaxCLL"
        peak = variants.PQ_MAX_CLL
    assert any(c.startswith("tone-mapped") for c in picture.conversions)
    top = renditions[0]
    ours = frames_rgb(out[top.name], 3)
    by_hand = frames_rgb(src, 3, reference(peak), (top.width, top.height))
    naive = frames_rgb(src, 3, "format=yuv420p", (top.width, top.height))  # the chain before: no conversion
    for mine, ref, before in zip(ours, by_hand, naive):
        assert saturation(mine) == pytest.approx(saturation(ref), abs=0.03)
        assert abs(saturation(mine) - saturation(ref)) < abs(saturation(before) - saturation(ref)) - 0.03
        assert numpy.abs(mine.mean(axis=(0, 1)) - ref.mean(axis=(0, 1))).max() < 12, "colour of the reference"
    for path in out.values():
        assert_bt709(path)


def test_dolby_vision_8_4_phone_clip_is_tone_mapped_and_upright(tmp_path):
    src = media("dolbyVision-hdr.MOV")
    info, renditions, picture, out = encode(src, tmp_path / "out", rungs=(720, 360))
    assert info.picture.dolby_vision.profile == 8 and info.picture.dolby_vision.compatibility_id == 4
    assert info.picture.hdr_format == "Dolby Vision 8.4 (HLG base layer)"
    top = renditions[0]
    assert top.height > top.width, "portrait, as the display matrix says"
    mine = frames_rgb(out[top.name], 1)[0]
    ref = frames_rgb(src, 1, REFERENCE, (top.width, top.height))[0]  # ffmpeg's autorotate turns it (no mirror)
    assert saturation(mine) == pytest.approx(saturation(ref), abs=0.03)
    assert numpy.abs(mine - ref).mean() < 12, "same picture, same orientation"
    assert_bt709(out[top.name])


def test_dolby_vision_without_a_compatible_base_layer_is_refused(tmp_path):
    info = parse_probe(media_probe.probe(str(variants.dolby_vision_profile_5(tmp_path))))
    assert info.picture.dolby_vision.profile == 5 and info.picture.dynamic_range == "DV"
    with pytest.raises(PermanentError) as err:
        plan_picture(info, (720, 1280))
    assert err.value.code == "UNSUPPORTED_DYNAMIC_RANGE" and "profile 5" in err.value.message


@pytest.mark.parametrize("flagged", [True, False], ids=["flagged-tt", "combed-flagged-progressive"])
def test_interlaced_source_is_deinterlaced_at_field_rate(tmp_path, flagged):
    src = variants.interlaced(tmp_path, flagged)
    info, renditions, picture, out = encode(src, tmp_path / "out", rungs=(1080, 360))
    assert info.picture.scan == "tff" and info.picture.scan_source == ("flag" if flagged else "idet")
    assert picture.deinterlace == "tff" and picture.field_rate
    assert idet(src)["tff"] > 20, "the source is combed"
    for path in out.values():
        counts = idet(path)
        assert counts["progressive"] >= 0.9 * sum(counts.values()), counts
        frames = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                 "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
                                capture_output=True, text=True, check=True).stdout.split()[0]
        assert int(frames) == 50, "one frame per field: 25 interlaced frames -> 50 progressive"
        assert tags(path).get("field_order") in (None, "progressive")


def test_telecined_film_comes_out_without_combing(tmp_path):
    """3:2 pulldown, flagged progressive: the frames it combs are caught and deinterlaced (one
    frame per frame or per field: motion judders a little, no comb is left)."""
    src = variants.telecined(tmp_path)
    assert idet(src)["tff"] > 10, "the source is combed"
    info, renditions, picture, out = encode(src, tmp_path / "out", rungs=(540,))
    assert info.picture.interlaced, info.picture.idet
    counts = idet(out[renditions[0].name])
    assert counts["progressive"] >= 0.9 * sum(counts.values()), counts


def test_progressive_clips_are_not_deinterlaced():
    for name in ("flower.mp4", "bear-vp9-odd-dimensions.webm", "sample.avi", "sowt-with-video.mov"):
        info = parse_probe(media_probe.probe(str(media(name))))
        assert info.picture.scan == "progressive", (name, info.picture.idet)


def test_mirrored_display_matrix_is_shown_mirrored(tmp_path):
    src = media("sample_rotate_and_reflect.mp4")
    info, renditions, picture, out = encode(src, tmp_path / "out", rungs=(720,))
    assert (info.picture.rotation, info.picture.mirrored) == (90, True)
    top = renditions[0]
    mine = frames_rgb(out[top.name], 1)[0]
    with av.open(str(src)) as container:  # the coded picture, turned by hand: a transpose
        coded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    by_hand = numpy.ascontiguousarray(coded.transpose(1, 0, 2)).astype(float)
    rotated_only = by_hand[:, ::-1]  # what FFmpeg 5.1's autorotate shows: the mirror lost
    assert by_hand.shape[:2] == mine.shape[:2]
    right, wrong = numpy.abs(mine - by_hand).mean(), numpy.abs(mine - rotated_only).mean()
    assert right < 8 and wrong > 3 * right, (right, wrong)


@pytest.mark.parametrize("pix_fmt", ["yuvj420p", "yuv420p"])
def test_full_range_source_becomes_limited_range(tmp_path, pix_fmt):
    src = variants.full_range(tmp_path, pix_fmt)
    info, renditions, picture, out = encode(src, tmp_path / "out", rungs=(540,))
    assert info.picture.color_range == "pc" and "full range -> limited range" in picture.conversions
    with av.open(str(src)) as a, av.open(str(out[renditions[0].name])) as b:
        source_y = next(a.decode(video=0)).to_ndarray(format="gray").astype(float)  # decoded planes, no conversion
        frame = next(b.decode(video=0))
        output_y = frame.planes[0]
        output_y = numpy.frombuffer(output_y, numpy.uint8).reshape(frame.height, output_y.line_size)[:, : frame.width]
    assert source_y.min() < 8, "the source uses the full range (limited range black is 16)"
    assert output_y.min() >= 14 and output_y.max() <= 237, "limited range: black at 16, white at 235"
    assert output_y.mean() == pytest.approx(16 + source_y.mean() * 219 / 255, abs=2.0)
    assert_bt709(out[renditions[0].name])


def longest_flat_run(src: Path, vf: str, size: tuple[int, int]) -> int:
    """Longest run of one luma value (pixels) along the middle row of the first frame of
    ``src`` through the filters ``vf`` (decoded, before any encoder)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-frames:v", "1", "-vf", vf, "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    luma = numpy.frombuffer(raw, numpy.uint8)[: size[0] * size[1]].reshape(size[1], size[0])
    row = luma[size[1] // 2, 16:-16].astype(int)
    return int(numpy.diff(numpy.flatnonzero(numpy.diff(row) != 0)).max())


def test_ten_bit_source_is_dithered_not_banded(tmp_path):
    """The chunk's own filters (prefix and rendition chain) on a slow 10-bit ramp: 16 8-bit codes
    over 1280 pixels, so dropping bits makes flat bands about 80 pixels wide."""
    src = variants.ten_bit_ramp(tmp_path)
    info = parse_probe(media_probe.probe(str(src)))
    top = plan(info, (720,)).videos[0]
    picture = plan_picture(info, (top.width, top.height))
    assert info.picture.bit_depth == 10 and any("10-bit -> 8-bit" in c for c in picture.conversions)
    ours = longest_flat_run(src, ffmpeg_args.picture_head(picture) + ffmpeg_args.video_filter(top, picture),
                            (top.width, top.height))
    truncated = longest_flat_run(src, f"scale={top.width}:{top.height},format=yuv420p", (top.width, top.height))
    assert truncated > 50, "the ramp bands when bits are dropped"
    assert ours < truncated / 2, f"dithered: longest flat run {ours} px against {truncated} px truncated"


def test_slow_motion_source_keeps_every_other_frame(tmp_path):
    src = variants.high_rate(tmp_path, seconds=1)
    info, renditions, picture, out = encode(src, tmp_path / "out", rungs=(360,))
    assert picture.decimate == "60000/1001" and renditions[0].frame_rate == pytest.approx(59.94, abs=0.01)
    times = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
                            "-of", "csv=p=0", str(out[renditions[0].name])], capture_output=True, text=True,
                           check=True).stdout.replace(",", " ").split()
    steps = numpy.diff(sorted(float(t) for t in times))
    assert len(times) == pytest.approx(60, abs=1)
    assert steps.min() == pytest.approx(1001 / 60000, abs=0.002) and steps.max() < 1001 / 60000 + 0.002
    # which frames: output frame n is source frame 2n (every source frame differs)
    source = frames_rgb(src, 12, size=(640, 360))
    mine = frames_rgb(out[renditions[0].name], 6, size=(640, 360))
    for n, frame in enumerate(mine):
        distances = [numpy.abs(frame - candidate).mean() for candidate in source]
        assert int(numpy.argmin(distances)) == 2 * n, (n, [round(d, 1) for d in distances])


def encode_chunks(src: Path, out: Path, chunks: int) -> tuple[list, list]:
    """``src`` probed and planned as ingest does, encoded to 360p in ``chunks`` chunk runs (the
    chunk task's arguments, the job's picture plan), joined as the worker joins segments.
    Returns (packet timestamps, packet flags) of the joined rendition."""
    info = parse_probe(media_probe.probe(str(src)))
    ladder = plan(info, (360,))
    top = ladder.videos[0]
    picture = plan_picture(info, (top.width, top.height))
    coded = frame_size.frame_size_of(info.to_dict(), autorotate=False)
    runs = plan_chunks(info.duration, chunks, ffmpeg_args.SEGMENT_SECONDS, min_seconds=6)
    assert len(runs) == chunks
    segments = {}
    for c in runs:
        last = c is runs[-1]
        (out / c.name / top.name).mkdir(parents=True)
        variants.ffmpeg(*ffmpeg_args.chunk_args(str(src), str(out / c.name), [top], c.start, c.end, last,
                                                frame_rate=top.frame_rate or info.frame_rate, picture=picture,
                                                frame_size=coded))
        segments.update(segments_of_run(out / c.name / top.name, c.first_segment,
                                        None if last else ffmpeg_args.segment_of(c.end)))
    joined = out / "joined.ts"
    joined.write_bytes(b"".join(segments[i] for i in sorted(segments)))
    packets = json.loads(subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                         "packet=pts,flags", "-of", "json", str(joined)], capture_output=True,
                                        text=True, check=True).stdout)["packets"]
    return sorted(int(p["pts"]) for p in packets), [p["flags"] for p in packets]


@pytest.mark.parametrize("kind", ["interlaced", "decimated"])
def test_chunk_boundaries_stay_invisible_with_conversions(tmp_path, kind):
    """Deinterlacing at field rate and decimation to an absolute grid across a chunk boundary
    at 6 s: the chunked encode has exactly the single run's frames and timestamps."""
    src = variants.interlaced(tmp_path, seconds=12, height=360) if kind == "interlaced" else \
        variants.high_rate(tmp_path, seconds=12)
    single, _ = encode_chunks(src, tmp_path / "single", 1)
    chunked, _ = encode_chunks(src, tmp_path / "chunked", 2)
    assert len(single) == pytest.approx(12 * (50 if kind == "interlaced" else 60000 / 1001), abs=1)
    assert chunked == single, "no frame lost, doubled or moved at the boundary"
