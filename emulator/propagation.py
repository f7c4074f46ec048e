"""Values that change now in the control plane but reach the edge after a delay.

The edge is a fleet of nodes. A write reaches them one by one: with `nodes` nodes and a
propagation delay `d`, the nodes switch at `d/nodes, 2d/nodes, ..., d` after the write,
in an order drawn afresh for every write, so the last node has it exactly `d` after the
write (`settled`). In between, some nodes serve the new value and others the old one.
"""

from __future__ import annotations

import random
from typing import Generic, TypeVar

T = TypeVar("T")

_INF = float("inf")


class _Write(Generic[T]):
    __slots__ = ("effective_at", "order", "started", "value")

    def __init__(self, started: float, effective_at: float, value: T, order: int) -> None:
        self.started = started
        self.effective_at = effective_at
        self.value = value
        self.order = order  # seed of this write's node order

    def reaches(self, node: int, nodes: int) -> float:
        """When node `node` of `nodes` switches to this write."""
        if nodes <= 1 or self.effective_at in (_INF, -_INF) or self.started == -_INF:
            return self.effective_at
        rank = _ranks(self.order, nodes)[node % nodes]
        span = self.effective_at - self.started
        return self.started + span * (rank + 1) / nodes


def _ranks(seed: int, nodes: int) -> list[int]:
    """The switching rank of every node for one write (a permutation of 0..nodes-1)."""
    ranks = list(range(nodes))
    random.Random(seed).shuffle(ranks)
    return ranks


class Propagating(Generic[T]):
    """A value with a short history: the control plane sees the latest write at once,
    the edge sees the newest write whose effective time has come (`at(now)`), node by
    node (`at(now, node=k, nodes=n)`)."""

    __slots__ = ("_history",)

    def __init__(self, value: T, effective_at: float = 0.0) -> None:
        self._history: list[_Write[T]] = [_Write(-_INF, effective_at, value, 0)]

    def latest(self) -> T:
        """The value as the control plane reports it."""
        return self._history[-1].value

    def at(self, now: float, *, node: int | None = None, nodes: int = 1) -> T:
        """The value as the edge serves it at time `now`: the value every node has by
        then, or (with `node`) what node `node` of a fleet of `nodes` serves."""
        for write in reversed(self._history):
            due = write.effective_at if node is None else write.reaches(node, nodes)
            if due <= now:
                return write.value
        return self._history[0].value

    def settled(self, now: float) -> bool:
        """True once the latest write has reached the edge (every node)."""
        return self._history[-1].effective_at <= now

    def due(self) -> float:
        """When the latest write reaches the last node (+inf: never by itself)."""
        return self._history[-1].effective_at

    def set(self, value: T, now: float, delay: float) -> None:
        """Record a write made at `now` that takes effect `delay` seconds later."""
        effective_at = now + max(delay, 0.0)
        current = self.at(now)
        # Pending writes due before this one still show in between; later ones are superseded.
        pending = [h for h in self._history if now < h.effective_at < effective_at]
        self._history = [
            _Write(-_INF, -_INF, current, 0),
            *pending,
            _Write(now, effective_at, value, random.getrandbits(32)),
        ]
