"""Pure parts of the enforce-https engine: which CAS certificate a domain gets, what
counts as the configured HSTS, and the run's status from its results."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from certpilot.core.cloudtypes import CasSummary
from certpilot.jobs.enforce_https.engine import _candidates, _hsts_ok
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
