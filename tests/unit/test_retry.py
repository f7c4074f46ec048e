"""Retries with an injected clock, sleep and random source (no real sleeping)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from certpilot.cloud.retry import Retrier, RetryPolicy
from certpilot.core.errors import (
    AuthError,
    CloudError,
    ConflictError,
    NotFoundError,
    ThrottledError,
    TransientError,
)
from tests.unit.fakes import FakeClock


def failing(*errors: CloudError, result: str = "ok") -> tuple[Callable[[], str], list[int]]:
    """A call that raises `errors` in turn, then returns `result`; counts its calls."""
    count = [0]

    def call() -> str:
        count[0] += 1
        if count[0] <= len(errors):
            raise errors[count[0] - 1]
        return result

    return call, count


def err(cls: type[CloudError], code: str = "X", **kw: float) -> CloudError:
    return cls("cdn", "DescribeUserDomains", code, 500, "REQ-1", "boom", **kw)  # type: ignore[arg-type]


def retrier(clock: FakeClock, rnd: float = 0.5, **policy: float) -> Retrier:
    return Retrier(RetryPolicy(**policy), sleep=clock.sleep, clock=clock.clock, rng=lambda: rnd)  # type: ignore[arg-type]


def test_retryable_errors_are_retried_until_success() -> None:
    clock = FakeClock()
    call, count = failing(err(TransientError), err(ThrottledError, "Throttling.User"))

    assert retrier(clock).call(call) == "ok"
    assert count[0] == 3 and len(clock.sleeps) == 2


@pytest.mark.parametrize("cls", [AuthError, NotFoundError, ConflictError, CloudError])
def test_other_errors_surface_at_once(cls: type[CloudError]) -> None:
    clock = FakeClock()
    call, count = failing(err(cls))

    with pytest.raises(cls):
        retrier(clock).call(call)
    assert count[0] == 1 and clock.sleeps == []


def test_attempts_are_bounded() -> None:
    clock = FakeClock()
    call, count = failing(*[err(TransientError)] * 10)

    with pytest.raises(TransientError):
        retrier(clock, max_attempts=4).call(call)
    assert count[0] == 4 and len(clock.sleeps) == 3


def test_the_deadline_stops_retries_before_a_pause_would_cross_it() -> None:
    clock = FakeClock()
    call, count = failing(*[err(TransientError)] * 10)

    with pytest.raises(TransientError):
        retrier(
            clock, rnd=0.999, max_attempts=50, base_delay=1.0, max_delay=1.0, deadline=2.5
        ).call(call)
    assert sum(clock.sleeps) <= 2.5 and count[0] == 3


def test_full_jitter_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=1.0)
    error = err(TransientError)

    caps = [policy.backoff(n, error, 0.999999) for n in range(1, 7)]

    assert caps == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0, 1.0], rel=1e-4)
    assert policy.backoff(3, error, 0.0) == 0.0  # full jitter: may retry at once


def test_throttled_waits_at_least_half_the_backoff_and_what_the_service_asked() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=5.0)

    plain = policy.backoff(2, err(ThrottledError), 0.0)
    asked = policy.backoff(1, err(ThrottledError, retry_after=1.5), 0.0)
    long = policy.backoff(1, err(ThrottledError, retry_after=60.0), 0.0)

    assert plain == pytest.approx(0.2)  # cap 0.4, equal jitter floor
    assert asked == pytest.approx(1.5)
    # a hint longer than the backoff cap is honoured in full: waiting less only earns
    # another refusal (the deadline decides whether to wait at all)
    assert long == pytest.approx(60.0)


def test_a_retry_after_hint_is_waited_in_full_within_the_deadline() -> None:
    # Given a throttled call whose answer asks for 8 s, then succeeds
    clock = FakeClock()
    call, count = failing(err(ThrottledError, "Throttling.User", retry_after=8.0))
    # When it is retried with a 30 s deadline (backoff cap 5 s)
    assert retrier(clock, max_delay=5.0, deadline=30.0).call(call) == "ok"
    # Then it waited the 8 s asked for, not the 5 s cap
    assert count[0] == 2 and clock.sleeps == [pytest.approx(8.0)]


def test_a_retry_after_hint_past_the_deadline_ends_the_retries_at_once() -> None:
    # Given a throttled answer asking for 60 s and a 30 s retry deadline
    clock = FakeClock()
    call, count = failing(err(ThrottledError, "Throttling.User", retry_after=60.0))
    # Then the error surfaces without a pause that could not end in time
    with pytest.raises(ThrottledError) as raised:
        retrier(clock, deadline=30.0).call(call)
    assert raised.value.retry_after == 60.0
    assert count[0] == 1 and clock.sleeps == []
