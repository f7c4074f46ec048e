"""Client-side flow control: one thread-safe sliding window per cloud action.

Alibaba Cloud limits each API per account (e.g. DescribeUserDomains 100 QPS,
ListUserCertificateOrder 10 QPS). The window of an action of documented limit Q lets
at most Q calls start in any `WINDOW_S` seconds (a little more than one second: the
margin absorbs jitter between a call's start here and its arrival there), so this
process never makes more than Q calls in any one-second window, whatever the number
of threads, and still sustains Q / WINDOW_S calls a second: 2.86 for a 3 QPS action
(a token bucket with burst + rate <= Q gave it 2). Other processes of the same account
share the account's limit: what is left for them is what the retry layer absorbs when
the service throttles.
"""

from __future__ import annotations

import collections
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


# Slightly over one second: a call started at the edge of the window here must not land
# inside the previous window there (network and scheduling jitter, tens of ms).
WINDOW_S = 1.05


def window_shape(qps: float) -> tuple[int, float]:
    """(calls, seconds) for a documented limit `qps`: at most `calls` starts per window.

    At least one call per window; below 1 QPS the window grows instead (0.5 QPS: one
    call per 2.1 s). A fractional limit rounds down (2.5 QPS: 2 calls per window).

    Raises:
        ValueError: `qps` is not positive.
    """
    if not qps > 0:
        raise ValueError("qps must be positive")
    if qps < 1:
        return 1, WINDOW_S / qps
    return int(qps), WINDOW_S


class SlidingWindow:
    """At most `calls` call starts in any `window` seconds; threads wait in arrival order.

    `reserve()` books the caller's start time under the lock (the earliest time at
    which the call `calls` places before it is a full window old) and the caller sleeps
    outside it, so a waiting thread never blocks the others. Booked starts never
    decrease, so callers go in the order they arrived.
    """

    def __init__(
        self,
        calls: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls < 1 or window <= 0:
            raise ValueError("calls must be at least 1 and window positive")
        self.calls = int(calls)
        self.window = float(window)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._starts: collections.deque[float] = collections.deque(maxlen=self.calls)

    def reserve(self) -> float:
        """Book one call; return how long the caller must wait before starting it."""
        with self._lock:
            now = self._clock()
            start = now
            if len(self._starts) == self.calls:
                start = max(now, self._starts[0] + self.window)
            if self._starts:
                start = max(start, self._starts[-1])  # FIFO even if the clock stepped back
            self._starts.append(start)  # the deque's maxlen drops the oldest
            return start - now

    def acquire(self) -> float:
        """Wait until a call may be made; return the seconds waited."""
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
        return delay


class RateLimiter:
    """Sliding windows keyed by (service, action), created on first use."""

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
        self._windows: dict[tuple[str, str], SlidingWindow] = {}

    def qps(self, service: str, action: str) -> float:
        """The documented (or chosen) limit of an action."""
        return self._limits.get((service, action), self._defaults.get(service, FALLBACK_QPS))

    def window(self, service: str, action: str) -> SlidingWindow:
        """The window of an action (created on first use)."""
        key = (service, action)
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                calls, seconds = window_shape(self.qps(service, action))
                window = SlidingWindow(calls, seconds, clock=self._clock, sleep=self._sleep)
                self._windows[key] = window
            return window

    def acquire(self, service: str, action: str) -> float:
        """Wait for the action's turn; return the seconds waited."""
        return self.window(service, action).acquire()


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

    For tests: calls one test makes must not make the next one wait. Clients built
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
