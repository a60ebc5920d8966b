"""The picture facts of a video stream through PyAV, in ffprobe's JSON shape, for
``chalicelib.tools.media_probe`` (the Lambda runtime has no ffprobe).

What PyAV 13 exposes directly (colour enums, the first frame's side data) is read directly;
what it does not (the codec parameters' field order, the stream's Dolby Vision configuration
record, mastering display and content light level boxes) is read from FFmpeg's own
description of the input (``av_dump_format``, ``Container.dumps_format``). ``idet`` runs on
the first ``IDET_FRAMES`` decoded frames; its verdict is read from its closing log line.
"""
from __future__ import annotations

import gc
import itertools
import logging
import re
import struct
from typing import Any, Callable, Iterable, Iterator

import av
import av.logging

#: Frames of the source ``idet`` reads (from the first): enough for ``picture.IDET_MIN_FRAMES``
#: decided frames after idet's own warm-up. It is on ingest's path to the first task: on the
#: bench's 1080p clip the probe took 0.085 s with one frame, 0.42 with 32, 0.20 with 16.
IDET_FRAMES = 16
#: No interlaced picture format is taller than 1080 lines (1088 coded): idet is not run above,
#: so a large picture never has more than one decoded frame alive in the probe (and the frames
#: are pushed into idet as they are decoded, never held).
IDET_MAX_HEIGHT = 1088
#: FFmpeg enum values -> names (libavutil/pixfmt.h, the names ``av_color_*_name`` gives).
PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020",
             10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "jedec-p22"}
TRANSFERS = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "linear", 11: "iec61966-2-4",
             13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428",
             18: "arib-std-b67"}
MATRICES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco", 9: "bt2020nc",
            10: "bt2020c", 14: "ictcp", 15: "ipt-c2"}
RANGES = {1: "tv", 2: "pc"}
#: ``av_dump_format``'s field-order words -> ffprobe's ``field_order``.
FIELD_WORDS = {"top first": "tt", "bottom first": "bb", "top coded first (swapped)": "tb",
               "bottom coded first (swapped)": "bt", "progressive": "progressive"}
#: Frame side data types (libavutil/frame.h ``AVFrameSideDataType``).
MASTERING_DISPLAY, CONTENT_LIGHT, HDR10_PLUS = 11, 14, 17
_DOVI = re.compile(r"DOVI configuration record: version: (\d+)\.(\d+), profile: (\d+), level: (\d+), "
                   r"rpu flag: (\d), el flag: (\d), bl flag: (\d), compatibility id: (\d+)")
_MASTERING = re.compile(r"Mastering Display Metadata.*?min_luminance=([\d.]+), max_luminance=([\d.]+)")
_LIGHT = re.compile(r"Content Light Level Metadata, MaxCLL=(\d+), MaxFALL=(\d+)")
_IDET = re.compile(r"(Single|Multi) frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+) "
                   r"Undetermined:\s*(\d+)")
#: Frame side data carrying a Dolby Vision RPU (``AV_FRAME_DATA_DOVI_RPU_BUFFER``, ``_METADATA``).
DOVI_RPU = (23, 24)
log = logging.getLogger("vodpipe.probe")


def colour_fields(ctx: Any) -> dict[str, Any]:
    """ffprobe's ``color_range``/``color_space``/``color_transfer``/``color_primaries`` of a
    video codec context (absent when unspecified, as ffprobe leaves them out)."""
    fields = {"color_range": RANGES.get(ctx.color_range), "color_space": MATRICES.get(ctx.colorspace),
              "color_transfer": TRANSFERS.get(ctx.color_trc), "color_primaries": PRIMARIES.get(ctx.color_primaries)}
    return {k: v for k, v in fields.items() if v}


def _stream_block(description: str, index: int) -> str:
    """The lines ``av_dump_format`` wrote about stream ``index`` (its header and side data)."""
    lines = description.splitlines()
    block, inside = [], False
    for line in lines:
        if re.match(r"\s*Stream #\d+:(\d+)", line):
            inside = int(re.match(r"\s*Stream #\d+:(\d+)", line).group(1)) == index
        if inside:
            block.append(line)
    return "\n".join(block)


#: ``av_dump_format``'s disposition words -> ffprobe's ``disposition`` keys (PyAV 13 exposes none).
DISPOSITIONS = {"default": "default", "dub": "dub", "original": "original", "comment": "comment",
                "visual impaired": "visual_impaired", "hearing impaired": "hearing_impaired",
                "descriptions": "descriptions", "captions": "captions", "forced": "forced"}


def disposition_fields(description: str, index: int) -> dict[str, int]:
    """ffprobe's ``disposition`` flags of stream ``index`` from ``av_dump_format``'s header line
    of it (``... (default) (visual impaired)``): 1 for each word present."""
    block = _stream_block(description, index)
    header = block.splitlines()[0] if block else ""
    return {key: 1 for word, key in DISPOSITIONS.items() if f"({word})" in header}


def described_fields(description: str, index: int) -> dict[str, Any]:
    """From ``av_dump_format``'s text of stream ``index``: ``field_order`` and the stream side
    data ffprobe lists (``DOVI configuration record``, ``Mastering display metadata``,
    ``Content light level metadata``) in ffprobe's key names."""
    block = _stream_block(description, index)
    out: dict[str, Any] = {}
    header = block.splitlines()[0] if block else ""
    for words, order in FIELD_WORDS.items():
        if re.search(rf"[(,] ?{re.escape(words)}[,)]", header):
            out["field_order"] = order
            break
    sides: list[dict[str, Any]] = []
    if m := _DOVI.search(block):
        major, minor, profile, level, rpu, el, bl, compat = map(int, m.groups())
        sides.append({"side_data_type": "DOVI configuration record", "dv_version_major": major,
                      "dv_version_minor": minor, "dv_profile": profile, "dv_level": level, "rpu_present_flag": rpu,
                      "el_present_flag": el, "bl_present_flag": bl, "dv_bl_signal_compatibility_id": compat})
    if m := _MASTERING.search(block):
        sides.append({"side_data_type": "Mastering display metadata", "min_luminance": m.group(1),
                      "max_luminance": m.group(2)})
    if m := _LIGHT.search(block):
        sides.append({"side_data_type": "Content light level metadata", "max_content": int(m.group(1)),
                      "max_average": int(m.group(2))})
    if sides:
        out["side_data_list"] = sides
    return out


def describe(container: Any) -> str:
    """FFmpeg's description of an open input (``av_dump_format``; PyAV returns it only while
    its log level is INFO or more verbose), or "" when it cannot be had. Never raises."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.INFO)
    try:
        with av.logging.Capture():
            return _safely("the stream description", lambda: {"text": container.dumps_format() or ""}).get("text", "")
    finally:
        av.logging.set_level(previous)


def matrix_text(raw: bytes) -> str:
    """A DISPLAYMATRIX side data payload (nine int32) as ffprobe prints ``displaymatrix``."""
    values = struct.unpack("<9i", raw[:36])
    return "\n" + "".join(f"{row:08x}: {values[3 * row]:12d}{values[3 * row + 1]:12d}{values[3 * row + 2]:12d}\n"
                          for row in range(3))


def frame_fields(frame: Any) -> dict[str, Any]:
    """What the first decoded frame adds: the display matrix (``Display Matrix`` side data with
    ``displaymatrix`` and ``rotation``), mastering display (SMPTE ST 2086) and content light
    level (CTA-861.3) carried in the bitstream (HEVC SEI), ``hdr10_plus`` (SMPTE ST 2094-40
    dynamic metadata) and ``dovi_rpu`` (a Dolby Vision RPU, with or without a configuration
    record in the container)."""
    sides, hdr10_plus, dovi_rpu = [], False, False
    for side in getattr(frame, "side_data", None) or []:
        kind, raw = _kind(side), bytes(side)
        if kind == 6 and len(raw) >= 36:
            sides.append({"side_data_type": "Display Matrix", "displaymatrix": matrix_text(raw)})
        elif kind == MASTERING_DISPLAY and len(raw) >= 88:
            rationals = struct.unpack("<20i", raw[:80])
            has_luminance = struct.unpack("<2i", raw[80:88])[1]
            if has_luminance and rationals[17] and rationals[19]:
                sides.append({"side_data_type": "Mastering display metadata",
                              "min_luminance": f"{rationals[16]}/{rationals[17]}",
                              "max_luminance": f"{rationals[18]}/{rationals[19]}"})
        elif kind == CONTENT_LIGHT and len(raw) >= 8:
            max_cll, max_fall = struct.unpack("<2I", raw[:8])
            sides.append({"side_data_type": "Content light level metadata", "max_content": max_cll,
                          "max_average": max_fall})
        elif kind == HDR10_PLUS:
            hdr10_plus = True
        elif kind in DOVI_RPU:
            dovi_rpu = True
    return {"side_data_list": sides, "hdr10_plus": hdr10_plus, "dovi_rpu": dovi_rpu}


def _kind(side: Any) -> int | None:
    kind = getattr(side, "type", None)
    try:
        return int(getattr(kind, "value", kind))
    except (TypeError, ValueError):
        return None


def idet_counts(stream: Any, frames: Iterable[Any]) -> dict[str, int] | None:
    """FFmpeg ``idet``'s verdicts over ``frames`` (decoded frames of ``stream``, pushed one at a
    time as the iterable yields them): the multi-frame counts ``{"tff", "bff", "progressive",
    "undetermined"}`` (a frame's type once three in a row agree: real interlacing) and the
    single-frame ones as ``single_tff``, ``single_bff``, ``single_progressive`` (each frame on
    its own: a film cadence, 2 combed frames in 5, shows here only). None when it could not
    run (a graph FFmpeg refused, or no frame)."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.INFO)
    try:
        with av.logging.Capture() as logs:
            try:
                _run_idet(stream, frames)
            except (av.error.FFmpegError, ValueError):
                return None
            gc.collect()  # the graph's uninit writes the verdict
    finally:
        av.logging.set_level(previous)
    counts: dict[str, int] = {}
    for _level, _name, message in logs:
        for m in _IDET.finditer(message):
            prefix = "" if m.group(1) == "Multi" else "single_"
            tff, bff, progressive, undetermined = map(int, m.groups()[1:])
            counts.update({f"{prefix}tff": tff, f"{prefix}bff": bff, f"{prefix}progressive": progressive,
                           f"{prefix}undetermined": undetermined})
    return counts if "tff" in counts else None


def depth_fields(ctx: Any) -> dict[str, Any]:
    """ffprobe's ``bits_per_raw_sample`` of a video codec context, from its pixel format's
    first component (``nv12`` is 8 bits, ``p010le`` 10, ``rgb48le`` 16)."""
    try:
        return {"bits_per_raw_sample": str(av.VideoFormat(ctx.pix_fmt).components[0].bits)}
    except (TypeError, ValueError, AttributeError, IndexError):
        return {}


def _safely(what: str, read: Callable[[], dict]) -> dict:
    """``read()``, or {} when it raises: a picture fact the probe cannot read is left out (and
    logged), never a reason to fail a good upload."""
    try:
        return read()
    except Exception:  # noqa: BLE001 - any surprise in FFmpeg's text or side data
        log.exception("the probe could not read %s", what)
        return {}


def stream_fields(stream: Any, description: str) -> dict[str, Any]:
    """The picture fields of any video stream: colour, bit depth, and what FFmpeg's own
    description says (field order, Dolby Vision record, HDR metadata boxes)."""
    out = _safely("the colour tags", lambda: colour_fields(stream.codec_context))
    out.update(_safely("the bit depth", lambda: depth_fields(stream.codec_context)))
    out.update(_safely("the stream description", lambda: described_fields(description, stream.index)))
    return out


def first_frame_fields(stream: Any, frame: Any, decoder: Iterator[Any], entry: dict[str, Any],
                       rotation: float) -> None:
    """Add to ``entry`` (the first video stream's ffprobe-shaped dict) what its first decoded
    ``frame`` says (display matrix with ``rotation``, bitstream HDR metadata, ``hdr10_plus``,
    ``dovi_rpu``) and ``idet``'s counts over up to ``IDET_FRAMES`` frames (``frame`` then
    ``decoder``'s next ones, each dropped once pushed; not run above ``IDET_MAX_HEIGHT``
    lines). Never raises."""
    seen = _safely("the first frame's side data", lambda: frame_fields(frame))
    for side in seen.get("side_data_list", []):
        if side["side_data_type"] == "Display Matrix":
            side["rotation"] = rotation
    kinds = {side["side_data_type"] for side in entry.get("side_data_list", [])}
    entry["side_data_list"] = [*entry.get("side_data_list", []),
                               *(side for side in seen.get("side_data_list", []) if side["side_data_type"] not in kinds)]
    entry.update({k: seen[k] for k in ("hdr10_plus", "dovi_rpu") if k in seen})
    if frame.height <= IDET_MAX_HEIGHT:
        frames = itertools.islice(itertools.chain([frame], _decoded(decoder)), IDET_FRAMES)
        entry["idet"] = _safely("idet", lambda: {"counts": idet_counts(stream, frames)}).get("counts")


def _decoded(decoder: Iterator[Any]) -> Iterator[Any]:
    """``decoder``'s frames until the stream ends or a frame fails to decode (the sample is for
    ``idet``, not a decode check)."""
    try:
        yield from decoder
    except (av.error.FFmpegError, ValueError):
        return


def _run_idet(stream: Any, frames: Iterable[Any]) -> None:
    graph = av.filter.Graph()
    source, detector, sink = graph.add_buffer(template=stream), graph.add("idet"), graph.add("buffersink")
    source.link_to(detector)
    detector.link_to(sink)
    graph.configure()
    for frame in frames:
        graph.push(frame)
        for _ in _drain(graph):
            pass
    graph.push(None)
    for _ in _drain(graph):
        pass


def _drain(graph: Any) -> Iterator[Any]:
    while True:
        try:
            yield graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return
