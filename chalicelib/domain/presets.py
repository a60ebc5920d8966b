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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .ladder import DEFAULT_BITRATES

HLS_CONTENT_TYPE = "application/vnd.apple.mpegurl"


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
    Content-Type the playlists are stored with."""

    name: str
    description: str
    rungs: tuple[PresetRung, ...]
    native_rung: bool = True
    absolute_uris: bool = False
    playlist_content_type: str = HLS_CONTENT_TYPE
    #: an explicit ladder: names and bitrates exactly as given (``ladder.plan_video``)
    exact: bool = False

    def to_dict(self) -> dict:
        """The ``GET /presets`` entry."""
        return {"name": self.name, "description": self.description, "ladder": [r.to_dict() for r in self.rungs],
                "absolute_uris": self.absolute_uris, "playlist_content_type": self.playlist_content_type}


def rungs_at(heights: Iterable[int], bitrates: dict[int, int]) -> tuple[PresetRung, ...]:
    """Rungs named ``<height>p`` for ``heights`` (short sides, pixels), tallest first, at
    ``bitrates`` (bit/s by height; heights missing from it use ``ladder.bitrate_for``)."""
    from .ladder import bitrate_for
    return tuple(PresetRung(f"{h}p", h, bitrates.get(h) or bitrate_for(h)) for h in sorted(set(heights), reverse=True))


#: The roku-hls short sides (pixels).
ROKU_HEIGHTS = (1080, 720, 480, 360)

DEFAULT_PRESET = "web"


def presets(web_heights: Iterable[int] = (1080, 720, 480, 360, 240)) -> dict[str, Preset]:
    """Every preset by name; ``web_heights`` is the deployment's ladder (``Settings.ladder``)."""
    return {
        "web": Preset("web", "Adaptive HLS for browsers and Apple devices (the deployment's ladder).",
                      rungs_at(web_heights, DEFAULT_BITRATES)),
        "roku-hls": Preset("roku-hls", "HLS for Roku players: 1080/720/480/360, absolute URIs, application/x-mpegURL.",
                           rungs_at(ROKU_HEIGHTS, DEFAULT_BITRATES), native_rung=False, absolute_uris=True,
                           playlist_content_type="application/x-mpegURL"),
    }
