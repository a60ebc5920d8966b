"""Presentation timestamps of the video in an MPEG-TS segment, read from the bytes themselves.

Why our own reader: the HLS muxer's EXTINF is an estimate (frame count over a nominal frame
rate) that is wrong on variable-frame-rate and mislabelled sources (docs/hls-output.md: 0.44 s
announced for 1.77 s of a phone capture), and ffprobe on a playlist believes EXTINF. The
segment's packets carry the truth: each video PES header has the access unit's PTS.

Format rules: ISO/IEC 13818-1 §2.4.3 (transport packet: 188 bytes, sync byte 0x47, PID,
payload_unit_start_indicator, adaptation_field_control), §2.4.4 (PAT/PMT sections), §2.4.3.7
(PES header: PTS_DTS_flags, 33-bit PTS in units of 1/90000 s). Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

PACKET_SIZE = 188
SYNC_BYTE = 0x47
CLOCK_HZ = 90_000
#: PMT stream_type values that carry video (ISO/IEC 13818-1 Table 2-34, H.222 amendments):
#: MPEG-1/2 video, MPEG-4 part 2, H.264, HEVC.
VIDEO_STREAM_TYPES = {0x01, 0x02, 0x10, 0x1B, 0x24}
#: ... and AAC in ADTS (ISO/IEC 13818-7), the only audio we write.
ADTS_STREAM_TYPE = 0x0F
#: ISO/IEC 14496-3 Table 1.18 sampling_frequency_index -> Hz.
ADTS_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
AAC_FRAME_SAMPLES = 1024


class NotTransportStream(ValueError):
    """The bytes are not an MPEG transport stream with a video elementary stream."""


def _payload(packet: bytes) -> bytes:
    control = (packet[3] >> 4) & 0x3
    if control in (0, 2):  # reserved / adaptation field only
        return b""
    offset = 4
    if control == 3:
        offset += 1 + packet[4]
    return packet[offset:PACKET_SIZE]


def _section(payload: bytes) -> bytes:
    """The PSI section of a packet that starts one (pointer_field skipped)."""
    return payload[1 + payload[0]:] if payload else b""


def _pmt_pids(pat: bytes) -> list[int]:
    length = ((pat[1] & 0x0F) << 8) | pat[2]
    body = pat[8:3 + length - 4]  # after the fixed header, before CRC_32
    pids = []
    for i in range(0, len(body) - 3, 4):
        program = (body[i] << 8) | body[i + 1]
        if program != 0:  # program 0 is the network PID
            pids.append(((body[i + 2] & 0x1F) << 8) | body[i + 3])
    return pids


def _stream_pid(pmt: bytes, types: set[int]) -> int | None:
    length = ((pmt[1] & 0x0F) << 8) | pmt[2]
    info_length = ((pmt[10] & 0x0F) << 8) | pmt[11]
    i, end = 12 + info_length, 3 + length - 4
    while i + 5 <= end:
        stream_type, pid = pmt[i], ((pmt[i + 1] & 0x1F) << 8) | pmt[i + 2]
        if stream_type in types:
            return pid
        i += 5 + (((pmt[i + 3] & 0x0F) << 8) | pmt[i + 4])
    return None


def _pes_pts(payload: bytes) -> int | None:
    if len(payload) < 14 or payload[:3] != b"\x00\x00\x01" or not payload[7] & 0x80:
        return None
    p = payload[9:14]
    return (((p[0] >> 1) & 0x07) << 30) | (p[1] << 22) | ((p[2] >> 1) << 15) | (p[3] << 7) | (p[4] >> 1)


def _pes_units(data: bytes, types: set[int]) -> list[tuple[int | None, bytes]]:
    """(PTS in ticks or None, PES packet bytes) of every PES of the first stream whose type is
    in ``types``. Raises ``NotTransportStream``."""
    if len(data) < PACKET_SIZE or data[0] != SYNC_BYTE:
        raise NotTransportStream("not an MPEG transport stream (no sync byte)")
    pmt_pids: list[int] = []
    pid_of_stream: int | None = None
    units: list[tuple[int | None, bytearray]] = []
    for offset in range(0, len(data) - PACKET_SIZE + 1, PACKET_SIZE):
        packet = data[offset:offset + PACKET_SIZE]
        if packet[0] != SYNC_BYTE:
            raise NotTransportStream(f"lost packet sync at byte {offset}")
        starts = bool(packet[1] & 0x40)
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        if pid == 0 and starts and not pmt_pids:
            pmt_pids = _pmt_pids(_section(_payload(packet)))
        elif pid in pmt_pids and starts and pid_of_stream is None:
            pid_of_stream = _stream_pid(_section(_payload(packet)), types)
        elif pid_of_stream is not None and pid == pid_of_stream:
            payload = _payload(packet)
            if starts:
                units.append((_pes_pts(payload), bytearray(payload)))
            elif units:
                units[-1][1].extend(payload)
    if pid_of_stream is None:
        raise NotTransportStream("no such stream in the transport stream's PMT")
    return [(pts, bytes(body)) for pts, body in units]


def video_pts(data: bytes) -> list[float]:
    """Presentation times (seconds, in stream order) of every video access unit in ``data``,
    a whole MPEG-TS file (e.g. one HLS segment). The first video stream of the first program
    is read; PTS wrap-around (2^33 ticks, 26.5 h) is not expected within one segment.

    Raises ``NotTransportStream`` when ``data`` is not 188-byte packets starting with 0x47 or
    has no video stream in its PMT."""
    return [pts / CLOCK_HZ for pts, _ in _pes_units(data, VIDEO_STREAM_TYPES) if pts is not None]


def _adts_frames(pes: bytes) -> tuple[int, int]:
    """(AAC frames, sample rate Hz) in one PES packet's ADTS payload (ISO/IEC 13818-7 §6.2:
    syncword 0xFFF, sampling_frequency_index, 13-bit frame_length)."""
    i = 9 + pes[8] if len(pes) > 9 else len(pes)  # after the PES header
    frames, rate = 0, 0
    while i + 7 <= len(pes) and pes[i] == 0xFF and pes[i + 1] & 0xF0 == 0xF0:
        rate = ADTS_SAMPLE_RATES[(pes[i + 2] >> 2) & 0x0F] if ((pes[i + 2] >> 2) & 0x0F) < 13 else rate
        length = ((pes[i + 3] & 0x03) << 11) | (pes[i + 4] << 3) | (pes[i + 5] >> 5)
        if length < 7:
            break
        frames += 1
        i += length
    return frames, rate


def audio_span(data: bytes) -> tuple[float, float]:
    """(first PTS, end of the last AAC frame) in seconds of the ADTS audio in an MPEG-TS
    segment: the end is the last PES's PTS plus its frames x 1024 samples at the ADTS sample
    rate. Raises ``NotTransportStream`` (no AAC stream), ValueError (no timed PES)."""
    units = [(pts, body) for pts, body in _pes_units(data, {ADTS_STREAM_TYPE}) if pts is not None]
    if not units:
        raise ValueError("the segment holds no audio frame")
    frames, rate = _adts_frames(units[-1][1])
    tail = frames * AAC_FRAME_SAMPLES / rate if rate else 0.0
    return round(min(p for p, _ in units) / CLOCK_HZ, 6), round(units[-1][0] / CLOCK_HZ + tail, 6)


@dataclass(frozen=True)
class SegmentTiming:
    """When a segment's video is presented, measured from its packets (seconds, on the
    output timeline): ``start`` the earliest PTS, ``last_frame`` the latest PTS, ``end`` the
    end of the last frame (``last_frame`` + the segment's last frame interval; one nominal
    frame when the segment holds a single frame), ``frames`` the access-unit count."""

    start: float
    last_frame: float
    end: float
    frames: int


def segment_timing(pts: Sequence[float], nominal_frame_seconds: float) -> SegmentTiming:
    """Timing of one segment from its video PTS list (any order). ``nominal_frame_seconds``
    (s) is used only for a one-frame segment. Raises ValueError for an empty list."""
    if not pts:
        raise ValueError("the segment holds no video frame")
    ordered = sorted(pts)
    last_interval = ordered[-1] - ordered[-2] if len(ordered) > 1 else nominal_frame_seconds
    return SegmentTiming(start=round(ordered[0], 6), last_frame=round(ordered[-1], 6),
                         end=round(ordered[-1] + last_interval, 6), frames=len(ordered))
