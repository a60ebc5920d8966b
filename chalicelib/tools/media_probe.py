"""Probing an upload where there is no ffprobe: the Lambda Python runtime.

The ingest function runs on the Lambda Python runtime, which has no ffmpeg or ffprobe (and the
local cloud's function processes have none on PATH either). PyAV ships FFmpeg's libraries inside
its manylinux wheel, so the deployment package carries what the probe needs: this module opens
the upload with them, confined exactly like every FFmpeg input (``chalicelib.domain.confinement``:
protocol and demuxer allow-lists), and returns what ``ffprobe -show_format -show_streams``
would, so ``chalicelib.domain.media.parse_probe`` reads both. The first video frame is decoded
in the same open (the corrupt-bitstream check, and the display-matrix rotation FFmpeg reports
on decoded frames).

Errors: ``PermanentError`` ``UNSUPPORTED_FORMAT`` (a refused container, named by the demuxer
FFmpeg detected, never by anything inside the file), ``UNREADABLE_MEDIA``; ``SourceUnreachable``
for HTTP errors, timeouts and network failures (the caller asks S3 what happened).
"""
from __future__ import annotations

import math
import struct
from fractions import Fraction
from typing import Any

import av
import av.logging

from chalicelib.domain import confinement, media
from chalicelib.domain.errors import PermanentError, SourceUnreachable

from . import picture_probe

_last: dict[str, bool] = {}
#: Decoder name -> codec name, for PyAV releases without ``Codec.canonical_name`` (< 14).
DECODER_CODECS = {"libdav1d": "av1", "libaom-av1": "av1", "libvpx": "vp8", "libvpx-vp9": "vp9",
                  "libopenjpeg": "jpeg2000"}


def _codec_name(ctx: Any) -> str | None:
    if ctx is None:
        return None
    return getattr(ctx.codec, "canonical_name", None) or DECODER_CODECS.get(ctx.name, ctx.name)


def _ratio(value: Any) -> str:
    if not value:
        return "0/0"
    fraction = Fraction(value)
    return f"{fraction.numerator}/{fraction.denominator}"


def _attached_picture(stream: Any) -> int:
    """1 for cover art (AV_DISPOSITION_ATTACHED_PIC, 0x400); PyAV < 14 does not expose the
    disposition, so there a one-frame video stream beside audio counts as one."""
    try:
        return int(bool(int(stream.disposition) & 0x400))
    except AttributeError:
        return int(stream.type == "video" and stream.frames == 1 and len(stream.container.streams.audio) > 0)


def _display_rotation(frame: Any) -> float:
    """The frame's display-matrix rotation in degrees, signed as ffprobe prints it:
    ``frame.rotation`` on PyAV >= 14, else computed from the DISPLAYMATRIX side data the way
    FFmpeg's ``av_display_rotation_get`` does (nine little-endian int32, 16.16 fixed point)."""
    if hasattr(frame, "rotation"):
        return float(frame.rotation or 0)
    for side in getattr(frame, "side_data", None) or []:
        if str(getattr(side, "type", "")).endswith("DISPLAYMATRIX") and len(bytes(side)) >= 36:
            m = [v / 65536 for v in struct.unpack("<9i", bytes(side)[:36])]
            scale0, scale1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
            if scale0 and scale1:
                return -math.degrees(math.atan2(m[1] / scale1, m[0] / scale0))
    return 0.0


def _seconds(value: Any, time_base: Any) -> str | None:
    return None if value is None or time_base is None else f"{float(value * time_base):.6f}"


def _open(url: str, timeout: float, whitelist: str, max_pixels: int | None = None) -> Any:
    options = {"protocol_whitelist": confinement.protocols_for(url), "format_whitelist": whitelist,
               "rw_timeout": str(int(timeout * 1_000_000))}
    if max_pixels:  # also the decoders' option while FFmpeg looks for the streams' parameters
        options["max_pixels"] = str(media.decoder_max_pixels(max_pixels))
    return av.open(url, options=options, timeout=timeout)


def _check_headers(container: Any, max_pixels: int, logs: list[tuple[int, str, str]]) -> None:
    """Every video stream's picture size from its parameters (what the headers and FFmpeg's
    stream analysis said; nothing decoded by us yet) against ``max_pixels``; a size FFmpeg
    itself refused to allocate (``logs`` of the open) counts too. Raises ``PermanentError``
    ``TOO_MANY_PIXELS``."""
    for stream in container.streams.video:
        ctx = stream.codec_context
        if ctx.width and ctx.height:
            media.check_picture_size(ctx.width, ctx.height, max_pixels,
                                     (getattr(ctx, "coded_width", 0) or 0, getattr(ctx, "coded_height", 0) or 0))
    refused = media.refused_picture_size(message for _, _, message in logs)
    if refused:
        media.check_picture_size(*refused, max_pixels, where="the video stream")


def _refusal(logs: list[tuple[int, str, str]]) -> str | None:
    """The demuxer FFmpeg detected, from the context name of its allow-list refusal line."""
    for _level, name, message in logs:
        if "not on whitelist" in message:
            return name if name and confinement.is_demuxer_name(name) else None
    return None


def probe(url: str, timeout: float = 60.0, max_pixels: int | None = None) -> dict:
    """``ffprobe -show_format -show_streams``-shaped description of ``url`` (a presigned URL
    or a local path). Remembers whether the first video frame decoded, for
    ``first_video_frame_decodes``. Raises as the module docstring says.

    ``max_pixels`` (pixels a frame; None: unchecked): every video stream's picture size is
    checked from its parameters right after the open, before the first frame is decoded, and
    FFmpeg's decoders get ``media.decoder_max_pixels`` as their own cap, so a frame bigger than
    its header said is refused before it is allocated: ``PermanentError`` ``TOO_MANY_PIXELS``
    either way. Measured: a 1 MB grey MJPEG of 16000x16000 (``tests/hostile.huge_still``) took
    the probe to 282 MB when it was decoded first and refused after; 38 MB now."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture() as logs:
            try:
                container = _open(url, timeout, ",".join(confinement.MEDIA_DEMUXERS), max_pixels)
            except (av.error.HTTPError, av.error.HTTPClientError, av.error.TimeoutError, ConnectionError) as e:
                raise SourceUnreachable(f"the source could not be read ({type(e).__name__})") from e
            except av.error.FFmpegError as e:
                refused = any("not on whitelist" in message for _, _, message in logs)
                if refused:
                    raise PermanentError("UNSUPPORTED_FORMAT", confinement.refusal_message(_refusal(logs))) from e
                said = [message.strip() for _, _, message in logs if message.strip()][-3:]
                detail = " | ".join(said) or getattr(e, "strerror", "") or type(e).__name__
                raise PermanentError("UNREADABLE_MEDIA",
                                     f"not a readable video file ({confinement.redact(detail)})") from e
    finally:
        av.logging.set_level(previous)
    with container:
        streams, rotation, decoded = [], 0.0, False
        description = picture_probe.describe(container)
        videos = [s for s in container.streams.video]
        if max_pixels:
            _check_headers(container, max_pixels, logs)
        if videos:
            if max_pixels:
                videos[0].codec_context.options = {"max_pixels": str(media.decoder_max_pixels(max_pixels))}
            av.logging.set_level(av.logging.WARNING)
            try:
                with av.logging.Capture() as decode_logs:
                    try:
                        decoder = container.decode(videos[0])
                        frame = next(decoder)
                        decoded, rotation = True, _display_rotation(frame)
                    except (av.error.FFmpegError, StopIteration, ValueError):
                        decoded = False
            finally:
                av.logging.set_level(previous)
            if max_pixels:  # a frame the header did not announce: refused by the decoder's cap
                refused = media.refused_picture_size(message for _, _, message in decode_logs)
                if refused:
                    media.check_picture_size(*refused, max_pixels, where="a frame of the video")
                if decoded:
                    media.check_picture_size(frame.width, frame.height, max_pixels, where="a frame of the video")
        for stream in container.streams:
            ctx = stream.codec_context
            entry: dict[str, Any] = {"index": stream.index, "codec_type": stream.type,
                                     "codec_name": _codec_name(ctx),
                                     "tags": dict(stream.metadata or {}),
                                     "duration": _seconds(stream.duration, stream.time_base),
                                     "disposition": {"attached_pic": _attached_picture(stream)}}
            if stream.type == "video":
                sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
                entry.update(width=ctx.width, height=ctx.height, pix_fmt=ctx.pix_fmt,
                             sample_aspect_ratio=_ratio(sar) if sar else "1:1",
                             avg_frame_rate=_ratio(stream.average_rate), r_frame_rate=_ratio(stream.base_rate),
                             nb_frames=str(stream.frames) if stream.frames else None)
                entry.update(picture_probe.stream_fields(stream, description))
                if stream is videos[0] and decoded:
                    # the first frame's side data and idet's verdict on the first frames
                    picture_probe.first_frame_fields(stream, frame, decoder, entry, rotation)
                    if frame.time is not None:  # where the first decodable frame is on the source's timeline
                        origin = container.start_time / 1e6 if container.start_time is not None else 0.0
                        entry["first_frame_time"] = round(max(0.0, frame.time - origin), 6)
                if stream is videos[0] and rotation and not any(
                        side.get("side_data_type") == "Display Matrix" for side in entry.get("side_data_list", [])):
                    # the decoded frame's display-matrix rotation, as ffprobe reports it
                    entry.setdefault("side_data_list", []).append({"side_data_type": "Display Matrix", "rotation": rotation})
            elif stream.type == "subtitle":
                entry["disposition"].update(picture_probe.disposition_fields(description, stream.index))
            elif stream.type == "audio":
                entry["disposition"].update(picture_probe.disposition_fields(description, stream.index))
                entry.update(channels=ctx.channels if hasattr(ctx, "channels") else ctx.layout.nb_channels,
                             sample_rate=str(ctx.sample_rate))
            streams.append(entry)
        fmt = {"format_name": container.format.name,
               "duration": f"{container.duration / 1_000_000:.6f}" if container.duration else None,
               "bit_rate": str(container.bit_rate) if container.bit_rate else None,
               "size": str(container.size) if getattr(container, "size", None) else None}
    _last.clear()
    _last[url] = decoded
    return {"format": fmt, "streams": streams}


def first_video_frame_decodes(url: str, timeout: float = 60.0) -> bool:
    """True when the first video frame of ``url`` decodes (from the last ``probe`` of the
    same URL, else by probing it now)."""
    if url not in _last:
        probe(url, timeout)
    return _last.get(url, False)
