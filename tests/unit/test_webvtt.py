"""Caption parsing (SubRip, WebVTT) and WebVTT writing: documents and HLS segments."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from chalicelib.domain import webvtt
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.webvtt import (Cue, document, parse_captions, parse_srt, parse_webvtt,
                                      segment_durations, segments, timestamp)

SRT = """1
00:00:01,000 --> 00:00:03,500
<font color="#ffff00">Hello</font>, <I>world</I>!
{\\an8}<b>Tom & Jerry</b> &amp; friends

3
00:00:04.250 --> 00:00:05,000 X1:100 X2:600 Y1:50 Y2:80
a <u>b</u> < c > d --> e

00:00:05,000 --> 00:00:05,000
zero length

7
00:00:06,000 --> 00:00:07,000

0:07,500 --> 0:08,000
no hours, &nbsp;&lrm;kept entities
"""

VTT = """WEBVTT - a title
Kind: captions
X-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000

NOTE this is a comment
spanning lines

STYLE
::cue { color: yellow }

REGION
id:fred width:40%

intro
00:01.000 --> 00:00:02.500 line:0   position:20%\talign:start
<v Roger>Hi <c.loud>there</c></v>
second line

00:00:00.500 --> 00:00:00.900
earlier cue &amp; first

2
00:00:03.000 --> 100:00:00.000
long one
"""


def _error(data: bytes | str, name: str = "subs.srt") -> str:
    with pytest.raises(PermanentError) as caught:
        parse_captions(data.encode() if isinstance(data, str) else data, name)
    assert caught.value.code == "INVALID_CAPTIONS"
    return caught.value.message


# --- SubRip -----------------------------------------------------------------------------------

def test_srt_cues_converted_to_webvtt_text_and_sorted():
    cues = parse_captions(SRT.encode(), "movie.srt")
    assert cues == [
        Cue(1.0, 3.5, "Hello, <i>world</i>!\n<b>Tom &amp; Jerry</b> &amp; friends"),
        Cue(4.25, 5.0, "a <u>b</u> &lt; c &gt; d --&gt; e"),
        Cue(7.5, 8.0, "no hours, &nbsp;&lrm;kept entities"),
    ]
    assert all("-->" not in cue.text for cue in cues)


def test_srt_crlf_bom_missing_counter_and_sorting():
    text = ("\ufeff5\r\n00:00:10,000 --> 00:00:11,000\r\nlater\r\n\r\n\r\n"
            "00:00:02,000 --> 00:00:03,000\r\nearlier\r\n")
    cues = parse_captions(text.encode("utf-8"), "a.srt")
    assert [(c.start, c.end, c.text) for c in cues] == [(2.0, 3.0, "earlier"), (10.0, 11.0, "later")]


def test_srt_cr_only_line_ends_and_three_digit_hours():
    cues = parse_captions(b"1\r100:00:00,5 --> 100:00:01,25\rx\r", "a.srt")
    assert cues == [Cue(360000.5, 360001.25, "x")]


def test_srt_tag_only_lines_are_dropped_not_left_blank():
    cues = parse_srt("1\n00:00:01,000 --> 00:00:02,000\n<font color=red></font>\n{\\i1}\nreal\n", "a.srt")
    assert cues == [Cue(1.0, 2.0, "real")]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(codec):
    bom = b"\xff\xfe" if codec == "utf-16-le" else b"\xfe\xff"
    data = bom + "1\r\n00:00:01,000 --> 00:00:02,000\r\nÉté — 夏\r\n".encode(codec)
    assert parse_captions(data, "a.srt") == [Cue(1.0, 2.0, "Été — 夏")]


def test_latin1_bytes_report_the_line_of_the_first_bad_byte():
    data = "1\r\n00:00:01,000 --> 00:00:02,000\r\nok\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\ncafé\r\n"
    assert _error(data.encode("latin-1"), "fr.srt") == "fr.srt, line 7: not UTF-8 text"


def test_nul_is_refused_with_its_line():
    assert _error(b"1\n00:00:01,000 --> 00:00:02,000\nab\x00c\n") == "subs.srt, line 3: a NUL character (binary data)"


def test_malformed_timing_line_is_an_error_at_its_line():
    data = "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:01:02,500 -> 00:01:04,000\ntext\n"
    assert _error(data) == ("subs.srt, line 6: `00:01:02,500 -> 00:01:04,000` is not a timing "
                            "line (start --> end)")


def test_text_block_without_timing_is_an_error():
    data = "1\n00:00:01,000 --> 00:00:02,000\nok\n\nstray\n"
    assert _error(data) == "subs.srt, line 5: `stray` is not a timing line (start --> end)"


def test_missing_blank_line_between_cues_is_reported():
    data = "1\n00:00:01,000 --> 00:00:02,000\nhello\n2\n00:00:03,000 --> 00:00:04,000\nworld\n"
    assert _error(data) == "subs.srt, line 5: a timing line inside cue text (a blank line is missing)"


def test_cue_ending_before_it_starts():
    data = "\n\n1\n00:00:02,000 --> 00:00:01,000\ntext\n"
    assert _error(data) == "subs.srt, line 4: the cue ends (00:00:01.000) before it starts (00:00:02.000)"


def test_quoted_input_is_short_and_free_of_control_characters():
    message = _error("1\n" + "\x1b[31m" + "x" * 200 + "\n")
    quoted = message.split("`")[1]
    assert "\x1b" not in message and len(quoted) <= 60 and quoted.startswith("\\x1b[31m")


@pytest.mark.parametrize("data", ["", "\n\n  \n", "1\n00:00:01,000 --> 00:00:02,000\n\n"])
def test_no_cues(data):
    assert _error(data) == "subs.srt, line 1: no cues"


def test_too_many_cues(monkeypatch):
    monkeypatch.setattr(webvtt, "MAX_CUES", 2)
    data = "".join(f"00:00:0{i},000 --> 00:00:0{i},500\nc{i}\n\n" for i in range(3))
    assert _error(data) == "subs.srt, line 7: more than 2 cues"


def test_cue_text_too_long():
    data = "1\n00:00:01,000 --> 00:00:02,000\n" + "x" * 2001 + "\n"
    assert _error(data) == "subs.srt, line 3: cue text is longer than 2000 characters"
    assert parse_captions(("1\n00:00:01,000 --> 00:00:02,000\n" + "x" * 2000).encode(), "a")[0].text


# --- WebVTT -----------------------------------------------------------------------------------

def test_webvtt_header_notes_style_region_identifiers_settings():
    cues = parse_captions(VTT.encode(), "movie.vtt")
    assert cues == [
        Cue(0.5, 0.9, "earlier cue &amp; first"),
        Cue(1.0, 2.5, "<v Roger>Hi <c.loud>there</c></v>\nsecond line", "line:0 position:20% align:start",
            "intro"),
        Cue(3.0, 360000.0, "long one", "", "2"),
    ]


def test_webvtt_detection_needs_signature_then_end_space_or_tab():
    assert parse_captions(b"WEBVTT\n\n00:01.000 --> 00:02.000\nx\n", "a")[0].text == "x"
    assert parse_captions(b"WEBVTT\tfoo\n\n00:01.000 --> 00:02.000\nx\n", "a")[0].start == 1.0
    assert "is not a timing line" in _error(b"WEBVTTX\n\n00:01.000 --> 00:02.000\nx\n")


def test_webvtt_line_with_arrow_starts_next_cue():
    cues = parse_webvtt("WEBVTT\n\n00:01.000 --> 00:02.000\na\n00:03.000 --> 00:04.000\nb\n", "a.vtt")
    assert cues == [Cue(1.0, 2.0, "a"), Cue(3.0, 4.0, "b")]


@pytest.mark.parametrize("timing", ["0:01.000 --> 00:02.000", "00:01.00 --> 00:02.000",
                                    "00:61.000 --> 01:02.000", "00:01,000 --> 00:02,000",
                                    "1:00:01.000 --> 1:00:02.000", "00:01.000 -> 00:02.000",
                                    "00:01.000 --> 00:02.0001"])
def test_webvtt_strict_timing(timing):
    data = f"WEBVTT\n\n00:00.000 --> 00:00.500\nok\n\nid\n{timing}\ntext\n"
    assert _error(data, "a.vtt").startswith("a.vtt, line 7: ")


def test_webvtt_block_without_timing_is_reported_at_its_line():
    assert _error("WEBVTT\n\nlonely\n", "a.vtt") == (
        "a.vtt, line 3: `lonely` is not a timing line ([HH:]MM:SS.mmm --> [HH:]MM:SS.mmm)")


def test_webvtt_cue_in_header_and_end_before_start():
    assert _error("WEBVTT\n00:01.000 --> 00:02.000\nx\n", "a.vtt") == (
        "a.vtt, line 2: a cue in the header (a blank line must follow WEBVTT)")
    assert _error("WEBVTT\n\n00:03.000 --> 00:02.000\nx\n", "a.vtt") == (
        "a.vtt, line 3: the cue ends (00:00:02.000) before it starts (00:00:03.000)")


def test_webvtt_crlf_with_bom():
    data = b"\xef\xbb\xbfWEBVTT\r\n\r\nNOTE\r\n\r\n1\r\n00:00:01.000 --> 00:00:02.000\r\nhi\r\n"
    assert parse_captions(data, "a.vtt") == [Cue(1.0, 2.0, "hi", "", "1")]


# --- writing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("seconds,text", [(0, "00:00:00.000"), (1.5, "00:00:01.500"),
                                          (61.0004, "00:01:01.000"), (59.9996, "00:01:00.000"),
                                          (3723.25, "01:02:03.250"), (360000, "100:00:00.000")])
def test_timestamp(seconds, text):
    assert timestamp(seconds) == text


def test_timestamp_refuses_negative():
    with pytest.raises(ValueError):
        timestamp(-0.5)


def test_document_and_round_trip():
    cues = [Cue(1.0, 2.0, "a\nb", "line:0", "first"), Cue(3.0, 4.5, "c")]
    text = document(cues)
    assert text == ("WEBVTT\n\nfirst\n00:00:01.000 --> 00:00:02.000 line:0\na\nb\n\n"
                    "00:00:03.000 --> 00:00:04.500\nc\n\n")
    assert parse_webvtt(text, "x") == cues
    srt_cues = parse_captions(SRT.encode(), "movie.srt")
    assert parse_captions(document(srt_cues).encode(), "movie.vtt") == srt_cues


def test_segment_durations():
    assert segment_durations(13.0, 6) == [6.0, 6.0, 1.0]
    assert segment_durations(12.0, 6) == [6.0, 6.0]
    assert segment_durations(12.0005, 6) == [6.0, 6.0]
    assert segment_durations(4.0, 6) == [4.0]
    assert segment_durations(0, 6) == [] and segment_durations(-1, 6) == []
    with pytest.raises(ValueError):
        segment_durations(10, 0)


HEADER = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n"


def test_segments_header_repetition_and_past_end():
    cues = [Cue(5.0, 7.0, "spans"), Cue(1.0, 2.0, "first"), Cue(12.5, 14.0, "crosses end"),
            Cue(13.0, 15.0, "past end"), Cue(6.0, 6.5, "second")]
    texts = segments(cues, [6.0, 6.0, 1.0], 126000)
    assert len(texts) == 3 and all(text.startswith(HEADER) for text in texts)
    assert texts[0] == (HEADER + "00:00:01.000 --> 00:00:02.000\nfirst\n\n"
                        "00:00:05.000 --> 00:00:07.000\nspans\n\n")
    assert texts[1] == (HEADER + "00:00:05.000 --> 00:00:07.000\nspans\n\n"
                        "00:00:06.000 --> 00:00:06.500\nsecond\n\n")
    assert texts[2] == HEADER + "00:00:12.500 --> 00:00:14.000\ncrosses end\n\n"
    assert "past end" not in "".join(texts)


def test_segments_boundaries_and_empty_segments():
    texts = segments([Cue(0.0, 6.0, "ends at the boundary"), Cue(18.0, 19.0, "late")], [6.0] * 4, 0)
    header = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n"
    assert texts[0].count("-->") == 1 and texts[1] == header and texts[2] == header
    assert "late" in texts[3]
    assert segments([Cue(1.0, 2.0, "x")], [], 0) == []


# --- properties -------------------------------------------------------------------------------

@given(st.integers(min_value=0, max_value=1000 * 3600 * 999))
def test_timestamp_round_trips_through_webvtt(millis):
    text = timestamp(millis / 1000)
    parsed = parse_webvtt(f"WEBVTT\n\n{text} --> {timestamp(millis / 1000 + 1)}\nx\n", "p.vtt")
    assert parsed[0].start == millis / 1000 and timestamp(parsed[0].start) == text


@given(st.integers(min_value=0, max_value=10 ** 7), st.integers(min_value=500, max_value=10 ** 5))
def test_segment_durations_cover_the_duration(duration_ms, segment_ms):
    durations = segment_durations(duration_ms / 1000, segment_ms / 1000)
    assert abs(sum(durations) - duration_ms / 1000) < 0.001
    assert all(0.001 <= d <= segment_ms / 1000 for d in durations)


_cue_times = st.tuples(st.integers(0, 60_000), st.integers(1, 20_000)).map(
    lambda pair: (pair[0] / 1000, (pair[0] + pair[1]) / 1000))


@settings(max_examples=200)
@given(st.lists(_cue_times, max_size=20), st.lists(st.integers(1, 8_000), min_size=1, max_size=12))
def test_every_cue_is_in_exactly_the_segments_it_overlaps(times, durations_ms):
    cues = [Cue(start, end, f"cue {i}") for i, (start, end) in enumerate(times)]
    durations = [d / 1000 for d in durations_ms]
    texts = segments(cues, durations, 900000)
    assert len(texts) == len(durations)
    start = 0.0
    for text, duration in zip(texts, durations):
        assert text.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n")
        body = parse_webvtt(text, "seg.vtt") if "-->" in text else []
        expected = [cue for cue in cues if cue.start < start + duration and cue.end > start]
        assert sorted(body, key=lambda c: (c.start, c.text)) == sorted(expected, key=lambda c: (c.start, c.text))
        starts = [cue.start for cue in body]
        assert starts == sorted(starts)
        start += duration


@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
                        max_size=40), min_size=1, max_size=4))
def test_srt_text_never_yields_arrows_or_blank_lines(lines):
    text = webvtt.srt_text(lines)
    assert "-->" not in text and "<font" not in text
    assert all(line.strip() for line in text.split("\n")) if text else True
