"""What a source's pictures are: colour (primaries, transfer, matrix, range), bit depth,
dynamic range (SDR, HLG, PQ/HDR10, HDR10+, Dolby Vision), scan (progressive or interlaced and
its field order) and orientation (the display matrix, reflections included).

Pure: reads the video stream of ``ffprobe -show_streams`` JSON (or what
``chalicelib.tools.media_probe`` emits in the same shape, plus its ``idet`` counts and
``hdr10_plus`` flag). What is done about it is ``chalicelib.domain.conversions``; the rules and
the measurements behind them are in docs/pictures.md.

Names are FFmpeg's (``av_color_primaries_name`` and friends: ``bt709``, ``bt2020``,
``arib-std-b67`` = HLG, ``smpte2084`` = PQ, ``bt2020nc``, ``tv`` = limited range, ``pc`` = full).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Mapping

#: Transfer characteristics (ITU-T H.273 names as FFmpeg spells them) of high dynamic range.
HLG = "arib-std-b67"  # ARIB STD-B67 / ITU-R BT.2100 hybrid log-gamma
PQ = "smpte2084"  # SMPTE ST 2084 / ITU-R BT.2100 perceptual quantizer
#: Dolby Vision base-layer signal compatibility ids (Dolby Vision streams within ISO BMFF,
#: ``dv_bl_signal_compatibility_id``): what a decoder without Dolby Vision shows (1: HDR10,
#: 2: SDR BT.709, 4: HLG, 6: the UHD Blu-ray base layer, HDR10 too).
DV_COMPATIBILITY = {0: None, 1: "PQ", 2: "SDR", 4: "HLG", 6: "PQ"}
#: ``idet`` needs this many decided frames before its verdict overrides the container's flag.
IDET_MIN_FRAMES = 10
#: Share of ``idet``'s decided frames that must be interlaced to call a progressive-flagged or
#: unflagged source interlaced, and progressive to call an interlaced-flagged source
#: progressive (progressive segmented frames). Measured in docs/pictures.md.
IDET_INTERLACED_SHARE = 0.8
IDET_PROGRESSIVE_SHARE = 0.9
#: ... and the share of those interlaced frames in one field order: real interlacing has one
#: order throughout; small or noisy progressive pictures fool idet both ways (the corpus's
#: 161x121 VP9 clip: TFF 19, BFF 8, progressive 0).
IDET_ORDER_SHARE = 0.9
#: Share of idet's single-frame verdicts that must be combed (in one order) to call a
#: progressive-flagged or unflagged source telecined film: 3:2 pulldown combs 2 frames in 5.
IDET_FILM_SHARE = 0.2
#: FFmpeg ``field_order`` values: t = top field, b = bottom; the first letter is the field
#: coded first, the second the one displayed first.
FIELD_ORDERS = {"tt": "tff", "bt": "tff", "bb": "bff", "tb": "bff"}
#: Display-matrix sign patterns (a, b, c, d) -> (clockwise rotation in degrees, mirrored).
#: FFmpeg's convention (libavutil/display.h): a source point (p, q) is shown at
#: (a*p + c*q, b*p + d*q) plus a translation; "mirrored" is a horizontal flip after rotating.
ORIENTATIONS: dict[tuple[int, int, int, int], tuple[int, bool]] = {
    (1, 0, 0, 1): (0, False), (0, 1, -1, 0): (90, False), (-1, 0, 0, -1): (180, False), (0, -1, 1, 0): (270, False),
    (-1, 0, 0, 1): (0, True), (0, 1, 1, 0): (90, True), (1, 0, 0, -1): (180, True), (0, -1, -1, 0): (270, True),
}


@dataclass(frozen=True)
class DolbyVision:
    """A Dolby Vision configuration record: ``profile`` (5, 7, 8, 9 ...), ``level`` and the
    base layer's ``compatibility_id`` (``DV_COMPATIBILITY``; 0: no base layer a decoder
    without Dolby Vision can show, as in profile 5's IPTPQc2)."""

    profile: int
    level: int
    compatibility_id: int

    @property
    def base_layer(self) -> str | None:
        """What the base layer is without Dolby Vision processing: ``"SDR"``, ``"HLG"``,
        ``"PQ"``, or None when there is no compatible base layer."""
        return DV_COMPATIBILITY.get(self.compatibility_id)

    @property
    def label(self) -> str:
        """``"Dolby Vision 8.4"`` (profile.compatibility id)."""
        return f"Dolby Vision {self.profile}.{self.compatibility_id}"


@dataclass(frozen=True)
class Picture:
    """The picture facts of a video stream.

    ``primaries``/``transfer``/``matrix``/``color_range``: FFmpeg names or None (unspecified);
    ``bit_depth`` bits per sample; ``scan``: ``progressive``, ``tff`` or ``bff`` (decided from
    the container flag ``field_order`` and ``idet``, see ``decide_scan``) with ``scan_source``
    saying which and ``cadence`` (``video`` or ``film``); ``idet``: ``{"tff", "bff", "progressive", "undetermined"}`` frame counts of
    FFmpeg's ``idet`` on a sample (None when not run); ``rotation`` clockwise degrees and
    ``mirrored`` a horizontal flip after it (the display matrix); ``dolby_vision`` the
    configuration record; ``mastering_max_luminance``/``mastering_min_luminance`` cd/m² (SMPTE
    ST 2086), ``max_cll``/``max_fall`` cd/m² (CTA-861.3); ``hdr10_plus`` SMPTE ST 2094-40
    dynamic metadata on the first frame; ``dovi_rpu`` a Dolby Vision RPU on it."""

    primaries: str | None = None
    transfer: str | None = None
    matrix: str | None = None
    color_range: str | None = None
    bit_depth: int = 8
    field_order: str | None = None
    scan: str = "progressive"
    scan_source: str = "flag"
    cadence: str = "video"
    idet: dict | None = None
    rotation: int = 0
    mirrored: bool = False
    dolby_vision: DolbyVision | None = None
    mastering_max_luminance: float | None = None
    mastering_min_luminance: float | None = None
    max_cll: int | None = None
    max_fall: int | None = None
    hdr10_plus: bool = False
    dovi_rpu: bool = False

    @property
    def dynamic_range(self) -> str:
        """``"HLG"``, ``"PQ"`` or ``"SDR"``: the transfer of what a decoder outputs, from the
        stream's transfer characteristics, else a Dolby Vision record's compatible base layer;
        ``"DV"`` for Dolby Vision without a compatible base layer (profile 5), whatever the
        stream's tags say."""
        if self.dolby_vision and self.dolby_vision.base_layer is None:
            return "DV"
        if self.dovi_rpu and not self.dolby_vision and not (self.transfer or self.primaries or self.matrix):
            return "DV"  # an RPU on an untagged picture, no record: profile 5's IPTPQc2
        if self.transfer == HLG:
            return "HLG"
        if self.transfer == PQ:
            return "PQ"
        if self.dolby_vision:
            return self.dolby_vision.base_layer or "DV"
        return "SDR"

    @property
    def hdr_format(self) -> str:
        """A person's name for the dynamic range: ``SDR``, ``HLG``, ``HDR10`` (PQ with static
        metadata), ``HDR10+``, ``PQ``, or ``Dolby Vision 8.4 (HLG base layer)`` etc."""
        base = self.dynamic_range
        if base == "PQ":
            base = "HDR10+" if self.hdr10_plus else ("HDR10" if self.max_cll or self.mastering_max_luminance else "PQ")
        if self.dolby_vision:
            layer = f"{base} base layer" if base != "DV" else "no compatible base layer"
            return f"{self.dolby_vision.label} ({layer})"
        return base

    @property
    def interlaced(self) -> bool:
        """True when the picture is to be deinterlaced (``scan`` is ``tff`` or ``bff``)."""
        return self.scan != "progressive"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the job item (with ``dynamic_range`` and ``hdr_format``)."""
        out = asdict(self)
        out.update(dynamic_range=self.dynamic_range, hdr_format=self.hdr_format)
        return out


def _number(value: Any) -> float | None:
    """A number from ffprobe's ``"10000000/10000"``, ``"1000"`` or 1000; None otherwise."""
    try:
        if isinstance(value, str) and "/" in value:
            num, den = value.split("/", 1)
            return float(num) / float(den) if float(den) else None
        return float(value)
    except (TypeError, ValueError):
        return None


def bit_depth_of(stream: Mapping[str, Any]) -> int:
    """Bits per sample of a video stream: ``bits_per_raw_sample`` when given (the PyAV probe
    reads it from the pixel format's first component), else read from the pixel format name:
    the digits after ``p``/``gray``/``rgb48``-style names (``yuv420p10le`` 10, ``p016le`` 16,
    ``gray12le`` 12, ``rgb48le`` 16), never the ``12`` of ``nv12`` (8 bits)."""
    raw = _number(stream.get("bits_per_raw_sample"))
    if raw and 8 <= raw <= 16:
        return int(raw)
    name = str(stream.get("pix_fmt") or "")
    if re.match(r"(rgb|bgr)(48|a64)", name):
        return 16
    match = re.search(r"(?:p|gray)0?(\d{1,2})(?:le|be)?$", name)
    depth = int(match.group(1)) if match else 8
    return depth if 9 <= depth <= 16 else 8


def display_matrix(stream: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    """``(a, b, c, d)`` of the stream's display matrix (ffprobe's ``displaymatrix`` text: three
    rows of three 16.16 fixed-point numbers, the last column 2.30), or None."""
    for side in stream.get("side_data_list") or []:
        text = side.get("displaymatrix")
        if isinstance(text, str):
            numbers = [int(n) for n in re.findall(r"(?<=\s)-?\d+(?=\s|$)", text.replace(":", ": "))]
            if len(numbers) >= 9:
                return numbers[0] / 65536, numbers[1] / 65536, numbers[3] / 65536, numbers[4] / 65536
    return None


def orientation_of(stream: Mapping[str, Any], rotation_fallback: int) -> tuple[int, bool]:
    """(clockwise rotation in degrees, mirrored) of a video stream from its display matrix
    (``ORIENTATIONS``); without a matrix, or one that is not a multiple of 90 degrees,
    ``rotation_fallback`` unmirrored (the ``rotation`` ffprobe derives; FFmpeg 5.1's
    autorotate applies only that)."""
    matrix = display_matrix(stream)
    if matrix:
        signs = tuple(0 if abs(v) < 0.5 else (1 if v > 0 else -1) for v in matrix)
        if signs in ORIENTATIONS:
            return ORIENTATIONS[signs]
    return rotation_fallback, False


def _side(stream: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((s for s in stream.get("side_data_list") or [] if str(s.get("side_data_type", "")).lower() == kind), None)


def _known(value: Any) -> str | None:
    """An FFmpeg colour or field name, None for unspecified."""
    return None if value in (None, "", "unknown", "reserved", "unspecified") else str(value)


def _verdict(counts: Mapping[str, int], prefix: str) -> tuple[int, int, int]:
    """(tff, bff, progressive) frame counts of idet's ``prefix`` (``""``: multi-frame,
    ``"single_"``: single-frame) verdict."""
    return tuple(int(counts.get(f"{prefix}{kind}") or 0) for kind in ("tff", "bff", "progressive"))  # type: ignore[return-value]


def _combed(tff: int, bff: int, progressive: int, share: float) -> str | None:
    """The field order when ``share`` of the decided frames (at least ``IDET_MIN_FRAMES``)
    are interlaced and ``IDET_ORDER_SHARE`` of those in one order, else None."""
    decided, interlaced = tff + bff + progressive, tff + bff
    if decided >= IDET_MIN_FRAMES and interlaced and interlaced >= share * decided \
            and max(tff, bff) >= IDET_ORDER_SHARE * interlaced:
        return "tff" if tff >= bff else "bff"
    return None


def decide_scan(field_order: str | None, idet: Mapping[str, int] | None) -> tuple[str, str, str]:
    """(scan, why, cadence) from the container/codec flag ``field_order`` and ``idet``'s
    counts (multi-frame: a frame's type once three in a row agree; ``single_*``: each frame on
    its own). ``cadence`` is ``"video"`` (every field its own instant: deinterlace one frame
    per field) or ``"film"`` (a pulldown cadence, some frames combed and some not: one frame
    per frame, so film is not shown with repeated fields).

    * flagged interlaced (``tt``/``bb``/``tb``/``bt``): interlaced in the flag's order, unless
      idet decided ``IDET_MIN_FRAMES`` frames, found ``IDET_PROGRESSIVE_SHARE`` of them
      progressive and its single-frame verdict saw no combing either (progressive content in
      interlaced coding: deinterlacing would only soften it);
    * flagged progressive, or no flag: progressive, unless the multi-frame verdict found
      ``IDET_INTERLACED_SHARE`` of the frames interlaced, ``IDET_ORDER_SHARE`` of those in one
      order (a wrong or missing flag: video cadence), or the single-frame verdict found a
      fifth combed in one order (a film cadence: 3:2 pulldown combs 2 frames in 5, which the
      multi-frame verdict, needing three in a row, misses).

    ``why`` is ``"flag"``, ``"idet"``, ``"idet, a film cadence"`` or ``"flag, idet found
    progressive frames"``."""
    flagged = FIELD_ORDERS.get(str(field_order or ""))
    counts = idet or {}
    tff, bff, progressive = _verdict(counts, "")
    single = _verdict(counts, "single_")
    decided = tff + bff + progressive
    if flagged:
        if (decided >= IDET_MIN_FRAMES and progressive >= IDET_PROGRESSIVE_SHARE * decided
                and not _combed(*single, 1 - IDET_PROGRESSIVE_SHARE)):
            return "progressive", "flag, idet found progressive frames", "video"
        return flagged, "flag", "video"
    if order := _combed(tff, bff, progressive, IDET_INTERLACED_SHARE):
        return order, "idet", "video"
    if order := _combed(*single, IDET_FILM_SHARE):
        return order, "idet, a film cadence", "film"
    return "progressive", "flag" if field_order == "progressive" else ("idet" if idet else "flag"), "video"


def parse_picture(stream: Mapping[str, Any], rotation: int) -> Picture:
    """The ``Picture`` of a video stream of ffprobe-shaped JSON; ``rotation`` is what
    ``media.rotation_of`` read (used when the display matrix is absent or not a right angle)."""
    dovi = _side(stream, "dovi configuration record")
    dolby = None
    if dovi and dovi.get("dv_profile") is not None:
        dolby = DolbyVision(int(dovi["dv_profile"]), int(dovi.get("dv_level") or 0),
                            int(dovi.get("dv_bl_signal_compatibility_id") or 0))
    mastering = _side(stream, "mastering display metadata") or {}
    light = _side(stream, "content light level metadata") or {}
    scan, why, cadence = decide_scan(stream.get("field_order"), stream.get("idet"))
    turn, mirrored = orientation_of(stream, rotation)
    known = _known
    max_cll = int(_number(light.get("max_content")) or 0) or None
    return Picture(
        primaries=known(stream.get("color_primaries")), transfer=known(stream.get("color_transfer")),
        matrix=known(stream.get("color_space")), color_range=known(stream.get("color_range")),
        bit_depth=bit_depth_of(stream), field_order=known(stream.get("field_order")), scan=scan, scan_source=why,
        cadence=cadence,
        idet=dict(stream["idet"]) if isinstance(stream.get("idet"), Mapping) else None,
        rotation=turn, mirrored=mirrored, dolby_vision=dolby,
        mastering_max_luminance=_number(mastering.get("max_luminance")),
        mastering_min_luminance=_number(mastering.get("min_luminance")),
        max_cll=max_cll, max_fall=int(_number(light.get("max_average")) or 0) or None,
        hdr10_plus=bool(stream.get("hdr10_plus")), dovi_rpu=bool(stream.get("dovi_rpu")))
