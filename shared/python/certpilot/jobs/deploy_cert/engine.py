"""The use cases the handlers and the CLI call: one function per job.

`deploy_cert(request, deps)`: discover the account, load the certificate catalog,
plan where the certificate goes, apply, verify from outside, roll back what does not
verify, and return the JSON-ready summary (`summary.render` of a typed
`DeployReport`). Never raises for one domain's failure; a
certificate that cannot be found or is refused yields a summary with `ok: false`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from certpilot.core.errors import ForeignRegion, NotFoundError
from certpilot.core.findings import Code, Finding
from certpilot.core.log import event, get_logger, with_context
from certpilot.core.model import (
    Catalog,
    CatalogCert,
    DeployedCert,
    EdgeObservation,
    Location,
    Route,
)
from certpilot.core.outcomes import Outcome, ReasonCode, RunStatus
from certpilot.core.settings import Settings
from certpilot.events import DeployRequest, parse_deploy_event
from certpilot.jobs.deploy_cert.apply import ApplyOptions, DomainResult, apply_plan, skip_result
from certpilot.jobs.deploy_cert.plan import (
    CDN_PAUSED_STATES,
    Plan,
    Policy,
    domain_covered,
    plan_certificate,
    refusal_codes,
    served_mismatch,
)
from certpilot.jobs.deploy_cert.summary import DeployReport, render
from certpilot.probe.tls import edge_address, probe_name

if TYPE_CHECKING:
    from certpilot.certs.revocation import Revocation
    from certpilot.certs.trust import TrustStore
    from certpilot.cloud.clients import CloudClients
    from certpilot.core.model import Inventory
    from certpilot.handler import Invocation
    from certpilot.probe.tls import ServedCert

_log = get_logger(__name__)
# Skips whose domain keeps a certificate that is not probed: Alibaba's own (bucket
# domains), and names the certificate does not cover.
_NOT_PROBED = frozenset({ReasonCode.BUCKET_DOMAIN, ReasonCode.NOT_COVERED})


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Deps:
    """What the engine needs from the outside world."""

    settings: Settings
    clients: CloudClients
    request_id: str | None = None
    clock: Callable[[], datetime] = utc_now
    trust: TrustStore | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # When the run must be done, in `time.monotonic()` time (FC: the function's
    # timeout minus `RUN_MARGIN`); None: no budget (local runs, the CLI).
    deadline: float | None = None

    def trust_store(self) -> TrustStore:
        """The trust store for chain checks (`CERTPILOT_CA_BUNDLE`, else certifi)."""
        if self.trust is not None:
            return self.trust
        from certpilot.certs.trust import TrustStore

        if self.settings.ca_bundle:
            return TrustStore.from_file(self.settings.ca_bundle)
        return TrustStore.default()

    def apply_options(self) -> ApplyOptions:
        """Pool size, verification deadline and probe targets from the settings."""
        s = self.settings
        return ApplyOptions(
            concurrency=s.concurrency,
            verify=True,
            verify_deadline=s.verify_deadline,
            edge_https=s.edge_https,
            ca_bundle=s.ca_bundle,
            probe_timeout=s.connect_timeout,
            probe_read_timeout=s.read_timeout,
            deadline=self.deadline,
            verify_consecutive=s.verify_consecutive,
        )


# Seconds of an FC invocation kept free at the end: the summary, the logs, a last slow
# call. At most a quarter of a short timeout.
RUN_MARGIN = 15.0


def run_deadline(context: Any, now: float) -> float | None:
    """The `time.monotonic()` time a run must end by: FC's `context.function.timeout`
    (seconds) after `now`, minus `RUN_MARGIN`; None when the context has no timeout."""
    timeout = getattr(getattr(context, "function", None), "timeout", None)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        return None
    return now + timeout - min(RUN_MARGIN, timeout / 4)


def build_deps(
    context: Any = None,
    *,
    settings: Settings | None = None,
    environ: Mapping[str, str] | None = None,
) -> Deps:
    """Dependencies from an FC context (`context.credentials`, `context.request_id`)
    and the environment.

    Raises:
        ConfigError: the settings or credentials cannot be used.
    """
    from certpilot.cloud.clients import CloudClients
    from certpilot.cloud.credentials import resolve

    deadline = run_deadline(context, time.monotonic())
    settings = settings or Settings.from_env(environ)
    credentials = resolve(context, environ)
    return Deps(
        settings=settings,
        clients=CloudClients.from_settings(settings, credentials),
        request_id=getattr(context, "request_id", None),
        deadline=deadline,
    )


def check_region(region: str | None, settings: Settings) -> None:
    """Refuse a certificate region other than the deployment's CAS region.

    certpilot reads CAS in `CERTPILOT_CAS_REGION` only (and hands that region to CDN as
    CertRegion), so a certificate named in another region cannot be found or bound.
    Raises ForeignRegion; None (the event named no region) is accepted.
    """
    if region is not None and region != settings.cas_region:
        raise ForeignRegion(
            f"the certificate is in CAS region {region}, but this deployment reads CAS in"
            f" {settings.cas_region} (CERTPILOT_CAS_REGION): deploy a certpilot for that"
            " region, or name the certificate without a region"
        )


def discover_and_plan(
    cas_id: int,
    deps: Deps,
    *,
    policy: Policy | None = None,
    region: str | None = None,
    only: Sequence[str] = (),
) -> tuple[Plan | None, Inventory, Catalog]:
    """Read the account (inventory + catalog) and plan certificate `cas_id`.

    `region` is the CAS region the request named (None: none); `only`, when not
    empty, restricts the plan to those domains (the others are not considered). Returns
    `(None, inventory, catalog)` when CAS does not hold the certificate.
    Raises ForeignRegion (before reading anything) for a region other than
    `CERTPILOT_CAS_REGION`, CloudError when the account cannot be read.
    """
    from certpilot.discovery import catalog as catalog_module
    from certpilot.discovery import inventory as inventory_module

    check_region(region, deps.settings)
    now = deps.clock()
    trust = deps.trust_store()
    inventory = inventory_module.discover(deps.clients, deps.settings)
    if only:
        wanted = set(only)
        inventory = replace(
            inventory, domains=tuple(r for r in inventory.domains if r.name in wanted)
        )
    # One detail call for the certificate itself, with its PEM chain: the pre-write
    # check verifies its signatures against the trust store, so a certificate browsers
    # reject is refused before any write. Then only the certificates that cover the
    # same domains are read in detail (what is deployed there now), not the whole
    # catalog: CAS answers 100 detail calls a second, accounts hold thousands.
    # The same PEM tells the candidate's CA for the revocation check below.
    try:
        detail = deps.clients.cas.get_certificate(cas_id, with_pem=True)
    except NotFoundError:
        return None, inventory, Catalog(certificates=())
    named = catalog_module.judge_detail(detail, trust, now, renew_days=deps.settings.renew_days)
    targets = [r.name for r in inventory.domains if domain_covered(named.sans, r.name)]
    # Expired certificates too: one named by an event must be refused with its finding.
    listing = catalog_module.list_all(deps.clients, include_expired=True)
    catalog = catalog_module.load(
        deps.clients, trust, now, covering=targets, include_expired=True, listing=listing
    )
    # The listing knows revocation, the detail does not: the candidate as checked,
    # revoked as listed.
    listed = catalog.by_id(cas_id)
    cert = replace(named, revoked=listed.revoked) if listed is not None else named
    catalog = Catalog(certificates=(*(c for c in catalog.certificates if c.cas_id != cas_id), cert))
    # The CDN listings carry no CAS id: find it for the CDN domains this certificate
    # covers, so that "already current" and rollback know the bound certificate. By
    # name in the CAS listing read above; one DescribeDomainCertificateInfo call only
    # for a domain whose name does not match exactly one listed certificate.
    covered = [
        r.name
        for r in inventory.domains
        if r.route is Route.CDN and domain_covered(cert.sans, r.name)
    ]
    if covered:
        inventory = inventory_module.with_cert_ids(
            inventory,
            deps.clients,
            covered,
            cas=listing.summaries,
            regions={c.cas_id: c.region for c in catalog.certificates},
        )
    # Ask the candidate's CA whether it is revoked (CAS knows only for a purchased one):
    # a revoked candidate is refused before any write. (Current certificates are asked
    # about as the edge serves them: `probe_served`.)
    cert, catalog = with_revocation(cert, detail.cert_pem, catalog, deps, trust)
    policy = policy or Policy(renew_days=deps.settings.renew_days)
    plan = plan_certificate(cert, inventory, now, policy, catalog)
    # Every covered domain left alone is asked what its edge serves: a current
    # certificate may still be one browsers reject (weak key, SHA-1, broken chain:
    # things CAS's listing does not say; the plan counts that only when the edge serves
    # the configured certificate), and an edge serving another certificate than the
    # configured one is reported (SERVED_MISMATCH) whatever the plan decided.
    keep = [
        s.domain
        for s in plan.skipped
        if s.reason.code not in _NOT_PROBED and _has_certificate(inventory, s.domain)
    ]
    served = probe_served(keep, deps, inventory=inventory, trust=trust)
    if served:
        plan = plan_certificate(cert, inventory, now, policy, catalog, served)
    return plan, inventory, catalog


def _has_certificate(inventory: Inventory, domain: str) -> bool:
    record = inventory.get(domain)
    return record is not None and record.deployed is not None


def check_candidate_revocation(
    cas_id: int, pem: str | None, deps: Deps, trust: TrustStore
) -> Revocation | None:
    """Ask the CA of CAS certificate `cas_id` (public PEM chain `pem`, as CAS holds it)
    whether it is revoked, within `CERTPILOT_REVOCATION_TIMEOUT` (`certs.revocation`).
    UNKNOWN (NOT_AVAILABLE) without a PEM; None when the check is off (timeout 0)."""
    from certpilot.certs.revocation import Revocation, RevocationStatus, Unknown, check_pem

    timeout = deps.settings.revocation_timeout
    if timeout <= 0:
        return None
    verdict = (
        check_pem(pem, trust=trust, timeout=timeout)
        if pem
        else Revocation(RevocationStatus.UNKNOWN, why=Unknown.NOT_AVAILABLE)
    )
    event(
        _log,
        "revocation checked",
        level=logging.INFO if verdict.why is None else logging.WARNING,
        certId=cas_id,
        **verdict.to_dict(),
    )
    return verdict


def with_revocation(
    cert: CatalogCert, pem: str | None, catalog: Catalog, deps: Deps, trust: TrustStore
) -> tuple[CatalogCert, Catalog]:
    """`cert` (and its catalog entry) marked `revoked` when its CA says so
    (`check_candidate_revocation` of its PEM). UNKNOWN changes nothing: it is never
    taken for revoked."""
    verdict = check_candidate_revocation(cert.cas_id, pem, deps, trust)
    if verdict is None or not verdict.revoked or cert.revoked:
        return cert, catalog
    cert = replace(cert, revoked=True)
    others = tuple(c for c in catalog.certificates if c.cas_id != cert.cas_id)
    return cert, Catalog(certificates=(*others, cert))


def revoked_served(
    served: Mapping[str, ServedCert], deps: Deps, trust: TrustStore
) -> dict[str, EdgeObservation]:
    """A CERT_REVOKED observation for each domain whose served certificate its CA says
    is revoked. Each distinct served chain is asked about once, concurrently (many
    domains share one certificate), within `CERTPILOT_REVOCATION_TIMEOUT` each."""
    from certpilot.certs.revocation import check_many

    timeout = deps.settings.revocation_timeout
    chains = {
        domain: _pem(seen.chain)
        for domain, seen in served.items()
        if seen.chain and seen.fingerprint is not None
    }
    if timeout <= 0 or not chains:
        return {}
    verdicts = check_many(
        chains, trust=trust, timeout=timeout, concurrency=deps.settings.concurrency
    )
    return {
        domain: EdgeObservation(
            Code.CERT_REVOKED, served[domain].fingerprint, served[domain].fingerprint_sha1
        )
        for domain, verdict in verdicts.items()
        if verdict.revoked
    }


def _pem(chain: Sequence[bytes]) -> str:
    import ssl

    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in chain)


def probe_edge(domain: str, settings: Settings, inventory: Inventory | None) -> str | None:
    """The `host:port` to probe `domain` at (`probe.edge_address`): `CERTPILOT_EDGE_HTTPS`
    when set, else the inventory record's `edge_host`; None: the domain itself."""
    record = inventory.get(domain) if inventory is not None else None
    return edge_address(record.edge_host if record else None, settings.edge_https)


def probe_all(
    domains: Sequence[str], deps: Deps, *, inventory: Inventory | None = None
) -> dict[str, ServedCert | None]:
    """One live TLS probe of each of `domains`, concurrently: what its edge serves, or
    None where the probe itself failed (logged; one domain's trouble never stops the
    others). A wildcard domain is probed one label below (`probe.probe_name`), each
    domain at its `probe_edge` (`inventory` tells its edge host)."""
    from certpilot.probe.tls import probe_https

    s = deps.settings

    def probe(domain: str) -> ServedCert | None:
        try:
            return probe_https(
                probe_name(domain),
                edge=probe_edge(domain, s, inventory),
                ca_bundle=s.ca_bundle,
                timeout=s.connect_timeout,
                read_timeout=s.read_timeout,
            )
        except Exception as err:  # one domain's probe must not stop the rest
            event(
                _log, "probe failed", level=logging.WARNING, domain=domain, error=type(err).__name__
            )
            return None

    if not domains:
        return {}
    workers = max(1, min(len(domains), s.concurrency))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        return dict(zip(domains, pool.map(with_context(probe), domains), strict=True))


def probe_served(
    domains: Sequence[str],
    deps: Deps,
    *,
    inventory: Inventory | None = None,
    trust: TrustStore | None = None,
) -> dict[str, EdgeObservation]:
    """What the edge serves for `domains` (fingerprints), and what browsers would reject
    in it (domains not reachable, serving no certificate or whose probe failed are
    left out). Probes with `probe_all`; a certificate browsers would accept is asked
    about at its CA (`revoked_served`, `trust` for its issuer): CERT_REVOKED if revoked."""
    from certpilot.probe.tls import served_finding_code

    found: dict[str, EdgeObservation] = {}
    fine: dict[str, ServedCert] = {}
    for domain, served in probe_all(domains, deps, inventory=inventory).items():
        if served is None or served.fingerprint is None:
            continue
        code = served_finding_code(served)
        found[domain] = EdgeObservation(code, served.fingerprint, served.fingerprint_sha1)
        if code is None:
            fine[domain] = served
    if fine:
        found.update(revoked_served(fine, deps, trust or deps.trust_store()))
    rejected = {d: seen.problem.value for d, seen in found.items() if seen.problem is not None}
    if rejected:
        event(_log, "served certificates rejected by browsers", domains=rejected)
    return found


def parse_event(event: Any, invocation: Invocation) -> DeployRequest:
    """The handler frame's `parse`: the deploy-cert event (`events.parse_deploy_event`),
    accepted from the invocation's account only.

    Raises:
        EventError: the event is malformed, unsupported or from another account.
    """
    return parse_deploy_event(event, account_id=invocation.account_id)


def run(request: DeployRequest, invocation: Invocation) -> dict[str, Any]:
    """The handler frame's `run`: `deploy_cert` with dependencies from the FC context.

    Raises:
        ConfigError: the settings or credentials cannot be used.
        CloudError: the account cannot be read at all.
    """
    deps = build_deps(invocation.context, settings=invocation.settings)
    return deploy_cert(request, deps)


def deploy_cert(request: DeployRequest, deps: Deps) -> dict[str, Any]:
    """Roll certificate `request.cas_id` out to every domain it should go to.

    Returns the summary (`summary.render`): `ok`, `status`, `certId`, `counts`,
    `results` (one per domain: deployed / already-current / skipped / failed /
    rolled-back), `findings`.
    Raises CloudError only when the account cannot be read at all.
    """
    return render(run_deploy(request, deps))


def run_deploy(request: DeployRequest, deps: Deps) -> DeployReport:
    """`deploy_cert`, typed: what the run did (see `deploy_cert`)."""
    base = DeployReport(
        status=RunStatus.NOT_FOUND,
        cert_id=request.cas_id,
        request_id=deps.request_id,
        event=request.describe(),
    )
    event(_log, "deploy-cert started", **request.describe())
    plan, inventory, catalog = discover_and_plan(
        request.cas_id, deps, region=request.region, only=request.only
    )
    if plan is None:
        event(_log, "certificate not found", level=logging.WARNING, certId=request.cas_id)
        return replace(
            base,
            error={"type": "NotFound", "message": f"CAS holds no certificate {request.cas_id}"},
        )
    base = replace(base, cert_identifier=plan.cert.identifier, findings=plan.findings)
    if request.dry_run or deps.settings.dry_run:
        return replace(base, status=RunStatus.DRY_RUN, plan=plan, ok=not plan.refused)
    if plan.refused:
        event(
            _log,
            "certificate refused",
            level=logging.WARNING,
            certId=request.cas_id,
            codes=[c.value for c in refusal_codes(plan.findings)],
        )
        results = tuple(skip_result(s) for s in plan.skipped)
        return replace(base, status=RunStatus.REFUSED, results=results)
    _log_paused(plan)
    results = apply_plan(plan, deps.clients.oss, deps.clients.cdn, deps.apply_options(), log=_log)
    status = _status(plan, results)
    # An FC retry of a run killed before it verified finds its certificate bound: it is
    # "already current", but only the edge can say whether it is served.
    if unserved(plan) and status.ok:
        status = RunStatus.PARTIAL
    after = unserved_after(plan, results, inventory, catalog, _probe_unwritten(results, deps))
    event(_log, "deploy-cert finished", status=status.value, outcomes=_outcomes(results))
    return replace(
        base,
        status=status,
        results=results,
        findings=plan.findings + after,
        # How many consecutive consistent handshakes judged each verification and restore.
        verify_consecutive=deps.settings.verify_consecutive,
    )


def _probe_unwritten(results: Sequence[DomainResult], deps: Deps) -> Mapping[str, EdgeObservation]:
    """What the edge serves at the domains whose write failed with the binding left as
    the plan saw it (no re-read said otherwise); none once the run's time is up."""
    failed = [
        r.domain
        for r in results
        if r.outcome is Outcome.FAILED and r.verified is None and not r.notes
    ]
    deadline = deps.deadline
    if not failed or (
        deadline is not None and time.monotonic() + deps.settings.connect_timeout > deadline
    ):
        return {}
    return probe_served(failed, deps)


def unserved_after(
    plan: Plan,
    results: Sequence[DomainResult],
    inventory: Inventory,
    catalog: Catalog,
    unwritten: Mapping[str, EdgeObservation],
) -> tuple[Finding, ...]:
    """SERVED_MISMATCH for each domain of `plan.actions` whose edge, when last probed,
    served another certificate than the one configured there after the run: one whose
    write failed with the binding left as it was (`unwritten`: what its edge serves),
    one rolled back whose restore the edge did not confirm, one left failed with ours
    bound but not served. Deployed and superseded domains need no word (the edge was
    seen serving ours; another run's certificate is that run's to verify)."""
    actions = {a.domain: a for a in plan.actions}
    found: list[Finding] = []
    for result in results:
        action, record = actions.get(result.domain), inventory.get(result.domain)
        if action is None or record is None:
            continue
        seen = EdgeObservation(None, result.served_sha256)
        if result.domain in unwritten:
            configured, observed = record, unwritten[result.domain]
        elif result.outcome is Outcome.ROLLED_BACK and result.restored_verified is False:
            configured, observed = replace(record, deployed=action.previous), seen
        elif result.outcome is Outcome.FAILED and result.verified is False:
            ours = DeployedCert(
                Location.OSS if record.route is Route.OSS else Location.CDN,
                plan.cert.cas_id,
                "cas",
                None,
            )
            configured, observed = replace(record, deployed=ours), seen
        else:
            continue
        finding = served_mismatch(configured, observed, catalog, plan.cert)
        if finding is not None:
            found.append(finding)
    return tuple(found)


def unserved(plan: Plan) -> list[str]:
    """The `already-current` domains whose edge serves another certificate (a
    SERVED_MISMATCH of the plan): bound by an earlier run that did not verify it."""
    current = {s.domain for s in plan.skipped if s.reason.code is ReasonCode.ALREADY_CURRENT}
    stale = [
        f.domain for f in plan.findings if f.code is Code.SERVED_MISMATCH and f.domain in current
    ]
    if stale:
        event(_log, "bound but not served", level=logging.WARNING, domains=stale)
    return stale


def _outcomes(results: Sequence[DomainResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    return counts


def _log_paused(plan: Plan) -> None:
    paused = {
        s.domain: s.reason.cdn_status
        for s in plan.skipped
        if s.reason.code is ReasonCode.CDN_STATUS and s.reason.cdn_status in CDN_PAUSED_STATES
    }
    if paused:
        event(
            _log,
            "CDN domains paused: certificate not changed until they are started again",
            level=logging.WARNING,
            domains=paused,
        )


def _status(plan: Plan, results: tuple[DomainResult, ...]) -> RunStatus:
    if not plan.actions:
        return RunStatus.NOTHING_TO_DO
    acted = {a.domain for a in plan.actions}
    ends = [r for r in results if r.domain in acted]
    # A domain another run (or a person) moved on meanwhile is not a failure of ours:
    # it serves a certificate someone chose after us, and nothing was rolled back.
    deployed = sum(1 for r in ends if r.outcome is Outcome.DEPLOYED)
    superseded = sum(
        1 for r in ends if r.outcome is Outcome.SKIPPED and r.reason.code is ReasonCode.SUPERSEDED
    )
    good = deployed + superseded
    if good == len(ends):
        return RunStatus.DEPLOYED if deployed else RunStatus.SUPERSEDED
    return RunStatus.PARTIAL if good else RunStatus.FAILED
