"""apply: writes first, then verification in probing rounds, then rollbacks.

No network and no real time: fake adapters record every write, a fake edge serves the
new certificate `propagation` seconds (of a fake clock) after a domain's write, and
only the verification phase's sleeps move that clock. So "how long would this take"
is read off the fake clock, deterministically, instead of being timed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from certpilot.core.cloudtypes import CnameInfo
from certpilot.core.errors import (
    CertpilotError,
    CloudError,
    ConflictError,
    ThrottledError,
    TransientError,
)
from certpilot.core.log import bound_request_id, current_request_id
from certpilot.core.model import DeployedCert, Location, Route
from certpilot.core.outcomes import (
    Binding,
    BindingState,
    CallError,
    NoteKind,
    Reason,
    ReasonCode,
)
from certpilot.jobs.deploy_cert.apply import (
    ROLLBACK_ALLOWANCE,
    ApplyOptions,
    DomainResult,
    IncompletePlan,
    Outcome,
    apply_plan,
)
from certpilot.jobs.deploy_cert.plan import (
    Action,
    Plan,
    Rollback,
    Skip,
)
from certpilot.probe.tls import ServedCert
from tests.unit.fakes import NOW, FakeClock, wildcard_cert

NEW = "AA" * 32
OLD = "BB" * 32
CERT = wildcard_cert(NEW)
PREVIOUS = DeployedCert(Location.CDN, 1001, "cas", NOW + timedelta(days=5), fingerprint=OLD)


OURS_OSS, PREVIOUS_OSS, THIRD_OSS = "2001-cn-hangzhou", "1001-cn-hangzhou", "3003-cn-hangzhou"
THIRD = "CC" * 32
# What the edge serves for each binding (OSS CertId or CDN CAS id).
FINGERPRINTS: dict[str | int | None, str | None] = {
    OURS_OSS: NEW,
    2001: NEW,
    PREVIOUS_OSS: OLD,
    1001: OLD,
    THIRD_OSS: THIRD,
    3003: THIRD,
    None: None,
}
MISMATCH_EC = "0018-00000209"  # OSS: PreviousCertId is not the bound certificate


def conflict() -> ConflictError:
    return ConflictError("oss", "PutCname", "InvalidArgument", 400, ec=MISMATCH_EC)


@dataclass
class FakeCloud:
    """A scripted fake of our adapter interface (`OssBinder`, `CdnSetter`) and of the
    probe, with an edge that lags `propagation` seconds behind each write.

    It models no cloud rule: a write is accepted and becomes what the re-reading calls
    report, unless the test scripts otherwise. (OSS's PreviousCertId rule lives in the
    emulator and is tested through the real SDK in tests/integration/test_adapters.py.)
    Every call is recorded with its arguments (`calls`), the bound state is kept per
    domain (`oss_bound`, `cdn_bound`, seeded from the plan by `run`). Scripted answers:
    `refuse` (domain -> code / error: the write is refused before it applies),
    `applied_then` (domain -> error: the write applies, then the call fails, as after
    a lost answer; `rollback_applied_then` the same for a rollback), `interloper`
    (domain -> certificate another run binds right after our write), `refuse_rollback`
    (ServiceBusy) and `rollback_refused` (domain -> error) for rollbacks refused before
    they apply, `fail_reads` (the re-reading calls fail).
    """

    clock: FakeClock
    propagation: float = 1.0
    never_serves: set[str] = field(default_factory=set)
    refuse: dict[str, str | CloudError] = field(default_factory=dict)  # domain -> code / error
    refuse_rollback: set[str] = field(default_factory=set)
    rollback_refused: dict[str, CloudError] = field(default_factory=dict)
    applied_then: dict[str, CloudError] = field(default_factory=dict)
    rollback_applied_then: dict[str, CloudError] = field(default_factory=dict)
    interloper: dict[str, str | int] = field(default_factory=dict)
    fail_reads: set[str] = field(default_factory=set)
    log: list[tuple[str, str]] = field(default_factory=list)  # (kind, domain) in order
    calls: list[tuple[object, ...]] = field(default_factory=list)  # (API, args...) in order
    request_ids: set[str | None] = field(default_factory=set)
    oss_bound: dict[str, str | None] = field(default_factory=dict)  # domain -> CertId
    cdn_bound: dict[str, int | None] = field(default_factory=dict)  # domain -> CAS id
    # domain -> [(time, fingerprint or None)]: what the edge serves from when
    served: dict[str, list[tuple[float, str | None]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seed(self, plan: Plan) -> None:
        """Bind what each action's domain has before the run (unless set by the test)."""
        for a in plan.actions:
            name = a.api_name or a.domain
            if a.route is Route.OSS:
                self.oss_bound.setdefault(name, a.previous_identifier)
            else:
                self.cdn_bound.setdefault(name, a.previous_cas_id)

    def _call(self, kind: str, domain: str, *record: object) -> None:
        with self.lock:
            self.log.append((kind, domain))
            self.calls.append(record)
            self.request_ids.add(current_request_id())
        if kind == "write" and domain in self.refuse:
            error = self.refuse[domain]
            if isinstance(error, str):
                error = CloudError("cdn", "SetCdnDomainSSLCertificate", error, 400)
            raise error
        if kind == "rollback" and domain in self.refuse_rollback:
            raise CloudError("cdn", "SetCdnDomainSSLCertificate", "ServiceBusy", 403)
        if kind == "rollback" and domain in self.rollback_refused:
            raise self.rollback_refused[domain]

    def _applied(self, kind: str, domain: str, bound: str | int | None) -> None:
        """The binding changed to `bound`: the edge follows; faults after applying."""
        with self.lock:
            if not (kind == "write" and domain in self.never_serves):
                self.served.setdefault(domain, [(0.0, OLD)]).append(
                    (self.clock.now + self.propagation, FINGERPRINTS[bound])
                )
            if kind == "write" and domain in self.interloper:
                other = self.interloper[domain]
                if isinstance(other, int):
                    self.cdn_bound[domain] = other
                else:
                    self.oss_bound[domain] = other
                history = self.served.setdefault(domain, [(0.0, OLD)])
                history.append((self.clock.now + self.propagation, THIRD))
        if kind == "write" and domain in self.applied_then:
            raise self.applied_then[domain]
        if kind == "rollback" and domain in self.rollback_applied_then:
            raise self.rollback_applied_then[domain]

    # OssBinder
    def bind_certificate(
        self,
        bucket: str,
        region: str,
        domain: str,
        cert_identifier: str,
        previous_identifier: str | None,
    ) -> None:
        kind = "write" if cert_identifier == CERT.identifier else "rollback"
        self._call(kind, domain, "PutCname", domain, cert_identifier, previous_identifier)
        with self.lock:
            self.oss_bound[domain] = cert_identifier
        self._applied(kind, domain, cert_identifier)

    def unbind_certificate(
        self, bucket: str, region: str, domain: str, previous_identifier: str | None
    ) -> None:
        self._call("rollback", domain, "DeleteCertificate", domain, previous_identifier)
        with self.lock:
            self.oss_bound[domain] = None
        self._applied("rollback", domain, None)

    def list_cnames(self, bucket: str, region: str) -> list[CnameInfo]:
        with self.lock:
            self.calls.append(("ListCname", bucket))
            if bucket in self.fail_reads:
                raise TransientError("oss", "ListCname", "InternalError", 500)
            bound = dict(self.oss_bound)
        return [
            CnameInfo(
                domain,
                "Enabled",
                DeployedCert(Location.OSS, int(cert_id.split("-")[0]), "CAS", None)
                if cert_id
                else None,
                cert_id,
            )
            for domain, cert_id in bound.items()
        ]

    # CdnSetter
    def set_certificate(self, domain: str, cas_id: int, region: str) -> None:
        kind = "write" if cas_id == CERT.cas_id else "rollback"
        self._call(kind, domain, "SetCdnDomainSSLCertificate", domain, cas_id, region)
        with self.lock:
            self.cdn_bound[domain] = cas_id
        self._applied(kind, domain, cas_id)

    def disable_certificate(self, domain: str) -> None:
        self._call("rollback", domain, "SetCdnDomainSSLCertificate", domain, "off")
        with self.lock:
            self.cdn_bound[domain] = None
        self._applied("rollback", domain, None)

    def certificate_info(self, domain: str) -> DeployedCert | None:
        with self.lock:
            self.calls.append(("DescribeDomainCertificateInfo", domain))
            if domain in self.fail_reads:
                raise TransientError("cdn", "DescribeDomainCertificateInfo", "ConnectionError")
            cas_id = self.cdn_bound.get(domain)
        return None if cas_id is None else DeployedCert(Location.CDN, cas_id, "cas", None)

    def writes(self, domain: str) -> list[tuple[object, ...]]:
        """The writing calls made for `domain`, with their arguments."""
        return [c for c in self.calls if len(c) > 1 and c[1] == domain and c[0] in _WRITES]

    # the edge
    def probe(self, domain: str) -> ServedCert:
        with self.lock:
            self.log.append(("probe", domain))
            key = domain
            if domain.startswith("certpilot-verify."):  # a wildcard domain's probe name
                base = domain.removeprefix("certpilot-verify")
                key = next((k for k in ("*" + base, base) if k in self.served), domain)
            history = self.served.get(key, [(0.0, OLD)])
        now = self.clock.now
        current = [fp for at, fp in history if at <= now][-1]
        if current is None:
            return ServedCert(domain, error="TLS error: unrecognized name")
        return ServedCert(domain, current, chain_ok=True, name_ok=True)


_WRITES = ("PutCname", "DeleteCertificate", "SetCdnDomainSSLCertificate")


def action(
    domain: str, route: Route, rollback: Rollback = Rollback.RESTORE, api_name: str | None = None
) -> Action:
    previous = None if rollback == Rollback.REMOVE else PREVIOUS
    if rollback == Rollback.NONE:
        previous = DeployedCert(Location.CDN, None, "upload", NOW + timedelta(days=5))
    return Action(
        domain=domain,
        route=route,
        bucket="assets" if route is Route.OSS else None,
        region="cn-hangzhou",
        cas_id=CERT.cas_id,
        identifier=CERT.identifier,
        cert_region="cn-hangzhou",
        reason=Reason(ReasonCode.EXPIRES_LATER),
        previous=previous,
        previous_identifier="1001-cn-hangzhou" if previous and previous.cas_id else None,
        rollback=rollback,
        api_name=api_name,
    )


def estate(n_oss: int, n_cdn: int) -> Plan:
    actions = [action(f"oss{i:02d}.example.com", Route.OSS) for i in range(n_oss)]
    actions += [action(f"cdn{i:02d}.example.com", Route.CDN) for i in range(n_cdn)]
    return Plan(CERT, NOW, tuple(actions), ())


def run(
    plan: Plan,
    cloud: FakeCloud,
    *,
    deadline: float = 15.0,
    verify: bool = True,
    run_deadline: float | None = None,
) -> dict[str, DomainResult]:
    options = ApplyOptions(
        concurrency=8, verify=verify, verify_deadline=deadline, deadline=run_deadline
    )
    cloud.seed(plan)
    results = apply_plan(
        plan,
        cloud,
        cloud,
        options,
        probe=cloud.probe,
        clock=cloud.clock.clock,
        sleep=cloud.clock.sleep,
    )
    return {r.domain: r for r in results}


def test_all_writes_happen_before_the_first_verification_probe() -> None:
    # given 40 domains (20 OSS, 20 CDN) whose edge takes 1.0 s to serve a new certificate
    clock = FakeClock()
    cloud = FakeCloud(clock, propagation=1.0)
    # when the plan is applied with 8 workers
    results = run(estate(20, 20), cloud)
    # then every domain is deployed and verified...
    assert {r.outcome for r in results.values()} == {Outcome.DEPLOYED}
    assert all(r.verified for r in results.values())
    # ...every write was sent before the first probe...
    kinds = [kind for kind, _ in cloud.log]
    assert kinds.index("probe") == kinds.count("write") == 40
    assert "write" not in kinds[kinds.index("probe") :]
    # ...and verification took a handful of rounds: about one propagation in all, not
    # 40 x 1.0 s / 8 workers = 5 s. Rounds at 0, 0.1, 0.3 and 0.7 s each stopped after
    # the first group of 16 (none served: those written later would not be either);
    # the round at 1.5 s confirmed every domain with 3 consecutive handshakes
    assert max(r.attempts for r in results.values()) == 5
    assert min(r.attempts for r in results.values()) == 1
    assert kinds.count("probe") == 16 * 4 + 40 * 3
    assert clock.now == pytest.approx(1.5)


def test_rounds_are_capped_so_a_slow_edge_is_noticed_soon_after_it_caught_up() -> None:
    # given an edge that takes 2 s: doubling waits would first look again at 3.1 s
    clock = FakeClock()
    cloud = FakeCloud(clock, propagation=2.0)
    results = run(estate(1, 1), cloud)
    # then rounds start at most 1 s apart and the domains verify at 2.5 s
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0])
    assert {r.attempts for r in results.values()} == {6}
    assert clock.now == pytest.approx(2.5)


def test_a_domain_that_never_verifies_is_rolled_back_after_the_others_are_verified() -> None:
    # given one CDN domain whose edge never picks up the new certificate
    clock = FakeClock()
    cloud = FakeCloud(clock, propagation=0.2, never_serves={"cdn01.example.com"})
    # when the plan is applied with a 3 s verification deadline
    results = run(estate(2, 2), cloud, deadline=3.0)
    # then it is rolled back, with the reason, and the restore is seen at the edge
    stuck = results["cdn01.example.com"]
    assert stuck.outcome is Outcome.ROLLED_BACK
    assert (stuck.reason.code, stuck.reason.waited) == (ReasonCode.VERIFY_FAILED, 3.0)
    assert stuck.reason.problem == "edge serves another certificate"
    assert (stuck.rollback, stuck.previous_cert_id) == (Rollback.RESTORE, 1001)
    assert (stuck.verified, stuck.restored_verified) == (False, True)
    # and the others are deployed; the rollback came after the last verification probe
    for domain in ("oss00.example.com", "oss01.example.com", "cdn00.example.com"):
        assert results[domain].outcome is Outcome.DEPLOYED
    undo = cloud.log.index(("rollback", "cdn01.example.com"))
    assert all(entry == ("probe", "cdn01.example.com") for entry in cloud.log[undo + 1 :])
    others = [i for i, (_, domain) in enumerate(cloud.log) if domain != "cdn01.example.com"]
    assert max(others) < undo
    assert cloud.log.count(("rollback", "cdn01.example.com")) == 1


@pytest.mark.parametrize(
    ("rollback", "outcome", "code"),
    [
        (Rollback.NONE, Outcome.FAILED, "VerifyFailed"),
        (Rollback.REMOVE, Outcome.ROLLED_BACK, None),
    ],
)
def test_what_a_failed_verification_leads_to(
    rollback: Rollback, outcome: Outcome, code: str | None
) -> None:
    clock = FakeClock()
    cloud = FakeCloud(clock, never_serves={"cdn00.example.com"})
    plan = Plan(CERT, NOW, (action("cdn00.example.com", Route.CDN, rollback),), ())
    [result] = run(plan, cloud, deadline=1.0).values()
    assert (result.outcome, result.error_code) == (outcome, code)
    assert (result.reason.code, result.rollback) == (ReasonCode.VERIFY_FAILED, rollback)


def test_write_and_rollback_failures_are_per_domain() -> None:
    # given CDN refuses one domain's write and another domain's rollback
    clock = FakeClock()
    cloud = FakeCloud(
        clock,
        refuse={"cdn00.example.com": "Certificate.MissMatch"},
        never_serves={"cdn01.example.com"},
        refuse_rollback={"cdn01.example.com"},
    )
    results = run(estate(1, 2), cloud, deadline=1.0)
    # then each ends failed with the cloud's code; the OSS domain is deployed anyway
    assert results["cdn00.example.com"].outcome is Outcome.FAILED
    assert results["cdn00.example.com"].error_code == "Certificate.MissMatch"
    assert results["cdn00.example.com"].reason == Reason(
        ReasonCode.WRITE_FAILED,
        error=CallError("SetCdnDomainSSLCertificate", "Certificate.MissMatch"),
    )
    assert results["cdn01.example.com"].outcome is Outcome.FAILED
    rollback = results["cdn01.example.com"].reason
    assert rollback.code is ReasonCode.ROLLBACK_FAILED
    assert rollback.error == CallError("SetCdnDomainSSLCertificate", "ServiceBusy")
    assert results["oss00.example.com"].outcome is Outcome.DEPLOYED
    assert ("probe", "cdn00.example.com") not in cloud.log  # never written: not verified


def test_the_deadline_counts_from_each_domains_write_and_every_domain_is_probed_once() -> None:
    # given a verification deadline already used up by the time verification starts
    clock = FakeClock()
    cloud = FakeCloud(clock, propagation=0.0, never_serves={"cdn00.example.com"})
    results = run(estate(0, 2), cloud, deadline=0.0)
    # then each domain got exactly one probe: the served one verified, the other not
    assert results["cdn01.example.com"].outcome is Outcome.DEPLOYED
    assert results["cdn00.example.com"].outcome is Outcome.ROLLED_BACK
    assert results["cdn00.example.com"].attempts == 1


def test_without_verification_nothing_is_probed() -> None:
    clock = FakeClock()
    cloud = FakeCloud(clock)
    results = run(estate(1, 1), cloud, verify=False)
    assert {r.outcome for r in results.values()} == {Outcome.DEPLOYED}
    assert {r.verified for r in results.values()} == {None}
    assert "probe" not in [kind for kind, _ in cloud.log]


def test_skipped_domains_keep_their_results_and_order() -> None:
    clock = FakeClock()
    cloud = FakeCloud(clock, propagation=0.0)
    plan = Plan(
        CERT,
        NOW,
        (action("b.example.com", Route.CDN),),
        (Skip("a.example.com", Reason(ReasonCode.ALREADY_CURRENT, cert_id=2001), Route.OSS),),
    )
    results = list(run(plan, cloud).values())
    assert [(r.domain, r.outcome) for r in results] == [
        ("a.example.com", Outcome.ALREADY_CURRENT),
        ("b.example.com", Outcome.DEPLOYED),
    ]


def test_worker_threads_keep_the_request_id() -> None:
    # given a request id bound by the handler
    clock = FakeClock()
    cloud = FakeCloud(clock, propagation=0.0, never_serves={"cdn00.example.com"})
    with bound_request_id("req-123"):
        run(estate(4, 4), cloud, deadline=0.5)
    # then every write and rollback, made in pool threads, ran with it
    assert cloud.request_ids == {"req-123"}


def single(a: Action) -> Plan:
    return Plan(CERT, NOW, (a,), ())


# -- rollbacks: the exact calls, checked the way OSS checks them ------------------------


@pytest.mark.parametrize(
    ("route", "rollback", "undo_call", "left_bound"),
    [
        (
            Route.OSS,
            Rollback.RESTORE,
            ("PutCname", "d.example.com", PREVIOUS_OSS, OURS_OSS),
            PREVIOUS_OSS,
        ),
        (Route.OSS, Rollback.REMOVE, ("DeleteCertificate", "d.example.com", OURS_OSS), None),
        (
            Route.CDN,
            Rollback.RESTORE,
            ("SetCdnDomainSSLCertificate", "d.example.com", 1001, "cn-hangzhou"),
            1001,
        ),
        (Route.CDN, Rollback.REMOVE, ("SetCdnDomainSSLCertificate", "d.example.com", "off"), None),
    ],
)
def test_a_rollback_restores_exactly_the_previous_state(
    route: Route, rollback: Rollback, undo_call: tuple[object, ...], left_bound: object
) -> None:
    # given a domain whose edge never serves the new certificate
    cloud = FakeCloud(FakeClock(), never_serves={"d.example.com"})
    # when it is deployed, fails verification and is rolled back
    [result] = run(single(action("d.example.com", route, rollback)), cloud, deadline=1.0).values()
    # then the rollback names our certificate as the one bound (OSS PreviousCertId) and
    # leaves the domain as it was, which the edge then serves
    assert result.outcome is Outcome.ROLLED_BACK, result.reason
    assert result.restored_verified is True
    assert cloud.writes("d.example.com")[-1] == undo_call
    bound = cloud.oss_bound if route is Route.OSS else cloud.cdn_bound
    assert bound["d.example.com"] == left_bound


# -- #3: another run set a certificate meanwhile: superseded, not rolled back -----------


@pytest.mark.parametrize(
    ("route", "rollback", "interloper"),
    [
        (Route.CDN, Rollback.RESTORE, 3003),
        (Route.CDN, Rollback.REMOVE, 3003),
        (Route.OSS, Rollback.RESTORE, THIRD_OSS),
        (Route.OSS, Rollback.REMOVE, THIRD_OSS),
    ],
)
def test_a_domain_another_run_changed_after_our_write_is_superseded_not_rolled_back(
    route: Route, rollback: Rollback, interloper: str | int
) -> None:
    # given another run binds a third certificate right after our write (on OSS, our
    # conditional rollback naming our certificate as PreviousCertId is then refused)
    refused: dict[str, CloudError] = {"d.example.com": conflict()} if route is Route.OSS else {}
    cloud = FakeCloud(
        FakeClock(), interloper={"d.example.com": interloper}, rollback_refused=refused
    )
    # when our verification sees that certificate instead of ours
    [result] = run(single(action("d.example.com", route, rollback)), cloud, deadline=1.0).values()
    # then the domain is reported superseded and keeps the other run's certificate
    assert result.outcome is Outcome.SKIPPED
    assert result.reason.code is ReasonCode.SUPERSEDED, result.reason
    assert result.reason.bound == Binding(BindingState.CERTIFICATE, cert=str(interloper))
    assert result.reason.problem is not None  # what the failed verification saw
    assert result.verified is False and result.restored_verified is None
    bound = cloud.oss_bound if route is Route.OSS else cloud.cdn_bound
    assert bound["d.example.com"] == interloper
    # CDN: looked before writing, so nothing was written back; OSS: the conditional
    # rollback (PreviousCertId = ours) was refused by the service
    undo = cloud.writes("d.example.com")[1:]
    if route is Route.CDN:
        assert undo == []
        assert ("DescribeDomainCertificateInfo", "d.example.com") in cloud.calls
    else:
        assert len(undo) == 1 and OURS_OSS in undo[0]


def test_a_cdn_rollback_whose_check_fails_rolls_back_anyway_to_the_state_the_plan_saw() -> None:
    # given a domain that does not verify and a control plane that cannot be read
    cloud = FakeCloud(FakeClock(), never_serves={"d.example.com"}, fail_reads={"d.example.com"})
    [result] = run(single(action("d.example.com", Route.CDN)), cloud, deadline=1.0).values()
    # then it is rolled back all the same (only a binding positively showing another
    # certificate stops a rollback), and the reason says the binding was unknown
    assert result.outcome is Outcome.ROLLED_BACK, result.reason
    assert result.restored_verified is True
    [note] = result.notes
    assert note.kind is NoteKind.BINDING_UNKNOWN
    assert note.error == CallError("DescribeDomainCertificateInfo", "ConnectionError")
    assert cloud.writes("d.example.com")[1:] == [
        ("SetCdnDomainSSLCertificate", "d.example.com", 1001, "cn-hangzhou")
    ]
    assert cloud.cdn_bound["d.example.com"] == 1001


# -- #6: writes whose outcome is unknown are settled by re-reading the binding ----------

LOST = {
    Route.OSS: TransientError("oss", "PutCname", "InternalError", 500),
    Route.CDN: TransientError("cdn", "SetCdnDomainSSLCertificate", "ConnectionError"),
}


@pytest.mark.parametrize(
    ("route", "error"),
    [
        (Route.OSS, LOST[Route.OSS]),
        # the adapter retried a lost answer: OSS refuses PreviousCertId = the old one
        (Route.OSS, conflict()),
        (Route.CDN, LOST[Route.CDN]),
        # an earlier attempt of the retry loop applied; the last one was throttled
        (Route.CDN, ThrottledError("cdn", "SetCdnDomainSSLCertificate", "Throttling.User", 400)),
        (Route.OSS, ThrottledError("oss", "PutCname", "Throttling", 503)),
        # even a definite refusal is re-read: an earlier attempt may have applied
        (Route.CDN, CloudError("cdn", "SetCdnDomainSSLCertificate", "Certificate.MissMatch", 400)),
    ],
)
def test_a_write_applied_despite_its_error_is_verified_like_any_other(
    route: Route, error: CloudError
) -> None:
    # given a write that is applied, but whose call then fails
    cloud = FakeCloud(FakeClock(), applied_then={"d.example.com": error})
    # when the plan is applied
    [result] = run(single(action("d.example.com", route)), cloud).values()
    # then the re-read binding shows ours: verified at the edge and deployed
    assert result.outcome is Outcome.DEPLOYED, result.reason
    assert result.verified is True
    [note] = result.notes
    assert (note.kind, note.error) == (
        NoteKind.APPLIED_DESPITE_ERROR,
        CallError(error.action, error.code),
    )
    assert note.bound is not None and note.bound.state is BindingState.CERTIFICATE


@pytest.mark.parametrize("route", [Route.OSS, Route.CDN])
def test_a_write_applied_despite_its_error_is_rolled_back_when_it_does_not_verify(
    route: Route,
) -> None:
    # given a write applied despite its error, on a domain whose edge never serves it
    cloud = FakeCloud(
        FakeClock(),
        applied_then={"d.example.com": LOST[route]},
        never_serves={"d.example.com"},
    )
    [result] = run(single(action("d.example.com", route)), cloud, deadline=1.0).values()
    # then it is rolled back to the previous certificate, not left unverified
    assert result.outcome is Outcome.ROLLED_BACK, result.reason
    bound = cloud.oss_bound if route is Route.OSS else cloud.cdn_bound
    assert bound["d.example.com"] == (PREVIOUS_OSS if route is Route.OSS else 1001)


@pytest.mark.parametrize(
    "error",
    [LOST[Route.CDN], ThrottledError("cdn", "SetCdnDomainSSLCertificate", "Throttling", 400)],
)
@pytest.mark.parametrize("route", [Route.OSS, Route.CDN])
def test_a_write_not_applied_is_failed_with_what_the_re_read_showed(
    route: Route, error: CloudError
) -> None:
    # given a write that fails (after retries) before it applies
    cloud = FakeCloud(FakeClock(), refuse={"d.example.com": error})
    [result] = run(single(action("d.example.com", route)), cloud).values()
    # then it failed, with the cloud's code and what the re-read showed; never probed
    assert result.outcome is Outcome.FAILED
    assert result.error_code == error.code
    [note] = result.notes
    assert note.kind is NoteKind.OTHER_BOUND and note.bound is not None
    assert note.bound.state is BindingState.CERTIFICATE
    assert note.bound.cert in ("1001", "1001-cn-hangzhou")
    assert ("probe", "d.example.com") not in cloud.log


@pytest.mark.parametrize("route", [Route.OSS, Route.CDN])
def test_a_write_applied_whose_re_read_fails_too_is_verified_as_written(route: Route) -> None:
    # given a write applied but answered with an error, and a binding that cannot be read
    cloud = FakeCloud(
        FakeClock(),
        applied_then={"d.example.com": LOST[route]},
        fail_reads={"assets", "d.example.com"},
    )
    [result] = run(single(action("d.example.com", route)), cloud).values()
    # then it is verified as usual: the edge serves ours, so it is deployed, and said so
    assert result.outcome is Outcome.DEPLOYED, result.reason
    assert result.verified is True
    [note] = result.notes
    assert note.kind is NoteKind.OUTCOME_UNKNOWN and note.reread is not None


def test_a_cdn_write_not_applied_whose_re_read_fails_is_verified_then_rolled_back() -> None:
    # given a CDN write refused before it applies, and a binding that cannot be read
    cloud = FakeCloud(
        FakeClock(),
        refuse={"d.example.com": LOST[Route.CDN]},
        fail_reads={"d.example.com"},
    )
    [result] = run(single(action("d.example.com", Route.CDN)), cloud, deadline=1.0).values()
    # then it is verified as if written, fails, and the state the plan saw is restored
    assert result.outcome is Outcome.ROLLED_BACK, result.reason
    assert result.verified is False and result.restored_verified is True
    assert cloud.cdn_bound["d.example.com"] == 1001


def test_an_oss_write_not_applied_whose_re_read_fails_is_not_rolled_back_blindly() -> None:
    # given an OSS write refused before it applies, a bucket that cannot be read, and
    # OSS refusing the rollback that names our certificate as PreviousCertId
    cloud = FakeCloud(
        FakeClock(),
        refuse={"d.example.com": LOST[Route.OSS]},
        fail_reads={"assets"},
        rollback_refused={"d.example.com": conflict()},
    )
    [result] = run(single(action("d.example.com", Route.OSS)), cloud, deadline=1.0).values()
    # then the rollback, conditional on PreviousCertId = ours, is refused: the domain
    # keeps the certificate it had, and the result says the rollback failed
    assert result.outcome is Outcome.FAILED, result.reason
    assert result.reason.code is ReasonCode.ROLLBACK_FAILED
    assert result.reason.error is not None and result.reason.error.action == "PutCname"
    assert cloud.oss_bound["d.example.com"] == PREVIOUS_OSS


@pytest.mark.parametrize("route", [Route.OSS, Route.CDN])
def test_a_rollback_applied_despite_its_error_counts_as_rolled_back(route: Route) -> None:
    # given a domain that does not verify, and a rollback applied but then answered 5xx
    cloud = FakeCloud(
        FakeClock(),
        never_serves={"d.example.com"},
        rollback_applied_then={"d.example.com": LOST[route]},
    )
    [result] = run(single(action("d.example.com", route)), cloud, deadline=1.0).values()
    # then the re-read shows the previous certificate: rolled back, and said so
    assert result.outcome is Outcome.ROLLED_BACK, result.reason
    [note] = result.notes
    assert (note.kind, note.error) == (
        NoteKind.ROLLBACK_APPLIED,
        CallError(LOST[route].action, LOST[route].code),
    )


# -- #4: the API's own spelling of a wildcard domain -------------------------------------


def test_a_dot_form_wildcard_cdn_domain_is_written_checked_and_rolled_back_by_its_api_name() -> (
    None
):
    # given CDN lists the wildcard domain as `.example.org` (certpilot's name: *.example.org)
    cloud = FakeCloud(FakeClock(), never_serves={".example.org"})
    a = action("*.example.org", Route.CDN, api_name=".example.org")
    # when it is deployed, fails verification and is rolled back
    [result] = run(single(a), cloud, deadline=1.0).values()
    # then every CDN call used `.example.org`; the result keeps certpilot's name
    assert result.domain == "*.example.org" and result.outcome is Outcome.ROLLED_BACK
    named = {c[1] for c in cloud.calls if c[0] != "ListCname"}
    assert named == {".example.org"}
    assert ("probe", "certpilot-verify.example.org") in cloud.log


# -- plan errors are certpilot errors ---------------------------------------------------


def test_an_oss_action_without_bucket_fails_alone_with_a_certpilot_error() -> None:
    # given an OSS action the plan left without a bucket, next to a good one
    broken = replace(action("broken.example.com", Route.OSS), bucket=None)
    plan = Plan(CERT, NOW, (broken, action("good.example.com", Route.OSS)), ())
    results = run(plan, FakeCloud(FakeClock(), propagation=0.0))
    # then that domain fails with the error tree's code, the other deploys
    assert results["broken.example.com"].outcome is Outcome.FAILED
    assert results["broken.example.com"].error_code == "IncompletePlan"
    assert results["broken.example.com"].reason.code is ReasonCode.INCOMPLETE_PLAN
    assert results["good.example.com"].outcome is Outcome.DEPLOYED
    assert issubclass(IncompletePlan, CertpilotError)


# -- the run's time budget (FC timeout) ---------------------------------------------------


def test_no_write_is_started_when_too_little_of_the_run_is_left_to_verify_and_roll_back() -> None:
    # given a run whose deadline is closer than a rollback may take
    cloud = FakeCloud(FakeClock())
    results = run(estate(1, 1), cloud, run_deadline=ROLLBACK_ALLOWANCE - 1)
    # then nothing is written: every domain is skipped as out of time, never probed
    assert {r.outcome for r in results.values()} == {Outcome.SKIPPED}
    assert {r.reason.code for r in results.values()} == {ReasonCode.OUT_OF_TIME}
    assert cloud.log == []


def test_a_run_deadline_caps_verification_and_the_restore_wait_so_all_of_it_fits() -> None:
    # given a domain that never verifies, a 15 s verify deadline, and 40 s left in the run
    clock = FakeClock()
    cloud = FakeCloud(clock, never_serves={"cdn00.example.com"})
    results = run(estate(0, 2), cloud, deadline=15.0, run_deadline=40.0)
    # then the stuck one is rolled back after a shortened verification, the other is
    # deployed, and the run ends with the rollbacks' share of the time still left
    stuck = results["cdn00.example.com"]
    assert stuck.outcome is Outcome.ROLLED_BACK, stuck.reason
    assert stuck.restored_verified is True
    assert stuck.reason.code is ReasonCode.VERIFY_FAILED
    assert stuck.reason.waited == pytest.approx(9.2, abs=0.05)
    assert results["cdn01.example.com"].outcome is Outcome.DEPLOYED
    assert clock.now <= 40.0 - ROLLBACK_ALLOWANCE


def test_without_a_run_deadline_the_verify_deadline_is_used_in_full() -> None:
    cloud = FakeCloud(FakeClock(), never_serves={"cdn00.example.com"})
    [result] = run(single(action("cdn00.example.com", Route.CDN)), cloud, deadline=15.0).values()
    assert (result.reason.code, result.reason.waited) == (ReasonCode.VERIFY_FAILED, 15.0)
