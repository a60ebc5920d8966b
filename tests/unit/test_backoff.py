"""The one backoff policy (``chalicelib.domain.backoff``), as its three users apply it."""
import pytest

from chalicelib.domain.backoff import exponential_backoff


def test_worker_redelivery_doubles_from_5_s_up_to_300_s():
    assert [exponential_backoff(n, 5, 300) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert all(isinstance(exponential_backoff(n, 5, 300), int) for n in (1, 7, 100))  # SQS wants ints


def test_webhook_visibility_doubles_from_10_s_up_to_15_minutes():
    assert [exponential_backoff(n, 10, 900) for n in (1, 2, 7, 8, 10_000)] == [10, 20, 640, 900, 900]


def test_uploader_sleeps_half_a_second_then_doubles_without_a_cap():
    assert [exponential_backoff(n, 0.5) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("attempt, base", [(0, 5), (-1, 5), (1, -1)])
def test_attempts_are_1_based_and_bases_not_negative(attempt, base):
    with pytest.raises(ValueError):
        exponential_backoff(attempt, base, 300)
