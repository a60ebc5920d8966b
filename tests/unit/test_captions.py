"""Text tracks (``chalicelib/domain/captions.py``), the ``captions`` setting, the subtitle
group of the multivariant playlist, and caption imports (``services/caption_import.py``):
which source tracks become renditions and which are skipped, names and flags, the setting's
bounds, and the same address checks as media imports (real sockets on 127.0.0.1)."""
import json
from types import SimpleNamespace

import m3u8
import pytest

from chalicelib.config import Settings
from chalicelib.domain import captions, job_settings, presentation
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.job_settings import InvalidSettings
from chalicelib.domain.playlist import master_playlist
from chalicelib.domain.settings_metadata import settings_from_metadata
from chalicelib.services import caption_import
from chalicelib.services.ingest import CAPTION_SUFFIXES, check_caption_sources
from tests.rawserver import RawServer, sending
from tests.unit.test_url_import import FakeObjects


def stream(codec, language=None, title=None, **disposition):
    return {"codec_type": "subtitle", "codec_name": codec, "tags": {k: v for k, v in
                                                                    (("language", language), ("title", title)) if v},
            "disposition": disposition}


def test_text_tracks_become_renditions_and_bitmaps_are_skipped_with_the_reason():
    tracks = captions.parse_subtitle_tracks([
        {"codec_type": "video"}, stream("subrip", "eng", default=1), stream("hdmv_pgs_subtitle", "fre"),
        stream("mov_text", "spa", forced=1, default=1), stream("ass", "ger", "Deutsch SDH", hearing_impaired=1),
        stream("dvd_subtitle"), stream("some_new_format", "ita")])
    assert [t.position for t in tracks] == [0, 1, 2, 3, 4, 5]
    texts, skipped = captions.plan_text(tracks)
    assert [(t.name, t.track, t.language, t.label, t.default, t.forced, t.hearing_impaired) for t in texts] == [
        ("subtitles", 0, "en", "English", False, False, False),  # Matroska's default flag alone shows nothing
        ("subtitles_1", 2, "es", "Spanish (forced)", True, True, False),
        ("subtitles_2", 3, "de", "Deutsch SDH", False, False, True)]
    assert [(s["position"], s["codec"]) for s in skipped] == [(1, "hdmv_pgs_subtitle"), (4, "dvd_subtitle"),
                                                             (5, "some_new_format")]
    assert "pictures of text" in skipped[0]["reason"] and "not a text subtitle" in skipped[2]["reason"]


def test_captions_follow_the_source_tracks_with_unique_names():
    entries = job_settings.parse({"captions": [
        {"source": "s3://ingest-bucket/a/en.srt", "language": "eng", "kind": "captions"},
        {"source": "https://example.com/fr.vtt", "language": "fr", "name": "Français"},
        {"source": "https://example.com/en2.vtt", "language": "en", "kind": "captions"}]}).captions
    texts, _ = captions.plan_text(captions.parse_subtitle_tracks([stream("subrip", "eng")]), entries)
    assert [(t.name, t.label, t.language, t.hearing_impaired, t.source is not None) for t in texts] == [
        ("subtitles", "English", "en", False, False),
        ("subtitles_1", "English (captions)", "en", True, True),
        ("subtitles_2", "Français", "fr", False, True),
        ("subtitles_3", "English (captions) 4", "en", True, True)]


def test_at_most_sixteen_source_tracks():
    texts, skipped = captions.plan_text(captions.parse_subtitle_tracks([stream("subrip", "eng")] * 20))
    assert len(texts) == captions.MAX_SOURCE_TRACKS and len(skipped) == 4
    assert skipped[0]["reason"] == "more than 16 subtitle tracks"


@pytest.mark.parametrize("entry, field, words", [
    ({"source": "ftp://example.com/a.srt", "language": "fr"}, "captions.0.source", "s3://"),
    ({"source": "s3://ingest-bucket/a.srt", "language": "klingon-x"}, "captions.0.language", "not a language"),
    ({"source": "https://user:pw@example.com/a.srt", "language": "fr"}, "captions.0.source", ""),
    ({"source": "s3://ingest-bucket/a.srt", "language": "fr", "kind": "karaoke"}, "captions.0.kind", ""),
    ({"source": "s3://ingest-bucket/a.srt", "language": "fr", "name": "a\nb"}, "captions.0.name", "control"),
    ({"source": "s3://ingest-bucket/a.srt"}, "captions.0.language", "required"),
])
def test_a_bad_captions_entry_is_refused_naming_the_field(entry, field, words):
    with pytest.raises(InvalidSettings) as refused:
        job_settings.parse({"captions": [entry]})
    assert refused.value.field == field and words.lower() in refused.value.reason.lower()


def test_captions_are_bounded_and_rung_names_stay_off_their_folders():
    entry = {"source": "s3://ingest-bucket/a.srt", "language": "fr"}
    with pytest.raises(InvalidSettings):
        job_settings.parse({"captions": [entry] * (captions.MAX_CAPTIONS + 1)})
    for name in ("subtitles", "Subtitles_3"):
        with pytest.raises(InvalidSettings, match="reserved"):
            job_settings.parse({"ladder": [{"name": name, "height": 360, "bitrate": 600000}]})


def test_captions_travel_in_s3_metadata_as_json():
    doc = settings_from_metadata({"captions": json.dumps([{"source": "s3://ingest-bucket/a.srt", "language": "fr"}])})
    assert job_settings.parse(doc).captions[0].language == "fr"
    with pytest.raises(InvalidSettings):
        settings_from_metadata({"captions": "[{"})


def test_a_caption_in_another_bucket_is_refused_at_ingest():
    entries = job_settings.parse({"captions": [{"source": "s3://someone-elses/a.srt", "language": "fr"}]}).captions
    with pytest.raises(PermanentError) as refused:
        check_caption_sources(entries, "ingest-bucket")
    assert refused.value.code == "CAPTIONS_SOURCE_REFUSED" and "captions[0]" in refused.value.message
    assert ".srt" in CAPTION_SUFFIXES and ".vtt" in CAPTION_SUFFIXES


def test_the_master_playlist_names_the_subtitle_group_in_every_variant():
    video = {"name": "720p", "width": 1280, "height": 720, "frame_rate": 30, "codecs": "avc1.64001f",
             "peak_bandwidth": 3_000_000, "average_bandwidth": 2_500_000, "uri": "720p/index.m3u8"}
    text = master_playlist([video, {**video, "name": "360p", "uri": "360p/index.m3u8", "peak_bandwidth": 900_000}], None, [
        {"name": "subtitles", "label": 'Fr "quoted"', "language": "fr", "uri": "subtitles/index.m3u8"},
        {"name": "subtitles_1", "label": "English (captions)", "language": "en", "hearing_impaired": True,
         "forced": True, "default": True, "uri": "subtitles_1/index.m3u8"}])
    parsed = m3u8.loads(text)
    media = [m for m in parsed.media if m.type == "SUBTITLES"]
    assert [(m.name, m.language, m.default, m.autoselect, m.forced, m.characteristics) for m in media] == [
        ("Fr  quoted ", "fr", "NO", "YES", "NO", None),
        ("English (captions)", "en", "YES", "YES", "YES", captions.TRANSCRIBES)]
    assert all(p.stream_info.subtitles == "subtitles" and p.stream_info.closed_captions == "NONE"
               for p in parsed.playlists)


def test_a_presentation_waits_for_its_text_renditions_and_lists_their_segments():
    ladder = [{"name": "360p", "width": 640, "height": 360, "video_bitrate": 800_000}]
    chunk = {"kind": "chunk", "name": "chunk_0000", "index": 0, "start": 0, "end": 5, "status": "complete",
             "segs": {"360p": [{"index": 0, "start": 1.0, "end": 6.0, "bytes": 1000, "frames": 150}]}}
    text = {"kind": "text", "name": "subtitles", "label": "French", "language": "fr", "status": "processing"}
    assert presentation.build(ladder, [chunk, text], 5.0, False) is None
    done = presentation.build(ladder, [chunk, {**text, "status": "complete", "extinf": [2.0, 2.0, 1.0]}], 5.0, False)
    playlist = m3u8.loads(done.files["subtitles/index.m3u8"])
    assert [(s.uri, s.duration) for s in playlist.segments] == [("seg_00000.vtt", 2.0), ("seg_00001.vtt", 2.0),
                                                                ("seg_00002.vtt", 1.0)]
    assert playlist.is_endlist and 'SUBTITLES="subtitles"' in done.files["master.m3u8"]


def test_a_caption_url_to_this_machine_is_refused_without_private_targets():
    body = b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n"
    server = RawServer(sending(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body), lifetime=10)
    try:
        ctx = SimpleNamespace(settings=Settings(ingest_bucket="ingest", import_timeout=2), objects=FakeObjects())
        with pytest.raises(PermanentError) as refused:
            caption_import.fetch(ctx, f"http://127.0.0.1:{server.port}/en.vtt")
        assert refused.value.code == "CAPTIONS_SOURCE_REFUSED" and server.hits == []
        allowed = SimpleNamespace(settings=Settings(ingest_bucket="ingest", import_timeout=2, import_allow_private=True),
                                  objects=FakeObjects())
        texts = (captions.TextRendition("subtitles", "en", "English", source=f"http://127.0.0.1:{server.port}/en.vtt"),)
        (stored,) = caption_import.import_captions(allowed, texts, "job1")
        assert stored.source == "s3://ingest/imports/captions/job1/subtitles.vtt"
        assert allowed.objects.stored["imports/captions/job1/subtitles.vtt"].decode() == "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nhi\n\n"
    finally:
        server.close()


def test_a_caption_file_too_large_or_missing_is_a_named_error():
    class Objects:
        def get_small(self, bucket, key, limit):
            if key == "big.srt":
                raise ValueError("larger")
            return None
    ctx = SimpleNamespace(settings=Settings(ingest_bucket="ingest"), objects=Objects())
    with pytest.raises(PermanentError) as big:
        caption_import.fetch(ctx, "s3://ingest/big.srt")
    with pytest.raises(PermanentError) as missing:
        caption_import.fetch(ctx, "s3://ingest/gone.srt")
    assert (big.value.code, missing.value.code) == ("INVALID_CAPTIONS", "CAPTIONS_NOT_FOUND")
    assert big.value.message.startswith("big.srt is larger than")


def test_cues_that_would_flood_the_segments_are_refused_at_ingest():
    """10,000 cues of 99 h each, over a 10-minute source on a 2 s grid, would be repeated in 300
    segments each (about 135 MB): refused before anything is stored."""
    srt = "".join(f"{n}\n00:00:00,000 --> 99:00:00,000\nline {n}\n\n" for n in range(1, 10001))

    class Objects(FakeObjects):
        def get_small(self, bucket, key, limit):
            return srt.encode()
    ctx = SimpleNamespace(settings=Settings(ingest_bucket="ingest"), objects=Objects())
    texts = (captions.TextRendition("subtitles", "en", "English", source="s3://ingest/flood.srt"),)
    with pytest.raises(PermanentError) as refused:
        caption_import.import_captions(ctx, texts, "job1", [2.0] * 300)
    assert refused.value.code == "INVALID_CAPTIONS" and "flood.srt" in refused.value.message
    assert ctx.objects.stored == {}
    # the same file over a 10 s source is fine
    (stored,) = caption_import.import_captions(ctx, texts, "job1", [2.0] * 5)
    assert stored.source.endswith("/subtitles.vtt") and "/imports/captions/" in stored.source


def test_names_stay_unique_as_the_playlist_writes_them():
    entries = job_settings.parse({"captions": [{"source": "s3://ingest-bucket/a.srt", "language": "en", "name": n}
                                               for n in ("A", "A 3", "A", 'a"b', "a b")]}).captions
    labels = [t.label for t in captions.plan_text((), entries)[0]]
    assert len(set(labels)) == len(labels) == 5 and '"' not in "".join(labels)
