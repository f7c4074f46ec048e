"""Injected faults: latency, errors (N times or at a rate) and dropped connections.

A fault targets an action key ("cdn:SetCdnDomainSSLCertificate", "oss:PutCname",
"fc:InvokeFunction"), a product wildcard ("cdn:*") or every action ("*"), optionally
only requests whose parameters match `where` (RPC/FC query or form parameters; for
OSS also the pseudo-parameters "bucket" and "key", and "domain" for the CNAME calls).

A fault fires before the handler (the call changes nothing), or with `after` once the
handler has succeeded (its change is applied, the client still sees the error or a
dropped connection: a write whose outcome the client cannot know).
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.core import ServiceError


class DropConnection(Exception):
    """Close the client's socket without answering (`action`: the call being dropped)."""

    def __init__(self, action: str = "") -> None:
        super().__init__(action)
        self.action = action


@dataclass
class Fault:
    id: int
    action: str = "*"
    where: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0
    status: int = 0
    code: str = ""
    message: str = ""
    ec: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    times: int | None = None  # remaining applications; None = unlimited
    rate: float = 1.0  # probability of applying to a matching request
    after: bool = False  # fire once the handler succeeded (its change stays applied)
    applied: int = 0

    def matches(self, action: str, params: Mapping[str, str]) -> bool:
        if self.action not in ("*", action):
            product = action.partition(":")[0]
            if self.action != f"{product}:*":
                return False
        return all(params.get(k) == v for k, v in self.where.items())

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "where": dict(self.where),
            "latency": self.latency,
            "error": (
                {"status": self.status, "code": self.code, "message": self.message, "ec": self.ec}
                if self.code
                else None
            ),
            "drop": self.drop,
            "after": self.after,
            "times": self.times,
            "rate": self.rate,
            "applied": self.applied,
        }


def parse_fault(spec: Mapping[str, Any], fault_id: int) -> Fault:
    """Build a `Fault` from its admin JSON form.

    `{"action": "cdn:X", "where": {...}, "latency": 0.5, "error": {"code", "status",
    "message", "ec", "headers"} | "Code", "times": N, "rate": 0.5, "drop": true,
    "after": true}`.

    Raises:
        ValueError: on an unknown field or a value of the wrong type or range.
    """
    known = {
        "action",
        "where",
        "latency",
        "error",
        "times",
        "rate",
        "drop",
        "after",
        "status",
        "code",
    }
    unknown = set(spec) - known
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    error = spec.get("error")
    if isinstance(error, str):
        error = {"code": error}
    if error is None and spec.get("code"):
        error = {"code": spec["code"], "status": spec.get("status", 500)}
    error = dict(error or {})
    times = spec.get("times")
    if times is not None and (isinstance(times, bool) or int(times) < 1):
        raise ValueError("times must be a whole number >= 1")
    rate = float(spec.get("rate", 1.0))
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be within [0, 1]")
    latency = float(spec.get("latency", 0.0))
    if not math.isfinite(latency) or latency < 0:
        raise ValueError("latency must be a finite number of seconds >= 0")
    after = spec.get("after", False)
    if not isinstance(after, bool):
        raise ValueError("after must be true or false")
    fault = Fault(
        id=fault_id,
        action=str(spec.get("action", "*")),
        where={str(k): str(v) for k, v in dict(spec.get("where") or {}).items()},
        latency=latency,
        status=int(error.get("status", 500)) if error else 0,
        code=str(error.get("code", "")),
        message=str(error.get("message") or f"Injected fault: {error.get('code', '')}"),
        ec=str(error.get("ec", "")),
        headers={str(k): str(v) for k, v in dict(error.get("headers") or {}).items()},
        drop=bool(spec.get("drop", False)),
        times=None if times is None else int(times),
        rate=rate,
        after=after,
    )
    if not (fault.latency or fault.code or fault.drop):
        raise ValueError("a fault needs latency, error or drop")
    return fault


@dataclass(frozen=True)
class Effect:
    """What the matching faults do to one request."""

    latency: float = 0.0
    error: ServiceError | None = None
    drop: bool = False


class Faults:
    """The active faults; `take()` consumes one application of each matching fault."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._random = random.Random()

    def add(self, spec: Mapping[str, Any]) -> Fault:
        """Register a fault from its admin JSON form (see `parse_fault`)."""
        with self._lock:
            fault = parse_fault(spec, next(self._ids))
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def take(self, action: str, params: Mapping[str, str], *, after: bool = False) -> Effect | None:
        """The combined effect of the faults matching this request, or None.

        `after=False` takes the faults that fire before the handler, `after=True` those
        that fire once it succeeded (`Fault.after`); each taken fault counts one
        application (and one of its `times`).
        """
        if not self._faults:
            return None
        latency = 0.0
        error: ServiceError | None = None
        drop = False
        with self._lock:
            for fault in list(self._faults):
                if fault.after != after or not fault.matches(action, params):
                    continue
                if fault.rate < 1.0 and self._random.random() >= fault.rate:
                    continue
                fault.applied += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                latency += fault.latency
                drop = drop or fault.drop
                if fault.code and error is None:
                    error = ServiceError(
                        fault.status, fault.code, fault.message, ec=fault.ec, headers=fault.headers
                    )
        if not (latency or error or drop):
            return None
        return Effect(latency, error, drop)
