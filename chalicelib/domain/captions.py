"""Text tracks of a job: the source's subtitle streams and the caption files a job names
(``captions`` setting), each becoming one WebVTT subtitle rendition (``EXT-X-MEDIA``
TYPE=SUBTITLES) of one group, plus a whole ``.vtt`` beside the MP4s.

Pure: reads ffprobe-shaped stream JSON (``chalicelib.tools.media_probe`` emits the same
shape); the parsing and segmenting of WebVTT is ``webvtt``; fetching is
``services/text_task.py``.

Rules and sources:

* text subtitle codecs (mov_text, subrip, webvtt, ass/ssa and FFmpeg's other text formats)
  become renditions; bitmap ones (DVD, PGS, DVB: pictures of text, no text without OCR) and
  unknown ones are listed in the job's ``skipped_subtitles`` with the reason, never an error;
* ``LANGUAGE`` is an RFC 5646 tag (``sound.language_tag``: ``eng`` -> ``en``), ``NAME`` the
  caption's ``name``, else the stream's title, else the language's English name, marked
  "(captions)" for subtitles for the deaf and hard of hearing and "(forced)" for forced
  narratives, unique in the group (RFC 8216 §4.3.4.1.1);
* ``DEFAULT=YES`` only on a forced source track marked default (a player shows it unasked; a
  Matroska track is marked default unless its muxer was told otherwise), at most one; ``AUTOSELECT=YES`` on every track; ``FORCED=YES`` on a forced track (§4.3.4.1);
* captions (``kind: captions``, or the source's ``hearing_impaired``/``captions``
  dispositions) carry ``CHARACTERISTICS="public.accessibility.transcribes-spoken-dialog,
  public.accessibility.describes-music-and-sound"`` (Apple's HLS authoring specification,
  accessibility; RFC 8216 §4.3.4.1);
* cue times are source seconds; ``X-TIMESTAMP-MAP`` maps them onto the video's MPEG-TS clock,
  where source time 0 is ``ffmpeg_args.OUTPUT_TS_BASE`` (RFC 8216 §3.5, ``text_task``).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import sound, webhooks
from .settings_text import CONTROL_CHARACTERS, printable_name

#: FFmpeg's text subtitle decoders (each converts to ASS events its webvtt encoder writes).
TEXT_CODECS = frozenset({"mov_text", "subrip", "srt", "webvtt", "ass", "ssa", "text", "microdvd", "subviewer",
                         "subviewer1", "sami", "realtext", "mpl2", "vplayer", "pjs", "jacosub", "stl", "eia_608"})
#: Subtitles that are pictures of text: no text without OCR.
BITMAP_CODECS = frozenset({"dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle", "xsub", "dvb_teletext", "arib_caption"})
SUBTITLES_NAME = "subtitles"
#: What a caption track for the deaf and hard of hearing is (Apple's HLS authoring spec).
TRANSCRIBES = "public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound"
#: At most this many ``captions`` entries, and this many source subtitle tracks become
#: renditions (the rest are skipped with the reason).
MAX_CAPTIONS = 16
MAX_SOURCE_TRACKS = 16
#: A caption file holds at most this many bytes (a three-hour film's SRT is ~200 KB).
MAX_CAPTION_BYTES = 4 * 1024 * 1024
#: ... and its checked WebVTT copy at most this many (escaping ``<`` as ``&lt;`` grows text).
MAX_STORED_BYTES = 2 * MAX_CAPTION_BYTES
#: At most this many bytes of WebVTT segments per rendition: a cue is repeated in every segment
#: it spans, so 50,000 cues of 99 h would write ~0.5 GB for a 10-minute source.
MAX_SEGMENT_BYTES = 64 * 1024 * 1024
#: The job lists at most this many of a source's subtitle streams (``probe.subtitle_tracks``,
#: ``skipped_subtitles``): a file may hold a thousand, the job item at most 400 KB.
MAX_LISTED_TRACKS = 32
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.{1,1024})", re.DOTALL)


@dataclass(frozen=True)
class SubtitleTrack:
    """One subtitle stream of a source. ``position``: its index among the subtitle streams
    (ffmpeg's ``0:s:<position>``); ``codec``; ``language`` RFC 5646 or None; ``title`` or
    None; ``default``/``forced``/``hearing_impaired``: its dispositions."""

    position: int
    codec: str
    language: str | None
    title: str | None
    default: bool
    forced: bool
    hearing_impaired: bool

    @property
    def is_text(self) -> bool:
        """True for a text subtitle codec (``TEXT_CODECS``)."""
        return self.codec in TEXT_CODECS

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the job's ``probe``."""
        return {**asdict(self), "language": self.language or "und"}


def parse_subtitle_tracks(streams: Sequence[Mapping[str, Any]]) -> tuple[SubtitleTrack, ...]:
    """Every subtitle stream of ffprobe-shaped ``streams``, in order (the first
    ``MAX_LISTED_TRACKS``)."""
    tracks = []
    subtitles = [s for s in streams if s.get("codec_type") == "subtitle"][:MAX_LISTED_TRACKS]
    for position, stream in enumerate(subtitles):
        tags = {str(k).lower(): v for k, v in (stream.get("tags") or {}).items()}
        disposition = stream.get("disposition") or {}
        title = printable_name(str(tags["title"])).strip()[:64] if tags.get("title") else None
        tracks.append(SubtitleTrack(
            position=position, codec=str(stream.get("codec_name") or "unknown"),
            language=sound.language_tag(tags.get("language")), title=title or None,
            default=bool(disposition.get("default")), forced=bool(disposition.get("forced")),
            hearing_impaired=bool(disposition.get("hearing_impaired") or disposition.get("captions"))))
    return tuple(tracks)


def parse_s3_uri(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of ``s3://bucket/key``, or None when ``uri`` is not one."""
    match = _S3_URI.fullmatch(uri)
    return (match.group(1), match.group(2)) if match else None


def foreign_source(entries: Sequence["Caption"], ingest_bucket: str) -> int | None:
    """The position of the first ``captions`` entry whose ``s3://`` source is in another bucket
    than ``ingest_bucket`` (the one bucket every caller may name, as for sources), or None."""
    for position, caption in enumerate(entries):
        where = parse_s3_uri(caption.source)
        if where and where[0] != ingest_bucket:
            return position
    return None


class Caption(BaseModel):
    """One ``captions`` entry: a caption file to publish as a subtitle rendition. ``source``:
    ``s3://<ingest bucket>/<key>`` or an https URL (fetched with the same address checks as a
    media import); ``language`` an RFC 5646 or ISO 639-2 tag (kept as RFC 5646); ``name`` the
    track's ``NAME`` (default: the language's name); ``kind`` ``subtitles`` (a translation) or
    ``captions`` (for the deaf and hard of hearing: ``TRANSCRIBES``). SRT or WebVTT, UTF-8 or
    UTF-16 with a byte order mark, at most ``MAX_CAPTION_BYTES``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str = Field(max_length=2048)
    language: str = Field(max_length=35)
    name: str | None = Field(default=None, min_length=1, max_length=64)
    kind: Literal["subtitles", "captions"] = "subtitles"

    @field_validator("source")
    @classmethod
    def _source(cls, source: str) -> str:
        if source.startswith("s3://"):
            parsed = parse_s3_uri(source)
            if not parsed or CONTROL_CHARACTERS.search(parsed[1]):
                raise ValueError("not s3://<bucket>/<key>")
            return source
        if not source.startswith(("https://", "http://")):
            raise ValueError("an s3://<ingest bucket>/<key> or https:// URL of an SRT or WebVTT file")
        return webhooks.check_url(source)

    @field_validator("language")
    @classmethod
    def _language(cls, language: str) -> str:
        tag = sound.language_tag(language)
        if not tag:
            raise ValueError(f"{printable_name(language)[:16]!r} is not a language tag (en, fr, pt-BR, fre)")
        return tag

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None and CONTROL_CHARACTERS.search(name):
            raise ValueError("holds a control character")
        return name


@dataclass(frozen=True)
class TextRendition:
    """One WebVTT subtitle rendition: ``name`` its folder and task (``subtitles``,
    ``subtitles_1`` ...); ``language`` RFC 5646 or None; ``label`` its ``NAME``;
    ``hearing_impaired`` (``CHARACTERISTICS``), ``default``, ``forced``; made from the source's
    subtitle stream ``track`` (``0:s:<track>``) or from the caption file ``source`` (the
    checked copy ingest stored, at S3 version ``source_version``)."""

    name: str
    language: str | None
    label: str
    hearing_impaired: bool = False
    default: bool = False
    forced: bool = False
    track: int | None = None
    source: str | None = None
    source_version: str | None = None

    kind = "text"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for a task message or a DynamoDB item (None fields left out)."""
        return {"kind": self.kind, **{k: v for k, v in asdict(self).items() if v is not None}}


def rendition_name(index: int) -> str:
    """Folder and task name of the ``index``-th text rendition: ``subtitles``,
    ``subtitles_1`` ... (``job_settings.RESERVED_NAMES`` keeps rungs off them)."""
    return SUBTITLES_NAME if index == 0 else f"{SUBTITLES_NAME}_{index}"


def _label(base: str | None, language: str | None, hearing_impaired: bool, forced: bool, number: int) -> str:
    if base:
        return base
    label = sound.language_name(language) or f"Subtitles {number}"
    if hearing_impaired:
        label += " (captions)"
    if forced:
        label += " (forced)"
    return label


def _written(name: str) -> str:
    """``name`` as a quoted-string attribute holds it (RFC 8216 §4.2: no ``"``, CR or LF)."""
    return "".join(" " if ch in '"\r\n' else ch for ch in name)


def plan_text(tracks: Sequence[SubtitleTrack], captions: Sequence[Caption] = ()) -> tuple[tuple[TextRendition, ...], tuple[dict, ...]]:
    """The text renditions of a job, and the source tracks skipped (``{position, codec,
    language, reason}``): every text track of the source (at most ``MAX_SOURCE_TRACKS``) in
    source order, then every ``captions`` entry in order. At most one is ``default`` (the first
    forced source track marked default)."""
    chosen: list[TextRendition] = []
    skipped: list[dict] = []
    labels: list[str] = []
    has_default = False

    def add(label: str, **fields: Any) -> None:
        label, number = _written(label), len(chosen) + 1  # NAMEs as the playlist writes them
        while label in labels:
            label, number = f"{_written(label)} {number}", number + 1
        labels.append(label)
        chosen.append(TextRendition(name=rendition_name(len(chosen)), label=label, **fields))

    for track in tracks:
        reason = None
        if track.codec in BITMAP_CODECS:
            reason = f"{track.codec} subtitles are pictures of text (no text without OCR)"
        elif not track.is_text:
            reason = f"{track.codec} is not a text subtitle format"
        elif sum(1 for r in chosen if r.track is not None) >= MAX_SOURCE_TRACKS:
            reason = f"more than {MAX_SOURCE_TRACKS} subtitle tracks"
        if reason:
            skipped.append({"position": track.position, "codec": track.codec, "language": track.language or "und",
                            "reason": reason})
            continue
        # Matroska marks every track default unless told otherwise (FlagDefault defaults to
        # 1), so the flag alone says nothing: only a forced track marked default is shown unasked
        default = track.default and track.forced and not has_default
        has_default = has_default or default
        add(_label(track.title, track.language, track.hearing_impaired, track.forced, len(chosen) + 1),
            language=track.language, hearing_impaired=track.hearing_impaired, default=default, forced=track.forced,
            track=track.position)
    for caption in captions:
        hearing_impaired = caption.kind == "captions"
        add(_label(caption.name, caption.language, hearing_impaired, False, len(chosen) + 1),
            language=caption.language, hearing_impaired=hearing_impaired, source=caption.source)
    return tuple(chosen), tuple(skipped)
