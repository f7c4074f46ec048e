"""check-expiry's shards (pure): disjoint scopes that cover the estate, the size as the
only bound, the buckets shared by shards, the shard event (small) and the shard and
catalog objects read back."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from certpilot.core.cloudtypes import CasSummary
from certpilot.core.errors import MalformedEvent
from certpilot.core.findings import Code
from certpilot.core.model import Catalog, CatalogCert, DeployedCert, DomainRecord, Location, Route
from certpilot.jobs.check_expiry.shards import (
    ScopeItem,
    ShardRef,
    ShardTask,
    SharedCatalog,
    budget_size,
    catalog_from_dict,
    catalog_to_dict,
    encode_ref,
    parse_ref,
    parse_task,
    plan_shards,
    record_from_dict,
    record_to_dict,
    split_buckets,
    task_to_dict,
)
from certpilot.jobs.check_expiry.sweep import parse_options

NOW = datetime(2030, 3, 4, 5, 6, tzinfo=timezone.utc)


def oss(name: str, bucket: str) -> DomainRecord:
    cert = DeployedCert(
        Location.OSS,
        cas_id=17,
        cert_type="CAS",
        not_after=NOW,
        not_before=NOW,
        fingerprint="AB" * 32,
        identifier="17-cn-hangzhou",
    )
    return DomainRecord(
        name,
        Route.OSS,
        bucket,
        "cn-hangzhou",
        cert,
        cname_bound=True,
        edge_host=f"{bucket}.oss-cn-hangzhou.aliyuncs.com",
    )


def cdn(name: str) -> DomainRecord:
    cert = DeployedCert(Location.CDN, cas_id=None, cert_type="cas", not_after=None, name="c")
    return DomainRecord(
        name, Route.CDN, "assets", None, cert, cdn_status="online", api_name=name, edge_host="e"
    )


ESTATE = (
    [oss(f"d{n:02d}.small.example.com", "small") for n in range(3)]
    + [oss(f"d{n:02d}.tiny.example.com", "tiny") for n in range(2)]
    + [oss(f"d{n:02d}.big.example.com", "big") for n in range(9)]
    + [cdn(f"c{n:02d}.example.com") for n in range(7)]
)


@pytest.mark.parametrize("size", [1, 2, 4, 5, 9, 100])
def test_shards_are_disjoint_cover_the_estate_and_hold_at_most_the_size(size: int) -> None:
    shards = plan_shards(ESTATE, size)

    names = [r.name for s in shards for r in s.records]
    assert sorted(names) == sorted(r.name for r in ESTATE)
    assert len(names) == len(set(names))
    assert all(0 < len(s.records) <= size for s in shards)
    assert [s.index for s in shards] == list(range(len(shards)))


def test_small_buckets_are_packed_whole_big_ones_and_cdn_cut_into_ranges() -> None:
    shards = plan_shards(ESTATE, 5)

    scopes = [s.scope for s in shards]
    assert scopes[0] == (
        ScopeItem(Location.OSS, "big", "d00.big.example.com", "d04.big.example.com"),
    )
    assert scopes[1] == (
        ScopeItem(Location.OSS, "big", "d05.big.example.com", "d08.big.example.com"),
    )
    assert scopes[2] == (ScopeItem(Location.OSS, "small"), ScopeItem(Location.OSS, "tiny"))
    assert scopes[3] == (ScopeItem(Location.CDN, None, "c00.example.com", "c04.example.com"),)
    assert scopes[4] == (ScopeItem(Location.CDN, None, "c05.example.com", "c06.example.com"),)
    # a bucket held by two shards has its policy restored at merge time only
    assert split_buckets(shards) == ("big",)
    # every domain of a ranged item lies within its range, by name
    for shard in shards:
        for item in shard.scope:
            if item.first is not None:
                assert all(item.first <= r.name <= (item.last or "") for r in shard.records)


def test_the_size_alone_bounds_a_shard_and_its_event_stays_small() -> None:
    # Given records far larger than FC's 128 KB payload when put together
    estate = [oss(f"d{n:05d}.{'x' * 40}.example.com", f"b{n % 3}") for n in range(3_000)]

    # When they are cut into shards of 1,000
    shards = plan_shards(estate, 1_000)

    # Then the size alone decides, and the event names the shard's object only
    assert [len(s.records) for s in shards] == [1_000, 1_000, 1_000]
    for shard in shards:
        task = ShardTask("1-run", shard.index, len(shards), NOW, shard.scope, shard.records)
        assert len(json.dumps(task_to_dict(task))) > 128 * 1024
        ref = ShardRef("1-run", shard.index, len(shards), NOW, "r/shards/00000.json", "r/c.json")
        assert len(encode_ref(ref, report_only=False, scope=None)) < 4 * 1024


def test_a_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_shards(ESTATE, 0)


@pytest.mark.parametrize(
    ("budget", "concurrency", "expected"),
    [(None, 8, 0), (0.0, 8, 0), (100.0, 8, 400), (0.1, 1, 1)],
)
def test_the_size_from_the_time_budget(
    budget: float | None, concurrency: int, expected: int
) -> None:
    assert budget_size(budget, concurrency) == expected


def test_records_read_back_as_they_were() -> None:
    for record in ESTATE:
        assert record_from_dict(json.loads(json.dumps(record_to_dict(record)))) == record


def test_the_shard_event_reads_back_into_the_sweeps_options() -> None:
    ref = ShardRef(
        "1-run", 1, 3, NOW, "p/runs/1-run/shards/00001.json", "p/runs/1-run/catalog.json"
    )

    options = parse_options(encode_ref(ref, report_only=True, scope="*.example.com"))

    assert options.report_only is True
    assert options.scope == "*.example.com"
    assert options.shard == ref


def test_the_shard_object_reads_back_as_written() -> None:
    shards = plan_shards(ESTATE, 5)
    task = ShardTask("1-run", 1, len(shards), NOW, shards[1].scope, shards[1].records, ("big",))

    assert parse_task(json.loads(json.dumps(task_to_dict(task)))) == task


def test_the_catalog_object_reads_back_as_written() -> None:
    summary = CasSummary(
        17, "c", "a.example.com", ("a.example.com",), "CA", NOW, NOW, False, True, "ISSUED"
    )
    cert = CatalogCert(
        17,
        "17-cn-hangzhou",
        "c",
        "a.example.com",
        ("a.example.com",),
        "CA",
        NOW,
        NOW,
        "AB" * 32,
        revoked=True,
        chain_complete=False,
        problems=(Code.CHAIN_INCOMPLETE,),
    )
    shared = SharedCatalog((summary,), Catalog((cert,)), frozenset({18}))

    assert catalog_from_dict(json.loads(json.dumps(catalog_to_dict(shared)))) == shared


@pytest.mark.parametrize("data", ["x", {}, {"schema": "other"}])
def test_a_bad_catalog_object_is_refused(data: object) -> None:
    with pytest.raises(ValueError):
        catalog_from_dict(data)


@pytest.mark.parametrize(
    "shard",
    [
        "x",
        {},
        {
            "run": "",
            "index": 0,
            "of": 1,
            "started": "2030-01-01T00:00:00Z",
            "object": "k",
            "catalog": "c",
        },
        {
            "run": "r",
            "index": 2,
            "of": 2,
            "started": "2030-01-01T00:00:00Z",
            "object": "k",
            "catalog": "c",
        },
        {
            "run": "r",
            "index": 0,
            "of": 1,
            "started": "2030-01-01T00:00:00Z",
            "object": "",
            "catalog": "c",
        },
        {"run": "r", "index": 0, "of": 1, "started": "2030-01-01T00:00:00Z", "object": "k"},
    ],
)
def test_a_bad_shard_event_is_rejected(shard: object) -> None:
    with pytest.raises(MalformedEvent):
        parse_ref(shard)


@pytest.mark.parametrize(
    "data",
    [
        {
            "run": "r",
            "index": 0,
            "of": 1,
            "started": "2030-01-01T00:00:00Z",
            "scope": [{"location": "x"}],
            "records": [],
        },
        {
            "run": "r",
            "index": 0,
            "of": 1,
            "started": "2030-01-01T00:00:00Z",
            "scope": [],
            "records": [{"name": "a"}],
        },
    ],
)
def test_a_bad_shard_object_is_refused(data: object) -> None:
    with pytest.raises(ValueError):
        parse_task(data)
