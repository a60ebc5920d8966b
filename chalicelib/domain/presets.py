"""Named job presets: a ladder and how its playlists are written. Presets are data (listed by
``GET /presets``); a job names one with ``"ladder": "<preset>"``.

* ``web`` (the default): the deployment's ladder (``VODPIPE_LADDER`` short sides, 1080/720/480/
  360/240 unless set) at the bitrates of ``ladder.DEFAULT_BITRATES`` (close to Apple's HLS
  authoring spec table), relative URIs, ``application/vnd.apple.mpegurl`` (RFC 8216 §4), and a
  rung at the source's own size when it sits >10 % above the highest rung it reaches.
* ``roku-hls``: 1080/720/480/360 at the same bitrates (Roku's streaming specifications: AVC
  up to 1920x1080, several quality levels, the lowest around 400 kbit/s or more), every URI in
  every playlist absolute (players that resolve relative URIs against a redirected base then
  still find the media) and playlists stored as ``application/x-mpegURL``, the type Roku's
  documentation and older players expect; no rung at the source's own size.

A job's ``max_resolution`` (``MAX_RESOLUTIONS``; ``job_settings.JobSettings.preset``) is the
tallest rung its ladder may have: ``1080p`` (the default) plans the preset as listed; with
``1440p`` the ``web`` preset gains a 1440p rung above the deployment's rungs, with ``2160p`` a
2160p and a 1440p rung (``HIGH_HEIGHTS``, at ``ladder.DEFAULT_BITRATES``); a deployment rung above 1080p counts as a
high rung (planned only when ``max_resolution`` reaches it). ``roku-hls`` takes ``1080p`` only
(Roku's AVC tops out at 1920x1080): anything above is refused naming ``max_resolution``, not
ignored. Never upscale still holds: ``ladder.plan_video`` drops every rung above the source.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

from .ladder import DEFAULT_BITRATES

HLS_CONTENT_TYPE = "application/vnd.apple.mpegurl"
#: ``max_resolution`` values by name: the tallest rung (short side, pixels) a job's ladder may
#: have. Explicit ladders are held to it too (``job_settings.JobSettings``).
MAX_RESOLUTIONS: dict[str, int] = {"1080p": 1080, "1440p": 1440, "2160p": 2160}
DEFAULT_MAX_RESOLUTION = "1080p"
#: The default's height: every preset's ``rungs`` are at most this tall, taller ones are ``high_rungs``.
BASE_HEIGHT = MAX_RESOLUTIONS[DEFAULT_MAX_RESOLUTION]
#: The short sides (pixels) the ``web`` preset gains above the deployment's ladder, each when
#: a job's ``max_resolution`` reaches it.
HIGH_HEIGHTS = (2160, 1440)


@dataclass(frozen=True)
class PresetRung:
    """One rung of a preset: ``name`` (e.g. ``"720p"``), ``height`` the short side in pixels,
    ``bitrate`` the average video bitrate in bit/s."""

    name: str
    height: int
    bitrate: int

    def to_dict(self) -> dict:
        """``{"name", "height", "bitrate"}``."""
        return {"name": self.name, "height": self.height, "bitrate": self.bitrate}


@dataclass(frozen=True)
class Preset:
    """A named ladder plus playlist options. ``native_rung``: also plan a rung at the source's
    own size when it is >10 % above the highest rung it reaches (``ladder.plan_video``);
    ``absolute_uris``: write absolute URLs in every playlist; ``playlist_content_type``: the
    Content-Type the playlists are stored with; ``high_rungs``: the rungs above 1080p it gains
    up to a job's ``max_resolution`` (none: it takes ``1080p`` only, ``top_reason`` says why)."""

    name: str
    description: str
    rungs: tuple[PresetRung, ...]
    native_rung: bool = True
    absolute_uris: bool = False
    playlist_content_type: str = HLS_CONTENT_TYPE
    #: an explicit ladder: names and bitrates exactly as given (``ladder.plan_video``)
    exact: bool = False
    high_rungs: tuple[PresetRung, ...] = ()
    top_reason: str = ""

    @property
    def max_resolutions(self) -> tuple[str, ...]:
        """The ``max_resolution`` values this preset takes: ``1080p`` and its high rungs' names."""
        heights = {r.height for r in self.high_rungs}
        return tuple(name for name, h in MAX_RESOLUTIONS.items() if h <= BASE_HEIGHT or h in heights)

    def up_to(self, max_resolution: str) -> Preset:
        """This preset for a job's ``max_resolution`` (a ``MAX_RESOLUTIONS`` name): its rungs no
        taller than it, plus its high rungs no taller than it, tallest first. Raises ValueError
        for a value the preset does not take (``max_resolutions``) or one that leaves no rung."""
        if max_resolution not in self.max_resolutions:
            reason = f" ({self.top_reason})" if self.top_reason else ""
            raise ValueError(f"{max_resolution!r} is above what preset {self.name!r} makes{reason}; it takes "
                             f"{', '.join(self.max_resolutions)}")
        cap = MAX_RESOLUTIONS[max_resolution]
        rungs = [r for r in (*self.high_rungs, *self.rungs) if r.height <= cap]
        if not rungs:
            raise ValueError(f"preset {self.name!r} has no rung at or below {max_resolution}")
        return replace(self, rungs=tuple(sorted(rungs, key=lambda r: r.height, reverse=True)))

    def to_dict(self) -> dict:
        """The ``GET /presets`` entry: ``ladder`` is the preset at ``max_resolution`` ``1080p``;
        ``max_resolutions`` the values it takes, ``high_rungs`` the rungs they add."""
        return {"name": self.name, "description": self.description, "ladder": [r.to_dict() for r in self.rungs],
                "absolute_uris": self.absolute_uris, "playlist_content_type": self.playlist_content_type,
                "max_resolutions": list(self.max_resolutions), "high_rungs": [r.to_dict() for r in self.high_rungs]}


def rungs_at(heights: Iterable[int], bitrates: dict[int, int]) -> tuple[PresetRung, ...]:
    """Rungs named ``<height>p`` for ``heights`` (short sides, pixels), tallest first, at
    ``bitrates`` (bit/s by height; heights missing from it use ``ladder.bitrate_for``)."""
    from .ladder import bitrate_for
    return tuple(PresetRung(f"{h}p", h, bitrates.get(h) or bitrate_for(h)) for h in sorted(set(heights), reverse=True))


#: The roku-hls short sides (pixels).
ROKU_HEIGHTS = (1080, 720, 480, 360)

DEFAULT_PRESET = "web"


def presets(web_heights: Iterable[int] = (1080, 720, 480, 360, 240)) -> dict[str, Preset]:
    """Every preset by name, as planned at ``max_resolution`` ``1080p`` (``Preset.up_to`` for
    more); ``web_heights`` is the deployment's ladder (``Settings.ladder``, short sides in pixels)."""
    heights = tuple(web_heights)
    return {
        "web": Preset("web", "Adaptive HLS for browsers and Apple devices (the deployment's ladder; "
                             "max_resolution 1440p or 2160p adds rungs above it).",
                      rungs_at([h for h in heights if h <= BASE_HEIGHT], DEFAULT_BITRATES),
                      high_rungs=rungs_at([*HIGH_HEIGHTS, *(h for h in heights if h > BASE_HEIGHT)], DEFAULT_BITRATES)),
        "roku-hls": Preset("roku-hls", "HLS for Roku players: 1080/720/480/360, absolute URIs, application/x-mpegURL.",
                           rungs_at(ROKU_HEIGHTS, DEFAULT_BITRATES), native_rung=False, absolute_uris=True,
                           playlist_content_type="application/x-mpegURL",
                           top_reason="Roku's streaming specifications: AVC up to 1920x1080"),
    }
