"""What the chunk's filter graph does to every decoded frame so each rendition is what it says:
8-bit 4:2:0 H.264, BT.709 primaries, transfer and matrix, limited range, progressive, upright,
at a standard frame rate. Pure: ``plan_picture`` decides from the probed ``MediaInfo``;
``prefix_filters`` and ``scale_options`` write FFmpeg filter text; nothing runs here.

Order in the graph (each step only when needed; the reasons and measurements are in
docs/pictures.md):

1. ``fps``: a source above ``max_frame_rate`` (slow-motion phone clips: 120, 240 fps) keeps
   every k-th frame, k whole, down to a standard rate (``standard_frame_rate``);
2. ``bwdif``: interlaced sources are deinterlaced on the coded picture, before any rotation
   (fields are rows of the coded picture), at field rate (25i -> 50p) when that stays within
   ``max_frame_rate``, else at frame rate;
3. orientation: ``transpose``/``hflip``/``vflip`` exactly as the display matrix says, mirrors
   included (FFmpeg 5.1's autorotate applies rotations only, so the chunk's input runs with
   ``-autorotate 0`` and these filters instead);
4. colour: HLG and PQ are tone-mapped to BT.709 SDR once, at the top rung's size, in linear
   light (zscale + tonemap); SDR outside the BT.709 gamut (BT.2020, Display P3) is converted
   by zscale, and so are 10- and 12-bit SDR sources (swscale truncates to 8 bits: bands;
   zscale dithers, ``DITHER``); every other difference (matrix BT.601 -> BT.709, full
   -> limited range) is done by each rendition's scaler (``scale_options``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from typing import Any, Mapping

from .errors import PermanentError
from .media import MediaInfo
from .picture import HLG, PQ, Picture

#: Frame rates a decimated source is brought to (frames/s), NTSC rates as exact fractions.
STANDARD_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
                  Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60))
#: Primaries close enough to BT.709 that only the matrix is converted (SMPTE C, EBU, NTSC
#: 1953 and SMPTE 240M differ from BT.709 by less than a viewer sees on a web player).
VIDEO_GAMUTS = ("bt709", "smpte170m", "bt470bg", "bt470m", "smpte240m")
#: Tone mapping (measured in docs/pictures.md): linear light with 100 cd/m² = 1.0 (``npl``),
#: the ``hable`` curve, no desaturation.
TONEMAP_OPERATOR = "hable"
NOMINAL_PEAK = 100.0
#: Peak luminance assumed without metadata (cd/m²): HLG's reference display (ITU-R BT.2100
#: Table 5: 1000 cd/m²) and a PQ master without MaxCLL or mastering display (HDR10's common
#: 1000 cd/m² grade).
DEFAULT_PEAK = {"HLG": 1000.0, "PQ": 1000.0}
#: Peaks believed from metadata (cd/m²): PQ reaches 10,000; a MaxCLL of 0-99 or above is a
#: writer's mistake (0 means "unknown" in CTA-861.3).
PLAUSIBLE_PEAK = (100.0, 10_000.0)
#: zscale's dithering from 10/12 bits (and float) to 8: ordered. On a slow 10-bit ramp
#: (docs/pictures.md) swscale truncates (flat bands 62 px wide), zscale's ordered dither leaves
#: runs of at most 22 px, error diffusion 36; after x264 at CRF 18 ordered keeps 26 px, error
#: diffusion 58.
DITHER = "ordered"
#: swscale's names for matrices (``scale`` filter ``in_color_matrix``).
SWSCALE_MATRICES = {"bt709": "bt709", "smpte170m": "bt601", "bt470bg": "bt601", "fcc": "fcc",
                    "smpte240m": "smpte240m", "bt2020nc": "bt2020", "bt2020c": "bt2020"}
#: Untagged pictures: BT.601 below this short side (SD), BT.709 from it (HD), as players assume.
HD_SHORT_SIDE = 720


@dataclass(frozen=True)
class PicturePlan:
    """The decisions for one job (stored on the job, carried by every chunk message).

    ``rotation`` clockwise degrees and ``mirrored`` (horizontal flip after it): the display
    matrix; ``decimate`` the frame rate to drop to (FFmpeg rate text, e.g. ``"60000/1001"``) or
    None; ``deinterlace`` ``"tff"``/``"bff"`` or None, ``field_rate`` one frame per field;
    ``tone_map`` {transfer, primaries, matrix, range, peak (cd/m²)} or None; ``convert_from``
    {primaries, transfer, matrix, range} of an SDR source zscale converts (outside the BT.709
    gamut, or more than 8 bits: error-diffusion dithering), or None;
    ``size`` [width, height] pixels the colour step outputs (the top rung); ``even``: the coded
    picture's sides are even (zimg refuses a 4:2:0 picture of odd size: it is cropped by one
    pixel first); ``in_range`` and
    ``in_matrix`` (swscale names) of the frames the renditions' scalers receive;
    ``conversions``: what was done, in words, for the job resource."""

    rotation: int = 0
    mirrored: bool = False
    decimate: str | None = None
    deinterlace: str | None = None
    field_rate: bool = False
    tone_map: dict | None = None
    convert_from: dict | None = None
    size: tuple[int, int] | None = None
    even: bool = True
    in_range: str = "tv"
    in_matrix: str = "bt709"
    conversions: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the job item and task messages."""
        out = asdict(self)
        out["size"] = list(self.size) if self.size else None
        out["conversions"] = list(self.conversions)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PicturePlan":
        """The plan from ``to_dict``'s form (unknown keys ignored)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if known.get("size"):
            known["size"] = tuple(int(v) for v in known["size"])
        known["conversions"] = tuple(known.get("conversions") or ())
        return cls(**known)


def rate_text(rate: Fraction) -> str:
    """FFmpeg's text for a frame rate: ``"60"`` or ``"60000/1001"``."""
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def standard_frame_rate(fps: float, cap: float) -> Fraction | None:
    """The rate a source of ``fps`` frames/s above ``cap`` is decimated to: for k = 2, 3, ...
    the first ``fps / k`` within 1 % of a ``STANDARD_RATES`` entry at or under ``cap`` (every
    k-th frame kept: even motion; 120 -> 60, 119.88 -> 59.94, 240 -> 60, 100 -> 50, 90 -> 30);
    else ``cap`` itself. None when ``fps`` is not more than 1 % above ``cap`` (variable-rate
    phone captures of 60 fps average 60.1 to 60.5)."""
    if not fps or fps <= cap * 1.01:  # within 1 % of the cap: a VFR average of a 60 fps capture
        return None
    for k in range(2, 65):
        target = fps / k
        near = [rate for rate in STANDARD_RATES
                if float(rate) <= cap * 1.001 and abs(target - float(rate)) <= 0.01 * float(rate)]
        if near:
            return min(near, key=lambda rate: abs(target - float(rate)))
        if target < float(STANDARD_RATES[0]):
            break
    return Fraction(cap).limit_denominator(1001)


def output_frame_rate(info: MediaInfo, max_frame_rate: float) -> tuple[float | None, str | None, bool]:
    """(output frames/s or None for the source's own timing, decimation rate text or None,
    field-rate deinterlacing) for ``info`` under ``max_frame_rate``. Interlaced sources are
    deinterlaced at field rate (one frame per field: 25i -> 50p, the motion the camera
    recorded) when twice the frame rate stays within ``max_frame_rate``, else at frame rate;
    film in an interlaced cadence (``Picture.cadence`` ``film``) at frame rate."""
    fps = info.frame_rate
    if info.picture.interlaced:
        if fps and info.picture.cadence == "video" and fps * 2 <= max_frame_rate * 1.001:
            return fps * 2, None, True
        return (min(fps, max_frame_rate) if fps else None), None, False
    rate = standard_frame_rate(fps, max_frame_rate)
    if rate is None:
        return None, None, False
    return float(rate), rate_text(rate), False


def _assumed_matrix(picture: Picture, short_side: int) -> str:
    if picture.matrix in SWSCALE_MATRICES:
        return SWSCALE_MATRICES[picture.matrix]
    return "bt709" if short_side >= HD_SHORT_SIDE else "bt601"


def _peak(picture: Picture) -> tuple[float, str]:
    """(peak cd/m², where it came from) for tone mapping: MaxCLL, else the mastering display's
    maximum, else ``DEFAULT_PEAK``; a value outside ``PLAUSIBLE_PEAK`` is not believed."""
    if picture.dynamic_range == "PQ":
        low, high = PLAUSIBLE_PEAK
        if picture.max_cll and low <= picture.max_cll <= high:
            return float(picture.max_cll), "MaxCLL"
        if picture.mastering_max_luminance and low <= picture.mastering_max_luminance <= high:
            return float(picture.mastering_max_luminance), "mastering display"
    return DEFAULT_PEAK[picture.dynamic_range], "nominal"


def plan_picture(info: MediaInfo, top: tuple[int, int], max_frame_rate: float = 60.0) -> PicturePlan:
    """The ``PicturePlan`` of a source whose top rendition is ``top`` (width, height pixels).

    Raises ``PermanentError`` ``UNSUPPORTED_DYNAMIC_RANGE`` for Dolby Vision without a
    compatible base layer (profile 5: IPTPQc2, which only a Dolby Vision renderer shows
    correctly; decoded as is its colours are wrong)."""
    picture = info.picture
    if picture.dynamic_range == "DV":
        raise PermanentError("UNSUPPORTED_DYNAMIC_RANGE",
                             f"{picture.dolby_vision.label if picture.dolby_vision else 'Dolby Vision'} has no base layer "
                             "a standard decoder shows correctly (profile 5 is IPTPQc2, for Dolby Vision renderers "
                             "only); vodpipe cannot render it: export the video as HDR10, HLG or SDR")
    notes: list[str] = []
    _, decimate, field_rate = output_frame_rate(info, max_frame_rate)
    if decimate:
        step = round(info.frame_rate / float(Fraction(decimate)))
        notes.append(f"frame rate {info.frame_rate:.4g} -> {float(Fraction(decimate)):.4g} fps "
                     f"(1 frame in {step} kept)")
    deinterlace = picture.scan if picture.interlaced else None
    if deinterlace:
        per = "one frame per field" if field_rate else "one frame per frame"
        rate = f": {info.frame_rate * (2 if field_rate else 1):.4g}p" if info.frame_rate else ""
        notes.append(f"deinterlaced (bwdif, {'top' if deinterlace == 'tff' else 'bottom'} field first "
                     f"as found by the {picture.scan_source.replace('flag', 'container flag')}, {per}{rate})")
    if picture.rotation or picture.mirrored:
        turn = f"rotated {picture.rotation} degrees clockwise" if picture.rotation else ""
        notes.append(" and ".join(x for x in (turn, "mirrored" if picture.mirrored else "") if x) + " (display matrix)")
    plan = PicturePlan(rotation=picture.rotation, mirrored=picture.mirrored, decimate=decimate,
                       deinterlace=deinterlace, field_rate=field_rate, size=top,
                       even=info.width % 2 == 0 and info.height % 2 == 0)
    dynamic = picture.dynamic_range
    if dynamic in ("HLG", "PQ"):
        peak, source = _peak(picture)
        transfer = HLG if dynamic == "HLG" else PQ
        tone = {"transfer": transfer, "primaries": picture.primaries or "bt2020", "matrix": picture.matrix or "bt2020nc",
                "range": picture.color_range or "tv", "peak": peak}
        notes.append(f"tone-mapped {picture.hdr_format} -> BT.709 SDR ({TONEMAP_OPERATOR}, peak {peak:g} cd/m² "
                     f"({source}), zscale + tonemap in linear light)")
        return replace(plan, tone_map=tone, conversions=tuple(notes))
    matrix = _assumed_matrix(picture, info.short_side)
    if matrix != "bt709":
        notes.append(f"matrix {picture.matrix or 'unspecified (SD: BT.601 assumed)'} -> BT.709")
    if picture.color_range == "pc":
        notes.append("full range -> limited range")
    wide = bool(picture.primaries) and picture.primaries not in VIDEO_GAMUTS
    if wide:
        notes.append(f"{picture.primaries} primaries -> BT.709 (zscale)")
    if picture.bit_depth > 8:
        notes.append(f"{picture.bit_depth}-bit -> 8-bit (dithered, zscale)")
    if wide or picture.bit_depth > 8:  # zscale: gamut conversion in linear light, dithering
        sd = matrix == "bt601"
        source = {"primaries": picture.primaries or ("smpte170m" if sd else "bt709"),
                  "transfer": picture.transfer or ("smpte170m" if sd else "bt709"),
                  "matrix": picture.matrix or ("smpte170m" if sd else "bt709"), "range": picture.color_range or "tv"}
        return replace(plan, convert_from=source, conversions=tuple(notes))
    return replace(plan, in_range="pc" if picture.color_range == "pc" else "tv", in_matrix=matrix,
                   conversions=tuple(notes))


#: (rotation, mirrored) -> filters that show the coded picture as the display matrix says.
ORIENTATION_FILTERS: dict[tuple[int, bool], tuple[str, ...]] = {
    (0, False): (), (90, False): ("transpose=clock",), (180, False): ("hflip", "vflip"),
    (270, False): ("transpose=cclock",), (0, True): ("hflip",), (90, True): ("transpose=cclock_flip",),
    (180, True): ("vflip",), (270, True): ("transpose=clock_flip",),
}


def _tagged(colour: Mapping[str, Any]) -> str:
    """``setparams`` that tags every frame with the colour decided at ingest: zscale reads the
    frame's tags (given as its ``tin``/``pin``/``min`` options instead, FFmpeg 5.1's zscale
    fails on an untagged frame with "Generic error in an external library", measured), and the
    decision covers sources whose tags are missing (an HLG or PQ base layer known from its
    Dolby Vision record, untagged SD)."""
    return (f"setparams=color_primaries={colour['primaries']}:color_trc={colour['transfer']}:"
            f"colorspace={colour['matrix']}:range={'pc' if colour['range'] == 'pc' else 'tv'}")


def prefix_filters(plan: PicturePlan, start: float = 0.0) -> list[str]:
    """The filters every decoded frame goes through before the ladder's ``split`` (see the
    module docstring for their order), as FFmpeg filter text, for a run whose frames are
    timed from ``start`` seconds of the source: decimation keeps the frames nearest an
    absolute grid of the output rate (timestamps shifted to source time around ``fps``), so
    every chunk and every resumed run keeps the same frames."""
    chain: list[str] = []
    if plan.decimate:
        # back to a microsecond time base before shifting back: in fps's own (1/rate) the shift
        # would be rounded to whole frames' worth of ticks, moving every frame off the grid
        chain += [f"setpts=PTS+{start:.6f}/TB", f"fps={plan.decimate}", "settb=AVTB",
                  f"setpts=PTS-{start:.6f}/TB"] if start else [f"fps={plan.decimate}"]
    if plan.deinterlace:
        chain.append(f"bwdif=mode={'send_field' if plan.field_rate else 'send_frame'}:"
                     f"parity={plan.deinterlace}:deint=all")
    chain.extend(ORIENTATION_FILTERS.get((plan.rotation % 360, plan.mirrored), ()))
    size = f"w={plan.size[0]}:h={plan.size[1]}:filter=bicubic:" if plan.size else ""
    if (plan.tone_map or plan.convert_from) and not plan.even:
        chain.append("crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0")
    if plan.tone_map:
        tone = plan.tone_map
        chain += [_tagged(tone), f"zscale={size}t=linear:npl={NOMINAL_PEAK:g}", "format=gbrpf32le",
                  "zscale=p=bt709", f"tonemap={TONEMAP_OPERATOR}:desat=0:peak={float(tone['peak']) / NOMINAL_PEAK:g}",
                  f"zscale=t=bt709:m=bt709:r=limited:dither={DITHER}", "format=yuv420p"]
    elif plan.convert_from:
        chain += [_tagged(plan.convert_from), f"zscale={size}p=bt709:t=bt709:m=bt709:r=limited:dither={DITHER}",
                  "format=yuv420p"]
    return chain


def scale_options(plan: PicturePlan | None) -> str:
    """The options of each rendition's ``scale`` that finish the colour: from the plan's
    ``in_range``/``in_matrix`` to limited-range BT.709 (swscale dithers when it drops bits)."""
    if plan is None:
        return ""
    return f":in_range={plan.in_range}:out_range=tv:in_color_matrix={plan.in_matrix}:out_color_matrix=bt709"


#: Encoder options that signal every rendition as what it is (H.264 VUI, ITU-T H.264 Annex E).
BT709_SIGNAL = ("-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv")


def jpeg_scale_options(plan: PicturePlan | None) -> str:
    """The options of a poster's or sprite tile's ``scale``: to full-range BT.601, what JPEG
    (JFIF 1.02, ITU-T T.871) means and every browser decodes, from what the split hands over."""
    if plan is None:
        return ""
    return f":in_range={plan.in_range}:out_range=pc:in_color_matrix={plan.in_matrix}:out_color_matrix=bt601"


def signal_options(stream: str) -> list[str]:
    """``BT709_SIGNAL`` for the output stream specifier ``stream`` (e.g. ``"v:0"``)."""
    return [f"{opt}:{stream}" if opt.startswith("-") else opt for opt in BT709_SIGNAL]
