"""Chunk planning: cutting a source's timeline into chunks that are encoded in parallel.

A chunk is a span ``[start, end)`` of the source (seconds from its first frame) that one
task decodes once and encodes to every rung of the video ladder (docs/chunking-and-resume.md: two processes
that each decode half a minute once and feed all five rungs cost no more than one process
over the whole minute). Rules:

* chunks start on the segment grid (a whole number of ``segment_seconds``), so every chunk
  holds whole segments and its segments continue the previous chunk's numbering; because the
  segment length is a multiple of the GOP, every chunk starts on an IDR of the absolute grid
  (docs/hls-output.md, docs/chunking-and-resume.md);
* there are as many chunks as the target ``parallelism`` (the worker count locally, the
  service's maximum task count on AWS), as equal as the segment grid allows, but fewer when
  they would be shorter than ``min_seconds`` on average (each chunk pays a seek and an
  encoder warm-up) and more when longer than ``max_seconds`` (which bounds a chunk's
  checkpoint item and the work a crash can lose);
* with ``first_seconds`` (the deployment's ``FirstChunkSeconds``), the first chunk is short:
  when ``first_seconds`` is under a segment, a first segment of just that (``lead_for``: 0.5 s
  in a 6 s grid; EXTINF may be below the target duration, RFC 8216 §4.3.3.1), the later
  segments and IDRs on the grid from there; else the first segment(s) up to
  ``first_seconds``. So the presentation can be
  published once they and the audio are encoded, seconds after the upload instead of after
  the whole first share of the timeline; the rest of the timeline is planned by the rules
  above. Only when the rest holds at least one more segment (a 5 s clip stays one chunk). One
  extra chunk costs its fixed cost once (~3 % of a 60 s 1080p job's CPU);
* on tasks the plan would leave idle, the chunks after the first grow (``growth_spans``), so
  each is encoded before a viewer who started seconds after the first publication reaches it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .errors import PermanentError


#: Default shortest chunk (s). Each chunk pays a fixed cost: its ffmpeg start-up, the preroll
#: before its first IDR, the lookahead tail past its end and a task's orchestration, measured
#: at 2.7 ffmpeg CPU-s plus ~1 CPU-s of orchestration for the bench's 1080p 5-rung ladder
#: (``make bench``), against ~2 CPU-s per media second of encoding. That is ~6 % of a 30 s
#: chunk and ~3 % of a 60 s one; 12 s chunks cost about 14 % (docs/chunking-and-resume.md). A minute is the
#: shortest chunk that keeps the pipeline within 10 % of one ffmpeg over the whole timeline
#: (the 60 s bench clip: 1.13x the CPU in two 30 s chunks, 1.04-1.06x in one); deployments that
#: prefer latency on short uploads lower it (template parameter ``ChunkMinSeconds``).
MIN_CHUNK_SECONDS = 60.0
#: Default longest chunk (s): 100 segments of 6 s.
MAX_CHUNK_SECONDS = 600.0


@dataclass(frozen=True)
class Chunk:
    """One planned chunk: ``index`` (0-based), ``start``/``end`` seconds of the source
    (``end`` of the last chunk is the probed duration), ``first_segment`` the index of its
    first segment in every rendition."""

    index: int
    start: float
    end: float
    first_segment: int

    @property
    def name(self) -> str:
        """The task name: ``chunk-000``, ``chunk-001``..."""
        return f"chunk-{self.index:03d}"

    @property
    def seconds(self) -> float:
        """Length of the chunk (s)."""
        return self.end - self.start

    def to_dict(self) -> dict:
        """Plain dict for a task message or a DynamoDB item."""
        return {**asdict(self), "name": self.name}


def chunk_count(duration: float, parallelism: int, min_seconds: float = MIN_CHUNK_SECONDS,
                max_seconds: float = MAX_CHUNK_SECONDS) -> int:
    """How many chunks: ``parallelism``, but none shorter than ``min_seconds`` on average and
    none longer than ``max_seconds``; at least one. Raises ValueError for ``parallelism`` < 1."""
    if parallelism < 1:
        raise ValueError("parallelism must be >= 1")
    n = min(parallelism, max(1, math.floor(duration / max(min_seconds, 1e-6))))
    return max(n, math.ceil(duration / max(max_seconds, 1e-6)), 1)


#: The shortest first segment a job gets (s): shorter ones would cost an IDR more per
#: fraction of a second and make a player ask for a segment per few frames.
MIN_LEAD_SECONDS = 0.5


def lead_for(duration: float, first_seconds: float, segment_seconds: float) -> float:
    """The short first segment's length (s) a job gets, or 0.0: ``first_seconds`` (to the
    millisecond, at least ``MIN_LEAD_SECONDS``) when that is shorter than ``segment_seconds``
    and at least one whole segment follows it (a shorter source keeps the plain grid). The grid
    of every later segment then starts at it (``ffmpeg_args.segment_of``), and so does the IDR
    grid (``ffmpeg_args.grid_phase``: a 1 s lead puts IDRs at 0, 1, 3, 5 ... s), so every
    segment starts on an IDR. EXTINF may be below the target duration (RFC 8216 §4.3.3.1)."""
    if first_seconds <= 0:
        return 0.0
    lead = round(max(first_seconds, MIN_LEAD_SECONDS), 3)
    return lead if lead < segment_seconds and duration - lead >= segment_seconds else 0.0


def first_seconds_for(first_seconds: float, video_start: float) -> float:
    """The first chunk's length (s) for a source whose first decodable video frame is
    ``video_start`` seconds after its start: ``first_seconds`` (the deployment's
    ``FirstChunkSeconds``), but at least ``MIN_LEAD_SECONDS`` past that frame, so the first
    chunk always holds a frame (a chunk 0 of none would fail the job ``NO_DECODABLE_FRAMES``);
    0.0 stays 0.0 (no short first chunk)."""
    if first_seconds <= 0:
        return 0.0
    return round(max(first_seconds, video_start + MIN_LEAD_SECONDS), 3)


def check_video_start(video_start: float, segment_seconds: float) -> None:
    """Refuse a source whose first decodable video frame is ``video_start`` seconds or more
    after its start when that is a whole segment or more (``segment_seconds``): its first
    segment would hold no frame, and every segment of a variant must hold one (a player
    starts on it). Raises ``PermanentError`` ``LATE_VIDEO_START``; shorter delays are kept
    (``first_seconds_for``)."""
    if video_start >= segment_seconds:
        raise PermanentError("LATE_VIDEO_START",
                             f"the picture starts {video_start:.2f} s after the file's start (its sound or another "
                             f"stream comes first); vodpipe encodes files whose picture starts within the first "
                             f"{segment_seconds:g} s segment (trim the start, or re-export it with the picture from 0)")


#: nice(1) value of a later chunk's ffmpeg (``encode_niceness``) and of an audio task's when
#: later chunks follow (``audio_niceness``). It ranks programs of different tasks only because
#: each ffmpeg runs in a scheduling group of its own with that niceness
#: (``chalicelib.tools.scheduling``).
LATER_CHUNK_NICENESS = 10


def audio_niceness(later_chunks: bool) -> int:
    """The CPU niceness (nice(1), 0..19) of an audio task's ffmpeg: ``LATER_CHUNK_NICENESS``
    when ``later_chunks`` follow the first chunk, else 0. On a host whose tasks share CPUs the
    first chunk's encoders then get the CPU first (CFS weight 1024 against 110: ~90 % of a
    contended CPU) and the audio takes what they leave: its first two segments, all a
    publication needs of it, cost ~0.5 CPU-s, which it gets while a 0.5 s first chunk's
    ffmpeg starts up and encodes (~3 s here: ``make bench``). Not 19 (weight 15): a run below
    0.05x real time under a long contention would overrun its time bound
    (``ffmpeg_args.run_time_limit``) and end in the dead-letter queue."""
    return LATER_CHUNK_NICENESS if later_chunks else 0


def encode_niceness(index: int) -> int:
    """The CPU niceness (nice(1), 0..19) chunk ``index`` of a job encodes at: 0 for the first
    chunk, ``LATER_CHUNK_NICENESS`` for the others. A viewer waits for the first chunk (the job
    is playable when it is published) and not yet for the others, so on a host whose tasks share
    CPUs the scheduler gives the first chunk's encoders the CPU first (on this 2-core machine:
    a 0.5 s first chunk beside a 59.5 s second one). A task alone on its vCPUs runs at full speed
    at any niceness, so the rule costs nothing where nothing competes."""
    return 0 if index == 0 else LATER_CHUNK_NICENESS


#: Media seconds a task is assumed to encode per second when growing chunks (``growth_spans``):
#: a floor, this machine's 2-vCPU task made 0.64-0.69x real time for the 1080p five-rung ladder
#: (``make bench``).
GROWTH_SPEED = 0.6
#: Growing chunks may add at most this share of the job's work (``growth_spans``)...
GROWTH_BUDGET = 0.05
#: ...each costing about as much as encoding this many media seconds: its ffmpeg start-up,
#: preroll and tail and its task's orchestration (2.7 + ~1 CPU-s against ~2 CPU-s per media
#: second, ``MIN_CHUNK_SECONDS``).
CHUNK_COST_SECONDS = 1.85


def growth_spans(start: float, end: float, spare: int, duration: float,
                 segment_seconds: float) -> list[tuple[float, float]]:
    """Growing chunks cut out of the head ``[start, end)`` (s) of the chunk that follows the
    first, on ``spare`` tasks the plan would leave idle: [(start, end)] seconds, each whole
    segments and sized so it is encoded before a viewer who started one segment's encoding time
    after the first publication reaches it (a chunk starting at ``a`` s gets at most
    ``segment_seconds + GROWTH_SPEED * a``: 6, 6, 12, 18, 30, 48 ... s in a 6 s grid). At most
    as many as their fixed cost allows (``GROWTH_BUDGET`` of the job's ``duration`` of work: a
    1 min upload gets one, 5 min up to eight) and always leaving at least a segment of the head
    to the chunk it was cut from; the other chunks of the plan are unchanged, so growth never
    lengthens a chunk. None without a spare task (one or two tasks, as on this machine)."""
    spans: list[tuple[float, float]] = []
    budget = min(spare, math.floor(GROWTH_BUDGET * duration / CHUNK_COST_SECONDS))
    at = start
    while len(spans) < budget:
        size = max(segment_seconds, math.floor((segment_seconds + GROWTH_SPEED * at) / segment_seconds + 1e-9)
                   * segment_seconds)
        if end - (at + size) < segment_seconds - 1e-6:
            break
        spans.append((at, at + size))
        at += size
    return spans


def plan_chunks(duration: float, parallelism: int, segment_seconds: float, min_seconds: float = MIN_CHUNK_SECONDS,
                max_seconds: float = MAX_CHUNK_SECONDS, first_seconds: float = 0.0) -> list[Chunk]:
    """Chunks covering ``[0, duration)`` seconds: ``chunk_count`` of them, as equal as the
    segment grid allows (boundary ``k`` at ``k * duration / n`` rounded to the nearest whole
    segment), none empty. A source shorter than ``min_seconds`` is one chunk. With
    ``first_seconds`` > 0, a first chunk of ``first_seconds`` (``lead_for``; rounded up to whole
    segments when not under one) comes first and the rest is planned as above (module docstring). Raises ValueError for a
    non-positive ``duration`` or ``segment_seconds``."""
    if duration <= 0 or segment_seconds <= 0:
        raise ValueError("duration and segment_seconds must be positive")
    lead = lead_for(duration, first_seconds, segment_seconds)
    first_end = lead or (float(math.ceil(first_seconds / segment_seconds - 1e-9) * segment_seconds)
                         if first_seconds > 0 else 0.0)
    if first_end and duration - first_end >= segment_seconds:
        rest = [(c.start + first_end, c.end + first_end)
                for c in plan_chunks(duration - first_end, parallelism, segment_seconds, min_seconds, max_seconds)]
        # tasks left idle beside the first chunk, the audio and the rest: growing chunks (growth_spans)
        grown = growth_spans(rest[0][0], rest[0][1], parallelism - 2 - len(rest), duration, segment_seconds)
        head = [*grown, (grown[-1][1], rest[0][1])] if grown else rest[:1]
        spans = [(0.0, first_end), *head, *rest[1:]]
        offset = 1 if lead else 0  # the short first segment shifts the grid of the rest
        return [Chunk(index=i, start=round(a, 6), end=round(b, 6),
                      first_segment=0 if i == 0 else int(round((a - lead) / segment_seconds)) + offset)
                for i, (a, b) in enumerate(spans)]
    n = chunk_count(duration, parallelism, min_seconds, max_seconds)
    grid = sorted({round(k * duration / n / segment_seconds) * segment_seconds for k in range(1, n)})
    starts = [0.0, *(float(b) for b in grid if 0 < b < duration)]
    ends = [*starts[1:], duration]
    return [Chunk(index=i, start=round(s, 6), end=round(e, 6), first_segment=int(round(s / segment_seconds)))
            for i, (s, e) in enumerate(zip(starts, ends))]


def contiguous_prefix(done: set[int], count: int) -> int:
    """How many chunks from index 0 are all done (0..n-1 in ``done``), at most ``count``."""
    n = 0
    while n < count and n in done:
        n += 1
    return n
