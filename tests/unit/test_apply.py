"""apply: writes first, then verification in probing rounds, then rollbacks.

No network and no real time: fake adapters record every write, a fake edge serves the
new certificate `propagation` seconds (of a fake clock) after a domain's write, and
only the verification phase's sleeps move that clock. So "how long would this take"
is read off the fake clock, deterministically, instead of being timed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from certpilot.apply import ApplyOptions, DomainResult, Outcome, apply_plan
from certpilot.errors import CloudError
from certpilot.log import bound_request_id, current_request_id
from certpilot.model import CatalogCert, DeployedCert, Location, Route
from certpilot.plan import ROLLBACK_NONE, ROLLBACK_REMOVE, ROLLBACK_RESTORE, Action, Plan, Skip
from certpilot.probe import ServedCert

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
NEW = "AA" * 32
OLD = "BB" * 32
CERT = CatalogCert(
    cas_id=2001,
    identifier="2001-cn-hangzhou",
    name="new",
    common_name="*.example.com",
    sans=("*.example.com",),
    issuer="CA One",
    not_before=NOW - timedelta(days=1),
    not_after=NOW + timedelta(days=90),
    fingerprint_sha256=NEW,
)
PREVIOUS = DeployedCert(Location.CDN, 1001, "cas", NOW + timedelta(days=5), fingerprint=OLD)


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class FakeCloud:
    """OSS and CDN adapters plus an edge that lags `propagation` seconds behind them."""

    clock: FakeClock
    propagation: float = 1.0
    never_serves: set[str] = field(default_factory=set)
    refuse: dict[str, str] = field(default_factory=dict)  # domain -> error code
    refuse_rollback: set[str] = field(default_factory=set)
    log: list[tuple[str, str]] = field(default_factory=list)  # (kind, domain) in order
    request_ids: set[str | None] = field(default_factory=set)
    # domain -> [(time, fingerprint or None)]: what the edge serves from when
    served: dict[str, list[tuple[float, str | None]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _write(self, kind: str, domain: str, fingerprint: str | None) -> None:
        with self.lock:
            self.log.append((kind, domain))
            self.request_ids.add(current_request_id())
        if kind == "write" and domain in self.refuse:
            raise CloudError("cdn", "SetCdnDomainSSLCertificate", self.refuse[domain], 400)
        if kind == "rollback" and domain in self.refuse_rollback:
            raise CloudError("cdn", "SetCdnDomainSSLCertificate", "ServiceBusy", 403)
        if kind == "write" and domain in self.never_serves:
            return
        with self.lock:
            self.served.setdefault(domain, [(0.0, OLD)]).append(
                (self.clock.now + self.propagation, fingerprint)
            )

    # OssBinder
    def bind_certificate(
        self,
        bucket: str,
        region: str,
        domain: str,
        cert_identifier: str,
        previous_identifier: str | None,
        force: bool,
    ) -> None:
        rollback = cert_identifier != CERT.identifier
        self._write("rollback" if rollback else "write", domain, OLD if rollback else NEW)

    def unbind_certificate(
        self, bucket: str, region: str, domain: str, previous_identifier: str | None
    ) -> None:
        self._write("rollback", domain, None)

    # CdnSetter
    def set_certificate(self, domain: str, cas_id: int, region: str) -> None:
        rollback = cas_id != CERT.cas_id
        self._write("rollback" if rollback else "write", domain, OLD if rollback else NEW)

    def disable_certificate(self, domain: str) -> None:
        self._write("rollback", domain, None)

    # the edge
    def probe(self, domain: str) -> ServedCert:
        with self.lock:
            self.log.append(("probe", domain))
            history = self.served.get(domain, [(0.0, OLD)])
        now = self.clock.now
        current = [fp for at, fp in history if at <= now][-1]
        if current is None:
            return ServedCert(domain, error="TLS error: unrecognized name")
        return ServedCert(domain, current, chain_ok=True, name_ok=True)


def action(domain: str, route: Route, rollback: str = ROLLBACK_RESTORE) -> Action:
    previous = None if rollback == ROLLBACK_REMOVE else PREVIOUS
    if rollback == ROLLBACK_NONE:
        previous = DeployedCert(Location.CDN, None, "upload", NOW + timedelta(days=5))
    return Action(
        domain=domain,
        route=route,
        bucket="assets" if route is Route.OSS else None,
        region="cn-hangzhou",
        cas_id=CERT.cas_id,
        identifier=CERT.identifier,
        cert_region="cn-hangzhou",
        reason="expires-later",
        previous=previous,
        previous_identifier="1001-cn-hangzhou" if previous and previous.cas_id else None,
        force=route is Route.OSS and previous is None,
        rollback=rollback,
    )


def estate(n_oss: int, n_cdn: int) -> Plan:
    actions = [action(f"oss{i:02d}.example.com", Route.OSS) for i in range(n_oss)]
    actions += [action(f"cdn{i:02d}.example.com", Route.CDN) for i in range(n_cdn)]
    return Plan(CERT, NOW, tuple(actions), ())


def run(
    plan: Plan, cloud: FakeCloud, *, deadline: float = 15.0, verify: bool = True
) -> dict[str, DomainResult]:
    options = ApplyOptions(concurrency=8, verify=verify, verify_deadline=deadline)
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
    # ...and verification took a handful of rounds, each probing every pending domain
    # once: about one propagation in all, not 40 x 1.0 s / 8 workers = 5 s
    rounds = {r.attempts for r in results.values()}
    assert rounds == {5}  # probes at 0, 0.1, 0.3, 0.7 and 1.5 s
    assert kinds.count("probe") == 40 * 5
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
    assert stuck.reason.startswith("verification failed after 3.0s: edge serves another")
    assert "restored certificate 1001, and the edge serves it" in stuck.reason
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
    ("rollback", "outcome", "code", "reason"),
    [
        (ROLLBACK_NONE, Outcome.FAILED, "VerifyFailed", "cannot be restored"),
        (ROLLBACK_REMOVE, Outcome.ROLLED_BACK, None, "removed the certificate"),
    ],
)
def test_what_a_failed_verification_leads_to(
    rollback: str, outcome: Outcome, code: str | None, reason: str
) -> None:
    clock = FakeClock()
    cloud = FakeCloud(clock, never_serves={"cdn00.example.com"})
    plan = Plan(CERT, NOW, (action("cdn00.example.com", Route.CDN, rollback),), ())
    [result] = run(plan, cloud, deadline=1.0).values()
    assert (result.outcome, result.error_code) == (outcome, code)
    assert reason in result.reason


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
    assert results["cdn00.example.com"].reason == (
        "SetCdnDomainSSLCertificate failed: Certificate.MissMatch"
    )
    assert results["cdn01.example.com"].outcome is Outcome.FAILED
    assert "rollback SetCdnDomainSSLCertificate failed: ServiceBusy" in (
        results["cdn01.example.com"].reason
    )
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
        (Skip("a.example.com", "already-current", "certificate 2001 is deployed", Route.OSS),),
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
