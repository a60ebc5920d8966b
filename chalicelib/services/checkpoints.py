"""Segment checkpoints of a chunk task: each segment ffmpeg finishes, in every rendition, is
measured (its packets' timestamps: EXTINF and the resume point come from them, docs/hls-output.md),
uploaded, and recorded as the chunk task's checkpoints (``chalicelib.aws.checkpoints``) while
ffmpeg goes on (docs/chunking-and-resume.md). One DynamoDB transaction records what one sweep found in all
renditions."""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import asdict
from typing import Callable

import m3u8

from chalicelib import faults
from chalicelib.domain import ffmpeg_args
from chalicelib.domain import jobs
from chalicelib.domain.backoff import exponential_backoff
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.mpegts import segment_timing, video_pts
from chalicelib.domain.playlist import h264_codec_string

from .context import Context

log = logging.getLogger("vodpipe.transcode")

#: The last sweep's retries sleep 0.5 s, then 1 s, 2 s ... (``domain.backoff``).
FINISH_RETRY_BASE_SECONDS = 0.5


def sweep_with_retries(sweep: Callable[[], object], what: str, attempts: int = 4) -> None:
    """Call ``sweep()`` up to ``attempts`` times, sleeping 0.5, 1, 2 s ... between failures
    (``domain.backoff.exponential_backoff``): a last upload sweep that outlasts a passing AWS
    error. ``PermanentError`` is raised at once (another try cannot help); any other error is
    raised when the last attempt failed. ``what`` names the uploads in the log."""
    for attempt in range(attempts):
        try:
            sweep()
            return
        except PermanentError:
            raise
        except Exception as e:  # noqa: BLE001
            if attempt == attempts - 1:
                raise
            log.warning("%s failed (attempt %d), retrying: %s", what, attempt + 1, e)
            time.sleep(exponential_backoff(attempt + 1, FINISH_RETRY_BASE_SECONDS))


class ChunkUploader(threading.Thread):
    """Joins the GOP files ffmpeg finishes in ``out_dir/<rendition>/`` into segments, uploads
    and checkpoints each segment, while ffmpeg runs.

    ffmpeg lists a GOP file in its playlist only once the file is whole (``temp_file``). A
    GOP belongs to the segment its first frame falls in (``ffmpeg_args.segment_of``); a
    segment is whole once a GOP of a later segment is listed, or, for the run's last one,
    when ffmpeg ended normally (``finish(ended=True)``); MPEG-TS GOP files of one muxer
    session join by byte concatenation (docs/chunking-and-resume.md). GOPs of segments outside
    ``[first_segment, end_segment)`` (the preroll, the lookahead tail) and of segments already
    recorded (a resumed run re-makes them) are dropped.

    Segments are ``segment_seconds`` long (the job's ``segment_duration``; the first one
    ``lead`` seconds when the job has a short first segment) and uploaded under
    ``prefix`` (the job's output prefix). ``recorded[rendition]`` holds every checkpoint of the chunk (earlier runs' included) and
    ``codecs[rendition]`` the RFC 6381 string read from a segment's SPS.

    ``watch(path, publish)``: a side output of the same run (the poster), written atomically
    by ffmpeg; the first sweep that finds it calls ``publish(path)`` (again on the next sweep
    if that raised)."""

    POLL_SECONDS = 1.0

    def __init__(self, ctx: Context, job_id: str, task_name: str, out_dir: str, recorded: dict[str, list[dict]],
                 canceled: threading.Event | None = None, nominal_frame_seconds: float = 1 / 30,
                 first_segment: int = 0, end_segment: int | None = None, prefix: str | None = None,
                 segment_seconds: int = ffmpeg_args.SEGMENT_SECONDS, lead: float = 0.0):
        super().__init__(daemon=True, name=f"uploader-{task_name}")
        self.ctx, self.job_id, self.task_name, self.out_dir = ctx, job_id, task_name, out_dir
        self.prefix, self.segment_seconds, self.lead = prefix or job_id, segment_seconds, lead
        self.nominal_frame_seconds = nominal_frame_seconds
        self.canceled = canceled or threading.Event()
        self.recorded = {r: list(segs) for r, segs in recorded.items()}
        self.next_index = {r: first_segment + len(segs) for r, segs in recorded.items()}
        self.end_segment = end_segment
        self.codecs: dict[str, str] = {}
        self._seen: dict[str, set[str]] = {r: set() for r in recorded}
        # GOP files waiting to join a segment: (path, its video PTS) by segment index
        self._pending: dict[str, dict[int, list[tuple[str, list[float]]]]] = {r: {} for r in recorded}
        self._watched: dict[str, Callable[[str], None]] = {}
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def watch(self, path: str, publish: Callable[[str], None]) -> None:
        """Call ``publish(path)`` once the file at ``path`` exists (see the class docstring)."""
        self._watched[path] = publish

    @property
    def pending_side_outputs(self) -> list[str]:
        """Watched files not published yet."""
        return list(self._watched)

    def run(self) -> None:
        while not self._halt.wait(self.POLL_SECONDS):
            try:
                self.sweep()
            except Exception as e:  # noqa: BLE001 - retried on the next poll / final sweep
                log.warning("segment upload failed, will retry: %s", e)

    def _collect(self, rendition: str) -> None:
        folder = os.path.join(self.out_dir, rendition)
        path = os.path.join(folder, ffmpeg_args.PLAYLIST_NAME)
        for gop in (m3u8.load(path).segments if os.path.exists(path) else []):
            if gop.uri in self._seen[rendition]:
                continue
            self._seen[rendition].add(gop.uri)
            local = os.path.join(folder, gop.uri)
            with open(local, "rb") as fh:
                pts = video_pts(fh.read())
            if not pts:
                os.remove(local)
                continue
            index = ffmpeg_args.segment_of(ffmpeg_args.source_time(min(pts)), self.segment_seconds, self.lead)
            self._pending[rendition].setdefault(index, []).append((local, pts))

    def _whole_segments(self, rendition: str, ended: bool) -> list[tuple[int, list[tuple[str, list[float]]]]]:
        pending = self._pending[rendition]
        out = []
        for index in sorted(pending):
            beyond = self.end_segment is not None and index >= self.end_segment
            if index < self.next_index[rendition] or beyond:  # preroll, tail, or already recorded
                for f, _ in pending.pop(index):
                    os.remove(f)
                continue
            if not (ended or any(i > index for i in pending)):
                break
            out.append((index, pending[index]))
        return out

    def sweep(self, ended: bool = False) -> int:
        """Upload every whole segment of every rendition, then record them all in one write.
        ``ended``: ffmpeg exited normally, so the last segment is whole too. Returns how many
        segments were recorded."""
        if self.canceled.is_set():  # nothing is written for a canceled job
            return 0
        with self._lock:
            for path, publish in list(self._watched.items()):
                if os.path.exists(path):
                    publish(path)
                    del self._watched[path]
            new: dict[str, list[dict]] = {}
            for rendition in self.recorded:
                self._collect(rendition)
                for index, gops in self._whole_segments(rendition, ended):
                    expected = self.next_index[rendition] + len(new.get(rendition, []))
                    if index != expected:
                        raise RuntimeError(f"{rendition}: segment {index} is whole before {expected}")
                    gops = sorted(gops)
                    data = b"".join(open(f, "rb").read() for f, _ in gops)
                    local = os.path.join(self.out_dir, rendition, ffmpeg_args.SEGMENT_PATTERN % index)
                    with open(local, "wb") as fh:
                        fh.write(data)
                    # EXTINF comes from the packets, not from the muxer's estimate (docs/hls-output.md)
                    # (each GOP file's packets were read once, when it was listed)
                    timing = segment_timing([p for _, pts in gops for p in pts], self.nominal_frame_seconds)
                    if rendition not in self.codecs and (codec := h264_codec_string(data)):
                        self.codecs[rendition] = codec
                    new.setdefault(rendition, []).append({"index": index, "bytes": len(data), **asdict(timing)})
            if not new:
                return 0
            self._upload(new)
            counts = {r: len(self.recorded[r]) for r in new}
            if not self.ctx.checkpoints.record(self.job_id, self.task_name, new, counts):
                raise RuntimeError(f"checkpoints of {self.task_name} changed under this worker")
            faults.check("checkpoint_written", f"{self.job_id}/{self.task_name}")
            for rendition, entries in new.items():
                self.recorded[rendition] += entries
                self.next_index[rendition] += len(entries)
                for e in entries:
                    for f, _ in self._pending[rendition].pop(e["index"]):
                        os.remove(f)
                    os.remove(os.path.join(self.out_dir, rendition, ffmpeg_args.SEGMENT_PATTERN % e["index"]))
            return sum(len(e) for e in new.values())

    def _upload(self, new: dict[str, list[dict]]) -> None:
        """Upload the joined segments of ``new`` (their files in ``out_dir/<rendition>/``), all
        renditions' at once (``objects.upload_files``): the first chunk's last sweep is on the
        path to playable. Raises an upload's error (the sweep is retried; nothing was recorded)."""
        names = [(r, ffmpeg_args.SEGMENT_PATTERN % e["index"]) for r, entries in new.items() for e in entries]
        self.ctx.objects.upload_files([(os.path.join(self.out_dir, r, name), jobs.output_key(self.prefix, r, name))
                                       for r, name in names], self.ctx.settings.output_bucket)

    def finish(self, ended: bool, attempts: int = 4) -> None:
        """Stop polling, then upload what is left (the last segment too when ``ended``):
        up to ``attempts`` sweeps, sleeping 0.5, 1, 2 s ... between them
        (``domain.backoff.exponential_backoff``). Raises what the last sweep raised when every
        attempt failed (an AWS error, or ``RuntimeError`` when the checkpoints changed under
        this worker)."""
        self._halt.set()
        self.join(timeout=60)
        sweep_with_retries(lambda: self.sweep(ended), "segment upload", attempts)
