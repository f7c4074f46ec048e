"""Per-action flow control: one token bucket per action, refilled at its documented QPS.

The effective rate is `qps * qps_scale` (or a per-action override) and a bucket holds
`burst` seconds' worth of tokens (at least one). `qps_scale` is large in benchmarks
and small in throttling tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass
class ThrottleSettings:
    qps_scale: float = 1.0
    burst: float = 1.0  # bucket capacity, in seconds of the action's rate
    overrides: dict[str, float] = field(default_factory=dict)  # "cdn:Action" -> QPS


class _Bucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now


class Throttle:
    """Token buckets keyed by action ("cdn:DescribeUserDomains"); thread-safe."""

    def __init__(
        self,
        settings: ThrottleSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or ThrottleSettings()
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def configure(
        self,
        *,
        qps_scale: float | None = None,
        burst: float | None = None,
        overrides: Mapping[str, float] | None = None,
    ) -> None:
        """Change the limits; buckets restart full at the new capacity."""
        with self._lock:
            if qps_scale is not None:
                if qps_scale <= 0:
                    raise ValueError("qps_scale must be positive")
                self.settings.qps_scale = float(qps_scale)
            if burst is not None:
                if burst <= 0:
                    raise ValueError("burst must be positive")
                self.settings.burst = float(burst)
            if overrides is not None:
                self.settings.overrides = {k: float(v) for k, v in overrides.items()}
            self._buckets.clear()

    def rate(self, action: str, qps: float) -> float:
        """The effective requests-per-second limit of `action`."""
        override = self.settings.overrides.get(action)
        return override if override is not None else qps * self.settings.qps_scale

    def allow(self, action: str, qps: float) -> bool:
        """Take a token for one call of `action` (documented limit `qps`); False if throttled."""
        if qps <= 0:
            return True
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(action)
            if bucket is None:
                rate = self.rate(action, qps)
                bucket = _Bucket(rate, max(1.0, rate * self.settings.burst), now)
                self._buckets[action] = bucket
            else:
                elapsed = now - bucket.stamp
                bucket.stamp = now
                bucket.tokens = min(bucket.capacity, bucket.tokens + elapsed * bucket.rate)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return True
            return False

    def wait_time(self, action: str) -> float:
        """Seconds until `action`'s bucket holds a token again (0 when it does)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(action)
            if bucket is None or bucket.rate <= 0:
                return 0.0
            tokens = min(bucket.capacity, bucket.tokens + (now - bucket.stamp) * bucket.rate)
            return max(0.0, (1.0 - tokens) / bucket.rate)

    def reset(self) -> None:
        """Refill every bucket (forget past calls)."""
        with self._lock:
            self._buckets.clear()
