"""Audio segments published while the audio task encodes: the first seconds of a track are
playable as early as the first chunk's picture, whatever the track's length (a 1 h track is one
ffmpeg run of several minutes; docs/chunking-and-resume.md keeps audio in one run).

ffmpeg's HLS muxer writes each segment to ``seg_%05d.ts.tmp`` and renames it into place once
whole (``-hls_flags temp_file``), so a listed ``seg_%05d.ts`` is final. Every poll uploads the
new ones in order, reads their span from their own packets (``mpegts.audio_span``: first PTS to
the end of the last AAC frame) and records the segments' EXTINF and the source seconds they
reach on the task item (``record_partial_output``), which ``presentation.audio_prefix`` reads.
The timeline is contiguous (``ffmpeg_args.AUDIO_TIMELINE``), so an EXTINF recorded now is the
one the finished task records.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Callable

from chalicelib.domain import ffmpeg_args, jobs
from chalicelib.domain.mpegts import audio_span
from chalicelib.domain.playlist import extinf_from_timing, measure_segments, media_playlist

from .context import Context

log = logging.getLogger("vodpipe.transcode")

SEGMENT_FILE = re.compile(r"^seg_(\d{5})\.ts$")


class AudioSegments(threading.Thread):
    """Uploads the audio segments ffmpeg finishes in ``out_dir`` under the job's output
    ``prefix``/``rendition``/ while ffmpeg runs, and records them on the task item.

    ``spans`` holds (first PTS, end) in seconds of every uploaded segment, in order;
    ``sizes`` their bytes. After a poll that recorded new segments, ``on_recorded()`` is
    called (the worker publishes what became playable) until it returns True (the job was
    published); later chunks' completions publish the rest. Records are written at most every
    ``RECORD_SECONDS`` once published (the finished task records everything)."""

    POLL_SECONDS = 0.25
    RECORD_SECONDS = 5.0

    def __init__(self, ctx: Context, job_id: str, task_name: str, out_dir: str, prefix: str, rendition: str,
                 on_recorded: Callable[[], bool] | None = None, canceled: threading.Event | None = None):
        super().__init__(daemon=True, name=f"audio-uploader-{task_name}")
        self.ctx, self.job_id, self.task_name, self.out_dir = ctx, job_id, task_name, out_dir
        self.prefix, self.rendition = prefix, rendition
        self.on_recorded = on_recorded
        self.canceled = canceled or threading.Event()
        self.spans: list[tuple[float, float]] = []
        self.sizes: dict[str, int] = {}
        self.published = on_recorded is None
        self._last_record = float("-inf")
        self._halt = threading.Event()
        self._lock = threading.Lock()

    @property
    def files(self) -> list[str]:
        """The uploaded segment file names, in order."""
        return [ffmpeg_args.SEGMENT_PATTERN % i for i in range(len(self.spans))]

    def run(self) -> None:
        while not self._halt.wait(self.POLL_SECONDS):
            try:
                self.sweep()
            except Exception as e:  # noqa: BLE001 - tried again at the next poll and at finish
                log.warning("audio segment upload failed, will retry: %s", e)

    def sweep(self, ended: bool = False) -> int:
        """Upload the whole segments not uploaded yet (in order; a gap in the numbering waits),
        record them, and return how many were uploaded. ``ended``: ffmpeg exited, nothing more
        will come (no record is written: the task's completion records it all)."""
        if self.canceled.is_set():
            return 0
        with self._lock:
            present = {int(m.group(1)) for f in os.listdir(self.out_dir) if (m := SEGMENT_FILE.match(f))}
            new = 0
            while len(self.spans) in present:
                name = ffmpeg_args.SEGMENT_PATTERN % len(self.spans)
                local = os.path.join(self.out_dir, name)
                with open(local, "rb") as fh:
                    span = audio_span(fh.read())
                self.sizes[name] = self.ctx.objects.upload_file(
                    local, self.ctx.settings.output_bucket, jobs.output_key(self.prefix, self.rendition, name))
                self.spans.append(span)
                new += 1
            if new and not ended and (not self.published or time.monotonic() - self._last_record >= self.RECORD_SECONDS):
                self._record()
            return new

    def _record(self) -> None:
        extinf = extinf_from_timing([start for start, _ in self.spans], self.spans[-1][1])
        stats = measure_segments(media_playlist(list(zip(self.files, extinf))), self.sizes).to_dict()
        covered = ffmpeg_args.source_time(self.spans[-1][1])
        self.ctx.store.record_partial_output(self.job_id, self.task_name, covered, extinf=extinf,
                                             peak_bandwidth=stats["peak_bandwidth"],
                                             average_bandwidth=stats["average_bandwidth"])
        self._last_record = time.monotonic()
        if not self.published and self.on_recorded is not None:
            self.published = bool(self.on_recorded())

    def finish(self) -> None:
        """Stop polling and upload what is left (ffmpeg ended normally). Raises what the last
        upload raised (an AWS error: the task is retried)."""
        self._halt.set()
        self.join(timeout=60)
        self.sweep(ended=True)

    def stop(self) -> None:
        """Stop polling (ffmpeg failed or was interrupted): nothing more is uploaded."""
        self._halt.set()
        self.join(timeout=60)
