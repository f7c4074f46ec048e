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
from typing import TypeVar

from certpilot.core.errors import CloudError

T = TypeVar("T")

BUSY_CODE = "ServiceBusy"


@dataclass(frozen=True)
class Pacing:
    """How long a step may wait (seconds), and the clock and sleep it waits with."""

    timeout: float = 180.0
    pause: float = 0.2
    max_pause: float = 5.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def retry_busy(call: Callable[[], T], pacing: Pacing) -> T:
    """`call()`, sent again while CDN answers `ServiceBusy` (the domain is still
    configuring an earlier change), pausing from `pacing.pause` doubling to
    `pacing.max_pause`, for at most `pacing.timeout`.

    Raises:
        CloudError: any other error at once; `ServiceBusy` once the time is up.
    """
    deadline = pacing.clock() + pacing.timeout
    pause = pacing.pause
    while True:
        try:
            return call()
        except CloudError as error:
            if error.code != BUSY_CODE or pacing.clock() + pause > deadline:
                raise
        pacing.sleep(pause)
        pause = min(pause * 2, pacing.max_pause)


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
