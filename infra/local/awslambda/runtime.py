"""The Lambda runtime, played locally: each function runs from its deployment package in its own
processes ("execution environments"), with the environment, credentials, timeout and handler
its packaged template gives it, as Lambda runs it under its own execution role.

* ``FunctionContainer``: one warm execution environment. Starts ``python3 -S -E bootstrap.py
  HANDLER`` (``bootstrap.py``) in the package's task directory, sends it one event at a
  time and returns the handler's result, or raises ``InvocationError`` (the event source
  mapping then leaves the batch for redelivery, as Lambda does). An invocation past the
  function's timeout kills the environment (``Sandbox.Timedout``). stdout/stderr go to a file
  the log shipper tails into the function's log group.
* ``FunctionPool``: a function's environments; a new one starts when every warm one is busy
  (Lambda's concurrency), up to a limit.

The API in front of the ``api`` function is ``infra/local/apigateway``.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from infra.local.awslambda.package import FunctionSpec, LambdaPackage


class InvocationError(Exception):
    """The function raised (``error_type``, ``message``), timed out or its environment died."""

    def __init__(self, error_type: str, message: str):
        super().__init__(f"{error_type}: {message}")
        self.error_type, self.message = error_type, message


class FunctionContainer:
    """One warm execution environment of ``spec`` from ``package``. ``env`` is its whole
    environment; ``log_path`` receives its stdout and stderr. ``invoke`` is serialised."""

    def __init__(self, spec: FunctionSpec, package: LambdaPackage, env: dict[str, str], log_path: Path):
        self.spec, self.package, self.env, self.log_path = spec, package, env, log_path
        self.container_id = uuid.uuid4().hex
        self.lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._results = None

    def _start(self) -> None:
        read_fd, write_fd = os.pipe()
        env = {**self.env, "VODPIPE_RUNTIME_FD": str(write_fd), "LAMBDA_TASK_ROOT": str(self.package.task_dir),
               "LAMBDA_RUNTIME_DIR": str(self.package.runtime_dir)}
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [str(self.package.bin_dir / "python3"), "-S", "-E", "-u", str(self.package.runtime_dir / "bootstrap.py"),
                 self.spec.handler], cwd=str(self.package.task_dir), env=env, stdin=subprocess.PIPE, stdout=log,
                stderr=subprocess.STDOUT, pass_fds=(write_fd,), text=True, start_new_session=True)
        os.close(write_fd)
        self._results = os.fdopen(read_fd, "r")

    def invoke(self, event: dict) -> Any:
        """Run the handler on ``event`` within the function's timeout; returns its result.
        Raises ``InvocationError``."""
        with self.lock:
            return self.invoke_held(event)

    def invoke_held(self, event: dict) -> Any:
        """``invoke`` for a caller that already holds ``lock``."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        assert self._proc and self._proc.stdin and self._results
        deadline = time.time() + self.spec.timeout
        request = {"event": event, "request_id": str(uuid.uuid4()), "deadline_ms": int(deadline * 1000)}
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            ready, _, _ = select.select([self._results], [], [], self.spec.timeout)
            line = self._results.readline() if ready else None
        except (BrokenPipeError, OSError) as e:
            self.stop()
            raise InvocationError("Runtime.ExitError", f"the {self.spec.name} environment failed: {e}") from None
        if line is None:
            self.stop()
            raise InvocationError("Sandbox.Timedout", f"Task timed out after {self.spec.timeout:.2f} seconds")
        if not line:
            code = self._proc.poll()
            self.stop()
            raise InvocationError("Runtime.ExitError", f"the {self.spec.name} environment exited ({code})")
        response = json.loads(line)
        if not response.get("ok"):
            raise InvocationError(response.get("error_type", "Error"), response.get("message", ""))
        return response.get("result")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._results:
            self._results.close()
            self._results = None


class FunctionPool:
    """A function's execution environments: ``invoke`` uses an idle warm one, or starts one
    more (``new_container()``) while fewer than ``limit`` exist, else waits for one."""

    def __init__(self, new_container: Callable[[], FunctionContainer], limit: int = 4):
        self.new_container, self.limit = new_container, limit
        self.containers: list[FunctionContainer] = []
        self._cond = threading.Condition()

    def _acquire(self) -> FunctionContainer:
        with self._cond:
            while True:
                for c in self.containers:
                    if c.lock.acquire(blocking=False):
                        return c
                if len(self.containers) < self.limit:
                    c = self.new_container()
                    c.lock.acquire()
                    self.containers.append(c)
                    return c
                self._cond.wait(0.5)

    def invoke(self, event: dict) -> Any:
        """Invoke on an idle (or new) environment. Raises ``InvocationError``."""
        container = self._acquire()
        try:
            return container.invoke_held(event)
        finally:
            container.lock.release()
            with self._cond:
                self._cond.notify()

    def stop(self) -> None:
        for c in self.containers:
            c.stop()
        self.containers = []


def runtime_environment(spec: FunctionSpec, region: str, log_group: str, log_stream: str) -> dict[str, str]:
    """The variables the Lambda runtime itself sets for ``spec`` (AWS Lambda developer guide,
    "Defined runtime environment variables"), with PATH and LANG as the python3.11 runtime has
    them minus the directories we do not have."""
    return {"AWS_LAMBDA_FUNCTION_NAME": spec.name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory), "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "AWS_LAMBDA_LOG_GROUP_NAME": log_group, "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_REGION": region, "AWS_DEFAULT_REGION": region, "TZ": ":UTC", "LANG": "en_US.UTF-8"}

