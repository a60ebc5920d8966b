"""Timing arithmetic without media: the absolute keyframe grid, and what the MPEG-TS reader and
the EXTINF builder refuse (both against real segments: tests/media/test_resume.py, test_mpegts.py)."""
import pytest

from chalicelib.domain import ffmpeg_args
from chalicelib.domain.mpegts import NotTransportStream, video_pts
from chalicelib.domain.playlist import extinf_from_timing


def test_keyframe_list_stays_on_the_absolute_grid():
    assert ffmpeg_args.keyframe_times(0, 7) == [0.0, 2.0, 4.0, 6.0]
    assert ffmpeg_args.keyframe_times(6.006, 12) == [0.0, 1.994, 3.994]


def test_a_short_first_segment_moves_the_idr_grid_with_it():
    """A 0.5 s first segment (``chunks.lead_for``): IDRs at 0 and 0.5, 2.5, 4.5 ... s, so every
    later segment (0.5 + 6k) starts on one; a run resumed or started anywhere keeps that grid."""
    assert ffmpeg_args.grid_phase(0.5) == 0.5 and ffmpeg_args.grid_phase(2.0) == 0.0
    assert ffmpeg_args.grid_phase(3.0) == 1.0 and ffmpeg_args.grid_phase(0.0) == 0.0
    assert ffmpeg_args.keyframe_times(0, 7, 0.5) == [0.0, 0.5, 2.5, 4.5, 6.5]
    assert ffmpeg_args.keyframe_times(0.0, 1.033, 0.5) == [0.0, 0.5]  # the first chunk and its tail
    assert ffmpeg_args.keyframe_times(6.0, 9, 0.5) == [0.0, 0.5, 2.5]  # a preroll before 6.5
    base = ffmpeg_args.OUTPUT_TS_BASE
    assert ffmpeg_args.resume_point(base + 0.467, 0.5) == 0.5  # after the first segment's last frame
    assert ffmpeg_args.resume_point(base + 6.467, 0.5) == 6.5
    assert ffmpeg_args.resume_point(base + 5.967) == 6.0  # no lead: the plain grid
    # the run after a 0.5 s first segment starts at the source's start, not 33 ms before it
    assert ffmpeg_args.preroll(0.5) == 0.5 and ffmpeg_args.preroll(6.5) == ffmpeg_args.lookahead_tail(30.0)


def test_not_a_transport_stream_is_refused():
    with pytest.raises(NotTransportStream):
        video_pts(b"\x00" * 400)
    with pytest.raises(ValueError):
        extinf_from_timing([1.0, 1.0], 2.0)
