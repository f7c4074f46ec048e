"""plan_certificate: where one certificate goes, decided at a fixed `now`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from certpilot import plan as p
from certpilot.findings import Code
from certpilot.model import (
    Catalog,
    CatalogCert,
    DeployedCert,
    DomainRecord,
    Inventory,
    Location,
    Route,
)
from certpilot.report import plan_text

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)

NEW = CatalogCert(
    cas_id=200,
    identifier="200-cn-hangzhou",
    name="wildcard-2026",
    common_name="*.example.com",
    sans=("*.example.com",),
    issuer="Emulator CA One",
    not_before=NOW - DAY,
    not_after=NOW + 90 * DAY,
    fingerprint_sha256="AB" * 32,
)


def deployed(
    cas_id: int | None = 100,
    *,
    expires_in: timedelta | None = 20 * DAY,
    location: Location = Location.OSS,
    fingerprint: str | None = None,
    not_before: datetime | None = None,
) -> DeployedCert:
    return DeployedCert(
        location=location,
        cas_id=cas_id,
        cert_type="CAS" if location is Location.OSS else "cas",
        not_after=NOW + expires_in if expires_in is not None else None,
        not_before=not_before,
        fingerprint=fingerprint,
    )


def oss(name: str, current: DeployedCert | None = None) -> DomainRecord:
    return DomainRecord(name, Route.OSS, "assets", "cn-hangzhou", current)


def cdn(name: str, current: DeployedCert | None = None, status: str = "online") -> DomainRecord:
    return DomainRecord(name, Route.CDN, "assets", "cn-hangzhou", current, cdn_status=status)


def bucket_domain(name: str = "assets.oss-cn-hangzhou.aliyuncs.com") -> DomainRecord:
    return DomainRecord(name, Route.BUCKET_DOMAIN, "assets", "cn-hangzhou", None)


def decide(record: DomainRecord, cert: CatalogCert = NEW, **kwargs: object) -> tuple[str, str]:
    """('deploy'|'skip', reason) for one domain."""
    plan = p.plan_certificate(cert, Inventory((record,)), NOW, **kwargs)  # type: ignore[arg-type]
    if plan.actions:
        return "deploy", plan.actions[0].reason
    if plan.skipped:
        return "skip", plan.skipped[0].reason
    return "ignore", ""


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # covered, and better than what is there
        (oss("www.example.com"), ("deploy", p.NO_CERTIFICATE)),
        (cdn("cdn.example.com"), ("deploy", p.NO_CERTIFICATE)),
        (oss("www.example.com", deployed()), ("deploy", p.EXPIRES_LATER)),
        (
            cdn("cdn.example.com", deployed(location=Location.CDN)),
            ("deploy", p.EXPIRES_LATER),
        ),
        (
            oss("www.example.com", deployed(expires_in=-DAY)),
            ("deploy", "current-invalid:CERT_EXPIRED"),
        ),
        (
            oss("www.example.com", deployed(not_before=NOW + DAY)),
            ("deploy", "current-invalid:CERT_NOT_YET_VALID"),
        ),
        (
            cdn("Www.Example.COM.", deployed(location=Location.CDN)),
            ("deploy", p.EXPIRES_LATER),
        ),
        (cdn("cdn.example.com", status="configuring"), ("deploy", p.NO_CERTIFICATE)),
        # covered but left alone
        (bucket_domain("x.example.com"), ("skip", p.BUCKET_DOMAIN)),
        (oss("www.example.com", deployed(200)), ("skip", p.ALREADY_CURRENT)),
        (
            cdn("cdn.example.com", deployed(None, location=Location.CDN, fingerprint="AB" * 32)),
            ("skip", p.ALREADY_CURRENT),
        ),
        (
            oss("www.example.com", deployed(expires_in=120 * DAY)),
            ("skip", p.CURRENT_EXPIRES_LATER),
        ),
        (
            oss("www.example.com", deployed(expires_in=90 * DAY)),
            ("skip", p.CURRENT_EXPIRES_LATER),
        ),
        (
            oss("www.example.com", deployed(expires_in=None)),
            ("skip", p.CURRENT_EXPIRY_UNKNOWN),
        ),
        (oss("www.example.com", deployed(None)), ("skip", p.PREVIOUS_UNKNOWN)),
        (cdn("cdn.example.com", status="checking"), ("skip", "cdn-status:checking")),
        # near misses: related names the wildcard does not cover
        (oss("example.com"), ("skip", p.NOT_COVERED)),
        (oss("a.b.example.com"), ("skip", p.NOT_COVERED)),
        # other names: not part of this certificate's plan at all
        (oss("www.example.org"), ("ignore", "")),
        (bucket_domain(), ("ignore", "")),
        (oss("www.notexample.com"), ("ignore", "")),
    ],
)
def test_decision_per_domain(record: DomainRecord, expected: tuple[str, str]) -> None:
    # given one domain in the inventory and the certificate NEW (*.example.com, 90 days)
    # when planned at NOW, then the domain is deployed to, skipped or ignored, with a reason
    assert decide(record) == expected


@pytest.mark.parametrize(
    ("cert", "code"),
    [
        (replace(NEW, not_after=NOW - DAY, not_before=NOW - 91 * DAY), Code.CERT_EXPIRED),
        (replace(NEW, not_after=NOW, not_before=NOW - 91 * DAY), Code.CERT_EXPIRED),
        (replace(NEW, not_before=NOW + DAY), Code.CERT_NOT_YET_VALID),
        (replace(NEW, chain_complete=False), Code.CHAIN_INCOMPLETE),
        (replace(NEW, problems=("CHAIN_INCOMPLETE",)), Code.CHAIN_INCOMPLETE),
        (replace(NEW, revoked=True), Code.CERT_REVOKED),
        (replace(NEW, problems=("UNTRUSTED_ROOT",)), Code.UNTRUSTED_ROOT),
        (replace(NEW, problems=("WEAK_KEY",)), Code.WEAK_KEY),
        (replace(NEW, problems=("WEAK_SIGNATURE",)), Code.WEAK_SIGNATURE),
    ],
)
def test_unusable_certificate_is_refused_with_its_finding(cert: CatalogCert, code: Code) -> None:
    # given a certificate browsers would reject and domains it covers
    inventory = Inventory((oss("www.example.com"), cdn("cdn.example.com", deployed())))
    # when planned
    plan = p.plan_certificate(cert, inventory, NOW)
    # then nothing is deployed, the finding names the problem, every domain says why
    assert plan.refused
    assert plan.actions == ()
    assert code in [f.code for f in plan.findings]
    assert {s.reason for s in plan.skipped} == {f"{p.CANDIDATE_INVALID}:{code.value}"}
    assert {s.domain for s in plan.skipped} == {"www.example.com", "cdn.example.com"}


@pytest.mark.parametrize(
    ("problems", "refused"),
    [
        (("CHAIN_ORDER",), False),
        (("CERT_EXPIRED",), False),  # dates are re-judged with `now`, not the snapshot
        (("NOT_A_CODE",), False),
        (("CHAIN_ORDER", "UNTRUSTED_ROOT"), True),
    ],
)
def test_only_browser_breaking_problems_refuse(problems: tuple[str, ...], refused: bool) -> None:
    plan = p.plan_certificate(
        replace(NEW, problems=problems), Inventory((oss("www.example.com"),)), NOW
    )
    assert plan.refused is refused
    assert bool(plan.actions) is not refused


def test_wildcard_rollout_over_a_mixed_estate() -> None:
    # given an estate with OSS and CDN domains, bucket domains and other names
    inventory = Inventory(
        (
            oss("static.example.com", deployed(101, expires_in=10 * DAY)),
            oss("img.example.com"),
            cdn("cdn.example.com", deployed(102, location=Location.CDN)),
            cdn("later.example.com", deployed(103, expires_in=200 * DAY, location=Location.CDN)),
            oss("example.com"),
            oss("a.b.example.com"),
            oss("www.example.org"),
            bucket_domain(),
        )
    )
    # when the wildcard is planned
    plan = p.plan_certificate(NEW, inventory, NOW)
    # then it goes to the three covered domains that need it, and nowhere else
    assert [(a.domain, a.route, a.force) for a in plan.actions] == [
        ("cdn.example.com", Route.CDN, False),
        ("img.example.com", Route.OSS, True),
        ("static.example.com", Route.OSS, False),
    ]
    assert {s.domain: s.reason for s in plan.skipped} == {
        "a.b.example.com": p.NOT_COVERED,
        "example.com": p.NOT_COVERED,
        "later.example.com": p.CURRENT_EXPIRES_LATER,
    }
    assert not plan.refused and plan.findings == ()


def test_actions_carry_what_apply_and_rollback_need() -> None:
    plan = p.plan_certificate(
        NEW,
        Inventory(
            (
                oss("a.example.com", deployed(101)),
                oss("b.example.com"),
                cdn("c.example.com", deployed(None, location=Location.CDN)),
            )
        ),
        NOW,
    )
    by_domain = {a.domain: a for a in plan.actions}
    a, b, c = by_domain["a.example.com"], by_domain["b.example.com"], by_domain["c.example.com"]
    assert (a.identifier, a.previous_identifier, a.force, a.rollback) == (
        "200-cn-hangzhou",
        "101-cn-hangzhou",
        False,
        p.ROLLBACK_RESTORE,
    )
    assert (b.previous_identifier, b.force, b.rollback) == (None, True, p.ROLLBACK_REMOVE)
    # a CDN certificate not held in CAS can be replaced but not restored
    assert (c.force, c.rollback) == (False, p.ROLLBACK_NONE)
    assert (a.bucket, a.region) == ("assets", "cn-hangzhou")


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (
            replace(NEW, cas_id=101, sans=("www.example.com",)),
            ("deploy", p.NOT_COVERING),
        ),
        (replace(NEW, cas_id=101, revoked=True), ("deploy", "current-invalid:CERT_REVOKED")),
        (
            replace(NEW, cas_id=101, chain_complete=False),
            ("deploy", "current-invalid:CHAIN_INCOMPLETE"),
        ),
        (
            replace(NEW, cas_id=101, problems=("UNTRUSTED_ROOT",)),
            ("deploy", "current-invalid:UNTRUSTED_ROOT"),
        ),
        (
            replace(NEW, cas_id=101, problems=("WEAK_KEY", "CHAIN_ORDER")),
            ("deploy", "current-invalid:WEAK_KEY"),
        ),
        (
            replace(NEW, cas_id=101, problems=("CHAIN_ORDER", "CERT_EXPIRING")),
            ("skip", p.CURRENT_EXPIRES_LATER),
        ),
        (replace(NEW, cas_id=101, not_after=NOW + 200 * DAY), ("skip", p.CURRENT_EXPIRES_LATER)),
    ],
)
def test_catalog_tells_what_is_wrong_with_the_deployed_certificate(
    current: CatalogCert, expected: tuple[str, str]
) -> None:
    # given the deployed certificate 101 is in the catalog
    record = oss("img.example.com", deployed(101, expires_in=200 * DAY))
    # when planned with the catalog, then its coverage, revocation and chain count
    assert decide(record, catalog=Catalog((current,))) == expected


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [
        (20 * DAY, ("deploy", p.EXPIRES_LATER)),
        (30 * DAY, ("deploy", p.EXPIRES_LATER)),
        (31 * DAY, ("skip", p.CURRENT_NOT_DUE)),
    ],
)
def test_sweep_policy_replaces_only_inside_the_renewal_window(
    expires_in: timedelta, expected: tuple[str, str]
) -> None:
    policy = p.Policy(renew_days=30, replace_only_when_due=True)
    assert decide(oss("a.example.com", deployed(expires_in=expires_in)), policy=policy) == expected


def test_multi_san_certificate_and_idn() -> None:
    cert = replace(NEW, sans=("example.com", "www.example.com", "xn--bcher-kva.example"))
    inventory = Inventory(
        (oss("example.com"), oss("WWW.example.com"), oss("bücher.example"), oss("x.example.com"))
    )
    plan = p.plan_certificate(cert, inventory, NOW)
    assert sorted(a.domain for a in plan.actions) == [
        "WWW.example.com",
        "bücher.example",
        "example.com",
    ]
    assert [(s.domain, s.reason) for s in plan.skipped] == [("x.example.com", p.NOT_COVERED)]


def test_plan_is_frozen_and_deterministic() -> None:
    inventory = Inventory((oss("b.example.com"), oss("a.example.com")))
    first = p.plan_certificate(NEW, inventory, NOW)
    assert first == p.plan_certificate(NEW, Inventory(tuple(reversed(inventory.domains))), NOW)
    with pytest.raises(AttributeError):
        first.actions = ()  # type: ignore[misc]


def test_dry_run_renders_as_text_and_json() -> None:
    inventory = Inventory(
        (
            oss("static.example.com", deployed(101)),
            oss("example.com"),
            bucket_domain("z.example.com"),
        )
    )
    plan = p.plan_certificate(NEW, inventory, NOW)
    text = plan_text(plan)
    assert "static.example.com" in text and "deploy" in text
    assert "bucket-domain" in text and "not-covered" in text
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["certificate"]["certId"] == 200
    assert data["actions"][0]["previousCertId"] == 101
    assert {s["reason"] for s in data["skipped"]} == {"bucket-domain", "not-covered"}


def test_refused_plan_renders_its_findings() -> None:
    plan = p.plan_certificate(
        replace(NEW, chain_complete=False), Inventory((oss("a.example.com"),)), NOW
    )
    text = plan_text(plan)
    assert "REFUSED" in text and "CHAIN_INCOMPLETE" in text
    assert plan.to_dict()["refused"] is True


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        ({}, ("skip", p.CURRENT_EXPIRES_LATER)),
        ({"a.example.com": Code.WEAK_KEY}, ("deploy", "current-invalid:WEAK_KEY")),
        ({"a.example.com": Code.WEAK_SIGNATURE}, ("deploy", "current-invalid:WEAK_SIGNATURE")),
        ({"other.example.com": Code.WEAK_KEY}, ("skip", p.CURRENT_EXPIRES_LATER)),
    ],
)
def test_live_observation_of_a_broken_current_certificate(
    served: dict[str, Code], expected: tuple[str, str]
) -> None:
    # given a current certificate that expires later than NEW, but that the edge serves
    # in a form browsers reject (as a live probe found)
    record = oss("a.example.com", deployed(expires_in=300 * DAY))
    # when planned with that observation, then it is replaced
    assert decide(record, served=served) == expected


@pytest.mark.parametrize(
    ("domain", "sans", "expected"),
    [
        ("*.example.com", ("*.example.com",), ("deploy", p.NO_CERTIFICATE)),
        ("*.example.com", ("www.example.com",), ("skip", p.NOT_COVERED)),
        ("*.example.com", ("www.example.org",), ("ignore", "")),
        ("*.img.example.com", ("*.example.com",), ("skip", p.NOT_COVERED)),
        ("*.EXAMPLE.com", ("*.example.com",), ("deploy", p.NO_CERTIFICATE)),
    ],
)
def test_wildcard_cdn_domains_need_the_same_wildcard(
    domain: str, sans: tuple[str, ...], expected: tuple[str, str]
) -> None:
    assert decide(cdn(domain), replace(NEW, sans=sans)) == expected


def test_oss_hosted_certificate_on_a_cdn_domain_is_reported_as_wrong_location() -> None:
    # given a CDN domain also bound to its bucket with a certificate hosted on OSS
    # (DESIGN §4: the traffic goes through CDN), next to an OSS domain hosting the same
    # certificate, and an uncovered CDN domain in the same situation
    hosted = deployed(150)
    video = replace(cdn("video.example.com"), oss_hosted=hosted, cname_bound=True)
    elsewhere = replace(cdn("video.example.org"), oss_hosted=hosted, cname_bound=True)
    inventory = Inventory((video, oss("www.example.com", deployed(150)), elsewhere))
    # when the wildcard is planned
    plan = p.plan_certificate(NEW, inventory, NOW)
    # then the certificate goes to CDN for the CDN domain, and the OSS copy is a finding
    assert {a.domain: a.route for a in plan.actions} == {
        "video.example.com": Route.CDN,
        "www.example.com": Route.OSS,
    }
    wrong = [f for f in plan.findings if f.code is Code.WRONG_LOCATION]
    assert [(f.domain, f.severity.value, f.browser_error) for f in wrong] == [
        ("video.example.com", "error", "ERR_SSL_PROTOCOL_ERROR")
    ]
    assert "certificate 150" in wrong[0].message
    # and it is only reported: the certificate itself is not refused
    assert not plan.refused
    assert "WRONG_LOCATION" in plan_text(plan)
    assert "WRONG_LOCATION" in json.dumps(plan.to_dict()["findings"])


@pytest.mark.parametrize(
    "record",
    [
        cdn("video.example.com"),  # CDN domain, nothing on OSS
        replace(oss("video.example.com", deployed(150)), cname_bound=True),  # OSS route
    ],
)
def test_no_wrong_location_without_an_oss_certificate_behind_cdn(record: DomainRecord) -> None:
    plan = p.plan_certificate(NEW, Inventory((record,)), NOW)
    assert Code.WRONG_LOCATION not in {f.code for f in plan.findings}
