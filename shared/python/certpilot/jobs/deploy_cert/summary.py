"""deploy-cert's JSON summary and the words for people, rendered from typed values.

The one place where a `Reason`, a `Note` or a `Binding` becomes text: `reason` is the
stable code string (`Reason.wire`), `detail` the sentence for people, `facts` the
typed fields. The CLI's text tables (`certpilot.cli.render`) use the same words.
Nothing here is read back by code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from certpilot.core.findings import Finding
from certpilot.core.model import Route
from certpilot.core.outcomes import (
    Binding,
    BindingState,
    Note,
    NoteKind,
    Outcome,
    Reason,
    ReasonCode,
    RunStatus,
)
from certpilot.jobs.deploy_cert.apply import DomainResult
from certpilot.jobs.deploy_cert.plan import Action, Plan, Rollback, Skip

FUNCTION = "deploy-cert"


@dataclass(frozen=True)
class DeployReport:
    """What one deploy-cert run did, typed; `render` makes the JSON summary of it."""

    status: RunStatus
    cert_id: int
    request_id: str | None
    event: Mapping[str, Any]
    cert_identifier: str | None = None
    results: tuple[DomainResult, ...] = ()
    findings: tuple[Finding, ...] = ()
    plan: Plan | None = None  # the dry run's plan
    ok: bool | None = None  # None: `status.ok`
    error: Mapping[str, Any] | None = None
    # Consecutive consistent handshakes that judged each verification and restore
    # (None: nothing was verified).
    verify_consecutive: int | None = None


def render(report: DeployReport) -> dict[str, Any]:
    """The JSON summary (docs/deploy-cert.md "Events"): `ok`, `status`, `certId`,
    `counts`, `results`, `findings` (and `plan` for a dry run, `error` when the
    certificate is not found)."""
    data: dict[str, Any] = {
        "function": FUNCTION,
        "requestId": report.request_id,
        "certId": report.cert_id,
        "event": dict(report.event),
    }
    if report.cert_identifier is not None:
        data["certIdentifier"] = report.cert_identifier
    ok = report.status.ok if report.ok is None else report.ok
    data.update(ok=ok, status=report.status.value)
    if report.error is not None:
        data["error"] = dict(report.error)
    if report.plan is not None and report.status is RunStatus.DRY_RUN:
        data["plan"] = plan_dict(report.plan)
    else:
        data["counts"] = count_outcomes(report.results)
        data["results"] = [result_dict(r) for r in report.results]
    if report.verify_consecutive is not None:
        data["verifyConsecutive"] = report.verify_consecutive
    data["findings"] = [f.to_dict() for f in report.findings]
    return data


def count_outcomes(results: Iterable[DomainResult]) -> dict[str, int]:
    """How many domains ended in each outcome (every outcome present)."""
    counts = {o.value: 0 for o in Outcome}
    for result in results:
        counts[result.outcome.value] += 1
    return counts


# -- results, plans -------------------------------------------------------------------


def result_dict(result: DomainResult) -> dict[str, Any]:
    """One domain's result: `outcome`, `reason` (code string), `detail` (words),
    `facts` (the reason's typed fields), `notes` (what re-reads showed), ..."""
    return {
        "domain": result.domain,
        "outcome": result.outcome.value,
        "route": result.route.value if result.route else None,
        "reason": result.reason.wire,
        "detail": result_words(result),
        "facts": reason_facts(result.reason),
        "errorCode": result.error_code,
        "certId": result.cert_id,
        "previousCertId": result.previous_cert_id,
        "verified": result.verified,
        "rollback": result.rollback.value if result.rollback else None,
        "restoredVerified": result.restored_verified,
        "notes": [note.to_dict() for note in result.notes],
        "seconds": round(result.seconds, 3),
    }


def action_dict(action: Action) -> dict[str, Any]:
    """One planned deployment, JSON-ready."""
    previous = action.previous
    return {
        "domain": action.domain,
        "route": action.route.value,
        "bucket": action.bucket,
        "region": action.region,
        "certId": action.cas_id,
        "certIdentifier": action.identifier,
        "reason": action.reason.wire,
        "detail": reason_words(action.reason),
        "previousCertId": previous.cas_id if previous else None,
        "previousNotAfter": iso(previous.not_after) if previous else None,
        "rollback": action.rollback.value,
    }


def skip_dict(skip: Skip) -> dict[str, Any]:
    """One domain the plan leaves alone, JSON-ready."""
    return {
        "domain": skip.domain,
        "route": skip.route.value if skip.route else None,
        "reason": skip.reason.wire,
        "detail": reason_words(skip.reason),
        "facts": reason_facts(skip.reason),
    }


def plan_dict(plan: Plan) -> dict[str, Any]:
    """The dry run, JSON-ready."""
    cert = plan.cert
    return {
        "certificate": {
            "certId": cert.cas_id,
            "certIdentifier": cert.identifier,
            "name": cert.name,
            "commonName": cert.common_name,
            "sans": list(cert.sans),
            "issuer": cert.issuer,
            "notBefore": iso(cert.not_before),
            "notAfter": iso(cert.not_after),
            "fingerprintSha256": cert.fingerprint_sha256,
        },
        "now": iso(plan.now),
        "refused": plan.refused,
        "actions": [action_dict(a) for a in plan.actions],
        "skipped": [skip_dict(s) for s in plan.skipped],
        "findings": [f.to_dict() for f in plan.findings],
    }


def reason_facts(reason: Reason) -> dict[str, Any]:
    """The typed fields of `reason` that are set, JSON-ready (camelCase keys)."""
    facts: dict[str, Any] = {"code": reason.code.value}
    if reason.finding is not None:
        facts["finding"] = reason.finding.value
    if reason.findings:
        facts["findings"] = [c.value for c in reason.findings]
    if reason.cdn_status is not None:
        facts["cdnStatus"] = reason.cdn_status
    if reason.cert_id is not None:
        facts["certId"] = reason.cert_id
    if reason.current_expires is not None:
        facts["currentExpires"] = iso(reason.current_expires)
    if reason.candidate_expires is not None:
        facts["candidateExpires"] = iso(reason.candidate_expires)
    if reason.name is not None:
        facts["name"] = reason.name
    if reason.blocked is not None:
        facts["blocked"] = reason_facts(reason.blocked)
    if reason.served_sha256 is not None:
        facts["servedSha256"] = reason.served_sha256
    if reason.error is not None:
        facts["error"] = reason.error.to_dict()
    if reason.bound is not None:
        facts["bound"] = reason.bound.to_dict()
    if reason.problem is not None:
        facts["problem"] = reason.problem
    if reason.waited is not None:
        facts["waited"] = round(reason.waited, 3)
    return facts


# -- words ----------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with a `Z` for UTC; None stays None."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _cert(cert_id: int | None, fallback: str = "the deployed certificate") -> str:
    return f"certificate {cert_id}" if cert_id is not None else fallback


def reason_words(reason: Reason, route: Route | None = None) -> str:
    """`reason` in words for people (`route`: the domain's, for words that differ)."""
    code = reason.code
    finding = reason.finding.value if reason.finding else "?"
    if code is ReasonCode.NO_CERTIFICATE:
        return "the domain has no certificate"
    if code is ReasonCode.CURRENT_INVALID:
        meaning = f" ({reason.finding.meaning})" if reason.finding else ""
        return f"the deployed certificate is invalid: {finding}{meaning}"
    if code is ReasonCode.CURRENT_NOT_COVERING:
        return f"{_cert(reason.cert_id)} does not cover the domain"
    if code is ReasonCode.EXPIRES_LATER:
        return "this certificate expires later than the deployed one"
    if code is ReasonCode.BUCKET_DOMAIN:
        return "Alibaba manages bucket domains"
    if code is ReasonCode.ALREADY_CURRENT:
        return f"{_cert(reason.cert_id, 'this certificate')} is deployed"
    if code is ReasonCode.CURRENT_EXPIRES_LATER:
        return (
            f"deployed certificate expires {iso(reason.current_expires)},"
            f" not before this one ({iso(reason.candidate_expires)})"
        )
    if code is ReasonCode.CURRENT_EXPIRY_UNKNOWN:
        return "the deployed certificate's expiry is not known"
    if code is ReasonCode.CURRENT_NOT_DUE:
        return f"deployed certificate is valid until {iso(reason.current_expires)}"
    if code is ReasonCode.NOT_COVERED:
        if reason.name:
            return f"{finding}: {reason.name} covers exactly one label"
        return f"{finding}: not among the certificate's names"
    if code is ReasonCode.CANDIDATE_INVALID:
        return "certificate refused: " + ", ".join(c.value for c in reason.findings)
    if code is ReasonCode.PREVIOUS_UNKNOWN:
        if reason.blocked is not None:
            return (
                f"{reason.blocked.wire}, but the bound certificate's CertId is not known:"
                " PreviousCertId cannot be given"
            )
        return (
            "the deployed certificate is not held in CAS and could not be restored if this"
            " one fails to verify: it is replaced only once it is invalid"
        )
    if code is ReasonCode.CDN_STATUS:
        if reason.cdn_status in ("offline", "stopping"):
            return (
                f"the CDN domain is paused ({reason.cdn_status}): it serves nothing, so a"
                " certificate change could not be verified; it is deployed to once started again"
            )
        return f"the CDN domain cannot be configured while {reason.cdn_status}"
    if code is ReasonCode.SERVED_MISMATCH:
        served = (reason.served_sha256 or "?")[:16]
        return (
            f"the edge serves another certificate (SHA-256 {served}...) than"
            f" {_cert(reason.cert_id, 'the configured one')}, and browsers reject it"
            f" ({finding}): a stale edge or DNS pointing elsewhere; the configured"
            " certificate is not to blame and is left alone"
        )
    if code is ReasonCode.OUT_OF_TIME:
        return "not written: too little of the run's time left to verify and roll it back"
    if code is ReasonCode.BUSY:
        waited = f" for {reason.waited:.1f}s" if reason.waited is not None else ""
        return (
            f"not written: {_error_words(reason, 'the write')} (the domain stayed configuring"
            f" an earlier change{waited}, all the time the run could give it)"
        )
    if code is ReasonCode.WRITE_FAILED:
        return _error_words(reason, "the write failed")
    if code is ReasonCode.INCOMPLETE_PLAN:
        return "the plan lacks the bucket or region the write needs"
    if code is ReasonCode.INTERNAL:
        return "an internal error (see the function log)"
    failed = _verification_words(reason)
    if code is ReasonCode.SUPERSEDED:
        bound = binding_words(reason.bound, route) if reason.bound else "another certificate"
        return (
            f"the domain has {bound} now, not ours (changed by another run?),"
            f" so it is not rolled back; {failed}"
        )
    if code is ReasonCode.ROLLBACK_FAILED:
        return f"{failed}; rollback {_error_words(reason, 'failed')}"
    return failed  # VERIFY_FAILED


def _verification_words(reason: Reason) -> str:
    waited = f" after {reason.waited:.1f}s" if reason.waited is not None else ""
    return f"verification failed{waited}: {reason.problem or 'not verified'}"


def _error_words(reason: Reason, fallback: str) -> str:
    if reason.error is None:
        return fallback
    return f"{reason.error.action} failed: {reason.error.code}"


def binding_words(binding: Binding, route: Route | None) -> str:
    """What a re-read found bound, in words."""
    if binding.state is BindingState.CERTIFICATE:
        return f"certificate {binding.cert}"
    if binding.state is BindingState.NO_ID:
        if route is Route.OSS:
            return "a certificate without CertId"
        return f"a {binding.cert_type or 'non-CAS'} certificate without CAS id"
    if binding.state is BindingState.UNBOUND:
        return f"no binding to bucket {binding.bucket}"
    return "HTTPS off" if route is Route.CDN else "no certificate"


def note_words(note: Note, route: Route | None = None) -> str:
    """What a re-read showed, in words."""
    error = f"{note.error.action} answered {note.error.code}"
    bound = binding_words(note.bound, route) if note.bound else "?"
    if note.kind is NoteKind.APPLIED_DESPITE_ERROR:
        return f"{error}, yet the domain has {bound}"
    if note.kind is NoteKind.OTHER_BOUND:
        return f"re-read: the domain has {bound}, not ours"
    if note.kind is NoteKind.OUTCOME_UNKNOWN:
        reread = f"{note.reread.action}: {note.reread.code}" if note.reread else "?"
        return (
            f"{error} and re-reading the binding failed ({reread}): whether the write was"
            " applied is unknown, so it was verified as if written"
        )
    if note.kind is NoteKind.BUSY_WAITED:
        return (
            f"{note.error.action} answered {note.error.code} {note.count or 0} times first"
            " (the domain was configuring an earlier change)"
        )
    if note.kind is NoteKind.BINDING_UNKNOWN:
        return (
            f"the binding before the rollback was unknown ({note.error.action}:"
            f" {note.error.code}): rolled back to the state the plan saw"
        )
    return f"rollback {error}, yet it was applied"  # ROLLBACK_APPLIED


def result_words(result: DomainResult) -> str:
    """Why a domain ended as it did, in words (reason, rollback, re-read notes)."""
    parts = [reason_words(result.reason, result.route)]
    if result.outcome is Outcome.ROLLED_BACK:
        parts.append(_rollback_words(result))
    elif result.rollback is Rollback.NONE and result.outcome is Outcome.FAILED:
        parts.append("the previous certificate is not held in CAS and cannot be restored")
    parts.extend(note_words(note, result.route) for note in result.notes)
    return "; ".join(parts)


def _rollback_words(result: DomainResult) -> str:
    restore = result.rollback is Rollback.RESTORE
    text = (
        f"restored certificate {result.previous_cert_id}"
        if restore
        else "removed the certificate (the domain had none)"
    )
    if result.restored_verified:
        return text + (
            ", and the edge serves it" if restore else ", and the edge no longer serves the new one"
        )
    return text + f"; not confirmed at the edge: {result.restore_problem or 'not probed'}"
