"""Percentile statistics (``p50``, ``p95``, ``p99.9``...) for the emulator's CloudWatch.

moto computes Sum, Average, Minimum, Maximum and SampleCount only; ``GetMetricData`` with a
percentile ``Stat`` returns nothing. CloudWatch supports ``pNN`` and ``pNN.NN`` on metrics
published as raw values (CloudWatch user guide, "Statistics: Percentiles"), which is how the
local log extraction publishes every EMF value. ``install`` teaches moto's per-period
statistics the nearest-rank percentile of the period's raw values.
"""
from __future__ import annotations

import re

from chalicelib.domain.statistics import percentile

_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d{1,2})?|100)")


def install() -> None:
    """Extend ``moto.cloudwatch.models.Statistics`` with ``pNN`` statistics (idempotent)."""
    from moto.cloudwatch.models import Statistics
    if getattr(Statistics, "_vodpipe_percentiles", False):
        return
    original = Statistics.get_statistics_for_type

    def get_statistics_for_type(self, stat: str):
        match = _PERCENTILE.fullmatch(stat)
        if match:
            return percentile(list(self.metric_single_values_list), float(match.group(1)))
        return original(self, stat)

    Statistics.get_statistics_for_type = get_statistics_for_type
    Statistics._vodpipe_percentiles = True
