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
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from infra.local.emulator import dynamodb_transactions
from infra.local.cloudwatch import percentiles
from infra.local.iam.enforcement import IamEnforcingApp


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


class EmulatorServer:
    """moto server on ``host``:``port`` (0 = a free port) in a thread; ``iam`` is the IAM
    check when ``enforce_iam`` (principals are set after provisioning), else None."""

    def __init__(self, host: str, port: int, region: str = "us-east-1", enforce_iam: bool = False):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from moto.server import ThreadedMotoServer
        from werkzeug.serving import make_server

        percentiles.install()
        dynamodb_transactions.install()
        app: Callable = AtomicItemWrites(DomainDispatcherApplication(create_backend_app))
        self.iam = IamEnforcingApp(app, [], region, "123456789012") if enforce_iam else None
        outer_app = self.iam or app

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
