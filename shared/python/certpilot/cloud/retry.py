"""Retries with jittered exponential backoff, bounded by attempts and a deadline.

Only errors that say so are retried (`CloudError.retryable`: throttling, 5xx,
timeouts, dropped connections). Auth, not-found, conflict and validation errors
surface at once. A throttled call waits at least what the service asked for
(`retry_after`, however long: a hint past the deadline ends the retries) and never
less than half the backoff (equal jitter); other errors use full jitter. The clock,
sleep and random source are injectable for tests.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from certpilot.core.errors import CloudError, ThrottledError
from certpilot.core.log import event, get_logger

T = TypeVar("T")

_log = get_logger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts in all, backoff bounds (s), and the overall deadline (s)."""

    max_attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0
    deadline: float = 30.0

    def backoff(self, attempt: int, error: CloudError, rnd: float) -> float:
        """The pause after failed attempt number `attempt` (1-based), `rnd` in [0, 1)."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        if isinstance(error, ThrottledError):
            delay = cap / 2 + rnd * cap / 2
            if error.retry_after is not None:
                # The service said when: waiting less only earns another refusal.
                delay = max(delay, error.retry_after)
            return delay
        return rnd * cap


class Retrier:
    """Runs a call, retrying retryable `CloudError`s per its `RetryPolicy`."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng

    def call(self, fn: Callable[[], T]) -> T:
        """Return `fn()`, retrying it while it raises a retryable CloudError.

        Raises:
            CloudError: the last error, when it is not retryable, attempts are spent,
                or the next pause would cross the deadline.
        """
        start = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except CloudError as error:
                if not error.retryable or attempt >= self.policy.max_attempts:
                    raise
                delay = self.policy.backoff(attempt, error, self._rng())
                if self._clock() + delay - start > self.policy.deadline:
                    raise
                event(
                    _log,
                    "retrying cloud call",
                    service=error.service,
                    action=error.action,
                    code=error.code,
                    attempt=attempt,
                    delay=round(delay, 3),
                )
                self._sleep(delay)
