"""CloudWatch adapter for the operations view: alarm states and metric series."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from .clients import client


class Monitoring:
    """Reads the stack's alarms and metrics (``cloudwatch:DescribeAlarms``, ``GetMetricData``)."""

    def __init__(self, region: str | None = None, endpoint_url: str | None = None):
        self._cloudwatch = client("cloudwatch", region, endpoint_url)

    def alarms(self, name_prefix: str) -> list[dict[str, Any]]:
        """Metric alarms whose name starts with ``name_prefix`` (describe_alarms shape:
        ``AlarmName``, ``StateValue``, ``StateReason``, ``StateUpdatedTimestamp`` ...)."""
        found: list[dict[str, Any]] = []
        for page in self._cloudwatch.get_paginator("describe_alarms").paginate(
                AlarmNamePrefix=name_prefix, AlarmTypes=["MetricAlarm"]):
            found.extend(page.get("MetricAlarms") or [])
        return found

    def metric_data(self, queries: list[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
        """``GetMetricData`` results (``Id``, ``Timestamps``, ``Values``) for ``queries``
        (``MetricDataQueries`` shape, at most 500), oldest first, every page read."""
        results: dict[str, dict[str, Any]] = {}
        for page in self._cloudwatch.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"):
            for result in page.get("MetricDataResults") or []:
                got = results.setdefault(result["Id"], {"Id": result["Id"], "Timestamps": [], "Values": []})
                got["Timestamps"].extend(result.get("Timestamps") or [])
                got["Values"].extend(result.get("Values") or [])
        return list(results.values())
