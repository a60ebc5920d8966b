"""The local cloud: everything AWS would run for vodpipe, on one machine, without root or Docker.

``LocalCloud`` composes the services the local cloud plays, each in its own package, and starts
them in order (``docs/local-cloud.md`` has the rules they follow):

1. the Lambda deployment package, built as ``make package`` builds it (``awslambda/package.py``);
2. the emulator: moto server on 127.0.0.1 behind the local IAM (``emulator/``, ``iam/``), with
   its state in a data directory when given one, and S3's lifecycle rules applied on a
   schedule; or an endpoint that is already running, e.g. LocalStack, given as
   ``endpoint_url`` (no IAM check);
3. the stack from ``infra/template.yaml``: planned, then executed (``cloudformation/``);
4. the principals of the stack's roles with their own keys (``iam/identities.py``);
5. CloudWatch: log shipping and EMF metrics, alarm evaluation (``cloudwatch/``);
6. Lambda: each function from its package, in its own processes, with its event sources
   (``awslambda/``);
7. API Gateway in front of the ``api`` function, with the web console (``apigateway/``);
8. the ECS service of the transcoder with its scaling policies (``ecs/``).

Each service gets what it needs (clients, callables, settings), not the cloud. ``LocalCloud``
is a context manager; tests use it as a fixture, ``vodpipe up`` in the foreground.
"""
from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from infra.local.apigateway.auth import sign_request
from infra.local.apigateway.console import local_console
from infra.local.apigateway.gateway import ApiGateway
from infra.local.apigateway.routes import read_routes, route_table
from infra.local.awslambda.package import LambdaPackage
from infra.local.awslambda.service import LambdaService
from infra.local.cloudformation.provision import Provisioner
from infra.local.cloudformation.template import Stack, load_template
from infra.local.cloudwatch.alarms import AlarmEvaluator
from infra.local.cloudwatch.logs import LogShipper
from infra.local.cloudwatch.sqs_metrics import queue_metrics
from infra.local.ecs.autoscaling import ScalingPolicy
from infra.local.ecs.service import TranscoderService, tasks_that_fit
from infra.local.emulator.durable_state import DurableState
from infra.local.emulator.s3_lifecycle import LifecycleScheduler
from infra.local.emulator.server import EmulatorServer
from infra.local.iam.identities import Identities
from infra.local.network import DEFAULT_API_PORT, DEFAULT_PORT, LOCAL_CREDENTIALS, free_port, port_in_use

log = logging.getLogger("vodpipe.local")
ROOT = Path(__file__).resolve().parents[2]
LOCAL_WEBHOOK_SECRET = "vodpipe-local-webhook-secret"
#: Where ``vodpipe up`` keeps the emulator's state unless told otherwise (``--data-dir``).
DEFAULT_DATA_DIR = ROOT / ".vodpipe" / "data"


class LocalCloud:
    """Start/stop the whole local cloud.

    ``port``: emulator port (``DEFAULT_PORT`` 4566; 0 picks a free one) unless
    ``endpoint_url`` names a running endpoint. ``api_port``: the HTTP API (0: free port).
    ``workers``: the most worker tasks the service scales out to (the template's
    ``TranscoderMaxTasks``; default: CPU cores). ``scale_interval``: seconds between scaling
    evaluations. ``env``: ``VODPIPE_*`` settings over the template's for the functions and the
    worker tasks (e.g. ``VODPIPE_LADDER``), as an edit of the template would give them.
    ``params``: template parameters. ``alarm_interval``: seconds between alarm evaluations.
    ``schedule_seconds``: run scheduled functions this often instead of at their rate (tests).
    ``api_read_auth``: GETs need SigV4 too (on AWS by default). ``enforce_iam``: each function
    and task limited to its role (embedded emulator only). ``template``: default
    ``infra/template.yaml``. ``state_dir``: logs of the functions, tasks and the cloud itself.
    ``data_dir``: where the embedded emulator keeps its state (every bucket, table, queue,
    topic, log group, metric, alarm and user pool), loaded at start and written before each
    call that changes it is answered (``emulator/durable_state.py``); None keeps it in memory
    (tests). Raises ``StateFormatError`` at start for a directory of another format.
    ``lifecycle_interval``: seconds between runs of the buckets' lifecycle rules (embedded
    emulator; ``emulator/s3_lifecycle.py``), the first at start.
    """

    def __init__(self, port: int = DEFAULT_PORT, api_port: int = DEFAULT_API_PORT, workers: int | None = None,
                 endpoint_url: str | None = None, env: dict[str, str] | None = None,
                 state_dir: Path | str | None = None, params: dict[str, Any] | None = None,
                 alarm_interval: float = 10.0, schedule_seconds: float | None = None,
                 api_read_auth: bool = False, enforce_iam: bool = True, template: dict | None = None,
                 scale_interval: float = 2.0, data_dir: Path | str | None = None,
                 lifecycle_interval: float = 3600.0):
        self.port, self.api_port, self.endpoint_url = port, api_port, endpoint_url
        self.workers = workers if workers is not None else (os.cpu_count() or 2)
        self.overrides = dict(env or {})
        self.state_dir = Path(state_dir or ROOT / ".vodpipe")
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.state: DurableState | None = None
        self.lifecycle_interval = lifecycle_interval
        self.lifecycle: LifecycleScheduler | None = None
        # Locally, players read the outputs straight from the emulator's bucket.
        self.params = {"PublicOutputs": "true", "TranscoderMaxTasks": self.workers, **(params or {})}
        self.alarm_interval, self.schedule_seconds, self.scale_interval = alarm_interval, schedule_seconds, scale_interval
        self.api_read_auth, self.enforce_iam, self.template = api_read_auth, enforce_iam, template
        self.region = LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"]
        self.emulator: EmulatorServer | None = None
        self.stack: Stack | None = None
        self.identities: Identities | None = None
        self.shipper: LogShipper | None = None
        self.alarms: AlarmEvaluator | None = None
        self.lambdas: LambdaService | None = None
        self.gateway: ApiGateway | None = None
        self.transcoder: TranscoderService | None = None
        self._log_handler: logging.Handler | None = None

    # --- what the services are given ---------------------------------------------------
    def own_settings(self) -> dict[str, set[str]]:
        """The variables that only one function may get, by function: the names in the
        template's ``Metadata.VodpipeFunctions.FunctionEnvironment`` (the webhook signing key
        and URLs: ``webhooks``)."""
        template = self.stack.template if self.stack else (self.template or load_template())
        spec = ((template.get("Metadata") or {}).get("VodpipeFunctions") or {}).get("FunctionEnvironment") or {}
        return {fn: set(variables or {}) for fn, variables in spec.items()}

    def restricted_settings(self) -> set[str]:
        """Every name of ``own_settings``: never in ``local_settings``, a worker task's
        environment or ``vodpipe env``, whoever asks for it in ``env``."""
        return {name for names in self.own_settings().values() for name in names}

    def function_settings(self) -> dict[str, dict[str, str]]:
        """What one function alone gets over ``local_settings`` (its packaged environment
        already holds the template's values): a development webhook secret where the template
        gives the function the secret, then the caller's ``env`` for its own variables."""
        out: dict[str, dict[str, str]] = {}
        for fn, names in self.own_settings().items():
            values = {"VODPIPE_WEBHOOK_SECRET": LOCAL_WEBHOOK_SECRET} if "VODPIPE_WEBHOOK_SECRET" in names else {}
            values.update({k: v for k, v in self.overrides.items() if k in names})
            out[fn] = values
        return out

    def local_settings(self) -> dict[str, str]:
        """What differs from AWS, for every function (and, in part, every task): the endpoint,
        the output URL players use, the chunk parallelism this machine holds, the local
        allowances (webhooks and URL imports may target this machine; API read auth as asked),
        then the caller's ``env`` but for ``restricted_settings`` (the webhook secret goes to
        the webhooks function alone: ``function_settings``)."""
        env = {"AWS_ENDPOINT_URL": self.endpoint_url or ""}
        if self.stack:
            env.update(self.stack.app_env())
            # players read the outputs from the emulator's bucket (CloudFront's URL on AWS)
            env["VODPIPE_OUTPUT_BASE_URL"] = f"{self.endpoint_url}/{env['VODPIPE_OUTPUT_BUCKET']}"
            # workers share this machine: plan no more chunks than it holds tasks (ecs/service.py)
            env["VODPIPE_CHUNK_PARALLELISM"] = str(tasks_that_fit(self.stack.task_definition(), os.cpu_count() or 1,
                                                                  self.workers))
        env.update({"VODPIPE_WEBHOOK_ALLOW_PRIVATE": "1", "VODPIPE_IMPORT_ALLOW_PRIVATE": "1",
                    "VODPIPE_API_READ_AUTH": "true" if self.api_read_auth else "false"})
        restricted = self.restricted_settings()
        env.update({k: v for k, v in self.overrides.items() if k not in restricted})
        return env

    def task_overrides(self) -> dict[str, str]:
        """What a worker task gets over its task definition here: the endpoint, the output URL
        players use, and the caller's ``env`` but for ``restricted_settings``; nothing else of
        ``local_settings``."""
        settings, restricted = self.local_settings(), self.restricted_settings()
        return {"AWS_ENDPOINT_URL": settings["AWS_ENDPOINT_URL"],
                "VODPIPE_OUTPUT_BASE_URL": settings["VODPIPE_OUTPUT_BASE_URL"],
                **{k: v for k, v in self.overrides.items() if k not in restricted}}

    def client(self, service: str, principal: str | None = None):
        """A boto3 client as the local administrator, or as ``principal`` (e.g.
        ``function:ingest``: what that role may do, no more)."""
        creds = self.credentials(principal)
        return boto3.session.Session(aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                                     aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                                     region_name=self.region).client(service, endpoint_url=self.endpoint_url)

    def credentials(self, principal: str | None) -> dict[str, str]:
        """Access keys of ``principal`` (the administrator's for None or an unknown name)."""
        if self.identities is None:
            return {k: LOCAL_CREDENTIALS[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        return self.identities.credentials(principal)

    @property
    def denials(self) -> list[dict[str, str]]:
        """Calls the local IAM refused so far: {principal, action, resource}."""
        return self.identities.denials if self.identities else []

    @property
    def api_url(self) -> str:
        """The HTTP API's base URL."""
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
        package = LambdaPackage.ensure()  # what `make package` builds for Lambda (rebuilt if stale)
        log_dir = self.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._own_log(log_dir / "local-cloud.log")
        if self.endpoint_url is None:
            self._start_emulator()
        admin = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=self.region)
        self.stack = Provisioner(admin, self.endpoint_url, self.region).provision(self.params, self.template)
        self.identities = Identities(self.stack, self.emulator.iam if self.emulator else None)
        app_stage = f"{self.stack.params['AppName']}-{self.stack.params['Stage']}"
        prefix = f"/aws/lambda/{app_stage}"
        self.shipper = LogShipper(self.client("logs"), self.client("cloudwatch"),
                                  lambda fn: prefix if fn == "api" else f"{prefix}-{fn}")
        self.shipper.start()
        queues = queue_metrics(self.emulator is not None, self.stack.account, self.region, self.client("sqs"))
        # metric-math alarms (Metrics) drive scaling policies: the ECS service's scaler plays them
        alarms = [self.stack.refs[k] for k, r in self.stack.template["Resources"].items()
                  if r["Type"] == "AWS::CloudWatch::Alarm" and k in self.stack.refs
                  and "Metrics" not in r.get("Properties", {})]
        self.alarms = AlarmEvaluator(self.client, self.stack, self.shipper, queues, alarms,
                                     f"/vodpipe/{app_stage}/alarm-history", self.alarm_interval)
        self.alarms.start()
        settings = {k: v for k, v in self.local_settings().items() if k.startswith(("VODPIPE_", "AWS_ENDPOINT_URL"))}
        self.lambdas = LambdaService(package, self.stack, self.region, self.credentials, settings, self.shipper, log_dir,
                                     self.function_settings())
        self.lambdas.start_event_sources(self.client, self.schedule_seconds)
        self._start_gateway()
        stack = self.stack
        cluster = stack.refs["TranscoderCluster"]
        self.transcoder = TranscoderService(
            stack.task_definition(), ScalingPolicy.from_stack(stack), log_dir,
            lambda: sum(queues.visible(stack.attrs[q]["QueueName"]) for q in ("TasksQueue", "TasksHighQueue", "TasksFirstQueue")),
            lambda task_id: f"arn:aws:ecs:{self.region}:{stack.account}:task/{cluster}/{task_id}",
            lambda action, arn: self.identities.authorize("task:transcoder", action, arn),
            self.credentials("task:transcoder"), self.task_overrides(), self.region, self.shipper, self.scale_interval)
        self.transcoder.start()

    def _own_log(self, path: Path) -> None:
        """The local cloud's own lines (alarms, IAM denials, worker exits) go to ``path``, not
        onto the terminal of ``vodpipe up`` / ``vodpipe demo``."""
        self._log_handler = logging.FileHandler(path)
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        own = logging.getLogger("vodpipe.local")
        self._log_level, self._log_propagate = own.level, own.propagate
        own.addHandler(self._log_handler)
        own.setLevel(logging.INFO)
        own.propagate = False

    def _start_emulator(self) -> None:
        if self.port == 0:
            self.port = free_port()
        elif port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is in use (is `vodpipe up` already running? "
                               f"use --port 0 or AWS_ENDPOINT_URL=http://127.0.0.1:{self.port})")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request lines from the emulator
        if self.data_dir is not None:
            self.state = DurableState(self.data_dir).open()
        self.emulator = EmulatorServer("127.0.0.1", self.port, self.region, enforce_iam=self.enforce_iam,
                                       state=self.state)
        self.emulator.start()
        # S3 acts on lifecycle rules in the background; moto stores them only
        self.lifecycle = LifecycleScheduler(self.lifecycle_interval, self.state)
        self.lifecycle.start()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

    def _start_gateway(self) -> None:
        if self.api_port == 0:
            self.api_port = free_port()
        elif port_in_use(self.api_port):
            raise RuntimeError(f"API port {self.api_port} is in use; choose another with --api-port")
        # the REST API's definition, as `chalice package` derives it with the api function's settings
        api_env = {k: v for k, v in self.lambdas.function_env("api").items() if k != "PATH"}
        routes = route_table(read_routes(ROOT, {**api_env, "PATH": os.defpath}))
        secrets = {LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]: LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
        user_pool, site = local_console(self.stack, self.client("cognito-idp"), self.endpoint_url, self.region)
        self.gateway = ApiGateway(routes, self.api_port, lambda event: self.lambdas.invoke("api", event), secrets,
                                  self.region, user_pool, site)
        self.gateway.start()

    def stop(self) -> None:
        """Stop in the reverse order of the start: the worker tasks (SIGTERM, then SIGKILL
        after ``StopTimeout``), the API, the functions and their event sources, CloudWatch's
        parts, the emulator."""
        if self.transcoder:
            self.transcoder.stop()
        if self.gateway:
            self.gateway.stop()
            self.gateway = None
        if self.lambdas:
            self.lambdas.stop()
        if self.alarms:
            self.alarms.stop()
        if self.shipper:
            self.shipper.stop()
        if self.lifecycle:
            self.lifecycle.stop()
            self.lifecycle = None
        if self.emulator:
            self.emulator.stop()
            self.emulator = None
        if self.state:
            self.state.close()
            self.state = None
        if self._log_handler:
            own = logging.getLogger("vodpipe.local")
            own.removeHandler(self._log_handler)
            own.setLevel(self._log_level)
            own.propagate = self._log_propagate
            self._log_handler.close()
            self._log_handler = None

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- conveniences -----------------------------------------------------------------
    def api_call(self, method: str, path: str, body: bytes | None = None, signed: bool = True,
                 headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Call the local API as an IAM principal would (SigV4 for execute-api with the local
        credentials), with extra ``headers``. Returns (HTTP status, parsed JSON body or None)."""
        url = self.api_url + path
        headers = {"Content-Type": "application/json", **(headers or {})}
        if signed:
            headers.update(sign_request(method, url, body, LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                        LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], self.region))
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                text = answer.read()
                return answer.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, json.loads(text) if text else None

    def export_lines(self) -> list[str]:
        """``export`` lines for another shell (``eval "$(vodpipe env)"``): the local settings,
        the administrator's credentials and the API's URL."""
        env = {**LOCAL_CREDENTIALS, **self.local_settings(), "VODPIPE_API_URL": self.api_url,
               # LocalStack's tools (awslocal, its SDK helpers) find the endpoint by this name
               "LOCALSTACK_HOST": self.endpoint_url.split("//", 1)[1] if self.endpoint_url else ""}
        return [f"export {k}={v}" for k, v in sorted(env.items()) if v]
