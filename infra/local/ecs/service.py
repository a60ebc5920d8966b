"""ECS's part, played locally: the transcoder service's tasks as worker processes started from
the task definition (command, environment, log configuration, ``StopTimeout``), each with the
task role's credentials and an ECS agent endpoint (``agent.py``, scale-in protection).

A task's environment is what Fargate gives a container: the image's (``IMAGE_ENVIRONMENT``, the
``ENV`` of ``containers/transcoder/Dockerfile``, with PATH naming this machine's python and
ffmpeg), the task definition's ``Environment``, and what the agent adds (region, execution
environment, the agent's URI); locally also the role's access keys and the local cloud's
``overrides`` (the endpoint, the emulator's output URL, a caller's settings). Nothing else of
this process's environment: a variable the task definition lacks is missing here as on AWS.

The service's desired count follows the template's scaling policies (``autoscaling.py``) between
its minimum and maximum: tasks start when the backlog grows; on scale-in only tasks without
scale-in protection (idle ones) get SIGTERM; a task that dies is replaced while the desired
count says so. ``history`` keeps (time, visible messages, running tasks, desired) per
evaluation for ``vodpipe up`` and the closing numbers."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from chalicelib.domain.backoff import exponential_backoff
from chalicelib.domain.errors import ToolMissingError
from chalicelib.tools.ffmpeg import binaries
from chalicelib.tools.scheduling import tied_to_parent
from infra.local.ecs.agent import EcsAgent
from infra.local.ecs.autoscaling import Scaler, ScalingPolicy

log = logging.getLogger("vodpipe.local")
ROOT = Path(__file__).resolve().parents[3]
#: The ``ENV`` of ``containers/transcoder/Dockerfile`` (a unit test keeps them equal).
IMAGE_ENVIRONMENT = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "VODPIPE_WORKDIR": "/tmp"}


def image_environment() -> dict[str, str]:
    """The worker image's environment on this machine: ``IMAGE_ENVIRONMENT``, the checkout on
    PYTHONPATH (the image installs it), PATH with this Python's and ffmpeg's directories, and
    ``VODPIPE_FFMPEG``/``VODPIPE_FFPROBE`` naming this machine's binaries (the image's
    ffmpeg, found as ``chalicelib.tools.ffmpeg.binaries`` finds it). Without ffmpeg neither is
    set and the worker fails at start, as an image without it would."""
    env = {**IMAGE_ENVIRONMENT, "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8", "HOME": "/tmp"}
    dirs = [str(Path(sys.executable).parent)]
    try:
        ffmpeg, ffprobe = binaries()
    except ToolMissingError:
        pass
    else:
        env["VODPIPE_FFMPEG"], env["VODPIPE_FFPROBE"] = ffmpeg, ffprobe
        dirs += [str(Path(ffmpeg).parent), str(Path(ffprobe).parent)]
    env["PATH"] = os.pathsep.join(dict.fromkeys(dirs + ["/usr/local/bin", "/usr/bin", "/bin"]))
    return env


def tasks_that_fit(task_definition: dict, cores: int, workers: int) -> int:
    """How many tasks of ``task_definition``'s size (``Cpu`` in CPU units, 1024 per vCPU) run
    side by side on ``cores`` cores, at most ``workers``, at least 1: the chunk parallelism
    ingest plans for here. On AWS every task has its own vCPUs and the service's maximum
    applies; locally the workers share this machine, and a chunk beside another on the same
    cores only adds its preroll, tail and contention (5-minute bench clip, same run: 2 chunks
    on 2 cores 1.13x the reference's wall and +30.7 ffmpeg CPU-s, 1 chunk 1.04x)."""
    task_vcpus = max(1, int(task_definition.get("Cpu", 1024)) // 1024)
    return max(1, min(workers, cores // task_vcpus))


@dataclass
class WorkerTask:
    """One running worker process (an ECS task)."""

    task_id: str
    proc: subprocess.Popen
    log_path: Path
    started: float
    stopping: bool = False  # SIGTERM sent by a scale-in: its exit is not a crash


class TranscoderService(threading.Thread):
    """Plays the ECS service of the transcoder: runs ``desired`` worker processes of
    ``task_definition`` (resolved, CloudFormation casing), the desired count set by ``policy``
    every ``interval`` seconds from the tasks queues' visible messages (``visible()``).

    ``task_arn(task_id)``: a task's ARN; ``authorize(action, arn)``: whether the task role may
    (the agent's protection calls); ``credentials``: the task role's access keys;
    ``overrides``: variables over the task definition's (see the module docstring);
    ``shipper``: the CloudWatch Logs shipper (None: logs stay in ``log_dir``); ``region``: the
    region the agent announces."""

    def __init__(self, task_definition: dict, policy: ScalingPolicy, log_dir: Path, visible: Callable[[], int],
                 task_arn: Callable[[str], str], authorize: Callable[[str, str], bool],
                 credentials: dict[str, str], overrides: dict[str, str], region: str, shipper: Any = None,
                 interval: float = 2.0):
        super().__init__(daemon=True, name="transcoder-service")
        self.policy, self.log_dir, self.visible, self.interval = policy, log_dir, visible, interval
        self.credentials, self.overrides, self.region, self.shipper = credentials, overrides, region, shipper
        self.desired = policy.min_tasks
        self.scaler = Scaler(policy)
        self.history: list[tuple[float, int, int, int]] = []
        self.agent = EcsAgent(task_arn, authorize)
        self.image_environment = image_environment()
        container = task_definition["ContainerDefinitions"][0]
        self.container_name = container.get("Name", "transcoder")
        options = (container.get("LogConfiguration") or {}).get("Options") or {}
        # awslogs names streams <prefix>/<container>/<task id>; FireLens' cloudwatch_logs output
        # <log_stream_prefix><container>-firelens-<task id>
        if "awslogs-group" in options:
            self.log_group = options["awslogs-group"]
            self.stream_name = lambda task_id: (f"{options.get('awslogs-stream-prefix', 'ecs')}/"
                                                f"{self.container_name}/{task_id}")
        else:
            self.log_group = options.get("log_group_name")
            self.stream_name = lambda task_id: (f"{options.get('log_stream_prefix', '')}"
                                                f"{self.container_name}-firelens-{task_id}")
        self.stop_timeout = int(container.get("StopTimeout", 30))
        self.environment = {e["Name"]: str(e["Value"]) for e in container.get("Environment", [])}
        self.tasks: list[WorkerTask] = []
        self._halt = threading.Event()
        self._ended = threading.Event()  # set by stop() once every task has exited
        self._lock = threading.Lock()
        self.started = 0
        self.restarts = 0  # workers replaced after they died

    def task_environment(self, task_id: str) -> dict[str, str]:
        """The whole environment of task ``task_id`` (see the module docstring)."""
        return {**self.image_environment, **self.environment, "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region, "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
                "ECS_AGENT_URI": self.agent.uri(task_id), **self.credentials, **self.overrides}

    def start_task(self) -> WorkerTask:
        """Start one task of the task definition now; returns it."""
        task_id = uuid.uuid4().hex[:12]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"transcoder-{task_id}.log"
        fh = open(log_path, "ab")
        proc = subprocess.Popen([sys.executable, "-m", "containers.transcoder.entrypoint"], cwd=str(ROOT),
                                env=self.task_environment(task_id), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=tied_to_parent(os.getpid()))
        fh.close()
        task = WorkerTask(task_id, proc, log_path, time.monotonic())
        if self.shipper and self.log_group:  # the awslogs driver's stream naming
            self.shipper.tail(log_path, self.log_group, self.stream_name(task_id))
        with self._lock:
            self.tasks.append(task)
        self.started += 1
        return task

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the desired count of tasks runs and each has logged ``worker started``
        (what follows is its first long poll): ECS's RUNNING for a container without a health
        check. Raises TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                running = [t for t in self.tasks if not t.stopping and t.proc.poll() is None]
            if len(running) >= self.desired and all(b"worker started" in t.log_path.read_bytes() for t in running):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(running)} of {self.desired} worker tasks ready after {timeout:.0f} s")
            self._halt.wait(0.05)

    def run(self) -> None:
        """Keep the desired count running until ``stop``: evaluate scaling every ``interval``
        seconds, replace tasks that died (with a growing delay for tasks dying at start). The
        thread that runs it started the tasks, so it lives until ``stop`` has ended them
        (``scheduling.tied_to_parent``: the kernel ends a task when its starting thread ends)."""
        try:
            self._run()
        finally:
            self._ended.wait(self.stop_timeout + 30)

    def _run(self) -> None:
        self.agent.start()
        quick_exits = 0
        next_evaluation = 0.0
        while not self._halt.is_set():
            now = time.monotonic()
            if now >= next_evaluation:
                next_evaluation = now + self.interval
                self._evaluate(now)
            with self._lock:
                dead = [t for t in self.tasks if t.proc.poll() is not None]
                self.tasks = [t for t in self.tasks if t not in dead]
            for t in dead:
                self.agent.forget(t.task_id)
                if not t.stopping:
                    log.warning("worker task %s exited with %s (log: %s)", t.task_id, t.proc.returncode, t.log_path)
                    self.restarts += 1
            # A worker that dies at start (e.g. no ffmpeg) is replaced with a growing delay,
            # as ECS throttles a service whose tasks keep failing.
            crashed = [t for t in dead if not t.stopping]
            if crashed:
                quick_exits = quick_exits + 1 if any(time.monotonic() - t.started < 10 for t in crashed) else 0
                if quick_exits and self._halt.wait(exponential_backoff(quick_exits + 1, 1.0, 60.0)):
                    return
            with self._lock:
                running = [t for t in self.tasks if not t.stopping]
            for _ in range(self.desired - len(running)):
                self.start_task()
            if self._halt.wait(0.25):
                return

    def _evaluate(self, now: float) -> None:
        """One scaling evaluation: new desired count; on scale-in, SIGTERM idle tasks only."""
        try:
            visible = self.visible()
        except Exception:  # noqa: BLE001 - the emulator may be going away; keep the count
            return
        with self._lock:
            running = [t for t in self.tasks if not t.stopping]
        self.desired = self.scaler.decide(now, visible, len(running), self.desired)
        self.history.append((time.time(), visible, len(running), self.desired))
        excess = len(running) - self.desired
        for t in [t for t in running if not self.agent.protected(t.task_id)][:max(0, excess)]:
            log.info("scale-in: stopping idle worker task %s", t.task_id)
            t.stopping = True
            t.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM every worker, SIGKILL what is left after ``StopTimeout`` seconds."""
        self._halt.set()
        if self.agent.is_alive():
            self.agent.stop()
        with self._lock:
            tasks = list(self.tasks)
        for t in tasks:
            if t.proc.poll() is None:
                t.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for t in tasks:
            try:
                t.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                t.proc.kill()
                t.proc.wait()
        self._ended.set()
