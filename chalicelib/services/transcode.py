"""Transcode use case: run one task (a chunk of the timeline encoded to every video
rendition, with its sprite tiles and, for the chunk that holds it, the poster; or the audio
rendition) from its SQS message under a lease, record
it, publish what became playable, and finalize the job when it was the last task.

Each task writes only under ``<job_id>/`` of the output bucket: segments under
``<job_id>/<rendition>/``, sprite sheets and the poster under ``<job_id>/thumbnails/``. The
playlists are written by ``finalize.publish`` from what every task recorded.
"""
from __future__ import annotations

import logging
import resource
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from chalicelib import faults, metrics
from chalicelib.aws.table import now_iso, seconds_since
from chalicelib.domain import ffmpeg_args
from chalicelib.domain import jobs
from chalicelib.domain.errors import PermanentError, RunTimeout, SourceUnreachable, TransientError, VodpipeError
from chalicelib.domain.progress import Throttle
from chalicelib.tools import ffmpeg

from .audio_task import encode_audio
from .text_task import make_text
from .chunk_task import encode_chunk
from .context import Context
from .finalize import finalize, publish
from .job_failure import fail_job

log = logging.getLogger("vodpipe.transcode")
Unit = metrics.Unit

#: Minimum seconds between two JobProgress events of one task.
PROGRESS_EVENT_SECONDS = 10.0
#: How often a running task checks whether its job was canceled (seconds).
CANCEL_POLL_SECONDS = 2.0



def _process_cpu() -> float:
    """CPU seconds (user + system) this process has used, all its threads (not its children)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

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


class TranscodeTaskRunner:
    """Runs transcode-task messages for one worker, one at a time: takes the task's lease
    (and keeps it, watching for a cancel), runs the task kind (``chunk_task``, ``audio_task``, ``text_task``;
    to them it is their ``EncodeRuntime``), records the outcome and finalizes the job after its
    last task. ``proc_factory`` makes the ffmpeg process wrapper (the worker keeps a handle to
    stop it on SIGTERM); ``workdir`` holds the tasks' scratch output (default: the system's
    temporary directory); ``owner`` names the worker on the leases it takes."""

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
        """Wall-clock bound (s) of each ffmpeg run of the task ``msg``, from the media seconds
        it covers and the minimum-speed settings (``ffmpeg_args.run_time_limit``)."""
        s = self.ctx.settings
        return ffmpeg_args.run_time_limit(ffmpeg_args.task_media_seconds(msg), s.min_speed, s.min_run_seconds)

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
                if self.ctx.store.get_job_status(job_id) == jobs.CANCELED:
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
        job_id, name = msg["job_id"], msg["task"]
        current = ctx.store.get(job_id)
        if current is None:
            log.warning("task %s/%s: job does not exist, dropping", job_id, name)
            return TaskOutcome("skipped")
        if current[0]["status"] == jobs.COMPLETE and current[0].get("completion_announced") is False:
            # its finalizer died between the status and the announcement: announce it now
            return TaskOutcome("skipped", finalized=self._after_task(job_id))
        if current[0]["status"] in jobs.TERMINAL:
            # The job already failed (or completed): this task will never run; say so.
            ctx.store.fail_task(job_id, name, {"code": "JOB_ENDED", "message": f"not run: the job is {current[0]['status']}"})
            return TaskOutcome("skipped")
        job = current[0]
        state, task = ctx.store.start_task(job_id, name, self.owner, s.task_visibility_timeout)
        if state == "done":
            finished = ctx.store.get_task(job_id, name) or {}
            if finished.get("status") == jobs.FAILED:
                # the task's failure was recorded but not its job's (a worker killed between the
                # two writes of ``fail``; the job is not terminal, see above): record it now
                fail_job(ctx, job_id, {**(finished.get("error") or {}), "task": name}, metadata=msg.get("metadata"))
                return TaskOutcome("skipped")
            # Already complete (duplicate delivery): still make sure the job gets finalized.
            return TaskOutcome("skipped", finalized=self._after_task(job_id))
        if state == "leased":
            raise TaskLeased(f"task {job_id}/{name} is leased by another worker")
        ctx.store.set_job_status(job_id, jobs.PROCESSING, started_at=now_iso())
        faults.check("task_started", f"{job_id}/{name}")
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
        worker_cpu = _process_cpu()
        job_id, name, kind = msg["job_id"], msg["task"], msg["kind"]
        src = msg["source"]
        # every read asks for exactly the bytes ingest probed (pinned source, docs/state.md)
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
                    ctx.events.publish("JobProgress", job_id, jobs.PROCESSING, {"task": name, "task_progress": pct},
                                      msg.get("metadata"))

        try:
            faults.check("task_start", f"{job_id}/{name}")
            if kind == "chunk":
                stats, res = encode_chunk(self, url, out_dir, job_id, msg, on_progress)
            elif kind == "audio":
                stats, res = encode_audio(self, url, out_dir, job_id, msg, on_progress,
                                          lambda: publish(ctx, job_id) is not None)
            elif kind == "text":
                stats, res = make_text(self, url, out_dir, job_id, msg, on_progress)
            else:
                raise PermanentError("BAD_TASK", f"unknown task kind {kind!r}")
        except SourceUnreachable:
            ctx.objects.pin_source(*pin)  # gone or overwritten: a permanent, named error
            raise
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        # the worker's own CPU around ffmpeg (uploads, checkpoints, heartbeats), for the bench
        stats["worker_cpu_seconds"] = round(_process_cpu() - worker_cpu, 2)
        ctx.store.complete_task(job_id, name, stats)
        faults.check("task_completed", f"{job_id}/{name}")
        values = [("TranscodeSeconds", res[0], Unit.Seconds), ("BytesOut", stats.get("total_bytes", 0), Unit.Bytes)]
        media_seconds = ffmpeg_args.task_media_seconds(msg)
        if res[0] > 0:
            values.append(("TranscodeSpeed", media_seconds / res[0], Unit.NoUnit))
        if int(task.get("attempts") or 1) == 1 and job.get("uploaded_at"):
            values.append(("TimeQueued", seconds_since(job["uploaded_at"], task.get("started_at")), Unit.Seconds))
        metrics.emit(values, kind=kind)
        return TaskOutcome("complete", finalized=self._after_task(job_id), seconds=res[0], cpu_seconds=res[1])

    def fail(self, msg: dict[str, Any], error: PermanentError) -> bool:
        """Record a permanent failure of the task of ``msg`` (a task message) and of its job
        (the job's error names the ``task``); publish ``JobFailed`` once (``job_failure``).
        Returns True when this call moved the job to ``failed``. Raises AWS errors."""
        job_id, name = msg["job_id"], msg["task"]
        self.ctx.store.fail_task(job_id, name, error.as_dict())
        faults.check("task_failed", f"{job_id}/{name}")  # a kill here: the redelivery records the job's failure
        return fail_job(self.ctx, job_id, {**error.as_dict(), "task": name}, metadata=msg.get("metadata"))

    # ---------------------------------------------------------------------------------
    @property
    def interrupted(self) -> bool:
        """The current run was stopped: canceled, lease lost, overdue or SIGTERM."""
        return any(e.is_set() for e in (self._canceled, self._lease_lost, self._overdue, self._stop_requested))

    @property
    def canceled(self) -> threading.Event:
        """Set when the running task's job was canceled (checked by the segment uploader)."""
        return self._canceled

    def raise_if_interrupted(self, job_id: str, name: str) -> None:
        """Raise what stopped the current run: ``JobCanceled``, ``TaskLeased`` (lease lost) or
        ``RunTimeout`` (overran its bound); nothing when it was not interrupted."""
        if self._canceled.is_set():
            raise JobCanceled(f"job {job_id} was canceled while {name} was running")
        if self._lease_lost.is_set():
            raise TaskLeased(f"lease on {job_id}/{name} lost while encoding")
        if self._overdue.is_set():
            raise RunTimeout(f"task {job_id}/{name} overran its time bound and was stopped")

    def ffmpeg(self, args: list[str], duration: float, on_progress, what: str, url: str,
               check_result: bool = True, measure_quality: bool = False, info_log: bool = False,
               niceness: int = 0) -> ffmpeg.RunResult:
        """Run ffmpeg over ``duration`` seconds of media within the task's time bound, as the
        process ``stop()``/``overdue()`` can stop. With ``check_result``, raise what
        interrupted it or what its failure means (``chalicelib.tools.ffmpeg.check``).
        ``info_log``: keep ffmpeg's info-level log in the result (``FfmpegProcess.run``)."""
        self.current = proc = self.proc_factory()
        try:
            res = proc.run(args, duration, on_progress, timeout=self._time_limit, measure_quality=measure_quality,
                           info_log=info_log, niceness=niceness)
        finally:
            self.current = None
        if check_result:
            self.raise_if_interrupted(*(self.current_task or ("?", what)))
            ffmpeg.check(res, what, url)
        return res

    # ---------------------------------------------------------------------------------
    def _after_task(self, job_id: str) -> bool:
        """Publish what became playable; finalize the job when every task is done. Returns
        True when this call completed the job."""
        if finalize(self.ctx, job_id):
            return True
        publish(self.ctx, job_id)
        return False
