"""The one failure path of a job (``services.job_failure.fail_job``) on recorded doubles: what
it writes, publishes and counts in each of its callers' modes."""
import json

import pytest

from chalicelib import metrics
from chalicelib.config import Settings
from chalicelib.services.context import Context
from chalicelib.services.job_failure import fail_job

ERROR = {"code": "UNDECODABLE_VIDEO", "message": "corrupt"}


class RecordedStore:
    """A job store whose conditional writes succeed as told, recording each call."""

    def __init__(self, create_ok: bool = False, set_ok: bool = False):
        self.create_ok, self.set_ok, self.calls = create_ok, set_ok, []

    def create_job(self, job, tasks):
        self.calls.append(("create_job", job["job_status"], list(tasks)))
        return self.create_ok

    def set_job_status(self, job_id, status, **fields):
        self.calls.append(("set_job_status", status, sorted(fields)))
        return self.set_ok


class RecordedEvents:
    def __init__(self):
        self.published = []

    def publish(self, event_type, job_id, status, detail, metadata=None):
        self.published.append((event_type, job_id, status, detail, metadata))


@pytest.fixture
def emitted(monkeypatch):
    lines = []
    monkeypatch.setattr(metrics, "sink", lines.append)
    return lambda: [sorted(m["Name"] for m in json.loads(x)["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for x in lines]


def ctx_with(store):
    context = Context(Settings.from_env({}))
    context.__dict__.update(store=store, events=RecordedEvents())  # the cached_properties' slots
    return context


def test_an_existing_job_moves_to_failed_publishes_once_and_counts_alone(emitted):
    ctx = ctx_with(RecordedStore(set_ok=True))
    assert fail_job(ctx, "j1", ERROR, metadata={"a": "b"})
    assert ctx.store.calls == [("set_job_status", "failed", ["completed_at", "error"])]
    assert ctx.events.published == [("JobFailed", "j1", "failed", {"error": ERROR}, {"a": "b"})]
    assert emitted() == [["JobsFailed"]]


def test_a_job_that_already_ended_is_left_alone(emitted):
    ctx = ctx_with(RecordedStore(set_ok=False))
    assert not fail_job(ctx, "j1", ERROR)
    assert ctx.events.published == [] and emitted() == []


def test_a_created_failed_job_counts_in_the_callers_document(emitted):
    ctx = ctx_with(RecordedStore(create_ok=True))
    values = [("Uploads", 1, metrics.Unit.Count)]
    assert fail_job(ctx, "j1", ERROR, event_detail={"source": {"bucket": "b", "key": "k"}}, update_existing=False,
                    create={"job_id": "j1", "job_status": "failed", "error": ERROR}, metric_values=values)
    assert ctx.store.calls == [("create_job", "failed", [])]
    assert ctx.events.published == [("JobFailed", "j1", "failed", {"error": ERROR, "source": {"bucket": "b", "key": "k"}},
                                      None)]
    assert [v[0] for v in values] == ["Uploads", "JobsFailed"] and emitted() == []


@pytest.mark.parametrize("update_existing, calls, failed", [
    (False, ["create_job"], False),                    # ingest: a job that exists is left as it is
    (True, ["create_job", "set_job_status"], True),    # ingest dead letter: it moves to failed
])
def test_an_existing_job_on_create_is_updated_only_when_asked(update_existing, calls, failed):
    ctx = ctx_with(RecordedStore(create_ok=False, set_ok=True))
    values = []
    assert fail_job(ctx, "j1", ERROR, create={"job_id": "j1", "job_status": "failed"}, update_existing=update_existing,
                    metric_values=values) is failed
    assert [c[0] for c in ctx.store.calls] == calls
    assert len(ctx.events.published) == len(values) == int(failed)
