"""The media probe model: what ingest learns about a source from ``ffprobe`` JSON.

Pure: takes the parsed JSON of ``ffprobe -show_format -show_streams`` and returns a
``MediaInfo``; raises ``PermanentError`` for inputs no retry can fix.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Iterable

from .errors import PermanentError
from .picture import Picture, parse_picture
from .captions import SubtitleTrack, parse_subtitle_tracks
from .sound import AudioTrack, parse_audio_tracks

#: FFmpeg's decoders get their own picture cap (the ``max_pixels`` codec option) at this many
#: times the deployment's limit: a decoder checks its aligned picture (7680x4320 H.264 is
#: allocated as 7680x4352), and the exact limit is checked on the stream's parameters first
#: (``check_picture_size``). What the cap stops is a frame far beyond the limit that the header
#: did not announce: it is never allocated.
DECODER_PIXEL_SLACK = 1.25
#: Coded (aligned) sizes may exceed the picture by a codec's block size (at most 128 pixels a
#: side: AV1 superblocks); past that the coded size itself is what a decoder allocates.
CODED_ALIGNMENT = 128
#: FFmpeg's refusal of a picture size (``av_image_check_size2``): its own limit ("is invalid",
#: about 16,000 x 16,000) or the ``max_pixels`` option.
_REFUSED_SIZE = re.compile(r"Picture size (\d+)x(\d+) (?:is invalid|exceeds specified max pixel count)")

#: Frame rates above this are treated as container bookkeeping, not real rates (e.g. Matroska
#: files that report ``avg_frame_rate`` 1000/1 for a 30 fps stream).
MAX_PLAUSIBLE_FPS = 240.0


@dataclass(frozen=True)
class MediaInfo:
    """A probed source.

    ``width``/``height`` are coded pixels; ``display_width``/``display_height`` are what a
    player shows after the sample aspect ratio and the rotation (display matrix) are applied.
    ``rotation`` is clockwise degrees in {0, 90, 180, 270}. ``duration`` is seconds,
    ``frame_rate`` frames per second, bitrates bits/s, ``size`` bytes. ``picture``: colour,
    dynamic range, scan and orientation (``picture.Picture``; its ``rotation`` is this one and
    ``mirrored`` a horizontal flip after it). ``audio_tracks``: every audio stream
    (``sound.AudioTrack``); ``audio_codec``/``audio_channels``/``audio_sample_rate`` describe
    the default one. ``subtitle_tracks``: every subtitle stream (``captions.SubtitleTrack``).
    """

    width: int
    height: int
    display_width: int
    display_height: int
    rotation: int
    duration: float
    frame_rate: float
    video_codec: str
    pix_fmt: str | None
    audio_codec: str | None
    audio_channels: int
    audio_sample_rate: int | None
    format_name: str
    bit_rate: int | None
    size: int | None
    picture: Picture = Picture()
    audio_tracks: tuple[AudioTrack, ...] = ()
    subtitle_tracks: tuple[SubtitleTrack, ...] = ()
    #: seconds from the source's start to its first decodable video frame (a late video start,
    #: or a transport stream joined mid-GOP); 0.0 when not known
    video_start: float = 0.0

    @property
    def has_audio(self) -> bool:
        """True when the source has an audio stream to encode."""
        return self.audio_codec is not None

    @property
    def short_side(self) -> int:
        """The displayed short side in pixels (what "720p" names, portrait or landscape)."""
        return min(self.display_width, self.display_height)

    @property
    def is_portrait(self) -> bool:
        """True when displayed taller than wide."""
        return self.display_height > self.display_width

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON/DynamoDB (floats rounded to 3 decimals)."""
        d = asdict(self)
        d["duration"] = round(self.duration, 3)
        d["frame_rate"] = round(self.frame_rate, 3)
        d["picture"] = self.picture.to_dict()
        d["audio_tracks"] = [t.to_dict() for t in self.audio_tracks]
        d["subtitle_tracks"] = [t.to_dict() for t in self.subtitle_tracks]
        return d


def _fraction(value: str | None) -> float:
    if not value or value in ("0/0", "N/A"):
        return 0.0
    try:
        return float(Fraction(value))
    except (ValueError, ZeroDivisionError):
        return 0.0


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def rotation_of(stream: dict[str, Any]) -> int:
    """Clockwise display rotation in degrees {0, 90, 180, 270} of a video stream.

    Reads the display matrix side data (ffprobe reports it counter-clockwise, e.g. -90 for a
    phone held upright) and falls back to the legacy ``rotate`` tag (clockwise).
    """
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(round(-_float(side["rotation"]))) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    if tag is not None:
        return int(round(_float(tag))) % 360
    return 0


def frame_rate_of(stream: dict[str, Any]) -> float:
    """Best estimate of the real frame rate (frames/s) of a video stream.

    ``avg_frame_rate`` is right for most files, including variable-frame-rate phone captures
    (whose ``r_frame_rate`` is the timebase, e.g. 120). It is rejected when implausible
    (above ``r_frame_rate`` or ``MAX_PLAUSIBLE_FPS``); then ``nb_frames / duration`` is used,
    then ``r_frame_rate``. Returns 0.0 when nothing is known.
    """
    avg = _fraction(stream.get("avg_frame_rate"))
    real = _fraction(stream.get("r_frame_rate"))
    if 0 < avg <= MAX_PLAUSIBLE_FPS and (real == 0 or avg <= real * 1.01):
        return avg
    frames, duration = _float(stream.get("nb_frames")), _float(stream.get("duration"))
    if frames > 0 and duration > 0 and frames / duration <= MAX_PLAUSIBLE_FPS:
        return frames / duration
    if 0 < real <= MAX_PLAUSIBLE_FPS:
        return real
    return 0.0


def parse_probe(probe: dict[str, Any]) -> MediaInfo:
    """Turn ffprobe JSON (``-show_format -show_streams``) into a ``MediaInfo``.

    Raises ``PermanentError``: ``NO_VIDEO_STREAM`` when there is no (non cover-art) video
    stream, ``INVALID_DIMENSIONS`` when width/height are unknown, ``UNKNOWN_DURATION`` when the
    duration cannot be found or is not positive.
    """
    streams = probe.get("streams") or []
    fmt = probe.get("format") or {}
    videos = [s for s in streams if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")]
    if not videos:
        kinds = sorted({s.get("codec_type", "?") for s in streams}) or ["none"]
        raise PermanentError("NO_VIDEO_STREAM",
                             f"the file has no video stream (streams found: {', '.join(kinds)})")
    video = videos[0]
    tracks = parse_audio_tracks(streams)
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    audio = next((audios[t.position] for t in tracks if t.default), None)
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise PermanentError("INVALID_DIMENSIONS", "the video stream has no width/height")
    sar = _fraction(video.get("sample_aspect_ratio")) or 1.0
    display_w, display_h = (width * sar, float(height)) if sar >= 1 else (float(width), height / sar)
    picture = parse_picture(video, rotation_of(video))
    rotation = picture.rotation
    if rotation in (90, 270):
        display_w, display_h = display_h, display_w
    duration = _float(fmt.get("duration")) or _float(video.get("duration"))
    if duration <= 0:
        raise PermanentError("UNKNOWN_DURATION", "the duration of the video cannot be determined")
    return MediaInfo(
        width=width,
        height=height,
        display_width=int(round(display_w)),
        display_height=int(round(display_h)),
        rotation=rotation,
        duration=duration,
        frame_rate=frame_rate_of(video),
        video_codec=str(video.get("codec_name") or "unknown"),
        pix_fmt=video.get("pix_fmt"),
        audio_codec=(audio or {}).get("codec_name"),
        audio_channels=int((audio or {}).get("channels") or 0),
        audio_sample_rate=int(audio["sample_rate"]) if audio and audio.get("sample_rate") else None,
        format_name=str(fmt.get("format_name") or "unknown"),
        bit_rate=int(fmt["bit_rate"]) if str(fmt.get("bit_rate", "")).isdigit() else None,
        size=int(fmt["size"]) if str(fmt.get("size", "")).isdigit() else None,
        picture=picture,
        audio_tracks=tracks,
        subtitle_tracks=parse_subtitle_tracks(streams),
        video_start=max(0.0, _float(video.get("first_frame_time"))),
    )


def check_limits(info: MediaInfo, size: int, max_bytes: int, max_duration: float, max_pixels: int) -> None:
    """Enforce the configured ingest limits (``size``/``max_bytes`` in bytes, ``max_duration``
    seconds, ``max_pixels`` per displayed frame). Raises ``PermanentError``
    (``FILE_TOO_LARGE``, ``TOO_LONG``, ``TOO_MANY_PIXELS``)."""
    if size > max_bytes:
        raise PermanentError("FILE_TOO_LARGE", f"the file has {size} bytes; the limit is {max_bytes}")
    if info.duration > max_duration:
        raise PermanentError("TOO_LONG", f"the video lasts {info.duration:.1f} s; the limit is {max_duration:.0f} s")
    pixels = info.display_width * info.display_height
    if pixels > max_pixels:
        raise PermanentError("TOO_MANY_PIXELS", f"the video is {info.display_width}x{info.display_height} "
                                                f"({pixels} pixels a frame); the limit is {max_pixels}")


def decoder_max_pixels(max_pixels: int) -> int:
    """The ``max_pixels`` option for FFmpeg's decoders under a ``max_pixels`` limit (pixels a
    frame): the limit with ``DECODER_PIXEL_SLACK`` for the decoder's alignment."""
    return int(max_pixels * DECODER_PIXEL_SLACK)


def refused_picture_size(messages: Iterable[str]) -> tuple[int, int] | None:
    """``(width, height)`` of a picture FFmpeg refused to allocate, from its log lines
    ("Picture size WxH is invalid" / "... exceeds specified max pixel count"), or None."""
    for message in messages:
        m = _REFUSED_SIZE.search(message)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def check_picture_size(width: int, height: int, max_pixels: int, coded: tuple[int, int] = (0, 0),
                       where: str = "the video stream's header") -> None:
    """Refuse a picture of ``width`` x ``height`` (or a ``coded`` size more than
    ``CODED_ALIGNMENT`` larger a side) above ``max_pixels`` pixels, before any frame is decoded.
    Coded pixels never exceed the displayed ones (``parse_probe`` only stretches), so
    ``check_limits``' displayed check stays the stricter one. Raises ``PermanentError``
    ``TOO_MANY_PIXELS`` naming ``where`` the size was read."""
    coded_w, coded_h = coded
    if coded_w - width > CODED_ALIGNMENT or coded_h - height > CODED_ALIGNMENT:
        width, height = max(width, coded_w), max(height, coded_h)
    if width * height > max_pixels:
        raise PermanentError("TOO_MANY_PIXELS", f"{where} says {width}x{height} ({width * height} pixels a frame); the "
                                                f"limit is {max_pixels}; refused before decoding any frame")
