"""Pure parts of the enforce-https engine: which CAS certificate a domain gets, what
counts as the configured HSTS, the run's status from its results, and how the scope is
cut into probe-then-write stages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, cast

from certpilot.core.cloudtypes import CasSummary
from certpilot.core.model import DomainRecord, Inventory, Route
from certpilot.jobs.enforce_https.engine import (
    PIPELINE_STAGE,
    _candidates,
    _hsts_ok,
    _Scope,
    _stages,
)
from certpilot.jobs.enforce_https.features import FeaturePrefs
from certpilot.jobs.enforce_https.summary import (
    BucketOutcome,
    BucketResult,
    DomainOutcome,
    DomainReason,
    DomainResult,
    EnforceReport,
    EnforceStatus,
    render,
)

NOW = datetime(2026, 12, 6, tzinfo=timezone.utc)


def cas(cas_id: int, sans: tuple[str, ...], days: int, **kw: object) -> CasSummary:
    fields: dict[str, object] = {
        "cas_id": cas_id,
        "name": f"c{cas_id}",
        "common_name": sans[0],
        "sans": sans,
        "issuer": "CA",
        "start": NOW - timedelta(days=1),
        "end": NOW + timedelta(days=days),
        "expired": False,
        "upload": True,
        "status": "ISSUED",
    }
    fields.update(kw)
    return CasSummary(**fields)  # type: ignore[arg-type]


def test_best_candidate_covers_the_domain_is_valid_and_expires_last() -> None:
    # given certificates: two covering, one expiring later; a near miss; a revoked one
    # lasting longest; one not yet valid
    listing = [
        cas(1, ("*.example.com",), 30),
        cas(2, ("new.example.com", "example.com"), 90),
        cas(3, ("example.com",), 400),  # the apex does not cover new.example.com
        cas(4, ("*.example.com",), 800, status="REVOKED"),
        cas(5, ("*.example.com",), 900, start=NOW + timedelta(days=1)),
        cas(6, ("*.example.com",), 700, expired=True),
    ]
    # when the candidates for a newly bound domain are chosen
    chosen = _candidates(listing, "new.example.com", NOW)
    # then only covering, usable certificates, the one expiring last first
    assert chosen == [2, 1]
    assert _candidates(listing, "a.b.example.com", NOW) == []


def test_hsts_must_carry_the_configured_max_age_and_subdomain_choice() -> None:
    prefs = FeaturePrefs(hsts_max_age=600)
    assert _hsts_ok("max-age=600", prefs)
    assert not _hsts_ok("max-age=5184000", prefs)
    assert not _hsts_ok("max-age=600; includeSubDomains", prefs)
    assert _hsts_ok(
        "max-age=600; includeSubDomains",
        FeaturePrefs(hsts_max_age=600, hsts_include_subdomains=True),
    )
    assert not _hsts_ok(None, prefs)


def test_summary_renders_codes_facts_and_counts() -> None:
    # given a run that enforced one domain and was blocked on a bucket
    report = EnforceReport(
        status=EnforceStatus.PARTIAL,
        request_id="r1",
        event={"trigger": "direct"},
        domains=(
            DomainResult(
                "a.example.com",
                "cdn",
                "media",
                DomainOutcome.ENFORCED,
                DomainReason.VERIFIED,
                certificate=7,
            ),
            DomainResult(
                "b.example.com",
                "oss",
                "media",
                DomainOutcome.NOT_ENFORCED,
                DomainReason.NO_CERTIFICATE,
            ),
        ),
        buckets=(BucketResult("media", "cn-hangzhou", BucketOutcome.BLOCKED),),
    )
    # when it is rendered
    summary = render(report)
    # then ok follows the status, reasons are codes with facts, and counts cover all
    assert (summary["ok"], summary["status"]) == (False, "partial")
    assert summary["domains"][0]["facts"] == {"code": "verified", "certId": 7}
    assert summary["domains"][1]["reason"] == "no-certificate"
    assert summary["counts"]["domains"]["enforced"] == 1
    assert summary["counts"]["domains"]["not-enforced"] == 1
    assert summary["counts"]["buckets"]["blocked"] == 1
    assert set(summary["counts"]["buckets"]) == {o.value for o in BucketOutcome}
    assert EnforceStatus.NOTHING_TO_DO.ok and EnforceStatus.DRY_RUN.ok
    assert not EnforceStatus.NOT_ENFORCED.ok


def test_pipeline_stages_hold_whole_buckets_and_the_loose_targets_come_last() -> None:
    # given 7 buckets of 20 CDN domains each (one with a direct OSS domain too) and a
    # target CDN domain whose origin is no bucket in scope
    records = [
        DomainRecord(f"d{i}.b{b}.example.com", Route.CDN, f"b{b}", "cn-hangzhou", None)
        for b in range(7)
        for i in range(20)
    ]
    direct = DomainRecord("www.b6.example.com", Route.OSS, "b6", "cn-hangzhou", None)
    loose = DomainRecord("other.example.net", Route.CDN, None, None, None)
    buckets = [f"b{b}" for b in range(7)]
    scope = _Scope(Inventory((*records, direct, loose)), {}, [*records, loose], [], buckets)
    # when the run cuts its scope into pipeline stages
    stages = _stages(cast(Any, SimpleNamespace(scope=scope)))
    # then each stage holds whole buckets (about PIPELINE_STAGE domains probed) with all
    # of their targets, every target once, and the domain of no bucket in the last one
    assert PIPELINE_STAGE == 50
    assert [s.buckets for s in stages] == [("b0", "b1", "b2"), ("b3", "b4", "b5"), ("b6",)]
    for stage in stages:
        assert {r.bucket for r in stage.targets if r.bucket} == set(stage.buckets)
    assert [r for s in stages for r in s.targets] == [*records, loose]
    assert stages[-1].targets[-1] is loose
