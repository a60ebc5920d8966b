"""The ECS agent's task-protection endpoint, played locally for the worker tasks.

Each task gets ``ECS_AGENT_URI=http://127.0.0.1:<port>/api/<task id>``; the worker PUTs and
GETs ``<ECS_AGENT_URI>/task-protection/v1/state`` as it would on Fargate. The agent calls
``ecs:UpdateTaskProtection`` / ``ecs:GetTaskProtection`` with the task role on AWS, so the
local agent asks the task's principal whether its policies allow that action on the task ARN
and answers an ``AccessDeniedException`` error otherwise.

Shapes (Amazon ECS developer guide, "Task scale-in protection endpoint"): request
``{"ProtectionEnabled": bool, "ExpiresInMinutes": int}`` (1..2880, default 120); response
``{"protection": {"ExpirationDate", "ProtectionEnabled", "TaskArn"}}`` or ``{"error": {"Code",
"Message", "Arn"}}``.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

log = logging.getLogger("vodpipe.local")
DEFAULT_MINUTES, MAX_MINUTES = 120, 2880


class EcsAgent(threading.Thread):
    """Serves the task-protection endpoint on 127.0.0.1 (free port). ``authorize(action, task
    arn) -> bool`` checks the task role. ``protected(task_id)`` is what the scheduler reads."""

    def __init__(self, task_arn: Callable[[str], str], authorize: Callable[[str, str], bool]):
        super().__init__(daemon=True, name="ecs-agent")
        self.task_arn, self.authorize = task_arn, authorize
        self._until: dict[str, float] = {}  # task id -> protection expiry (time.time())
        self._lock = threading.Lock()
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                agent._handle(self, None)

            def do_PUT(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                agent._handle(self, self.rfile.read(length) if length else b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def uri(self, task_id: str) -> str:
        """The ``ECS_AGENT_URI`` of task ``task_id``."""
        return f"http://127.0.0.1:{self.port}/api/{task_id}"

    def protected(self, task_id: str) -> bool:
        """Whether ``task_id`` holds unexpired scale-in protection."""
        with self._lock:
            return self._until.get(task_id, 0.0) > time.time()

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._until.pop(task_id, None)

    def run(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler, body: bytes | None) -> None:
        parts = request.path.strip("/").split("/")
        if len(parts) != 5 or parts[0] != "api" or parts[2:] != ["task-protection", "v1", "state"]:
            return _reply(request, 404, {"error": {"Code": "NotFound", "Message": "no such agent path"}})
        task_id = parts[1]
        arn = self.task_arn(task_id)
        action = "ecs:GetTaskProtection" if body is None else "ecs:UpdateTaskProtection"
        if not self.authorize(action, arn):
            log.warning("AccessDenied: task %s may not %s on %s", task_id, action, arn)
            return _reply(request, 400, {"error": {"Arn": arn, "Code": "AccessDeniedException", "Message":
                                                   f"User is not authorized to perform: {action} on resource: {arn}"}})
        if body is not None:
            try:
                spec = json.loads(body)
                enabled = spec["ProtectionEnabled"]
                minutes = int(spec.get("ExpiresInMinutes", DEFAULT_MINUTES))
                if not isinstance(enabled, bool) or not 1 <= minutes <= MAX_MINUTES:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return _reply(request, 400, {"error": {"Arn": arn, "Code": "InvalidParameterException", "Message":
                                                       "ProtectionEnabled (bool) and ExpiresInMinutes 1..2880"}})
            with self._lock:
                if enabled:
                    self._until[task_id] = time.time() + minutes * 60
                else:
                    self._until.pop(task_id, None)
        with self._lock:
            until = self._until.get(task_id, 0.0)
        enabled_now = until > time.time()
        expiry = (datetime.fromtimestamp(until, timezone.utc) if enabled_now else datetime.now(timezone.utc)
                  - timedelta(seconds=1))
        _reply(request, 200, {"protection": {"ProtectionEnabled": enabled_now, "TaskArn": arn,
                                             "ExpirationDate": expiry.isoformat() if enabled_now else None}})


def _reply(request: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
    data = json.dumps(payload).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)
