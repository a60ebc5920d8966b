"""Per-job settings: one schema, validated in one place, read from three sources with the same
meaning — the body of ``POST /jobs``, the upload's S3 user metadata (``x-amz-meta-*``,
``settings_from_metadata``) and a sidecar JSON next to the upload (``<key>.json``).

A document (every field optional)::

    {"ladder": "web" | "720:3000k,480:1.5M" | [{"name": "720p", "height": 720, "bitrate": 3000000}, ...],
     "outputs": {"hls": true, "mp4": ["720p"], "audio": false, "thumbnails": true},
     "segment_duration": 6, "priority": "normal" | "high",
     "webhook_url": "https://...", "output_prefix": "shows/ep1",
     "source_after": "keep" | "delete" | "archive", "quality_metrics": ["psnr"] | ["psnr", "ssim"],
     "metadata": {"any": "string"}}

``height`` is the rung's short side in pixels (portrait stays portrait), ``bitrate`` its average
video bitrate in bit/s. Never upscale still holds for an explicit ladder: a rung taller than the
source is dropped at planning and reported in the job (``ladder.plan_video``). Invalid or
unknown values raise ``InvalidSettings`` naming the field (the API answers 400 with it; an
S3-borne document fails the job with ``INVALID_SETTINGS``).
"""
from __future__ import annotations

import json
import re
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import PermanentError
from .presets import DEFAULT_PRESET, Preset, PresetRung

#: A rung or metadata name: letters, digits, ``_``, ``-``, 1-32 characters.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
#: ``output_prefix``: ``/``-separated parts of letters, digits, ``.``, ``_``, ``-``; no part
#: is ``.`` or ``..``; at most 256 characters. The job's outputs go under ``<prefix>/``.
PREFIX_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
MAX_PREFIX = 256
#: ``metadata``: at most 32 pairs, values up to 512 characters, 4 KiB in all (it is echoed in
#: the job resource and in every event).
MAX_METADATA_PAIRS, MAX_METADATA_VALUE, MAX_METADATA_BYTES = 32, 512, 4096
#: Segment durations (s): whole multiples of the 2 s IDR grid (``ffmpeg_args.GOP_SECONDS``)
#: from 2 to 10 (Apple's HLS authoring spec recommends 6).
SEGMENT_DURATIONS = (2, 4, 6, 8, 10)
PRIORITIES = ("normal", "high")
SOURCE_AFTER = ("keep", "delete", "archive")
#: What each encoder measures of its own output (``quality_metrics``): luma PSNR costs nothing
#: measurable in x264, SSIM about 2.5 % more CPU (20 s of the bench clip, 5 rungs, three runs
#: each: 40.3 CPU-s without or with PSNR, 41.1 with both), so SSIM is asked for, not default.
QUALITY_METRICS = ("psnr", "ssim")
DEFAULT_QUALITY_METRICS = ("psnr",)


class InvalidSettings(PermanentError):
    """A settings document that does not validate. ``field`` names the offending field (dotted,
    e.g. ``ladder.1.bitrate``; ``x-amz-meta-<key>`` for S3 metadata); ``message`` says why."""

    def __init__(self, field: str, message: str):
        super().__init__("INVALID_SETTINGS", f"{field}: {message}")
        self.field = field


class Rung(BaseModel):
    """One explicit ladder rung: ``name`` (used in output keys and ``outputs.mp4``), ``height``
    the short side in pixels (16-4320, even), ``bitrate`` the average video bitrate in bit/s."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=NAME_PATTERN)
    height: int = Field(ge=16, le=4320, multiple_of=2)
    bitrate: int = Field(ge=50_000, le=60_000_000)


class Outputs(BaseModel):
    """What a job makes. ``hls`` is always made (chunks are encoded as HLS segments, and MP4s
    are remuxed from them); ``mp4`` lists the rung names that also get a progressive MP4
    (``faststart``); ``audio`` adds an ``.m4a`` of the audio rendition; ``thumbnails`` the
    poster and the sprite sheets with their WebVTT track."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    hls: Literal[True] = True
    mp4: tuple[str, ...] = ()
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

    @field_validator("ladder")
    @classmethod
    def _ladder(cls, ladder):
        if isinstance(ladder, tuple):
            if not 1 <= len(ladder) <= 8:
                raise ValueError("an explicit ladder has 1 to 8 rungs")
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
        if url is not None and not re.match(r"^https?://[^/\s]+", url):
            raise ValueError("must be an http(s) URL")
        return url

    @field_validator("output_prefix")
    @classmethod
    def _prefix(cls, prefix: str | None) -> str | None:
        if prefix is None:
            return None
        prefix = prefix.strip("/")
        if not prefix or len(prefix) > MAX_PREFIX:
            raise ValueError(f"must be 1 to {MAX_PREFIX} characters")
        for part in prefix.split("/"):
            if not PREFIX_PART.match(part) or part in (".", ".."):
                raise ValueError(f"part {part!r} is not allowed (letters, digits, '.', '_', '-'; no '..', no empty part)")
        return prefix

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, pairs: dict[str, str]) -> dict[str, str]:
        if len(pairs) > MAX_METADATA_PAIRS:
            raise ValueError(f"at most {MAX_METADATA_PAIRS} pairs")
        for key, value in pairs.items():
            if not re.match(NAME_PATTERN, key):
                raise ValueError(f"key {key!r} is not a name (letters, digits, '_', '-', up to 32)")
            if len(value) > MAX_METADATA_VALUE:
                raise ValueError(f"value of {key!r} is longer than {MAX_METADATA_VALUE} characters")
        if len(json.dumps(pairs).encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"more than {MAX_METADATA_BYTES} bytes")
        return pairs

    @model_validator(mode="after")
    def _mp4_rungs(self):
        if isinstance(self.ladder, tuple):
            names = {r.name for r in self.ladder}
            unknown = [n for n in self.outputs.mp4 if n not in names]
            if unknown:
                raise ValueError(f"outputs.mp4 names {', '.join(unknown)}, not in the ladder ({', '.join(sorted(names))})")
        return self

    def preset(self, presets: Mapping[str, Preset]) -> Preset:
        """The ladder to plan: the named preset, or an explicit ladder as an unnamed preset
        (``custom``: exactly the given rungs, no rung at the source's size).

        Raises ``InvalidSettings`` for an unknown preset name or an ``outputs.mp4`` rung the
        preset does not have."""
        if isinstance(self.ladder, tuple):
            return Preset("custom", "explicit ladder", tuple(PresetRung(r.name, r.height, r.bitrate) for r in self.ladder),
                          native_rung=False, exact=True)
        if self.ladder not in presets:
            raise InvalidSettings("ladder", f"unknown preset {self.ladder!r} (presets: {', '.join(sorted(presets))})")
        chosen = presets[self.ladder]
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

    Raises ``InvalidSettings`` naming the first invalid field."""
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise InvalidSettings("settings", "must be a JSON object")
    document = dict(document)
    if isinstance(document.get("ladder"), str):  # "720:3000k,480:1.5M" is an explicit ladder too
        document["ladder"] = parse_ladder_text(document["ladder"])
    try:
        settings = JobSettings.model_validate(document)
    except ValidationError as e:
        errors = e.errors()
        if not isinstance(document.get("ladder"), str):  # a list: the preset-name branch is noise
            errors = [err for err in errors if err["loc"][:2] != ("ladder", "str")] or errors
        first = errors[0]
        field = ".".join(str(p) for p in first["loc"] if p != "str" and "[" not in str(p)) or "settings"
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
    rungs = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d{2,4})p?\s*:\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", part)
        if not m:
            raise InvalidSettings("ladder", f"{part.strip()!r} is not <height>:<bitrate> (e.g. 720:3000k)")
        scale = {"": 1, "k": 1_000, "m": 1_000_000}[m.group(3).lower()]
        rungs.append({"name": f"{m.group(1)}p", "height": int(m.group(1)), "bitrate": int(float(m.group(2)) * scale)})
    return rungs


def _flag(key: str, value: str) -> bool:
    if value.lower() in ("true", "yes", "1"):
        return True
    if value.lower() in ("false", "no", "0"):
        return False
    raise InvalidSettings(f"x-amz-meta-{key}", f"{value!r} is not true or false")


def settings_from_metadata(meta: Mapping[str, str]) -> dict | None:
    """The settings document carried by an upload's S3 user metadata (keys without the
    ``x-amz-meta-`` prefix, as S3 returns them, lower case), or ``None`` when it carries none.

    Keys: ``settings`` (a whole JSON document), or one per field: ``preset`` / ``ladder``
    (``parse_ladder_text``), ``mp4`` (comma-separated rung names), ``audio``, ``thumbnails``
    (true/false), ``segment-duration``, ``priority``, ``webhook-url``, ``output-prefix``,
    ``source-after``, ``quality-metrics`` (comma-separated), and ``meta-<name>`` for each ``metadata`` pair. Raises ``InvalidSettings``
    naming the ``x-amz-meta-`` key for an unknown key or a malformed value (the document itself is
    validated by ``parse``)."""
    meta = {k.lower(): v for k, v in meta.items()}
    if not meta:
        return None
    doc: dict[str, Any] = {}
    if "settings" in meta:
        try:
            doc = json.loads(meta.pop("settings"))
        except json.JSONDecodeError as e:
            raise InvalidSettings("x-amz-meta-settings", f"not JSON ({e.msg})") from None
        if not isinstance(doc, dict):
            raise InvalidSettings("x-amz-meta-settings", "must be a JSON object")
    outputs = dict(doc.get("outputs") or {})
    for key, value in meta.items():
        field = key.replace("-", "_")
        if key in ("preset", "ladder"):
            doc["ladder"] = value  # a preset name or rung text: ``parse`` reads both
        elif key == "mp4":
            outputs["mp4"] = [n.strip() for n in value.split(",") if n.strip()]
        elif key == "quality-metrics":
            doc[field] = [n.strip().lower() for n in value.split(",") if n.strip()]
        elif key in ("audio", "thumbnails"):
            outputs[key] = _flag(key, value)
        elif key == "segment-duration":
            if not value.strip().isdigit():
                raise InvalidSettings("x-amz-meta-segment-duration", f"{value!r} is not a whole number of seconds")
            doc[field] = int(value)
        elif key in ("priority", "webhook-url", "output-prefix", "source-after"):
            doc[field] = value
        elif key.startswith("meta-") and len(key) > 5:
            doc.setdefault("metadata", {})[key[5:]] = value
        else:
            raise InvalidSettings(f"x-amz-meta-{key}", "unknown setting (see README: job settings)")
    if outputs:
        doc["outputs"] = outputs
    return doc


def metadata_for(settings: Mapping[str, Any]) -> dict[str, str]:
    """The S3 user metadata that carries ``settings`` (a settings document): one ``settings``
    key with the compact JSON (presigned POST policies and ``vodpipe submit``)."""
    return {"settings": json.dumps(settings, separators=(",", ":"), sort_keys=True)} if settings else {}
