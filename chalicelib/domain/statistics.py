"""Order statistics: the project's one percentile definition.

CloudWatch's percentile statistics (``p50``, ``p99.9``; CloudWatch user guide, "Statistics:
Percentiles") and the drills' latency reports (``infra/local/drills``) use the same
nearest-rank percentile, so a P95 means the same wherever the project prints one.
"""
from __future__ import annotations

import math
from typing import Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of ``values``.

    ``p`` is in percent, 0 <= p <= 100 (``p=0`` is the minimum, ``p=50`` the median's nearest
    rank, ``p=100`` the maximum); the result is one of ``values`` (same unit), the smallest value with at least
    ``p`` % of the values at or below it (the "nearest-rank method"). ``None`` when ``values``
    is empty. Raises ``ValueError`` for ``p`` outside [0, 100].
    """
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {p}")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
