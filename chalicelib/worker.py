"""The transcode worker loop (the container's process): poll -> lease -> ffmpeg -> record.

* takes one message at a time: from the high-priority task queue first, then from the first
  queue (the tasks that make normal jobs playable: their first chunk and audio), then from the
  normal queue, so a high job behind a full backlog starts as soon as a worker finishes its
  current task and a new upload's first chunk waits for no other job's later chunks; a message
  the long poll returns on its first delivery is traded for a high one waiting
  (``Worker.receive``);
* a heartbeat thread extends the message's visibility timeout while ffmpeg runs, so a long
  task is never redelivered to a second worker, and a crashed worker's message
  reappears within one visibility timeout;
* success or a permanent failure (bad input) deletes the message; a transient failure leaves
  it with a backoff visibility (5 s x 2^(receives-1), at most 5 minutes) for SQS to redeliver,
  and the redrive policy moves it to the dead-letter queue after maxReceiveCount;
* SIGTERM/SIGINT (what ECS sends before ``stopTimeout``) stops ffmpeg and releases the
  message at once (visibility 0) so another worker can take it;
* while a message is in hand the task holds ECS scale-in protection (``TaskProtection``, for
  the task's time bound), cleared when the queue has nothing more for it: scale-in stops idle
  tasks, never an encode.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from typing import Any, Callable

from aws_lambda_powertools import Logger

from chalicelib.config import Settings
from chalicelib.domain.backoff import exponential_backoff
from chalicelib.domain.errors import PermanentError, describe
from chalicelib.services.context import Context
from chalicelib.services.transcode import JobCanceled, TaskLeased, TranscodeTaskRunner

# service "vodpipe" is the parent of the services' loggers ("vodpipe.transcode" ...): their
# lines come out as JSON with job_id / rendition (the task's name) / attempt / sqs_message_id.
logger = Logger(service="vodpipe")
logger.append_keys(component="transcoder")

#: A transiently failed message comes back after 5 s x 2^(receives-1), at most 300 s.
BACKOFF_BASE_SECONDS = 5
MAX_BACKOFF_SECONDS = 300
#: Visibility given back to a message whose task another worker holds the lease of.
LEASED_RETRY_SECONDS = 10



def _first_delivery(message: dict) -> bool:
    """True when SQS delivers ``message`` for the first time (``ApproximateReceiveCount``)."""
    return int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1)) <= 1

class Heartbeat(threading.Thread):
    """Extends a message's visibility to ``timeout`` seconds every ``timeout / 3`` seconds,
    for at most ``max_seconds`` in all: then it stops extending and calls ``on_overdue()``
    (the task is stopped as runaway), so no message is kept invisible forever."""

    def __init__(self, ctx: Context, queue: str, receipt: str, timeout: int, max_seconds: float | None = None,
                 on_overdue: Callable[[], None] | None = None):
        super().__init__(daemon=True)
        self.ctx, self.queue, self.receipt, self.timeout = ctx, queue, receipt, timeout
        self.max_seconds, self.on_overdue = max_seconds, on_overdue
        self._halt = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self._halt.wait(max(1.0, self.timeout / 3)):
            if self.max_seconds is not None and time.monotonic() - started > self.max_seconds:
                logger.error("task overran its bound; visibility no longer extended",
                             extra={"bound_seconds": self.max_seconds})
                if self.on_overdue:
                    self.on_overdue()
                return
            try:
                self.ctx.queues.change_visibility(self.queue, self.receipt, self.timeout)
            except Exception:  # noqa: BLE001 - a missed heartbeat only risks a redelivery
                logger.exception("visibility heartbeat failed")

    def stop(self) -> None:
        self._halt.set()


class Worker:
    """One worker task. ``run(burst=True)`` returns when the queue is empty (tests, benches);
    ``max_tasks`` stops after that many messages. ``ctx`` defaults to one built from the
    environment; ``worker_id`` (default ``<host>-<pid>``) names the worker on task leases;
    ``workdir`` holds ffmpeg's output (``TranscodeTaskRunner``)."""

    def __init__(self, ctx: Context | None = None, worker_id: str | None = None, workdir: str | None = None):
        self.ctx = ctx or Context()
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.runner = TranscodeTaskRunner(self.ctx, workdir, owner=self.worker_id)
        self._stopping = threading.Event()
        self._busy = False
        self._exit_when_idle = False
        self.handled = 0

    def stop(self, *_: Any) -> None:
        """Ask the loop to finish: the running ffmpeg is stopped, its message released.
        From a signal handler while idle (in a long poll), exit at once."""
        self._stopping.set()
        self.runner.stop()
        if self._exit_when_idle and not self._busy:
            raise SystemExit(0)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop the worker (main thread only)."""
        self._exit_when_idle = True
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self, burst: bool = False, max_tasks: int | None = None) -> int:
        """Poll and handle messages until stopped (or the queue is empty with ``burst``).
        Returns the number of messages handled."""
        s = self.ctx.settings
        logger.info("worker started", extra={"worker_id": self.worker_id, "queues": list(s.task_queues)})
        while not self._stopping.is_set():
            msgs = self.receive(burst)
            if not msgs:
                self.ctx.protection.release()
                if burst:
                    break
                continue
            for queue, m in msgs:
                self._busy = True
                try:
                    self.handle(m, queue)
                finally:
                    self._busy = False
                self.handled += 1
            if max_tasks and self.handled >= max_tasks:
                break
        self.ctx.protection.release()
        logger.info("worker stopped", extra={"worker_id": self.worker_id, "handled": self.handled})
        return self.handled

    def receive(self, burst: bool = False) -> list[tuple[str, dict]]:
        """The next message as ``[(queue, message)]`` (or ``[]``), by the fairness rule
        (docs/architecture.md, "Which task runs next"): the high, first and normal queues in
        that order without waiting; when all three are empty (and not ``burst``), one long
        poll (``poll_wait_seconds``) of the first queue, where a new upload's first tasks
        arrive and wake the worker at once. Work that arrives only in the high or the normal
        queue during that poll waits for its end (at most ``poll_wait_seconds``).

        When high and first work arrive together the parked worker would take the first
        task. So a message the long poll returns on its first delivery is checked against the
        high queue once more: if that has a message, the other is released (visibility 0)
        and the high one taken. Only on a first delivery: a release counts as a receive
        towards the redrive policy's ``maxReceiveCount``, so a message gives up at most one."""
        s = self.ctx.settings
        for queue in s.task_queues:  # in order, without waiting
            msgs = self.ctx.queues.receive(queue, 1, 0, s.task_visibility_timeout)
            if msgs:
                return [(queue, m) for m in msgs]
        if burst:
            return []
        # all empty: wait where a new upload's first tasks arrive; whatever the wait returns
        # (or nothing), the next receive starts again at the high queue
        parked = s.tasks_first_queue or s.tasks_queue
        msgs = self.ctx.queues.receive(parked, 1, s.poll_wait_seconds, s.task_visibility_timeout)
        if msgs and s.tasks_high_queue and _first_delivery(msgs[0]):
            urgent = self.ctx.queues.receive(s.tasks_high_queue, 1, 0, s.task_visibility_timeout)
            if urgent:
                self.ctx.queues.change_visibility(parked, msgs[0]["ReceiptHandle"], 0)
                return [(s.tasks_high_queue, m) for m in urgent]
        return [(parked, m) for m in msgs]

    def handle(self, m: dict, queue: str | None = None) -> None:
        """Handle one SQS message received from ``queue`` (default: the normal task queue;
        see the module docstring for the outcomes). Never raises: whatever goes wrong, the
        message is left for SQS to redeliver."""
        try:
            self._handle(m, queue or self.ctx.settings.tasks_queue)
        except Exception:  # noqa: BLE001 - e.g. DynamoDB down while recording a failure
            logger.exception("could not finish handling the message; SQS will redeliver it")

    def _handle(self, m: dict, q: str) -> None:
        s = self.ctx.settings
        receipt = m["ReceiptHandle"]
        receives = int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        try:
            body = json.loads(m["Body"])
            if not isinstance(body, dict) or not {"job_id", "task", "kind"} <= body.keys():
                raise ValueError("not a task message")
        except ValueError:  # JSONDecodeError too
            logger.error("malformed task message left for the dead-letter queue", extra={"body": m["Body"][:200]})
            return
        logger.append_keys(job_id=body.get("job_id"), rendition=body.get("task"), attempt=receives,
                           sqs_message_id=m.get("MessageId"))
        self.ctx.protection.protect(self.runner.time_bound(body) + s.heartbeat_grace_seconds)
        beat = Heartbeat(self.ctx, q, receipt, s.task_visibility_timeout,
                         self.runner.time_bound(body) + s.heartbeat_grace_seconds,
                         self.runner.overdue)
        beat.start()
        try:
            outcome = self.runner.run(body)
            self.ctx.queues.delete(q, receipt)
            logger.info("task done", extra={"outcome": outcome.status, "finalized": outcome.finalized,
                                            "seconds": round(outcome.seconds, 2),
                                            "cpu_seconds": round(outcome.cpu_seconds, 2)})
        except PermanentError as e:
            logger.warning("task failed permanently", extra={"error": e.as_dict()})
            self.runner.fail(body, e)
            self.ctx.queues.delete(q, receipt)
        except JobCanceled as e:
            logger.info("job canceled: task dropped", extra={"reason": str(e)})
            self.ctx.store.fail_task(body["job_id"], body["task"], {"code": "CANCELED", "message": str(e)})
            self.ctx.queues.delete(q, receipt)
        except TaskLeased as e:
            logger.info("task leased by another worker; message left for later", extra={"reason": str(e)})
            self._safe_visibility(q, receipt, LEASED_RETRY_SECONDS)
        except Exception as e:  # noqa: BLE001 - anything else is transient: retry via SQS
            if self._stopping.is_set():
                logger.info("stopping: checkpoint kept, task released for another worker")
                self._safe_visibility(q, receipt, 0)
            else:
                delay = exponential_backoff(receives, BACKOFF_BASE_SECONDS, MAX_BACKOFF_SECONDS)
                logger.exception("task failed, will be retried", extra={"retry_in_seconds": delay, "error": str(e)})
                try:
                    self.ctx.store.update_task(body["job_id"], body["task"], last_error={
                        **describe(e), "attempt": receives})
                except Exception:  # noqa: BLE001
                    logger.exception("could not record the error")
                self._safe_visibility(q, receipt, delay)
        finally:
            beat.stop()
            logger.remove_keys(["job_id", "rendition", "attempt", "sqs_message_id"])

    def _safe_visibility(self, queue: str, receipt: str, seconds: int) -> None:
        try:
            self.ctx.queues.change_visibility(queue, receipt, seconds)
        except Exception:  # noqa: BLE001
            logger.exception("could not change visibility")


def main() -> int:
    """Container entrypoint: run until SIGTERM (or, with ``VODPIPE_WORKER_BURST=1``, until the
    task queues are empty). Settings from the environment (``chalicelib.config``); returns the
    exit status 0."""
    settings = Settings.from_env()
    worker = Worker(Context(settings), workdir=settings.workdir)
    worker.install_signal_handlers()
    worker.run(burst=settings.worker_burst)
    return 0
