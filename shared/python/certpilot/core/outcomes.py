"""How jobs end, per domain and per run: outcomes, reasons and run statuses as typed values.

A `Reason` is a `ReasonCode` plus the typed facts that explain it (the finding code a
certificate fails on, the CDN domain's status, what is bound now, the cloud error).
Its `wire` form (`candidate-invalid:CERT_EXPIRED`, `cdn-status:offline`, ...) is the
stable code the JSON summary shows; the words for people are rendered from the fields
at the edge (`certpilot.jobs.deploy_cert.summary`, `certpilot.cli.render`). Nothing
reads a reason back from text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from certpilot.core.findings import Code


class Outcome(str, enum.Enum):
    """How one domain ended."""

    DEPLOYED = "deployed"
    ALREADY_CURRENT = "already-current"
    SKIPPED = "skipped"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"

    def __str__(self) -> str:
        return self.value


class RunStatus(str, enum.Enum):
    """How a whole invocation ended (the summary's `status`)."""

    DEPLOYED = "deployed"  # every action deployed and verified
    NOTHING_TO_DO = "nothing-to-do"  # no domain needed the certificate (e.g. duplicate event)
    SUPERSEDED = "superseded"  # every target got another run's certificate meanwhile
    PARTIAL = "partial"  # some domains failed or were rolled back, others deployed
    FAILED = "failed"  # every action failed or was rolled back
    REFUSED = "refused"  # the certificate is unusable: nothing changed
    NOT_FOUND = "not-found"  # CAS does not hold the certificate
    DRY_RUN = "dry-run"  # planned only
    REJECTED = "rejected"  # the event was not accepted
    ERROR = "error"  # configuration or cloud error before any change

    def __str__(self) -> str:
        return self.value

    @property
    def ok(self) -> bool:
        """Whether a run that ended so did what it was asked (the summary's `ok`)."""
        return self in _OK_STATUSES


_OK_STATUSES = frozenset({RunStatus.DEPLOYED, RunStatus.NOTHING_TO_DO, RunStatus.SUPERSEDED})


class ReasonCode(str, enum.Enum):
    """Why a domain was deployed to, left alone, or ended as it did."""

    # Why the certificate goes to a domain (plan actions).
    NO_CERTIFICATE = "no-certificate"
    CURRENT_INVALID = "current-invalid"  # `finding`: what is wrong with the current one
    CURRENT_NOT_COVERING = "current-not-covering"
    EXPIRES_LATER = "expires-later"
    # Why a domain is left alone (plan skips).
    BUCKET_DOMAIN = "bucket-domain"
    ALREADY_CURRENT = "already-current"
    CURRENT_EXPIRES_LATER = "current-expires-later"
    CURRENT_EXPIRY_UNKNOWN = "current-expiry-unknown"
    CURRENT_NOT_DUE = "current-not-due"
    NOT_COVERED = "not-covered"  # `finding`: WILDCARD_LEVEL / NAME_MISMATCH (near misses)
    CANDIDATE_INVALID = "candidate-invalid"  # `findings`: every refusing code
    PREVIOUS_UNKNOWN = "previous-unknown"  # `blocked`: the replacement it stops, if any
    CDN_STATUS = "cdn-status"  # `cdn_status`
    SERVED_MISMATCH = "served-mismatch"  # `finding`: why browsers reject what is served
    # How a write ended (apply).
    OUT_OF_TIME = "out-of-time"  # not written: too little of the run's time left
    BUSY = "busy"  # not written: the domain stayed busy (ServiceBusy, `error`, `waited`)
    SUPERSEDED = "superseded"  # another certificate was bound after ours: left as it is
    WRITE_FAILED = "write-failed"  # the cloud refused the write (`error`)
    VERIFY_FAILED = "verify-failed"  # the edge did not serve it (`problem`)
    ROLLBACK_FAILED = "rollback-failed"  # verification failed and so did the rollback
    INCOMPLETE_PLAN = "incomplete-plan"  # the action lacked what its write needs
    INTERNAL = "internal"  # a bug in this domain's handling (the others carried on)

    def __str__(self) -> str:
        return self.value


# Codes whose wire form carries a suffix: `<code>:<suffix>`.
_SUFFIXED = frozenset(
    {ReasonCode.CURRENT_INVALID, ReasonCode.CANDIDATE_INVALID, ReasonCode.CDN_STATUS}
)


class BindingState(str, enum.Enum):
    """What the control plane says a domain has bound."""

    CERTIFICATE = "certificate"  # a certificate with a CAS id / CertId (`Binding.cert`)
    NO_ID = "no-id"  # a certificate without CAS id / CertId (an upload, a free one)
    NONE = "none"  # no certificate (OSS) / HTTPS off (CDN)
    UNBOUND = "unbound"  # the OSS domain is no longer bound to its bucket

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Binding:
    """A domain's binding as re-read from the control plane."""

    state: BindingState
    cert: str | None = None  # OSS CertId `<id>-<region>` / CDN CAS id as text
    cert_type: str | None = None  # for NO_ID: the service's certificate type
    bucket: str | None = None  # for UNBOUND: the bucket it was bound to

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"state": self.state.value, "cert": self.cert}


@dataclass(frozen=True)
class CallError:
    """A cloud call that failed: the API action and the service's error code."""

    action: str
    code: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"action": self.action, "code": self.code}


class NoteKind(str, enum.Enum):
    """What a re-read of the binding showed around a write or a rollback."""

    APPLIED_DESPITE_ERROR = "applied-despite-error"  # the write raised, yet ours is bound
    OTHER_BOUND = "other-bound"  # the write raised, and another certificate is bound
    OUTCOME_UNKNOWN = "outcome-unknown"  # the write raised and the re-read failed too
    BINDING_UNKNOWN = "binding-unknown"  # the re-read before a CDN rollback failed
    ROLLBACK_APPLIED = "rollback-applied"  # the rollback raised, yet it was applied
    BUSY_WAITED = "busy-waited"  # the call was refused as busy `count` times first

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Note:
    """One thing a re-read showed: which call answered what, and what was bound."""

    kind: NoteKind
    error: CallError  # the call that raised
    reread: CallError | None = None  # the re-read that failed too (OUTCOME_UNKNOWN)
    bound: Binding | None = None  # what the re-read found
    count: int | None = None  # BUSY_WAITED: how many busy answers came first

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        data: dict[str, object] = {
            "kind": self.kind.value,
            "error": self.error.to_dict(),
            "reread": self.reread.to_dict() if self.reread else None,
            "bound": self.bound.to_dict() if self.bound else None,
        }
        if self.count is not None:
            data["count"] = self.count
        return data


@dataclass(frozen=True)
class Reason:
    """Why: a code and the typed facts behind it (each field used by the codes that
    say so in `ReasonCode`)."""

    code: ReasonCode
    finding: Code | None = None
    findings: tuple[Code, ...] = ()
    cdn_status: str | None = None
    cert_id: int | None = None  # ALREADY_CURRENT: the certificate; CURRENT_*: the current one
    current_expires: datetime | None = None
    candidate_expires: datetime | None = None
    name: str | None = None  # NOT_COVERED: the certificate name that misses
    blocked: Reason | None = None  # PREVIOUS_UNKNOWN: the replacement it stops
    served_sha256: str | None = None  # SERVED_MISMATCH: the served leaf
    error: CallError | None = None  # WRITE_FAILED / ROLLBACK_FAILED
    bound: Binding | None = None  # SUPERSEDED: what the domain has now
    problem: str | None = None  # VERIFY_FAILED / SUPERSEDED / ...: what the probe saw
    waited: float | None = None  # VERIFY_FAILED / ...: seconds verification watched the edge

    @property
    def wire(self) -> str:
        """The stable code string of the summary (`candidate-invalid:CERT_EXPIRED`,
        `cdn-status:offline`, `expires-later`, ...)."""
        if self.code not in _SUFFIXED:
            return self.code.value
        if self.code is ReasonCode.CDN_STATUS:
            suffix = self.cdn_status or ""
        elif self.code is ReasonCode.CANDIDATE_INVALID:
            suffix = self.findings[0].value if self.findings else ""
        else:
            suffix = self.finding.value if self.finding else ""
        return f"{self.code.value}:{suffix}"

    def __str__(self) -> str:
        return self.wire
