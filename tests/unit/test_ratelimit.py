"""Sliding windows per action, on a fake clock (no real sleeping)."""

from __future__ import annotations

import threading

import pytest

from certpilot.cloud.ratelimit import (
    DOCUMENTED_QPS,
    WINDOW_S,
    RateLimiter,
    SlidingWindow,
    isolated_shared_limiter,
    shared_limiter,
    window_shape,
)


class FakeClock:
    """A clock that only moves when told to (or, with `advance`, when slept on)."""

    def __init__(self, *, advance: bool = False) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self._advance = advance
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            if self._advance:
                self.now += seconds


def most_in_any_second(starts: list[float]) -> int:
    """The largest number of starts in one half-open one-second window."""
    starts = sorted(starts)
    return max(sum(1 for t in starts[i:] if t < s + 1.0) for i, s in enumerate(starts))


def test_a_full_window_passes_at_once_and_the_next_waits_for_the_oldest_to_age_out() -> None:
    # Given a window of 5 calls
    clock = FakeClock()
    window = SlidingWindow(5, WINDOW_S, clock=clock, sleep=clock.sleep)

    # When 12 calls arrive at the same instant
    delays = [window.reserve() for _ in range(12)]

    # Then 5 start now, 5 one window later, 2 two windows later
    assert delays == pytest.approx([0.0] * 5 + [WINDOW_S] * 5 + [2 * WINDOW_S] * 2)


def test_a_quiet_spell_frees_the_window_but_never_more_than_its_size() -> None:
    clock = FakeClock()
    window = SlidingWindow(2, 1.0, clock=clock, sleep=clock.sleep)
    assert [window.reserve() for _ in range(2)] == [0.0, 0.0]

    clock.now += 60

    assert [window.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 1.0])


def test_acquire_sleeps_the_reserved_delay() -> None:
    clock = FakeClock()
    window = SlidingWindow(1, 0.25, clock=clock, sleep=clock.sleep)

    waited = [window.acquire() for _ in range(3)]

    assert waited == pytest.approx([0.0, 0.25, 0.5])
    assert clock.slept == pytest.approx([0.25, 0.5])


@pytest.mark.parametrize(
    ("qps", "calls", "seconds"),
    [(3, 3, WINDOW_S), (30, 30, WINDOW_S), (2.5, 2, WINDOW_S), (0.5, 1, 2 * WINDOW_S)],
)
def test_shape_of_a_documented_limit(qps: float, calls: int, seconds: float) -> None:
    shape_calls, shape_seconds = window_shape(qps)

    assert shape_calls == calls and shape_seconds == pytest.approx(seconds)


@pytest.mark.parametrize("qps", sorted({*DOCUMENTED_QPS.values(), 2, 3, 7, 50, 1000}))
def test_every_shape_allows_at_most_the_limit_per_second(qps: float) -> None:
    calls, seconds = window_shape(qps)

    assert calls >= 1 and seconds >= 1.0
    assert calls / seconds <= qps


@pytest.mark.parametrize("qps", [3, 10, 30, 100])
def test_greedy_callers_get_near_the_limit_and_never_exceed_it_in_any_second(qps: float) -> None:
    # Given greedy callers that fire as soon as the limiter lets them, for 10 seconds
    clock = FakeClock()
    limiter = RateLimiter({("cdn", "X"): qps}, clock=clock, sleep=clock.sleep)
    starts: list[float] = []

    # When 10 seconds' worth of calls arrive, each asking as the previous one starts
    for _ in range(int(qps * 10)):
        starts.append(clock.now + limiter.window("cdn", "X").reserve())
        clock.now = starts[-1]

    # Then no one-second window holds more than the limit, and the rate is at least 0.9 Q
    assert most_in_any_second(starts) <= qps
    sustained = (len(starts) - 1) / (starts[-1] - starts[0])
    assert sustained >= 0.9 * qps


@pytest.mark.parametrize("qps", [3, 10])
def test_callers_arriving_at_random_times_never_exceed_the_limit(qps: float) -> None:
    # Given calls arriving at irregular times, some in clumps, some after pauses
    clock = FakeClock()
    window = RateLimiter({("cdn", "X"): qps}, clock=clock, sleep=clock.sleep).window("cdn", "X")
    gaps = [0.0, 0.0, 0.31, 0.0, 0.9, 0.05, 0.0, 0.0, 0.0, 1.7, 0.2, 0.33, 0.0, 0.6] * 5
    starts: list[float] = []

    # When each asks for its turn at its arrival time
    for gap in gaps:
        clock.now += gap
        starts.append(clock.now + window.reserve())

    # Then the starts keep arrival order and any one second holds at most the limit
    assert starts == sorted(starts)
    assert most_in_any_second(starts) <= qps


def test_threads_share_one_window_per_action_and_wait_outside_the_lock() -> None:
    # Given a limiter used by 16 threads at the same (frozen) instant
    clock = FakeClock()
    limiter = RateLimiter({("cas", "ListUserCertificateOrder"): 10}, clock=clock, sleep=clock.sleep)
    delays: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        waited = limiter.acquire("cas", "ListUserCertificateOrder")
        with lock:
            delays.append(waited)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then each got its own slot: 10 at once, the other 6 one window later
    assert sorted(delays) == pytest.approx([0.0] * 10 + [WINDOW_S] * 6)


def test_actions_and_services_have_separate_windows_and_fallback_limits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)

    assert limiter.qps("cas", "ListUserCertificateOrder") == 10
    assert limiter.qps("cdn", "DescribeUserDomains") == 100
    assert limiter.qps("oss", "ListCname") == 50  # chosen: OSS documents none
    assert limiter.window("cdn", "A") is limiter.window("cdn", "A")
    assert limiter.window("cdn", "A") is not limiter.window("cdn", "B")


def test_invalid_shapes_are_refused() -> None:
    with pytest.raises(ValueError):
        window_shape(0)
    with pytest.raises(ValueError):
        SlidingWindow(0, 1.0)
    with pytest.raises(ValueError):
        SlidingWindow(1, 0.0)


def test_an_isolated_block_gets_a_fresh_shared_limiter_and_restores_the_old_one() -> None:
    with isolated_shared_limiter():  # this test's own changes stay in it too
        # given the process-wide limiter with a full window
        before = shared_limiter()
        for _ in range(60):
            before.window("oss", "PutCname").reserve()
        # when a test runs inside an isolated block
        with isolated_shared_limiter() as fresh:
            inside = shared_limiter()
            waited = inside.window("oss", "PutCname").reserve()
        # then it had its own limiter with empty windows, and the old one is back after
        assert inside is fresh and inside is not before and waited == 0.0
        assert shared_limiter() is before
        assert before.window("oss", "PutCname").reserve() > 0
