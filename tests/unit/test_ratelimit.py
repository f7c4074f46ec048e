"""Token buckets per action, on a fake clock (no real sleeping)."""

from __future__ import annotations

import threading

import pytest

from certpilot.cloud.ratelimit import (
    DOCUMENTED_QPS,
    RateLimiter,
    TokenBucket,
    bucket_shape,
    isolated_shared_limiter,
    shared_limiter,
)


class FakeClock:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)


def test_burst_then_paced_at_the_rate() -> None:
    # Given a bucket of 5 tokens refilling at 10 per second
    clock = FakeClock()
    bucket = TokenBucket(10, 5, clock=clock, sleep=clock.sleep)

    # When 8 calls arrive at the same instant
    delays = [bucket.reserve() for _ in range(8)]

    # Then the burst passes at once and the rest queue 0.1 s apart
    assert delays[:5] == [0.0] * 5
    assert delays[5:] == pytest.approx([0.1, 0.2, 0.3])


def test_tokens_come_back_with_time_but_never_above_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 2, clock=clock, sleep=clock.sleep)
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]

    clock.now += 60  # a long quiet spell refills only up to the burst

    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


def test_acquire_sleeps_the_reserved_delay() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4, 1, clock=clock, sleep=clock.sleep)

    waited = [bucket.acquire() for _ in range(3)]

    assert waited == pytest.approx([0.0, 0.25, 0.5])
    assert clock.slept == pytest.approx([0.25, 0.5])


@pytest.mark.parametrize("qps", sorted({*DOCUMENTED_QPS.values(), 2, 3, 7, 50, 1000}))
def test_shape_keeps_any_one_second_window_under_the_documented_limit(qps: float) -> None:
    rate, burst = bucket_shape(qps)

    assert burst >= 1 and rate > 0
    assert burst + rate <= qps


@pytest.mark.parametrize("qps", [3, 10, 30, 100])
def test_simulated_callers_never_exceed_the_limit_in_a_sliding_window(qps: float) -> None:
    # Given greedy callers that fire as soon as the limiter lets them
    clock = FakeClock()
    limiter = RateLimiter({("cdn", "X"): qps}, clock=clock, sleep=clock.sleep)
    sent: list[float] = []

    # When they make 4 seconds' worth of calls (each at the time it was allowed)
    for _ in range(int(qps * 4)):
        sent.append(clock.now + limiter.bucket("cdn", "X").reserve())

    # Then no one-second window holds more than the documented limit
    sent.sort()
    for i, start in enumerate(sent):
        in_window = sum(1 for t in sent[i:] if t < start + 1.0)
        assert in_window <= qps


def test_threads_share_one_bucket_per_action() -> None:
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

    # Then each got its own slot in the queue: the burst of 2, then one per 1/8 s
    rate, burst = bucket_shape(10)
    expected = [0.0] * int(burst) + [(k + 1) / rate for k in range(16 - int(burst))]
    assert sorted(delays) == pytest.approx(expected)


def test_actions_and_services_have_separate_buckets_and_fallback_limits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)

    assert limiter.qps("cas", "ListUserCertificateOrder") == 10
    assert limiter.qps("cdn", "DescribeUserDomains") == 100
    assert limiter.qps("oss", "ListCname") == 50  # chosen: OSS documents none
    assert limiter.bucket("cdn", "A") is limiter.bucket("cdn", "A")
    assert limiter.bucket("cdn", "A") is not limiter.bucket("cdn", "B")


def test_invalid_shapes_are_refused() -> None:
    with pytest.raises(ValueError):
        bucket_shape(0)
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


def test_an_isolated_block_gets_a_fresh_shared_limiter_and_restores_the_old_one() -> None:
    with isolated_shared_limiter():  # this test's own changes stay in it too
        # given the process-wide limiter with a drained bucket
        before = shared_limiter()
        for _ in range(30):
            before.bucket("oss", "PutCname").reserve()
        # when a test runs inside an isolated block
        with isolated_shared_limiter() as fresh:
            inside = shared_limiter()
            waited = inside.bucket("oss", "PutCname").reserve()
        # then it had its own limiter with full buckets, and the old one is back after
        assert inside is fresh and inside is not before and waited == 0.0
        assert shared_limiter() is before
        assert before.bucket("oss", "PutCname").reserve() > 0
