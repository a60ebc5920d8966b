"""The ``max_resolution`` job setting (issue 23): ``1080p`` (default), ``1440p`` or ``2160p``,
the same from the API body, the upload's S3 metadata and the sidecar; the ``web`` preset gains
1440p (and 2160p) rungs above the deployment's ladder; ``roku-hls`` refuses anything above
1080p; an explicit rung above ``max_resolution`` is refused naming the rung. Planning still
never upscales."""
import typing

import pytest

from chalicelib.config import Settings
from chalicelib.domain import job_settings, settings_metadata, settings_text, work
from chalicelib.domain.ladder import DEFAULT_BITRATES, dropped_rungs, plan
from chalicelib.domain.media import MediaInfo
from chalicelib.domain.presets import MAX_RESOLUTIONS, presets
from infra.local.cli.client import settings_from_args
from tests.unit.test_cli_settings import args_of

PRESETS = presets()
DEFAULT_LADDER = ["1080p", "720p", "480p", "360p", "240p"]
UHD_LADDER = ["2160p", "1440p", *DEFAULT_LADDER]


def source(width: int, height: int, fps: float = 30.0, seconds: float = 60.0) -> MediaInfo:
    return MediaInfo(width=width, height=height, display_width=width, display_height=height, rotation=0,
                     duration=seconds, frame_rate=fps, video_codec="h264", pix_fmt="yuv420p", audio_codec="aac",
                     audio_channels=2, audio_sample_rate=48000, format_name="mov,mp4", bit_rate=None, size=None)


def plan_for(info: MediaInfo, document: dict | None, web_heights=(1080, 720, 480, 360, 240)):
    """The ladder ingest plans: the settings' preset resolved against the deployment's presets."""
    deployment = presets(web_heights)
    preset = job_settings.parse(document, deployment).preset(deployment)
    return plan(info, preset.rungs, 60.0, preset.native_rung, preset.exact), preset


# --- the setting, from every source ---------------------------------------------------------

def test_the_schema_takes_exactly_the_presets_values():
    annotation = job_settings.JobSettings.model_fields["max_resolution"].annotation
    assert typing.get_args(annotation) == tuple(MAX_RESOLUTIONS) == ("1080p", "1440p", "2160p")


def test_the_default_is_1080p_and_keeps_the_default_ladder():
    settings = job_settings.parse(None, PRESETS)
    assert settings.max_resolution == "1080p"
    assert settings.to_dict()["max_resolution"] == "1080p"  # shown in the job resource's settings
    assert [r.name for r in settings.preset(PRESETS).rungs] == DEFAULT_LADDER


@pytest.mark.parametrize("value, ladder", [("1080p", DEFAULT_LADDER), ("1440p", ["1440p", *DEFAULT_LADDER]),
                                           ("2160p", UHD_LADDER)])
def test_the_web_preset_gains_rungs_above_the_deployments(value, ladder):
    preset = job_settings.parse({"max_resolution": value}, PRESETS).preset(PRESETS)
    assert [r.name for r in preset.rungs] == ladder
    assert {r.height: r.bitrate for r in preset.rungs} == {r.height: DEFAULT_BITRATES[r.height] for r in preset.rungs}
    assert preset.name == "web" and preset.native_rung and not preset.exact


def test_a_shortened_deployment_ladder_gains_only_the_high_rungs():
    deployment = presets((360, 240))
    preset = job_settings.parse({"max_resolution": "2160p"}, deployment).preset(deployment)
    assert [r.height for r in preset.rungs] == [2160, 1440, 360, 240]


def test_body_metadata_and_sidecar_mean_the_same():
    body = {"max_resolution": "2160p", "priority": "high"}
    from_body = job_settings.parse(body, PRESETS)
    from_keys = job_settings.parse(settings_metadata.settings_from_metadata(
        {"max-resolution": "2160p", "priority": "high"}), PRESETS)
    from_whole = job_settings.parse(settings_metadata.settings_from_metadata(settings_metadata.metadata_for(body)),
                                    PRESETS)
    from_sidecar = job_settings.parse(settings_text.load_json('{"max_resolution": "2160p", "priority": "high"}',
                                                             "sidecar"), PRESETS)
    assert from_body == from_keys == from_whole == from_sidecar
    assert from_body.max_resolution == "2160p"


def test_metadata_for_round_trips_a_parsed_document():
    settings = job_settings.parse({"max_resolution": "1440p", "ladder": "web"}, PRESETS)
    meta = settings_metadata.metadata_for(settings.to_dict())
    assert '"max_resolution":"1440p"' in meta["settings"]
    assert job_settings.parse(settings_metadata.settings_from_metadata(meta), PRESETS) == settings


def test_vodpipe_submit_max_resolution():
    doc = settings_from_args(args_of(["clip.mp4", "--max-resolution", "2160p"]))
    assert doc == {"max_resolution": "2160p"}
    assert job_settings.parse(doc, PRESETS).max_resolution == "2160p"


# --- refusals, named by field ---------------------------------------------------------------

@pytest.mark.parametrize("document", [{"max_resolution": "4320p"}, {"max_resolution": "4k"},
                                      {"max_resolution": 2160}, {"max_resolution": None}])
def test_an_unknown_value_is_named_by_its_field(document):
    with pytest.raises(job_settings.InvalidSettings) as caught:
        job_settings.parse(document, PRESETS)
    assert caught.value.field == "max_resolution" and caught.value.code == "INVALID_SETTINGS"


def test_an_unknown_value_in_s3_metadata_is_named_too():
    with pytest.raises(job_settings.InvalidSettings) as caught:
        job_settings.parse(settings_metadata.settings_from_metadata({"max-resolution": "8k"}), PRESETS)
    assert caught.value.field == "max_resolution"


def test_roku_hls_refuses_more_than_1080p():
    assert job_settings.parse({"ladder": "roku-hls", "max_resolution": "1080p"}, PRESETS)
    with pytest.raises(job_settings.InvalidSettings) as caught:
        job_settings.parse({"ladder": "roku-hls", "max_resolution": "2160p"}, PRESETS)
    assert caught.value.field == "max_resolution"
    assert "roku-hls" in caught.value.reason and "1080p" in caught.value.reason


def test_an_explicit_rung_above_max_resolution_is_refused_naming_the_rung():
    ladder = [{"name": "uhd", "height": 2160, "bitrate": 12_000_000},
              {"name": "hd", "height": 1080, "bitrate": 5_000_000}]
    with pytest.raises(job_settings.InvalidSettings) as caught:  # before: planned (up to 4320)
        job_settings.parse({"ladder": ladder})
    assert caught.value.field == "ladder.0.height"
    assert "max_resolution" in caught.value.reason and "2160p" in caught.value.reason
    with pytest.raises(job_settings.InvalidSettings) as caught:  # rung text: the same rule
        job_settings.parse({"ladder": "1080:5M,1440:9M", "max_resolution": "1080p"})
    assert caught.value.field == "ladder.1.height"
    preset = job_settings.parse({"ladder": ladder, "max_resolution": "2160p"}, PRESETS).preset(PRESETS)
    assert [(r.name, r.height, r.bitrate) for r in preset.rungs] == [("uhd", 2160, 12_000_000), ("hd", 1080, 5_000_000)]
    with pytest.raises(job_settings.InvalidSettings) as caught:  # above the largest value
        job_settings.parse({"ladder": "4320:40M", "max_resolution": "2160p"})
    assert caught.value.field == "ladder.0.height"


def test_an_explicit_ladder_gains_no_rung():
    preset = job_settings.parse({"ladder": "720:3M,360:800k", "max_resolution": "2160p"}, PRESETS).preset(PRESETS)
    assert [r.height for r in preset.rungs] == [720, 360]


# --- planning from a probed source ----------------------------------------------------------

def test_a_2160p_source_with_2160p_gets_2160p_1440p_and_the_default_ladder():
    videos, preset = plan_for(source(3840, 2160), {"max_resolution": "2160p"})
    assert [(r.name, r.width, r.height) for r in videos.videos] == [
        ("2160p", 3840, 2160), ("1440p", 2560, 1440), ("1080p", 1920, 1080), ("720p", 1280, 720),
        ("480p", 854, 480), ("360p", 640, 360), ("240p", 426, 240)]
    assert videos.videos[0].video_bitrate == DEFAULT_BITRATES[2160]


def test_a_2160p_source_by_default_gets_the_unchanged_default_ladder():
    videos, preset = plan_for(source(3840, 2160), None)
    assert [(r.name, r.width, r.height) for r in videos.videos] == [
        ("1080p", 1920, 1080), ("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360), ("240p", 426, 240)]


def test_a_portrait_2160p_source_stays_portrait():
    videos, _ = plan_for(source(2160, 3840), {"max_resolution": "2160p"})
    assert [(r.name, r.width, r.height) for r in videos.videos][:3] == [
        ("2160p", 2160, 3840), ("1440p", 1440, 2560), ("1080p", 1080, 1920)]


def test_a_1440p_source_with_2160p_is_never_upscaled():
    info = source(2560, 1440)
    videos, preset = plan_for(info, {"max_resolution": "2160p"})
    assert [r.name for r in videos.videos] == ["1440p", *DEFAULT_LADDER]
    assert dropped_rungs(info, preset.rungs) == ["2160p"]


# --- the other limits a 2160p job meets -----------------------------------------------------

def test_bitrates_follow_apples_hevc_table_in_h264_terms():
    # ladder.DEFAULT_BITRATES: our 1080p rate x Apple's HEVC ratio to its 4,500 kbit/s 1080p row
    assert DEFAULT_BITRATES[1440] == 5_000_000 * 8100 // 4500 == 9_000_000
    assert DEFAULT_BITRATES[2160] == 12_900_000 == round(5_000_000 * 11600 / 4500, -5)
    assert DEFAULT_BITRATES[2160] <= 15_000_000  # Apple 1.34: some UHD variant at most 15 Mbit/s


@pytest.mark.parametrize("fps, expected", [(30, 482.9), (60, 963.2)])
def test_a_minute_of_2160p_passes_the_default_work_limit(fps, expected):
    """7 rungs from 2160p to 240p: 15.7 M output pixels a frame; 100,000 vCPU-s (the default
    MaxJobVcpuSeconds) passes 2160p30 up to about 3.4 hours, 2160p60 up to about 1.7 hours."""
    info = source(3840, 2160, fps=fps, seconds=60)
    videos, _ = plan_for(info, {"max_resolution": "2160p"})
    estimate = work.estimate(info, videos.videos, True)
    assert estimate.vcpu_seconds == pytest.approx(expected, rel=0.01)
    work.check_work(estimate, Settings().max_job_vcpu_seconds)
    hours = Settings().max_job_vcpu_seconds / estimate.vcpu_seconds / 60
    assert hours == pytest.approx(3.45 if fps == 30 else 1.73, abs=0.01)
    assert info.width * info.height <= Settings().max_pixels


def test_presets_list_the_max_resolutions_they_take():
    listing = {p.name: p.to_dict() for p in PRESETS.values()}
    assert listing["web"]["max_resolutions"] == ["1080p", "1440p", "2160p"]
    assert listing["roku-hls"]["max_resolutions"] == ["1080p"]
    assert [r["height"] for r in listing["web"]["ladder"]] == [1080, 720, 480, 360, 240]  # the default's ladder
