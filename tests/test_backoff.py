from __future__ import annotations

import pytest

from runtime._config.schema import RetrySettings, StartupSettings
from runtime._policy.backoff import backoff_s, recheck_wait_s, retry_wait_s

pytestmark = pytest.mark.timeout(5)

POLICY = RetrySettings(
    backoff_initial_s=1.0, backoff_multiplier=2.0, backoff_max_s=8.0, jitter=False
)


def test_backoff_grows_exponentially_up_to_the_cap():
    """Without jitter the waits are 1, 2, 4, 8, 8 s."""
    assert [backoff_s(POLICY, n, lambda: 0.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_no_failure_means_no_wait():
    """Before any failure there is nothing to wait for."""
    assert backoff_s(POLICY, 0, lambda: 0.5) == 0.0


def test_jitter_draws_from_the_upper_half():
    """With jitter the wait lies between half the base and the base."""
    jittery = POLICY.model_copy(update={"jitter": True})
    assert backoff_s(jittery, 3, lambda: 0.0) == 2.0
    assert backoff_s(jittery, 3, lambda: 0.999) == pytest.approx(3.998)


def test_retry_after_wins_when_longer():
    """A provider's Retry-After is honoured when it asks for more than the backoff."""
    assert retry_wait_s(POLICY, 1, 5.0, lambda: 0.0) == 5.0
    assert retry_wait_s(POLICY, 3, 0.5, lambda: 0.0) == 4.0
    assert retry_wait_s(POLICY, 2, None, lambda: 0.0) == 2.0


def test_rechecks_of_an_unchecked_provider_back_off_to_their_cap_with_jitter():
    """Rechecks wait 2, 4, 8... s up to recheck_max_s, each drawn from its upper half."""
    startup = StartupSettings(recheck_initial_s=2.0, recheck_max_s=10.0)
    highest = [recheck_wait_s(startup, n, lambda: 1.0) for n in range(1, 6)]
    assert highest == [2.0, 4.0, 8.0, 10.0, 10.0]
    lowest = [recheck_wait_s(startup, n, lambda: 0.0) for n in range(1, 6)]
    assert lowest == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_recheck_waits_at_least_as_long_as_the_provider_asked():
    """A Retry-After longer than the backoff is the wait; a shorter one changes nothing."""
    startup = StartupSettings(recheck_initial_s=2.0, recheck_max_s=10.0)
    assert recheck_wait_s(startup, 1, lambda: 1.0, retry_after_s=30.0) == 30.0
    assert recheck_wait_s(startup, 1, lambda: 1.0, retry_after_s=0.5) == 2.0
