"""Audio segments published while the audio task encodes: the first seconds of a track are
playable as early as the first chunk's picture, whatever the track's length (a 1 h track is one
ffmpeg run of several minutes; docs/chunking-and-resume.md keeps audio in one run).

ffmpeg's HLS muxer writes each segment to ``seg_%05d.ts.tmp`` and renames it into place once
whole (``-hls_flags temp_file``), so a listed ``seg_%05d.ts`` is final. Every poll uploads the
new ones in order, reads their span from their own packets (``mpegts.audio_span``: first PTS to
the end of the last AAC frame) and records the segments' EXTINF and the source seconds they
reach on the task item (``record_partial_output``), which ``presentation.audio_prefix`` reads.
Only segments whose successor is uploaded are recorded (``recordable``): their EXTINF is the
next segment's first PTS minus their own, the one the finished task records
(``playlist.extinf_from_timing``); the end of a last frame can differ from the next PTS by the
90 kHz rounding of a 44.1 kHz frame, and a published EXTINF must never change (RFC 8216 §6.2.1).
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Callable

from chalicelib.domain import ffmpeg_args, jobs
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.mpegts import audio_span
from chalicelib.domain.playlist import extinf_from_timing, measure_segments, media_playlist

from .checkpoints import sweep_with_retries
from .context import Context

log = logging.getLogger("vodpipe.transcode")

SEGMENT_FILE = re.compile(r"^seg_(\d{5})\.ts$")


def recordable(spans: list[tuple[float, float]]) -> tuple[list[float], float] | None:
    """(EXTINF of every segment but the last, the source seconds they reach) for the spans
    (first PTS, end of the last frame; seconds) of the segments uploaded so far, or None
    before there are two. EXTINF(i) = start(i+1) - start(i), as the finished task computes it."""
    if len(spans) < 2:
        return None
    starts = [start for start, _ in spans]
    return extinf_from_timing(starts[:-1], starts[-1]), ffmpeg_args.source_time(starts[-1])


class AudioSegments(threading.Thread):
    """Uploads the audio segments ffmpeg finishes in ``out_dir`` under the job's output
    ``prefix``/``rendition``/ while ffmpeg runs, and records them on the task item.

    ``spans`` holds (first PTS, end) in seconds of every uploaded segment, in order;
    ``sizes`` their bytes. After a record, ``on_recorded()`` publishes what became playable
    (it returns True once the job is published). Until then every poll that finds segments
    records them, so the first chunk's own completion sees the audio as far as it is, and
    ``on_recorded`` runs at most every ``PUBLISH_SECONDS``; after it, records and publications
    come every ``RECORD_SECONDS``, so chunks that finish before the audio reaches them are
    published as it does (the finished task records everything). Nothing is called once
    ``finish``/``stop`` began (a thread that outlived its task never acts on the next one's
    run)."""

    POLL_SECONDS = 0.25
    PUBLISH_SECONDS = 1.0
    RECORD_SECONDS = 5.0
    WARN_SECONDS = 30.0

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
        self._last_record = self._last_publish = self._last_warning = float("-inf")
        self._recorded = 0
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
                if time.monotonic() - self._last_warning >= self.WARN_SECONDS:
                    self._last_warning = time.monotonic()
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
                    data = fh.read()
                try:
                    span = audio_span(data)
                except ValueError as e:  # ffmpeg wrote a segment without an AAC frame: nothing decoded
                    raise PermanentError("NO_DECODABLE_AUDIO", f"the audio track made a segment with no audio "
                                                               f"({name}, {len(data)} bytes): nothing could be decoded") from e
                self.sizes[name] = self.ctx.objects.upload_file(
                    local, self.ctx.settings.output_bucket, jobs.output_key(self.prefix, self.rendition, name))
                self.spans.append(span)
                new += 1
            if not ended:
                self._record_and_publish()
            return new

    def _record_and_publish(self) -> None:
        now = time.monotonic()
        if self.published and now - self._last_record < self.RECORD_SECONDS:
            return
        found = recordable(self.spans)
        grew = bool(found) and len(found[0]) > self._recorded
        if grew:
            extinf, covered = found
            stats = measure_segments(media_playlist(list(zip(self.files[:len(extinf)], extinf))), self.sizes).to_dict()
            # refused when an earlier run of this task recorded further: players keep that
            self.ctx.store.record_partial_output(self.job_id, self.task_name, covered, extinf=extinf,
                                                 peak_bandwidth=stats["peak_bandwidth"],
                                                 average_bandwidth=stats["average_bandwidth"])
            self._recorded, self._last_record = len(extinf), now
        if self.on_recorded is None or not self._recorded or self._halt.is_set():
            return
        if (grew and self.published) or (not self.published and now - self._last_publish >= self.PUBLISH_SECONDS):
            self._last_publish = now
            self.published = bool(self.on_recorded()) or self.published

    def finish(self, attempts: int = 4) -> None:
        """Stop polling and upload what is left (ffmpeg ended normally), ``attempts`` times at
        most (``checkpoints.sweep_with_retries``). Raises ``PermanentError``
        ``NO_DECODABLE_AUDIO`` at once, else what the last attempt raised (an AWS error: the
        task is retried)."""
        self._halt.set()
        if self.ident is not None:  # started
            self.join(timeout=60)
        sweep_with_retries(lambda: self.sweep(ended=True), "audio segment upload", attempts)

    def stop(self) -> None:
        """Stop polling (ffmpeg failed or was interrupted): nothing more is uploaded."""
        self._halt.set()
        if self.ident is not None:  # started
            self.join(timeout=60)
