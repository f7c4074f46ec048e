"""The CDN edge as a fleet of nodes: which node a connection reaches, and a log of the
TLS handshakes the fleet answered.

A CDN change reaches the nodes one by one within the propagation delay (see
`emulator.propagation`); each connection to a CDN domain is answered by one node, so
while a change propagates some connections get the old state and others the new one.
`nodes` and `selection` are run-time settings (`POST /_emulator/settings`
`edge_nodes`, `edge_node_selection`):

- `round_robin` (default): the nodes of a host take its connections in turn, so any
  `nodes` consecutive connections to one host reach every node;
- `random`: a node drawn at random per connection.

CHOSEN: 3 nodes, round robin. The real fleet is far larger and where a client lands is
the load balancer's business; the product must not assume either (it judges a domain on
several consecutive handshakes, never on one).

`GET /_emulator/edge/handshakes[?host=H]` lists the last handshakes of CDN domains:
`{"time", "host", "node", "nodes", "fingerprint" (SHA-256 of the leaf served, upper hex;
null when the handshake failed), "settled" (whether every node had the domain's latest
certificate write by then)}`, oldest first.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from typing import Any

SELECTIONS = ("round_robin", "random")
DEFAULT_NODES = 3
DEFAULT_SELECTION = "round_robin"
MAX_NODES = 64
LOG_SIZE = 20_000


class Fleet:
    """Node selection and the handshake log of one emulated account's CDN edge."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.nodes = DEFAULT_NODES
        self.selection = DEFAULT_SELECTION
        self._turns: dict[str, int] = {}
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)

    def configure(self, *, nodes: int | None = None, selection: str | None = None) -> None:
        """Change the fleet (either value may be None: unchanged).

        Raises:
            ValueError: `nodes` outside 1..64, or an unknown `selection`.
        """
        if nodes is not None and not 1 <= nodes <= MAX_NODES:
            raise ValueError(f"edge_nodes must be between 1 and {MAX_NODES}")
        if selection is not None and selection not in SELECTIONS:
            raise ValueError(f"edge_node_selection must be one of {', '.join(SELECTIONS)}")
        with self._lock:
            if nodes is not None:
                self.nodes = nodes
            if selection is not None:
                self.selection = selection
            self._turns.clear()

    def reset(self) -> None:
        """Back to the defaults, with an empty log."""
        self.configure(nodes=DEFAULT_NODES, selection=DEFAULT_SELECTION)
        with self._lock:
            self._log.clear()

    def pick(self, host: str) -> int:
        """The node that answers the next connection to `host`."""
        with self._lock:
            if self.selection == "random":
                return random.randrange(self.nodes)
            turn = self._turns.get(host, 0)
            self._turns[host] = turn + 1
            return turn % self.nodes

    def record(
        self, host: str, node: int, fingerprint: str | None, *, settled: bool, now: float
    ) -> None:
        """Log one handshake of a CDN domain (`fingerprint` of the leaf served; None:
        the handshake failed)."""
        with self._lock:
            self._log.append(
                {
                    "time": now,
                    "host": host,
                    "node": node,
                    "nodes": self.nodes,
                    "fingerprint": fingerprint,
                    "settled": settled,
                }
            )

    def handshakes(self, host: str | None = None) -> list[dict[str, Any]]:
        """The logged handshakes (of `host` only, when given), oldest first."""
        with self._lock:
            return [dict(h) for h in self._log if host is None or h["host"] == host]
