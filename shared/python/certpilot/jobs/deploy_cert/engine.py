"""The use cases the handlers and the CLI call: one function per job.

`deploy_cert(request, deps)`: discover the account, load the certificate catalog,
plan where the certificate goes, apply, verify from outside, roll back what does not
verify, and return a JSON-ready summary. Never raises for one domain's failure; a
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

from certpilot.core.errors import CertpilotError, CloudError, EventError, ForeignRegion
from certpilot.core.findings import Code, Finding, make_finding
from certpilot.core.log import event, get_logger, with_context
from certpilot.core.model import Catalog, EdgeObservation, Route
from certpilot.core.settings import Settings
from certpilot.events import DeployRequest
from certpilot.jobs.deploy_cert.apply import (
    SUPERSEDED,
    ApplyOptions,
    DomainResult,
    Outcome,
    apply_plan,
    count_outcomes,
)
from certpilot.jobs.deploy_cert.plan import (
    ALREADY_CURRENT,
    CDN_PAUSED_STATES,
    CDN_STATUS,
    RECHECK_REASONS,
    Plan,
    Policy,
    domain_covered,
    plan_certificate,
    refusal_codes,
)
from certpilot.probe.tls import edge_address, probe_name

if TYPE_CHECKING:
    from certpilot.certs.trust import TrustStore
    from certpilot.cloud.clients import CloudClients
    from certpilot.core.model import Inventory
    from certpilot.probe.tls import ServedCert

_log = get_logger(__name__)

# Summary statuses.
STATUS_DEPLOYED = "deployed"  # every action deployed and verified
STATUS_NOTHING = "nothing-to-do"  # no domain needed the certificate (e.g. duplicate event)
STATUS_SUPERSEDED = "superseded"  # every target got another run's certificate meanwhile
STATUS_PARTIAL = "partial"  # some domains failed or were rolled back, others deployed
STATUS_FAILED = "failed"  # every action failed or was rolled back
STATUS_REFUSED = "refused"  # the certificate is unusable: nothing changed
STATUS_NOT_FOUND = "not-found"  # CAS does not hold the certificate
STATUS_DRY_RUN = "dry-run"  # planned only
STATUS_REJECTED = "rejected"  # the event was not accepted
STATUS_ERROR = "error"  # configuration or cloud error before any change


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
) -> tuple[Plan | None, Inventory, Catalog]:
    """Read the account (inventory + catalog) and plan certificate `cas_id`.

    `region` is the CAS region the request named (None: none). Returns
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
    # One detail call for the certificate itself, with its PEM chain: the pre-write
    # check verifies its signatures against the trust store, so a certificate browsers
    # reject is refused before any write. Then only the certificates that cover the
    # same domains are read in detail (what is deployed there now), not the whole
    # catalog: CAS answers 100 detail calls a second, accounts hold thousands.
    named = catalog_module.load_candidate(
        deps.clients, trust, cas_id, now, renew_days=deps.settings.renew_days
    )
    if named is None:
        return None, inventory, Catalog(certificates=())
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
    policy = policy or Policy(renew_days=deps.settings.renew_days)
    plan = plan_certificate(cert, inventory, now, policy, catalog)
    # A current certificate left alone may still be one browsers reject (weak key,
    # SHA-1, broken chain: things CAS's listing does not say). Ask the edge; the plan
    # counts the answer only when the edge serves the configured certificate.
    keep = [s.domain for s in plan.skipped if s.reason in RECHECK_REASONS]
    served = probe_served(keep, deps, inventory=inventory) if keep and not plan.refused else {}
    if served:
        plan = plan_certificate(cert, inventory, now, policy, catalog, served)
    return plan, inventory, catalog


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
    domains: Sequence[str], deps: Deps, *, inventory: Inventory | None = None
) -> dict[str, EdgeObservation]:
    """What browsers would reject in the certificates the edge serves for `domains`,
    with the served fingerprints (domains served fine, not reachable or whose probe
    failed are left out). Probes with `probe_all`."""
    from certpilot.probe.tls import served_finding_code

    found: dict[str, EdgeObservation] = {}
    for domain, served in probe_all(domains, deps, inventory=inventory).items():
        code = served_finding_code(served) if served is not None else None
        if served is not None and code is not None:
            found[domain] = EdgeObservation(code.value, served.fingerprint, served.fingerprint_sha1)
    if found:
        event(
            _log,
            "served certificates rejected by browsers",
            domains={domain: seen.problem for domain, seen in found.items()},
        )
    return found


def deploy_cert(request: DeployRequest, deps: Deps) -> dict[str, Any]:
    """Roll certificate `request.cas_id` out to every domain it should go to.

    Returns the summary: `ok`, `status`, `certId`, `counts`, `results` (one per domain:
    deployed / already-current / skipped / failed / rolled-back), `findings`.
    Raises CloudError only when the account cannot be read at all.
    """
    base: dict[str, Any] = {
        "function": "deploy-cert",
        "requestId": deps.request_id,
        "certId": request.cas_id,
        "event": request.describe(),
    }
    event(_log, "deploy-cert started", **request.describe())
    plan, inventory, _ = discover_and_plan(request.cas_id, deps, region=request.region)
    if plan is None:
        event(_log, "certificate not found", level=logging.WARNING, certId=request.cas_id)
        return {
            **base,
            "ok": False,
            "status": STATUS_NOT_FOUND,
            "error": {
                "type": "NotFound",
                "message": f"CAS holds no certificate {request.cas_id}",
            },
            "counts": count_outcomes(()),
            "results": [],
            "findings": [],
        }
    base["certIdentifier"] = plan.cert.identifier
    findings = [f.to_dict() for f in plan.findings]
    if request.dry_run or deps.settings.dry_run:
        return {
            **base,
            "ok": not plan.refused,
            "status": STATUS_DRY_RUN,
            "plan": plan.to_dict(),
            "findings": findings,
        }
    if plan.refused:
        results = tuple(_skip_results(plan))
        event(
            _log,
            "certificate refused",
            level=logging.WARNING,
            certId=request.cas_id,
            codes=[c.value for c in refusal_codes(plan.findings)],
        )
        return _summary(base, STATUS_REFUSED, results, findings, plan, ok=False)
    _log_paused(plan)
    # An FC retry of a run killed before it verified finds its certificate bound: it is
    # "already current", but only the edge can say whether it is served.
    stale = served_mismatches(plan, deps, inventory=inventory)
    findings += [f.to_dict() for f in stale]
    results = apply_plan(plan, deps.clients.oss, deps.clients.cdn, deps.apply_options(), log=_log)
    status = _status(plan, results)
    if stale and status in (STATUS_DEPLOYED, STATUS_NOTHING, STATUS_SUPERSEDED):
        status = STATUS_PARTIAL
    summary = _summary(
        base,
        status,
        results,
        findings,
        plan,
        ok=status in (STATUS_DEPLOYED, STATUS_NOTHING, STATUS_SUPERSEDED),
    )
    event(_log, "deploy-cert finished", status=status, counts=summary["counts"])
    return summary


def served_mismatches(
    plan: Plan, deps: Deps, *, inventory: Inventory | None = None
) -> list[Finding]:
    """One live probe of every `already-current` domain: a SERVED_MISMATCH finding for
    each whose edge serves another certificate than `plan.cert` (e.g. a previous run
    was killed before it verified). An edge that cannot be reached says nothing. Each
    domain is probed at its `probe_edge` (`inventory` tells its edge host)."""
    domains = [s.domain for s in plan.skipped if s.reason == ALREADY_CURRENT]
    if not domains:
        return []
    expected = plan.cert.fingerprint_sha256.replace(":", "").upper()
    served = {
        domain: seen.fingerprint if seen is not None else None
        for domain, seen in probe_all(domains, deps, inventory=inventory).items()
    }
    stale = [d for d, fingerprint in served.items() if fingerprint not in (None, expected)]
    if stale:
        event(_log, "bound but not served", level=logging.WARNING, domains=stale)
    return [
        make_finding(
            Code.SERVED_MISMATCH,
            domain,
            f"certificate {plan.cert.cas_id} is bound, but the edge serves another one"
            " (a previous run may have ended before verifying it)",
        )
        for domain in stale
    ]


def _log_paused(plan: Plan) -> None:
    paused = {
        s.domain: s.reason.split(":", 1)[1]
        for s in plan.skipped
        if s.code == CDN_STATUS and s.reason.split(":", 1)[1] in CDN_PAUSED_STATES
    }
    if paused:
        event(
            _log,
            "CDN domains paused: certificate not changed until they are started again",
            level=logging.WARNING,
            domains=paused,
        )


def _skip_results(plan: Plan) -> list[DomainResult]:
    from certpilot.jobs.deploy_cert.apply import skip_result

    return [skip_result(s) for s in plan.skipped]


def _status(plan: Plan, results: tuple[DomainResult, ...]) -> str:
    if not plan.actions:
        return STATUS_NOTHING
    acted = {a.domain for a in plan.actions}
    outcomes = [(r.outcome, r.reason) for r in results if r.domain in acted]
    # A domain another run (or a person) moved on meanwhile is not a failure of ours:
    # it serves a certificate someone chose after us, and nothing was rolled back.
    deployed = sum(1 for outcome, _ in outcomes if outcome is Outcome.DEPLOYED)
    superseded = sum(
        1
        for outcome, reason in outcomes
        if outcome is Outcome.SKIPPED and reason.startswith(SUPERSEDED)
    )
    good = deployed + superseded
    if good == len(outcomes):
        return STATUS_DEPLOYED if deployed else STATUS_SUPERSEDED
    return STATUS_PARTIAL if good else STATUS_FAILED


def _summary(
    base: dict[str, Any],
    status: str,
    results: tuple[DomainResult, ...],
    findings: list[dict[str, Any]],
    plan: Plan,
    *,
    ok: bool,
) -> dict[str, Any]:
    # Each result also says in words why a domain was left alone (the plan's detail).
    details = {s.domain: s.detail for s in plan.skipped}
    return {
        **base,
        "ok": ok,
        "status": status,
        "counts": count_outcomes(results),
        "results": [{**r.to_dict(), "detail": details.get(r.domain, "")} for r in results],
        "findings": findings,
    }


def error_summary(function: str, error: BaseException, request_id: str | None) -> dict[str, Any]:
    """The JSON answer for an invocation that could not run (rejected event, bad
    configuration, unreadable account). Carries no payload echo and no secret."""
    status = STATUS_REJECTED if isinstance(error, EventError) else STATUS_ERROR
    detail: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, CloudError):
        detail.update(code=error.code, service=error.service, action=error.action)
    elif not isinstance(error, CertpilotError):
        detail["message"] = "internal error (see the function log)"
    return {
        "function": function,
        "requestId": request_id,
        "ok": False,
        "status": status,
        "error": detail,
    }
