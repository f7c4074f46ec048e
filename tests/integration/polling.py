"""Waiting for the emulator without blind sleeps: poll until an answer is accepted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    probe: Callable[[], T],
    accept: Callable[[T], bool],
    timeout: float = 5.0,
    *,
    retry_on: tuple[type[Exception], ...] = (),
) -> T:
    """Call `probe` until `accept` holds for its result, and return that result.

    An exception of a `retry_on` type counts as "not yet". Raises AssertionError with the
    last result (or exception) after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
            if accept(value):
                return value
            last: object = value
        except retry_on as err:
            last = err
        if time.monotonic() > deadline:
            raise AssertionError(f"not accepted within {timeout}s: {last!r}")
        time.sleep(0.02)
