"""The Lambda runtime, played locally: each function runs in its own process ("function
container"), with its own environment and credentials, as Lambda runs each function in its own
execution environment under its own execution role.

* ``FunctionContainer`` (parent side): starts ``python -m infra.local.runtime <function>``,
  sends it one event at a time and returns the handler's result or raises ``InvocationError``
  (the event-source mapping then leaves the batch for redelivery, as Lambda does). The
  child's stdout/stderr (Powertools JSON logs, EMF lines) go to a file the log shipper tails
  into the function's log group, as Lambda's stdout goes to CloudWatch Logs.
* ``python -m infra.local.runtime <function>`` (child side): imports the Chalice app, then
  reads one JSON request per line on stdin and writes one JSON response per line to the
  result pipe (file descriptor in ``VODPIPE_RUNTIME_FD``), keeping stdout for logs.
* ``python -m infra.local.runtime --api PORT`` serves the HTTP API (Chalice's local server
  with API Gateway's SigV4 check for ``IAMAuthorizer`` routes) in the API function's process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import traceback
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class InvocationError(Exception):
    """The function raised (``error_type``, ``message``) or its container died."""

    def __init__(self, error_type: str, message: str):
        super().__init__(f"{error_type}: {message}")
        self.error_type, self.message = error_type, message


class FunctionContainer:
    """One warm execution environment of ``function`` (parent side). ``env`` is the whole
    environment of the child; ``log_path`` receives its stdout and stderr. ``invoke`` is
    serialised (one event at a time, like one Lambda execution environment)."""

    def __init__(self, function: str, env: dict[str, str], log_path: Path):
        self.function, self.env, self.log_path = function, env, log_path
        self.container_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._results = None

    def _start(self) -> None:
        read_fd, write_fd = os.pipe()
        log = open(self.log_path, "ab")
        self._proc = subprocess.Popen([sys.executable, "-m", "infra.local.runtime", self.function], cwd=str(ROOT),
                                      env={**self.env, "VODPIPE_RUNTIME_FD": str(write_fd)}, stdin=subprocess.PIPE,
                                      stdout=log, stderr=subprocess.STDOUT, pass_fds=(write_fd,), text=True,
                                      start_new_session=True)
        log.close()
        os.close(write_fd)
        self._results = os.fdopen(read_fd, "r")

    def invoke(self, event: dict, timeout_ms: int = 900_000) -> Any:
        """Run the handler on ``event``; returns its result. Raises ``InvocationError``."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            assert self._proc and self._proc.stdin and self._results
            request = {"event": event, "request_id": str(uuid.uuid4()), "timeout_ms": timeout_ms}
            try:
                self._proc.stdin.write(json.dumps(request) + "\n")
                self._proc.stdin.flush()
                line = self._results.readline()
            except (BrokenPipeError, OSError) as e:
                line = ""
                reason = str(e)
            else:
                reason = "exited"
            if not line:
                self.stop()
                raise InvocationError("Runtime.ExitError", f"the {self.function} container {reason}")
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


class ApiContainer:
    """The API function's process serving HTTP on 127.0.0.1:``port`` (parent side)."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path):
        log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "infra.local.runtime", "--api", str(port)], cwd=str(ROOT),
                                     env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _serve_function(function: str) -> int:
    from chalice.local import LambdaContext

    import app as app_module
    handler = app_module.app.handler_map[function]
    results = os.fdopen(int(os.environ["VODPIPE_RUNTIME_FD"]), "w", buffering=1)
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(function, memory_size=1024, max_runtime_ms=int(request.get("timeout_ms", 900_000)))
        try:
            result = handler(request["event"], context)
            response = {"ok": True, "result": result if _jsonable(result) else None}
        except Exception as e:  # noqa: BLE001 - reported to the caller, as Lambda reports errors
            traceback.print_exc()
            sys.stdout.flush()
            response = {"ok": False, "error_type": type(e).__name__, "message": str(e)[:2000]}
        sys.stdout.flush()
        results.write(json.dumps(response) + "\n")
    return 0


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _serve_api(port: int) -> int:
    from http.server import BaseHTTPRequestHandler

    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, CustomLocalChalice, LocalChalice, LocalDevServer, LocalGateway

    import app as app_module

    from .apiauth import SigV4GatewayAuthorizer

    app = app_module.app
    secrets = {os.environ["VODPIPE_API_ACCESS_KEY_ID"]: os.environ["VODPIPE_API_SECRET_ACCESS_KEY"]}
    region, origin = os.environ.get("AWS_REGION", "us-east-1"), f"http://127.0.0.1:{port}"

    class QuietHandler(ChaliceRequestHandler):
        def __init__(self, request: Any, client_address: Any, server: Any, app_object: Any, config: Any) -> None:
            self.local_gateway = LocalGateway(app_object, config)
            # API Gateway's AWS_IAM check for IAMAuthorizer routes (Chalice admits them all)
            self.local_gateway._authorizer = SigV4GatewayAuthorizer(app, secrets, region, origin)
            BaseHTTPRequestHandler.__init__(self, request, client_address, server)

        def log_message(self, *args: Any) -> None:  # no access log
            pass

    config = Config.create(chalice_stage="dev", app_name="vodpipe", chalice_app=app)
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)  # what chalice.local.create_local_server does
    app.__class__ = CustomLocalChalice
    server = LocalDevServer(app, config, "127.0.0.1", port, handler_cls=QuietHandler)
    server.server.serve_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args[:1] == ["--api"]:
        return _serve_api(int(args[1]))
    return _serve_function(args[0])


if __name__ == "__main__":
    raise SystemExit(main())
