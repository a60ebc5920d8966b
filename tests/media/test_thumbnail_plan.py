"""The thumbnail plan of a real clip (flower.mp4 as ffprobe describes it): sprite sheets and
their WebVTT cues across chunks, and the one chunk that picks the poster."""
import dataclasses

from chalicelib.domain.ladder import plan
from chalicelib.domain.media import parse_probe
from chalicelib.domain.thumbnails import poster_in, sprite_vtt, tiles_in
from tests.conftest import ffprobe_json


def test_sprite_vtt_cues_cover_the_duration_across_chunk_sheets():
    t = plan(parse_probe(ffprobe_json("flower.mp4"))).thumbnails  # 5.055 s, 1 s tiles, 6 columns
    runs = [tiles_in(t, 0, 0.0, 3.0, False), tiles_in(t, 1, 3.0, 5.055, True)]
    assert [(r.first, r.count, r.file_name) for r in runs] == [(0, 3, "sprite_000.jpg"), (3, 3, "sprite_001.jpg")]
    lines = sprite_vtt(t, 5.055, runs).splitlines()
    assert lines[0] == "WEBVTT"
    cues = [ln for ln in lines if "-->" in ln]
    assert len(cues) == 6 and cues[-1] == "00:00:05.000 --> 00:00:05.055"
    assert lines[lines.index(cues[4]) + 1] == "sprite_001.jpg#xywh=160,0,160,90"
    assert tiles_in(t, 2, 5.055, 5.055, False) is None


def test_the_poster_comes_from_the_one_chunk_that_holds_its_time():
    # GIVEN flower.mp4's plan: the poster search starts at 25 % of 5.055 s
    t = plan(parse_probe(ffprobe_json("flower.mp4"))).thumbnails
    assert t.poster_time == 1.264
    # WHEN the timeline is cut in two chunks THEN only the first picks it, over 2 s at 29.97 fps
    first = poster_in(t, 0.0, 0.0, 4.0, False, 29.97)
    assert (first.time, first.frames, first.width, first.height) == (1.264, 60, t.poster_width, t.poster_height)
    assert poster_in(t, 4.0, 4.0, 5.055, True, 29.97) is None
    # a run resumed past the poster's time (its poster never published) picks from its own start
    assert poster_in(t, 0.0, 2.0, 4.0, False, 29.97).time == 2.0
    # a poster time past the last chunk's planned start still lands in the last chunk
    late = dataclasses.replace(t, poster_time=5.0)
    assert poster_in(late, 4.0, 4.0, 4.5, True, 29.97).time == 5.0
    assert poster_in(late, 0.0, 0.0, 4.0, False, 29.97) is None
