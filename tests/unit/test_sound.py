"""Audio tracks and loudness settings (chalicelib/domain/sound.py, loudness.py, the settings
schema): languages as RFC 5646 tags, names, the default track, selection, the master playlist's
audio group, loudnorm's filter text and report."""
from __future__ import annotations

import pytest

from chalicelib.domain import job_settings, loudness, sound
from chalicelib.domain.errors import InvalidSettings
from chalicelib.domain.ladder import plan_audio
from chalicelib.domain.media import parse_probe
from chalicelib.domain.playlist import master_playlist
from chalicelib.domain.settings_metadata import settings_from_metadata


def source(*audio):
    """ffprobe-shaped JSON: one video stream and the given audio streams."""
    video = {"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720, "avg_frame_rate": "25/1"}
    return {"format": {"duration": "10"}, "streams": [video, *audio]}


def track(language=None, default=0, title=None, described=0, channels=2):
    return {"codec_type": "audio", "codec_name": "aac", "channels": channels, "sample_rate": "48000",
            "tags": {k: v for k, v in (("language", language), ("title", title)) if v},
            "disposition": {"default": default, "visual_impaired": described}}


@pytest.mark.parametrize("given,tag", [("eng", "en"), ("spa", "es"), ("fre", "fr"), ("fra", "fr"), ("ger", "de"),
                                       ("pt-BR", "pt-BR"), ("und", None), (None, None), ("zz9", None)])
def test_language_tags_are_rfc_5646(given, tag):
    assert sound.language_tag(given) == tag


def test_every_track_with_its_language_name_and_default():
    info = parse_probe(source(track("eng"), track("spa", default=1), track("eng", described=1), track()))
    audios = plan_audio(info)
    assert [(a.name, a.track, a.language, a.label, a.default, a.describes_video) for a in audios] == [
        ("audio", 1, "es", "Spanish", True, False), ("audio_1", 0, "en", "English", False, False),
        ("audio_2", 2, "en", "English (audio description)", False, True), ("audio_3", 3, None, "Track 4", False, False)]
    assert info.audio_channels == 2 and info.audio_tracks[1].default


def test_selection_by_language_or_position_keeps_the_default_first():
    info = parse_probe(source(track("eng", default=1), track("spa"), track("fre")))
    assert [a.language for a in plan_audio(info, ["fr", "en"])] == ["en", "fr"]
    assert [a.track for a in plan_audio(info, [2])] == [2]
    assert [a.language for a in plan_audio(info, ["jpn"])] == ["en"], "nothing matched: the default track"


def test_master_playlist_has_one_audio_group():
    videos = [{"name": "720p", "width": 1280, "height": 720, "frame_rate": 25, "codecs": "avc1.64001f",
               "peak_bandwidth": 3_000_000, "average_bandwidth": 2_000_000, "uri": "720p/index.m3u8"}]
    audios = [{"name": "audio", "codecs": "mp4a.40.2", "channels": 2, "peak_bandwidth": 140_000,
               "average_bandwidth": 130_000, "uri": "audio/index.m3u8", "label": "English", "language": "en",
               "default": True},
              {"name": "audio_1", "codecs": "mp4a.40.2", "channels": 2, "peak_bandwidth": 150_000,
               "average_bandwidth": 128_000, "uri": "audio_1/index.m3u8", "label": 'Spanish "AD"', "language": "es",
               "default": False, "describes_video": True}]
    text = master_playlist(videos, audios)
    media = [line for line in text.splitlines() if line.startswith("#EXT-X-MEDIA")]
    assert 'NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES' in media[0]
    assert 'NAME="Spanish  AD ",LANGUAGE="es",DEFAULT=NO,AUTOSELECT=YES,' \
           'CHARACTERISTICS="public.accessibility.describes-video"' in media[1]
    assert "BANDWIDTH=3150000,AVERAGE-BANDWIDTH=2130000" in text, "the largest audio rendition counted"


def test_loudness_settings_from_every_source():
    assert job_settings.parse({"normalize_audio": True}).normalize_audio is True
    assert job_settings.parse({"normalize_audio": -23}).normalize_audio == -23
    assert sound.loudness_target(True) == -16 and sound.loudness_target(False) is None
    with pytest.raises(InvalidSettings) as err:
        job_settings.parse({"normalize_audio": -40})
    assert err.value.field == "normalize_audio"
    assert settings_from_metadata({"normalize-audio": "true"}) == {"normalize_audio": True}
    assert settings_from_metadata({"normalize-audio": "-23"}) == {"normalize_audio": -23.0}
    assert settings_from_metadata({"audio-tracks": "en, 2"}) == {"audio_tracks": ["en", 2]}
    with pytest.raises(InvalidSettings) as err:
        job_settings.parse({"audio_tracks": ["klingon-ish!"]})
    assert err.value.field.startswith("audio_tracks")


def test_rungs_may_not_take_an_audio_renditions_folder():
    with pytest.raises(InvalidSettings) as err:
        job_settings.parse({"ladder": [{"name": "audio_1", "height": 360, "bitrate": 800_000}]})
    assert "reserved" in err.value.reason


def test_loudnorm_filter_and_report():
    measured = loudness.Loudness(-41.4, 1.3, -21.5, -51.8, -0.45)
    text = loudness.loudnorm(-16, -2, measured)
    assert text.startswith("loudnorm=I=-16:TP=-2:LRA=1.3:measured_I=-41.4:measured_TP=-21.5:measured_LRA=1.3")
    assert text.endswith(":offset=-0.45:linear=true:print_format=json")
    log = ('[Parsed_loudnorm_0 @ 0x1]\n{\n\t"input_i" : "-41.43",\n\t"input_tp" : "-21.55",\n\t"input_lra" : "1.30",\n'
           '\t"input_thresh" : "-51.81",\n\t"output_i" : "-16.01",\n\t"output_tp" : "-2.00",\n\t"output_lra" : "4.60",\n'
           '\t"output_thresh" : "-26.17",\n\t"normalization_type" : "dynamic",\n\t"target_offset" : "-0.45"\n}\n')
    assert loudness.measured(log) == loudness.Loudness(-41.43, 1.3, -21.55, -51.81, -0.45)
    out, mode = loudness.normalized(log)
    assert (out.integrated, out.true_peak, mode) == (-16.01, -2.0, "dynamic")
