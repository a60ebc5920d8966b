"""Lambda, played locally: the stack's functions, each run from its deployment package in
execution environments of its own (``runtime.py``), invoked by their event sources
(``event_sources.py``) and by the API gateway.

A function's environment is built as Lambda builds it: the runtime's variables, the packaged
template's ``Environment``, its execution role's credentials; locally also the endpoint and
the local cloud's settings (``settings``: what differs from AWS, e.g. the emulator's output
URL, and a caller's overrides). Nothing of this process's environment reaches a function.
"""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from infra.local.awslambda.event_sources import EventSourceMapping, Schedule
from infra.local.awslambda.package import FunctionSpec, LambdaPackage
from infra.local.awslambda.runtime import FunctionContainer, FunctionPool, runtime_environment


class LambdaService:
    """The functions of ``package`` for ``stack``.

    ``credentials(principal)``: access keys of a role (``function:<name>``);
    ``settings``: variables every function gets over its template's (``VODPIPE_*``,
    ``AWS_ENDPOINT_URL``); ``function_settings``: function name -> variables that function
    alone gets over those (the webhook signing key); ``shipper``: the CloudWatch Logs shipper, which tails each
    environment's output into the function's log group; ``log_dir``: where those files live.
    """

    def __init__(self, package: LambdaPackage, stack: Any, region: str,
                 credentials: Callable[[str], dict[str, str]], settings: dict[str, str], shipper: Any, log_dir: Path,
                 function_settings: dict[str, dict[str, str]] | None = None):
        self.package, self.stack, self.region = package, stack, region
        self.credentials, self.settings, self.shipper, self.log_dir = credentials, dict(settings), shipper, log_dir
        self.function_settings = {fn: dict(v) for fn, v in (function_settings or {}).items()}
        self.functions: dict[str, FunctionSpec] = package.functions(stack)
        self.pools: dict[str, FunctionPool] = {}
        self.event_sources: list[EventSourceMapping | Schedule] = []
        self._pools_lock = threading.Lock()

    def function_env(self, function_name: str, log_stream: str = "") -> dict[str, str]:
        """The whole environment of ``function_name``'s execution environment: the runtime's
        variables, the packaged template's ``Environment`` (resolved), then ``settings``, the
        function's own ``function_settings`` and the role's credentials. PATH holds only ``python3``. Raises ``KeyError`` for a function
        the package does not have."""
        spec = self.functions[function_name]
        env = runtime_environment(spec, self.region, self.shipper.function_group(function_name), log_stream)
        env.update(spec.environment)
        env.update(self.settings)
        env.update(self.function_settings.get(function_name) or {})
        env["VODPIPE_FUNCTION_ARN"] = f"arn:aws:lambda:{self.region}:{self.stack.account}:function:{function_name}"
        env.update(self.credentials(f"function:{function_name}"))
        env["PATH"] = str(self.package.bin_dir)
        return env

    def _new_container(self, function_name: str) -> FunctionContainer:
        day = time.strftime("%Y/%m/%d", time.gmtime())
        container_id = uuid.uuid4().hex
        stream = f"{day}/[$LATEST]{container_id}"
        log_path = self.log_dir / f"function-{function_name}-{container_id[:8]}.log"
        container = FunctionContainer(self.functions[function_name], self.package,
                                      self.function_env(function_name, stream), log_path)
        container.container_id = container_id
        log_path.touch()
        self.shipper.tail(log_path, self.shipper.function_group(function_name), stream)
        return container

    def _pool(self, function_name: str) -> FunctionPool:
        with self._pools_lock:
            if function_name not in self.pools:
                if function_name not in self.functions:
                    raise KeyError(f"no function {function_name} in the packaged template")
                self.pools[function_name] = FunctionPool(lambda: self._new_container(function_name))
            return self.pools[function_name]

    def invoke(self, function_name: str, event: dict) -> Any:
        """Invoke a function the way Lambda would: from its package, in a warm execution
        environment of its own. Returns the handler's result. Raises ``InvocationError`` when
        the handler raised or timed out, ``KeyError`` for an unknown function."""
        return self._pool(function_name).invoke(event)

    def start_event_sources(self, client: Callable[..., Any], schedule_seconds: float | None = None) -> None:
        """Start an SQS event source mapping per function with a queue and a schedule per
        function with a schedule (every ``schedule_seconds`` instead of its rate when given).
        ``client(service, principal=None)`` makes boto3 clients (administrator or a role)."""
        admin_sqs = client("sqs")
        for spec in self.functions.values():
            if spec.queue:
                source: EventSourceMapping | Schedule = EventSourceMapping(
                    spec.name, spec.queue, spec.batch_size, self.invoke, admin_sqs,
                    client("sqs", f"function:{spec.name}"), self.region)
            elif spec.schedule:
                source = Schedule(spec.name, schedule_seconds or Schedule.rate_seconds(spec.schedule), self.invoke,
                                  self.stack.account, self.region)
            else:
                continue
            source.start()
            self.event_sources.append(source)

    def stop(self) -> None:
        """Stop the event sources (a long poll in flight ends when the emulator stops), then
        every execution environment."""
        for source in self.event_sources:
            source.stop()
        for source in self.event_sources:
            source.join(timeout=0.2)
        self.event_sources = []
        for pool in list(self.pools.values()):
            pool.stop()
        self.pools = {}
