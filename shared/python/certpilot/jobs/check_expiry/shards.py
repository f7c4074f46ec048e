"""check-expiry's shards (pure): how a sweep too large for one invocation is cut, and
the payload each shard is invoked with.

`plan_shards(records, size)` cuts the swept domains into disjoint shards, in this
order: the OSS custom domains bucket by bucket (whole buckets packed together while
they fit; a bucket larger than a shard split into ranges of domain names), then the CDN
domains in ranges of names. A shard holds at most `size` domains and its payload stays
under `PAYLOAD_BUDGET` (room kept under FC's 128 KB asynchronous limit), whichever is
smaller. Each shard is named by its scope: `ScopeItem`s ("oss bucket b", "oss bucket b
from x to y", "cdn from x to y").

The shard event (a direct invocation of check-expiry; `encode_task` / `parse_task`):

    {"reportOnly": bool, "scope": glob|null,
     "shard": {"run": "<run id>", "index": n, "of": N, "started": ISO 8601,
               "scope": [{"location": "oss"|"cdn", "bucket"?, "first"?, "last"?}],
               "splitBuckets": [bucket, ...],
               "records": [<DomainRecord as JSON>, ...]}}

The records are the coordinator's inventory of those domains, so no shard lists the
account again. `splitBuckets`: the buckets whose domains more than one shard holds
(their bucket policy is then restored once, at merge time, never by two shards at once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any

from certpilot.core.errors import MalformedEvent
from certpilot.core.model import DeployedCert, DomainRecord, Location, Route

# FC refuses an asynchronous payload over 128 KB; the rest of the event and the JSON
# framing fit in what is kept back.
PAYLOAD_BUDGET = 120 * 1024
# Chosen: seconds one domain takes to judge in the worst usual case (a handshake, two
# GETs, the CA's answer) when CERTPILOT_SHARD_SIZE is unset and the size comes from the
# time budget.
SECONDS_PER_DOMAIN = 2.0
RECORD_OVERHEAD = 2  # the comma and a little slack per record in the JSON list


@dataclass(frozen=True)
class ScopeItem:
    """A part of the estate: one bucket's OSS custom domains (all of them, or those
    from `first` to `last` by name), or the CDN domains from `first` to `last`."""

    location: Location
    bucket: str | None = None
    first: str | None = None
    last: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (absent fields left out)."""
        data: dict[str, Any] = {"location": self.location.value}
        for name in ("bucket", "first", "last"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScopeItem:
        """Inverse of `to_dict`. Raises ValueError/KeyError for what it is not."""
        return cls(
            Location(data["location"]), data.get("bucket"), data.get("first"), data.get("last")
        )

    def label(self) -> str:
        """The item in a few words (for NOT_JUDGED messages and logs)."""
        where = f"oss bucket {self.bucket}" if self.location is Location.OSS else "cdn"
        if self.first is None:
            return where
        return f"{where} from {self.first} to {self.last}"


@dataclass(frozen=True)
class Shard:
    """One shard of a run: its index, scope and domains."""

    index: int
    scope: tuple[ScopeItem, ...]
    records: tuple[DomainRecord, ...]

    def label(self) -> str:
        """The shard's scope in a few words."""
        return "; ".join(item.label() for item in self.scope)


@dataclass(frozen=True)
class ShardTask:
    """What one shard invocation is asked to sweep (the `shard` member of its event)."""

    run_id: str
    index: int
    of: int
    started: datetime
    scope: tuple[ScopeItem, ...]
    records: tuple[DomainRecord, ...]
    split_buckets: tuple[str, ...] = ()


# -- records as JSON --------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, (Location, Route)):
        return value.value
    if isinstance(value, DeployedCert):
        return _fields(value)
    return value


def _fields(obj: Any) -> dict[str, Any]:
    return {
        f.name: _encode(getattr(obj, f.name))
        for f in fields(obj)
        if getattr(obj, f.name) not in (None, False)
    }


def record_to_dict(record: DomainRecord) -> dict[str, Any]:
    """`record` as JSON (fields that are None or false left out)."""
    return _fields(record)


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _cert(data: Any) -> DeployedCert | None:
    if data is None:
        return None
    known = {f.name for f in fields(DeployedCert)}
    values = {k: v for k, v in dict(data).items() if k in known}
    values["location"] = Location(values["location"])
    values.setdefault("cas_id", None)
    values.setdefault("cert_type", "")
    values["not_after"] = _time(values.get("not_after"))
    values["not_before"] = _time(values.get("not_before"))
    return DeployedCert(**values)


def record_from_dict(data: Mapping[str, Any]) -> DomainRecord:
    """Inverse of `record_to_dict`. Raises ValueError/KeyError/TypeError for what it
    is not."""
    known = {f.name for f in fields(DomainRecord)}
    values = {k: v for k, v in data.items() if k in known}
    values.setdefault("bucket", None)
    values.setdefault("region", None)
    values["route"] = Route(values["route"])
    values["deployed"] = _cert(values.get("deployed"))
    values["oss_hosted"] = _cert(values.get("oss_hosted"))
    return DomainRecord(**values)


def _size(record: DomainRecord) -> int:
    return len(json.dumps(record_to_dict(record), separators=(",", ":"))) + RECORD_OVERHEAD


# -- planning ---------------------------------------------------------------------------


def budget_size(budget_seconds: float | None, concurrency: int) -> int:
    """Domains one invocation can judge within `budget_seconds` at `concurrency`
    (`SECONDS_PER_DOMAIN` each); 0 (never split) without a budget."""
    if budget_seconds is None or budget_seconds <= 0:
        return 0
    return max(1, int(budget_seconds * concurrency / SECONDS_PER_DOMAIN))


def _chunks(records: Sequence[DomainRecord], size: int, budget: int) -> list[list[DomainRecord]]:
    """`records` (in order) cut into runs of at most `size` records and `budget` bytes."""
    out: list[list[DomainRecord]] = []
    current: list[DomainRecord] = []
    used = 0
    for record in records:
        cost = _size(record)
        if current and (len(current) >= size or used + cost > budget):
            out.append(current)
            current, used = [], 0
        current.append(record)
        used += cost
    if current:
        out.append(current)
    return out


def _ranged(location: Location, bucket: str | None, part: Sequence[DomainRecord]) -> ScopeItem:
    return ScopeItem(location, bucket, part[0].name, part[-1].name)


def plan_shards(
    records: Sequence[DomainRecord], size: int, *, budget: int = PAYLOAD_BUDGET
) -> tuple[Shard, ...]:
    """The shards of `records` (module docstring); pure. Every record is in exactly one
    shard. Raises ValueError for a size below 1."""
    if size < 1:
        raise ValueError("a shard holds at least one domain")
    by_bucket: dict[str, list[DomainRecord]] = {}
    cdn: list[DomainRecord] = []
    for record in sorted(records, key=lambda r: r.name):
        if record.route is Route.CDN:
            cdn.append(record)
        else:
            by_bucket.setdefault(record.bucket or "", []).append(record)
    shards: list[tuple[list[ScopeItem], list[DomainRecord]]] = []
    scope: list[ScopeItem] = []
    held: list[DomainRecord] = []
    used = 0

    def close() -> None:
        nonlocal scope, held, used
        if held:
            shards.append((scope, held))
        scope, held, used = [], [], 0

    for bucket in sorted(by_bucket):
        group = by_bucket[bucket]
        cost = sum(_size(r) for r in group)
        if len(group) <= size and cost <= budget:
            if len(held) + len(group) > size or used + cost > budget:
                close()
            scope.append(ScopeItem(Location.OSS, bucket or None))
            held.extend(group)
            used += cost
            continue
        close()
        for part in _chunks(group, size, budget):
            shards.append(([_ranged(Location.OSS, bucket or None, part)], part))
    close()
    for part in _chunks(cdn, size, budget):
        shards.append(([_ranged(Location.CDN, None, part)], part))
    return tuple(
        Shard(index, tuple(items), tuple(held_records))
        for index, (items, held_records) in enumerate(shards)
    )


def split_buckets(shards: Sequence[Shard]) -> tuple[str, ...]:
    """The buckets whose OSS custom domains more than one shard holds."""
    holders: dict[str, set[int]] = {}
    for shard in shards:
        for record in shard.records:
            if record.route is Route.OSS and record.bucket:
                holders.setdefault(record.bucket, set()).add(shard.index)
    return tuple(sorted(b for b, held in holders.items() if len(held) > 1))


# -- the shard event --------------------------------------------------------------------


def encode_task(task: ShardTask, *, report_only: bool, scope: str | None) -> bytes:
    """The shard event of `task` (module docstring), compact JSON."""
    event = {
        "reportOnly": report_only,
        "scope": scope,
        "shard": {
            "run": task.run_id,
            "index": task.index,
            "of": task.of,
            "started": _encode(task.started),
            "scope": [item.to_dict() for item in task.scope],
            "splitBuckets": list(task.split_buckets),
            "records": [record_to_dict(r) for r in task.records],
        },
    }
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_task(data: Any) -> ShardTask:
    """The `shard` member of an event.

    Raises:
        MalformedEvent: not a shard task this version can read.
    """
    try:
        if not isinstance(data, Mapping):
            raise TypeError("not an object")
        run_id, index, of = data["run"], data["index"], data["of"]
        if not isinstance(run_id, str) or not run_id.strip():
            raise ValueError("run")
        if not isinstance(index, int) or not isinstance(of, int) or not 0 <= index < of:
            raise ValueError("index")
        started = _time(data["started"])
        if started is None:
            raise ValueError("started")
        return ShardTask(
            run_id=run_id,
            index=index,
            of=of,
            started=started,
            scope=tuple(ScopeItem.from_dict(item) for item in data["scope"]),
            records=tuple(record_from_dict(r) for r in data["records"]),
            split_buckets=tuple(str(b) for b in data.get("splitBuckets", ())),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise MalformedEvent(f"shard: not a shard task ({type(error).__name__})") from None
