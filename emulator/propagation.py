"""Values that change now in the control plane but reach the edge after a delay."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Propagating(Generic[T]):
    """A value with a short history: the control plane sees the latest write at once,
    the edge sees the newest write whose effective time has come (`at(now)`)."""

    __slots__ = ("_history",)

    def __init__(self, value: T, effective_at: float = 0.0) -> None:
        self._history: list[tuple[float, T]] = [(effective_at, value)]

    def latest(self) -> T:
        """The value as the control plane reports it."""
        return self._history[-1][1]

    def at(self, now: float) -> T:
        """The value as the edge serves it at time `now`."""
        for effective_at, value in reversed(self._history):
            if effective_at <= now:
                return value
        return self._history[0][1]

    def settled(self, now: float) -> bool:
        """True once the latest write has reached the edge."""
        return self._history[-1][0] <= now

    def set(self, value: T, now: float, delay: float) -> None:
        """Record a write made at `now` that takes effect `delay` seconds later."""
        effective_at = now + max(delay, 0.0)
        current = self.at(now)
        # Pending writes due before this one still show in between; later ones are superseded.
        pending = [h for h in self._history if now < h[0] < effective_at]
        self._history = [(float("-inf"), current), *pending, (effective_at, value)]
