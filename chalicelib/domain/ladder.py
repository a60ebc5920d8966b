"""Adaptive-bitrate ladder planning: which renditions to make from a probed source.

Rules (docs/hls-output.md; Apple HLS authoring spec for Apple devices, §1 "Video" rung table and §2
"Audio"):

* never upscale: a rung is planned only if its short side is <= the source's displayed short
  side; a source smaller than every rung gets one rendition at its own size;
* keep the displayed aspect ratio: rotation (display matrix) and sample aspect ratio are applied
  first, output pixels are square; "720p" names the short side, so portrait stays portrait;
* even dimensions (4:2:0 chroma subsampling needs them);
* the top rung caps the ladder (a 4K source gets 1080p and below by default);
* a source between two rungs that is more than 10 % above the highest rung it reaches also gets
  a rendition at its own size (a 540p source yields 540p and below);
* frame rate: the source's (the encoder never duplicates frames); above ``max_frame_rate``
  every k-th frame down to a standard rate; interlaced sources at field rate when that stays
  within ``max_frame_rate`` (``conversions.output_frame_rate``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

from .errors import PermanentError
from . import sound
from .conversions import output_frame_rate
from .media import MediaInfo

#: Default H.264 video bitrates (bits/s) by short side (pixels), for 30 fps content; close
#: to Apple's authoring-spec table for 16:9 rungs. Rates for other sizes are interpolated.
#: 1440 and 2160 (the ``max_resolution`` rungs, ``presets.HIGH_HEIGHTS``): Apple's "HTTP Live
#: Streaming (HLS) authoring specification for Apple devices" (developer.apple.com/documentation/
#: http-live-streaming/hls-authoring-specification-for-apple-devices, item 1.25, kbit/s) lists
#: H.264 rows only up to 1920x1080 (6000, 7800) and HEVC rows up to 3840x2160: 4500 and 5800
#: at 1920x1080, 8100 at 2560x1440, 11600 and 16800 at 3840x2160. So the H.264 rates here keep
#: this table's 1080p rate and grow it as Apple's HEVC table grows above its 4500 row at 1080p
#: (assuming H.264 needs the same multiple of HEVC's rate at every size): 1440p = 5.0 M x
#: 8100/4500 = 9.0 Mbit/s, 2160p = 5.0 M x 11600/4500 = 12.9 Mbit/s (to 100 kbit/s; the lower
#: 2160 row: item 1.34 wants some UHD variant at or under 15 Mbit/s, and this ladder has one).
#: Apple's own H.264:HEVC ratio at 1080p (6000/4500, 7800/5800: 1.33) would give 10.8 and 15.5
#: Mbit/s; these are leaner, as this table's 1080p (5.0) is against Apple's 6000. x264 picks
#: the level (2160p30 5.1, 2160p60 5.2: within item 1.3b's High Profile Level 5.2), and the
#: multivariant playlist declares it (``playlist.h264_codec_string``).
DEFAULT_BITRATES: dict[int, int] = {
    2160: 12_900_000,
    1440: 9_000_000,
    1080: 5_000_000,
    720: 3_000_000,
    540: 2_000_000,
    480: 1_400_000,
    360: 800_000,
    240: 400_000,
    144: 200_000,
}
#: Peak/average ratio for capped VBR (Apple spec: peak should stay within 200 % of average).
MAXRATE_FACTOR = 1.5
#: VBV buffer in seconds of the average bitrate.
BUFFER_SECONDS = 2.0
#: AAC-LC stereo bitrate (bits/s) of the single audio rendition.
AUDIO_BITRATE = 128_000
#: A source more than this fraction above its highest reachable rung gets a native rung.
NATIVE_RUNG_MARGIN = 0.10


@dataclass(frozen=True)
class VideoRendition:
    """One planned video rendition.

    ``name`` e.g. ``"720p"`` (short side); ``width``/``height`` displayed pixels, even;
    ``video_bitrate``/``max_bitrate``/``buffer_size`` bits/s and bits; ``frame_rate`` frames/s
    the output will have (``None``: the source's own timing is kept).
    """

    name: str
    width: int
    height: int
    video_bitrate: int
    max_bitrate: int
    buffer_size: int
    frame_rate: float | None

    kind = "video"

    def to_dict(self) -> dict:
        """Plain dict for a task message or a DynamoDB item."""
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class AudioRendition:
    """One AAC-LC audio rendition (``EXT-X-MEDIA`` TYPE=AUDIO, ``sound``): ``bitrate`` bits/s,
    ``sample_rate`` Hz; ``track`` the source's audio stream it encodes (``0:a:<track>``);
    ``language`` RFC 5646 or None, ``label`` its ``NAME``, ``default`` / ``describes_video``
    (``CHARACTERISTICS``); ``loudness`` the integrated loudness target (LUFS) or None, with
    the true peak at or under ``true_peak`` (dBTP)."""

    name: str
    bitrate: int
    channels: int
    sample_rate: int
    track: int = 0
    language: str | None = None
    label: str = "default"
    default: bool = True
    describes_video: bool = False
    loudness: float | None = None
    true_peak: float | None = None

    kind = "audio"

    def to_dict(self) -> dict:
        """Plain dict for a task message or a DynamoDB item."""
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class ThumbnailPlan:
    """Poster plus sprite sheet. ``interval`` seconds between sprite tiles; tile ``width`` x
    ``height`` pixels; ``columns`` x ``rows`` tiles; ``count`` tiles used; ``poster_time``
    seconds into the source where the poster search starts; poster ``poster_width`` x
    ``poster_height`` pixels."""

    name: str
    interval: float
    count: int
    columns: int
    rows: int
    width: int
    height: int
    poster_time: float
    poster_width: int
    poster_height: int

    kind = "thumbnails"

    def to_dict(self) -> dict:
        """Plain dict for a task message or a DynamoDB item."""
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class Plan:
    """The whole plan for one source: video renditions (largest first), the default audio
    rendition (``audio``, None without audio) and all of them (``audios``), and the thumbnails plan (the chunk tasks make its sprite tiles and poster; the
    tasks themselves are planned by ``services.ingest.plan_tasks``)."""

    videos: tuple[VideoRendition, ...]
    audio: AudioRendition | None
    thumbnails: ThumbnailPlan
    #: every audio rendition, the default (``audio``) first
    audios: tuple[AudioRendition, ...] = ()


def even(value: float) -> int:
    """Nearest even integer >= 2 (4:2:0 chroma needs even width and height)."""
    return max(2, int(round(value / 2.0)) * 2)


def bitrate_for(short_side: int, table: dict[int, int] = DEFAULT_BITRATES) -> int:
    """Video bitrate (bits/s) for a short side in pixels: the table's value, or a linear
    interpolation between its neighbours, or scaled by pixel count outside the table."""
    if short_side in table:
        return table[short_side]
    sides = sorted(table)
    if short_side < sides[0]:
        return max(50_000, int(table[sides[0]] * (short_side / sides[0]) ** 2))
    if short_side > sides[-1]:
        return int(table[sides[-1]] * (short_side / sides[-1]) ** 2)
    lo = max(s for s in sides if s < short_side)
    hi = min(s for s in sides if s > short_side)
    frac = (short_side - lo) / (hi - lo)
    return int(round(table[lo] + frac * (table[hi] - table[lo]), -3))


def _dimensions(info: MediaInfo, short: int) -> tuple[int, int]:
    src_long = max(info.display_width, info.display_height)
    short = short - short % 2
    long = min(even(short * src_long / info.short_side), src_long - src_long % 2)  # never above the source
    return (short, long) if info.is_portrait else (long, short)


def plan_video(info: MediaInfo, rungs: Iterable, max_frame_rate: float = 60.0, native_rung: bool = True,
               exact: bool = False) -> list[VideoRendition]:
    """Plan the video renditions for ``info`` from ``rungs``: short sides in pixels (named
    ``<short>p``, bitrate from ``bitrate_for``) or rung objects with ``name``, ``height`` (short
    side) and ``bitrate`` (bit/s) attributes (``presets.PresetRung``).

    Returns renditions sorted largest first, never larger than the source (rungs above it are
    dropped: ``dropped_rungs`` names them), each with even dimensions and the source's displayed
    aspect ratio (within rounding to even pixels). ``native_rung``: also a rung at the source's
    own size when it sits >10 % above the highest rung it reaches (or below every rung).
    ``exact``: an explicit ladder: its names and bitrates as given (no 1.5x for high frame rates),
    and a source below every rung still gets one rendition at its own size, at the smallest
    rung's bitrate scaled by pixels. Raises ``PermanentError`` (``INVALID_DIMENSIONS``) for a
    source under 2 pixels on a side, ValueError for an empty ``rungs``.
    """
    if info.short_side < 2:
        raise PermanentError("INVALID_DIMENSIONS", f"the video is too small ({info.display_width}x{info.display_height})")
    src_short = info.short_side
    specs = sorted({_rung(r).height: _rung(r) for r in rungs}.values(), key=lambda r: r.height, reverse=True)
    if not specs:
        raise ValueError("the ladder has no rungs")
    chosen = [r for r in specs if r.height <= src_short]
    top = chosen[0].height if chosen else 0
    if not chosen or (native_rung and src_short < specs[0].height and src_short > top * (1 + NATIVE_RUNG_MARGIN)):
        smallest = specs[-1]
        rate = smallest.bitrate if smallest.bitrate and exact else None
        if rate:
            rate = max(50_000, int(rate * (src_short / smallest.height) ** 2))
        chosen.insert(0, _Rung(None, src_short, rate))
    fps, _, _ = output_frame_rate(info, max_frame_rate)
    out = []
    seen = set()
    for rung in chosen:
        width, height = _dimensions(info, rung.height)
        name = rung.name or f"{min(width, height)}p"
        if name in seen:
            continue
        seen.add(name)
        rate = rung.bitrate or bitrate_for(min(width, height))
        if not exact and (fps or info.frame_rate) > 40:
            rate = int(rate * 1.5)  # high frame rate: Apple's table uses ~1.5x for 60 fps rungs
        out.append(VideoRendition(name=name, width=width, height=height, video_bitrate=rate,
                                  max_bitrate=int(rate * MAXRATE_FACTOR),
                                  buffer_size=int(rate * BUFFER_SECONDS), frame_rate=fps))
    return out


@dataclass(frozen=True)
class _Rung:
    name: str | None
    height: int
    bitrate: int | None


def _rung(rung) -> _Rung:
    if isinstance(rung, int):
        return _Rung(None, rung, None)
    return _Rung(rung.name, int(rung.height), int(rung.bitrate))


def dropped_rungs(info: MediaInfo, rungs: Iterable) -> list[str]:
    """Names of the ``rungs`` (as for ``plan_video``) taller than the source's displayed short
    side: never upscaled, reported in the job."""
    return [r.name or f"{r.height}p" for r in map(_rung, rungs) if r.height > info.short_side]


def plan_audio(info: MediaInfo, tracks: Sequence | None = None, loudness: float | None = None) -> tuple[AudioRendition, ...]:
    """The audio renditions: one per audio track kept by ``tracks`` (an ``audio_tracks``
    setting, ``sound.select_tracks``; None keeps every track), the default first, named
    ``audio``, ``audio_1`` ...; each AAC-LC, at most stereo (5.1 is downmixed), 44.1 or 48 kHz
    kept, anything else resampled to 48 kHz; ``loudness`` (LUFS) normalizes each to that
    target with the true peak at ``sound.TRUE_PEAK_CEILING``. Empty without audio."""
    if not info.has_audio:
        return ()
    known = info.audio_tracks or (sound.AudioTrack(0, info.audio_codec or "unknown", info.audio_channels,
                                                   info.audio_sample_rate, None, None, True, False),)
    chosen = sound.select_tracks(known, tracks)
    out = []
    for index, (track, label) in enumerate(zip(chosen, sound.names(chosen))):
        channels = 1 if track.channels == 1 else 2
        rate = track.sample_rate if track.sample_rate in (44_100, 48_000) else 48_000
        out.append(AudioRendition(name=sound.rendition_name(index), bitrate=AUDIO_BITRATE if channels == 2 else AUDIO_BITRATE // 2,
                                  channels=channels, sample_rate=rate, track=track.position, language=track.language,
                                  label=label, default=index == 0, describes_video=track.describes_video,
                                  loudness=loudness, true_peak=sound.TRUE_PEAK_CEILING if loudness is not None else None))
    return tuple(out)


def plan_thumbnails(info: MediaInfo, tile_long_side: int = 160, max_tiles: int = 100,
                    poster_long_side: int = 1280) -> ThumbnailPlan:
    """Sprite sheet and poster plan: one tile every ``interval`` seconds (1 s minimum, at most
    ``max_tiles`` tiles), at most 10 columns; tiles and poster keep the displayed aspect ratio
    and are never larger than the source."""
    duration = max(info.duration, 0.001)
    interval = max(1.0, float(int(-(-duration // max_tiles))))  # whole seconds, ceil
    count = max(1, int(-(-duration // interval)))
    columns = min(10, count)
    rows = -(-count // columns)
    aspect = info.display_width / info.display_height

    def fit(long_side: int) -> tuple[int, int]:
        long_side = min(long_side, max(info.display_width, info.display_height))
        if aspect >= 1:
            return even(long_side), even(long_side / aspect)
        return even(long_side * aspect), even(long_side)

    tw, th = fit(tile_long_side)
    pw, ph = fit(poster_long_side)
    poster_time = round(min(duration * 0.25, 5.0), 3)
    return ThumbnailPlan(name="thumbnails", interval=interval, count=count, columns=columns, rows=rows,
                         width=tw, height=th, poster_time=poster_time, poster_width=pw, poster_height=ph)


def plan(info: MediaInfo, rungs: Iterable = (1080, 720, 480, 360, 240), max_frame_rate: float = 60.0,
         native_rung: bool = True, exact: bool = False, audio_tracks: Sequence | None = None,
         loudness: float | None = None) -> Plan:
    """The full plan for a source: video ladder (``plan_video``), audio renditions
    (``plan_audio``), thumbnails."""
    audios = plan_audio(info, audio_tracks, loudness)
    return Plan(videos=tuple(plan_video(info, rungs, max_frame_rate, native_rung, exact)),
                audio=audios[0] if audios else None, thumbnails=plan_thumbnails(info), audios=audios)
