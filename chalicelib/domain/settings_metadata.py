"""Job settings carried in an upload's S3 user metadata (the ``x-amz-meta-*`` headers): read
back into a settings document (``settings_from_metadata``) and written for an upload
(``metadata_for``), within S3's 2 KB limit on an object's user metadata (Amazon S3 user guide,
"Working with object metadata"). The document itself is validated by ``job_settings.parse``."""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

from chalicelib.domain.errors import InvalidSettings
from chalicelib.domain.job_settings import S3_METADATA_MAX_BYTES, S3_METADATA_PREFIX
from chalicelib.domain.settings_text import load_json, printable_name


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
    (true/false), ``segment-duration``, ``priority``, ``max-resolution`` (``1080p``, ``1440p``,
    ``2160p``), ``normalize-audio`` (true/false or a target in LUFS, ``-16``), ``audio-tracks``
    (comma-separated positions or languages: ``en,es``), ``captions`` (the ``captions`` list as
    JSON), ``webhook-url``, ``output-prefix``, ``source-after``, ``quality-metrics``
    (comma-separated), and ``meta-<name>`` for each ``metadata`` pair. Raises ``InvalidSettings``
    naming the ``x-amz-meta-`` key for an unknown key or a malformed value (the document itself is
    validated by ``parse``)."""
    meta = {k.lower(): v for k, v in meta.items()}
    if not meta:
        return None
    doc: dict[str, Any] = {}
    if "settings" in meta:
        doc = load_json(meta.pop("settings"), "x-amz-meta-settings")
        if not isinstance(doc, dict):
            raise InvalidSettings("x-amz-meta-settings", "must be a JSON object")
    outputs: dict[str, Any] = {}
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
            if not re.fullmatch(r"[ \t]*[0-9]{1,4}[ \t]*", value):
                raise InvalidSettings("x-amz-meta-segment-duration", f"{value!r} is not a whole number of seconds")
            doc[field] = int(value)
        elif key in ("priority", "max-resolution", "webhook-url", "output-prefix", "source-after"):
            doc[field] = value
        elif key == "normalize-audio":  # true/false, or a target in LUFS
            doc[field] = value.strip() if re.fullmatch(r"[ \t]*-?[0-9]{1,2}(\.[0-9]{1,2})?[ \t]*", value) is None \
                else float(value)
            if isinstance(doc[field], str):
                doc[field] = _flag(key, value)
        elif key == "audio-tracks":  # comma-separated positions (0, 1) or languages (en, es)
            doc[field] = [int(n) if n.strip().isdigit() else n.strip() for n in value.split(",") if n.strip()]
        elif key == "captions":  # the list as JSON: [{"source": "s3://...", "language": "fr"}]
            doc[field] = load_json(value, "x-amz-meta-captions")
        elif key.startswith("meta-") and len(key) > 5:
            if not isinstance(doc.setdefault("metadata", {}), dict):
                raise InvalidSettings("x-amz-meta-settings", "metadata must be an object when meta-* keys add to it")
            doc["metadata"][key[5:]] = value
        else:
            raise InvalidSettings(printable_name(f"x-amz-meta-{key}"), "unknown setting (see README: job settings)")
    if outputs:
        base = doc.get("outputs") or {}
        if not isinstance(base, dict):
            raise InvalidSettings("x-amz-meta-settings", "outputs must be an object when mp4/audio/thumbnails keys add to it")
        doc["outputs"] = {**base, **outputs}
    return doc


def metadata_for(settings: Mapping[str, Any]) -> dict[str, str]:
    """The S3 user metadata that carries ``settings`` (a settings document): one ``settings``
    key with the compact JSON, ASCII only (presigned POST policies and ``vodpipe submit``).

    Raises ``InvalidSettings`` when it would not fit S3's user-metadata limit
    (``S3_METADATA_MAX_BYTES``, 2 KB of keys and values; ``s3_metadata_bytes``), naming the
    field that takes the most room: S3 would refuse the upload (``MetadataTooLarge``)."""
    if not settings:
        return {}
    meta = {"settings": json.dumps(settings, separators=(",", ":"), sort_keys=True)}
    size = s3_metadata_bytes(meta)
    if size > S3_METADATA_MAX_BYTES:
        sizes = {str(k): len(json.dumps({k: v}, separators=(",", ":"))) for k, v in settings.items()}
        largest = max(sizes, key=sizes.get)
        raise InvalidSettings(largest, f"the settings take {size} bytes as S3 user metadata "
                                       f"({S3_METADATA_PREFIX}settings), over S3's {S3_METADATA_MAX_BYTES}-byte limit "
                                       f"on an object's metadata; {largest} alone takes {sizes[largest]}: shorten it")
    return meta


def s3_metadata_bytes(meta: Mapping[str, str]) -> int:
    """Size of user metadata ``meta`` (keys without the prefix, as boto3 takes them) as S3
    counts it against ``S3_METADATA_MAX_BYTES``: UTF-8 bytes of every key and value, each key
    counted as its ``x-amz-meta-<key>`` header name (the stricter reading; see the constant)."""
    return sum(len((S3_METADATA_PREFIX + k).encode()) + len(v.encode()) for k, v in meta.items())
