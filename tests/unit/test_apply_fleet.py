"""apply against a CDN whose domains are busy while a change propagates and whose edge is a
fleet of nodes that switch one by one.

A small fake of our own CDN adapter interface (`CdnSetter`) with the two rules of the
cloud this file is about: a write to a domain that is still configuring answers
`ServiceBusy`; a write reaches node k of n at `write + propagation * (k+1) / n`, and the
probe takes the nodes in turn. Time is a fake clock moved only by the code's sleeps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta

from certpilot.cloud.oss import CnameInfo
from certpilot.core.errors import BusyError
from certpilot.core.model import DeployedCert, Location, Route
from certpilot.core.outcomes import NoteKind, Reason, ReasonCode
from certpilot.jobs.deploy_cert.apply import (
    ApplyOptions,
    DomainResult,
    Outcome,
    apply_plan,
)
from certpilot.jobs.deploy_cert.plan import Action, Plan, Rollback
from certpilot.probe.tls import ServedCert
from tests.unit.fakes import NOW, FakeClock, wildcard_cert

NEW = "AA" * 32
OLD = "BB" * 32
CERT = wildcard_cert(NEW)
PREVIOUS_ID = 1001
FINGERPRINT = {CERT.cas_id: NEW, PREVIOUS_ID: OLD}


@dataclass
class FleetCdn:
    """CDN domains that are busy while a write propagates, and their edge of `nodes`."""

    clock: FakeClock
    propagation: float
    nodes: int = 3
    busy_until: dict[str, float] = field(default_factory=dict)
    bound: dict[str, int | None] = field(default_factory=dict)
    # domain -> [(written at, cas id)], oldest first
    writes: dict[str, list[tuple[float, int | None]]] = field(default_factory=dict)
    refusals: int = 0
    turns: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seed(self, domain: str) -> None:
        self.bound[domain] = PREVIOUS_ID
        self.writes[domain] = [(-1e9, PREVIOUS_ID)]

    # CdnSetter
    def set_certificate(self, domain: str, cas_id: int, region: str) -> None:
        self._write(domain, cas_id)

    def disable_certificate(self, domain: str) -> None:
        self._write(domain, None)

    def certificate_info(self, domain: str) -> DeployedCert | None:
        cas_id = self.bound.get(domain)
        return None if cas_id is None else DeployedCert(Location.CDN, cas_id, "cas", None)

    # OssBinder (unused: CDN domains only)
    def bind_certificate(self, *args: object) -> None:
        raise AssertionError("no OSS domain here")

    def unbind_certificate(self, *args: object) -> None:
        raise AssertionError("no OSS domain here")

    def list_cnames(self, bucket: str, region: str) -> list[CnameInfo]:
        return []

    def _write(self, domain: str, cas_id: int | None) -> None:
        now = self.clock.now
        with self.lock:
            if now < self.busy_until.get(domain, float("-inf")):
                self.refusals += 1
                raise BusyError("cdn", "SetCdnDomainSSLCertificate", "ServiceBusy", 403)
            self.bound[domain] = cas_id
            self.writes[domain].append((now, cas_id))
            self.busy_until[domain] = now + self.propagation

    def node_serves(self, domain: str, node: int, now: float) -> int | None:
        """What node `node` serves: the newest write that has reached it."""
        for written, cas_id in reversed(self.writes[domain]):
            if written + self.propagation * (node + 1) / self.nodes <= now:
                return cas_id
        return self.writes[domain][0][1]

    def every_node_serves(self, domain: str, now: float) -> bool:
        served = {self.node_serves(domain, k, now) for k in range(self.nodes)}
        return len(served) == 1

    # the edge: the nodes of a domain take its connections in turn
    def probe(self, name: str) -> ServedCert:
        now = self.clock.now
        with self.lock:
            node = self.turns.get(name, 0) % self.nodes
            self.turns[name] = self.turns.get(name, 0) + 1
        cas_id = self.node_serves(name, node, now)
        return ServedCert(
            name, FINGERPRINT.get(cas_id) if cas_id else None, chain_ok=True, name_ok=True
        )


def cdn_action(domain: str) -> Action:
    previous = DeployedCert(
        Location.CDN, PREVIOUS_ID, "cas", NOW + timedelta(days=5), fingerprint=OLD
    )
    return Action(
        domain=domain,
        route=Route.CDN,
        bucket=None,
        region="cn-hangzhou",
        cas_id=CERT.cas_id,
        identifier=CERT.identifier,
        cert_region="cn-hangzhou",
        reason=Reason(ReasonCode.EXPIRES_LATER),
        previous=previous,
        previous_identifier=None,
        rollback=Rollback.RESTORE,
    )


def deploy(cdn: FleetCdn, domains: list[str], **options: object) -> dict[str, DomainResult]:
    for domain in domains:
        cdn.seed(domain)
    plan = Plan(CERT, NOW, tuple(cdn_action(d) for d in domains), ())
    settings: dict[str, object] = {"verify_deadline": 10.0, **options}
    results = apply_plan(
        plan,
        cdn,
        cdn,
        ApplyOptions(**settings),  # type: ignore[arg-type]
        probe=cdn.probe,
        clock=cdn.clock.clock,
        sleep=cdn.clock.sleep,
    )
    return {r.domain: r for r in results}


def test_one_lucky_handshake_reports_a_domain_deployed_while_nodes_still_serve_the_old() -> None:
    # Given a fleet of 3 nodes that switch one by one, 2 s apart
    clock = FakeClock()
    cdn = FleetCdn(clock, propagation=6.0, nodes=3)
    # When a domain is verified on a single handshake (the negative control)
    result = deploy(cdn, ["cdn.example.com"], verify_consecutive=1)["cdn.example.com"]
    # Then it is reported deployed although some node still served the old certificate
    assert result.outcome is Outcome.DEPLOYED
    assert not cdn.every_node_serves("cdn.example.com", clock.now)


def test_consecutive_handshakes_never_report_deployed_while_a_node_serves_the_old() -> None:
    # Given the same fleet
    clock = FakeClock()
    cdn = FleetCdn(clock, propagation=6.0, nodes=3)
    # When the domain must show the new certificate on 3 consecutive handshakes
    result = deploy(cdn, ["cdn.example.com"], verify_consecutive=3)["cdn.example.com"]
    # Then it is deployed only once every node serves it
    assert result.outcome is Outcome.DEPLOYED and result.verified
    assert cdn.every_node_serves("cdn.example.com", clock.now)
    assert clock.now >= 6.0


def test_a_domain_busy_with_an_earlier_change_is_written_once_it_is_free() -> None:
    # Given a domain still configuring an earlier change for 2 s
    clock = FakeClock()
    cdn = FleetCdn(clock, propagation=1.0)
    cdn.busy_until["cdn.example.com"] = 2.0
    # When the certificate is deployed
    result = deploy(cdn, ["cdn.example.com"])["cdn.example.com"]
    # Then the write was refused as busy, retried, and then went through and verified
    assert cdn.refusals >= 1
    assert result.outcome is Outcome.DEPLOYED and result.verified
    assert cdn.bound["cdn.example.com"] == CERT.cas_id
    [note] = [n for n in result.notes if n.kind is NoteKind.BUSY_WAITED]
    assert (note.error.code, note.count) == ("ServiceBusy", cdn.refusals)


def test_a_domain_busy_past_the_time_it_may_wait_is_skipped_unwritten() -> None:
    # Given a domain busy for 10 minutes and a write that may wait 5 s for it
    clock = FakeClock()
    cdn = FleetCdn(clock, propagation=1.0)
    cdn.busy_until["cdn.example.com"] = 600.0
    # When the certificate is deployed
    result = deploy(cdn, ["cdn.example.com"], busy_wait=5.0)["cdn.example.com"]
    # Then nothing was written and the domain says why, as a code
    assert result.outcome is Outcome.SKIPPED
    assert result.reason.code is ReasonCode.BUSY and result.error_code == "ServiceBusy"
    assert result.reason.error is not None and result.reason.error.code == "ServiceBusy"
    assert cdn.bound["cdn.example.com"] == PREVIOUS_ID
    assert clock.now <= 5.0


def test_a_busy_wait_never_crosses_the_runs_own_deadline() -> None:
    # Given a run that must end in 60 s and a domain busy for 10 minutes
    clock = FakeClock()
    cdn = FleetCdn(clock, propagation=1.0)
    cdn.busy_until["cdn.example.com"] = 600.0
    # When the certificate is deployed
    result = deploy(cdn, ["cdn.example.com"], deadline=60.0)["cdn.example.com"]
    # Then the write gave up in time and nothing was written
    assert result.outcome is Outcome.SKIPPED and result.error_code == "ServiceBusy"
    assert clock.now <= 60.0


def test_a_rollback_refused_as_busy_waits_until_the_write_has_propagated() -> None:
    # Given an edge slower (4 s) than the verification deadline (1 s)
    clock = FakeClock()
    cdn = FleetCdn(clock, propagation=4.0)
    # When the certificate is deployed and does not verify in time
    result = deploy(cdn, ["cdn.example.com"], verify_deadline=1.0)["cdn.example.com"]
    # Then the rollback was refused while our write propagated, then went through
    assert result.outcome is Outcome.ROLLED_BACK, result
    assert cdn.refusals >= 1
    assert any(n.kind is NoteKind.BUSY_WAITED for n in result.notes)
    assert cdn.bound["cdn.example.com"] == PREVIOUS_ID


def test_a_rollback_still_busy_at_the_deadline_is_reported_failed_with_its_code() -> None:
    # Given an edge that takes 10 minutes, and a run that must end in 60 s
    clock = FakeClock()
    cdn = FleetCdn(clock, propagation=600.0)
    # When the certificate is deployed and does not verify
    result = deploy(cdn, ["cdn.example.com"], verify_deadline=5.0, deadline=60.0)["cdn.example.com"]
    # Then the rollback could not be made: failed, with ServiceBusy, within the deadline
    assert result.outcome is Outcome.FAILED
    assert result.reason.code is ReasonCode.ROLLBACK_FAILED
    assert result.error_code == "ServiceBusy" and result.verified is False
    assert cdn.bound["cdn.example.com"] == CERT.cas_id
    assert clock.now <= 60.0
