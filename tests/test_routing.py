from __future__ import annotations

import pytest

from runtime._config.schema import RetrySettings
from runtime._errors import ErrorKind
from runtime._policy.routing import (
    Availability,
    Dispatch,
    GiveUp,
    Health,
    ProviderProgress,
    WaitUntil,
    next_step,
)

pytestmark = pytest.mark.timeout(5)

CHAIN = ("a", "b", "c")
FAST = RetrySettings(attempts=3, backoff_initial_s=1.0, jitter=False)
SLOW = FAST.model_copy(update={"failover": "after_retries"})


def fresh() -> dict[str, ProviderProgress]:
    return {p: ProviderProgress() for p in CHAIN}


def fail(progress, pid, *, kind=ErrorKind.SERVER, now=0.0, policy=FAST, retry_after=None):
    progress[pid].record_failure(kind, retry_after, policy, now, lambda: 0.0)


def test_the_first_provider_goes_first():
    """A new task goes to the head of its chain."""
    assert next_step(CHAIN, fresh(), {}, FAST, 0.0, 60.0) == Dispatch("a")


def test_a_failure_moves_at_once_to_the_next_provider():
    """Under immediate failover a retryable failure goes straight to the next provider."""
    progress = fresh()
    fail(progress, "a")
    assert next_step(CHAIN, progress, {}, FAST, 0.0, 60.0) == Dispatch("b")


def test_failed_providers_are_retried_after_backoff_when_none_is_left():
    """When every provider has failed, the one whose backoff ends first is awaited."""
    progress = fresh()
    fail(progress, "a", now=0.0)
    fail(progress, "b", now=0.2)
    fail(progress, "c", now=0.4)
    assert next_step(CHAIN, progress, {}, FAST, 0.5, 60.0) == WaitUntil(1.0, "a")
    assert next_step(CHAIN, progress, {}, FAST, 1.0, 60.0) == Dispatch("a")


def test_after_retries_spends_a_providers_attempts_first():
    """Under after_retries the task waits out the backoff on the same provider."""
    progress = fresh()
    fail(progress, "a", policy=SLOW)
    assert next_step(CHAIN, progress, {}, SLOW, 0.0, 60.0) == WaitUntil(1.0, "a")
    fail(progress, "a", now=1.0, policy=SLOW)
    fail(progress, "a", now=3.0, policy=SLOW)
    assert progress["a"].finished
    assert next_step(CHAIN, progress, {}, SLOW, 3.0, 60.0) == Dispatch("b")


def test_non_retryable_errors_finish_a_provider_for_the_task():
    """An auth or bad-request failure is never retried on the same provider."""
    progress = fresh()
    fail(progress, "a", kind=ErrorKind.AUTH, policy=SLOW)
    assert progress["a"].finished
    assert next_step(CHAIN, progress, {}, SLOW, 0.0, 60.0) == Dispatch("b")


def test_cooling_and_open_providers_are_skipped_while_another_can_serve():
    """A provider resting after a 429 or with an open breaker is passed over."""
    health = {
        "a": Health(Availability.COOLING, until=30.0),
        "b": Health(Availability.OPEN, until=20.0),
    }
    assert next_step(CHAIN, fresh(), health, FAST, 0.0, 60.0) == Dispatch("c")
    assert next_step(CHAIN, fresh(), health, SLOW, 0.0, 60.0) == Dispatch("c")


def test_when_all_are_resting_the_earliest_is_awaited():
    """With nobody ready, the task waits for whichever provider comes back first."""
    health = {
        p: Health(Availability.COOLING, until=t)
        for p, t in zip(CHAIN, (9.0, 4.0, 7.0), strict=True)
    }
    assert next_step(CHAIN, fresh(), health, FAST, 0.0, 60.0) == WaitUntil(4.0, "b")


def test_out_of_rotation_providers_are_never_chosen():
    """A provider whose key was rejected, or that failed for good, is excluded."""
    health = {
        "a": Health(Availability.OUT, reason="key rejected"),
        "b": Health(Availability.FAILED, reason="crashed"),
    }
    assert next_step(CHAIN, fresh(), health, FAST, 0.0, 60.0) == Dispatch("c")
    progress = fresh()
    fail(progress, "c", kind=ErrorKind.BAD_REQUEST)
    step = next_step(CHAIN, progress, health, FAST, 0.0, 60.0)
    assert isinstance(step, GiveUp)
    assert "a (key rejected)" in step.reason
    assert "b (crashed)" in step.reason


def test_a_wait_past_the_deadline_gives_up_at_once():
    """The task fails now rather than wait beyond its deadline."""
    progress = fresh()
    for pid in CHAIN:
        fail(progress, pid, retry_after=30.0)
    step = next_step(CHAIN, progress, {}, FAST, 0.0, 10.0)
    assert isinstance(step, GiveUp)
    assert step.deadline


def test_attempts_are_counted_per_provider():
    """Each provider gets at most `attempts` tries within a task."""
    policy = FAST.model_copy(update={"attempts": 2})
    progress = fresh()
    fail(progress, "a", policy=policy)
    assert not progress["a"].finished
    fail(progress, "a", policy=policy)
    assert progress["a"].finished


def test_when_every_breaker_is_open_past_the_deadline_the_reason_says_so():
    """A task whose providers all have open breakers says so and when one is tried again."""
    health = {
        p: Health(Availability.OPEN, until=t)
        for p, t in zip(CHAIN, (40.0, 25.5, 31.0), strict=True)
    }
    step = next_step(CHAIN, fresh(), health, FAST, 0.0, 10.0)
    assert step == GiveUp(
        "every provider is failing (each one's circuit breaker is open); "
        "the first to be tried again is b, in 25.5 s"
    )
    assert not step.deadline
    assert "deadline" not in step.reason


def test_a_breaker_trial_in_flight_is_awaited_until_the_deadline():
    """A provider whose trial is in flight may be ready at any time: wait, then give up."""
    health = {p: Health(Availability.HALF_OPEN) for p in CHAIN}
    assert next_step(CHAIN, fresh(), health, FAST, 0.0, 10.0) == WaitUntil(10.0, "a")
    step = next_step(CHAIN, fresh(), health, FAST, 10.0, 10.0)
    assert isinstance(step, GiveUp)
    assert "the first to be tried again is a, once its trial call ends" in step.reason
    health["b"] = Health(Availability.OPEN, until=4.0)
    assert next_step(CHAIN, fresh(), health, FAST, 0.0, 10.0) == WaitUntil(4.0, "b")
