"""ffmpeg arguments run for real on a real clip: HLS contract of docs/hls-output.md (IDR every 2 s at the
same instants in every rendition, segments cut on them, no segment above target + 0.5 s),
and the codec string read from the encoded stream. Uses the tools adapter to run ffmpeg."""
import json
import os
import subprocess

import m3u8
import pytest

from chalicelib.domain import ffmpeg_args
from chalicelib.domain import track_args
from chalicelib.domain.ladder import plan
from chalicelib.domain.media import parse_probe
from chalicelib.domain.playlist import h264_codec_string, h264_codec_string_from_probe, measure_segments
from chalicelib.tools.ffmpeg import FfmpegProcess, check
from tests.conftest import ffprobe_json, media, one_rendition


def keyframe_times(path: str) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey", "-show_entries",
                          "frame=pts_time", "-of", "json", path], capture_output=True, text=True, check=True).stdout
    return [float(f["pts_time"]) for f in json.loads(out)["frames"]]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """flower.mp4 (5.05 s, 29.97 fps) encoded to two renditions with the pipeline's arguments."""
    info = parse_probe(ffprobe_json("flower.mp4"))
    p = plan(info, (360, 240))
    out = {}
    for r in p.videos:
        args, d = one_rendition(media("flower.mp4"), tmp_path_factory.mktemp(r.name), r, info.duration)
        progress = []
        res = FfmpegProcess().run(args, info.duration, progress.append)
        check(res, r.name)
        out[r.name] = (d, r, progress, res)
    return out


def test_segments_and_keyframes_follow_the_hls_contract(encoded):
    starts = {}
    for name, (d, r, _, _) in encoded.items():
        pl = m3u8.load(str(d / ffmpeg_args.PLAYLIST_NAME))
        # per-run EVENT playlist (whole segments only); the worker writes the VOD one
        assert pl.playlist_type == "event" and pl.is_endlist and pl.is_independent_segments
        assert all(s.duration <= ffmpeg_args.SEGMENT_SECONDS + 0.5 for s in pl.segments)
        assert abs(sum(s.duration for s in pl.segments) - 5.05) < 0.1
        concat = d / "all.ts"
        concat.write_bytes(b"".join((d / s.uri).read_bytes() for s in pl.segments))
        times = keyframe_times(str(concat))
        t0 = times[0]
        starts[name] = [round(t - t0, 2) for t in times]
        # an IDR every 2 s: 0, 2, 4 (within one frame at 29.97 fps)
        assert [round(t) for t in starts[name]] == [0, 2, 4]
        # every segment starts with a keyframe
        for s in pl.segments:
            first = keyframe_times(str(d / s.uri))
            assert first, f"segment {s.uri} has no keyframe"
    assert len(set(map(tuple, starts.values()))) == 1, f"IDRs not aligned across renditions: {starts}"


def test_output_size_profile_and_codec_string(encoded):
    for name, (d, r, _, _) in encoded.items():
        seg = sorted(p for p in os.listdir(d) if p.endswith(".ts"))[0]
        probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_streams", str(d / seg)],
                                          capture_output=True, text=True, check=True).stdout)
        v = probe["streams"][0]
        assert (v["width"], v["height"]) == (r.width, r.height)
        assert v["profile"] == "High" and v["pix_fmt"] == "yuv420p"
        assert not [s for s in probe["streams"] if s["codec_type"] == "audio"], "video renditions carry no audio"
        codec = h264_codec_string((d / seg).read_bytes()[:65536])
        assert codec == h264_codec_string_from_probe(v["profile"], v["level"])


def test_progress_reaches_100_and_never_goes_back(encoded):
    for _, (_, _, progress, res) in encoded.items():
        assert progress and progress[-1] == 100.0
        assert progress == sorted(progress)
        assert res.out_time > 4.9 and res.cpu_seconds > 0


def test_measured_bandwidth_is_plausible(encoded):
    for _, (d, r, _, _) in encoded.items():
        sizes = {p: os.path.getsize(d / p) for p in os.listdir(d) if p.endswith(".ts")}
        stats = measure_segments((d / ffmpeg_args.PLAYLIST_NAME).read_text(), sizes)
        assert stats.peak_bandwidth >= stats.average_bandwidth > 0.3 * r.video_bitrate
        assert stats.average_bandwidth < 2 * r.max_bitrate


def test_audio_rendition_is_aac_lc_stereo(tmp_path):
    info = parse_probe(ffprobe_json("bigbuckbunny.mp4"))  # 5.1 AAC
    a = plan(info).audio
    res = FfmpegProcess().run(track_args.audio_args(str(media("bigbuckbunny.mp4")), str(tmp_path), a), info.duration)
    check(res, "audio")
    seg = sorted(p for p in os.listdir(tmp_path) if p.endswith(".ts"))[0]
    s = json.loads(subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_streams", str(tmp_path / seg)],
                                  capture_output=True, text=True, check=True).stdout)["streams"]
    assert [(x["codec_type"], x["codec_name"], x["profile"], x["channels"]) for x in s] == [("audio", "aac", "LC", 2)]


def test_reference_command_makes_the_same_ladder(tmp_path):
    info = parse_probe(ffprobe_json("flower.mp4"))
    p = plan(info, (360, 240))
    for r in [*p.videos, p.audio]:
        (tmp_path / r.name).mkdir()
    res = FfmpegProcess().run(ffmpeg_args.reference_ladder_args(str(media("flower.mp4")), str(tmp_path), p), info.duration)
    check(res, "reference")
    for r in p.videos:
        assert m3u8.load(str(tmp_path / r.name / ffmpeg_args.PLAYLIST_NAME)).segments
    assert m3u8.load(str(tmp_path / "audio" / ffmpeg_args.PLAYLIST_NAME)).segments
