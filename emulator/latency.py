"""The latency profile: how long a cloud API call takes at the least, by its class.

Off by default (tests stay fast). When on, every OSS, CDN and CAS call takes at least
`read` seconds when its action reads and `write` seconds when it changes something,
from the moment the request was read to its answer, whatever the outcome (a refusal by
flow control or an error included). The class of each action comes from the action
catalog (`emulator.core.kind_of`: the verb of its name). FC calls and the test PKI's
OCSP/CRL answers are not delayed: a function's own run time is an invocation's latency.

The wait is a sleep in the request's own thread, outside every lock: the control plane
answers each connection in its own thread, so concurrent calls wait side by side.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

KINDS = ("read", "write")


@dataclass(frozen=True)
class LatencyProfile:
    """Minimum seconds a call of each class takes (0: no wait)."""

    read: float = 0.0
    write: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.read > 0 or self.write > 0

    def of(self, kind: str | None) -> float:
        """The minimum duration of a call of class `kind` (None: not a cloud API call)."""
        if kind == "read":
            return self.read
        if kind == "write":
            return self.write
        return 0.0

    def as_dict(self) -> dict[str, float]:
        return {"read": self.read, "write": self.write}


OFF = LatencyProfile()
# The realistic profile `--latency-profile` gives without a value: a read 50 ms, a write
# 150 ms (round trip plus service time of the Alibaba Cloud control-plane APIs).
REALISTIC = LatencyProfile(read=0.05, write=0.15)


def parse_profile(text: str) -> LatencyProfile:
    """`"read=0.05,write=0.15"` (seconds; a class left out is 0), `"on"` (the realistic
    profile) or `"off"`.

    Raises:
        ValueError: an unknown class, a value that is not a finite number >= 0.
    """
    text = text.strip()
    if text == "on":
        return REALISTIC
    if text in ("off", ""):
        return OFF
    values: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in KINDS:
            raise ValueError(f"latency profile parts are read=S or write=S, got {part!r}")
        values[name] = _seconds(value, name)
    return LatencyProfile(**values)


def profile_from_json(value: object) -> LatencyProfile:
    """The admin setting `latency_profile`: `{"read": S, "write": S}` (a class left out
    is 0), `null` (off), or a string as `parse_profile` takes.

    Raises:
        ValueError: an unknown class, a value that is not a finite number >= 0.
    """
    if value is None:
        return OFF
    if isinstance(value, str):
        return parse_profile(value)
    if not isinstance(value, dict):
        raise ValueError(f'latency_profile must be like {{"read": 0.05, "write": 0.15}}: {value!r}')
    unknown = set(value) - set(KINDS)
    if unknown:
        raise ValueError(f"latency_profile classes are read and write, got {sorted(unknown)}")
    return LatencyProfile(**{name: _seconds(v, name) for name, v in value.items()})


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"latency {name} must be a number of seconds, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"latency {name} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"latency {name} must be a finite number >= 0, got {value!r}")
    return number


class Latency:
    """The account's current profile; `hold` makes a call last its class's minimum."""

    def __init__(self, profile: LatencyProfile = OFF) -> None:
        self._lock = threading.Lock()
        self._profile = profile

    @property
    def profile(self) -> LatencyProfile:
        with self._lock:
            return self._profile

    def configure(self, profile: LatencyProfile) -> None:
        with self._lock:
            self._profile = profile

    def hold(self, kind: str | None, started: float) -> None:
        """Sleep until a call of class `kind` that started at `started` (monotonic) has
        lasted its minimum; no lock is held while sleeping."""
        remaining = self.profile.of(kind) - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
