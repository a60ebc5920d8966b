"""Percentile statistics in the emulator's GetMetricData (``infra.local.cloudwatch.percentiles``)."""
from datetime import datetime, timezone

from infra.local.cloudwatch.percentiles import install, percentile


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 100) == 100
    assert percentile([7.0], 99.9) == 7.0 and percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_moto_statistics_answer_pnn_and_keep_their_own():
    from moto.cloudwatch.models import MetricDatum, Statistics
    install()
    install()  # idempotent
    now = datetime.now(timezone.utc)
    stats = Statistics(["p95", "Sum"], now)
    stats.metric_data = [MetricDatum("vodpipe", "JobLatency", float(v), [], now, "Seconds")
                         for v in range(1, 21)]
    assert stats.get_statistics_for_type("p95") == 19 and stats.get_statistics_for_type("p50") == 10
    assert stats.get_statistics_for_type("Sum") == 210
