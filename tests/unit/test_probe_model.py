"""The probe model on hand-written ffprobe JSON: frame-rate fallback, what is not a video (the
same model on real clips: tests/media/test_media.py)."""
import pytest

from chalicelib.domain.errors import PermanentError
from chalicelib.domain.media import frame_rate_of, parse_probe


def test_frame_rate_falls_back_to_frame_count():
    assert frame_rate_of({"avg_frame_rate": "1000/1", "r_frame_rate": "0/0", "nb_frames": "30", "duration": "1.0"}) == 30


def test_no_video_stream_is_permanent():
    probe = {"streams": [{"codec_type": "audio", "codec_name": "aac"}], "format": {"duration": "3.0"}}
    with pytest.raises(PermanentError) as e:
        parse_probe(probe)
    assert e.value.code == "NO_VIDEO_STREAM" and "audio" in e.value.message


def test_cover_art_is_not_a_video():
    probe = {"streams": [{"codec_type": "video", "codec_name": "mjpeg", "width": 300, "height": 300,
                          "disposition": {"attached_pic": 1}}], "format": {"duration": "3.0"}}
    with pytest.raises(PermanentError):
        parse_probe(probe)
