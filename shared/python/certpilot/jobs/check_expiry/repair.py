"""check-expiry's repairs, first kind: roll out a better certificate CAS already holds.

Deciding is pure: `plan_rollouts(records, verdicts, catalog, now)` picks, for each judged
domain inside its renewal window or whose certificate is unusable (or missing), the
valid, usable CAS certificate covering it that expires last, when it expires later than
the current one; domains are grouped by that certificate: one `Rollout` per
certificate. Applying is `invoke_rollouts`: deploy-cert invoked asynchronously through
Function Compute's InvokeFunction (FC 3.0 SDK, `cloud.fc`), one invocation per
certificate with the direct payload `{"certId": N, "reason": ...}` (far below FC's
async payload limit); deploy-cert plans, writes, verifies at the edge and rolls back on
its own. A repair is PENDING until the next sweep sees the certificate in place.

Not here yet: failing over to a backup from another CA by itself (a rollout of the
best certificate already picks one when the current is unusable), restoring drifted
enforcement (enforce-https).
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
from certpilot.jobs.check_expiry.judge import Verdict
from certpilot.jobs.check_expiry.report import RepairStatus
from certpilot.jobs.deploy_cert.plan import REFUSING_CODES, domain_covered

if TYPE_CHECKING:
    from certpilot.cloud.fc import FcAdapter

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


@dataclass(frozen=True)
class Rollout:
    """Deploy one CAS certificate; the domains it is meant for and what it fixes."""

    cas_id: int
    domains: tuple[str, ...]
    fixes: tuple[Code, ...]


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
    for record in records:
        verdict = verdicts.get(record.name)
        if verdict is None or not verdict.judged or record.route is Route.BUCKET_DOMAIN:
            continue
        wanted = {c for c in verdict.codes if c in ROLLOUT_FIXES}
        if record.deployed is None and Code.NO_CERTIFICATE in verdict.codes:
            wanted.add(Code.NO_CERTIFICATE)
        if not wanted:
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
        Rollout(cas_id, tuple(sorted(domains)), tuple(sorted(fixes[cas_id], key=list(Code).index)))
        for cas_id, domains in sorted(chosen.items())
    )


def payload(rollout: Rollout, request_id: str | None) -> bytes:
    """deploy-cert's direct event for `rollout` (README, "deploy-cert events")."""
    reason = (
        f"check-expiry {request_id or ''}: "
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
