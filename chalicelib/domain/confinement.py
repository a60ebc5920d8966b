"""Input confinement: what ffprobe/ffmpeg may open when they read an upload. Pure.

An upload is untrusted. Several FFmpeg demuxers open further resources named *inside* the
file: HLS and DASH playlists fetch their segments, ``concat`` scripts open any path or URL,
``image2`` expands file patterns, ``sdp``/``rtsp`` open network sessions, ``imf``/``mov`` drefs
follow references. An uploaded playlist was measured making the ingest probe GET an internal
URL within a second (docs/untrusted-input.md). Two FFmpeg options (per input, ``libavformat/options_table.h``)
close that door:

* ``-protocol_whitelist``: only what reading our own presigned URL needs (``https,tls,tcp``
  on AWS, ``http,tcp`` against the local emulator, ``file`` for a local path);
* ``-format_whitelist``: only real media container demuxers (``MEDIA_DEMUXERS``), checked
  right after format probing, before the demuxer reads its header, so a playlist never gets
  to open anything.

A refused input fails its job with ``UNSUPPORTED_FORMAT``; messages name the detected format
(a demuxer name, from FFmpeg's own list) and never a URL or path found inside the file.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

#: Demuxers (FFmpeg names) of self-contained media containers and raw video bitstreams. None
#: of them opens another resource: ``mov`` follows data references only with
#: ``-enable_drefs 1`` (off by default, and we never set it).
MEDIA_DEMUXERS = ("mov", "matroska", "avi", "mpegts", "mpeg", "flv", "asf", "mxf", "ogg", "dv", "m4v",
                  "mpegvideo", "h264", "hevc", "ivf", "obu", "yuv4mpegpipe", "nut")
#: Human names for demuxers people upload by mistake or on purpose (the rest: "a <name> file").
REFUSED_KINDS = {
    "hls": "an HLS playlist", "dash": "a DASH manifest", "concat": "an ffconcat script", "sdp": "an SDP session",
    "rtsp": "an RTSP session", "image2": "an image", "png_pipe": "a PNG image", "jpeg_pipe": "a JPEG image",
    "webp_pipe": "a WebP image", "gif": "a GIF image", "svg_pipe": "an SVG image", "tty": "a text file",
    "ffmetadata": "an FFmpeg metadata file", "imf": "an IMF composition", "lavfi": "a filter graph",
    "srt": "a subtitle file", "webvtt": "a subtitle file", "ass": "a subtitle file", "mp3": "an audio file",
    "aac": "an audio file", "flac": "an audio file",
}
#: What a human reads for the accepted containers.
ACCEPTED = ("MP4/MOV/3GP, Matroska/WebM, AVI, MPEG-TS, MPEG-PS, FLV, ASF/WMV, MXF, Ogg, DV, NUT, "
            "Y4M and raw H.264/HEVC/MPEG-4/AV1 video")

_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://|(file|data|subfile|concat|pipe|crypto|cache):)[^\s'\"]*")
_PATH = re.compile(r"(?<![\w.])(/[^\s'\":]+)+")
_WHITELIST_REFUSAL = ("not on whitelist", "Unable to find a suitable output format")
_DEMUXER_NAME = re.compile(r"^[a-z0-9_]+(,[a-z0-9_]+)*$")


def protocols_for(url: str) -> str:
    """The ``-protocol_whitelist`` value for reading ``url``: ``https,tls,tcp`` for an
    https URL, ``http,tcp`` for http, ``file`` for a local path. Raises ValueError for any
    other scheme (we only ever open our own presigned URLs and local files)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https":
        return "https,tls,tcp"
    if scheme == "http":
        return "http,tcp"
    if scheme in ("", "file"):
        return "file"
    raise ValueError(f"refusing to open a {scheme} input")


def input_options(url: str) -> list[str]:
    """The confining per-input options to put right before ``-i url`` (or before the URL for
    ffprobe): protocol and demuxer allow-lists."""
    return ["-protocol_whitelist", protocols_for(url), "-format_whitelist", ",".join(MEDIA_DEMUXERS)]


def detection_options(url: str) -> list[str]:
    """Options for a detection-only ffprobe run (with ``-v debug``): the same protocols, and a
    demuxer allow-list that matches nothing, so FFmpeg probes the format, logs its name and
    stops before any demuxer reads a header (nothing nested is opened)."""
    return ["-protocol_whitelist", protocols_for(url), "-format_whitelist", "none"]


def was_refused(stderr: str) -> bool:
    """True when FFmpeg's stderr says an input was refused by an allow-list."""
    return any(marker in stderr for marker in _WHITELIST_REFUSAL)


def detected_format(debug_log: str) -> str | None:
    """The demuxer name FFmpeg probed (``Format hls probed with size=2048 and score=100`` at
    log level debug), or None. Only well-formed demuxer names are returned."""
    match = re.search(r"Format (\S+) probed with size=", debug_log)
    if not match or not _DEMUXER_NAME.match(match.group(1)):
        return None
    return match.group(1)


def is_demuxer_name(name: str) -> bool:
    """True for a well-formed FFmpeg demuxer name list such as ``mov,mp4,m4a`` or ``hls``."""
    return bool(_DEMUXER_NAME.match(name))


def refusal_message(format_name: str | None) -> str:
    """The ``UNSUPPORTED_FORMAT`` message for an input whose demuxer is ``format_name``."""
    if not format_name:
        return f"the file is not in a video container vodpipe accepts ({ACCEPTED})"
    kind = next((REFUSED_KINDS[n] for n in format_name.split(",") if n in REFUSED_KINDS), f"a {format_name} file")
    return (f"the file is {kind} (detected format: {format_name}), not a self-contained video; "
            f"vodpipe accepts {ACCEPTED}")


def redact(text: str) -> str:
    """``text`` with URLs and absolute paths replaced by ``<url>``/``<path>``: tool output
    quoted in an error message must not echo locations (ours or ones inside the file)."""
    return _PATH.sub("<path>", _URL.sub("<url>", text))
