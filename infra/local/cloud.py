"""The local cloud: everything AWS would run for vodpipe, on one machine, without root or Docker.

* the emulator: moto server on 127.0.0.1 behind the local IAM (``iam.py``: every call of a
  function or worker is checked against its own role in the template), or an endpoint that is
  already running, e.g. LocalStack, given as ``endpoint_url`` (no IAM check then);
* provisioning from ``infra/template.yaml`` (``provision.py``);
* each Lambda function in its own process under its role's credentials (``runtime.py``);
* an event-source mapping per Chalice ``on_sqs_message`` handler: long-polls the queue with
  the function's role, builds the Lambda SQS event, invokes the function, deletes the batch on
  success and leaves it on failure so the redrive policy works, as Lambda does;
* a task runner playing the ECS service: N worker processes started from the task
  definition's command and environment, restarted if they exit, SIGTERM then SIGKILL after
  the container's ``StopTimeout`` on shutdown;
* the Chalice HTTP API on a local port, in the API function's process, with API Gateway's
  SigV4 check for IAM-authorized routes (``apiauth.py``).

``LocalCloud`` is a context manager; tests use it as a fixture, ``vodpipe up`` in the
foreground.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3


from .alarms import AlarmEvaluator
from .apiauth import sign_request
from .emulator import EmulatorServer
from .iam import Principal, access_key_for
from .logs import LogShipper
from .runtime import ApiContainer, FunctionContainer
from .tasks import TaskRunner
from .triggers import EventSourceMapping, Schedule
from .provision import Provisioner, Stack

log = logging.getLogger("vodpipe.local")
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 4566
DEFAULT_API_PORT = 8000
LOCAL_WEBHOOK_SECRET = "vodpipe-local-webhook-secret"
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                     "AWS_REGION": "us-east-1"}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something listens on 127.0.0.1:``port``."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class LocalCloud:
    """Start/stop the whole local cloud.

    ``port``: emulator port (``DEFAULT_PORT`` 4566; 0 picks a free one) unless
    ``endpoint_url`` names a running endpoint. ``api_port``: the HTTP API (0: free port).
    ``workers``: worker processes (default: CPU cores). ``env``: extra ``VODPIPE_*``
    settings for handlers and workers (e.g. ``VODPIPE_LADDER``). ``params``: template
    parameters. ``alarm_interval``: seconds between alarm evaluations. ``schedule_seconds``:
    run scheduled functions this often instead of at their rate (tests).
    """

    def __init__(self, port: int = DEFAULT_PORT, api_port: int = DEFAULT_API_PORT, workers: int | None = None,
                 endpoint_url: str | None = None, env: dict[str, str] | None = None,
                 state_dir: Path | str | None = None, params: dict[str, Any] | None = None,
                 alarm_interval: float = 10.0, schedule_seconds: float | None = None,
                 api_read_auth: bool = False, enforce_iam: bool = True, template: dict | None = None):
        self.port = port
        self.api_port = api_port
        self.workers = workers if workers is not None else (os.cpu_count() or 2)
        self.endpoint_url = endpoint_url
        self.extra_env = dict(env or {})
        self.worker_env_overrides: dict[str, str] = {}
        self.state_dir = Path(state_dir or ROOT / ".vodpipe")
        # Locally, players read the outputs straight from the emulator's bucket.
        self.params = {"PublicOutputs": "true", **(params or {})}
        self.region = LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"]
        self._moto = None
        self._api: ApiContainer | None = None
        self.containers: dict[str, FunctionContainer] = {}
        self._containers_lock = threading.Lock()
        self.mappings: list[EventSourceMapping] = []
        self.task_runner: TaskRunner | None = None
        self.shipper: LogShipper | None = None
        self.alarms: AlarmEvaluator | None = None
        self.alarm_interval = alarm_interval
        self.schedule_seconds = schedule_seconds  # run scheduled functions this often (tests)
        self.api_read_auth = api_read_auth  # GETs need SigV4 too (always on AWS by default)
        self.enforce_iam = enforce_iam  # each function and task limited to its role (embedded emulator only)
        self.template = template  # default: infra/template.yaml
        self.principals: dict[str, Principal] = {}
        self.stack: Stack | None = None
        self.app = None
        self._saved_env: dict[str, str | None] = {}

    # --- environment ------------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        """Endpoint, credentials and application settings every component gets."""
        env = {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url or "",
               # locally, webhooks may target this machine (a receiver on 127.0.0.1) and are
               # signed with a development secret; set both explicitly on AWS
               "VODPIPE_WEBHOOK_ALLOW_PRIVATE": "1", "VODPIPE_WEBHOOK_SECRET": LOCAL_WEBHOOK_SECRET,
               "VODPIPE_API_READ_AUTH": "true" if self.api_read_auth else "false"}
        if self.stack:
            env.update(self.stack.app_env())
        env.update(self.extra_env)
        return env

    def _apply_env(self, env: dict[str, str]) -> None:
        for k, v in env.items():
            self._saved_env.setdefault(k, os.environ.get(k))
            os.environ[k] = v

    def _restore_env(self) -> None:
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env.clear()

    def client(self, service: str, principal: str | None = None):
        """A boto3 client as the local administrator, or as ``principal`` (e.g.
        ``function:ingest``: what that role may do, no more)."""
        creds = self.credentials(principal)
        return boto3.session.Session(aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                                     aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                                     region_name=self.region).client(service, endpoint_url=self.endpoint_url)

    def credentials(self, principal: str | None) -> dict[str, str]:
        """Access keys of ``principal`` (the administrator's for None or an unknown name)."""
        known = self.principals.get(principal or "")
        return known.credentials() if known else {k: LOCAL_CREDENTIALS[k] for k in
                                                  ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}

    @property
    def denials(self) -> list[dict[str, str]]:
        """Calls the local IAM refused so far: {principal, action, resource}."""
        return list(self._moto.iam.denials) if self._moto and self._moto.iam else []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> "LocalCloud":
        """Start everything; returns self. Raises RuntimeError when a port is taken."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        if self.endpoint_url is None:
            if self.port == 0:
                self.port = free_port()
            elif port_in_use(self.port):
                raise RuntimeError(f"port {self.port} is in use (is `vodpipe up` already running? "
                                   f"use --port 0 or AWS_ENDPOINT_URL=http://127.0.0.1:{self.port})")
            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request lines from the emulator
            self._moto = EmulatorServer("127.0.0.1", self.port, self.region, enforce_iam=self.enforce_iam)
            self._moto.start()
            self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._apply_env(self.base_env())
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=self.region)
        self.stack = Provisioner(session, self.endpoint_url, self.region).provision(self.params, self.template)
        self.principals = {name: Principal(name, arn, access_key_for(name), "local-" + access_key_for(name).lower(),
                                           documents)
                           for name, (arn, documents) in self.stack.principals().items()}
        if self._moto and self._moto.iam:
            self._moto.iam.account = self.stack.account
            self._moto.iam.set_principals(self.principals.values())
        self._apply_env(self.base_env())
        prefix = f"/aws/lambda/{self.stack.params['AppName']}-{self.stack.params['Stage']}"
        self.shipper = LogShipper(self.client("logs"), self.client("cloudwatch"),
                                  lambda fn: prefix if fn == "api" else f"{prefix}-{fn}")
        self.shipper.start()
        self._load_app()
        alarms = [self.stack.refs[k] for k, r in self.stack.template["Resources"].items()
                  if r["Type"] == "AWS::CloudWatch::Alarm" and k in self.stack.refs]
        app_stage = f"{self.stack.params['AppName']}-{self.stack.params['Stage']}"
        self.alarms = AlarmEvaluator(self, alarms, f"/vodpipe/{app_stage}/alarm-history", self.alarm_interval)
        self.alarms.start()
        for src in self.app.event_sources:
            if getattr(src, "queue", None):
                m = EventSourceMapping(self, src.name, src.queue, src.batch_size)
                m.start()
                self.mappings.append(m)
            elif getattr(src, "schedule_expression", None):
                seconds = self.schedule_seconds or Schedule.rate_seconds(src.schedule_expression)
                sched = Schedule(self, src.name, seconds)
                sched.start()
                self.mappings.append(sched)
        self._start_api()
        self.task_runner = TaskRunner(self, self.stack.task_definition(), self.workers, self.state_dir / "logs")
        self.task_runner.start()

    def _load_app(self) -> None:
        """Read the app's event sources (what `chalice package` reads); the functions
        themselves run in their own processes (``infra/local/runtime.py``)."""
        import importlib
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import app as app_module
        app_module = importlib.reload(app_module)  # re-read settings for this stack
        self.app = app_module.app
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        # Importing the app gives the "vodpipe" logger Powertools' stdout handler; the local
        # cloud's own lines (alarms, IAM denials...) go to a file, not onto the terminal of
        # `vodpipe up` / `vodpipe demo`.
        self._own_log = open(self.state_dir / "logs" / "local-cloud.log", "a", buffering=1)
        for h in logging.getLogger("vodpipe").handlers:
            if isinstance(h, logging.StreamHandler):
                h.setStream(self._own_log)

    def function_env(self, function_name: str) -> dict[str, str]:
        """The environment of a function's execution environment: endpoint, region, the
        app's settings and its principal's credentials."""
        env = {**os.environ, **self.base_env()}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["AWS_LAMBDA_FUNCTION_NAME"] = function_name
        env.update(self.credentials(f"function:{function_name}"))
        # The Lambda Python runtime has python and no ffmpeg/ffprobe: neither has this PATH
        for name in ("VODPIPE_FFMPEG", "VODPIPE_FFPROBE"):
            env.pop(name, None)
        env["PATH"] = str(self._lambda_path())
        return env

    def _lambda_path(self) -> Path:
        """A PATH directory holding only ``python3`` (what the Lambda runtime offers us)."""
        path = self.state_dir / "lambda-runtime" / "bin"
        path.mkdir(parents=True, exist_ok=True)
        link = path / "python3"
        if not link.exists():
            link.symlink_to(sys.executable)
        return path

    def _container(self, function_name: str) -> FunctionContainer:
        with self._containers_lock:
            if function_name not in self.containers:
                group = self.shipper.function_group(function_name)
                container = FunctionContainer(function_name, self.function_env(function_name),
                                              self.state_dir / "logs" / f"function-{function_name}.log")
                day = time.strftime("%Y/%m/%d", time.gmtime())
                self.shipper.tail(container.log_path, group, f"{day}/[$LATEST]{container.container_id}")
                self.containers[function_name] = container
            return self.containers[function_name]

    def invoke(self, function_name: str, event: dict) -> Any:
        """Invoke a function the way Lambda would: in its own warm execution environment.
        Raises ``InvocationError`` when the handler raised."""
        return self._container(function_name).invoke(event)

    def _start_api(self) -> None:
        if self.api_port == 0:
            self.api_port = free_port()
        elif port_in_use(self.api_port):
            raise RuntimeError(f"API port {self.api_port} is in use; choose another with --api-port")
        env = {**self.function_env("api"), "VODPIPE_API_ACCESS_KEY_ID": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
               "VODPIPE_API_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
        log_path = self.state_dir / "logs" / "function-api.log"
        self._api = ApiContainer(self.api_port, env, log_path)
        day = time.strftime("%Y/%m/%d", time.gmtime())
        self.shipper.tail(log_path, self.shipper.function_group("api"), f"{day}/[$LATEST]{uuid.uuid4().hex}")
        deadline = time.monotonic() + 30
        while not port_in_use(self.api_port):
            if self._api.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start (log: {log_path})")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop workers (SIGTERM, then SIGKILL), pollers, the API and the emulator."""
        if self.task_runner:
            self.task_runner.stop()
        for m in self.mappings:
            m.stop()
        for m in self.mappings:
            m.join(timeout=5)
        self.mappings = []
        if getattr(self, "alarms", None):
            self.alarms.stop()
        if getattr(self, "shipper", None):
            self.shipper.stop()
        if getattr(self, "_own_log", None):
            for h in logging.getLogger("vodpipe").handlers:
                if isinstance(h, logging.StreamHandler) and h.stream is self._own_log:
                    h.setStream(sys.stdout)
            self._own_log.close()
            self._own_log = None
        for container in list(self.containers.values()):
            container.stop()
        self.containers = {}
        if self._api:
            self._api.stop()
            self._api = None
        if self._moto:
            self._moto.stop()
            self._moto = None
        self._restore_env()

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def oldest_queued_task_age(self) -> float:
        """Seconds the oldest still-queued task has waited (0 when none): the local stand-in
        for SQS's ApproximateAgeOfOldestMessage of the tasks queue."""
        from chalicelib.aws.jobstore import JobStore, seconds_since
        store = JobStore(self.stack.app_env()["VODPIPE_JOBS_TABLE"], self.region, self.endpoint_url)
        oldest = 0.0
        for status in ("queued", "processing"):
            items, token = store.list_jobs(status, 100)
            for job in items:
                got = store.get(job["job_id"])
                for task in (got[1] if got else []):
                    if task.get("status") == "queued":
                        oldest = max(oldest, seconds_since(task.get("updated_at") or job.get("created_at")))
        return oldest

    # --- conveniences -----------------------------------------------------------------
    def api_call(self, method: str, path: str, body: bytes | None = None, signed: bool = True) -> tuple[int, Any]:
        """Call the local API as an IAM principal would (SigV4 for execute-api with the local
        credentials). Returns (HTTP status, parsed JSON body or None)."""
        import json
        import urllib.error
        import urllib.request
        url = self.api_url + path
        headers = {"Content-Type": "application/json"}
        if signed:
            headers.update(sign_request(method, url, body, LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                        LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], self.region))
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, json.loads(text) if text else None

    def export_lines(self) -> list[str]:
        """``export`` lines for another shell (``eval "$(vodpipe env)"``)."""
        env = {**self.base_env(), "VODPIPE_API_URL": self.api_url,
               "LOCALSTACK_HOST": self.endpoint_url.split("//", 1)[1] if self.endpoint_url else ""}
        return [f"export {k}={v}" for k, v in sorted(env.items()) if v]
