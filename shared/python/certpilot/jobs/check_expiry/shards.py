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
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from certpilot.core.cloudtypes import CasSummary
from certpilot.core.errors import MalformedEvent
from certpilot.core.findings import Code, Finding
from certpilot.core.model import Catalog, CatalogCert, DeployedCert, DomainRecord, Location, Route

CATALOG_SCHEMA = "certpilot.check-expiry.catalog/1"
# Chosen: seconds one domain takes to judge in the worst usual case (a handshake, two
# GETs, the CA's answer) when CERTPILOT_SHARD_SIZE is unset and the size comes from the
# time budget.
SECONDS_PER_DOMAIN = 2.0


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


@dataclass(frozen=True)
class ShardRef:
    """What one shard invocation is sent (the `shard` member of its event): the run,
    its place in it, and the keys of its shard object and of the run's catalog."""

    run_id: str
    index: int
    of: int
    started: datetime
    key: str
    catalog_key: str


@dataclass(frozen=True)
class SharedCatalog:
    """The CAS catalog the coordinator read for the whole run: the listing's summaries,
    the certificates built from their details, and the ids whose detail call failed."""

    summaries: tuple[CasSummary, ...]
    catalog: Catalog
    unreadable: frozenset[int] = frozenset()
    # Each certificate's public PEM chain by CAS id (certificate blocks only, never a
    # key): what a shard's revocation and strength checks read instead of CAS.
    pems: Mapping[int, str] = field(default_factory=dict)


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


# -- planning ---------------------------------------------------------------------------


def budget_size(budget_seconds: float | None, concurrency: int) -> int:
    """Domains one invocation can judge within `budget_seconds` at `concurrency`
    (`SECONDS_PER_DOMAIN` each); 0 (never split) without a budget."""
    if budget_seconds is None or budget_seconds <= 0:
        return 0
    return max(1, int(budget_seconds * concurrency / SECONDS_PER_DOMAIN))


def _chunks(records: Sequence[DomainRecord], size: int) -> list[list[DomainRecord]]:
    """`records` (in order) cut into runs of at most `size` records."""
    return [list(records[i : i + size]) for i in range(0, len(records), size)]


def _ranged(location: Location, bucket: str | None, part: Sequence[DomainRecord]) -> ScopeItem:
    return ScopeItem(location, bucket, part[0].name, part[-1].name)


def plan_shards(records: Sequence[DomainRecord], size: int) -> tuple[Shard, ...]:
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

    def close() -> None:
        nonlocal scope, held
        if held:
            shards.append((scope, held))
        scope, held = [], []

    for bucket in sorted(by_bucket):
        group = by_bucket[bucket]
        if len(group) <= size:
            if len(held) + len(group) > size:
                close()
            scope.append(ScopeItem(Location.OSS, bucket or None))
            held.extend(group)
            continue
        close()
        for part in _chunks(group, size):
            shards.append(([_ranged(Location.OSS, bucket or None, part)], part))
    close()
    for part in _chunks(cdn, size):
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


# -- the shard event and the shard object ----------------------------------------------


def task_to_dict(task: ShardTask) -> dict[str, Any]:
    """The shard object of `task` (module docstring), JSON-ready."""
    return {
        "run": task.run_id,
        "index": task.index,
        "of": task.of,
        "started": _encode(task.started),
        "scope": [item.to_dict() for item in task.scope],
        "splitBuckets": list(task.split_buckets),
        "records": [record_to_dict(r) for r in task.records],
    }


def encode_ref(ref: ShardRef, *, report_only: bool, scope: str | None) -> bytes:
    """The shard event naming `ref` (module docstring), compact JSON."""
    event = {
        "reportOnly": report_only,
        "scope": scope,
        "shard": {
            "run": ref.run_id,
            "index": ref.index,
            "of": ref.of,
            "started": _encode(ref.started),
            "object": ref.key,
            "catalog": ref.catalog_key,
        },
    }
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _place(data: Any) -> tuple[str, int, int, datetime]:
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
    return run_id, index, of, started


def parse_ref(data: Any) -> ShardRef:
    """The `shard` member of an event.

    Raises:
        MalformedEvent: not a shard event this version can read.
    """
    try:
        run_id, index, of, started = _place(data)
        key, catalog_key = data["object"], data["catalog"]
        if not all(isinstance(k, str) and k.strip() for k in (key, catalog_key)):
            raise ValueError("object")
        return ShardRef(run_id, index, of, started, key, catalog_key)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise MalformedEvent(f"shard: not a shard event ({type(error).__name__})") from None


def parse_task(data: Any) -> ShardTask:
    """A shard object (module docstring).

    Raises:
        ValueError: not a shard object this version can read.
    """
    try:
        run_id, index, of, started = _place(data)
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
        raise ValueError(f"not a shard object ({type(error).__name__})") from None


# -- the run's catalog ------------------------------------------------------------------


def _summary_to_dict(summary: CasSummary) -> dict[str, Any]:
    return {f.name: _encode(getattr(summary, f.name)) for f in fields(summary)}


def _summary_from_dict(data: Mapping[str, Any]) -> CasSummary:
    values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(CasSummary)}
    values["sans"] = tuple(values["sans"] or ())
    values["start"] = _time(values["start"])
    values["end"] = _time(values["end"])
    return CasSummary(**values)


def _cert_to_dict(cert: CatalogCert) -> dict[str, Any]:
    data = {f.name: _encode(getattr(cert, f.name)) for f in fields(cert)}
    data["sans"] = list(cert.sans)
    data["problems"] = [c.value for c in cert.problems]
    data["findings"] = [f.to_dict() for f in cert.findings]
    return data


def _cert_from_dict(data: Mapping[str, Any]) -> CatalogCert:
    values = {f.name: data[f.name] for f in fields(CatalogCert) if f.name in data}
    values["sans"] = tuple(values["sans"])
    values["not_before"] = _time(values["not_before"])
    values["not_after"] = _time(values["not_after"])
    values["problems"] = tuple(Code(c) for c in values.get("problems", ()))
    values["findings"] = tuple(Finding.from_dict(f) for f in values.get("findings", ()))
    return CatalogCert(**values)


def catalog_to_dict(shared: SharedCatalog) -> dict[str, Any]:
    """The run's catalog object (module docstring), JSON-ready: metadata only."""
    return {
        "schema": CATALOG_SCHEMA,
        "summaries": [_summary_to_dict(s) for s in shared.summaries],
        "certificates": [_cert_to_dict(c) for c in shared.catalog.certificates],
        "unreadable": sorted(shared.unreadable),
        "pems": {str(cas_id): pem for cas_id, pem in sorted(shared.pems.items())},
    }


def catalog_from_dict(data: Any) -> SharedCatalog:
    """Inverse of `catalog_to_dict`.

    Raises:
        ValueError: not a catalog object this version wrote.
    """
    try:
        if not isinstance(data, Mapping) or data.get("schema") != CATALOG_SCHEMA:
            raise ValueError("schema")
        return SharedCatalog(
            summaries=tuple(_summary_from_dict(s) for s in data["summaries"]),
            catalog=Catalog(tuple(_cert_from_dict(c) for c in data["certificates"])),
            unreadable=frozenset(int(i) for i in data["unreadable"]),
            pems={int(k): str(v) for k, v in dict(data.get("pems") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"not a catalog object ({type(error).__name__})") from None
