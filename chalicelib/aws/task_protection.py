"""ECS task scale-in protection, set by the worker through the ECS agent's endpoint.

While a task encodes, it is protected: a scale-in (the service's desired count lowered by
Application Auto Scaling) never stops it; ECS stops idle tasks instead and leaves protected
ones until they clear the flag or it expires. Rule: Amazon ECS developer guide, "Protect your
Amazon ECS tasks from being terminated by scale-in events" — ``PUT
${ECS_AGENT_URI}/task-protection/v1/state`` with ``{"ProtectionEnabled": bool,
"ExpiresInMinutes": 1..2880}``; the agent answers ``{"protection": {...}}`` or ``{"failure":
...}`` / ``{"error": ...}``, and calls ``ecs:UpdateTaskProtection`` with the task role.

ECS sets ``ECS_AGENT_URI`` in every task (Fargate platform 1.4.0+); the local ECS service (infra/local/ecs/service.py) sets
it to its own agent. Outside a task (a worker started by hand) there is no agent and nothing
to protect: ``TaskProtection(None)`` does nothing.
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

log = logging.getLogger("vodpipe.protection")

#: The agent accepts 1 minute to 48 hours.
MIN_MINUTES, MAX_MINUTES = 1, 2880


class TaskProtection:
    """Sets and clears this task's scale-in protection. ``agent_uri``: ``ECS_AGENT_URI`` (None
    outside ECS). ``timeout`` in s."""

    def __init__(self, agent_uri: str | None, timeout: float = 5.0):
        self.agent_uri, self.timeout = agent_uri, timeout
        self.enabled = False

    def protect(self, seconds: float) -> bool:
        """Protect the task for ``seconds`` (rounded up to whole minutes, 1..2880). Returns
        whether the agent confirmed; a failure is logged, never raised (the encode goes on)."""
        minutes = max(MIN_MINUTES, min(MAX_MINUTES, int(-(-seconds // 60))))
        return self._put({"ProtectionEnabled": True, "ExpiresInMinutes": minutes}, True)

    def release(self) -> bool:
        """Clear the protection (the task is idle and may be scaled in). Returns whether the
        agent confirmed."""
        if not self.enabled:
            return True
        return self._put({"ProtectionEnabled": False}, False)

    def _put(self, body: dict, enabled: bool) -> bool:
        if not self.agent_uri:
            return False
        request = urllib.request.Request(f"{self.agent_uri.rstrip('/')}/task-protection/v1/state",
                                         data=json.dumps(body).encode(), method="PUT",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            answer = _json(e.read())
        except (OSError, ValueError) as e:
            log.warning("task protection: the ECS agent did not answer (%s)", e)
            return False
        if "protection" not in answer:
            log.warning("task protection refused: %s", answer.get("error") or answer.get("failure") or answer)
            return False
        self.enabled = enabled
        return True


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw or b"{}")
        return value if isinstance(value, dict) else {}
    except ValueError:
        return {}
