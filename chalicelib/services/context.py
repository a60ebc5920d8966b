"""Lazily built adapters for one process (a Lambda container, a worker task, a test)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from chalicelib.aws.checkpoints import CheckpointStore
from chalicelib.aws.events import Events
from chalicelib.aws.jobstore import JobStore
from chalicelib.aws.monitoring import Monitoring
from chalicelib.aws.objects import Objects
from chalicelib.aws.queues import Queues
from chalicelib.aws.records import Records
from chalicelib.aws.task_protection import TaskProtection
from chalicelib.config import Settings


@dataclass
class Context:
    """Settings plus the adapters built from them on first use."""

    settings: Settings = field(default_factory=Settings.from_env)

    @cached_property
    def store(self) -> JobStore:
        s = self.settings
        return JobStore(s.jobs_table, s.region, s.endpoint_url)

    @cached_property
    def checkpoints(self) -> CheckpointStore:
        s = self.settings
        return CheckpointStore(s.jobs_table, s.region, s.endpoint_url)

    @cached_property
    def records(self) -> Records:
        s = self.settings
        return Records(s.jobs_table, s.region, s.endpoint_url)

    @cached_property
    def queues(self) -> Queues:
        return Queues(self.settings.region, self.settings.endpoint_url)

    @cached_property
    def objects(self) -> Objects:
        return Objects(self.settings.region, self.settings.endpoint_url)

    @cached_property
    def monitoring(self) -> Monitoring:
        return Monitoring(self.settings.region, self.settings.endpoint_url)

    @cached_property
    def events(self) -> Events:
        s = self.settings
        return Events(s.events_topic_arn, s.region, s.endpoint_url)

    @cached_property
    def idempotency(self):
        """Powertools Idempotency persistence on the jobs table (``aws.idempotency``)."""
        from chalicelib.aws.idempotency import persistence_layer
        s = self.settings
        return persistence_layer(s.jobs_table, s.region, s.endpoint_url)

    @cached_property
    def protection(self) -> TaskProtection:
        return TaskProtection(self.settings.ecs_agent_uri)
