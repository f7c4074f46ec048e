"""check-expiry's repairs: a better certificate CAS already holds, a failover, enforcement.

Deciding is pure: `plan_rollouts(records, verdicts, catalog, now)` picks, for each judged
domain inside its renewal window or whose certificate is unusable (or missing), the
valid, usable CAS certificate covering it that expires last, when it expires later than
the current one; domains are grouped by that certificate: one `Rollout` per
certificate. Applying is `invoke_rollouts`: deploy-cert invoked asynchronously through
Function Compute's InvokeFunction (FC 3.0 SDK, `cloud.fc`), one invocation per
certificate with the direct payload `{"certId": N, "reason": ...}` (far below FC's
async payload limit); deploy-cert plans, writes, verifies at the edge and rolls back on
its own. A repair is PENDING until the next sweep sees the certificate in place.

Second kind, failover (`failover_choice`, pure): a domain whose primary became
unusable (expired, revoked by its CA or CAS, chain distrusted: `FAILOVER_CODES`) gets
the best backup from a CA other than the primary's (`judge.best_backup`, DESIGN §5:
valid now, covers the domain, not revoked, expires last), through the same deploy-cert
invocation, reported as FAILED_OVER. Only when no such backup exists does the rollout
fall back to the best usable certificate of any CA (a DEPLOY_INVOKED repair).

Third kind, enforcement drift (`plan_enforcements`, pure; `restore_enforcement`): a
judged domain found with HTTP_NOT_FORCED / HSTS_MISSING, whose HTTPS is sound and which
is under no emergency fallback, is handed to the enforce-https engine, in process,
restricted to those domains. Chosen: enforce whenever the guard allows it, not only
where a previous report said "forced": the engine never forces HTTPS before HTTPS is
verified live, never drops a policy statement, and leaves a bucket untouched when any
of its domains still needs HTTP, so asking it is safe by construction, and it needs no
stored history to be right. In process rather than an async FC invocation: the engine
verifies from outside before it answers, so the repair is CONFIRMED or FAILED within
this sweep (nothing left pending), and no second function name must be configured. The
run's deadline (`deps.deadline`) bounds it as it bounds the sweep.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from certpilot.core.errors import CloudError
from certpilot.core.findings import Code
from certpilot.core.log import event, get_logger
from certpilot.core.model import Catalog, CatalogCert, DomainRecord, Route
from certpilot.jobs.check_expiry.judge import Verdict, best_backup
from certpilot.jobs.check_expiry.report import RepairKind, RepairStatus
from certpilot.jobs.deploy_cert.plan import REFUSING_CODES, domain_covered

if TYPE_CHECKING:
    from certpilot.cloud.fc import FcAdapter
    from certpilot.jobs.deploy_cert.engine import Deps

_log = get_logger(__name__)
MAX_REASON = 200  # deploy-cert keeps the first 200 characters of `reason`

# Findings a newer certificate from CAS answers.
ROLLOUT_FIXES = frozenset(
    {
        Code.CERT_EXPIRING,
        Code.CERT_EXPIRED,
        Code.CERT_NOT_YET_VALID,
        Code.CERT_REVOKED,
        Code.NAME_MISMATCH,
        Code.WILDCARD_LEVEL,
        Code.CHAIN_INCOMPLETE,
        Code.UNTRUSTED_ROOT,
        Code.WEAK_KEY,
        Code.WEAK_SIGNATURE,
    }
)

# Findings that make the primary unusable: its CA's trouble, so another CA's backup.
FAILOVER_CODES = frozenset({Code.CERT_EXPIRED, Code.CERT_REVOKED, Code.UNTRUSTED_ROOT})


@dataclass(frozen=True)
class Rollout:
    """Deploy one CAS certificate; the domains it is meant for, what it fixes, and those
    of its domains for which it is a failover to another CA's backup (`failed_over`)."""

    cas_id: int
    domains: tuple[str, ...]
    fixes: tuple[Code, ...]
    failed_over: tuple[str, ...] = ()

    def kind(self, domain: str) -> RepairKind:
        """The kind of repair this rollout is for `domain`."""
        return RepairKind.FAILED_OVER if domain in self.failed_over else RepairKind.DEPLOY_INVOKED


@dataclass(frozen=True)
class RolloutResult:
    """One invocation of deploy-cert and its outcome."""

    rollout: Rollout
    status: RepairStatus
    request_id: str | None = None
    error_code: str | None = None


def usable(cert: CatalogCert, now: datetime) -> bool:
    """Valid at `now`, not revoked, complete chain, nothing a browser refuses."""
    return (
        cert.valid_at(now)
        and cert.chain_complete
        and not any(code in REFUSING_CODES for code in cert.problems)
    )


def failover_choice(
    record: DomainRecord, verdict: Verdict, catalog: Catalog, now: datetime
) -> CatalogCert | None:
    """The backup a judged domain fails over to (pure), or None: only when its primary
    is unusable (`FAILOVER_CODES`), the best backup from another CA than the primary's
    issuer (`judge.best_backup`). With the primary's issuer unknown there is no
    failover (a "different CA" cannot be told)."""
    if not verdict.judged or record.deployed is None or record.route is Route.BUCKET_DOMAIN:
        return None
    if not FAILOVER_CODES & set(verdict.codes):
        return None
    primary = catalog.by_id(record.deployed.cas_id) if record.deployed.cas_id else None
    issuer = primary.issuer if primary is not None else verdict.issuer
    if not issuer:
        return None
    return best_backup(record.name, catalog, now, issuer, record.deployed.cas_id)


def plan_rollouts(
    records: Sequence[DomainRecord],
    verdicts: Mapping[str, Verdict],
    catalog: Catalog,
    now: datetime,
) -> tuple[Rollout, ...]:
    """The rollouts that repair what CAS can repair (module docstring); pure. A domain
    not judged, a bucket domain, or one whose best certificate is the current one (or
    expires no later) gets none."""
    chosen: dict[int, list[str]] = {}
    fixes: dict[int, set[Code]] = {}
    failed_over: dict[int, list[str]] = {}
    for record in records:
        verdict = verdicts.get(record.name)
        if verdict is None or not verdict.judged or record.route is Route.BUCKET_DOMAIN:
            continue
        wanted = {c for c in verdict.codes if c in ROLLOUT_FIXES}
        if record.deployed is None and Code.NO_CERTIFICATE in verdict.codes:
            wanted.add(Code.NO_CERTIFICATE)
        if not wanted:
            continue
        backup = failover_choice(record, verdict, catalog, now)
        if backup is not None:
            chosen.setdefault(backup.cas_id, []).append(record.name)
            fixes.setdefault(backup.cas_id, set()).update(wanted)
            failed_over.setdefault(backup.cas_id, []).append(record.name)
            continue
        candidates = [
            c
            for c in catalog.certificates
            if usable(c, now) and domain_covered(c.sans, record.name)
        ]
        if not candidates:
            continue
        best = max(candidates, key=lambda c: (c.not_after, c.cas_id))
        current = record.deployed
        if current is not None and current.cas_id == best.cas_id:
            continue
        broken = wanted - {Code.CERT_EXPIRING}
        if not broken and verdict.not_after is not None and best.not_after <= verdict.not_after:
            continue  # only expiring, and nothing lasts longer
        chosen.setdefault(best.cas_id, []).append(record.name)
        fixes.setdefault(best.cas_id, set()).update(wanted)
    return tuple(
        Rollout(
            cas_id,
            tuple(sorted(domains)),
            tuple(sorted(fixes[cas_id], key=list(Code).index)),
            tuple(sorted(failed_over.get(cas_id, ()))),
        )
        for cas_id, domains in sorted(chosen.items())
    )


# Findings the enforce-https engine answers.
ENFORCE_FIXES = frozenset({Code.HTTP_NOT_FORCED, Code.HSTS_MISSING})
# Findings that say HTTPS itself is not sound: enforcement waits for a certificate repair
# (the engine would refuse anyway; this keeps it from deploying certificates itself).
HTTPS_UNSOUND = frozenset(ROLLOUT_FIXES - {Code.CERT_EXPIRING} | {Code.NO_CERTIFICATE})


@dataclass(frozen=True)
class Restore:
    """enforce-https's outcome for one drifted domain."""

    domain: str
    status: RepairStatus
    fixes: tuple[Code, ...]
    error_code: str | None = None  # FAILED: the engine's reason or the cloud error code


def plan_enforcements(
    records: Sequence[DomainRecord], verdicts: Mapping[str, Verdict]
) -> tuple[str, ...]:
    """The domains whose drifted enforcement to restore (module docstring); pure."""
    chosen = []
    for record in records:
        verdict = verdicts.get(record.name)
        if verdict is None or not verdict.judged or record.route is Route.BUCKET_DOMAIN:
            continue
        codes = set(verdict.codes)
        if not codes & ENFORCE_FIXES or Code.FALLBACK_ACTIVE in codes or codes & HTTPS_UNSOUND:
            continue
        chosen.append(record.name)
    return tuple(sorted(chosen))


def restore_enforcement(
    domains: Sequence[str], codes: Mapping[str, Sequence[Code]], deps: Deps
) -> tuple[Restore, ...]:
    """Run the enforce-https engine on `domains` (in process; `codes`: each domain's
    finding codes, the fixes are those among them); one `Restore` each:
    CONFIRMED when the engine enforced it and saw it enforced from outside, FAILED
    otherwise. Never raises for a cloud error: every domain is then FAILED with its code."""
    if not domains:
        return ()
    from certpilot.jobs.enforce_https.engine import run_enforce
    from certpilot.jobs.enforce_https.events import EnforceRequest, Trigger
    from certpilot.jobs.enforce_https.summary import DomainOutcome

    def fixes(domain: str) -> tuple[Code, ...]:
        return tuple(c for c in codes[domain] if c in ENFORCE_FIXES)

    request = EnforceRequest(
        Trigger.DIRECT, domains=tuple(domains), reason="check-expiry: enforcement drift"
    )
    try:
        report = run_enforce(request, deps)
    except CloudError as error:
        event(_log, "enforcement not restored", level=logging.WARNING, code=error.code)
        return tuple(Restore(d, RepairStatus.FAILED, fixes(d), error.code) for d in domains)
    outcomes = {r.domain: r for r in report.domains}
    restored = []
    for domain in domains:
        result = outcomes.get(domain)
        if result is not None and result.outcome in (
            DomainOutcome.ENFORCED,
            DomainOutcome.ALREADY_ENFORCED,
        ):
            restored.append(Restore(domain, RepairStatus.CONFIRMED, fixes(domain)))
        else:
            code = result.error_code or result.reason.value if result else "not-in-scope"
            restored.append(Restore(domain, RepairStatus.FAILED, fixes(domain), code))
    event(
        _log,
        "enforcement restored",
        domains={r.domain: r.status.value for r in restored},
    )
    return tuple(restored)


def payload(rollout: Rollout, request_id: str | None) -> bytes:
    """deploy-cert's direct event for `rollout` (README, "deploy-cert events")."""
    what = f"failover of {', '.join(rollout.failed_over)}; " if rollout.failed_over else ""
    reason = (
        f"check-expiry {request_id or ''}: {what}"
        + ", ".join(c.value for c in rollout.fixes)
        + " on "
        + ", ".join(rollout.domains)
    )
    return json.dumps({"certId": rollout.cas_id, "reason": reason[:MAX_REASON]}).encode()


def invoke_rollouts(
    rollouts: Sequence[Rollout], fc: FcAdapter, function: str, request_id: str | None
) -> tuple[RolloutResult, ...]:
    """Invoke deploy-cert (`function`) asynchronously, once per rollout. Never raises
    for a failed invocation: it is a FAILED result with the cloud error's code."""
    results = []
    for rollout in rollouts:
        try:
            fc.invoke(function, payload(rollout, request_id), asynchronous=True)
        except CloudError as error:
            event(
                _log,
                "deploy-cert not invoked",
                level=logging.WARNING,
                certId=rollout.cas_id,
                code=error.code,
            )
            results.append(RolloutResult(rollout, RepairStatus.FAILED, error_code=error.code))
            continue
        event(_log, "deploy-cert invoked", certId=rollout.cas_id, domains=list(rollout.domains))
        results.append(RolloutResult(rollout, RepairStatus.PENDING))
    return tuple(results)
