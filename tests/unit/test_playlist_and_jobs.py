import dataclasses

import m3u8
import pytest

from chalicelib.domain import jobs as J
from chalicelib.domain.ladder import plan
from chalicelib.domain.media import parse_probe
from chalicelib.domain.playlist import aac_codec_string, h264_codec_string, master_playlist, measure_segments
from chalicelib.domain.thumbnails import poster_in, sprite_vtt, tiles_in
from tests.conftest import ffprobe_json

VIDEOS = [
    {"name": "360p", "width": 640, "height": 360, "frame_rate": 29.97, "codecs": "avc1.64001e",
     "peak_bandwidth": 900_000, "average_bandwidth": 700_000, "uri": "360p/index.m3u8"},
    {"name": "720p", "width": 1280, "height": 720, "frame_rate": 29.97, "codecs": "avc1.64001f",
     "peak_bandwidth": 3_300_000, "average_bandwidth": 2_800_000, "uri": "720p/index.m3u8"},
]
AUDIO = {"name": "audio", "codecs": "mp4a.40.2", "channels": 2, "peak_bandwidth": 140_000,
         "average_bandwidth": 130_000, "uri": "audio/index.m3u8"}


def test_master_playlist_parses_and_includes_audio_in_bandwidth():
    pl = m3u8.loads(master_playlist(VIDEOS, AUDIO))
    assert pl.is_variant
    first, second = pl.playlists
    assert first.uri == "720p/index.m3u8"  # highest first
    assert first.stream_info.bandwidth == 3_440_000 and first.stream_info.average_bandwidth == 2_930_000
    assert first.stream_info.resolution == (1280, 720) and first.stream_info.frame_rate == 29.97
    assert first.stream_info.codecs == "avc1.64001f,mp4a.40.2" and first.stream_info.audio == "audio"
    (media,) = pl.media
    assert media.type == "AUDIO" and media.group_id == "audio" and media.uri == "audio/index.m3u8"
    assert media.default == "YES" and media.channels == "2"


def test_master_playlist_without_audio_has_no_audio_codec():
    text = master_playlist(VIDEOS, None)
    assert "mp4a" not in text and "EXT-X-MEDIA" not in text and "AUDIO=" not in text
    with pytest.raises(ValueError):
        master_playlist([], AUDIO)


def test_measure_segments():
    text = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\na.ts\n#EXTINF:2.0,\nb.ts\n#EXT-X-ENDLIST\n"
    s = measure_segments(text, {"a.ts": 600_000, "b.ts": 300_000})
    assert s.peak_bandwidth == 1_200_000 and s.average_bandwidth == 900_000 and s.segments == 2
    with pytest.raises(ValueError):
        measure_segments(text, {"a.ts": 1})


def test_codec_strings():
    sps = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x67\x64\x00\x1f\xac"
    assert h264_codec_string(sps) == "avc1.64001f"
    assert h264_codec_string(b"\x00\x00\x01\x68\x00") is None
    assert aac_codec_string("LC") == "mp4a.40.2" and aac_codec_string("HE-AAC") == "mp4a.40.5"


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


def test_job_id_is_deterministic_per_object_version():
    a = J.job_id_for("b", "k.mp4", '"etag1"')
    assert a == J.job_id_for("b", "k.mp4", "etag1") and a != J.job_id_for("b", "k.mp4", "etag2")


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/../../b", ""])
def test_output_keys_cannot_escape_the_job_prefix(bad):
    with pytest.raises(ValueError):
        J.output_key("job1", bad)


def test_status_only_moves_forward():
    assert J.can_move("queued", "processing") and J.can_move("processing", "complete")
    assert J.can_move("queued", "failed")
    assert not J.can_move("processing", "queued") and not J.can_move("complete", "failed")


def test_content_types():
    assert J.content_type_for("x/index.m3u8") == "application/vnd.apple.mpegurl"
    assert J.content_type_for("seg_00001.ts") == "video/mp2t"
    assert J.content_type_for("poster.jpg") == "image/jpeg" and J.content_type_for("t.vtt") == "text/vtt"
