"""plan_certificate: where one certificate goes, decided at a fixed `now`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from certpilot.cli.render import plan_text
from certpilot.core.findings import Code
from certpilot.core.model import (
    Catalog,
    CatalogCert,
    DeployedCert,
    DomainRecord,
    EdgeObservation,
    Inventory,
    Location,
    Route,
)
from certpilot.core.outcomes import ReasonCode as R
from certpilot.jobs.deploy_cert import plan as p
from certpilot.jobs.deploy_cert.summary import plan_dict

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)

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
    identifier: str | None = None,
) -> DeployedCert:
    in_cas = cas_id is not None
    return DeployedCert(
        location=location,
        cas_id=cas_id,
        cert_type=("CAS" if in_cas else "Upload")
        if location is Location.OSS
        else ("cas" if in_cas else "upload"),
        not_after=NOW + expires_in if expires_in is not None else None,
        not_before=not_before,
        fingerprint=fingerprint,
        identifier=identifier,
    )


def cdn_cert(cas_id: int | None = 100, **kwargs: object) -> DeployedCert:
    return deployed(cas_id, location=Location.CDN, **kwargs)  # type: ignore[arg-type]


def in_catalog(cas_id: int, days: float, sans: tuple[str, ...] = ("*.example.com",)) -> CatalogCert:
    """A certificate CAS holds, valid for `days` more days."""
    return replace(
        NEW,
        cas_id=cas_id,
        identifier=f"{cas_id}-cn-hangzhou",
        name=f"cert-{cas_id}",
        sans=sans,
        not_after=NOW + days * DAY,
        fingerprint_sha256=f"{cas_id:02X}"[-2:] * 32,
    )


def oss(name: str, current: DeployedCert | None = None) -> DomainRecord:
    return DomainRecord(name, Route.OSS, "assets", "cn-hangzhou", current)


def cdn(name: str, current: DeployedCert | None = None, status: str = "online") -> DomainRecord:
    return DomainRecord(name, Route.CDN, "assets", "cn-hangzhou", current, cdn_status=status)


def bucket_domain(name: str = "assets.oss-cn-hangzhou.aliyuncs.com") -> DomainRecord:
    return DomainRecord(name, Route.BUCKET_DOMAIN, "assets", "cn-hangzhou", None)


def decide(record: DomainRecord, cert: CatalogCert = NEW, **kwargs: object) -> tuple[str, str]:
    """('deploy'|'skip', reason code string) for one domain."""
    plan = p.plan_certificate(cert, Inventory((record,)), NOW, **kwargs)  # type: ignore[arg-type]
    if plan.actions:
        return "deploy", plan.actions[0].reason.wire
    if plan.skipped:
        return "skip", plan.skipped[0].reason.wire
    return "ignore", ""


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # covered, and better than what is there
        (oss("www.example.com"), ("deploy", R.NO_CERTIFICATE)),
        (cdn("cdn.example.com"), ("deploy", R.NO_CERTIFICATE)),
        (oss("www.example.com", deployed()), ("deploy", R.EXPIRES_LATER)),
        (
            cdn("cdn.example.com", deployed(location=Location.CDN)),
            ("deploy", R.EXPIRES_LATER),
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
            ("deploy", R.EXPIRES_LATER),
        ),
        (cdn("cdn.example.com", status="configuring"), ("deploy", R.NO_CERTIFICATE)),
        # a certificate CAS does not hold is replaced only once it is invalid (no rollback)
        (cdn("cdn.example.com", cdn_cert(None)), ("skip", R.PREVIOUS_UNKNOWN)),
        (
            cdn("cdn.example.com", cdn_cert(None, expires_in=-DAY)),
            ("deploy", "current-invalid:CERT_EXPIRED"),
        ),
        (
            oss("www.example.com", deployed(None, identifier="77-cn-hangzhou")),
            ("skip", R.PREVIOUS_UNKNOWN),
        ),
        (
            oss("www.example.com", deployed(None, identifier="77-cn-hangzhou", expires_in=-DAY)),
            ("deploy", "current-invalid:CERT_EXPIRED"),
        ),
        (oss("www.example.com", deployed(None, expires_in=-DAY)), ("skip", R.PREVIOUS_UNKNOWN)),
        (
            cdn("cdn.example.com", cdn_cert(None, expires_in=None)),
            ("skip", R.CURRENT_EXPIRY_UNKNOWN),
        ),
        # covered but left alone
        (bucket_domain("x.example.com"), ("skip", R.BUCKET_DOMAIN)),
        (oss("www.example.com", deployed(200)), ("skip", R.ALREADY_CURRENT)),
        (
            cdn("cdn.example.com", deployed(None, location=Location.CDN, fingerprint="AB" * 32)),
            ("skip", R.ALREADY_CURRENT),
        ),
        (
            oss("www.example.com", deployed(expires_in=120 * DAY)),
            ("skip", R.CURRENT_EXPIRES_LATER),
        ),
        (
            oss("www.example.com", deployed(expires_in=90 * DAY)),
            ("skip", R.CURRENT_EXPIRES_LATER),
        ),
        (
            oss("www.example.com", deployed(expires_in=None)),
            ("skip", R.CURRENT_EXPIRY_UNKNOWN),
        ),
        (oss("www.example.com", deployed(None)), ("skip", R.PREVIOUS_UNKNOWN)),
        (cdn("cdn.example.com", status="checking"), ("skip", "cdn-status:checking")),
        # a paused CDN domain serves nothing: a write could never verify
        (cdn("cdn.example.com", cdn_cert(), status="offline"), ("skip", "cdn-status:offline")),
        (cdn("cdn.example.com", status="stopping"), ("skip", "cdn-status:stopping")),
        # near misses: related names the wildcard does not cover
        (oss("example.com"), ("skip", R.NOT_COVERED)),
        (oss("a.b.example.com"), ("skip", R.NOT_COVERED)),
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
        (replace(NEW, not_after=NOW - TICK, not_before=NOW - 91 * DAY), Code.CERT_EXPIRED),
        (replace(NEW, not_before=NOW + DAY), Code.CERT_NOT_YET_VALID),
        (replace(NEW, chain_complete=False), Code.CHAIN_INCOMPLETE),
        (replace(NEW, problems=(Code.CHAIN_INCOMPLETE,)), Code.CHAIN_INCOMPLETE),
        (replace(NEW, revoked=True), Code.CERT_REVOKED),
        (replace(NEW, problems=(Code.UNTRUSTED_ROOT,)), Code.UNTRUSTED_ROOT),
        (replace(NEW, problems=(Code.WEAK_KEY,)), Code.WEAK_KEY),
        (replace(NEW, problems=(Code.WEAK_SIGNATURE,)), Code.WEAK_SIGNATURE),
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
    assert {s.reason.wire for s in plan.skipped} == {f"candidate-invalid:{code.value}"}
    assert {s.reason.findings[0] for s in plan.skipped} == {code}
    assert {s.domain for s in plan.skipped} == {"www.example.com", "cdn.example.com"}


@pytest.mark.parametrize(
    ("problems", "refused"),
    [
        ((Code.CHAIN_ORDER,), False),
        ((Code.CERT_EXPIRED,), False),  # dates are re-judged with `now`, not the snapshot
        ((Code.CHAIN_ORDER, Code.UNTRUSTED_ROOT), True),
    ],
)
def test_only_browser_breaking_problems_refuse(problems: tuple[Code, ...], refused: bool) -> None:
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
    assert [(a.domain, a.route) for a in plan.actions] == [
        ("cdn.example.com", Route.CDN),
        ("img.example.com", Route.OSS),
        ("static.example.com", Route.OSS),
    ]
    assert {s.domain: s.reason.code for s in plan.skipped} == {
        "a.b.example.com": R.NOT_COVERED,
        "example.com": R.NOT_COVERED,
        "later.example.com": R.CURRENT_EXPIRES_LATER,
    }
    assert not plan.refused and plan.findings == ()


def test_actions_carry_what_apply_and_rollback_need() -> None:
    # given a CAS-bound OSS domain, an empty one, and expired uploads on CDN and OSS
    plan = p.plan_certificate(
        NEW,
        Inventory(
            (
                oss("a.example.com", deployed(101)),
                oss("b.example.com"),
                cdn("c.example.com", cdn_cert(None, expires_in=-DAY)),
                oss("d.example.com", deployed(None, identifier="88-cn-hangzhou", expires_in=-DAY)),
            )
        ),
        NOW,
    )
    # when planned, then each action says what to send and how to undo it
    by_domain = {a.domain: a for a in plan.actions}
    a, b = by_domain["a.example.com"], by_domain["b.example.com"]
    c, d = by_domain["c.example.com"], by_domain["d.example.com"]
    assert (a.identifier, a.previous_identifier, a.rollback) == (
        "200-cn-hangzhou",
        "101-cn-hangzhou",
        p.Rollback.RESTORE,
    )
    # a first binding: neither Force nor PreviousCertId (a concurrent binding conflicts)
    assert (b.previous_identifier, b.rollback) == (None, p.Rollback.REMOVE)
    # certificates not held in CAS can be replaced (once invalid) but not restored; the
    # OSS upload's own CertId is the PreviousCertId
    assert c.rollback == p.Rollback.NONE
    assert (d.previous_identifier, d.rollback) == ("88-cn-hangzhou", p.Rollback.NONE)
    assert (a.bucket, a.region) == ("assets", "cn-hangzhou")


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (
            replace(NEW, cas_id=101, sans=("www.example.com",)),
            ("deploy", R.CURRENT_NOT_COVERING),
        ),
        (replace(NEW, cas_id=101, revoked=True), ("deploy", "current-invalid:CERT_REVOKED")),
        (
            replace(NEW, cas_id=101, chain_complete=False),
            ("deploy", "current-invalid:CHAIN_INCOMPLETE"),
        ),
        (
            replace(NEW, cas_id=101, problems=(Code.UNTRUSTED_ROOT,)),
            ("deploy", "current-invalid:UNTRUSTED_ROOT"),
        ),
        (
            replace(NEW, cas_id=101, problems=(Code.WEAK_KEY, Code.CHAIN_ORDER)),
            ("deploy", "current-invalid:WEAK_KEY"),
        ),
        (
            replace(NEW, cas_id=101, problems=(Code.CHAIN_ORDER, Code.CERT_EXPIRING)),
            ("skip", R.CURRENT_EXPIRES_LATER),
        ),
        (replace(NEW, cas_id=101, not_after=NOW + 200 * DAY), ("skip", R.CURRENT_EXPIRES_LATER)),
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
        (20 * DAY, ("deploy", R.EXPIRES_LATER)),
        (30 * DAY, ("deploy", R.EXPIRES_LATER)),
        (31 * DAY, ("skip", R.CURRENT_NOT_DUE)),
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
    assert [(s.domain, s.reason.code) for s in plan.skipped] == [("x.example.com", R.NOT_COVERED)]


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
    data = json.loads(json.dumps(plan_dict(plan)))
    assert data["certificate"]["certId"] == 200
    assert data["actions"][0]["previousCertId"] == 101
    assert {s["reason"] for s in data["skipped"]} == {"bucket-domain", "not-covered"}


def test_refused_plan_renders_its_findings() -> None:
    plan = p.plan_certificate(
        replace(NEW, chain_complete=False), Inventory((oss("a.example.com"),)), NOW
    )
    text = plan_text(plan)
    assert "REFUSED" in text and "CHAIN_INCOMPLETE" in text
    assert plan_dict(plan)["refused"] is True


OLD = in_catalog(101, 300)  # the configured certificate: lasts longer than NEW
SHA1 = "5A" * 20


@pytest.mark.parametrize(
    ("current", "seen", "expected"),
    [
        # the edge serves the configured certificate (by the catalog's SHA-256, or the
        # SHA-1 OSS reports) and browsers reject it: it is invalid, whatever its expiry
        (
            deployed(101, expires_in=300 * DAY),
            EdgeObservation(Code.WEAK_KEY, OLD.fingerprint_sha256),
            ("deploy", "current-invalid:WEAK_KEY"),
        ),
        (
            deployed(101, expires_in=300 * DAY),
            EdgeObservation(Code.WEAK_SIGNATURE, OLD.fingerprint_sha256),
            ("deploy", "current-invalid:WEAK_SIGNATURE"),
        ),
        (
            deployed(None, expires_in=300 * DAY, fingerprint=SHA1, identifier="9-cn-hangzhou"),
            EdgeObservation(Code.WEAK_KEY, "CD" * 32, SHA1),
            ("deploy", "current-invalid:WEAK_KEY"),
        ),
        # the edge serves another certificate (stale edge, DNS elsewhere): not the
        # configured one's problem
        (
            deployed(101, expires_in=300 * DAY),
            EdgeObservation(Code.NAME_MISMATCH, "EE" * 32, "EE" * 20),
            ("skip", R.SERVED_MISMATCH),
        ),
        # which certificate the edge serves cannot be told: the observation is ignored
        (
            cdn_cert(None, expires_in=300 * DAY),
            EdgeObservation(Code.WEAK_KEY, "EE" * 32),
            ("skip", R.CURRENT_EXPIRES_LATER),
        ),
    ],
)
def test_live_observation_counts_only_against_the_configured_certificate(
    current: DeployedCert, seen: EdgeObservation, expected: tuple[str, str]
) -> None:
    # given a current certificate that expires later than NEW, and what a live probe
    # saw browsers reject at the domain's edge
    route = cdn if current.location is Location.CDN else oss
    record = route("a.example.com", current)
    # when planned with that observation
    decision = decide(record, catalog=Catalog((OLD,)), served={"a.example.com": seen})
    # then it replaces the current certificate only when the edge serves that one
    assert decision == expected


def test_served_mismatch_is_a_finding_and_touches_nothing() -> None:
    # given the edge serves another certificate than the configured 101, which browsers
    # reject, next to a domain whose observation names nothing wrong with it
    inventory = Inventory(
        (
            oss("a.example.com", deployed(101, expires_in=300 * DAY)),
            oss("b.example.com", deployed(101, expires_in=300 * DAY)),
        )
    )
    seen = {"a.example.com": EdgeObservation(Code.NAME_MISMATCH, "EE" * 32)}
    # when planned
    plan = p.plan_certificate(NEW, inventory, NOW, catalog=Catalog((OLD,)), served=seen)
    # then nothing is deployed, and the mismatch is reported for that domain only
    assert plan.actions == ()
    assert {s.domain: s.reason.code for s in plan.skipped} == {
        "a.example.com": R.SERVED_MISMATCH,
        "b.example.com": R.CURRENT_EXPIRES_LATER,
    }
    [finding] = plan.findings
    assert (finding.code, finding.domain) == (Code.SERVED_MISMATCH, "a.example.com")
    assert (finding.configured, finding.served) == (OLD.fingerprint_sha256, "EE" * 32)
    [skip] = [s for s in plan.skipped if s.domain == "a.example.com"]
    assert (skip.reason.finding, skip.reason.cert_id) == (Code.NAME_MISMATCH, 101)


def test_observation_never_overrides_a_decision_to_deploy_or_a_refusal() -> None:
    # given a domain that gets NEW anyway (its current expires sooner), whatever the edge
    record = oss("a.example.com", deployed(101, expires_in=20 * DAY))
    seen = {"a.example.com": EdgeObservation(Code.NAME_MISMATCH, "EE" * 32)}
    # when planned with an observation of another certificate, then it is deployed
    assert decide(record, catalog=Catalog((in_catalog(101, 20),)), served=seen) == (
        "deploy",
        R.EXPIRES_LATER,
    )


@pytest.mark.parametrize(
    ("domain", "sans", "expected"),
    [
        ("*.example.com", ("*.example.com",), ("deploy", R.NO_CERTIFICATE)),
        ("*.example.com", ("www.example.com",), ("skip", R.NOT_COVERED)),
        ("*.example.com", ("www.example.org",), ("ignore", "")),
        ("*.img.example.com", ("*.example.com",), ("skip", R.NOT_COVERED)),
        ("*.EXAMPLE.com", ("*.example.com",), ("deploy", R.NO_CERTIFICATE)),
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
    assert "WRONG_LOCATION" in json.dumps(plan_dict(plan)["findings"])


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


@pytest.mark.parametrize(
    ("current_days", "current_sans", "expected"),
    [
        (300, ("*.example.com",), ("skip", R.CURRENT_EXPIRES_LATER)),
        (20, ("*.example.com",), ("deploy", R.EXPIRES_LATER)),
        (300, ("www.example.com",), ("deploy", R.CURRENT_NOT_COVERING)),
        (300, ("*.img.example.com",), ("deploy", R.CURRENT_NOT_COVERING)),
    ],
)
def test_wildcard_cdn_domain_with_a_catalog_certificate(
    current_days: int, current_sans: tuple[str, ...], expected: tuple[str, str]
) -> None:
    # given the CDN domain *.example.com serving certificate 101 from the catalog
    current = in_catalog(101, current_days, current_sans)
    record = cdn("*.example.com", cdn_cert(101, expires_in=current_days * DAY))
    # when NEW (*.example.com, 90 days) is planned with the catalog
    decision = decide(record, catalog=Catalog((current, NEW)))
    # then the wildcard counts as covering the wildcard domain: a longer-lived one stays
    assert decision == expected


def test_paused_cdn_domain_is_skipped_saying_so() -> None:
    plan = p.plan_certificate(
        NEW, Inventory((cdn("cdn.example.com", cdn_cert(), status="offline"),)), NOW
    )
    [skip] = plan.skipped
    assert (skip.reason.code, skip.reason.cdn_status) == (R.CDN_STATUS, "offline")
    assert skip.reason.wire == "cdn-status:offline"
    assert plan.actions == ()


def test_catalog_dates_replace_the_listing_dates() -> None:
    # given a CDN listing whose zone-less time was read as UTC (8 h later than the
    # instant) and the catalog's exact notAfter, 4 h before NEW's
    exact = replace(in_catalog(101, 90), not_after=NEW.not_after - timedelta(hours=4))
    listed = cdn_cert(101, expires_in=90 * DAY + timedelta(hours=4))
    # when planned with the catalog
    plan = p.plan_certificate(
        NEW, Inventory((cdn("cdn.example.com", listed),)), NOW, catalog=Catalog((exact,))
    )
    # then the exact instant decides (NEW expires later) and the action carries it
    [action] = plan.actions
    assert action.reason.code is R.EXPIRES_LATER
    assert action.previous is not None
    assert (action.previous.not_after, action.previous.not_before) == (
        exact.not_after,
        exact.not_before,
    )


@pytest.mark.parametrize(
    ("offset", "expired"),
    [(-TICK, True), (timedelta(0), False), (TICK, False)],
    ids=["after-notAfter", "at-notAfter", "before-notAfter"],
)
def test_expiry_boundary_is_rfc_5280_inclusive_everywhere(offset: timedelta, expired: bool) -> None:
    # given certificates whose notAfter is NOW + offset (valid through notAfter)
    not_after = NOW + offset
    candidate = replace(NEW, not_after=not_after)
    current = oss("a.example.com", deployed(101, expires_in=offset))
    # when judged at NOW
    candidate_expired = Code.CERT_EXPIRED in [
        f.code for f in p.certificate_findings(candidate, NOW)
    ]
    current_reason = decide(current)[1]
    # then the candidate, the deployed certificate and the catalog agree
    assert candidate_expired is expired
    assert (current_reason == "current-invalid:CERT_EXPIRED") is expired
    assert candidate.valid_at(NOW) is not expired
    assert replace(NEW, not_before=NOW).valid_at(NOW)  # notBefore is inclusive too


@pytest.mark.parametrize(
    ("offset", "expired"),
    [(timedelta(seconds=1), True), (timedelta(0), False), (timedelta(seconds=-1), False)],
    ids=["second-after", "at-notAfter", "second-before"],
)
def test_plan_validate_and_probe_agree_on_an_x509_expiry(offset: timedelta, expired: bool) -> None:
    from certpilot.certs import load_bundle
    from certpilot.certs.validate import check_dates
    from certpilot.probe.tls import ServedCert, served_problem
    from tests.pki import NOW as PKI_NOW
    from tests.pki import build_pki

    # given a real certificate whose notAfter is PKI_NOW (X.509 times are whole seconds)
    pki = build_pki(leaf_not_before=PKI_NOW - 90 * DAY, leaf_not_after=PKI_NOW)
    leaf = pki.leaf.cert
    cert = replace(NEW, not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc)
    served = ServedCert(
        "www.example.com",
        fingerprint="AB" * 32,
        not_after=leaf.not_valid_after_utc,
        chain_ok=True,
        name_ok=True,
    )
    # when each judges it `offset` after its notAfter
    now = PKI_NOW + offset
    by_validate = Code.CERT_EXPIRED in [
        f.code for f in check_dates(load_bundle(pki.chain_pem()), "www.example.com", now)
    ]
    by_plan = Code.CERT_EXPIRED in [f.code for f in p.certificate_findings(cert, now)]
    by_probe = served_problem(served, "AB" * 32, now=now) == "served certificate has expired"
    # then all three say the same
    assert by_validate is by_plan is by_probe is expired
