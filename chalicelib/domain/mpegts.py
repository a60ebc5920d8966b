"""Presentation timestamps of the video in an MPEG-TS segment, read from the bytes themselves.

Why our own reader: the HLS muxer's EXTINF is an estimate (frame count over a nominal frame
rate) that is wrong on variable-frame-rate and mislabelled sources (DESIGN §10: 0.44 s
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


def _video_pid(pmt: bytes) -> int | None:
    length = ((pmt[1] & 0x0F) << 8) | pmt[2]
    info_length = ((pmt[10] & 0x0F) << 8) | pmt[11]
    i, end = 12 + info_length, 3 + length - 4
    while i + 5 <= end:
        stream_type, pid = pmt[i], ((pmt[i + 1] & 0x1F) << 8) | pmt[i + 2]
        if stream_type in VIDEO_STREAM_TYPES:
            return pid
        i += 5 + (((pmt[i + 3] & 0x0F) << 8) | pmt[i + 4])
    return None


def _pes_pts(payload: bytes) -> int | None:
    if len(payload) < 14 or payload[:3] != b"\x00\x00\x01" or not payload[7] & 0x80:
        return None
    p = payload[9:14]
    return (((p[0] >> 1) & 0x07) << 30) | (p[1] << 22) | ((p[2] >> 1) << 15) | (p[3] << 7) | (p[4] >> 1)


def video_pts(data: bytes) -> list[float]:
    """Presentation times (seconds, in stream order) of every video access unit in ``data``,
    a whole MPEG-TS file (e.g. one HLS segment). The first video stream of the first program
    is read; PTS wrap-around (2^33 ticks, 26.5 h) is not expected within one segment.

    Raises ``NotTransportStream`` when ``data`` is not 188-byte packets starting with 0x47 or
    has no video stream in its PMT."""
    if len(data) < PACKET_SIZE or data[0] != SYNC_BYTE:
        raise NotTransportStream("not an MPEG transport stream (no sync byte)")
    pmt_pids: list[int] = []
    video: int | None = None
    times: list[float] = []
    for offset in range(0, len(data) - PACKET_SIZE + 1, PACKET_SIZE):
        packet = data[offset:offset + PACKET_SIZE]
        if packet[0] != SYNC_BYTE:
            raise NotTransportStream(f"lost packet sync at byte {offset}")
        starts = bool(packet[1] & 0x40)
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        if not starts:
            continue
        if pid == 0 and not pmt_pids:
            pmt_pids = _pmt_pids(_section(_payload(packet)))
        elif pid in pmt_pids and video is None:
            video = _video_pid(_section(_payload(packet)))
        elif video is not None and pid == video:
            pts = _pes_pts(_payload(packet))
            if pts is not None:
                times.append(pts / CLOCK_HZ)
    if video is None:
        raise NotTransportStream("no video stream in the transport stream's PMT")
    return times


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
