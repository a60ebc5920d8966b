"""Playlists and job records, pure domain (the thumbnail plan of a real clip: tests/media/test_thumbnail_plan.py)."""
import m3u8
import pytest

from chalicelib.domain import jobs
from chalicelib.domain.playlist import aac_codec_string, h264_codec_string, master_playlist, measure_segments

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


def test_job_id_is_deterministic_per_object_version():
    a = jobs.job_id_for("b", "k.mp4", '"etag1"')
    assert a == jobs.job_id_for("b", "k.mp4", "etag1") and a != jobs.job_id_for("b", "k.mp4", "etag2")


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/../../b", ""])
def test_output_keys_cannot_escape_the_job_prefix(bad):
    with pytest.raises(ValueError):
        jobs.output_key("job1", bad)


def test_status_only_moves_forward():
    assert jobs.can_move("queued", "processing") and jobs.can_move("processing", "complete")
    assert jobs.can_move("queued", "failed")
    assert not jobs.can_move("processing", "queued") and not jobs.can_move("complete", "failed")


def test_content_types():
    assert jobs.content_type_for("x/index.m3u8") == "application/vnd.apple.mpegurl"
    assert jobs.content_type_for("seg_00001.ts") == "video/mp2t"
    assert jobs.content_type_for("poster.jpg") == "image/jpeg" and jobs.content_type_for("t.vtt") == "text/vtt"
