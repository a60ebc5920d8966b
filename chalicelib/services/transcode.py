"""Transcode use case: run one task (a video rendition, the audio rendition or the
thumbnails) from its SQS message, upload the output, record it, and finalize the job when it
was the last task.

Each task writes only under ``<job_id>/<task name>/`` (thumbnails under
``<job_id>/thumbnails/``) of the output bucket. Finalizing writes ``master.m3u8`` from the
stats every task stored about its own output, then moves the job to ``complete`` with a
conditional write: exactly one ``JobCompleted`` even when two tasks finish at once or a
message is delivered twice.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from chalicelib import faults, metrics
from chalicelib.aws.jobstore import now_iso, seconds_since
from chalicelib.domain import ffmpeg_args as A
from chalicelib.domain import jobs as J
from chalicelib.domain.errors import PermanentError, RunTimeout, SourceUnreachable, TransientError, VodpipeError
from chalicelib.domain.ladder import AudioRendition, ThumbnailPlan, VideoRendition
from chalicelib.domain.mpegts import audio_span
from chalicelib.domain.playlist import (aac_codec_string, extinf_from_timing, h264_codec_string,
                                        h264_codec_string_from_probe, measure_segments, measured_frame_rate,
                                        media_playlist)
from chalicelib.domain.progress import Throttle
from chalicelib.domain.thumbnails import sprite_vtt
from chalicelib.tools import ffmpeg

from .checkpoints import SegmentUploader
from .context import Context
from .finalize import finalize

log = logging.getLogger("vodpipe.transcode")
Unit = metrics.Unit

#: A video whose decoded duration falls short of the probed duration by more than this
#: fraction (and at least TRUNCATION_MIN_SECONDS) is truncated: ffmpeg exits 0 on such files.
TRUNCATION_FRACTION = 0.10
TRUNCATION_MIN_SECONDS = 0.5


def _fields(cls, spec: dict) -> dict:
    names = cls.__dataclass_fields__.keys()
    return {k: spec[k] for k in names if k in spec}


#: Minimum seconds between two JobProgress events of one task.
PROGRESS_EVENT_SECONDS = 10.0
#: How often a running task checks whether its job was canceled (seconds).
CANCEL_POLL_SECONDS = 2.0


class TaskLeased(TransientError):
    """Another worker holds the task's lease: leave the message for later."""


class JobCanceled(VodpipeError):
    """The job was canceled while the task ran: drop the message, write nothing more."""


@dataclass
class TaskOutcome:
    """What running a task did: ``status`` is ``complete``, ``skipped`` (already terminal or
    job already terminal) or ``failed``; ``finalized`` when this task completed the job;
    ``seconds``/``cpu_seconds`` of ffmpeg work."""

    status: str
    finalized: bool = False
    seconds: float = 0.0
    cpu_seconds: float = 0.0


class TaskRunner:
    """Runs task messages for one worker. ``proc_factory`` makes the ffmpeg process wrapper
    (the worker keeps a handle to stop it on SIGTERM)."""

    def __init__(self, ctx: Context, workdir: str | None = None,
                 proc_factory: Callable[[], ffmpeg.FfmpegProcess] = ffmpeg.FfmpegProcess, owner: str = "worker"):
        self.ctx = ctx
        self.workdir = workdir or tempfile.gettempdir()
        self.proc_factory = proc_factory
        self.owner = owner
        self.current: ffmpeg.FfmpegProcess | None = None
        self.current_task: tuple[str, str] | None = None
        self._time_limit: float | None = None
        self._overdue = threading.Event()
        self._lease_lost = threading.Event()
        self._canceled = threading.Event()
        self._stop_requested = threading.Event()

    def time_bound(self, msg: dict[str, Any]) -> float:
        """Wall-clock bound (s) of each ffmpeg run of the task ``msg``, from its probed
        duration and the minimum-speed settings (``ffmpeg_args.run_time_limit``)."""
        s = self.ctx.settings
        return A.run_time_limit(float(msg.get("duration") or 0), s.min_speed, s.min_run_seconds)

    def overdue(self) -> None:
        """The running task overran its bound (the worker's heartbeat cap): stop ffmpeg; the
        attempt ends with ``RunTimeout`` (transient, so the redrive count still applies)."""
        self._overdue.set()
        if self.current:
            self.current.stop()

    def stop(self) -> None:
        """Graceful stop (SIGTERM): stop ffmpeg; the running task keeps its checkpoints and
        gives its lease up, so another worker resumes it at once."""
        self._stop_requested.set()
        if self.current:
            self.current.stop()

    def _keep_lease(self, job_id: str, name: str, stop: threading.Event) -> None:
        """Every ``CANCEL_POLL_SECONDS``: stop ffmpeg if the job was canceled; every third of
        the lease: renew it (stop ffmpeg if it was lost)."""
        lease = self.ctx.settings.task_visibility_timeout
        next_renewal = time.monotonic() + max(1.0, lease / 3)
        while not stop.wait(CANCEL_POLL_SECONDS):
            try:
                if self.ctx.store.get_job_status(job_id) == J.CANCELED:
                    log.info("job %s canceled; stopping ffmpeg for %s", job_id, name)
                    self._canceled.set()
                elif time.monotonic() >= next_renewal:
                    next_renewal = time.monotonic() + max(1.0, lease / 3)
                    if not self.ctx.store.renew_lease(job_id, name, self.owner, lease):
                        log.warning("lease on %s/%s lost; stopping ffmpeg", job_id, name)
                        self._lease_lost.set()
                if self._canceled.is_set() or self._lease_lost.is_set():
                    if self.current:
                        self.current.stop()
                    return
            except Exception:  # noqa: BLE001 - a missed renewal only risks a second worker
                log.exception("lease renewal failed")

    # ---------------------------------------------------------------------------------
    def run(self, msg: dict[str, Any]) -> TaskOutcome:
        """Run one task message (the JSON body written by ingest).

        Raises ``PermanentError`` for bad input (the caller fails the job) and anything else
        for transient failures (the caller lets SQS redeliver)."""
        ctx, s = self.ctx, self.ctx.settings
        job_id, name, kind = msg["job_id"], msg["task"], msg["kind"]
        current = ctx.store.get(job_id)
        if current is None:
            log.warning("task %s/%s: job does not exist, dropping", job_id, name)
            return TaskOutcome("skipped")
        if current[0]["status"] in J.TERMINAL:
            # The job already failed (or completed): this task will never run; say so.
            ctx.store.fail_task(job_id, name, {"code": "JOB_ENDED", "message": f"not run: the job is {current[0]['status']}"})
            return TaskOutcome("skipped")
        job = current[0]
        state, task = ctx.store.start_task(job_id, name, self.owner, s.task_visibility_timeout)
        if state == "done":
            # Already complete (duplicate delivery): still make sure the job gets finalized.
            return TaskOutcome("skipped", finalized=self._maybe_finalize(job_id))
        if state == "leased":
            raise TaskLeased(f"task {job_id}/{name} is leased by another worker")
        ctx.store.set_job_status(job_id, J.PROCESSING, started_at=now_iso())
        self.current_task = (job_id, name)
        self._lease_lost.clear()
        self._canceled.clear()
        self._overdue.clear()
        stop_lease = threading.Event()
        keeper = threading.Thread(target=self._keep_lease, args=(job_id, name, stop_lease), daemon=True)
        keeper.start()
        try:
            return self._run_acquired(msg, task, job)
        except BaseException:
            # This attempt is over (stop, transient error, bad input): give the lease up so the
            # redelivered message is not refused as "leased" until the lease expires.
            try:
                ctx.store.release_lease(job_id, name, self.owner)
            except Exception:  # noqa: BLE001 - the lease then simply expires
                log.exception("could not release the lease of %s/%s", job_id, name)
            raise
        finally:
            stop_lease.set()
            self.current_task = None

    def _run_acquired(self, msg: dict[str, Any], task: dict, job: dict) -> TaskOutcome:
        ctx, s = self.ctx, self.ctx.settings
        job_id, name, kind = msg["job_id"], msg["task"], msg["kind"]
        src = msg["source"]
        # every read asks for exactly the bytes ingest probed (DESIGN §3: pinned source)
        pin = (src["bucket"], src["key"], src.get("etag") or job.get("source_etag") or "",
               src.get("version_id") or job.get("source_version_id"))
        ctx.objects.pin_source(*pin)
        url = ctx.objects.presign_get(pin[0], pin[1], s.presign_expiry, pin[3])
        self._time_limit = self.time_bound(msg)
        out_dir = tempfile.mkdtemp(prefix=f"vodpipe-{job_id}-{name}-", dir=self.workdir)
        throttle = Throttle(s.progress_min_step, s.progress_min_interval)

        last_event = [float("-inf")]

        def on_progress(pct: float) -> None:
            now = time.monotonic()
            if throttle.should_write(pct, now):
                ctx.store.set_task_progress(job_id, name, pct)
                if now - last_event[0] >= PROGRESS_EVENT_SECONDS and pct < 100:
                    last_event[0] = now
                    ctx.events.publish("JobProgress", job_id, J.PROCESSING, {"task": name, "task_progress": pct})

        try:
            faults.check("task_start", f"{job_id}/{name}")
            spec = msg["spec"]
            if kind == "video":
                stats, res = self._video(url, out_dir, job_id, VideoRendition(**_fields(VideoRendition, spec)),
                                         float(msg["duration"]), on_progress, task, float(msg.get("frame_rate") or 0))
            elif kind == "audio":
                stats, res = self._audio(url, out_dir, job_id, AudioRendition(**_fields(AudioRendition, spec)),
                                         float(msg["duration"]), on_progress)
            elif kind == "thumbnails":
                stats, res = self._thumbnails(url, out_dir, job_id, ThumbnailPlan(**_fields(ThumbnailPlan, spec)),
                                              float(msg["duration"]), float(msg.get("frame_rate") or 25))
            else:
                raise PermanentError("BAD_TASK", f"unknown task kind {kind!r}")
        except SourceUnreachable:
            ctx.objects.pin_source(*pin)  # gone or overwritten: a permanent, named error
            raise
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        ctx.store.complete_task(job_id, name, stats)
        values = [("TranscodeSeconds", res[0], Unit.Seconds), ("BytesOut", stats.get("total_bytes", 0), Unit.Bytes)]
        if res[0] > 0:
            values.append(("TranscodeSpeed", float(msg["duration"]) / res[0], Unit.NoUnit))
        if int(task.get("attempts") or 1) == 1 and job.get("uploaded_at"):
            values.append(("TimeQueued", seconds_since(job["uploaded_at"], task.get("started_at")), Unit.Seconds))
        metrics.emit(values, kind=kind)
        return TaskOutcome("complete", finalized=self._maybe_finalize(job_id), seconds=res[0], cpu_seconds=res[1])

    def fail(self, msg: dict[str, Any], error: PermanentError) -> bool:
        """Record a permanent failure of the task and its job; publish ``JobFailed`` once.
        Returns True when this call moved the job to ``failed``."""
        ctx = self.ctx
        job_id, name = msg["job_id"], msg["task"]
        ctx.store.fail_task(job_id, name, error.as_dict())
        if ctx.store.set_job_status(job_id, J.FAILED, error={**error.as_dict(), "task": name}, completed_at=now_iso()):
            ctx.events.publish("JobFailed", job_id, J.FAILED, {"error": {**error.as_dict(), "task": name}})
            metrics.emit([("JobsFailed", 1, Unit.Count)])
            return True
        return False

    # ---------------------------------------------------------------------------------
    def _raise_if_interrupted(self, job_id: str, name: str) -> None:
        if self._canceled.is_set():
            raise JobCanceled(f"job {job_id} was canceled while {name} was running")
        if self._lease_lost.is_set():
            raise TaskLeased(f"lease on {job_id}/{name} lost while encoding")
        if self._overdue.is_set():
            raise RunTimeout(f"task {job_id}/{name} overran its time bound and was stopped")

    def _ffmpeg(self, args: list[str], duration: float, on_progress, what: str, url: str,
                check_result: bool = True) -> ffmpeg.RunResult:
        self.current = proc = self.proc_factory()
        try:
            res = proc.run(args, duration, on_progress, timeout=self._time_limit)
        finally:
            self.current = None
        if check_result:
            self._raise_if_interrupted(*(self.current_task or ("?", what)))
            ffmpeg.check(res, what, url)
        return res

    def _upload_audio_hls(self, out_dir: str, job_id: str, name: str) -> tuple[dict, bytes]:
        files = sorted(f for f in os.listdir(out_dir) if f.endswith(".ts"))
        # EXTINF from the segments' own packets (the muxer's estimate is off, e.g. by 4 AAC
        # frames on an MP2 source), then the playlist is ours (DESIGN §10)
        spans = []
        for f in files:
            with open(os.path.join(out_dir, f), "rb") as fh:
                spans.append(audio_span(fh.read()))
        playlist = media_playlist(list(zip(files, extinf_from_timing([a for a, _ in spans], spans[-1][1]))))
        with open(os.path.join(out_dir, A.PLAYLIST_NAME), "w") as fh:
            fh.write(playlist)
        sizes = {f: os.path.getsize(os.path.join(out_dir, f)) for f in files}
        seg_stats = measure_segments(playlist, sizes)
        # Segments first, the playlist last: a reader never sees a playlist naming a missing segment.
        self.ctx.objects.upload_files([(os.path.join(out_dir, f), J.output_key(job_id, name, f)) for f in files],
                                      self.ctx.settings.output_bucket)
        self.ctx.objects.upload_file(os.path.join(out_dir, A.PLAYLIST_NAME), self.ctx.settings.output_bucket,
                                     J.output_key(job_id, name, A.PLAYLIST_NAME))
        with open(os.path.join(out_dir, files[0]), "rb") as fh:
            head = fh.read(256 * 1024)
        return seg_stats.to_dict(), head

    def _video(self, url, out_dir, job_id, r: VideoRendition, duration, on_progress, task: dict,
               frame_rate: float = 0.0):
        """Encode (or resume) one video rendition with a checkpoint per uploaded segment.

        Segments already recorded in the task's ``segs`` are kept; the run starts at the end
        of the last one (DESIGN §9). Each segment ffmpeg finishes is uploaded and checkpointed
        while ffmpeg goes on; the VOD media playlist is written from the checkpoints at the end."""
        s, store = self.ctx.settings, self.ctx.store
        done = list(task.get("segs") or [])
        first = len(done)
        # Resume just after the last frame already segmented (source seconds; DESIGN §9)
        start = A.resume_point(float(done[-1]["last_frame"])) if done else 0.0
        finished = bool(done) and A.source_time(float(done[-1]["end"])) >= duration - 0.05
        res = None
        if first:
            log.info("resuming %s/%s at segment %d (%.3f s)", job_id, r.name, first, start)
            store.update_task(job_id, r.name, resumed_at_segment=first, resumed_at_seconds=start)
        if not finished:
            remaining = max(duration - start, 0.001)

            def progress(pct: float) -> None:
                on_progress(round(100.0 * (start + pct / 100.0 * remaining) / duration, 1) if pct < 100 else 100.0)

            uploader = SegmentUploader(self.ctx, job_id, r.name, out_dir, first, self._canceled,
                                       1.0 / float(r.frame_rate or frame_rate or 30))
            uploader.start()
            try:
                res = self._ffmpeg(A.video_args(url, out_dir, r, s.x264_preset, s.ffmpeg_threads, start=start,
                                                start_number=first, duration=duration),
                                   remaining, progress, f"video rendition {r.name}", url, check_result=False)
            finally:
                uploader.finish()
            self._raise_if_interrupted(job_id, r.name)
            ffmpeg.check(res, f"video rendition {r.name}", url)
            decoded = start + res.out_time
            if duration - decoded > max(TRUNCATION_MIN_SECONDS, TRUNCATION_FRACTION * duration):
                raise PermanentError("TRUNCATED_MEDIA", f"only {decoded:.2f} s of the {duration:.2f} s video could be "
                                                        f"decoded (the file is truncated or corrupt)")
        segs = store.get_task(job_id, r.name).get("segs") or []
        if not segs:
            raise PermanentError("NO_DECODABLE_FRAMES", f"no video frame could be decoded for {r.name}")
        names = [A.SEGMENT_PATTERN % int(x["index"]) for x in segs]
        durations = extinf_from_timing([float(x["start"]) for x in segs], float(segs[-1]["end"]))
        entries = list(zip(names, durations))
        text = media_playlist(entries)
        self.ctx.objects.put_bytes(s.output_bucket, J.output_key(job_id, r.name, A.PLAYLIST_NAME), text.encode())
        stats = measure_segments(text, {A.SEGMENT_PATTERN % int(x["index"]): int(x["bytes"]) for x in segs}).to_dict()
        stats["frames"] = sum(int(x["frames"]) for x in segs)
        # measured from the output: the first segment as stored (this run may not have made it)
        head = self.ctx.objects.get_bytes(s.output_bucket, J.output_key(job_id, r.name, entries[0][0]))
        seg_path = os.path.join(out_dir, "probe.ts")
        with open(seg_path, "wb") as fh:
            fh.write(head)
        v = next(st for st in ffmpeg.probe(seg_path)["streams"] if st.get("codec_type") == "video")
        codecs = h264_codec_string(head) or h264_codec_string_from_probe(v.get("profile"), v.get("level"))
        seconds, cpu = (res.seconds, res.cpu_seconds) if res else (0.0, 0.0)
        stats.update(codecs=codecs, out_width=int(v["width"]), out_height=int(v["height"]),
                     frame_rate=measured_frame_rate([int(x["frames"]) for x in segs], durations),
                     transcode_seconds=round(seconds, 2),
                     cpu_seconds=round(cpu, 2))
        return stats, (seconds, cpu)

    def _audio(self, url, out_dir, job_id, a: AudioRendition, duration, on_progress):
        res = self._ffmpeg(A.audio_args(url, out_dir, a, duration), duration, on_progress, "audio rendition", url)
        stats, _ = self._upload_audio_hls(out_dir, job_id, a.name)
        first = sorted(f for f in os.listdir(out_dir) if f.endswith(".ts"))[0]
        st = next(x for x in ffmpeg.probe(os.path.join(out_dir, first))["streams"] if x.get("codec_type") == "audio")
        stats.update(codecs=aac_codec_string(st.get("profile")), transcode_seconds=round(res.seconds, 2),
                     cpu_seconds=round(res.cpu_seconds, 2))
        return stats, (res.seconds, res.cpu_seconds)

    def _thumbnails(self, url, out_dir, job_id, t: ThumbnailPlan, duration, fps):
        poster, sprite, vtt = (os.path.join(out_dir, n) for n in ("poster.jpg", "sprite.jpg", "thumbnails.vtt"))
        r1 = self._ffmpeg(A.poster_args(url, poster, t, fps), 1.0, None, "poster", url)
        if not os.path.exists(poster):  # seek past the last decodable frame: take the first frame instead
            r1 = self._ffmpeg(A.poster_args(url, poster, ThumbnailPlan(**{**t.__dict__, "poster_time": 0.0}), fps),
                              1.0, None, "poster", url)
        r2 = self._ffmpeg(A.sprite_args(url, sprite, t, duration), duration, None, "sprite sheet", url)
        for path in (poster, sprite):
            if not os.path.exists(path):  # ffmpeg succeeded but decoded no frame for it
                raise PermanentError("NO_DECODABLE_FRAMES", f"no frame could be decoded for {os.path.basename(path)}")
        with open(vtt, "w") as fh:
            fh.write(sprite_vtt(t, duration))
        s = self.ctx.settings
        poster_key = J.output_key(job_id, "thumbnails", "poster.jpg")
        total = self.ctx.objects.upload_file(poster, s.output_bucket, poster_key)
        base = f"{s.output_base_url.rstrip('/')}/" if s.output_base_url else None
        self.ctx.events.publish("ThumbnailReady", job_id, J.PROCESSING, {  # as soon as the poster exists
            "poster": {"uri": f"s3://{s.output_bucket}/{poster_key}", **({"url": base + poster_key} if base else {})}})
        pairs = [(p, J.output_key(job_id, "thumbnails", os.path.basename(p))) for p in (sprite, vtt)]
        total += self.ctx.objects.upload_files(pairs, s.output_bucket)
        return ({"total_bytes": total, "tiles": t.count, "transcode_seconds": round(r1.seconds + r2.seconds, 2),
                 "cpu_seconds": round(r1.cpu_seconds + r2.cpu_seconds, 2)},
                (r1.seconds + r2.seconds, r1.cpu_seconds + r2.cpu_seconds))

    # ---------------------------------------------------------------------------------
    def _maybe_finalize(self, job_id: str) -> bool:
        got = self.ctx.store.get(job_id)
        if got is None:
            return False
        job, tasks = got
        if job["status"] in J.TERMINAL or not set(job.get("tasks") or []) <= set(job.get("done") or []):
            return False
        return finalize(self.ctx, job, tasks)
