"""HLS playlists: measuring a finished rendition and writing the multivariant (master) playlist.

Rules: RFC 8216 §4.3.4.2 (EXT-X-STREAM-INF: BANDWIDTH is the peak segment bit rate of the
variant *including* its audio rendition, AVERAGE-BANDWIDTH the average), §4.3.4.1
(EXT-X-MEDIA audio group), RFC 6381 §3.3 (``avc1.PPCCLL`` codec strings from the SPS),
Apple HLS authoring spec §9 (CODECS, RESOLUTION, FRAME-RATE on every variant).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import m3u8

from .captions import TRANSCRIBES

AUDIO_GROUP = "audio"
SUBTITLES_GROUP = "subtitles"

#: AAC profile names as ffprobe prints them -> RFC 6381 object type (mp4a.40.<aot>).
AAC_OBJECT_TYPES = {"LC": 2, "HE-AAC": 5, "HE-AACv2": 29, "Main": 1, "LTP": 4}
#: H.264 profile names as ffprobe prints them -> (profile_idc, constraint flags byte).
H264_PROFILES = {"Constrained Baseline": (66, 0xE0), "Baseline": (66, 0x80), "Main": (77, 0x40),
                 "Extended": (88, 0), "High": (100, 0), "High 10": (110, 0), "High 4:2:2": (122, 0)}


@dataclass(frozen=True)
class SegmentStats:
    """Measured from a finished media playlist and its segment files.

    ``peak_bandwidth``/``average_bandwidth`` bits/s; ``duration``/``max_segment_duration``
    seconds; ``segments`` count; ``total_bytes`` bytes.
    """

    peak_bandwidth: int
    average_bandwidth: int
    duration: float
    max_segment_duration: float
    segments: int
    total_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


def measure_segments(playlist_text: str, segment_sizes: Mapping[str, int]) -> SegmentStats:
    """Bitrate statistics of a media playlist whose segment URIs map to sizes in bytes.

    Raises ValueError when the playlist has no segments, a segment has no size, or a duration
    is not positive.
    """
    pl = m3u8.loads(playlist_text)
    if not pl.segments:
        raise ValueError("media playlist has no segments")
    total_bits = 0
    total_duration = 0.0
    peak = 0.0
    for seg in pl.segments:
        if seg.uri not in segment_sizes:
            raise ValueError(f"no size for segment {seg.uri}")
        if not seg.duration or seg.duration <= 0:
            raise ValueError(f"segment {seg.uri} has duration {seg.duration}")
        bits = segment_sizes[seg.uri] * 8
        total_bits += bits
        total_duration += seg.duration
        # A very short final segment gives a meaningless rate; measure it over >= 1 s.
        peak = max(peak, bits / max(seg.duration, min(1.0, total_duration)))
    return SegmentStats(peak_bandwidth=int(round(peak)), average_bandwidth=int(round(total_bits / total_duration)),
                        duration=round(total_duration, 3),
                        max_segment_duration=round(max(s.duration for s in pl.segments), 3),
                        segments=len(pl.segments), total_bytes=total_bits // 8)


def h264_codec_string(data: bytes) -> str | None:
    """RFC 6381 ``avc1.PPCCLL`` from the first H.264 SPS NAL unit found in ``data`` (Annex B
    byte stream, e.g. an MPEG-TS segment's first packets). ``None`` when no SPS is found."""
    i = data.find(b"\x00\x00\x01")
    while 0 <= i < len(data) - 6:
        header = data[i + 3]
        if header & 0x1F == 7 and not header & 0x80:
            profile, constraints, level = data[i + 4], data[i + 5], data[i + 6]
            return f"avc1.{profile:02x}{constraints:02x}{level:02x}"
        i = data.find(b"\x00\x00\x01", i + 3)
    return None


def h264_codec_string_from_probe(profile: str | None, level: int | None) -> str:
    """Fallback ``avc1.PPCCLL`` from ffprobe's profile name and level (e.g. High, 31)."""
    idc, flags = H264_PROFILES.get(profile or "High", (100, 0))
    return f"avc1.{idc:02x}{flags:02x}{int(level or 40):02x}"


def aac_codec_string(profile: str | None) -> str:
    """RFC 6381 ``mp4a.40.<object type>`` for an AAC profile name (default LC: mp4a.40.2)."""
    return f"mp4a.40.{AAC_OBJECT_TYPES.get(profile or 'LC', 2)}"


def extinf_from_timing(starts: Sequence[float], last_end: float) -> list[float]:
    """EXTINF durations (seconds) of consecutive segments from the media's own timestamps:
    segment i lasts from its first presentation time ``starts[i]`` to the next segment's,
    the last one to ``last_end`` (the end of its last frame). RFC 8216 §4.3.2.1 makes EXTINF
    the segment's duration; players lay segments end to end by it, so it must match the
    packets (docs/hls-output.md). Raises ValueError when ``starts`` is empty or not increasing, or
    ``last_end`` is not after the last start."""
    if not starts:
        raise ValueError("no segments")
    edges = [*starts, last_end]
    durations = [round(b - a, 6) for a, b in zip(edges, edges[1:])]
    if any(d <= 0 for d in durations):
        raise ValueError(f"segment start times must increase: {list(starts)} then end {last_end}")
    return durations


def measured_frame_rate(frames: Sequence[int], durations: Sequence[float]) -> float:
    """The variant's FRAME-RATE (frames/s, 3 decimals): the highest frame rate of any of its
    segments, frames over EXTINF seconds. RFC 8216 §4.3.4.2 asks for the maximum frame rate
    of the video; a container's nominal rate can be far off (a phone capture says 120 for
    ~30 frames/s). Raises ValueError for no segments or a non-positive duration."""
    if not frames or len(frames) != len(durations) or any(d <= 0 for d in durations):
        raise ValueError("need one positive duration per segment")
    return round(max(n / d for n, d in zip(frames, durations)), 3)


def media_playlist(segments: Sequence[tuple[str, float]], playlist_type: str = "VOD", ended: bool = True,
                   target: int | None = None) -> str:
    """A media playlist for (uri, duration seconds) segments, in order (RFC 8216 §4.3.3).

    ``playlist_type`` ``VOD`` or ``EVENT`` (§4.3.3.5: an EVENT playlist may only grow by
    appended lines, ``ended`` appends EXT-X-ENDLIST, §4.3.3.4). TARGETDURATION is ``target``
    or the longest EXTINF rounded to the nearest integer (§4.3.3.1), never less. Raises
    ValueError without segments or for another type."""
    if not segments:
        raise ValueError("a media playlist needs at least one segment")
    if playlist_type not in ("VOD", "EVENT"):
        raise ValueError(f"unknown playlist type {playlist_type!r}")
    target = max(target or 1, max(int(round(d)) for _, d in segments))
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0",
             f"#EXT-X-PLAYLIST-TYPE:{playlist_type}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for uri, d in segments:
        lines += [f"#EXTINF:{d:.6f},", uri]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _attr_list(attrs: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{k}={v}" for k, v in attrs)


def master_playlist(videos: Sequence[Mapping], audio: Mapping | Sequence[Mapping] | None,
                    subtitles: Sequence[Mapping] = ()) -> str:
    """The multivariant playlist text.

    ``videos``: one mapping per video rendition with ``name``, ``width``, ``height``,
    ``frame_rate`` (frames/s), ``codecs`` (e.g. ``avc1.64001f``), ``peak_bandwidth`` and
    ``average_bandwidth`` (bits/s) and ``uri`` (relative). ``audio``: the audio renditions (a
    list, or one mapping, or None), each with ``name``, ``codecs``, ``channels``,
    ``peak_bandwidth``, ``average_bandwidth``, ``uri`` and optionally ``label`` (``NAME``),
    ``language`` (RFC 5646; ``und`` when absent), ``default``, ``describes_video``: one
    ``EXT-X-MEDIA`` TYPE=AUDIO each, in one group (RFC 8216 §4.3.4.1: ``DEFAULT=YES`` on one,
    ``AUTOSELECT=YES``, ``CHARACTERISTICS`` for described video). Every variant names the group
    and its ``BANDWIDTH`` counts the largest audio rendition (§4.3.4.2). ``subtitles``: the
    WebVTT renditions, each with ``name``, ``label``, ``language``, ``uri`` and optionally
    ``default``, ``forced``, ``hearing_impaired``: one ``EXT-X-MEDIA`` TYPE=SUBTITLES each, in
    one group the variants name (``SUBTITLES``; ``FORCED``, ``CHARACTERISTICS`` for captions,
    ``captions.TRANSCRIBES``). ``CLOSED-CAPTIONS=NONE`` on every variant: the renditions carry
    no CEA-608/708 (docs/text.md). Variants are listed highest bandwidth first.

    Raises ValueError when ``videos`` is empty.
    """
    if not videos:
        raise ValueError("a master playlist needs at least one video rendition")
    audios = [] if audio is None else ([audio] if isinstance(audio, Mapping) else list(audio))
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for index, track in enumerate(audios):
        default = bool(track.get("default", index == 0))
        attrs = [("TYPE", "AUDIO"), ("GROUP-ID", f'"{AUDIO_GROUP}"'), ("NAME", f'"{_quoted(track.get("label") or "default")}"'),
                 ("LANGUAGE", f'"{track.get("language") or "und"}"'), ("DEFAULT", "YES" if default else "NO"),
                 ("AUTOSELECT", "YES")]
        if track.get("describes_video"):
            attrs.append(("CHARACTERISTICS", '"public.accessibility.describes-video"'))
        attrs += [("CHANNELS", f'"{int(track["channels"])}"'), ("URI", f'"{track["uri"]}"')]
        lines.append("#EXT-X-MEDIA:" + _attr_list(attrs))
    for track in subtitles:
        attrs = [("TYPE", "SUBTITLES"), ("GROUP-ID", f'"{SUBTITLES_GROUP}"'), ("NAME", f'"{_quoted(track["label"])}"'),
                 ("LANGUAGE", f'"{track.get("language") or "und"}"'), ("DEFAULT", "YES" if track.get("default") else "NO"),
                 ("AUTOSELECT", "YES"), ("FORCED", "YES" if track.get("forced") else "NO")]
        if track.get("hearing_impaired"):
            attrs.append(("CHARACTERISTICS", f'"{TRANSCRIBES}"'))
        attrs.append(("URI", f'"{track["uri"]}"'))
        lines.append("#EXT-X-MEDIA:" + _attr_list(attrs))
    a_peak = max((int(a["peak_bandwidth"]) for a in audios), default=0)
    a_avg = max((int(a["average_bandwidth"]) for a in audios), default=0)
    a_codecs = list(dict.fromkeys(str(a["codecs"]) for a in audios))
    for v in sorted(videos, key=lambda v: int(v["peak_bandwidth"]), reverse=True):
        codecs = ",".join([v["codecs"], *a_codecs])
        attrs = [("BANDWIDTH", str(int(v["peak_bandwidth"]) + a_peak)),
                 ("AVERAGE-BANDWIDTH", str(int(v["average_bandwidth"]) + a_avg)),
                 ("RESOLUTION", f'{int(v["width"])}x{int(v["height"])}'),
                 ("FRAME-RATE", f'{float(v["frame_rate"]):.3f}'),
                 ("CODECS", f'"{codecs}"')]
        if audios:
            attrs.append(("AUDIO", f'"{AUDIO_GROUP}"'))
        if subtitles:
            attrs.append(("SUBTITLES", f'"{SUBTITLES_GROUP}"'))
        attrs.append(("CLOSED-CAPTIONS", "NONE"))
        lines.append("#EXT-X-STREAM-INF:" + _attr_list(attrs))
        lines.append(str(v["uri"]))
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    """``text`` fit for a quoted-string attribute (RFC 8216 §4.2: no double quote, CR or LF)."""
    return "".join(" " if ch in '"\r\n' else ch for ch in str(text))
