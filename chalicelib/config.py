"""The one reader of the environment: frozen settings for handlers, services and workers.

Every name here is set by ``infra/template.yaml`` on AWS (Lambda and task-definition
environment) and by the local cloud (``infra/local``) on a laptop. Defaults match the
template's names for app ``vodpipe``, stage ``dev`` and moto's account 123456789012, so
a developer shell needs no variables at all.

Two kinds of reader: ``Settings.from_env`` (once per process, frozen) and, for the few
variables a test or a drill changes while a process runs, functions that read the variable at
each call (``faults_file``, ``tool_paths``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from .domain.chunks import MAX_CHUNK_SECONDS, MIN_CHUNK_SECONDS
from .domain.work import DEFAULT_MAX_JOB_VCPU_SECONDS

DEFAULT_ACCOUNT = "123456789012"


def resource_names(app: str = "vodpipe", stage: str = "dev", account: str = DEFAULT_ACCOUNT) -> dict[str, str]:
    """Physical resource names as ``infra/template.yaml`` derives them (``Fn::Sub`` patterns).

    Returns a dict of environment variable name -> resource name. Kept in one place so the
    CLI, the local cloud and the handlers agree with the template; ``tests/test_template.py``
    checks that they do.
    """
    prefix = f"{app}-{stage}"
    return {
        "VODPIPE_INGEST_BUCKET": f"{prefix}-{account}-ingest",
        "VODPIPE_OUTPUT_BUCKET": f"{prefix}-{account}-output",
        "VODPIPE_INGEST_QUEUE": f"{prefix}-ingest",
        "VODPIPE_INGEST_DLQ": f"{prefix}-ingest-dlq",
        "VODPIPE_TASKS_QUEUE": f"{prefix}-transcode-tasks",
        "VODPIPE_TASKS_DLQ": f"{prefix}-transcode-tasks-dlq",
        "VODPIPE_TASKS_FIRST_QUEUE": f"{prefix}-transcode-tasks-first",
        "VODPIPE_TASKS_HIGH_QUEUE": f"{prefix}-transcode-tasks-high",
        "VODPIPE_TASKS_HIGH_DLQ": f"{prefix}-transcode-tasks-high-dlq",
        "VODPIPE_JOBS_TABLE": f"{prefix}-jobs",
        "VODPIPE_EVENTS_TOPIC": f"{prefix}-job-events",
        "VODPIPE_WEBHOOKS_QUEUE": f"{prefix}-webhooks",
        "VODPIPE_ALARM_PREFIX": f"{prefix}-",
    }


@dataclass(frozen=True)
class Settings:
    """Runtime settings. Units: seconds, bits/s, pixels.

    ``ladder`` is the list of rung heights (short side, pixels) to plan, e.g. ``(1080, 720,
    480, 360, 240)``; tests shorten it with ``VODPIPE_LADDER=360,240``.
    """

    region: str = "us-east-1"
    endpoint_url: str | None = None
    ingest_bucket: str = ""
    output_bucket: str = ""
    ingest_queue: str = ""
    ingest_dlq: str = ""
    tasks_queue: str = ""
    tasks_dlq: str = ""
    #: the high-priority task queue and its dead-letter queue (workers take it first)
    tasks_high_queue: str = ""
    #: the queue of normal-priority tasks that make a job playable (``task_messages.makes_playable``)
    tasks_first_queue: str = ""
    tasks_high_dlq: str = ""
    jobs_table: str = ""
    events_topic_arn: str = ""
    output_base_url: str | None = None
    ladder: tuple[int, ...] = (1080, 720, 480, 360, 240)
    max_frame_rate: float = 60.0
    x264_preset: str = "veryfast"
    ffmpeg_threads: int = 0
    #: ``crf`` (capped CRF, default) or ``abr`` (``chalicelib.domain.ffmpeg_args.x264_options``)
    rate_control: str = "crf"
    #: chunking: how many tasks may encode one job at once (the service's maximum task count
    #: on AWS, the worker count locally), and the shortest and longest chunk (s)
    chunk_parallelism: int = 8
    min_chunk_seconds: float = MIN_CHUNK_SECONDS
    max_chunk_seconds: float = MAX_CHUNK_SECONDS
    #: the first chunk's length (s; under a segment: a short first segment of just that,
    #: ``chunks.lead_for``; else rounded up to whole segments; 0: no short first chunk): the
    #: presentation is published once it and the audio are in (``chunks.plan_chunks``)
    first_chunk_seconds: float = 0.5
    #: URL imports (POST /jobs with an https source): longest transfer (s; within the ingest
    #: function's 60 s timeout), and whether private
    #: addresses and plain http are allowed (the local cloud's test servers; never on AWS)
    import_timeout: float = 45.0
    import_allow_private: bool = False
    #: how long an upload without settings waits for its sidecar ``<key>.json`` (s; 0: never,
    #: the default: a sidecar comes first, and an upload starts at once)
    sidecar_wait_seconds: int = 0
    task_visibility_timeout: int = 120
    poll_wait_seconds: int = 5
    presign_expiry: int = 6 * 3600
    progress_min_step: float = 10.0
    progress_min_interval: float = 5.0
    #: bounded work: slowest acceptable encode (x real time), shortest bound of one ffmpeg run
    #: (s), and how long past its run's bound a worker may keep extending a message (s)
    min_speed: float = 0.05
    min_run_seconds: float = 120.0
    heartbeat_grace_seconds: float = 300.0
    #: ingest limits: bytes, seconds, pixels per frame (displayed width x height)
    max_bytes: int = 20 * 1024**3
    max_duration: float = 6 * 3600.0
    max_pixels: int = 7680 * 4320
    #: the most work one job may ask for, estimated at ingest (vCPU-seconds,
    #: ``chalicelib.domain.work``; template parameter ``MaxJobVcpuSeconds``)
    max_job_vcpu_seconds: float = DEFAULT_MAX_JOB_VCPU_SECONDS
    #: webhooks: deployment-wide targets, HMAC secret (plain or ``whsec_<base64>``; set for the
    #: webhooks function only), whole POST deadline (s), private targets (and plain http) allowed
    webhooks_queue: str = ""
    #: every alarm of the stack is named ``<alarm_prefix><what>`` (GET /alarms lists them)
    alarm_prefix: str = ""
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = ""
    webhook_timeout: float = 5.0
    webhook_allow_private: bool = False
    #: whether read-only API routes need IAM (SigV4) authorization too (mutating ones always do)
    api_read_auth: bool = True
    #: the ECS agent of the task this worker runs in (ECS sets ECS_AGENT_URI; None outside ECS)
    ecs_agent_uri: str | None = None
    #: the worker's scratch directory for ffmpeg's output (``VODPIPE_WORKDIR``; None: the
    #: system's temporary directory), and whether it exits once the task queues are empty
    #: (``VODPIPE_WORKER_BURST=1``: tests and benches)
    workdir: str | None = None
    worker_burst: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    def tasks_queue_for(self, priority: str | None, first: bool = False) -> str:
        """The task queue of a task of a job of ``priority`` (``high``, else ``normal``):
        every task of a high job in the high queue; of a normal job, the tasks that make it
        playable (``first``: ``task_messages.makes_playable``) in the first queue, the others
        in the normal one. The fairness rule: docs/architecture.md, "Which task runs next"."""
        if priority == "high":
            return self.tasks_high_queue
        return self.tasks_first_queue if first and self.tasks_first_queue else self.tasks_queue

    @property
    def task_queues(self) -> tuple[str, ...]:
        """The task queues in the order workers take from them: high, first, normal."""
        return tuple(q for q in (self.tasks_high_queue, self.tasks_first_queue, self.tasks_queue) if q)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from ``env`` (default ``os.environ``).

        Raises ValueError when ``VODPIPE_LADDER`` is not a comma-separated list of integers.
        """
        env = os.environ if env is None else env
        names = resource_names(env.get("VODPIPE_APP", "vodpipe"), env.get("VODPIPE_STAGE", "dev"),
                               env.get("VODPIPE_ACCOUNT", DEFAULT_ACCOUNT))
        get = lambda key: env.get(key) or names[key]  # noqa: E731
        ladder = tuple(int(x) for x in env["VODPIPE_LADDER"].split(",")) if env.get("VODPIPE_LADDER") else cls.ladder
        endpoint = env.get("AWS_ENDPOINT_URL") or None
        base = env.get("VODPIPE_OUTPUT_BASE_URL") or None
        output_bucket = get("VODPIPE_OUTPUT_BUCKET")
        if base is None and endpoint:
            base = f"{endpoint.rstrip('/')}/{output_bucket}"
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        account = env.get("VODPIPE_ACCOUNT", DEFAULT_ACCOUNT)
        topic_arn = env.get("VODPIPE_EVENTS_TOPIC_ARN") or (
            f"arn:aws:sns:{region}:{account}:{get('VODPIPE_EVENTS_TOPIC')}")
        return cls(
            region=region,
            endpoint_url=endpoint,
            ingest_bucket=get("VODPIPE_INGEST_BUCKET"),
            output_bucket=output_bucket,
            ingest_queue=get("VODPIPE_INGEST_QUEUE"),
            ingest_dlq=get("VODPIPE_INGEST_DLQ"),
            tasks_queue=get("VODPIPE_TASKS_QUEUE"),
            tasks_dlq=get("VODPIPE_TASKS_DLQ"),
            tasks_high_queue=get("VODPIPE_TASKS_HIGH_QUEUE"),
            tasks_first_queue=get("VODPIPE_TASKS_FIRST_QUEUE"),
            tasks_high_dlq=get("VODPIPE_TASKS_HIGH_DLQ"),
            jobs_table=get("VODPIPE_JOBS_TABLE"),
            events_topic_arn=topic_arn,
            output_base_url=base,
            ladder=ladder,
            max_frame_rate=float(env.get("VODPIPE_MAX_FRAME_RATE", cls.max_frame_rate)),
            x264_preset=env.get("VODPIPE_X264_PRESET", cls.x264_preset),
            ffmpeg_threads=int(env.get("VODPIPE_FFMPEG_THREADS", cls.ffmpeg_threads)),
            rate_control=env.get("VODPIPE_RATE_CONTROL", cls.rate_control),
            chunk_parallelism=max(1, int(env.get("VODPIPE_CHUNK_PARALLELISM") or cls.chunk_parallelism)),
            min_chunk_seconds=float(env.get("VODPIPE_MIN_CHUNK_SECONDS", cls.min_chunk_seconds)),
            max_chunk_seconds=float(env.get("VODPIPE_MAX_CHUNK_SECONDS", cls.max_chunk_seconds)),
            first_chunk_seconds=float(env.get("VODPIPE_FIRST_CHUNK_SECONDS", cls.first_chunk_seconds)),
            import_timeout=float(env.get("VODPIPE_IMPORT_TIMEOUT", cls.import_timeout)),
            import_allow_private=env.get("VODPIPE_IMPORT_ALLOW_PRIVATE", "") in ("1", "true", "yes"),
            sidecar_wait_seconds=int(env.get("VODPIPE_SIDECAR_WAIT_SECONDS", cls.sidecar_wait_seconds)),
            task_visibility_timeout=int(env.get("VODPIPE_TASK_VISIBILITY_TIMEOUT", cls.task_visibility_timeout)),
            poll_wait_seconds=int(env.get("VODPIPE_POLL_WAIT_SECONDS", cls.poll_wait_seconds)),
            min_speed=float(env.get("VODPIPE_MIN_SPEED", cls.min_speed)),
            min_run_seconds=float(env.get("VODPIPE_MIN_RUN_SECONDS", cls.min_run_seconds)),
            heartbeat_grace_seconds=float(env.get("VODPIPE_HEARTBEAT_GRACE_SECONDS", cls.heartbeat_grace_seconds)),
            max_bytes=int(env.get("VODPIPE_MAX_BYTES", cls.max_bytes)),
            max_duration=float(env.get("VODPIPE_MAX_DURATION", cls.max_duration)),
            max_pixels=int(env.get("VODPIPE_MAX_PIXELS", cls.max_pixels)),
            max_job_vcpu_seconds=float(env.get("VODPIPE_MAX_JOB_VCPU_SECONDS") or cls.max_job_vcpu_seconds),
            webhooks_queue=get("VODPIPE_WEBHOOKS_QUEUE"),
            webhook_urls=tuple(u.strip() for u in env.get("VODPIPE_WEBHOOK_URLS", "").split(",") if u.strip()),
            webhook_secret=env.get("VODPIPE_WEBHOOK_SECRET", ""),
            alarm_prefix=get("VODPIPE_ALARM_PREFIX"),
            webhook_timeout=float(env.get("VODPIPE_WEBHOOK_TIMEOUT", cls.webhook_timeout)),
            webhook_allow_private=env.get("VODPIPE_WEBHOOK_ALLOW_PRIVATE", "") in ("1", "true", "yes"),
            api_read_auth=env.get("VODPIPE_API_READ_AUTH", "true").lower() not in ("0", "false", "no"),
            ecs_agent_uri=env.get("ECS_AGENT_URI") or None,
            workdir=env.get("VODPIPE_WORKDIR"),
            worker_burst=env.get("VODPIPE_WORKER_BURST") == "1",
        )


def faults_file(env: Mapping[str, str] | None = None) -> str | None:
    """The fault-injection rules file (``VODPIPE_FAULTS_FILE``, see ``chalicelib.faults``), or
    None when unset or empty. Read from ``env`` (default ``os.environ``) at every call: a test
    sets and removes it while the process runs. Raises nothing."""
    env = os.environ if env is None else env
    return env.get("VODPIPE_FAULTS_FILE") or None


def tool_paths(env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """The ``(ffmpeg, ffprobe)`` binaries named by ``VODPIPE_FFMPEG``/``VODPIPE_FFPROBE`` in
    ``env`` (default ``os.environ``); None for one not named (an empty value counts as not
    named), which ``chalicelib.tools.ffmpeg.binaries`` then looks up on ``PATH``. Raises
    nothing; whether a path exists is the caller's check."""
    env = os.environ if env is None else env
    return env.get("VODPIPE_FFMPEG") or None, env.get("VODPIPE_FFPROBE") or None


@dataclass(frozen=True)
class ClientSettings:
    """What a user's tools read from their shell (the ``vodpipe`` CLI, its client, the drills):
    the emulator endpoint (``AWS_ENDPOINT_URL``; None: the local cloud's default), the API's
    URL (``VODPIPE_API_URL``; None: the default port), app and stage (``VODPIPE_APP``,
    ``VODPIPE_STAGE``), region (``AWS_REGION``, else ``AWS_DEFAULT_REGION``), access keys
    (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``; None: the emulator's test keys), the
    cache of downloaded samples (``XDG_CACHE_HOME``/vodpipe, else ~/.cache/vodpipe) and the
    test media folder (``VODPIPE_MEDIA_DIR``; None: beside the checkout)."""

    endpoint_url: str | None = None
    api_url: str | None = None
    app: str = "vodpipe"
    stage: str = "dev"
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    cache_dir: str = ""
    media_dir: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ClientSettings":
        """Read ``env`` (default ``os.environ``); empty values count as unset. Raises nothing."""
        env = os.environ if env is None else env
        cache_home = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return cls(endpoint_url=env.get("AWS_ENDPOINT_URL") or None, api_url=env.get("VODPIPE_API_URL") or None,
                   app=env.get("VODPIPE_APP") or "vodpipe", stage=env.get("VODPIPE_STAGE") or "dev",
                   region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
                   access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
                   secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
                   cache_dir=os.path.join(cache_home, "vodpipe"), media_dir=env.get("VODPIPE_MEDIA_DIR") or None)
