"""The job-settings schema: one validation for the API body, S3 metadata and sidecars."""
import pytest

from chalicelib.domain import job_settings

from chalicelib.domain import settings_metadata
from chalicelib.domain.presets import presets

PRESETS = presets()


def test_an_empty_document_means_the_web_preset_and_hls_with_thumbnails():
    settings = job_settings.parse(None, PRESETS)
    assert settings.ladder == "web" and settings.priority == "normal" and settings.source_after == "keep"
    assert settings.outputs.hls and settings.outputs.thumbnails and settings.outputs.mp4 == ()
    assert settings.quality_metrics == ("psnr",)  # SSIM costs ~2.5 % more CPU: asked for
    assert [r.name for r in settings.preset(PRESETS).rungs] == ["1080p", "720p", "480p", "360p", "240p"]


def test_an_explicit_ladder_is_planned_exactly_without_a_native_rung():
    settings = job_settings.parse({"ladder": [{"name": "hi", "height": 720, "bitrate": 2_500_000},
                                   {"name": "lo", "height": 360, "bitrate": 700_000}],
                        "outputs": {"mp4": ["lo"]}}, PRESETS)
    preset = settings.preset(PRESETS)
    assert [(r.name, r.height, r.bitrate) for r in preset.rungs] == [("hi", 720, 2_500_000), ("lo", 360, 700_000)]
    assert not preset.native_rung


@pytest.mark.parametrize("document, field", [
    ({"ladder": "cinema"}, "ladder"),
    ({"ladder": [{"name": "x", "height": 720, "bitrate": 10}]}, "ladder.0.bitrate"),
    ({"ladder": [{"name": "x", "height": 721, "bitrate": 1_000_000}]}, "ladder.0.height"),
    ({"ladder": [{"name": "a/b", "height": 720, "bitrate": 1_000_000}]}, "ladder.0.name"),
    ({"ladder": [{"name": "a", "height": 720, "bitrate": 1_000_000}, {"name": "a", "height": 360, "bitrate": 500_000}]},
     "ladder"),
    ({"outputs": {"mp4": ["4000p"]}}, "outputs.mp4"),
    ({"outputs": {"hls": False}}, "outputs.hls"),
    ({"outputs": {"dash": True}}, "outputs.dash"),
    ({"segment_duration": 5}, "segment_duration"),
    ({"priority": "urgent"}, "priority"),
    ({"webhook_url": "ftp://example.com/x"}, "webhook_url"),
    ({"output_prefix": "shows/../../etc"}, "output_prefix"),
    ({"output_prefix": "a//b"}, "output_prefix"),
    ({"source_after": "shred"}, "source_after"),
    ({"metadata": {"k": "v" * 600}}, "metadata"),
    ({"colour": "blue"}, "colour"),
    ({"quality_metrics": ["vmaf"]}, "quality_metrics.0"),
    ({"quality_metrics": ["ssim", "ssim"]}, "quality_metrics"),
])
def test_an_invalid_document_names_its_field(document, field):
    with pytest.raises(job_settings.InvalidSettings) as caught:
        job_settings.parse(document, PRESETS)
    assert caught.value.field == field
    assert caught.value.code == "INVALID_SETTINGS" and caught.value.message.startswith(field + ": ")


def test_an_output_prefix_is_normalised_and_confined():
    assert job_settings.parse({"output_prefix": "/shows/ep-1.final/"}).output_prefix == "shows/ep-1.final"


def test_metadata_keys_map_onto_the_same_schema():
    doc = settings_metadata.settings_from_metadata({"ladder": "720:3000k,480:1.5M", "mp4": "720p", "priority": "high",
                                    "segment-duration": "4", "source-after": "delete", "meta-title": "Flower",
                                    "audio": "true", "quality-metrics": "SSIM, psnr"})
    settings = job_settings.parse(doc, PRESETS)
    assert [r.model_dump() for r in settings.ladder] == [{"name": "720p", "height": 720, "bitrate": 3_000_000},
                                                         {"name": "480p", "height": 480, "bitrate": 1_500_000}]
    assert settings.outputs.mp4 == ("720p",) and settings.outputs.audio
    assert (settings.priority, settings.segment_duration, settings.source_after) == ("high", 4, "delete")
    assert settings.metadata == {"title": "Flower"}
    assert settings.quality_metrics == ("psnr", "ssim")


def test_a_whole_document_in_one_metadata_key_equals_the_api_body():
    body = {"ladder": "roku-hls", "outputs": {"mp4": ["720p"]}, "priority": "high"}
    assert job_settings.parse(settings_metadata.settings_from_metadata(settings_metadata.metadata_for(body)), PRESETS) == job_settings.parse(body, PRESETS)


@pytest.mark.parametrize("meta, field", [
    ({"colour": "blue"}, "x-amz-meta-colour"),
    ({"ladder": "720-3000k,480:1M"}, "ladder"),
    ({"thumbnails": "maybe"}, "x-amz-meta-thumbnails"),
    ({"settings": "{not json"}, "x-amz-meta-settings"),
    ({"segment-duration": "six"}, "x-amz-meta-segment-duration"),
])
def test_bad_metadata_names_its_key(meta, field):
    with pytest.raises(job_settings.InvalidSettings) as caught:
        job_settings.parse(settings_metadata.settings_from_metadata(meta), PRESETS)
    assert caught.value.field == field


def test_no_metadata_is_no_document():
    assert settings_metadata.settings_from_metadata({}) is None


def test_presets_are_listed_as_data():
    listing = {p.name: p.to_dict() for p in PRESETS.values()}
    assert listing["roku-hls"]["absolute_uris"] and listing["roku-hls"]["playlist_content_type"] == "application/x-mpegURL"
    assert [r["height"] for r in listing["roku-hls"]["ladder"]] == [1080, 720, 480, 360]
    assert [r["height"] for r in presets((720, 360))["web"].to_dict()["ladder"]] == [720, 360]
