"""The web console in the local cloud: its static files at the API's origin, its config, and the
operator it signs in as.

On AWS the console (``console/``) is static files behind the CDN and its ``config.json`` names
the API and the Cognito user pool; an operator signs in with a password. Locally the API
gateway serves the same files at ``/console/`` (``/`` redirects there) and a ``config.json`` that
also carries the local operator's credentials, so the page signs in by itself through the same
``InitiateAuth`` call against the emulator's user pool: no sign-in form, and still no API call
without a valid ID token (``auth.UserPoolTokens``).
"""
from __future__ import annotations

import json
import mimetypes
import secrets
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[3]
CONSOLE_DIR = ROOT / "console"
#: where the page is served, and its API twin (``app.CONSOLE_API``) that is not a file
PREFIX, API_PREFIX = "/console/", "/console/api/"
OPERATOR = "operator@vodpipe.local"


def create_operator(cognito, pool_id: str, username: str = OPERATOR) -> dict[str, str]:
    """Invite ``username`` into the pool (or keep the one an earlier run invited) with a new
    random permanent password (12+ characters, upper, lower, digit: the template's policy);
    returns ``{"username", "password"}``."""
    password = secrets.token_urlsafe(18) + "Aa1"
    try:
        cognito.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS",
                                  UserAttributes=[{"Name": "email", "Value": username},
                                                  {"Name": "email_verified", "Value": "true"}])
    except cognito.exceptions.UsernameExistsException:
        pass  # kept from an earlier run (a data directory): a new password for this run
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)
    return {"username": username, "password": password}


def own_hosts(origin: str) -> set[str]:
    """The ``Host`` header values that name the gateway at ``origin`` (``http://127.0.0.1:<port>``):
    ``127.0.0.1:<port>`` and ``localhost:<port>``."""
    port = urlsplit(origin).port
    return {f"127.0.0.1:{port}", f"localhost:{port}"}


class ConsoleSite:
    """GET handling for the console's paths: ``root`` holds the files (``vendor/`` filled by
    ``make console``); ``config`` returns the ``config.json`` document for a request's origin."""

    def __init__(self, config: Callable[[str], dict], root: Path = CONSOLE_DIR):
        self.root, self.config = root.resolve(), config

    @staticmethod
    def handles(path: str) -> bool:
        """True for ``/`` and the console's files; the API twin under ``/console/api/`` is not."""
        path = urlsplit(path).path
        return path in ("/", "/console") or (path.startswith(PREFIX) and not path.startswith(API_PREFIX))

    def respond(self, path: str, origin: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a GET of ``path``: 302 from ``/`` to the console, the
        file (``index.html`` for a directory), ``config.json``, or 404. Paths never leave
        ``root``. ``config.json`` (it signs the local operator in) only for a request whose
        ``host`` header names the gateway itself (``own_hosts``), else 421: a page of another
        site whose name was re-bound to 127.0.0.1 (DNS rebinding) must not read it."""
        path = urlsplit(path).path
        if path in ("/", "/console"):
            return 302, {"Location": PREFIX}, b""
        relative = path[len(PREFIX):] or "index.html"
        if relative == "config.json":
            if (host or "").strip().lower() not in own_hosts(origin):
                return 421, {"Content-Type": "text/plain"}, b"config.json is served only to this gateway's own host"
            return 200, {"Content-Type": "application/json", "Cache-Control": "no-store"}, \
                json.dumps(self.config(origin)).encode()
        target = (self.root / relative).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(self.root) or not target.is_file():
            return 404, {"Content-Type": "text/plain"}, b"not found"
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        return 200, {"Content-Type": kind, "Cache-Control": "no-cache"}, target.read_bytes()


def local_console(stack, cognito, endpoint_url: str, region: str, pool: str = "ConsoleUserPool",
                  client: str = "ConsoleUserPoolClient"):
    """``(user_pool, site)`` for a provisioned ``stack``: the ``auth.UserPoolTokens`` of its
    console user pool (JWKS read from the emulator) and the ``ConsoleSite`` whose config signs
    in a fresh operator of that pool. ``(None, site)`` when the template has no user pool: then
    every console API call is refused."""
    import urllib.request

    from infra.local.apigateway.auth import UserPoolTokens
    pool_id, client_id = stack.refs.get(pool), stack.refs.get(client)
    if not pool_id or not client_id:
        return None, ConsoleSite(lambda origin: {"api_url": origin + API_PREFIX.rstrip("/"), "region": region})
    with urllib.request.urlopen(f"{endpoint_url}/{pool_id}/.well-known/jwks.json", timeout=10) as answer:
        jwks = json.load(answer)
    tokens = UserPoolTokens(f"https://cognito-idp.{region}.amazonaws.com/{pool_id}", [client_id], jwks)
    operator = create_operator(cognito, pool_id)

    def config(origin: str) -> dict:
        return {"api_url": origin + API_PREFIX.rstrip("/"), "region": region,
                "cognito": {"endpoint": endpoint_url, "user_pool_id": pool_id, "client_id": client_id},
                "sign_in": operator}
    return tokens, ConsoleSite(config)
