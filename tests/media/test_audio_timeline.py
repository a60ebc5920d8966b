"""The audio rendition stays on the picture (lip sync): whatever its source's audio does at the
start or at a join, a sound at source time t is heard at output PTS t + OUTPUT_TS_BASE, the PTS
of the frame shown at t. Checked from the media: packet timestamps of the published segments, and
where a sound of the source actually is in the decoded output (cross-correlation with the source
clip's own audio), never from our playlists."""
import json
import os
import subprocess

import numpy
import pytest

from chalicelib.domain import ffmpeg_args
from chalicelib.domain import track_args
from chalicelib.domain.ladder import plan
from chalicelib.domain.media import parse_probe
from chalicelib.tools.ffmpeg import FfmpegProcess, check
from tests.conftest import media, one_rendition

RATE = 48000
FRAME = 1024  # AAC-LC samples per frame
CLIP = "bigbuckbunny.mp4"  # 5.3 s, 5.1 AAC with sound from the start
#: The part of the clip's sound looked for in the output (source seconds).
WINDOW = (1.0, 2.0)


def decoded(path, seconds: float | None = None) -> numpy.ndarray:
    """The first audio stream of ``path`` decoded to mono float samples at 48 kHz, in the order
    the decoder gives them (no timestamp-driven padding)."""
    limit = ["-t", str(seconds)] if seconds else []
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), *limit, "-map", "0:a:0", "-ac", "1", "-ar",
                          str(RATE), "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return numpy.frombuffer(out, dtype=numpy.float32)


def packet_pts(path, stream: str) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", "packet=pts",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return sorted(int(p["pts"]) / 90000 for p in json.loads(out)["packets"])


def found_at(haystack: numpy.ndarray, needle: numpy.ndarray, near: int, reach: int) -> int:
    """The sample index of ``haystack`` within ``near`` ± ``reach`` where ``needle`` matches best
    (normalized cross-correlation)."""
    best, where = -2.0, -1
    for at in range(max(0, near - reach), near + reach + 1):
        part = haystack[at:at + len(needle)]
        if len(part) < len(needle):
            break
        score = float(numpy.dot(part, needle) / (numpy.linalg.norm(part) * numpy.linalg.norm(needle) + 1e-12))
        if score > best:
            best, where = score, at
    assert best > 0.9, f"the source's sound is not in the output near sample {near} (best match {best:.2f})"
    return where


def recordings(path) -> list[float]:
    """Where each recording of a joined file starts (source seconds): after each audio packet
    that lasts under 1 ms, the clip's last AAC frame cut to one sample by its container."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                          "packet=pts_time,duration_time", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    cut = [float(p["pts_time"]) + float(p["duration_time"]) for p in json.loads(out)["packets"]
           if float(p["duration_time"]) < 0.001]
    assert cut, "no join in the joined file"
    return [0.0, *cut]


VARIANTS = {
    # the audio track starts 0.5 s after the picture (a camera that starts recording sound late)
    "audio starts late": ["-i", "{src}", "-itsoffset", "0.5", "-i", "{src}", "-map", "0:v", "-map", "1:a"],
    # the picture starts 0.3 s after the sound
    "video starts late": ["-itsoffset", "0.3", "-i", "{src}", "-i", "{src}", "-map", "0:v", "-map", "1:a"],
    # three recordings joined (stream copy): each join holds an AAC frame whose container
    # duration is 1 sample but which decodes to 1024 (a 21 ms overlap)
    "three joined": ["-stream_loop", "2", "-i", "{src}"],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_sound_plays_with_its_picture(tmp_path, variant):
    src = tmp_path / "source.mp4"
    subprocess.run(["ffmpeg", "-v", "error", *[a.format(src=media(CLIP)) for a in VARIANTS[variant]], "-c", "copy",
                    str(src)], check=True)
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams",
                                       str(src)], capture_output=True, text=True, check=True).stdout)
    info = parse_probe(probe)
    streams = {s["codec_type"]: float(s["start_time"]) for s in probe["streams"]}
    file_start = min(streams.values())
    a = plan(info, (240,)).audio
    out = tmp_path / "audio"
    out.mkdir()
    res = FfmpegProcess().run(track_args.audio_args(str(src), str(out), a, info.duration), info.duration)
    check(res, "audio")
    joined = tmp_path / "audio.ts"
    joined.write_bytes(b"".join((out / f).read_bytes() for f in sorted(os.listdir(out)) if f.endswith(".ts")))

    # one timeline: contiguous AAC frames from the encoder's priming frame before source time 0
    pts = packet_pts(joined, "a:0")
    assert pts[0] == pytest.approx(ffmpeg_args.OUTPUT_TS_BASE - FRAME / RATE, abs=1e-4)
    steps = {round((b - x) * 90000) for x, b in zip(pts, pts[1:])}
    assert steps == {FRAME * 90000 // RATE}, f"gaps or overlaps in the audio: {sorted(steps)}"

    # the picture's first frame at its own source time on the same clock
    args, video_dir = one_rendition(src, tmp_path / "video", plan(info, (240,)).videos[0], info.duration)
    check(FfmpegProcess().run(args, info.duration), "video")
    video = tmp_path / "video.ts"
    video.write_bytes(b"".join((video_dir / f).read_bytes() for f in sorted(os.listdir(video_dir)) if f.endswith(".ts")))
    assert min(packet_pts(video, "v:0")) == pytest.approx(
        ffmpeg_args.OUTPUT_TS_BASE + streams["video"] - file_start, abs=0.002)

    # and each sound where the source has it: the clip's 1-2 s, in every recording
    heard = decoded(joined)
    needle = decoded(media(CLIP), WINDOW[1])[int(WINDOW[0] * RATE):]
    for start in recordings(src) if variant == "three joined" else [0.0]:
        source_time = streams["audio"] - file_start + start + WINDOW[0]
        expected = round((ffmpeg_args.OUTPUT_TS_BASE + source_time - pts[0]) * RATE)
        at = found_at(heard, needle, expected, RATE // 10)
        assert abs(at - expected) <= RATE // 1000, (
            f"{variant}: the sound of source time {source_time:.3f} s plays {(at - expected) / RATE * 1000:+.1f} ms off")

    # the progressive MP4 made from those segments keeps them together, on the source's clock
    mp4 = tmp_path / "rendition.mp4"
    check(FfmpegProcess().run(track_args.progressive_args(str(video), str(joined), str(mp4)), info.duration), "mp4")
    kept = {s["codec_type"]: float(s["start_time"]) for s in json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_streams", str(mp4)], capture_output=True, text=True,
        check=True).stdout)["streams"]}
    assert kept["video"] == pytest.approx(streams["video"] - file_start, abs=0.002)
    assert kept["audio"] == pytest.approx(0.0, abs=0.001)  # the priming frame is cut by an edit list
    source_time = streams["audio"] - file_start + WINDOW[0]
    expected = round((source_time - kept["audio"]) * RATE)
    at = found_at(decoded(mp4), needle, expected, RATE // 10)
    assert abs(at - expected) <= RATE // 1000, f"{variant}: the MP4's sound is {(at - expected) / RATE * 1000:+.1f} ms off"
