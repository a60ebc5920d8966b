"""Timing arithmetic without media: the absolute keyframe grid, and what the MPEG-TS reader and
the EXTINF builder refuse (both against real segments: tests/media/test_resume.py, test_mpegts.py)."""
import pytest

from chalicelib.domain import ffmpeg_args
from chalicelib.domain.mpegts import NotTransportStream, video_pts
from chalicelib.domain.playlist import extinf_from_timing


def test_keyframe_list_stays_on_the_absolute_grid():
    assert ffmpeg_args.keyframe_times(0, 7) == [0.0, 2.0, 4.0, 6.0]
    assert ffmpeg_args.keyframe_times(6.006, 12) == [0.0, 1.994, 3.994]


def test_not_a_transport_stream_is_refused():
    with pytest.raises(NotTransportStream):
        video_pts(b"\x00" * 400)
    with pytest.raises(ValueError):
        extinf_from_timing([1.0, 1.0], 2.0)
