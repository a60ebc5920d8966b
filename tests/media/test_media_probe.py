"""The Lambda-runtime probe (PyAV, no ffprobe) against ffprobe, on every clip in shared/media.

GIVEN each real clip WHEN probed by both THEN ``parse_probe`` reads the same video: size,
displayed size and rotation, frame rate, duration, audio; the corrupt bitstream fails the
first-frame check in both; unreadable and hostile files fail with the same codes, and the
hostile ones reach nothing."""
import json
import subprocess

import pytest

from chalicelib.domain.errors import PermanentError
from chalicelib.domain.media import parse_probe
from chalicelib.tools import ffmpeg, media_probe
from tests.conftest import ffprobe_json, manifest, media
from tests import variants
from tests.hostile import FifoTrap, Listener, crafted_files

READABLE = [n for n, row in manifest().items() if row["container"] != "UNREADABLE"]


@pytest.mark.parametrize("name", READABLE)
def test_same_media_description_as_ffprobe(name):
    try:
        expected = parse_probe(ffprobe_json(name))
    except PermanentError as e:  # e.g. no video stream: both must say so
        with pytest.raises(PermanentError) as err:
            parse_probe(media_probe.probe(str(media(name))))
        assert err.value.code == e.code
        return
    got = parse_probe(media_probe.probe(str(media(name))))
    for field in ("width", "height", "display_width", "display_height", "rotation", "video_codec", "has_audio",
                  "audio_channels", "is_portrait"):
        assert getattr(got, field) == getattr(expected, field), (name, field)
    assert got.frame_rate == pytest.approx(expected.frame_rate, rel=0.01), name
    assert got.duration == pytest.approx(expected.duration, abs=0.05), name
    path = str(media(name))
    assert media_probe.first_video_frame_decodes(path) == ffmpeg.first_video_frame_decodes(path), name


@pytest.mark.parametrize("delay", [0.0, 1.0])
def test_where_the_first_decodable_frame_is(tmp_path, delay):
    """``video_start``: seconds from the file's start to its first decodable video frame, as
    ffprobe reads the first video packet's time against the file's start (the first chunk
    must reach past it: ``chunks.first_seconds_for``)."""
    source = variants.late_picture(tmp_path, media("flower.mp4"), delay)
    info = parse_probe(media_probe.probe(str(source)))
    streams = {s["codec_type"]: float(s["start_time"]) for s in ffprobe_json_of(source)["streams"]}
    assert info.video_start == pytest.approx(streams["video"] - min(streams.values()), abs=0.002)
    assert info.video_start == pytest.approx(delay, abs=0.1)


def ffprobe_json_of(path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_unreadable_file_is_unreadable_media():
    with pytest.raises(PermanentError) as err:
        media_probe.probe(str(media("broken_truncated_nomoov_270_rotated.mp4")))
    assert err.value.code == "UNREADABLE_MEDIA"


def test_hostile_files_are_refused_and_reach_nothing(tmp_path):
    fifo = FifoTrap(tmp_path)
    try:
        with Listener() as listener:
            files = crafted_files(listener.url, fifo.path, tmp_path)
            listener.files.update(files)
            for name in files:
                with pytest.raises(PermanentError) as err:
                    media_probe.probe(f"{listener.url}/upload/{name}")
                # FFmpeg 8 does not detect HLS behind a video extension, and PyAV has no DASH demuxer
                lenient = name in ("playlist-as-video.mp4", "manifest.mpd")
                assert err.value.code in (("UNSUPPORTED_FORMAT", "UNREADABLE_MEDIA") if lenient else
                                          ("UNSUPPORTED_FORMAT",)), (name, err.value.message)
                assert listener.url not in err.value.message and str(fifo.path) not in err.value.message
            assert listener.leaks == [] and not fifo.opened.is_set()
    finally:
        fifo.close()
