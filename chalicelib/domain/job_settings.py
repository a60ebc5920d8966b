"""Per-job settings: one schema, validated in one place, read from three sources with the same
meaning — the body of ``POST /jobs``, the upload's S3 user metadata (``x-amz-meta-*``,
``settings_from_metadata``) and a sidecar JSON next to the upload (``<key>.json``).

A document (every field optional)::

    {"ladder": "web" | "720:3000k,480:1.5M" | [{"name": "720p", "height": 720, "bitrate": 3000000}, ...],
     "outputs": {"hls": true, "mp4": ["720p"], "audio": false, "thumbnails": true},
     "segment_duration": 6, "priority": "normal" | "high", "max_resolution": "1080p" | "1440p" | "2160p",
     "normalize_audio": false | true | -23, "audio_tracks": ["en", "es"] | [0, 2],
     "captions": [{"source": "s3://<ingest bucket>/ep1.fr.srt" | "https://...", "language": "fr",
                   "name": "Français", "kind": "subtitles" | "captions"}],
     "webhook_url": "https://...", "output_prefix": "shows/ep1",
     "source_after": "keep" | "delete" | "archive", "quality_metrics": ["psnr"] | ["psnr", "ssim"],
     "metadata": {"any": "string"}}

``height`` is the rung's short side in pixels (portrait stays portrait), ``bitrate`` its average
video bitrate in bit/s. Never upscale still holds for an explicit ladder: a rung taller than the
source is dropped at planning and reported in the job (``ladder.plan_video``). ``max_resolution``
is the tallest rung a job's ladder may have (``presets.Preset.up_to``: ``web`` gains 1440p and
2160p rungs, ``roku-hls`` takes 1080p only); an explicit rung above it is refused. Invalid or
unknown values raise ``InvalidSettings`` naming the field (the API answers 400 with it; an
S3-borne document fails the job with ``INVALID_SETTINGS``).
"""
from __future__ import annotations

import json
import re
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InvalidSettings
from . import sound, webhooks
from .captions import MAX_CAPTIONS, Caption
from .settings_text import CONTROL_CHARACTERS, check_depth, printable_name
from .presets import DEFAULT_MAX_RESOLUTION, DEFAULT_PRESET, MAX_RESOLUTIONS, Preset, PresetRung

#: A rung or metadata name: letters, digits, ``_``, ``-``, 1-32 characters. Always applied with
#: ``fullmatch`` (``re.match`` with ``$`` would let a trailing newline through).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
#: Rung names that are folders the job itself writes under its prefix: ``audio/`` (the audio
#: rendition, ``ladder.plan_audio``, and ``audio/audio.m4a``, ``services/progressive.py``),
#: ``thumbnails/`` (sprites, poster and WebVTT track, ``ladder.plan_thumbnails`` and
#: ``presentation.THUMBNAILS_TRACK``) and ``mp4/`` (``<rung>.mp4`` downloads). A rung is written
#: to ``<prefix>/<name>/``, so these are refused, in any letter case (a download onto a
#: case-insensitive file system would merge ``Audio/`` and ``audio/``). ``master.m3u8`` cannot
#: collide: a name has no ``.``.
RESERVED_NAMES = ("audio", "thumbnails", "mp4", "subtitles")
#: ... and the further audio and text renditions' folders, ``audio_1`` ...
#: (``sound.rendition_name``), ``subtitles_1`` ... (``captions.rendition_name``).
RESERVED_PATTERN = re.compile(r"(audio|subtitles)_[0-9]+", re.IGNORECASE)
#: ``output_prefix``: ``/``-separated parts of letters, digits, ``.``, ``_``, ``-``; no part
#: is ``.`` or ``..``; at most 256 characters. The job's outputs go under ``<prefix>/``.
PREFIX_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")  # fullmatch: no trailing newline
MAX_PREFIX = 256
#: An explicit ladder has 1 to ``MAX_RUNGS`` rungs (``outputs.mp4`` at most as many names); a
#: longer one is refused before any rung is validated.
MAX_RUNGS = 8
#: S3 user-defined metadata: at most 2 KB per object, "the sum of the number of bytes in the
#: UTF-8 encoding of each key and value" (Amazon S3 User Guide, "Working with object metadata",
#: user-defined object metadata). Counted here with each key as its ``x-amz-meta-`` header name,
#: the stricter reading, so what passes here passes S3 however it counts the prefix.
S3_METADATA_MAX_BYTES = 2048
S3_METADATA_PREFIX = "x-amz-meta-"
#: ``metadata``: at most 32 pairs, values up to 512 characters, 4 KiB in all (it is echoed in
#: the job resource and in every event).
MAX_METADATA_PAIRS, MAX_METADATA_VALUE, MAX_METADATA_BYTES = 32, 512, 4096
#: Segment durations (s): whole multiples of the 2 s IDR grid (``ffmpeg_args.GOP_SECONDS``)
#: from 2 to 10 (Apple's HLS authoring spec recommends 6).
SEGMENT_DURATIONS = (2, 4, 6, 8, 10)
PRIORITIES = ("normal", "high")
#: ``audio_tracks`` lists at most this many tracks (positions 0 to 15).
MAX_AUDIO_TRACKS = 16
SOURCE_AFTER = ("keep", "delete", "archive")
#: What each encoder measures of its own output (``quality_metrics``): luma PSNR costs nothing
#: measurable in x264, SSIM about 2.5 % more CPU (20 s of the bench clip, 5 rungs, three runs
#: each: 40.3 CPU-s without or with PSNR, 41.1 with both), so SSIM is asked for, not default.
QUALITY_METRICS = ("psnr", "ssim")
DEFAULT_QUALITY_METRICS = ("psnr",)


class Rung(BaseModel):
    """One explicit ladder rung: ``name`` (used in output keys and ``outputs.mp4``), ``height``
    the short side in pixels (16-2160, even, at most the job's ``max_resolution``), ``bitrate``
    the average video bitrate in bit/s."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=NAME_PATTERN)
    height: int = Field(ge=16, le=max(MAX_RESOLUTIONS.values()), multiple_of=2)
    bitrate: int = Field(ge=50_000, le=60_000_000)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if not re.fullmatch(NAME_PATTERN, name):
            raise ValueError("not a name (letters, digits, '_', '-', up to 32)")
        if name.lower() in RESERVED_NAMES or RESERVED_PATTERN.fullmatch(name):
            raise ValueError(f"{name!r} is reserved: the job writes its own {name.lower()}/ folder "
                             f"(reserved: {', '.join(RESERVED_NAMES)})")
        return name


class Outputs(BaseModel):
    """What a job makes. ``hls`` is always made (chunks are encoded as HLS segments, and MP4s
    are remuxed from them); ``mp4`` lists the rung names that also get a progressive MP4
    (``faststart``); ``audio`` adds an ``.m4a`` of the audio rendition; ``thumbnails`` the
    poster and the sprite sheets with their WebVTT track."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    hls: Literal[True] = True
    mp4: tuple[str, ...] = Field(default=(), max_length=MAX_RUNGS)
    audio: bool = False
    thumbnails: bool = True

    @field_validator("mp4")
    @classmethod
    def _unique(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(names)) != len(names):
            raise ValueError("rung names repeat")
        return names


class JobSettings(BaseModel):
    """A validated settings document (see the module docstring). Build with ``parse``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ladder: str | tuple[Rung, ...] = DEFAULT_PRESET
    outputs: Outputs = Outputs()
    segment_duration: int = 6
    priority: Literal["normal", "high"] = "normal"
    max_resolution: Literal["1080p", "1440p", "2160p"] = DEFAULT_MAX_RESOLUTION
    normalize_audio: bool | float = False
    audio_tracks: tuple[int | str, ...] | None = Field(default=None, min_length=1, max_length=MAX_AUDIO_TRACKS)
    captions: tuple[Caption, ...] = Field(default=(), max_length=MAX_CAPTIONS)
    webhook_url: str | None = Field(default=None, max_length=2048)
    output_prefix: str | None = None
    source_after: Literal["keep", "delete", "archive"] = "keep"
    quality_metrics: tuple[Literal["psnr", "ssim"], ...] = DEFAULT_QUALITY_METRICS
    metadata: dict[str, str] = {}

    @field_validator("quality_metrics")
    @classmethod
    def _metrics(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(names)) != len(names):
            raise ValueError("metrics repeat")
        return tuple(m for m in QUALITY_METRICS if m in names)

    @field_validator("normalize_audio")
    @classmethod
    def _loudness(cls, value: bool | float) -> bool | float:
        low, high = sound.LOUDNESS_RANGE
        if not isinstance(value, bool) and not low <= value <= high:
            raise ValueError(f"true (-16 LUFS, AES TD1004), false, or a target from {low:g} to {high:g} LUFS")
        return value

    @field_validator("audio_tracks")
    @classmethod
    def _tracks(cls, tracks: tuple | None) -> tuple | None:
        for track in tracks or ():
            if isinstance(track, int) and not 0 <= track < MAX_AUDIO_TRACKS:
                raise ValueError(f"a track position is 0 to {MAX_AUDIO_TRACKS - 1}")
            if isinstance(track, str) and not sound.language_tag(track):
                raise ValueError(f"{printable_name(track)[:16]!r} is not a language tag (en, es, fre) or a position")
        return tracks

    @field_validator("ladder")
    @classmethod
    def _ladder(cls, ladder):
        if isinstance(ladder, tuple):
            if not 1 <= len(ladder) <= MAX_RUNGS:
                raise ValueError(f"an explicit ladder has 1 to {MAX_RUNGS} rungs")
            if len({r.name for r in ladder}) != len(ladder):
                raise ValueError("rung names repeat")
            if len({r.height for r in ladder}) != len(ladder):
                raise ValueError("rung heights repeat")
        return ladder

    @field_validator("segment_duration")
    @classmethod
    def _segment(cls, seconds: int) -> int:
        if seconds not in SEGMENT_DURATIONS:
            raise ValueError(f"must be one of {', '.join(map(str, SEGMENT_DURATIONS))} (s, whole 2 s GOPs)")
        return seconds

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, url: str | None) -> str | None:
        # the URL rule (webhooks.check_url): https, no spaces, CR/LF or control characters,
        # no user:password, a host, at most 2048 characters (http only to a loopback host)
        return None if url is None else webhooks.check_url(url)

    @field_validator("output_prefix")
    @classmethod
    def _prefix(cls, prefix: str | None) -> str | None:
        if prefix is None:
            return None
        prefix = prefix.strip("/")
        if not prefix or len(prefix) > MAX_PREFIX:
            raise ValueError(f"must be 1 to {MAX_PREFIX} characters")
        for part in prefix.split("/"):
            if not PREFIX_PART.fullmatch(part) or part in (".", ".."):
                raise ValueError(f"part {part!r} is not allowed (letters, digits, '.', '_', '-'; no '..', no empty part)")
        return prefix

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, pairs: dict[str, str]) -> dict[str, str]:
        if len(pairs) > MAX_METADATA_PAIRS:
            raise ValueError(f"at most {MAX_METADATA_PAIRS} pairs")
        for key, value in pairs.items():
            if not re.fullmatch(NAME_PATTERN, key):
                raise ValueError(f"key {key!r} is not a name (letters, digits, '_', '-', up to 32)")
            if len(value) > MAX_METADATA_VALUE:
                raise ValueError(f"value of {key!r} is longer than {MAX_METADATA_VALUE} characters")
            if bad := CONTROL_CHARACTERS.search(value):
                raise ValueError(f"value of {key!r} holds a control character ({bad.group()!r}); "
                                 "newlines and other control characters are not allowed")
        if len(json.dumps(pairs).encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"more than {MAX_METADATA_BYTES} bytes")
        return pairs

    @model_validator(mode="after")
    def _mp4_rungs(self):
        if isinstance(self.ladder, tuple):
            for i, rung in enumerate(self.ladder):  # InvalidSettings passes through pydantic as raised
                if rung.height > MAX_RESOLUTIONS[self.max_resolution]:
                    fits = next(n for n, h in MAX_RESOLUTIONS.items() if h >= rung.height)
                    raise InvalidSettings(f"ladder.{i}.height", f"{rung.height} is above max_resolution "
                                          f"{self.max_resolution}; set max_resolution to {fits} for it")
            names = {r.name for r in self.ladder}
            unknown = [n for n in self.outputs.mp4 if n not in names]
            if unknown:
                raise ValueError(f"outputs.mp4 names {', '.join(unknown)}, not in the ladder ({', '.join(sorted(names))})")
        return self

    def preset(self, presets: Mapping[str, Preset]) -> Preset:
        """The ladder to plan: the named preset at ``max_resolution`` (``Preset.up_to``), or an
        explicit ladder as an unnamed preset (``custom``: exactly the given rungs, no rung at the
        source's size).

        Raises ``InvalidSettings`` for an unknown preset name, a ``max_resolution`` the preset
        does not take, or an ``outputs.mp4`` rung the preset does not have."""
        if isinstance(self.ladder, tuple):
            return Preset("custom", "explicit ladder", tuple(PresetRung(r.name, r.height, r.bitrate) for r in self.ladder),
                          native_rung=False, exact=True)
        if self.ladder not in presets:
            raise InvalidSettings("ladder", f"unknown preset {self.ladder!r} (presets: {', '.join(sorted(presets))})")
        try:
            chosen = presets[self.ladder].up_to(self.max_resolution)
        except ValueError as e:
            raise InvalidSettings("max_resolution", str(e)) from None
        names = {r.name for r in chosen.rungs}
        unknown = [n for n in self.outputs.mp4 if n not in names]
        if unknown:
            raise InvalidSettings("outputs.mp4", f"{', '.join(unknown)} not in preset {chosen.name!r} "
                                                 f"({', '.join(r.name for r in chosen.rungs)})")
        return chosen

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for the job item, messages and the job resource)."""
        return self.model_dump(mode="json")


def parse(document: Any, presets: Mapping[str, Preset] | None = None) -> JobSettings:
    """Validate a settings document (a dict; ``None`` means all defaults). With ``presets``,
    also resolve the ladder (unknown preset, ``outputs.mp4`` outside the preset).

    Bounded before the schema sees it (linear in the document's size): nesting deeper than
    ``MAX_DEPTH`` and an explicit ladder longer than ``MAX_RUNGS`` are refused first.

    Raises ``InvalidSettings`` naming the first invalid field."""
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise InvalidSettings("settings", "must be a JSON object")
    document = dict(document)
    check_depth(document)
    if isinstance(document.get("ladder"), str):  # "720:3000k,480:1.5M" is an explicit ladder too
        document["ladder"] = parse_ladder_text(document["ladder"])
    if isinstance(document.get("ladder"), (list, tuple)) and len(document["ladder"]) > MAX_RUNGS:
        raise InvalidSettings("ladder", f"an explicit ladder has 1 to {MAX_RUNGS} rungs, not {len(document['ladder'])}")
    try:
        settings = JobSettings.model_validate(document)
    except ValidationError as e:
        errors = e.errors()
        if not isinstance(document.get("ladder"), str):  # a list: the preset-name branch is noise
            errors = [err for err in errors if err["loc"][:2] != ("ladder", "str")] or errors
        first = errors[0]
        field = printable_name(".".join(str(p) for p in first["loc"] if p != "str" and "[" not in str(p)) or "settings")
        if first["type"] == "extra_forbidden":
            raise InvalidSettings(field, "unknown field") from None
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidSettings(field, message) from None
    if presets is not None:
        settings.preset(presets)
    return settings


def parse_ladder_text(text: str) -> str | list[dict]:
    """A ladder as written on a command line or in S3 metadata: a preset name (``web``) or
    ``<height>:<bitrate>`` pairs separated by commas, bitrate in bit/s with an optional ``k``
    or ``M`` suffix (``720:3000k,480:1.5M``); rungs are named ``<height>p``.

    Raises ``InvalidSettings`` (field ``ladder``) for anything else."""
    text = text.strip()
    if ":" not in text:
        return text
    if text.count(",") >= MAX_RUNGS:
        raise InvalidSettings("ladder", f"an explicit ladder has 1 to {MAX_RUNGS} rungs, not {text.count(',') + 1}")
    rungs = []
    for part in text.split(","):
        m = re.fullmatch(r"[ \t]*([0-9]{2,4})p?[ \t]*:[ \t]*([0-9]{1,12}(?:\.[0-9]{1,6})?)[ \t]*([kKmM]?)[ \t]*", part)
        if not m:
            raise InvalidSettings("ladder", f"{part.strip()!r} is not <height>:<bitrate> (e.g. 720:3000k)")
        scale = {"": 1, "k": 1_000, "m": 1_000_000}[m.group(3).lower()]
        rungs.append({"name": f"{m.group(1)}p", "height": int(m.group(1)), "bitrate": int(float(m.group(2)) * scale)})
    return rungs
