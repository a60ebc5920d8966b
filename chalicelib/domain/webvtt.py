"""Captions: SubRip (``.srt``) and WebVTT (``.vtt``) files read strictly enough to name the file
and line of a defect, written as WebVTT: a whole document, and the HLS WebVTT segments of a
subtitles rendition aligned to the video's MPEG-TS timeline. Pure: text in, text out.

Rules and sources (W3C "WebVTT: The Web Video Text Tracks Format", RFC 8216):

* bytes: UTF-8 (a BOM dropped) or UTF-16 with a BOM; else refused at the line of the first bad
  byte (WebVTT §4.1: UTF-8 only; SubRip declares nothing). CRLF and CR become LF (§4.1 line
  terminators); NUL is refused (§6.1 would replace it: in a caption file it means binary);
* a first line ``WEBVTT`` followed by end, space or tab is WebVTT (§4.1), anything else SubRip;
* SubRip: blank-line separated blocks of an optional counter, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``
  (``.`` too, hours omitted or 1-3 digits, 1-3 digit fractions, trailing ``X1:`` coordinates
  ignored), text lines. ``<b> <i> <u>`` are kept (§4.2.2 cue spans), other tags (``<font>``)
  and ASS overrides (``{\\an8}``) removed, ``& < >`` escaped (§4.2.2 escapes), so ``-->`` never
  appears in cue text (§4.1);
* WebVTT: the header up to the first blank line (``X-TIMESTAMP-MAP`` included) is ignored,
  ``NOTE``, ``STYLE`` and ``REGION`` blocks skipped (§4.1); a cue is an optional identifier,
  ``[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm [settings]`` (§4.1 timestamps: hours two digits or more,
  minutes and seconds 00-59, three millisecond digits), text kept as written (§4.2.2);
* a cue ending before it starts is an error; zero-length cues and cues without text are dropped;
  cues come back ordered by start time (§4.1); at most ``MAX_CUES`` cues of at most
  ``MAX_CUE_CHARS`` characters;
* HLS (RFC 8216 §3.5): each segment of the subtitles playlist is a WebVTT file whose
  ``X-TIMESTAMP-MAP=MPEGTS:<90 kHz>,LOCAL:00:00:00.000`` maps cue time 0 onto the video's
  MPEG-TS time of source time 0, holding every cue displayed during its EXTINF duration (§4.3.2.1)
  with its original times (a cue spanning segments is repeated; players de-duplicate it).
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Sequence

from .errors import PermanentError

MAX_CUES = 50_000
MAX_CUE_CHARS = 2_000
#: A cue's settings (``line:0 position:20%``) longer than this -> INVALID_CAPTIONS.
MAX_SETTINGS_CHARS = 200

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_WEBVTT_SIGNATURE = re.compile(r"WEBVTT(?:[ \t]|$)")
_SRT_TIME = r"(?:(\d{1,3}):)?([0-5]?\d):([0-5]?\d)[,.](\d{1,3})"
_SRT_TIMING = re.compile(rf"[ \t]*{_SRT_TIME}[ \t]*-->[ \t]*{_SRT_TIME}(?:[ \t].*)?", re.ASCII)
_VTT_TIME = r"(?:(\d{2,6}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_VTT_TIMING = re.compile(rf"{_VTT_TIME}[ \t]*-->[ \t]*{_VTT_TIME}(?:[ \t]+(.*))?", re.ASCII)
_VTT_SKIPPED = re.compile(r"NOTE(?:[ \t]|$)|(?:STYLE|REGION)[ \t]*$")
_ASS_OVERRIDE = re.compile(r"\{\\[^{}]*\}")
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)(?:[\s/][^<>]*)?>")
_KEPT_TAGS = frozenset("biu")
_BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt|nbsp|lrm|rlm|#\d+|#[xX][0-9A-Fa-f]+);)")


@dataclass(frozen=True)
class Cue:
    """One caption: shown from ``start`` to ``end`` (seconds from source time 0, ``end >
    start``). ``text``: WebVTT cue text (§4.2.2, already escaped; lines joined with ``"\\n"``,
    none blank); ``settings``: WebVTT cue settings (§4.4, e.g. ``"line:0 position:20%"``), ``""``
    for SubRip; ``identifier``: the WebVTT cue identifier or None."""

    start: float
    end: float
    text: str
    settings: str = ""
    identifier: str | None = None


def _fail(name: str, line: int, reason: str) -> PermanentError:
    return PermanentError("INVALID_CAPTIONS", f"{name}, line {line}: {reason}")


def _quote(text: str) -> str:
    shown = repr(text.strip())[1:-1]
    return "`" + (shown if len(shown) <= 60 else shown[:57] + "...") + "`"


def parse_captions(data: bytes, name: str) -> list[Cue]:
    """The cues of a caption file's bytes (``name`` is only for messages): WebVTT when its first
    line is ``WEBVTT`` (then end, space or tab; W3C WebVTT §4.1), else SubRip. Decoding: a UTF-8
    BOM is dropped, UTF-16 LE/BE with a BOM accepted, otherwise strict UTF-8; CRLF/CR become LF.
    Returns at least one cue, by start time (stable). Raises ``PermanentError("INVALID_CAPTIONS",
    "<name>, line <n>: <reason>")`` for bytes that are not text (the line of the first bad byte),
    a NUL, no cues, more than ``MAX_CUES`` cues, or any defect ``parse_srt`` / ``parse_webvtt``
    reports."""
    codec, body = "utf-8", data
    for bom, bom_codec in _BOMS:
        if data.startswith(bom):
            codec, body = bom_codec, data[len(bom):]
            break
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as error:
        before = _newlines(body[:error.start].decode(codec, errors="replace"))
        kind = "UTF-8" if codec == "utf-8" else "UTF-16"
        raise _fail(name, before.count("\n") + 1, f"not {kind} text") from None
    text = _newlines(text)
    if "\0" in text:
        raise _fail(name, text[:text.index("\0")].count("\n") + 1, "a NUL character (binary data)")
    webvtt = _WEBVTT_SIGNATURE.match(text.split("\n", 1)[0])
    return parse_webvtt(text, name) if webvtt else parse_srt(text, name)


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _lines(text: str) -> list[str]:
    return _newlines(text[1:] if text.startswith("\ufeff") else text).split("\n")


def _seconds(match: re.Match[str], first: int) -> int:
    """Milliseconds of groups ``first`` .. ``first + 3``: hours, minutes, seconds, fraction."""
    hours, minutes, seconds, fraction = match.group(first, first + 1, first + 2, first + 3)
    whole = (int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)
    return whole * 1000 + int(fraction.ljust(3, "0"))


class _Collector:
    """Checks and gathers cues (times in milliseconds) for one file."""

    def __init__(self, name: str):
        self.name, self.cues = name, []

    def add(self, line: int, start: int, end: int, text: str, settings: str = "",
            identifier: str | None = None) -> None:
        if end < start:
            raise _fail(self.name, line, f"the cue ends ({timestamp(end / 1000)}) before it "
                                         f"starts ({timestamp(start / 1000)})")
        if end == start or not text:
            return
        if len(text) > MAX_CUE_CHARS:
            raise _fail(self.name, line + 1, f"cue text is longer than {MAX_CUE_CHARS} characters")
        if len(self.cues) >= MAX_CUES:
            raise _fail(self.name, line, f"more than {MAX_CUES} cues")
        self.cues.append(Cue(start / 1000, end / 1000, text, settings, identifier))

    def result(self) -> list[Cue]:
        if not self.cues:
            raise _fail(self.name, 1, "no cues")
        return sorted(self.cues, key=lambda cue: cue.start)


def _blocks(lines: list[str]):
    """``(index of the first line, lines)`` of each run of non-blank lines."""
    block: list[str] = []
    for index in range(len(lines) + 1):
        if index < len(lines) and lines[index].strip():
            block.append(lines[index])
        elif block:
            yield index - len(block), block
            block = []


def _escape(text: str) -> str:
    return _BARE_AMPERSAND.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")


def srt_text(lines: Sequence[str]) -> str:
    """WebVTT cue text (W3C WebVTT §4.2.2) of SubRip text lines: ``<b> <i> <u>`` and their end
    tags kept (lower case), other tags and ASS override blocks (``{\\an8}``) removed, ``&`` (but
    not an entity such as ``&amp;``), ``<`` and ``>`` escaped, so ``-->`` becomes ``--&gt;``.
    Lines left blank are dropped; the rest joined with ``"\\n"``. Raises nothing."""
    out = []
    for line in lines:
        parts, last = [], 0
        line = _ASS_OVERRIDE.sub("", line)
        for tag in _TAG.finditer(line):
            parts.append(_escape(line[last:tag.start()]))
            if tag.group(2).lower() in _KEPT_TAGS:
                parts.append(f"<{tag.group(1)}{tag.group(2).lower()}>")
            last = tag.end()
        converted = ("".join(parts) + _escape(line[last:])).strip()
        if _TAG.sub("", converted).strip():
            out.append(converted)
    return "\n".join(out)


def parse_srt(text: str, name: str) -> list[Cue]:
    """The cues of SubRip text (LF, CRLF or CR line ends). Blocks are separated by blank lines:
    an optional counter (missing or out of sequence tolerated), ``HH:MM:SS,mmm --> HH:MM:SS,mmm``
    (``,`` or ``.``; hours 1-3 digits or omitted; the fraction is decimal: ``,5`` is 0.5 s;
    anything after the end time ignored), then text converted by ``srt_text``. Times in seconds.
    A block without text or of zero length is dropped. Raises ``PermanentError
    ("INVALID_CAPTIONS")`` at the line of a block with no timing line or a second one in its
    text, a cue ending before it starts, text over ``MAX_CUE_CHARS``, more than ``MAX_CUES``
    cues, or no cues at all."""
    lines, found = _lines(text), _Collector(name)
    for first, block in _blocks(lines):
        match = _SRT_TIMING.fullmatch(block[0])
        if match is None and len(block) > 1 and "-->" not in block[0]:
            match, first, block = _SRT_TIMING.fullmatch(block[1]), first + 1, block[1:]
        if match is None:
            raise _fail(name, first + 1, f"{_quote(block[0])} is not a timing line (start --> end)")
        for offset, line in enumerate(block[1:], first + 2):
            if _SRT_TIMING.fullmatch(line):
                raise _fail(name, offset, "a timing line inside cue text (a blank line is missing)")
        found.add(first + 1, _seconds(match, 1), _seconds(match, 5), srt_text(block[1:]))
    return found.result()


def parse_webvtt(text: str, name: str) -> list[Cue]:
    """The cues of WebVTT text (W3C WebVTT §4.1; LF, CRLF or CR line ends): the ``WEBVTT`` line
    and header lines up to the first blank line are ignored, ``NOTE``, ``STYLE`` and ``REGION``
    blocks skipped; a cue is an optional identifier line, ``[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm
    [settings]`` and text lines (kept as written) up to a blank line or a line holding ``-->``
    (which starts the next cue, as WebVTT's parser does, §6.1). Settings are re-joined with
    single spaces. Times in seconds. Cues without text or of zero length are dropped. Raises
    ``PermanentError("INVALID_CAPTIONS")`` at the line of a missing signature, a cue timing in
    the header, a block without a valid timing line first or second, a cue ending before it
    starts, text over ``MAX_CUE_CHARS``, more than ``MAX_CUES`` cues, or no cues at all."""
    lines, found = _lines(text), _Collector(name)
    if not _WEBVTT_SIGNATURE.match(lines[0]):
        raise _fail(name, 1, f"{_quote(lines[0])} is not a WebVTT signature (WEBVTT)")
    index = 1
    while index < len(lines) and lines[index].strip():
        if "-->" in lines[index]:
            raise _fail(name, index + 1, "a cue in the header (a blank line must follow WEBVTT)")
        index += 1
    while index < len(lines):
        if not lines[index].strip():
            index += 1
            continue
        if _VTT_SKIPPED.match(lines[index]):
            while index < len(lines) and lines[index].strip():
                index += 1
            continue
        identifier = None
        if "-->" not in lines[index] and index + 1 < len(lines) and lines[index + 1].strip():
            identifier, index = lines[index].strip(), index + 1
        match = _VTT_TIMING.fullmatch(lines[index].strip())
        if match is None:
            raise _fail(name, index + 1, f"{_quote(lines[index])} is not a timing line "
                                         "([HH:]MM:SS.mmm --> [HH:]MM:SS.mmm)")
        timing, index = index, index + 1
        while index < len(lines) and lines[index] != "" and "-->" not in lines[index]:
            index += 1  # only an empty line ends the text (§6.1: a line of spaces is text)
        settings = " ".join((match.group(9) or "").split())
        if len(settings) > MAX_SETTINGS_CHARS:
            raise _fail(name, timing + 1, f"cue settings are longer than {MAX_SETTINGS_CHARS} characters")
        found.add(timing + 1, _seconds(match, 1), _seconds(match, 5),
                  "\n".join(lines[timing + 1:index]), settings, identifier)
    return found.result()


def timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm`` (W3C WebVTT §4.1 timestamp, hours always, two digits or more) of
    ``seconds`` (>= 0) rounded to the millisecond. Raises ValueError for a negative time."""
    if seconds < 0:
        raise ValueError(f"negative time {seconds}")
    minutes, millis = divmod(int(round(seconds * 1000)), 60_000)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"


def _block(cue: Cue) -> str:
    head = [cue.identifier] if cue.identifier else []
    timing = f"{timestamp(cue.start)} --> {timestamp(cue.end)} {cue.settings}".rstrip()
    return "\n".join(head + [timing] + ([cue.text] if cue.text else [])) + "\n\n"


def document(cues: Sequence[Cue]) -> str:
    """A whole WebVTT file (W3C WebVTT §4.1): ``"WEBVTT\\n\\n"`` then, per cue in the order given
    (``parse_captions`` returns them by start time), its identifier line if any, ``start --> end
    [settings]`` and text, and a blank line. Raises nothing for valid cues."""
    return "WEBVTT\n\n" + "".join(_block(cue) for cue in cues)


def segment_durations(duration: float, segment_seconds: float) -> list[float]:
    """EXTINF durations (seconds, RFC 8216 §4.3.2.1) of a grid of ``segment_seconds`` covering
    ``[0, duration)``: whole segments, then the remainder if it is 1 ms or more (rounded to the
    microsecond). ``(13.0, 6)`` -> ``[6.0, 6.0, 1.0]``; ``(12.0, 6)`` -> ``[6.0, 6.0]``;
    ``duration <= 0`` -> ``[]``. Raises ValueError when ``segment_seconds <= 0``."""
    if segment_seconds <= 0:
        raise ValueError(f"segment_seconds must be positive, got {segment_seconds}")
    if duration <= 0:
        return []
    whole = int(duration // segment_seconds)
    remainder = round(duration - whole * segment_seconds, 6)
    return [float(segment_seconds)] * whole + ([remainder] if remainder >= 0.001 else [])


def segments(cues: Sequence[Cue], durations: Sequence[float], mpegts: int) -> list[str]:
    """One WebVTT segment text per entry of ``durations`` (seconds; RFC 8216 §3.5). Segment k
    covers ``[t_k, t_k + d_k)``, ``t_k`` the sum of the durations before it, and holds, by start
    time, every cue overlapping it (``cue.start < t_k + d_k`` and ``cue.end > t_k``) with its
    original times: a cue spanning segments is repeated in each. Every segment starts with
    ``WEBVTT\\nX-TIMESTAMP-MAP=MPEGTS:<mpegts>,LOCAL:00:00:00.000\\n\\n``, mapping cue time 0 to
    the 90 kHz MPEG-TS time ``mpegts`` of source time 0; a segment without cues is just that.
    Cues starting at or after the total duration are dropped. Raises ValueError for a negative
    duration or ``mpegts``."""
    if mpegts < 0 or any(d < 0 for d in durations):
        raise ValueError("durations and mpegts must not be negative")
    ends = list(accumulate(durations))
    starts = [0.0] + ends[:-1] if ends else []
    header = f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n\n"
    texts = [[header] for _ in durations]
    for cue in sorted(cues, key=lambda cue: cue.start):
        for k in range(bisect_right(ends, cue.start), bisect_left(starts, cue.end)):
            texts[k].append(_block(cue))
    return ["".join(parts) for parts in texts]


def segments_size(cues: Sequence[Cue], durations: Sequence[float]) -> int:
    """Characters ``segments`` would write for ``cues`` over ``durations`` (a cue is written once
    per segment it overlaps), without writing them: what a caller bounds first."""
    ends = list(accumulate(durations))
    starts = [0.0] + ends[:-1] if ends else []
    spans = sum(max(0, bisect_left(starts, cue.end) - bisect_right(ends, cue.start)) * len(_block(cue)) for cue in cues)
    return spans + len(durations) * 64
