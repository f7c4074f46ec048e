"""enforce-https's typed report and its JSON summary, words rendered at the edge.

A run ends with one `DomainResult` per target domain and one `BucketResult` per
bucket it judged. Outcomes and reasons are enums with typed facts; `render` turns
them into the summary (`reason` the stable code, `detail` the sentence for people).
Nothing reads these words back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from certpilot.core.findings import Finding
from certpilot.jobs.enforce_https.cdn_apply import FeatureResult
from certpilot.jobs.enforce_https.guard import Blocker
from certpilot.jobs.enforce_https.policy import Refusal

FUNCTION = "enforce-https"


class EnforceStatus(str, enum.Enum):
    """How a whole enforce-https run ended."""

    ENFORCED = "enforced"  # something was written, everything asked for is enforced
    NOTHING_TO_DO = "nothing-to-do"  # everything was already enforced (duplicate event)
    PARTIAL = "partial"  # some enforced, some not (blocked, no certificate, failed)
    NOT_ENFORCED = "not-enforced"  # nothing could be enforced
    DRY_RUN = "dry-run"

    @property
    def ok(self) -> bool:
        """The summary's `ok` (a dry run did what it was asked: it planned)."""
        return self in (EnforceStatus.ENFORCED, EnforceStatus.NOTHING_TO_DO, EnforceStatus.DRY_RUN)


class DomainOutcome(str, enum.Enum):
    """How one domain ended."""

    ENFORCED = "enforced"  # changed by this run, verified from outside
    ALREADY_ENFORCED = "already-enforced"  # nothing to write, verified from outside
    NOT_ENFORCED = "not-enforced"  # left serving HTTP, for the reason given
    SKIPPED = "skipped"  # not ours to touch (opted out, bucket domain, not found)
    FAILED = "failed"  # a write failed or the edge did not show the result
    PLANNED = "planned"  # dry run


class DomainReason(str, enum.Enum):
    """Why a domain ended as it did."""

    VERIFIED = "verified"  # HTTPS verified live; HTTP redirected / denied
    NO_CERTIFICATE = "no-certificate"  # no valid CAS certificate covers it
    CERTIFICATE_NOT_DEPLOYED = "certificate-not-deployed"  # candidates tried, none verified
    OPTED_OUT = "opted-out"  # CERTPILOT_ENFORCE_SKIP_DOMAINS
    BUCKET_DOMAIN = "bucket-domain"  # Alibaba's own name: never touched
    NOT_FOUND = "not-found"  # neither an OSS custom domain nor a CDN domain with OSS origin
    CDN_STATUS = "cdn-status"  # the CDN domain is not online
    FEATURES_FAILED = "features-failed"  # a CDN feature write was refused or not confirmed
    BUCKET_NOT_ENFORCED = "bucket-not-enforced"  # an OSS domain whose bucket stays open
    EDGE_CHECK_FAILED = "edge-check-failed"  # the edge does not answer as enforced
    WOULD_ENFORCE = "would-enforce"  # dry run
    FALLBACK_ACTIVE = "fallback-active"  # an emergency HTTP fallback is on: left until it ends


class BucketOutcome(str, enum.Enum):
    """How one bucket's policy ended."""

    ENFORCED = "enforced"  # our statement written and read back
    ALREADY_ENFORCED = "already-enforced"  # already there: nothing written
    BLOCKED = "blocked"  # a domain still needs HTTP: untouched (ENFORCEMENT_BLOCKED)
    UNMERGEABLE = "unmergeable"  # the policy cannot take ours: untouched (POLICY_UNMERGEABLE)
    SKIPPED = "skipped"  # opted out (CERTPILOT_ENFORCE_SKIP_BUCKETS)
    FAILED = "failed"  # a write failed or other writers kept replacing the document
    PLANNED = "planned"  # dry run


@dataclass(frozen=True)
class EdgeCheck:
    """What the edge answered a visitor after enforcement."""

    http_status: int | None = None
    http_location: str | None = None
    https_status: int | None = None
    hsts: str | None = None  # the Strict-Transport-Security header over HTTPS
    problem: str = ""  # "" when it answers as enforced

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "httpStatus": self.http_status,
            "httpLocation": self.http_location,
            "httpsStatus": self.https_status,
            "hsts": self.hsts,
            "ok": not self.problem,
            **({"problem": self.problem} if self.problem else {}),
        }


@dataclass(frozen=True)
class DomainResult:
    """One target domain: outcome, reason and the typed facts behind them."""

    domain: str
    route: str | None
    bucket: str | None
    outcome: DomainOutcome
    reason: DomainReason
    certificate: int | None = None  # CAS id deployed (or planned) by this run
    features: FeatureResult | None = None
    check: EdgeCheck | None = None
    cdn_status: str | None = None
    error_code: str | None = None
    planned: Mapping[str, Any] = field(default_factory=dict)  # dry run: what would change


@dataclass(frozen=True)
class BucketResult:
    """One bucket judged by the guard, and what happened to its policy."""

    bucket: str
    region: str | None
    outcome: BucketOutcome
    blockers: tuple[Blocker, ...] = ()
    origins_switched: tuple[str, ...] = ()
    refusal: Refusal | None = None
    rounds: int = 0
    fallback_until: datetime | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class EnforceReport:
    """What one enforce-https run did, typed."""

    status: EnforceStatus
    request_id: str | None
    event: Mapping[str, Any]
    domains: tuple[DomainResult, ...] = ()
    buckets: tuple[BucketResult, ...] = ()
    findings: tuple[Finding, ...] = ()


_DOMAIN_WORDS = {
    DomainReason.VERIFIED: "HTTPS verified live; plain HTTP no longer served",
    DomainReason.NO_CERTIFICATE: "no valid certificate in CAS covers it: HTTP left as it is",
    DomainReason.CERTIFICATE_NOT_DEPLOYED: "no candidate certificate could be deployed"
    " and verified: HTTP left as it is",
    DomainReason.OPTED_OUT: "opted out of enforcement (the domain or its bucket is listed in"
    " CERTPILOT_ENFORCE_SKIP_DOMAINS / CERTPILOT_ENFORCE_SKIP_BUCKETS)",
    DomainReason.BUCKET_DOMAIN: "a bucket domain: Alibaba manages it",
    DomainReason.NOT_FOUND: "not an OSS custom domain nor a CDN domain with an OSS origin",
    DomainReason.CDN_STATUS: "the CDN domain is not online: nothing changed",
    DomainReason.FEATURES_FAILED: "the CDN HTTPS features could not be applied and confirmed",
    DomainReason.BUCKET_NOT_ENFORCED: "its bucket's policy was not written (see buckets)",
    DomainReason.EDGE_CHECK_FAILED: "the edge does not answer as enforced",
    DomainReason.WOULD_ENFORCE: "would be enforced (dry run)",
    DomainReason.FALLBACK_ACTIVE: "an emergency HTTP fallback is on (FALLBACK_ACTIVE): left"
    " as it is until it ends",
}

_BUCKET_WORDS = {
    BucketOutcome.ENFORCED: "HTTPS-only statement written and read back",
    BucketOutcome.ALREADY_ENFORCED: "HTTPS-only statement already in place",
    BucketOutcome.BLOCKED: "left as it is: a domain still needs HTTP",
    BucketOutcome.UNMERGEABLE: "left as it is: the policy cannot take the statement",
    BucketOutcome.SKIPPED: "opted out of enforcement (CERTPILOT_ENFORCE_SKIP_BUCKETS)",
    BucketOutcome.FAILED: "the policy could not be written",
    BucketOutcome.PLANNED: "planned (dry run)",
}


def domain_dict(result: DomainResult) -> dict[str, Any]:
    """One domain's entry of the summary."""
    facts: dict[str, Any] = {"code": result.reason.value}
    if result.certificate is not None:
        facts["certId"] = result.certificate
    if result.cdn_status is not None:
        facts["cdnStatus"] = result.cdn_status
    if result.error_code is not None:
        facts["errorCode"] = result.error_code
    if result.features is not None:
        f = result.features
        facts["features"] = {
            "outcome": f.outcome.value,
            "set": [n.value for n in f.set],
            "deleted": list(f.deleted),
            "missing": [n.value for n in f.missing],
            **({"errorCode": f.error_code} if f.error_code else {}),
            **({"busyRefusals": f.busy_refusals} if f.busy_refusals else {}),
        }
    if result.check is not None:
        facts["edge"] = result.check.to_dict()
    if result.planned:
        facts["plan"] = dict(result.planned)
    detail = _DOMAIN_WORDS[result.reason]
    if result.check is not None and result.check.problem:
        detail = f"{detail}: {result.check.problem}"
    return {
        "domain": result.domain,
        "route": result.route,
        "bucket": result.bucket,
        "outcome": result.outcome.value,
        "reason": result.reason.value,
        "detail": detail,
        "facts": facts,
    }


def bucket_dict(result: BucketResult) -> dict[str, Any]:
    """One bucket's entry of the summary."""
    facts: dict[str, Any] = {}
    if result.blockers:
        facts["blockers"] = [
            {"domain": b.domain, "reason": b.reason.value} for b in result.blockers
        ]
    if result.origins_switched:
        facts["originsSwitched"] = list(result.origins_switched)
    if result.refusal is not None:
        facts["refusal"] = result.refusal.value
    if result.rounds:
        facts["rounds"] = result.rounds
    if result.fallback_until is not None:
        facts["fallbackUntil"] = result.fallback_until.isoformat()
    if result.error_code is not None:
        facts["errorCode"] = result.error_code
    detail = _BUCKET_WORDS[result.outcome]
    if result.blockers:
        names = ", ".join(f"{b.domain} ({b.reason.value})" for b in result.blockers)
        detail = f"{detail}: {names}"
    return {
        "bucket": result.bucket,
        "region": result.region,
        "outcome": result.outcome.value,
        "detail": detail,
        "facts": facts,
    }


def _counts(values: Iterable[enum.Enum], every: Iterable[enum.Enum]) -> dict[str, int]:
    counts = {str(v.value): 0 for v in every}
    for value in values:
        counts[str(value.value)] += 1
    return counts


def render(report: EnforceReport) -> dict[str, Any]:
    """The JSON summary (docs/enforce-https.md): `ok`, `status`, `counts`, `domains`,
    `buckets`, `findings`."""
    return {
        "function": FUNCTION,
        "requestId": report.request_id,
        "event": dict(report.event),
        "ok": report.status.ok,
        "status": report.status.value,
        "counts": {
            "domains": _counts((d.outcome for d in report.domains), DomainOutcome),
            "buckets": _counts((b.outcome for b in report.buckets), BucketOutcome),
        },
        "domains": [domain_dict(d) for d in report.domains],
        "buckets": [bucket_dict(b) for b in report.buckets],
        "findings": [f.to_dict() for f in report.findings],
    }
