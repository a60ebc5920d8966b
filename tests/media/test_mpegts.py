"""EXTINF from the media: our MPEG-TS timestamp reader against ffprobe's packets, on segments
encoded from real clips with the worker's own arguments (VFR phone capture, bogus average
frame rate, open GOP with a start offset, odd size)."""
import json
import subprocess

import pytest

from chalicelib.domain import ffmpeg_args
from chalicelib.domain import track_args

from chalicelib.domain.media import parse_probe
from chalicelib.domain.ladder import AudioRendition, plan
from chalicelib.domain.mpegts import audio_span, segment_timing, video_pts
from chalicelib.domain.playlist import extinf_from_timing, measured_frame_rate
from tests.conftest import ffprobe_json, media, one_rendition

CLIPS = ["mv_with_2_top_shots.mp4", "sample.mkv", "bbb_2500ms.ts", "bear-vp9-odd-dimensions.webm", "flower.mp4"]


def ffprobe_pts(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return [float(p["pts_time"]) for p in json.loads(out)["packets"]]


def source_frame_times(name):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=pts_time,duration_time", "-of", "json", str(media(name))],
                         capture_output=True, text=True, check=True).stdout
    frames = [f for f in json.loads(out)["frames"] if f.get("pts_time") not in (None, "N/A")]
    return [float(f["pts_time"]) for f in frames], frames


@pytest.fixture(scope="module", params=CLIPS)
def encoded(request, tmp_path_factory):
    name = request.param
    info = parse_probe(ffprobe_json(name))
    rendition = plan(info, (240,)).videos[0]
    args, out = one_rendition(media(name), tmp_path_factory.mktemp("seg"), rendition, info.duration)
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)
    return name, info, sorted(out.glob("gop_*.ts"))


def test_reader_agrees_with_ffprobe_packet_for_packet(encoded):
    _, _, segments = encoded
    for seg in segments:
        assert sorted(video_pts(seg.read_bytes())) == pytest.approx(sorted(ffprobe_pts(seg)), abs=1e-5)


def test_extinf_matches_the_packets_and_the_source_within_one_frame(encoded):
    name, info, segments = encoded
    timings = [segment_timing(video_pts(s.read_bytes()), 1 / (info.frame_rate or 30)) for s in segments]
    durations = extinf_from_timing([t.start for t in timings], timings[-1].end)
    for i, seg in enumerate(segments):  # each EXTINF: next segment's first PTS minus this one's
        pts = sorted(ffprobe_pts(seg))
        following = sorted(ffprobe_pts(segments[i + 1]))[0] if i + 1 < len(segments) else None
        if following is not None:
            assert durations[i] == pytest.approx(following - pts[0], abs=1e-4)
        else:
            frame = pts[-1] - pts[-2] if len(pts) > 1 else 1 / info.frame_rate
            assert durations[i] == pytest.approx(pts[-1] + frame - pts[0], abs=1e-4)
    # the variant's total is the source's decodable duration, within one frame
    times, _ = source_frame_times(name)
    times.sort()
    frame = (times[-1] - times[0]) / max(1, len(times) - 1)
    source_total = times[-1] - times[0] + frame
    assert sum(durations) == pytest.approx(source_total, abs=frame * 1.01), (name, durations, source_total)
    assert sum(t.frames for t in timings) == len(times), "every decodable frame is in a segment"
    # FRAME-RATE from the media: ~30 for the phone capture whose container says 120
    rate = measured_frame_rate([t.frames for t in timings], durations)
    assert rate == pytest.approx(len(times) / source_total, rel=0.05), (name, rate)


def test_muxer_estimate_was_wrong_on_the_phone_capture(tmp_path):
    """The defect this replaces (docs/hls-output.md): FFmpeg's playlist says 0.44 s for 1.77 s."""
    info = parse_probe(ffprobe_json("mv_with_2_top_shots.mp4"))
    r = plan(info, (240,)).videos[0]
    args, out = one_rendition(media("mv_with_2_top_shots.mp4"), tmp_path, r, info.duration)
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)
    muxer = float(next(ln for ln in (out / ffmpeg_args.PLAYLIST_NAME).read_text().splitlines()
                       if ln.startswith("#EXTINF")).split(":")[1].rstrip(","))
    timing = segment_timing(video_pts((out / "gop_00000.ts").read_bytes()), 1 / 30)
    assert muxer < 1.0 and timing.end - timing.start > 1.7


def test_audio_span_agrees_with_ffprobe_and_survives_a_tiny_last_segment(tmp_path):
    """The audio rendition of a 60.4 s loop: its last segment holds 0.45 s that ffprobe cannot
    even open on its own; the ADTS frame count still gives its end."""
    src = tmp_path / "flower60.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "11", "-i", str(media("flower.mp4")), "-c", "copy",
                    str(src)], check=True)
    out = tmp_path / "audio"
    out.mkdir()
    rendition = AudioRendition(name="audio", bitrate=128_000, channels=2, sample_rate=48_000)
    subprocess.run(["ffmpeg", "-v", "error", "-y", *track_args.audio_args(str(src), str(out), rendition, 60.4)], check=True)
    segments = sorted(out.glob("seg_*.ts"))
    spans = [audio_span(s.read_bytes()) for s in segments]
    for seg, (start, end) in zip(segments[:-1], spans):
        out_json = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                                   "packet=pts_time,duration_time", "-of", "json", str(seg)],
                                  capture_output=True, text=True, check=True).stdout
        packets = json.loads(out_json)["packets"]
        assert start == pytest.approx(float(packets[0]["pts_time"]), abs=1e-5)
        assert end == pytest.approx(float(packets[-1]["pts_time"]) + float(packets[-1]["duration_time"]), abs=1e-5)
    durations = extinf_from_timing([s for s, _ in spans], spans[-1][1])
    assert all(b[0] == pytest.approx(a[1], abs=1e-4) for a, b in zip(spans, spans[1:])), "contiguous"
    assert 0 < durations[-1] < 1.0 and sum(durations) == pytest.approx(60.4, abs=0.1)
