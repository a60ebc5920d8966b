"""The embedded emulator: moto server, with what the local cloud adds in front of it.

* ``AtomicItemWrites``: DynamoDB makes each conditional write atomic per item; moto's server
  evaluates the condition and writes without a lock, so two racing ``UpdateItem`` calls can
  both pass the same condition (seen here: a task "completed first" three times out of two).
  Serialising DynamoDB requests restores the guarantee the job store relies on (docs/state.md).
* ``infra.local.iam.enforcement.IamEnforcingApp`` (optional): every call of a function or worker checked against its
  role.
* ``infra.local.cloudwatch.percentiles``: ``pNN`` statistics in ``GetMetricData`` (moto has none).
* ``dynamodb_transactions``: one rollback snapshot per table per transaction (moto takes one
  per action, each a deep copy of the whole table).
* ``limits.AwsLimits``: AWS's size and count limits (DynamoDB's 100 actions and 4 MB per
  transaction, 400 KB per item, 25 requests per batch; S3's 2 KB of user metadata; SQS's 256 KiB
  per message), refused with the services' own errors.
* ``AdminGate``: moto's own API (``/moto-api/``: reset, seed, state, dashboard) answers only a
  request carrying this run's admin token, so no webhook or URL import aimed at the emulator
  can wipe or read its state.
* ``durable_state`` and ``durable_writes`` (with a data directory): a call that changed state is
  answered once the change is on disk; the state is loaded again at the next start.
* ``cognito_keys``: the user pools sign their tokens with a key made for this process, not the
  private key moto publishes in its package.
"""
from __future__ import annotations

import secrets
import threading
from typing import Any, Callable

from infra.local.emulator import cognito_keys, dynamodb_transactions, limits
from infra.local.emulator.durable_state import DurableState
from infra.local.emulator.durable_writes import DurableWrites
from infra.local.cloudwatch import percentiles
from infra.local.iam.enforcement import IamEnforcingApp

#: The header that must carry ``EmulatorServer.admin_token`` for moto's ``/moto-api/``.
ADMIN_TOKEN_HEADER = "X-Vodpipe-Emulator-Admin"


class AtomicItemWrites:
    """WSGI middleware: DynamoDB requests run one at a time (others pass through)."""

    def __init__(self, app: Callable):
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self._lock:
            return list(self.app(environ, start_response))


class AdminGate:
    """WSGI middleware: ``/moto-api/...`` (moto's reset, seed, state manager, recorder and
    dashboard) only with ``ADMIN_TOKEN_HEADER: <token>``, else ``403``. Nothing of the project
    calls it; the token is made per run and known only to this process."""

    def __init__(self, app: Callable, token: str):
        self.app, self.token = app, token

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "/")
        if path.lstrip("/").lower().startswith("moto-api") or path == "/favicon.ico":
            given = environ.get("HTTP_" + ADMIN_TOKEN_HEADER.upper().replace("-", "_"), "")
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                body = b"the emulator's admin API needs this run's admin token\n"
                start_response("403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
                return [body]
        return self.app(environ, start_response)


class EmulatorServer:
    """moto server on ``host``:``port`` (0 = a free port) in a thread; ``iam`` is the IAM
    check when ``enforce_iam`` (principals are set after provisioning), else None. With
    ``state`` (opened by the caller) every call that changes state is on disk before it is
    answered (``durable_writes``); without it the state lives in memory only."""

    def __init__(self, host: str, port: int, region: str = "us-east-1", enforce_iam: bool = False,
                 state: DurableState | None = None):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from moto.server import ThreadedMotoServer
        from werkzeug.serving import make_server

        percentiles.install()
        dynamodb_transactions.install()
        limits.install()
        cognito_keys.install()
        serialised: Callable = AtomicItemWrites(DomainDispatcherApplication(create_backend_app))
        # a change waits for its snapshot outside the DynamoDB lock: reads are not held up by an fsync
        self.durable = DurableWrites(serialised, state) if state is not None else None
        app: Callable = limits.AwsLimits(self.durable or serialised)
        self.iam = IamEnforcingApp(app, [], region, "123456789012") if enforce_iam else None
        #: the value of ``ADMIN_TOKEN_HEADER`` that opens moto's ``/moto-api/`` (this run only)
        self.admin_token = secrets.token_urlsafe(32)
        outer_app = AdminGate(self.iam or app, self.admin_token)

        class Server(ThreadedMotoServer):
            def _server_entry(self) -> None:
                self._server = make_server(self._ip_address, self._port, outer_app, True,
                                           request_handler=MotoRequestHandler)
                self._server_ready_event.set()
                self._server.serve_forever()

        self._server = Server(ip_address=host, port=port, verbose=False)

    @property
    def port(self) -> int:
        return self._server.get_host_and_port()[1]

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
        if self.durable is not None:
            self.durable.close()
