"""Segment checkpoints of a video rendition: each segment ffmpeg finishes is measured (its
packets' timestamps: EXTINF and the resume point come from them, DESIGN §10), uploaded and
recorded in the task's ``segs`` while ffmpeg goes on (DESIGN §9)."""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import asdict

import m3u8

from chalicelib.domain import ffmpeg_args as A
from chalicelib.domain import jobs as J
from chalicelib.domain.mpegts import segment_timing, video_pts

from .context import Context

log = logging.getLogger("vodpipe.transcode")


class SegmentUploader(threading.Thread):
    """Uploads each segment ffmpeg finishes and checkpoints it, while ffmpeg runs.

    ffmpeg writes an EVENT playlist that lists a segment only once its file is complete
    (``temp_file``), so every listed segment is whole. ``finish()`` stops polling and does a
    last sweep, so a stopped or killed ffmpeg's complete segments are all kept."""

    POLL_SECONDS = 0.5

    def __init__(self, ctx: Context, job_id: str, name: str, out_dir: str, first_index: int,
                 canceled: threading.Event | None = None, nominal_frame_seconds: float = 1 / 30):
        super().__init__(daemon=True, name=f"uploader-{name}")
        self.ctx, self.job_id, self.name, self.out_dir = ctx, job_id, name, out_dir
        self.nominal_frame_seconds = nominal_frame_seconds
        self.canceled = canceled or threading.Event()
        self.next_index = first_index
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def run(self) -> None:
        while not self._halt.wait(self.POLL_SECONDS):
            try:
                self.sweep()
            except Exception as e:  # noqa: BLE001 - retried on the next poll / final sweep
                log.warning("segment upload failed, will retry: %s", e)

    def sweep(self) -> int:
        """Upload and checkpoint every newly listed segment; returns how many."""
        path = os.path.join(self.out_dir, A.PLAYLIST_NAME)
        if not os.path.exists(path) or self.canceled.is_set():  # nothing is written for a canceled job
            return 0
        with self._lock:
            listed = m3u8.load(path).segments
            count = 0
            for seg in listed:
                index = int(seg.uri.split("_")[-1].split(".")[0])
                if index < self.next_index:
                    continue
                if index != self.next_index:
                    raise RuntimeError(f"segment {index} listed before {self.next_index}")
                local = os.path.join(self.out_dir, seg.uri)
                # EXTINF comes from the packets, not from the muxer's estimate (DESIGN §10)
                with open(local, "rb") as fh:
                    timing = segment_timing(video_pts(fh.read()), self.nominal_frame_seconds)
                size = self.ctx.objects.upload_file(local, self.ctx.settings.output_bucket,
                                                    J.output_key(self.job_id, self.name, seg.uri))
                self.ctx.store.add_segment(self.job_id, self.name, index, asdict(timing), size)
                os.remove(local)
                self.next_index += 1
                count += 1
            return count

    def finish(self, attempts: int = 4) -> None:
        """Stop polling, then upload what is left, retrying with backoff (0.5, 1, 2 s)."""
        self._halt.set()
        self.join(timeout=30)
        for attempt in range(attempts):
            try:
                self.sweep()
                return
            except Exception as e:  # noqa: BLE001
                if attempt == attempts - 1:
                    raise
                log.warning("segment upload failed (attempt %d), retrying: %s", attempt + 1, e)
                time.sleep(0.5 * 2 ** attempt)
