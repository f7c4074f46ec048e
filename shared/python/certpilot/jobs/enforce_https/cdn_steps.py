"""Pacing of the CDN writes that disable-https and the fallback make one after another.

CDN applies a change over about a minute and refuses further writes to a domain that
is `configuring` with `ServiceBusy`; the guide's disable order only holds if each step
is confirmed before the next starts. `Pacing` bounds both waits: a write refused as
busy is sent again, and a write is confirmed by polling its read-back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from certpilot.core.log import get_logger

_log = get_logger(__name__)


@dataclass(frozen=True)
class Pacing:
    """How long a step may wait (seconds), and the clock and sleep it waits with."""

    timeout: float = 180.0
    pause: float = 0.2  # between read-backs; busy answers pause as deploy-cert's retry does
    max_pause: float = 5.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def retry_busy(
    call: Callable[[], object], pacing: Pacing, *, domain: str, done: Callable[[], bool]
) -> None:
    """`call()`, sent again while CDN answers `ServiceBusy` (the domain is still
    configuring an earlier change), for at most `pacing.timeout`: deploy-cert's busy
    retry (through `cdn_apply`), which after each busy answer asks `done()` (a re-read)
    first, since the busy answer may come from our own earlier attempt that was applied.

    Raises:
        CloudError: any other error at once; the `BusyError` once the time is up.
    """
    from certpilot.jobs.enforce_https.cdn_apply import _Busy

    def write() -> None:
        call()

    busy = _Busy(pacing.clock, pacing.sleep, pacing.clock() + pacing.timeout, _log)
    busy.call(write, domain, done)


def wait_until(check: Callable[[], bool], pacing: Pacing) -> bool:
    """Poll `check()` until it holds (True) or `pacing.timeout` passes (False).

    Raises:
        CloudError: a read inside `check` failed.
    """
    deadline = pacing.clock() + pacing.timeout
    pause = pacing.pause
    while True:
        if check():
            return True
        if pacing.clock() + pause > deadline:
            return False
        pacing.sleep(pause)
        pause = min(pause * 2, pacing.max_pause)
