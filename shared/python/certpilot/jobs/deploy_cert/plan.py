"""Decide where one certificate goes (DESIGN §5): pure, no I/O, no clock reads.

`plan_certificate(cert, inventory, now, policy, catalog)` returns a frozen `Plan`:
the domains to deploy to (`actions`), the covered (or nearly covered) domains left
alone with a named reason (`skipped`), and the findings about the certificate.
A certificate that is expired, not yet valid, chain-incomplete, revoked or otherwise
unusable in a browser is refused: findings, every covered domain skipped with
`candidate-invalid:<CODE>` (`ReasonCode.CANDIDATE_INVALID` with every refusing code), and
no actions.

A current certificate is replaced when it is invalid, or when the candidate expires
later and the current one is held in CAS (so a failed verification can restore it).
One that CAS does not hold (an upload) is replaced only once it is invalid.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from certpilot.core.certref import CertRef
from certpilot.core.findings import Code, Finding, make_finding
from certpilot.core.model import (
    Catalog,
    CatalogCert,
    DeployedCert,
    DomainRecord,
    EdgeObservation,
    Inventory,
    Route,
)
from certpilot.core.names import InvalidHostname, covers, normalize_hostname, wildcard_level_off
from certpilot.core.outcomes import Reason, ReasonCode


class Rollback(str, enum.Enum):
    """What a failed verification does, recorded on each action before anything changes."""

    RESTORE = "restore"  # bind / set the previous CAS certificate again
    REMOVE = "remove"  # OSS DeleteCertificate / CDN SSL off: there was none
    NONE = "none"  # the previous certificate is not in CAS: cannot be restored

    def __str__(self) -> str:
        return self.value


# Findings about the candidate itself that make browsers reject it: refuse to deploy.
REFUSING_CODES = frozenset(
    {
        Code.CERT_EXPIRED,
        Code.CERT_NOT_YET_VALID,
        Code.CERT_REVOKED,
        Code.CHAIN_INCOMPLETE,
        Code.UNTRUSTED_ROOT,
        Code.WEAK_KEY,
        Code.WEAK_SIGNATURE,
        Code.KEY_MISMATCH,
        Code.NOT_PEM,  # CAS's certificate text does not parse: nothing a browser could use
    }
)
# Date problems are judged here with `now`, never taken from the catalog's snapshot.
_DATE_CODES = frozenset({Code.CERT_EXPIRED, Code.CERT_NOT_YET_VALID, Code.CERT_EXPIRING})
# CDN domain states in which the certificate cannot be configured or verified: a paused
# (offline / stopping) domain serves nothing at the edge, so a write could never verify.
CDN_PAUSED_STATES = frozenset({"offline", "stopping"})
_CDN_BLOCKED_STATES = CDN_PAUSED_STATES | frozenset(
    {"checking", "check_failed", "deleting", "configure_failed"}
)
# Skips that a live probe of the served certificate may overturn (`plan_certificate`'s
# `served`): the current certificate looks fine to the control plane.
RECHECK_REASONS = frozenset(
    {
        ReasonCode.CURRENT_EXPIRES_LATER,
        ReasonCode.CURRENT_EXPIRY_UNKNOWN,
        ReasonCode.CURRENT_NOT_DUE,
        ReasonCode.PREVIOUS_UNKNOWN,
    }
)


@dataclass(frozen=True)
class Policy:
    """Knobs of the decision.

    `replace_only_when_due`: when False (deploy-cert: a certificate was just issued)
    a valid current certificate is replaced by any later-expiring one; when True
    (sweeps) only inside the renewal window of `renew_days` (`CERTPILOT_RENEW_DAYS`).
    A candidate that itself expires inside that window gets a CERT_EXPIRING finding.
    """

    renew_days: int = 30
    replace_only_when_due: bool = False


@dataclass(frozen=True)
class Action:
    """Put the certificate on one domain, and how to undo it.

    `previous` is the certificate there now (None: none) with its dates from the
    catalog when CAS holds it; `rollback` says what a failed verification does.
    """

    domain: str
    route: Route  # OSS or CDN
    bucket: str | None
    region: str | None
    cas_id: int
    identifier: str  # `<id>-<region>`: OSS CertId
    cert_region: str  # CDN CertRegion
    reason: Reason
    previous: DeployedCert | None
    # OSS PreviousCertId; None: the domain has none. certpilot never sends Force: a first
    # binding sends neither, so a binding someone made meanwhile fails the write as a
    # conflict instead of being overwritten.
    previous_identifier: str | None
    rollback: Rollback
    api_name: str | None = None  # the domain as the service spells it (`.example.org`)
    edge_host: str | None = None  # where live probes connect (`DomainRecord.edge_host`)

    @property
    def previous_cas_id(self) -> int | None:
        """The CAS id of the certificate there now (None: none, or not held in CAS)."""
        return self.previous.cas_id if self.previous is not None else None


@dataclass(frozen=True)
class Skip:
    """A domain the certificate covers (or nearly covers) that is left alone."""

    domain: str
    reason: Reason
    route: Route | None = None


@dataclass(frozen=True)
class Plan:
    """What deploying one certificate would do, decided at `now`."""

    cert: CatalogCert
    now: datetime
    actions: tuple[Action, ...]
    skipped: tuple[Skip, ...]
    findings: tuple[Finding, ...] = field(default=())
    refused: bool = False


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def certificate_findings(cert: CatalogCert, now: datetime) -> tuple[Finding, ...]:
    """What is wrong with the certificate itself at `now` (empty when usable).

    Dates and revocation are judged here; other problems come from the catalog's
    validation (`cert.problems`), with the pre-write check's own findings (and their
    messages) where it made them (`cert.findings`).
    """
    subject = cert.common_name or cert.name
    found: list[Finding] = []
    if now > cert.not_after:  # RFC 5280: notAfter is the last valid instant
        found.append(
            make_finding(
                Code.CERT_EXPIRED,
                subject,
                f"certificate {cert.cas_id} expired on {_iso(cert.not_after)}",
            )
        )
    elif now < cert.not_before:
        found.append(
            make_finding(
                Code.CERT_NOT_YET_VALID,
                subject,
                f"certificate {cert.cas_id} is not valid before {_iso(cert.not_before)}",
            )
        )
    if cert.revoked:
        found.append(
            make_finding(Code.CERT_REVOKED, subject, f"certificate {cert.cas_id} is revoked")
        )
    problems = list(cert.problems)
    if not cert.chain_complete and Code.CHAIN_INCOMPLETE not in problems:
        problems.append(Code.CHAIN_INCOMPLETE)
    for code in problems:
        if any(f.code is code for f in found):
            continue
        checked = [f for f in cert.findings if f.code is code]
        if checked:
            # An intermediate's dates are the check's to judge; the leaf's are judged above.
            found += checked
        elif code not in _DATE_CODES:
            found.append(make_finding(code, subject, f"certificate {cert.cas_id}: {code.meaning}"))
    return tuple(found)


def expiring_findings(cert: CatalogCert, now: datetime, renew_days: int) -> tuple[Finding, ...]:
    """CERT_EXPIRING (a warning: it is still deployed) when `cert` is valid at `now` but
    expires within `renew_days` days, as `diagnose-cert --renew-days` judges it."""
    if not cert.not_before <= now <= cert.not_after:
        return ()
    if cert.not_after - now > timedelta(days=renew_days):
        return ()
    detail = (
        f"certificate {cert.cas_id} expires on {_iso(cert.not_after)},"
        f" inside the renewal window of {renew_days} days"
    )
    return (make_finding(Code.CERT_EXPIRING, cert.common_name or cert.name, detail),)


def refusal_codes(findings: tuple[Finding, ...]) -> tuple[Code, ...]:
    """The codes among `findings` that forbid deploying the certificate."""
    return tuple(f.code for f in findings if f.code in REFUSING_CODES)


def plan_certificate(
    cert: CatalogCert,
    inventory: Inventory,
    now: datetime,
    policy: Policy | None = None,
    catalog: Catalog | None = None,
    served: Mapping[str, EdgeObservation] | None = None,
) -> Plan:
    """Decide, for every domain of `inventory`, whether `cert` goes there.

    `catalog` (optional) lets the plan see the SANs and revocation of the certificates
    deployed now (by CAS id), and their exact dates. `served` (optional) maps a domain
    to what a live probe saw its edge serve (fingerprints) and what browsers reject in
    it (e.g. WEAK_KEY). A rejection can overturn only a skip of `RECHECK_REASONS`, and
    counts against the current certificate only when the served fingerprint is the
    configured one's (the catalog's SHA-256 for its CAS id, or the fingerprint the
    service reports): then the current certificate is invalid. When it is another
    certificate, the domain is skipped as `served-mismatch`; when the configured
    fingerprint is unknown, the observation is ignored. Never raises for data it
    cannot use: such domains are skipped with a reason. `findings` are the
    certificate's own, then per covered domain a WRONG_LOCATION (a CDN domain that
    also has a certificate on OSS) and a SERVED_MISMATCH (`served_mismatch`: a domain
    left alone, whatever the reason, whose edge serves another certificate than the
    configured one).
    """
    policy = policy or Policy()
    findings = certificate_findings(cert, now) + expiring_findings(cert, now, policy.renew_days)
    refusing = refusal_codes(findings)
    actions: list[Action] = []
    skipped: list[Skip] = []
    located: list[Finding] = []
    for record in sorted(inventory.domains, key=lambda r: r.name):
        if not domain_covered(cert.sans, record.name):
            near = _near_miss(cert.sans, record.name)
            if near is not None:
                skipped.append(Skip(record.name, near, record.route))
            continue
        wrong = wrong_location(record)
        if wrong is not None:
            located.append(wrong)
        if record.route is Route.BUCKET_DOMAIN:
            skipped.append(Skip(record.name, Reason(ReasonCode.BUCKET_DOMAIN), record.route))
            continue
        observed = (served or {}).get(record.name)
        if refusing:
            skipped.append(
                Skip(
                    record.name,
                    Reason(ReasonCode.CANDIDATE_INVALID, findings=refusing),
                    record.route,
                )
            )
        else:
            decision = _decide(cert, record, now, policy, catalog, observed)
            if isinstance(decision, Action):
                actions.append(decision)
                continue
            skipped.append(decision)
        mismatch = served_mismatch(record, observed, catalog, cert)
        if mismatch is not None:
            located.append(mismatch)
    return Plan(
        cert=cert,
        now=now,
        actions=tuple(actions),
        skipped=tuple(skipped),
        findings=findings + tuple(located),
        refused=bool(refusing),
    )


def served_mismatch(
    record: DomainRecord,
    observed: EdgeObservation | None,
    catalog: Catalog | None,
    cert: CatalogCert | None = None,
) -> Finding | None:
    """SERVED_MISMATCH when a live probe saw `record`'s edge serve another certificate
    than the one configured there, with both SHA-256 fingerprints as fields; else None.

    The configured certificate is the catalog's (by CAS id) or `cert` when it is the
    one bound; None too when what is configured or served cannot be told (no probe, no
    known fingerprint: a SHA-1 the service reports is compared, but a SHA-256 is what
    the finding carries, empty when unknown).
    """
    current = record.deployed
    if observed is None or current is None or observed.sha256 is None:
        return None
    configured = _configured_fingerprints(current, catalog, cert)
    sha256 = next((f for f in sorted(configured) if len(f) == 64), None)
    sha1 = next((f for f in sorted(configured) if len(f) == 40), None)
    # Like with like: a SHA-1 the service reports says nothing about a served SHA-256.
    if not ((sha256 and observed.sha256) or (sha1 and observed.sha1)):
        return None
    if observed.sha256 in configured or observed.sha1 in configured:
        return None
    which = f"certificate {current.cas_id}" if current.cas_id is not None else "the configured one"
    rejected = f"; browsers reject it ({observed.problem.value})" if observed.problem else ""
    return make_finding(
        Code.SERVED_MISMATCH,
        record.name,
        f"the edge serves another certificate than {which}{rejected}",
        configured=sha256,
        served=observed.sha256,
    )


def wrong_location(record: DomainRecord) -> Finding | None:
    """WRONG_LOCATION when a CDN-routed domain also has a certificate hosted on OSS
    (DESIGN §4: the traffic goes through CDN, so the OSS one is never served), else None.
    """
    if record.route is not Route.CDN or record.oss_hosted is None:
        return None
    hosted = record.oss_hosted
    which = f"certificate {hosted.cas_id}" if hosted.cas_id is not None else "a certificate"
    return make_finding(
        Code.WRONG_LOCATION,
        record.name,
        f"{which} is hosted on OSS for {record.name}, but its traffic goes through CDN:"
        " browsers never see it (the CDN certificate is what counts)",
    )


def domain_covered(sans: tuple[str, ...], domain: str) -> bool:
    """True when the certificate names `sans` cover `domain`.

    A wildcard domain (a CDN domain such as `*.example.com`) is covered only by the
    same wildcard: it serves every name one label below.
    """
    if domain.startswith("*."):
        try:
            base = normalize_hostname(domain[2:])
        except InvalidHostname:
            return False
        return f"*.{base}" in {s.lower() for s in sans}
    return covers(sans, domain)


def _near_miss(sans: tuple[str, ...], name: str) -> Reason | None:
    """Why a related domain is not covered (None when it is simply another name)."""
    try:
        host = normalize_hostname(name[2:] if name.startswith("*.") else name)
    except InvalidHostname:
        return None
    off = wildcard_level_off(sans, host)
    if off:
        return Reason(ReasonCode.NOT_COVERED, finding=Code.WILDCARD_LEVEL, name=off)
    for san in sans:
        parent = san.split(".", 1)[1] if "." in san else ""
        if parent and parent.count(".") >= 1 and (host == parent or host.endswith("." + parent)):
            return Reason(ReasonCode.NOT_COVERED, finding=Code.NAME_MISMATCH)
    return None


def _decide(
    cert: CatalogCert,
    record: DomainRecord,
    now: datetime,
    policy: Policy,
    catalog: Catalog | None,
    observed: EdgeObservation | None,
) -> Action | Skip:
    """Whether `cert` goes to the covered domain `record`, and why."""
    route = record.route
    if route is Route.CDN and record.cdn_status in _CDN_BLOCKED_STATES:
        return Skip(record.name, Reason(ReasonCode.CDN_STATUS, cdn_status=record.cdn_status), route)
    if record.deployed is None:
        return _action(cert, record, Reason(ReasonCode.NO_CERTIFICATE))
    current = _with_catalog_dates(record.deployed, catalog)
    record = replace(record, deployed=current)
    if _same_certificate(cert, current):
        return Skip(record.name, Reason(ReasonCode.ALREADY_CURRENT, cert_id=cert.cas_id), route)
    decision = _judge_current(cert, record, current, now, policy, catalog)
    if (
        observed is None
        or observed.problem is None
        or isinstance(decision, Action)
        or decision.reason.code not in RECHECK_REASONS
    ):
        return decision
    return _judge_observation(cert, record, current, catalog, observed, decision)


def _judge_current(
    cert: CatalogCert,
    record: DomainRecord,
    current: DeployedCert,
    now: datetime,
    policy: Policy,
    catalog: Catalog | None,
) -> Action | Skip:
    """Replace `current` when it is invalid, or when `cert` expires later and `current`
    could be restored; else skip with the reason."""
    route = record.route
    invalid = _current_problem(current, record.name, now, catalog)
    if invalid is not None:
        return _replacement(cert, record, invalid)
    if current.not_after is None:
        return Skip(record.name, Reason(ReasonCode.CURRENT_EXPIRY_UNKNOWN), route)
    if current.not_after >= cert.not_after:
        return Skip(
            record.name,
            Reason(
                ReasonCode.CURRENT_EXPIRES_LATER,
                cert_id=current.cas_id,
                current_expires=current.not_after,
                candidate_expires=cert.not_after,
            ),
            route,
        )
    if current.cas_id is None:
        # Not held in CAS: a failed verification could not put it back (and OSS
        # PutCname may not even know its PreviousCertId). Replaced once it is invalid.
        return Skip(record.name, Reason(ReasonCode.PREVIOUS_UNKNOWN), route)
    if policy.replace_only_when_due and current.not_after - now > timedelta(days=policy.renew_days):
        return Skip(
            record.name,
            Reason(
                ReasonCode.CURRENT_NOT_DUE,
                cert_id=current.cas_id,
                current_expires=current.not_after,
            ),
            route,
        )
    return _action(cert, record, Reason(ReasonCode.EXPIRES_LATER))


def _judge_observation(
    cert: CatalogCert,
    record: DomainRecord,
    current: DeployedCert,
    catalog: Catalog | None,
    observed: EdgeObservation,
    decision: Skip,
) -> Action | Skip:
    """Let a live probe's verdict overturn `decision` when it is about `current`."""
    configured = _configured_fingerprints(current, catalog)
    if not configured or observed.problem is None:
        return decision  # which certificate the edge serves cannot be told
    if observed.sha256 in configured or observed.sha1 in configured:
        return _replacement(
            cert, record, Reason(ReasonCode.CURRENT_INVALID, finding=observed.problem)
        )
    # A stale edge or DNS pointing elsewhere: the configured certificate is not to
    # blame and is left alone.
    return Skip(
        record.name,
        Reason(
            ReasonCode.SERVED_MISMATCH,
            finding=observed.problem,
            cert_id=current.cas_id,
            served_sha256=observed.sha256,
        ),
        record.route,
    )


def _configured_fingerprints(
    current: DeployedCert, catalog: Catalog | None, cert: CatalogCert | None = None
) -> frozenset[str]:
    """The fingerprints (SHA-256 from the catalog, or the service's own) of `current`;
    `cert` counts as the catalog's entry when it is the certificate bound."""
    found = set()
    known = catalog.by_id(current.cas_id) if catalog and current.cas_id is not None else None
    if known is None and cert is not None and _same_certificate(cert, current):
        known = cert
    if known is not None and known.fingerprint_sha256:
        found.add(_hex(known.fingerprint_sha256))
    reported = _hex(current.fingerprint)
    if len(reported) in (40, 64):  # SHA-1 (OSS) or SHA-256
        found.add(reported)
    return frozenset(found)


def _hex(fingerprint: str | None) -> str:
    return (fingerprint or "").replace(":", "").replace(" ", "").upper()


def _with_catalog_dates(current: DeployedCert, catalog: Catalog | None) -> DeployedCert:
    """`current` with its dates from the catalog when CAS holds it: exact instants,
    where the CDN listing gives zone-less local times."""
    known = catalog.by_id(current.cas_id) if catalog and current.cas_id is not None else None
    if known is None:
        return current
    return replace(current, not_after=known.not_after, not_before=known.not_before)


def _same_certificate(cert: CatalogCert, current: DeployedCert) -> bool:
    if current.cas_id is not None:
        return current.cas_id == cert.cas_id
    fingerprint = _hex(current.fingerprint)
    # Services report SHA-1 or SHA-256: only a SHA-256 can be compared with the catalog.
    return len(fingerprint) == 64 and fingerprint == _hex(cert.fingerprint_sha256)


def _invalid(code: Code) -> Reason:
    return Reason(ReasonCode.CURRENT_INVALID, finding=code)


def _current_problem(
    current: DeployedCert, domain: str, now: datetime, catalog: Catalog | None
) -> Reason | None:
    """`current-invalid` (with the finding code) / `current-not-covering` when the
    deployed one is broken, else None."""
    if current.not_after is not None and now > current.not_after:
        return _invalid(Code.CERT_EXPIRED)
    if current.not_before is not None and now < current.not_before:
        return _invalid(Code.CERT_NOT_YET_VALID)
    known = catalog.by_id(current.cas_id) if catalog and current.cas_id is not None else None
    if known is not None:
        if known.revoked:
            return _invalid(Code.CERT_REVOKED)
        if not domain_covered(known.sans, domain):
            return Reason(ReasonCode.CURRENT_NOT_COVERING, cert_id=known.cas_id)
        if not known.chain_complete:
            return _invalid(Code.CHAIN_INCOMPLETE)
        for code in known.problems:
            if code in REFUSING_CODES and code not in _DATE_CODES:
                return _invalid(code)
    return None


def _replacement(cert: CatalogCert, record: DomainRecord, reason: Reason) -> Action | Skip:
    """Replace an invalid current certificate, unless OSS could not be told which one
    is bound (PutCname checks PreviousCertId)."""
    current = record.deployed
    if (
        record.route is Route.OSS
        and current is not None
        and current.cas_id is None
        and not current.identifier
    ):
        # PutCname needs the bound certificate's CertId as PreviousCertId.
        return Skip(record.name, Reason(ReasonCode.PREVIOUS_UNKNOWN, blocked=reason), record.route)
    return _action(cert, record, reason)


def _action(cert: CatalogCert, record: DomainRecord, reason: Reason) -> Action:
    previous = record.deployed
    previous_identifier: str | None = None
    if previous is not None:
        # As the service reported it (an upload's id too), else built from the CAS id.
        previous_identifier = previous.identifier or (
            CertRef(previous.cas_id, previous.region).identifier
            if previous.cas_id is not None
            else None
        )
    if previous is None:
        rollback = Rollback.REMOVE
    elif previous.cas_id is not None:
        rollback = Rollback.RESTORE
    else:
        rollback = Rollback.NONE
    return Action(
        domain=record.name,
        route=record.route,
        bucket=record.bucket,
        region=record.region,
        cas_id=cert.cas_id,
        identifier=cert.identifier,
        cert_region=cert.region,
        reason=reason,
        previous=previous,
        previous_identifier=previous_identifier,
        rollback=rollback,
        api_name=record.api_name,
        edge_host=record.edge_host,
    )
