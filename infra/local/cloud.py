"""The local cloud: everything AWS would run for vodpipe, on one machine, without root or Docker.

* the emulator: moto server on 127.0.0.1 behind the local IAM (``iam.py``: every call of a
  function or worker is checked against its own role in the template), or an endpoint that is
  already running, e.g. LocalStack, given as ``endpoint_url`` (no IAM check then);
* provisioning from ``infra/template.yaml`` (``provision.py``);
* each Lambda function run from its deployment package (``make package``, rebuilt when a source
  changed; ``lambda_package.py``) in its own processes, with the handler, timeout, environment
  and role the packaged template gives it and nothing of the host's (``runtime.py``);
* an event-source mapping per SQS event of a packaged function: long-polls the queue with
  the function's role, builds the Lambda SQS event, invokes the function, deletes the batch on
  success and leaves it on failure so the redrive policy works, as Lambda does; a schedule per
  Schedule event;
* a task runner playing the ECS service and its Application Auto Scaling: worker processes
  started from the task definition's command and environment, as many as the template's
  backlog-per-task policy asks between its minimum and maximum (``workers`` caps it), idle ones
  stopped on scale-in (encoding ones hold scale-in protection), replaced if they die, SIGTERM
  then SIGKILL after the container's ``StopTimeout`` on shutdown;
* API Gateway on a local port: the REST API's routes, API Gateway's SigV4 check for
  IAM-authorized routes (``apiauth.py``), each request invoked on the ``api`` function.

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
from .console import local_console
from .emulator import EmulatorServer
from .iam import Principal, access_key_for
from .logs import LogShipper
from .lambda_package import FunctionSpec, LambdaPackage
from .runtime import ApiGateway, FunctionContainer, FunctionPool, runtime_environment
from .scaling import ScalingPolicy
from .sqs_metrics import queue_metrics
from .tasks import TaskRunner, tasks_that_fit
from .triggers import EventSourceMapping, Schedule
from .provision import Provisioner
from .stack import Stack

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
    ``workers``: the most worker processes the service scales out to (the template's
    ``TranscoderMaxTasks``; default: CPU cores). ``scale_interval``: seconds between scaling
    evaluations. ``env``: extra ``VODPIPE_*``
    settings for handlers and workers (e.g. ``VODPIPE_LADDER``). ``params``: template
    parameters. ``alarm_interval``: seconds between alarm evaluations. ``schedule_seconds``:
    run scheduled functions this often instead of at their rate (tests).
    """

    def __init__(self, port: int = DEFAULT_PORT, api_port: int = DEFAULT_API_PORT, workers: int | None = None,
                 endpoint_url: str | None = None, env: dict[str, str] | None = None,
                 state_dir: Path | str | None = None, params: dict[str, Any] | None = None,
                 alarm_interval: float = 10.0, schedule_seconds: float | None = None,
                 api_read_auth: bool = False, enforce_iam: bool = True, template: dict | None = None,
                 scale_interval: float = 2.0):
        self.port = port
        self.api_port = api_port
        self.workers = workers if workers is not None else (os.cpu_count() or 2)
        self.endpoint_url = endpoint_url
        self.extra_env = dict(env or {})
        self.worker_env_overrides: dict[str, str] = {}
        self.state_dir = Path(state_dir or ROOT / ".vodpipe")
        # Locally, players read the outputs straight from the emulator's bucket.
        self.params = {"PublicOutputs": "true", "TranscoderMaxTasks": self.workers, **(params or {})}
        self.scale_interval = scale_interval
        self.region = LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"]
        self._moto = None
        self._api: ApiGateway | None = None
        self.package: LambdaPackage | None = None
        self.functions: dict[str, FunctionSpec] = {}
        self.pools: dict[str, FunctionPool] = {}
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
        env = {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url or ""}
        if self.stack:
            env.update(self.stack.app_env())
            # players read the outputs from the emulator's bucket (CloudFront's URL on AWS)
            env["VODPIPE_OUTPUT_BASE_URL"] = f"{self.endpoint_url}/{env['VODPIPE_OUTPUT_BUCKET']}"
            # workers share this machine: plan no more chunks than it holds tasks (tasks.py)
            env["VODPIPE_CHUNK_PARALLELISM"] = str(tasks_that_fit(self.stack.task_definition(), os.cpu_count() or 1,
                                                                  self.workers))
        # locally, webhooks and URL imports may target this machine (a receiver or a file
        # server on 127.0.0.1; never on AWS) and webhooks are signed with a development secret
        # (the WebhookSecret parameter on AWS)
        env.update({"VODPIPE_WEBHOOK_ALLOW_PRIVATE": "1", "VODPIPE_IMPORT_ALLOW_PRIVATE": "1", "VODPIPE_WEBHOOK_SECRET": LOCAL_WEBHOOK_SECRET,
                    "VODPIPE_API_READ_AUTH": "true" if self.api_read_auth else "false"})
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

    def authorize(self, principal: str, action: str, resource: str) -> bool:
        """Whether ``principal``'s role allows ``action`` on ``resource`` (for calls the local
        cloud itself makes on a principal's behalf, e.g. the ECS agent). Records a denial."""
        known = self.principals.get(principal)
        if known is None or not self.enforce_iam or not (self._moto and self._moto.iam):
            return True
        allowed = known.decide(action, resource)
        if not allowed:
            self._moto.iam.denials.append({"principal": principal, "action": action, "resource": resource})
        return allowed

    @property
    def cluster_name(self) -> str:
        return str(self.stack.refs["TranscoderCluster"])

    def _visible_tasks(self) -> int:
        """ApproximateNumberOfMessagesVisible of both task queues (the scaling metric's numerator)."""
        return sum(self.queue_metrics.visible(self.stack.attrs[q]["QueueName"]) for q in ("TasksQueue", "TasksHighQueue"))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def console_url(self) -> str:
        """The web console, served at the API's origin."""
        return f"{self.api_url}/console/"

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
        # the functions run from what `make package` builds for Lambda (rebuilt if stale)
        self.package = LambdaPackage.ensure()
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
        # metric-math alarms (Metrics) drive scaling policies: the task runner's scaler plays them
        alarms = [self.stack.refs[k] for k, r in self.stack.template["Resources"].items()
                  if r["Type"] == "AWS::CloudWatch::Alarm" and k in self.stack.refs
                  and "Metrics" not in r.get("Properties", {})]
        app_stage = f"{self.stack.params['AppName']}-{self.stack.params['Stage']}"
        self.alarms = AlarmEvaluator(self, alarms, f"/vodpipe/{app_stage}/alarm-history", self.alarm_interval)
        self.alarms.start()
        self.functions = self.package.functions(self.stack)
        for spec in self.functions.values():
            if spec.queue:
                m = EventSourceMapping(self, spec.name, spec.queue, spec.batch_size)
                m.start()
                self.mappings.append(m)
            elif spec.schedule:
                seconds = self.schedule_seconds or Schedule.rate_seconds(spec.schedule)
                sched = Schedule(self, spec.name, seconds)
                sched.start()
                self.mappings.append(sched)
        self._start_api()
        self.queue_metrics = queue_metrics(self)  # the scaler's metric, as SQS publishes it
        self.task_runner = TaskRunner(self, self.stack.task_definition(), ScalingPolicy.from_stack(self.stack),
                                      self.state_dir / "logs", self._visible_tasks, self.scale_interval)
        self.task_runner.start()

    def _load_app(self) -> None:
        """Read the app's route table (API Gateway's view of the REST API, as in the packaged
        swagger); the functions themselves run from the package (``runtime.py``)."""
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

    def function_env(self, function_name: str, log_stream: str = "") -> dict[str, str]:
        """The whole environment of a function's execution environment, as Lambda builds it:
        the runtime's variables, the packaged template's ``Environment`` (resolved), then what
        differs locally (endpoint, the local settings of ``base_env``) and its role's
        credentials. Nothing from this process's environment; PATH holds only ``python3``."""
        spec = self.functions[function_name]
        env = runtime_environment(spec, self.region, self.shipper.function_group(function_name), log_stream)
        env.update(spec.environment)
        env.update({k: v for k, v in self.base_env().items() if k.startswith(("VODPIPE_", "AWS_ENDPOINT_URL"))})
        env["VODPIPE_FUNCTION_ARN"] = f"arn:aws:lambda:{self.region}:{self.stack.account}:function:{function_name}"
        env.update(self.credentials(f"function:{function_name}"))
        env["PATH"] = str(self.package.bin_dir)
        return env

    def _new_container(self, function_name: str) -> FunctionContainer:
        day = time.strftime("%Y/%m/%d", time.gmtime())
        container_id = uuid.uuid4().hex
        stream = f"{day}/[$LATEST]{container_id}"
        log_path = self.state_dir / "logs" / f"function-{function_name}-{container_id[:8]}.log"
        container = FunctionContainer(self.functions[function_name], self.package,
                                      self.function_env(function_name, stream), log_path)
        container.container_id = container_id
        log_path.touch()
        self.shipper.tail(log_path, self.shipper.function_group(function_name), stream)
        return container

    def _pool(self, function_name: str) -> FunctionPool:
        with self._containers_lock:
            if function_name not in self.pools:
                if function_name not in self.functions:
                    raise KeyError(f"no function {function_name} in the packaged template")
                self.pools[function_name] = FunctionPool(lambda: self._new_container(function_name))
            return self.pools[function_name]

    def invoke(self, function_name: str, event: dict) -> Any:
        """Invoke a function the way Lambda would: from its package, in a warm execution
        environment of its own. Raises ``InvocationError`` when the handler raised or timed out."""
        return self._pool(function_name).invoke(event)

    def _start_api(self) -> None:
        if self.api_port == 0:
            self.api_port = free_port()
        elif port_in_use(self.api_port):
            raise RuntimeError(f"API port {self.api_port} is in use; choose another with --api-port")
        secrets = {LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]: LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
        user_pool, site = local_console(self.stack, self.client("cognito-idp"), self.endpoint_url, self.region)
        self._api = ApiGateway(self.app, self.api_port, lambda event: self.invoke("api", event), secrets, self.region,
                               user_pool, site)
        self._api.start()

    def stop(self) -> None:
        """Stop workers (SIGTERM, then SIGKILL), pollers, the API and the emulator."""
        if self.task_runner:
            self.task_runner.stop()
        for m in self.mappings:
            m.stop()
        for m in self.mappings:
            m.join(timeout=0.2)  # a long poll in flight ends when the emulator stops
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
        for pool in list(self.pools.values()):
            pool.stop()
        self.pools = {}
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

    # --- conveniences -----------------------------------------------------------------
    def api_call(self, method: str, path: str, body: bytes | None = None, signed: bool = True,
                 headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Call the local API as an IAM principal would (SigV4 for execute-api with the local
        credentials), with extra ``headers``. Returns (HTTP status, parsed JSON body or None)."""
        import json
        import urllib.error
        import urllib.request
        url = self.api_url + path
        headers = {"Content-Type": "application/json", **(headers or {})}
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
