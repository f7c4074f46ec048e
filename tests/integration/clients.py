"""certpilot's cloud clients pointed at the emulator, as the integration tests build them."""

from __future__ import annotations

from typing import Any

from certpilot.cloud import credentials
from certpilot.cloud.clients import CloudClients
from certpilot.cloud.ratelimit import RateLimiter
from certpilot.cloud.retry import Retrier, RetryPolicy
from certpilot.core.settings import Settings


def make_clients(
    cloud: Any,
    *,
    limiter: RateLimiter | None = None,
    max_attempts: int = 5,
    base_delay: float = 0.01,
    max_delay: float = 0.05,
    **env_overrides: str,
) -> CloudClients:
    """certpilot's clients for the emulator, as a handler builds them from its env
    (`env_overrides` replace variables of it, e.g. a wrong key), with short retries
    and a fresh rate limiter unless `limiter` is given (tests stay independent)."""
    env = {**cloud.certpilot_env(), **env_overrides}
    creds = credentials.from_env(env)
    assert creds is not None
    return CloudClients.from_settings(
        Settings.from_env(env),
        creds,
        limiter=limiter or RateLimiter(),
        retrier=Retrier(
            RetryPolicy(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay)
        ),
    )


def calls(cloud: Any, action: str) -> int:
    """How many calls of `action` ("cdn:X") the emulator has answered."""
    return int(cloud.action_stats(action)["calls"])
