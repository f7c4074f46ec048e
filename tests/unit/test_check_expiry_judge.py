"""check-expiry's judge: one table of domain states, a fixed clock, the findings each
must produce (and must not). Pure: no emulator, no network."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import pytest

from certpilot.core.findings import Code
from certpilot.core.model import (
    Catalog,
    CatalogCert,
    DeployedCert,
    DomainRecord,
    Location,
    Route,
)
from certpilot.jobs.check_expiry.judge import (
    DomainState,
    Gap,
    JudgePolicy,
    PolicyView,
    Served,
    Verdict,
    WebView,
    best_backup,
    judge,
)
from certpilot.jobs.check_expiry.repair import payload, plan_rollouts
from certpilot.jobs.check_expiry.sweep import SweepOptions, parse_options

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
ONE, TWO = "CA One", "CA Two"


def cert(
    cas_id: int,
    sans: tuple[str, ...] = ("*.example.com",),
    *,
    issuer: str = ONE,
    days: int = 200,
    born: int = -30,
    **changes: object,
) -> CatalogCert:
    base = CatalogCert(
        cas_id=cas_id,
        identifier=f"{cas_id}-cn-hangzhou",
        name=f"cert-{cas_id}",
        common_name=sans[0],
        sans=sans,
        issuer=issuer,
        not_before=NOW + born * DAY,
        not_after=NOW + days * DAY,
        fingerprint_sha256=f"{cas_id:064X}",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def record(
    name: str = "www.example.com",
    route: Route = Route.OSS,
    cas_id: int | None = 1,
    **changes: object,
) -> DomainRecord:
    deployed = (
        DeployedCert(
            location=Location.CDN if route is Route.CDN else Location.OSS,
            cas_id=cas_id,
            cert_type="cas",
            not_after=None,
        )
        if cas_id is not None
        else None
    )
    base = DomainRecord(name, route, "assets", "cn-hangzhou", deployed)
    return replace(base, **changes)  # type: ignore[arg-type]


def served(cas_id: int = 1, **changes: object) -> Served:
    return replace(Served(sha256=f"{cas_id:064X}", issuer=ONE), **changes)  # type: ignore[arg-type]


FORCED_OSS = PolicyView(statement=True)
WEB_OK = WebView(403, None, True, None)
CDN_WEB_OK = WebView(301, "https://www.example.com/", True, "max-age=5184000")
BACKUP = cert(9, ("*.example.com",), issuer=TWO, days=300)


@dataclass(frozen=True)
class Case:
    id: str
    state: DomainState
    certificates: tuple[CatalogCert, ...]
    expect: set[Code]
    absent: set[Code] = field(default_factory=set)
    judged: bool = True


def healthy(**changes: object) -> DomainState:
    base = DomainState(record(), served(), WEB_OK, FORCED_OSS)
    return replace(base, **changes)  # type: ignore[arg-type]


CASES = [
    Case("healthy OSS domain with a backup: nothing", healthy(), (cert(1), BACKUP), set()),
    Case(
        "healthy CDN domain: redirect and HSTS",
        DomainState(record(route=Route.CDN), served(), CDN_WEB_OK),
        (cert(1), BACKUP),
        set(),
    ),
    Case("no backup from another CA", healthy(), (cert(1), cert(2)), {Code.NO_BACKUP}),
    Case(
        "a revoked backup is no backup",
        healthy(),
        (cert(1), replace(BACKUP, revoked=True)),
        {Code.NO_BACKUP},
    ),
    Case(
        "an expired backup is no backup",
        healthy(),
        (cert(1), replace(BACKUP, not_after=NOW - DAY)),
        {Code.NO_BACKUP},
    ),
    Case("expired", healthy(), (cert(1, days=-1), BACKUP), {Code.CERT_EXPIRED}),
    Case(
        "notAfter is the last valid instant",
        healthy(),
        (cert(1, days=0), BACKUP),
        {Code.CERT_EXPIRING},
        {Code.CERT_EXPIRED},
    ),
    Case(
        "not yet valid",
        healthy(),
        (cert(1, born=2), BACKUP),
        {Code.CERT_NOT_YET_VALID},
        {Code.CERT_EXPIRING},
    ),
    Case("inside the window", healthy(), (cert(1, days=30), BACKUP), {Code.CERT_EXPIRING}),
    Case(
        "just outside the window",
        healthy(),
        (replace(cert(1), not_after=NOW + 30 * DAY + timedelta(seconds=1)), BACKUP),
        set(),
        {Code.CERT_EXPIRING},
    ),
    Case(
        "name mismatch",
        healthy(),
        (cert(1, ("shop.example.net",)), BACKUP),
        {Code.NAME_MISMATCH},
    ),
    Case(
        "wildcard one level off (apex)",
        healthy(record=record("example.com")),
        (cert(1), cert(9, ("example.com",), issuer=TWO)),
        {Code.WILDCARD_LEVEL},
        {Code.NAME_MISMATCH, Code.NO_BACKUP},
    ),
    Case(
        "wildcard one level off (two below)",
        healthy(record=record("a.b.example.com")),
        (cert(1), BACKUP),
        {Code.WILDCARD_LEVEL, Code.NO_BACKUP},
    ),
    Case(
        "chain incomplete (CAS's chain)",
        healthy(),
        (cert(1, chain_complete=False, problems=(Code.CHAIN_INCOMPLETE,)), BACKUP),
        {Code.CHAIN_INCOMPLETE},
    ),
    Case(
        "untrusted root: one cause, one code",
        healthy(),
        (cert(1, chain_complete=False, problems=(Code.UNTRUSTED_ROOT,)), BACKUP),
        {Code.UNTRUSTED_ROOT},
        {Code.CHAIN_INCOMPLETE},
    ),
    Case(
        "served chain order, weak key and digest",
        healthy(served=served(chain_codes=(Code.CHAIN_ORDER, Code.WEAK_KEY, Code.WEAK_SIGNATURE))),
        (cert(1), BACKUP),
        {Code.CHAIN_ORDER, Code.WEAK_KEY, Code.WEAK_SIGNATURE},
    ),
    Case(
        "OpenSSL's CHAIN_INCOMPLETE for an unknown root defers to the chain judgement",
        healthy(served=served(rejected=Code.CHAIN_INCOMPLETE, chain_codes=(Code.UNTRUSTED_ROOT,))),
        (cert(1), BACKUP),
        {Code.UNTRUSTED_ROOT},
        {Code.CHAIN_INCOMPLETE},
    ),
    Case(
        "revoked by its CA (served)",
        healthy(served=served(revoked=True)),
        (cert(1), BACKUP),
        {Code.CERT_REVOKED},
    ),
    Case(
        "revoked as CAS knows (purchased)",
        healthy(),
        (cert(1, revoked=True), BACKUP),
        {Code.CERT_REVOKED},
    ),
    Case(
        "the edge serves another certificate",
        healthy(served=served(5)),
        (cert(1), BACKUP),
        {Code.SERVED_MISMATCH},
    ),
    Case(
        "no certificate",
        DomainState(record(cas_id=None)),
        (BACKUP,),
        {Code.NO_CERTIFICATE},
        {Code.NO_BACKUP, Code.HTTP_NOT_FORCED},
    ),
    Case(
        "wrong location: on OSS, traffic through CDN",
        DomainState(
            record(
                route=Route.CDN,
                cas_id=None,
                oss_hosted=DeployedCert(Location.OSS, 1, "CAS", NOW + DAY),
            )
        ),
        (cert(1), BACKUP),
        {Code.WRONG_LOCATION},
        {Code.NO_CERTIFICATE},
    ),
    Case(
        "OSS: no HTTPS-only statement",
        healthy(policy=PolicyView(statement=False), web=WebView(200, None, True)),
        (cert(1), BACKUP),
        {Code.HTTP_NOT_FORCED},
    ),
    Case(
        "OSS: the statement is there but plain HTTP is served",
        healthy(web=WebView(200, None, True)),
        (cert(1), BACKUP),
        {Code.HTTP_NOT_FORCED},
    ),
    Case(
        "OSS: an emergency fallback in force",
        healthy(policy=PolicyView(True, NOW + DAY), web=WebView(200, None, True)),
        (cert(1), BACKUP),
        {Code.FALLBACK_ACTIVE},
        {Code.HTTP_NOT_FORCED},
    ),
    Case(
        "OSS: a fallback that ended is no fallback",
        healthy(policy=PolicyView(True, NOW - DAY)),
        (cert(1), BACKUP),
        set(),
        {Code.FALLBACK_ACTIVE},
    ),
    Case(
        "CDN: an emergency fallback in force",
        DomainState(
            record(route=Route.CDN),
            served(),
            WebView(200, None, True, "max-age=60"),
            cdn_fallback_until=NOW + DAY,
        ),
        (cert(1), BACKUP),
        {Code.FALLBACK_ACTIVE},
        {Code.HTTP_NOT_FORCED},
    ),
    Case(
        "CDN: a fallback whose end has passed is no fallback",
        DomainState(
            record(route=Route.CDN),
            served(),
            WebView(200, None, True, "max-age=60"),
            cdn_fallback_until=NOW - DAY,
        ),
        (cert(1), BACKUP),
        {Code.HTTP_NOT_FORCED},
        {Code.FALLBACK_ACTIVE},
    ),
    Case(
        "CDN: no redirect, no HSTS",
        DomainState(record(route=Route.CDN), served(), WebView(200, None, True, None)),
        (cert(1), BACKUP),
        {Code.HTTP_NOT_FORCED, Code.HSTS_MISSING},
    ),
    Case(
        "CDN: a redirect to plain HTTP is not forcing",
        DomainState(
            record(route=Route.CDN),
            served(),
            WebView(301, "http://www.example.com/", True, "max-age=60"),
        ),
        (cert(1), BACKUP),
        {Code.HTTP_NOT_FORCED},
        {Code.HSTS_MISSING},
    ),
    Case(
        "CDN: HSTS max-age=0 is off",
        DomainState(
            record(route=Route.CDN),
            served(),
            replace(CDN_WEB_OK, hsts="max-age=0"),
        ),
        (cert(1), BACKUP),
        {Code.HSTS_MISSING},
    ),
    Case(
        "CDN: HTTPS rejected by browsers: HSTS is not judged",
        DomainState(record(route=Route.CDN), served(), WebView(301, "https://x/", False)),
        (cert(1), BACKUP),
        set(),
        {Code.HSTS_MISSING},
    ),
    Case(
        "an upload CAS does not hold: judged from what the edge serves",
        healthy(
            record=record(cas_id=None, deployed=DeployedCert(Location.OSS, None, "Upload", None)),
            served=served(
                7, not_before=NOW - DAY, not_after=NOW + 3 * DAY, sans=("x.example.org",)
            ),
        ),
        (BACKUP,),
        {Code.CERT_EXPIRING, Code.NAME_MISMATCH},
    ),
    Case(
        "probe failed: not judged",
        healthy(served=None, web=None, gaps=(Gap.PROBE_FAILED,)),
        (cert(1), BACKUP),
        {Code.NOT_JUDGED},
        judged=False,
    ),
    Case(
        "policy unreadable: not judged, what is known still reported",
        healthy(policy=None, gaps=(Gap.POLICY_UNREADABLE,)),
        (cert(1, days=3), BACKUP),
        {Code.NOT_JUDGED, Code.CERT_EXPIRING},
        judged=False,
    ),
    Case(
        "out of time: not judged",
        healthy(served=None, web=None, gaps=(Gap.OUT_OF_TIME,)),
        (cert(1), BACKUP),
        {Code.NOT_JUDGED},
        judged=False,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_judge(case: Case) -> None:
    verdict = judge(case.state, Catalog(case.certificates), NOW, JudgePolicy(renew_days=30))
    codes = {f.code for f in verdict.findings}
    assert case.expect <= codes, (codes, [f.message for f in verdict.findings])
    assert not (case.absent & codes), codes
    if not case.expect:
        assert codes == set(), [f.message for f in verdict.findings]
    assert verdict.judged is case.judged
    assert (Code.NOT_JUDGED in codes) is (not case.judged)
    assert all(f.domain == case.state.record.name for f in verdict.findings)
    assert len(verdict.findings) == len(codes)  # each code once per domain


def test_judge_is_pure_and_repeatable() -> None:
    state, catalog = healthy(), Catalog((cert(1, days=10), BACKUP))
    assert judge(state, catalog, NOW) == judge(state, catalog, NOW)


def test_the_row_facts() -> None:
    verdict = judge(healthy(), Catalog((cert(1, days=20), BACKUP)), NOW)
    assert verdict.cas_id == 1
    assert verdict.issuer == ONE
    assert verdict.expires_in_days(NOW) == 20
    assert verdict.https_forced is True
    assert verdict.hsts is None  # OSS: HSTS is CDN's
    assert verdict.backup == BACKUP.cas_id


def test_best_backup_expires_last_from_another_ca() -> None:
    later = cert(10, issuer=TWO, days=400)
    same_ca = cert(11, issuer=ONE, days=500)
    chosen = best_backup("www.example.com", Catalog((BACKUP, later, same_ca)), NOW, ONE, 1)
    assert chosen == later
    assert best_backup("www.example.com", Catalog((same_ca,)), NOW, ONE, 1) is None


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (b"", SweepOptions()),
        (b"{}", SweepOptions()),
        ({"scope": "Media-*"}, SweepOptions(scope="media-*")),
        ({"reportOnly": True}, SweepOptions(report_only=True)),
        (
            {"triggerTime": "t", "triggerName": "daily", "payload": '{"scope": "b"}'},
            SweepOptions(scope="b", trigger="daily"),
        ),
        (
            {"triggerTime": "t", "triggerName": "daily", "payload": ""},
            SweepOptions(trigger="daily"),
        ),
    ],
)
def test_options(event: object, expected: SweepOptions) -> None:
    assert parse_options(event) == expected


def _verdict_of(state: DomainState, catalog: Catalog) -> Verdict:
    return judge(state, catalog, NOW)


@pytest.mark.parametrize(
    ("state", "certificates", "expected"),
    [
        # inside the window, a later one from CAS: rolled out
        (healthy(), (cert(1, days=10), cert(2, days=300)), {2: ("www.example.com",)}),
        # inside the window, nothing later: nothing to do
        (healthy(), (cert(1, days=10), cert(2, days=5)), {}),
        # not due: nothing to do, even with a later one
        (healthy(), (cert(1, days=100), cert(2, days=300)), {}),
        # expired: anything usable replaces it
        (healthy(), (cert(1, days=-1), cert(2, days=20)), {2: ("www.example.com",)}),
        # a revoked or chain-broken candidate is never picked
        (
            healthy(),
            (cert(1, days=10), cert(2, days=300, revoked=True), cert(3, days=200)),
            {3: ("www.example.com",)},
        ),
        (
            healthy(),
            (cert(1, days=10), cert(2, days=300, chain_complete=False)),
            {},
        ),
        # no certificate at all: the best covering one
        (DomainState(record(cas_id=None)), (cert(2, days=300),), {2: ("www.example.com",)}),
        # not judged: never repaired
        (
            healthy(served=None, web=None, gaps=(Gap.PROBE_FAILED,)),
            (cert(1, days=10), cert(2, days=300)),
            {},
        ),
    ],
)
def test_plan_rollouts(
    state: DomainState,
    certificates: tuple[CatalogCert, ...],
    expected: dict[int, tuple[str, ...]],
) -> None:
    catalog = Catalog(certificates)
    verdicts = {state.record.name: _verdict_of(state, catalog)}
    rollouts = plan_rollouts([state.record], verdicts, catalog, NOW)
    assert {r.cas_id: r.domains for r in rollouts} == expected


def test_one_rollout_per_certificate_and_its_payload() -> None:
    catalog = Catalog((cert(1, days=10), cert(2, days=300)))
    records = [record("a.example.com"), record("b.example.com")]
    verdicts = {
        r.name: judge(DomainState(r, served(), WEB_OK, FORCED_OSS), catalog, NOW) for r in records
    }
    [rollout] = plan_rollouts(records, verdicts, catalog, NOW)
    assert rollout.domains == ("a.example.com", "b.example.com")
    assert Code.CERT_EXPIRING in rollout.fixes
    body = json.loads(payload(rollout, "req-1"))
    assert body["certId"] == 2
    assert set(body) == {"certId", "reason"}
    assert len(body["reason"]) <= 200


@pytest.mark.parametrize(
    ("now_cas_id", "now_codes", "expected"),
    [
        (2, (), "confirmed"),  # the rolled-out certificate is there, the problem gone
        (3, (), "confirmed"),  # another rollout's certificate fixed it meanwhile
        (1, (Code.CERT_EXPIRING,), "failed"),  # still the old one
        (2, (Code.CERT_EXPIRING,), "failed"),  # there, but what it was to fix is not fixed
    ],
)
def test_the_next_sweep_settles_a_pending_rollout(
    now_cas_id: int, now_codes: tuple[Code, ...], expected: str
) -> None:
    from certpilot.core.model import Location
    from certpilot.jobs.check_expiry.report import (
        DomainRow,
        Repair,
        RepairKind,
        RepairStatus,
        Report,
        RunInfo,
    )
    from certpilot.jobs.check_expiry.run import confirmed
    from certpilot.jobs.check_expiry.sweep import Row

    pending = Repair(RepairKind.DEPLOY_INVOKED, RepairStatus.PENDING, 2, (Code.CERT_EXPIRING,))
    previous = Report(
        RunInfo("r1", NOW, NOW, NOW),
        (DomainRow("www.example.com", Location.OSS, repairs=(pending,)),),
    )
    verdict = Verdict("www.example.com", (), True, cas_id=now_cas_id, codes=now_codes)
    row = Row("www.example.com", Route.OSS, "assets", verdict)
    [settled] = confirmed(previous, row)
    assert settled.status.value == expected
    assert settled.cas_id == 2
    not_judged = Row("www.example.com", Route.OSS, "assets", replace(verdict, judged=False))
    assert confirmed(previous, not_judged) == ()


# -- failover to a backup from another CA (issue 11, point 2) ----------------------------


@pytest.mark.parametrize(
    ("id_", "state", "certificates", "expected"),
    [
        # the primary expired: the backup from the other CA, though CA One's lasts longer
        (
            "expired",
            healthy(),
            (cert(1, days=-1), cert(2, days=400), cert(9, issuer=TWO, days=300)),
            9,
        ),
        # revoked by CAS (a purchased order REVOKED)
        (
            "revoked",
            healthy(),
            (cert(1, revoked=True), cert(9, issuer=TWO, days=300)),
            9,
        ),
        # revoked by its CA (OCSP/CRL): the probe says so
        (
            "revoked-ocsp",
            healthy(served=served(revoked=True)),
            (cert(1), cert(9, issuer=TWO, days=300)),
            9,
        ),
        # the chain the edge sends is distrusted (its root is not trusted)
        (
            "distrusted",
            healthy(served=served(chain_codes=(Code.UNTRUSTED_ROOT,))),
            (cert(1), cert(9, issuer=TWO, days=300)),
            9,
        ),
        # of two backups from other CAs, the one that expires last
        (
            "expires-last",
            healthy(),
            (cert(1, days=-1), cert(8, issuer="CA Three", days=100), cert(9, issuer=TWO)),
            9,
        ),
        # a backup revoked, not yet valid, or not covering the domain is never picked
        (
            "unusable-backups",
            healthy(),
            (
                cert(1, days=-1),
                cert(7, issuer=TWO, days=400, revoked=True),
                cert(8, issuer=TWO, days=400, born=2),
                cert(9, ("*.other.com",), issuer=TWO, days=400),
            ),
            None,
        ),
        # only expiring: a rollout, not a failover
        ("expiring", healthy(), (cert(1, days=10), cert(9, issuer=TWO, days=300)), None),
        # healthy: nothing
        ("healthy", healthy(), (cert(1), cert(9, issuer=TWO, days=300)), None),
        # not judged: never
        (
            "not-judged",
            healthy(served=None, web=None, gaps=(Gap.PROBE_FAILED,)),
            (cert(1, days=-1), cert(9, issuer=TWO, days=300)),
            None,
        ),
    ],
)
def test_failover_choice(
    id_: str,
    state: DomainState,
    certificates: tuple[CatalogCert, ...],
    expected: int | None,
) -> None:
    from certpilot.jobs.check_expiry.repair import failover_choice

    catalog = Catalog(certificates)
    verdict = _verdict_of(state, catalog)
    chosen = failover_choice(state.record, verdict, catalog, NOW)
    assert (chosen.cas_id if chosen else None) == expected, id_


def test_a_failover_is_planned_as_failed_over_and_said_in_the_payload() -> None:
    from certpilot.jobs.check_expiry.report import RepairKind

    catalog = Catalog((cert(1, days=-1), cert(2, days=400), cert(9, issuer=TWO, days=300)))
    state = healthy()
    verdicts = {state.record.name: _verdict_of(state, catalog)}
    [rollout] = plan_rollouts([state.record], verdicts, catalog, NOW)
    assert (rollout.cas_id, rollout.kind(state.record.name)) == (9, RepairKind.FAILED_OVER)
    assert Code.CERT_EXPIRED in rollout.fixes
    assert "failover" in json.loads(payload(rollout, "req-1"))["reason"]
    # without a backup from another CA, the best of any CA, as a plain rollout
    catalog = Catalog((cert(1, days=-1), cert(2, days=400)))
    verdicts = {state.record.name: _verdict_of(state, catalog)}
    [rollout] = plan_rollouts([state.record], verdicts, catalog, NOW)
    assert (rollout.cas_id, rollout.kind(state.record.name)) == (2, RepairKind.DEPLOY_INVOKED)


# -- enforcement drift restored (issue 11, point 2) ----------------------------------------


def _codes(*codes: Code, judged: bool = True) -> Verdict:
    return Verdict("www.example.com", (), judged, cas_id=1, codes=codes)


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (_codes(Code.HTTP_NOT_FORCED), ("www.example.com",)),
        (_codes(Code.HSTS_MISSING), ("www.example.com",)),
        # expiring is no reason to wait: HTTPS still works
        (_codes(Code.HTTP_NOT_FORCED, Code.CERT_EXPIRING), ("www.example.com",)),
        (_codes(), ()),  # nothing drifted
        (_codes(Code.HTTP_NOT_FORCED, Code.FALLBACK_ACTIVE), ()),  # an emergency fallback
        (_codes(Code.HTTP_NOT_FORCED, Code.CERT_EXPIRED), ()),  # HTTPS broken: wait
        (_codes(Code.HTTP_NOT_FORCED, Code.NAME_MISMATCH), ()),
        (_codes(Code.HTTP_NOT_FORCED, Code.NO_CERTIFICATE), ()),
        (_codes(Code.HTTP_NOT_FORCED, judged=False), ()),  # not judged: never
    ],
)
def test_plan_enforcements(verdict: Verdict, expected: tuple[str, ...]) -> None:
    from certpilot.jobs.check_expiry.repair import plan_enforcements

    assert plan_enforcements([record()], {"www.example.com": verdict}) == expected
    # a bucket domain (Alibaba's own name) is never touched
    assert (
        plan_enforcements([record(route=Route.BUCKET_DOMAIN)], {"www.example.com": verdict}) == ()
    )
