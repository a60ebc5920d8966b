"""API Gateway, played locally: the REST API in front of the ``api`` function.

Chalice's local gateway turns HTTP requests into API Gateway proxy events on the routes of the
REST API (``routes.route_table``: the API definition as ``chalice package`` derives it from the
app), API Gateway's SigV4 check guards ``IAMAuthorizer`` routes and the Cognito user pool check
the console's routes (``auth.py``), and each event is invoked on the ``api`` function
(``infra/local/awslambda``). The console's static files are served at the same origin
(``console.py``).
"""
from __future__ import annotations

import base64
import json
import threading
from typing import Any, Callable

from infra.local.apigateway.auth import SigV4GatewayAuthorizer
from infra.local.awslambda.runtime import InvocationError


class ApiGateway(threading.Thread):
    """The REST API on 127.0.0.1:``port``: routes of ``app`` (a Chalice app, read for its route
    table only), SigV4 for IAM-authorized routes with ``secrets`` (access key -> secret key),
    ID tokens of ``user_pool`` for Cognito-authorized ones, and each request invoked as an API
    Gateway proxy event through ``invoke``. ``site`` (``console.ConsoleSite``) serves the web
    console's GETs at the same origin."""

    def __init__(self, app: Any, port: int, invoke: Callable[[dict], Any], secrets: dict[str, str], region: str,
                 user_pool: Any = None, site: Any = None):
        super().__init__(daemon=True, name="api-gateway")
        from http.server import BaseHTTPRequestHandler

        from chalice.config import Config
        from chalice.local import ChaliceRequestHandler, LocalDevServer, LocalGateway


        origin = f"http://127.0.0.1:{port}"

        class Integration:
            """What LocalGateway calls as "the app": the Lambda proxy integration."""
            routes, api = app.routes, app.api

            def __call__(self, event: dict, context: Any) -> Any:
                body = event.get("body")
                if isinstance(body, bytes):  # the proxy event carries text, or base64 for binary
                    try:
                        event = {**event, "body": body.decode("utf-8"), "isBase64Encoded": False}
                    except UnicodeDecodeError:
                        event = {**event, "body": base64.b64encode(body).decode(), "isBase64Encoded": True}
                try:
                    return invoke(event)
                except InvocationError as e:  # API Gateway's answer to a failed integration
                    return {"statusCode": 502, "headers": {"Content-Type": "application/json",
                                                           "x-amzn-ErrorType": "InternalServerErrorException"},
                            "body": json.dumps({"message": "Internal server error", "error": e.error_type})}

        integration = Integration()

        class GatewayHandler(ChaliceRequestHandler):
            def __init__(self, request: Any, client_address: Any, server: Any, app_object: Any, config: Any) -> None:
                self.local_gateway = LocalGateway(integration, config)
                self.local_gateway._authorizer = SigV4GatewayAuthorizer(app, secrets, region, origin, user_pool)
                BaseHTTPRequestHandler.__init__(self, request, client_address, server)

            def do_GET(self) -> None:
                if site is None or not site.handles(self.path):
                    return self._generic_handle()
                status, headers, body = site.respond(self.path, origin, self.headers.get("Host"))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # no access log
                pass

        config = Config.create(chalice_stage="dev", app_name="vodpipe", chalice_app=app)
        self.server = LocalDevServer(integration, config, "127.0.0.1", port, handler_cls=GatewayHandler)

    def run(self) -> None:
        self.server.server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving and close the port."""
        self.server.shutdown()
        self.server.server.server_close()
