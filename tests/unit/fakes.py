"""Fakes the unit tests share."""

from __future__ import annotations


class FakeClock:
    """Time that moves only when the code under test sleeps: hand it `clock` (the
    monotonic time, from 0.0) and `sleep` (records each pause in `sleeps`)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
