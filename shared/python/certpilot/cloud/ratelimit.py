"""Client-side flow control: one thread-safe token bucket per cloud action.

Alibaba Cloud limits each API per account (e.g. DescribeUserDomains 100 QPS,
ListUserCertificateOrder 10 QPS). A bucket for an action of documented limit Q
refills at `rate` and holds at most `burst` tokens with `burst + rate <= Q`, so this
process never makes more than Q calls in any one-second window, whatever the number
of threads. Other processes of the same account share the account's limit: what is
left for them is what the retry layer absorbs when the service throttles.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping

# Documented per-account limits (shared/reference/alibaba-cloud.md). OSS documents no
# per-action QPS for its bucket-configuration APIs: 50 is a chosen, conservative value.
DOCUMENTED_QPS: dict[tuple[str, str], float] = {
    ("cdn", "DescribeUserDomains"): 100,
    ("cdn", "DescribeCdnDomainDetail"): 30,
    ("cdn", "DescribeDomainCertificateInfo"): 100,
    ("cdn", "DescribeCdnHttpsDomainList"): 100,
    ("cdn", "SetCdnDomainSSLCertificate"): 30,
    # 3 in the current reference (Dec 2025; older pages said 30), up to 50 domains a call.
    ("cdn", "BatchSetCdnDomainConfig"): 3,
    ("cdn", "DescribeCdnDomainConfigs"): 100,
    ("cdn", "DeleteSpecificConfig"): 30,
    ("cdn", "DescribeCdnUserDomainsByFunc"): 100,
    ("cdn", "DescribeCdnDomainByCertificate"): 100,
    ("cdn", "AddCdnDomain"): 10,  # undocumented: chosen
    ("cas", "ListUserCertificateOrder"): 10,
    ("cas", "GetUserCertificateDetail"): 100,
    ("cas", "UploadUserCertificate"): 100,
    ("fc", "InvokeFunction"): 100,  # undocumented for our scale: chosen
}
DEFAULT_QPS: dict[str, float] = {"oss": 50, "cdn": 10, "cas": 10, "fc": 100}
FALLBACK_QPS = 10.0


def bucket_shape(qps: float) -> tuple[float, float]:
    """(rate, burst) for a documented limit `qps`: burst + rate <= qps, burst >= 1.

    A burst of one token and the rest as rate: a run's time is set by its busiest
    action's sustained rate (500 CDN certificate writes take 500 / rate seconds), so
    every token a burst holds back from the rate costs the whole run; a burst only
    saves the first calls' wait.

    Raises:
        ValueError: `qps` is not positive.
    """
    if not qps > 0:
        raise ValueError("qps must be positive")
    burst = 1.0
    rate = max(qps - burst, qps * 0.5)
    return rate, burst


class TokenBucket:
    """A token bucket shared by threads; callers wait their turn in arrival order.

    `acquire()` reserves a token under the lock (the balance may go negative: that is
    the queue) and sleeps outside it, so a waiting thread never blocks the others.
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._stamp)
            self._stamp = now
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.rate

    def acquire(self) -> float:
        """Wait until a call may be made; return the seconds waited."""
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
        return delay


class RateLimiter:
    """Token buckets keyed by (service, action), created on first use."""

    def __init__(
        self,
        limits: Mapping[tuple[str, str], float] | None = None,
        *,
        defaults: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._limits = dict(DOCUMENTED_QPS if limits is None else limits)
        self._defaults = dict(DEFAULT_QPS if defaults is None else defaults)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def qps(self, service: str, action: str) -> float:
        """The documented (or chosen) limit of an action."""
        return self._limits.get((service, action), self._defaults.get(service, FALLBACK_QPS))

    def bucket(self, service: str, action: str) -> TokenBucket:
        """The bucket of an action (created on first use)."""
        key = (service, action)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                rate, burst = bucket_shape(self.qps(service, action))
                bucket = TokenBucket(rate, burst, clock=self._clock, sleep=self._sleep)
                self._buckets[key] = bucket
            return bucket

    def acquire(self, service: str, action: str) -> float:
        """Wait for a token of the action; return the seconds waited."""
        return self.bucket(service, action).acquire()


_shared_lock = threading.Lock()
_shared: RateLimiter | None = None


def shared_limiter() -> RateLimiter:
    """The process-wide limiter: every client of the process draws from it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RateLimiter()
        return _shared


@contextlib.contextmanager
def isolated_shared_limiter() -> Iterator[RateLimiter]:
    """A fresh process-wide limiter inside the block, the previous one after it.

    For tests: tokens one test spends must not make the next one wait. Clients built
    before the block keep the limiter they were given.
    """
    global _shared
    with _shared_lock:
        previous, _shared = _shared, RateLimiter()
        fresh = _shared
    try:
        yield fresh
    finally:
        with _shared_lock:
            _shared = previous
