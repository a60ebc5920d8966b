"""The REST API's route table as API Gateway holds it: paths, methods, authorizers, CORS.

On AWS the API definition is the swagger ``chalice package`` writes from the app, imported
with the app's settings (``VODPIPE_API_READ_AUTH`` decides whether GETs need SigV4). Here the
app is imported the same way, in a child process given the ``api`` function's environment, and
its route table comes back as data; the gateway rebuilds a Chalice app with the same paths,
methods, authorizers and CORS around placeholder views. The local cloud's own process never
imports the application or changes its environment to do so, and the views only ever run in
the ``api`` function's execution environment.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalice import Chalice, CognitoUserPoolAuthorizer, IAMAuthorizer

#: Run in the child: import the app, print its routes as JSON.
_DUMP = """
import json, app
from chalice import CognitoUserPoolAuthorizer, IAMAuthorizer
routes = []
for path, methods in app.app.routes.items():
    for method, entry in methods.items():
        auth = entry.authorizer
        if isinstance(auth, IAMAuthorizer):
            auth = {"type": "iam"}
        elif isinstance(auth, CognitoUserPoolAuthorizer):
            auth = {"type": "cognito", "name": auth.name, "provider_arns": auth._provider_arns}
        elif auth is not None:
            raise SystemExit(f"unsupported authorizer on {method} {path}: {auth!r}")
        routes.append({"path": path, "method": method, "view": entry.view_name, "authorizer": auth,
                       "cors": entry.cors is not None, "content_types": entry.content_types})
print(json.dumps({"app_name": app.app.app_name, "routes": routes}))
"""


def read_routes(root: Path, env: dict[str, str]) -> dict[str, Any]:
    """``{"app_name", "routes": [{path, method, view, authorizer, cors, content_types}]}`` of
    the app in ``root`` imported with environment ``env`` (plus ``PYTHONPATH=root``). Raises
    ``RuntimeError`` with the child's stderr when the app does not import."""
    try:
        child = subprocess.run([sys.executable, "-c", _DUMP], cwd=str(root), capture_output=True, text=True,
                               env={**env, "PYTHONPATH": str(root)}, timeout=120)
    except subprocess.TimeoutExpired:
        raise RuntimeError("the app's routes could not be read: importing it took over 120 s") from None
    if child.returncode != 0:
        raise RuntimeError(f"the app's routes could not be read: {child.stderr.strip()[-2000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def route_table(definition: dict[str, Any]) -> Chalice:
    """A Chalice app with ``definition``'s routes (``read_routes``), for Chalice's local
    gateway: same paths, methods, authorizers (IAM, Cognito user pools), CORS and content
    types; each view raises if called (the ``api`` function runs the real ones)."""
    table = Chalice(app_name=definition["app_name"], configure_logs=False)
    authorizers: dict[str, Any] = {}

    def authorizer(spec: dict | None) -> Any:
        if spec is None:
            return None
        key = json.dumps(spec, sort_keys=True)
        if key not in authorizers:
            authorizers[key] = (IAMAuthorizer() if spec["type"] == "iam" else
                                CognitoUserPoolAuthorizer(spec["name"], provider_arns=spec["provider_arns"]))
        return authorizers[key]

    views: dict[str, Any] = {}
    for route in definition["routes"]:
        view = views.get(route["view"])
        if view is None:
            def view(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("the gateway's route table has no view code; the api function runs it")
            view.__name__ = route["view"]
            views[route["view"]] = view
        table.route(route["path"], methods=[route["method"]], authorizer=authorizer(route["authorizer"]),
                    cors=route["cors"], content_types=route["content_types"])(view)
    return table
