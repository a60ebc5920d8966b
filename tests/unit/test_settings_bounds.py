"""Bounded parsing of job settings (issue 22): nesting depth, document size, ladder length, S3's
2 KB of user metadata, reserved names and control characters, each refused as ``InvalidSettings``
naming the field, in linear time; and a property-based test (hypothesis) that arbitrary JSON
gets settings or ``InvalidSettings`` and nothing else.
"""
import json
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chalicelib.domain import job_settings

from chalicelib.domain import settings_metadata, settings_text
from chalicelib.domain.job_settings import InvalidSettings
from chalicelib.domain.presets import presets
from infra.local.cli.main import main as cli_main

PRESETS = presets()
RUNG = {"name": "r", "height": 360, "bitrate": 500_000}


def nested(levels: int, inner: str = "") -> str:
    """A settings document whose ``metadata`` nests ``levels`` levels in all (the document is one)."""
    return '{"metadata":' + "[" * (levels - 1) + inner + "]" * (levels - 1) + "}"


def nested_object(levels: int) -> dict:
    """The same as a Python object, built without recursion."""
    inner: list = []
    for _ in range(levels - 2):
        inner = [inner]
    return {"metadata": inner}


# --- nesting depth ------------------------------------------------------------------------

def test_deep_settings_metadata_is_invalid_settings_at_once():
    # before: json.loads raised RecursionError, which ingest retried toward INGEST_FAILED
    with pytest.raises(InvalidSettings) as caught:
        settings_metadata.settings_from_metadata({"settings": nested(1500)})
    assert caught.value.field == "x-amz-meta-settings"
    assert caught.value.reason == f"metadata is nested deeper than {settings_text.MAX_DEPTH} levels of objects and arrays"


def test_deep_json_text_names_the_top_level_field_of_a_body():
    with pytest.raises(InvalidSettings) as caught:
        settings_text.load_json(nested(1500), "body")
    assert caught.value.field == "metadata" and "deeper than 8 levels" in caught.value.reason
    with pytest.raises(InvalidSettings) as caught:  # no top-level key to name: the source
        settings_text.load_json("[" * 1500 + "]" * 1500, "sidecar")
    assert caught.value.field == "sidecar"


def test_a_deep_document_object_is_refused_before_the_schema():
    with pytest.raises(InvalidSettings) as caught:
        job_settings.parse(nested_object(1500))
    assert caught.value.field == "metadata" and "deeper than 8 levels" in caught.value.reason


def test_the_depth_bound_admits_every_valid_shape_and_strings_hide_brackets():
    assert settings_text.load_json(nested(settings_text.MAX_DEPTH), "body")  # at the bound: JSON, not refused
    with pytest.raises(InvalidSettings):
        settings_text.load_json(nested(settings_text.MAX_DEPTH + 1), "body")
    value = "[" * 10 + "{" * 10 + '"\\' + "[" * 8  # brackets, an escaped quote and a backslash in a string
    text = json.dumps({"metadata": {"k": value}})
    assert job_settings.parse(settings_text.load_json(text, "body")).metadata == {"k": value}


def test_parsing_is_linear_in_the_document_size():
    # 64 KiB of the worst shapes for the depth scan: brackets, and one unterminated string. The
    # bound is a guard against quadratic work (billions of steps at this size), not a benchmark:
    # the linear scan takes milliseconds, so it holds on a loaded machine too.
    for text in ("[]" * (32 * 1024), '{"a": "' + "[" * 65_000):
        started = time.perf_counter()
        with pytest.raises(InvalidSettings):
            job_settings.parse(settings_text.load_json(text, "body"))
        assert time.perf_counter() - started < 5.0


@pytest.mark.parametrize("text, reason", [
    ('{"segment_duration": NaN}', "not JSON (NaN is not JSON)"),
    ('{"segment_duration": Infinity}', "not JSON (Infinity is not JSON)"),
    ('{"segment_duration": ' + "1" * 5000 + "}", "not JSON (Exceeds the limit (4300 digits)"),
    (b'{"metadata": {"k": "\xff"}}', "not UTF-8"),
    ("x" * (64 * 1024 + 1), "65537 characters; at most 65536 bytes"),
    ('{"ladder": ', "not JSON (Expecting value: line 1 column 12)"),
])
def test_text_that_is_not_strict_json_is_invalid_settings(text, reason):
    with pytest.raises(InvalidSettings) as caught:
        settings_text.load_json(text, "body")
    assert caught.value.field == "body" and caught.value.reason.startswith(reason)


# --- ladder length --------------------------------------------------------------------------

def test_a_ladder_over_the_maximum_is_refused_before_any_rung_is_validated():
    rungs = [{**RUNG, "name": f"r{i}", "height": 240 + 2 * i} for i in range(8)] + [{"name": "bad", "bitrate": 1}]
    with pytest.raises(InvalidSettings) as caught:  # before: ladder.8.bitrate, after validating every rung
        job_settings.parse({"ladder": rungs})
    assert caught.value.field == "ladder" and caught.value.reason == "an explicit ladder has 1 to 8 rungs, not 9"
    with pytest.raises(InvalidSettings) as caught:  # rung text too: counted before any part is read
        job_settings.parse({"ladder": ",".join(["720:3M"] * 8 + ["junk"])})
    assert caught.value.field == "ladder" and caught.value.reason.endswith("not 9")


def test_outputs_mp4_names_at_most_as_many_rungs_as_a_ladder_has():
    with pytest.raises(InvalidSettings) as caught:  # before: accepted (no preset to check against)
        job_settings.parse({"outputs": {"mp4": [f"r{i}" for i in range(9)]}})
    assert caught.value.field == "outputs.mp4"


# --- S3's 2 KB of user metadata -----------------------------------------------------------

def test_metadata_for_refuses_settings_over_s3s_2_kb_naming_the_largest_field():
    settings = job_settings.parse({"metadata": {f"k{i}": "v" * 400 for i in range(5)}}).to_dict()  # valid: 4 KiB max
    with pytest.raises(InvalidSettings) as caught:  # before: returned, and S3 would refuse the upload
        settings_metadata.metadata_for(settings)
    assert caught.value.field == "metadata"
    assert "over S3's 2048-byte limit" in caught.value.reason and "x-amz-meta-settings" in caught.value.reason


def test_metadata_for_counts_keys_and_values_in_utf8_bytes_up_to_the_limit():
    budget = job_settings.S3_METADATA_MAX_BYTES - len("x-amz-meta-settings") - len('{"metadata":{"k":""}}')
    meta = settings_metadata.metadata_for({"metadata": {"k": "v" * budget}})
    assert settings_metadata.s3_metadata_bytes(meta) == job_settings.S3_METADATA_MAX_BYTES
    with pytest.raises(InvalidSettings):
        settings_metadata.metadata_for({"metadata": {"k": "v" * (budget + 1)}})
    assert settings_metadata.s3_metadata_bytes({"k": "é"}) == len("x-amz-meta-k") + 2


def test_vodpipe_submit_refuses_settings_over_2_kb_before_any_upload(capsys):
    argv = ["submit", "no-such-file.mp4", *[a for i in range(5) for a in ("--meta", f"k{i}={'v' * 400}")]]
    assert cli_main(argv) == 2  # before: 2 as well, but only after finding no file; now before looking
    out = capsys.readouterr().out
    assert "invalid settings" in out and "metadata:" in out and "2048" in out


# --- reserved names and control characters --------------------------------------------------

@pytest.mark.parametrize("name", ["audio", "Audio", "thumbnails", "mp4"])
def test_a_rung_named_after_a_folder_the_job_writes_is_refused(name):
    with pytest.raises(InvalidSettings) as caught:  # before: accepted, and the rung wrote into audio/
        job_settings.parse({"ladder": [{**RUNG, "name": name}]})
    assert caught.value.field == "ladder.0.name" and "reserved" in caught.value.reason


@pytest.mark.parametrize("document, field", [
    ({"output_prefix": "shows/ep1\n"}, "output_prefix"),
    ({"output_prefix": "shows\n/ep1"}, "output_prefix"),
    ({"metadata": {"title\n": "x"}}, "metadata"),
    ({"metadata": {"title": "line\nbreak"}}, "metadata"),
    ({"metadata": {"title": "nul\x00"}}, "metadata"),
    ({"metadata": {"title": "esc\x1b[31m"}}, "metadata"),
    ({"metadata": {"title": "sep\u2028"}}, "metadata"),
    ({"metadata": {"title": "lone \ud800"}}, "metadata"),
    ({"ladder": [{**RUNG, "name": "r\n"}]}, "ladder.0.name"),
])
def test_control_characters_are_refused_naming_the_field(document, field):
    with pytest.raises(InvalidSettings) as caught:
        job_settings.parse(document)
    assert caught.value.field == field


def test_an_unknown_field_with_control_characters_is_named_printably():
    with pytest.raises(InvalidSettings) as caught:
        job_settings.parse({"colour\n" + "x" * 100: "blue"})
    assert caught.value.field == "colour\\n" + "x" * 56 + "..." and "\n" not in caught.value.message


# --- S3 metadata keys: malformed values never escape as other errors -------------------------

@pytest.mark.parametrize("meta, field", [
    ({"settings": '{"outputs": [["audio", true]]}', "mp4": "360p"}, "x-amz-meta-settings"),  # before: TypeError
    ({"settings": '{"outputs": "ab"}', "audio": "true"}, "x-amz-meta-settings"),  # before: ValueError
    ({"settings": '{"metadata": ["x"]}', "meta-title": "t"}, "x-amz-meta-settings"),  # before: TypeError
    ({"segment-duration": "\u00b2"}, "x-amz-meta-segment-duration"),  # before: ValueError from int()
])
def test_malformed_metadata_is_invalid_settings(meta, field):
    with pytest.raises(InvalidSettings) as caught:
        job_settings.parse(settings_metadata.settings_from_metadata(meta))
    assert caught.value.field == field


# --- property: arbitrary JSON gets settings or InvalidSettings, nothing else, quickly ---------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
KEYS = st.sampled_from(["ladder", "outputs", "mp4", "hls", "audio", "thumbnails", "segment_duration", "priority",
                        "max_resolution", "webhook_url", "output_prefix", "source_after", "quality_metrics",
                        "metadata", "name", "height", "bitrate"]) | st.text(max_size=10)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
                    max_leaves=30)
#: Plausible values where the schema looks, so examples get past the first check.
FIELD_VALUES = {
    "ladder": st.sampled_from(["web", "roku-hls", "720:3000k,480:1.5M", "cinema"]) | st.lists(
        st.fixed_dictionaries({"name": st.text(max_size=6), "height": st.integers(0, 5000),
                               "bitrate": st.integers(0, 10**8)}), max_size=10) | JSON,
    "outputs": st.fixed_dictionaries({}, optional={"mp4": st.lists(st.text(max_size=6), max_size=10) | JSON,
                                                   "audio": JSON, "thumbnails": JSON, "hls": JSON}) | JSON,
    "segment_duration": st.sampled_from([2, 4, 6, 5, 6.0, "6"]) | JSON,
    "output_prefix": st.text(max_size=30) | JSON,
    "metadata": st.dictionaries(st.text(max_size=40), st.text(max_size=40), max_size=40) | JSON,
    "quality_metrics": st.lists(st.sampled_from(["psnr", "ssim", "vmaf"]), max_size=4) | JSON,
    "max_resolution": st.sampled_from(["1080p", "1440p", "2160p", "4320p"]) | JSON,
}
DOCUMENTS = st.fixed_dictionaries({}, optional=FIELD_VALUES) | JSON


def deep(levels: int, leaf) -> tuple[object, str]:
    """``leaf`` under ``levels`` alternate objects (``{"metadata": ...}``) and lists, as a Python
    object and as JSON text, both built without recursion (``json.dumps`` would recurse)."""
    value = leaf
    for i in range(levels):
        value = [value] if i % 2 else {"metadata": value}
    opening = ["[" if i % 2 else '{"metadata":' for i in range(levels)]
    closing = ["]" if i % 2 else "}" for i in range(levels)]
    return value, "".join(reversed(opening)) + json.dumps(leaf) + "".join(closing)


#: (document, its JSON text): arbitrary JSON, or JSON nested from just under the bound to 3,000 levels.
PAIRS = DOCUMENTS.map(lambda d: (d, json.dumps(d))) | st.builds(deep, st.integers(settings_text.MAX_DEPTH - 2, 3000), JSON)
EXAMPLE_SECONDS = 2.0  # per call, tracemalloc on: a bound against runaway work (a few ms measured)
EXAMPLE_BYTES = 16 * 1024 * 1024  # peak Python allocation per call (tracemalloc)


def settings_or_invalid(run) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        assert isinstance(run(), job_settings.JobSettings)
    except InvalidSettings as e:
        assert e.code == "INVALID_SETTINGS" and e.field
    finally:
        elapsed, (_, peak) = time.perf_counter() - started, tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < EXAMPLE_SECONDS and peak < EXAMPLE_BYTES


#: 150 examples each (a few seconds); no example database (nothing written into the checkout).
PROPERTY = settings(max_examples=150, deadline=2000, database=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(PAIRS)
def test_parse_of_arbitrary_json_gives_settings_or_invalid_settings(pair):
    document, text = pair
    settings_or_invalid(lambda: job_settings.parse(document, PRESETS))
    settings_or_invalid(lambda: job_settings.parse(settings_text.load_json(text, "body"), PRESETS))


@PROPERTY
@given(st.dictionaries(st.sampled_from(["preset", "ladder", "mp4", "audio", "thumbnails", "segment-duration",
                                        "priority", "webhook-url", "output-prefix", "source-after",
                                        "quality-metrics", "meta-title", "meta-", "colour"]) | st.text(max_size=10),
                       st.text(max_size=30), max_size=6),
       st.none() | PAIRS.map(lambda pair: pair[1]) | st.text(max_size=40))
def test_settings_from_arbitrary_metadata_give_settings_or_invalid_settings(meta, whole):
    if whole is not None:
        meta = {**meta, "settings": whole}
    settings_or_invalid(lambda: job_settings.parse(settings_metadata.settings_from_metadata(meta), PRESETS))
