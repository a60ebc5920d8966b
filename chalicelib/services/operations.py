"""The operations view of the HTTP API: alarm states and the last hour's pipeline metrics.

``GET /alarms`` lists the stack's alarms with their current state and last transition (the
time and reason CloudWatch recorded when the state last changed). ``GET /metrics`` charts the
metrics the pipeline already publishes (``chalicelib.metrics``) and the queue depths CloudWatch
publishes for SQS, through one ``GetMetricData`` call.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.aws.table import iso_utc
from chalicelib.metrics import NAMESPACE

from .context import Context

#: Widest window ``GET /metrics`` serves (s) and the finest period (s); CloudWatch keeps
#: 1-minute data for 15 days (CloudWatch user guide, "Metrics retention").
MAX_WINDOW_SECONDS = 24 * 3600
MIN_PERIOD_SECONDS = 60

#: The charts: id -> (title, unit, [(series label, namespace, metric, statistic, queue key)]).
#: ``queue key`` names a ``Settings`` queue for ``AWS/SQS`` metrics (dimension ``QueueName``);
#: pipeline metrics carry the ``service`` dimension only.
CHARTS: dict[str, tuple[str, str, list[tuple[str, str, str, str, str | None]]]] = {
    "throughput": ("Jobs completed", "jobs/period", [
        ("completed", NAMESPACE, "JobsCompleted", "Sum", None),
        ("uploads", NAMESPACE, "Uploads", "Sum", None)]),
    "latency": ("Job latency (upload to complete)", "s", [
        ("p50", NAMESPACE, "JobLatency", "p50", None),
        ("p95", NAMESPACE, "JobLatency", "p95", None)]),
    "failures": ("Failures", "count/period", [
        ("jobs failed", NAMESPACE, "JobsFailed", "Sum", None),
        ("dead letters", NAMESPACE, "DeadLetters", "Sum", None)]),
    "queues": ("Queue depth (visible messages)", "messages", [
        ("tasks", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "tasks_queue"),
        ("high", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "tasks_high_queue"),
        ("first", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "tasks_first_queue"),
        ("ingest", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "ingest_queue"),
        ("dead letters", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "tasks_dlq")]),
}


def alarms(ctx: Context) -> dict:
    """``{"alarms": [{name, description, state (OK|ALARM|INSUFFICIENT_DATA), reason,
    changed_at (ISO 8601), metric, threshold, comparison}]}``, alarming ones first."""
    order = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}
    found = [{"name": a["AlarmName"], "description": a.get("AlarmDescription") or "", "state": a.get("StateValue"),
              "reason": a.get("StateReason") or "", "changed_at": iso_utc(a["StateUpdatedTimestamp"], "seconds"),
              "metric": a.get("MetricName") or "", "threshold": a.get("Threshold"),
              "comparison": a.get("ComparisonOperator") or ""}
             for a in ctx.monitoring.alarms(ctx.settings.alarm_prefix)]
    return {"alarms": sorted(found, key=lambda a: (order.get(a["state"], 3), a["name"]))}


def metric_queries(ctx: Context, period: int) -> list[dict[str, Any]]:
    """The ``GetMetricData`` queries of every chart (``CHARTS``), ids ``<chart>_<n>``."""
    queries = []
    for chart, (_title, _unit, series) in CHARTS.items():
        for n, (_label, namespace, metric, stat, queue) in enumerate(series):
            dimensions = ([{"Name": "QueueName", "Value": getattr(ctx.settings, queue)}] if queue
                          else [{"Name": "service", "Value": "vodpipe"}])
            queries.append({"Id": f"{chart}_{n}", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
                "Period": period, "Stat": stat}})
    return queries


def metrics(ctx: Context, window_seconds: int = 3600, period: int = MIN_PERIOD_SECONDS,
            now: datetime | None = None) -> dict:
    """The charts over the last ``window_seconds`` (s) in ``period``-second buckets:
    ``{"start", "end", "period", "charts": [{id, title, unit, series: [{label, points:
    [[ISO 8601, value], ...]}]}]}``, points oldest first; a bucket without data has no point.
    Raises ValueError for a window above ``MAX_WINDOW_SECONDS`` or a period that is not a
    positive multiple of 60 s (GetMetricData's rule for data older than 3 hours)."""
    if not 0 < window_seconds <= MAX_WINDOW_SECONDS:
        raise ValueError(f"window: must be 1 to {MAX_WINDOW_SECONDS} seconds")
    if period < MIN_PERIOD_SECONDS or period % 60:
        raise ValueError("period: must be a positive multiple of 60 seconds")
    end = (now or datetime.now(timezone.utc)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(seconds=window_seconds)
    results = {r["Id"]: r for r in ctx.monitoring.metric_data(metric_queries(ctx, period), start, end)}
    charts = []
    for chart, (title, unit, series) in CHARTS.items():
        lines = []
        for n, (label, *_rest) in enumerate(series):
            got = results.get(f"{chart}_{n}") or {}
            points = sorted((iso_utc(t, "seconds"), v) for t, v in zip(got.get("Timestamps") or [], got.get("Values") or [])
                            if v is not None)
            lines.append({"label": label, "points": [list(p) for p in points]})
        charts.append({"id": chart, "title": title, "unit": unit, "series": lines})
    return {"start": iso_utc(start, "seconds"), "end": iso_utc(end, "seconds"), "period": period, "charts": charts}
