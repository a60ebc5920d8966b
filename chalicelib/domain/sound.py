"""The audio tracks of a source and what becomes of them: one HLS audio rendition per track (in
one ``EXT-X-MEDIA`` group), named and tagged for players, optionally loudness-normalized.

Pure: reads the audio streams of ffprobe-shaped JSON (``chalicelib.tools.media_probe`` emits
the same shape); the ffmpeg side is ``track_args.audio_args`` and ``loudness_args``.

Rules and sources:

* ``LANGUAGE`` is an RFC 5646 tag (RFC 8216 §4.3.4.1): the stream's ISO 639-2 tag (``eng``,
  ``spa``, ``fre``) becomes its shortest form (``en``, ``es``, ``fr``) through ``langcodes``
  (the IANA subtag registry's data); no or unknown tag: no ``LANGUAGE`` (``und`` in the job);
* ``NAME`` is for people: the track's title when it has one, else the language's English name
  ("Spanish"), else "Track n"; unique in the group (RFC 8216 §4.3.4.1.1);
* ``DEFAULT=YES`` on the source's default track (its ``default`` disposition; the first track
  when none is marked), ``AUTOSELECT=YES`` on every track;
* described video (``visual_impaired`` or ``descriptions`` disposition) gets
  ``CHARACTERISTICS="public.accessibility.describes-video"`` (RFC 8216 §4.3.4.1, Apple's HLS
  authoring specification: such a rendition is never the default and not auto-selected);
* loudness (``normalize_audio``): measured per ITU-R BS.1770-4 / EBU R128 (integrated loudness
  LUFS, loudness range LU, true peak dBTP), normalized to the target with the true peak at or
  under ``TRUE_PEAK_CEILING`` (AES TD1004: -16 LUFS, -1 dBTP for streaming).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import langcodes

#: AES TD1004 ("Recommendations for Loudness of Internet Audio Streaming and On-Demand
#: Distribution"): integrated loudness -16 LUFS, true peak at most -1 dBTP.
DEFAULT_LOUDNESS = -16.0
TRUE_PEAK_CEILING = -1.0
#: Targets a job may ask for (LUFS): EBU R128's -23 and ATSC A/85's -24 up to loud -5.
LOUDNESS_RANGE = (-31.0, -5.0)
#: The true-peak target given to the normalizer (dBTP): the ceiling less a margin for the AAC
#: encoder's overshoot. Measured on Big Buck Bunny's soundtrack made loud (-11.2 LUFS, +5.8
#: dBTP): normalized to -16 LUFS with the limiter at -1.5 dBTP, the published AAC measured
#: -0.9 dBTP (0.6 dB of overshoot); a 1 dB margin keeps it under the -1 dBTP ceiling.
CODEC_MARGIN = 1.0
DESCRIBES_VIDEO = "public.accessibility.describes-video"
#: The folder and task name of the n-th audio rendition (n = 0 is ``audio``, as before).
AUDIO_NAME = "audio"


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream of a source. ``position``: its index among the audio streams (0-based,
    ffmpeg's ``0:a:<position>``); ``language``: RFC 5646 tag or None; ``title``: the stream's
    own title or None; ``default`` / ``describes_video``: dispositions; ``channels``;
    ``sample_rate`` Hz; ``codec``."""

    position: int
    codec: str
    channels: int
    sample_rate: int | None
    language: str | None
    title: str | None
    default: bool
    describes_video: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the job's ``probe``."""
        return {"position": self.position, "codec": self.codec, "channels": self.channels,
                "sample_rate": self.sample_rate, "language": self.language or "und", "title": self.title,
                "default": self.default, "describes_video": self.describes_video}


def language_tag(value: Any) -> str | None:
    """RFC 5646 tag of a stream's language tag (ISO 639-2/B or /T, or already RFC 5646), in
    its shortest form (``eng`` -> ``en``, ``fre`` -> ``fr``, ``pt-BR`` kept); None for none,
    ``und``, or a tag that is not a language."""
    if not value or str(value).lower() in ("und", "unk", "mis", "mul", "zxx"):
        return None
    try:
        tag = langcodes.standardize_tag(str(value))
    except (ValueError, LookupError):
        return None
    return tag if langcodes.tag_is_valid(tag) and tag != "und" else None


def language_name(tag: str | None) -> str | None:
    """The English name of an RFC 5646 tag ("Spanish", "Portuguese (Brazil)"), or None."""
    if not tag:
        return None
    try:
        name = langcodes.Language.get(tag).display_name()
    except (ValueError, LookupError):
        return None
    return None if name.startswith("Unknown language") else name


def parse_audio_tracks(streams: Sequence[Mapping[str, Any]]) -> tuple[AudioTrack, ...]:
    """Every audio stream of ffprobe-shaped ``streams``, in order. The default is the stream
    with the ``default`` disposition (the first one when none or several say so)."""
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    marked = [i for i, s in enumerate(audio) if (s.get("disposition") or {}).get("default")]
    default = marked[0] if marked else 0
    tracks = []
    for position, stream in enumerate(audio):
        tags = {str(k).lower(): v for k, v in (stream.get("tags") or {}).items()}
        disposition = stream.get("disposition") or {}
        title = str(tags["title"]).strip()[:64] if tags.get("title") else None
        tracks.append(AudioTrack(
            position=position, codec=str(stream.get("codec_name") or "unknown"),
            channels=int(stream.get("channels") or 0),
            sample_rate=int(stream["sample_rate"]) if str(stream.get("sample_rate") or "").isdigit() else None,
            language=language_tag(tags.get("language")), title=title or None, default=position == default,
            describes_video=bool(disposition.get("visual_impaired") or disposition.get("descriptions"))))
    return tuple(tracks)


def rendition_name(index: int) -> str:
    """Folder and task name of the ``index``-th planned audio rendition: ``audio``,
    ``audio_1``, ``audio_2`` ... (``job_settings.RESERVED_NAMES`` keeps rungs off them)."""
    return AUDIO_NAME if index == 0 else f"{AUDIO_NAME}_{index}"


def select_tracks(tracks: Sequence[AudioTrack], wanted: Sequence[Any] | None) -> list[AudioTrack]:
    """The tracks an ``audio_tracks`` setting keeps, in source order: every track for None;
    else those whose position (int) or language (RFC 5646 or ISO 639-2 text, matched on the
    tag's language) is listed. The default track is listed first (it is the rendition a player
    and the progressive MP4 take). Nothing matched: the default track alone."""
    if wanted is None:
        chosen = list(tracks)
    else:
        chosen = [t for t in tracks if t.position in wanted or any(_same_language(t.language, w) for w in wanted
                                                                     if isinstance(w, str))]
        chosen = chosen or [t for t in tracks if t.default]
    return sorted(chosen, key=lambda t: (not t.default, t.position))


def _same_language(tag: str | None, wanted: str) -> bool:
    other = language_tag(wanted)
    return bool(tag and other) and langcodes.Language.get(tag).language == langcodes.Language.get(other).language


def names(tracks: Sequence[AudioTrack]) -> list[str]:
    """``NAME`` of each track: its title, else its language's name, else "Track n" (n from 1),
    made unique in the group by appending the track number."""
    out: list[str] = []
    for track in tracks:
        name = track.title or language_name(track.language) or f"Track {track.position + 1}"
        if track.describes_video and not track.title:
            name += " (audio description)"
        if name in out:
            name = f"{name} {track.position + 1}"
        out.append(name)
    return out


def loudness_target(setting: Any) -> float | None:
    """The integrated loudness (LUFS) a ``normalize_audio`` setting asks for: ``True`` is
    ``DEFAULT_LOUDNESS``, a number is itself, ``False``/None is no normalization."""
    if setting is True:
        return DEFAULT_LOUDNESS
    if setting in (None, False):
        return None
    return float(setting)
