"""ECS's part, played locally: the transcoder service's tasks as worker processes started from
the task definition (command, environment, log configuration, ``StopTimeout``), each with the
task role's credentials."""
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cloud import LocalCloud

log = logging.getLogger("vodpipe.local")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class WorkerTask:
    """One running worker process (an ECS task)."""

    task_id: str
    proc: subprocess.Popen
    log_path: Path
    started: float


class TaskRunner(threading.Thread):
    """Plays the ECS service: keeps ``count`` worker processes of the task definition running."""

    def __init__(self, cloud: "LocalCloud", task_definition: dict, count: int, log_dir: Path):
        super().__init__(daemon=True, name="task-runner")
        self.cloud, self.count, self.log_dir = cloud, count, log_dir
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
        self._lock = threading.Lock()
        self.started = 0
        self.restarts = 0  # workers replaced after they died

    def _env(self) -> dict[str, str]:
        env = {**os.environ, **self.environment, **self.cloud.base_env()}
        env.update(self.cloud.worker_env_overrides)
        env.update(self.cloud.credentials("task:transcoder"))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return env

    def start_task(self) -> WorkerTask:
        task_id = uuid.uuid4().hex[:12]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"transcoder-{task_id}.log"
        fh = open(log_path, "ab")
        proc = subprocess.Popen([sys.executable, "-m", "containers.transcoder.entrypoint"], cwd=str(ROOT),
                                env=self._env(), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        fh.close()
        task = WorkerTask(task_id, proc, log_path, time.monotonic())
        shipper = getattr(self.cloud, "shipper", None)
        if shipper and self.log_group:  # the awslogs driver's stream naming
            shipper.tail(log_path, self.log_group, self.stream_name(task_id))
        with self._lock:
            self.tasks.append(task)
        self.started += 1
        return task

    def run(self) -> None:
        for _ in range(self.count):
            self.start_task()
        quick_exits = 0
        while not self._halt.wait(1.0):
            with self._lock:
                dead = [t for t in self.tasks if t.proc.poll() is not None]
                self.tasks = [t for t in self.tasks if t not in dead]
            if not dead:
                continue
            # A worker that dies at start (e.g. no ffmpeg) is replaced with a growing delay,
            # as ECS throttles a service whose tasks keep failing.
            quick_exits = quick_exits + 1 if any(time.monotonic() - t.started < 10 for t in dead) else 0
            if quick_exits and self._halt.wait(min(60.0, 2.0 ** quick_exits)):
                return
            for t in dead:
                log.warning("worker task %s exited with %s; starting a replacement (log: %s)",
                            t.task_id, t.proc.returncode, t.log_path)
                self.restarts += 1
                self.start_task()

    def stop(self) -> None:
        """SIGTERM every worker, SIGKILL what is left after ``StopTimeout`` seconds."""
        self._halt.set()
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
