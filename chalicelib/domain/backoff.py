"""The one backoff policy of the service: exponential, doubling from a base, with a cap.

Used for the worker's redelivery visibility (5 s x 2^(receives-1), at most 300 s), the
webhook deliveries' visibility (10 s x 2^(attempts-1), at most 900 s, from a target's recorded
attempts: ``services/webhooks.py``) and the chunk uploader's
last retries (0.5, 1, 2 s sleeps).
"""
from __future__ import annotations


def exponential_backoff(attempt: int, base_seconds: float, cap_seconds: float | None = None) -> float:
    """Seconds to wait before retrying after failed attempt number ``attempt`` (1-based).

    The rule: ``base_seconds * 2 ** (attempt - 1)``, at most ``cap_seconds`` (no cap when
    None). The result has the type of that arithmetic: an ``int`` when ``base_seconds`` and
    ``cap_seconds`` are ints (e.g. an SQS visibility timeout), else a ``float``. Examples:
    ``exponential_backoff(1, 5, 300) == 5``, ``exponential_backoff(3, 5, 300) == 20``,
    ``exponential_backoff(10, 5, 300) == 300``, ``exponential_backoff(2, 0.5) == 1.0``.

    Raises ``ValueError`` when ``attempt`` is below 1 or ``base_seconds`` is negative.
    """
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, got {attempt}")
    if base_seconds < 0:
        raise ValueError(f"base_seconds must not be negative, got {base_seconds}")
    if cap_seconds is not None and base_seconds > 0:
        # past the cap already: no need to raise 2 to a huge power (and overflow a float)
        doublings, delay = 0, base_seconds
        while doublings < attempt - 1 and delay < cap_seconds:
            doublings, delay = doublings + 1, delay * 2
        return min(cap_seconds, delay)
    return base_seconds * 2 ** (attempt - 1)
