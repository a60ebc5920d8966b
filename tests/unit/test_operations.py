"""The operations view of the API (``services.operations``): which metrics the charts ask
CloudWatch for, and how alarms and series come back, on a recorded ``Monitoring`` double."""
from datetime import datetime, timezone

import pytest

from chalicelib.config import Settings
from chalicelib.services import operations
from chalicelib.services.context import Context

NOW = datetime(2026, 11, 22, 18, 30, 20, tzinfo=timezone.utc)


class RecordedMonitoring:
    """Answers like CloudWatch with fixed data and records the queries."""

    def __init__(self):
        self.queries, self.window = [], None

    def alarms(self, prefix):
        self.prefix = prefix
        return [{"AlarmName": "vodpipe-dev-failed-jobs", "StateValue": "OK", "StateReason": "fine",
                 "StateUpdatedTimestamp": datetime(2026, 11, 22, 18, 0, tzinfo=timezone.utc), "MetricName": "JobsFailed",
                 "Threshold": 5.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold"},
                {"AlarmName": "vodpipe-dev-dead-letters", "StateValue": "ALARM", "StateReason": "1 datapoint [1]",
                 "StateUpdatedTimestamp": datetime(2026, 11, 22, 18, 5, tzinfo=timezone.utc),
                 "MetricName": "DeadLettersPending", "Threshold": 0.0, "ComparisonOperator": "GreaterThanThreshold"}]

    def metric_data(self, queries, start, end):
        self.queries, self.window = queries, (start, end)
        return [{"Id": "latency_1", "Timestamps": [datetime(2026, 11, 22, 18, 20, tzinfo=timezone.utc),
                                                   datetime(2026, 11, 22, 18, 10, tzinfo=timezone.utc)],
                 "Values": [42.0, 30.5]}]


@pytest.fixture
def ctx():
    context = Context(Settings.from_env({}))
    context.__dict__["monitoring"] = RecordedMonitoring()  # the cached_property's slot
    return context


def test_alarms_come_alarming_first_with_their_last_transition(ctx):
    found = operations.alarms(ctx)["alarms"]
    assert ctx.monitoring.prefix == "vodpipe-dev-"
    assert [a["name"] for a in found] == ["vodpipe-dev-dead-letters", "vodpipe-dev-failed-jobs"]
    assert found[0] == {"name": "vodpipe-dev-dead-letters", "description": "", "state": "ALARM",
                        "reason": "1 datapoint [1]", "changed_at": "2026-11-22T18:05:00Z",
                        "metric": "DeadLettersPending", "threshold": 0.0, "comparison": "GreaterThanThreshold"}


def test_one_getmetricdata_call_charts_the_last_hour_by_minute(ctx):
    answer = operations.metrics(ctx, 3600, 60, now=NOW)
    start, end = ctx.monitoring.window
    assert (start.isoformat(), end.isoformat()) == ("2026-11-22T17:31:00+00:00", "2026-11-22T18:31:00+00:00")
    by_id = {q["Id"]: q["MetricStat"] for q in ctx.monitoring.queries}
    assert by_id["latency_0"]["Stat"] == "p50" and by_id["latency_1"]["Stat"] == "p95"
    assert by_id["latency_1"]["Metric"] == {"Namespace": "vodpipe", "MetricName": "JobLatency",
                                            "Dimensions": [{"Name": "service", "Value": "vodpipe"}]}
    assert by_id["queues_1"]["Metric"]["Dimensions"] == [{"Name": "QueueName", "Value": "vodpipe-dev-transcode-tasks-high"}]
    assert all(q["Period"] == 60 for q in by_id.values())
    latency = next(c for c in answer["charts"] if c["id"] == "latency")
    assert latency["series"][1] == {"label": "p95", "points": [["2026-11-22T18:10:00Z", 30.5],
                                                               ["2026-11-22T18:20:00Z", 42.0]]}
    assert latency["series"][0]["points"] == []
    assert [c["id"] for c in answer["charts"]] == ["throughput", "latency", "failures", "queues"]


@pytest.mark.parametrize("window, period", [(0, 60), (90000, 60), (3600, 30), (3600, 90)])
def test_windows_and_periods_cloudwatch_would_refuse_are_refused(ctx, window, period):
    with pytest.raises(ValueError):
        operations.metrics(ctx, window, period, now=NOW)
