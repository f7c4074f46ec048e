"""Decide where one certificate goes (DESIGN §5): pure, no I/O, no clock reads.

`plan_certificate(cert, inventory, now, policy, catalog)` returns a frozen `Plan`:
the domains to deploy to (`actions`), the covered (or nearly covered) domains left
alone with a named reason (`skipped`), and the findings about the certificate.
A certificate that is expired, not yet valid, chain-incomplete, revoked or otherwise
unusable in a browser is refused: findings, every covered domain skipped with
`candidate-invalid:<CODE>`, and no actions.

A current certificate is replaced when it is invalid, or when the candidate expires
later and the current one is held in CAS (so a failed verification can restore it).
One that CAS does not hold (an upload) is replaced only once it is invalid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

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

# Skip reasons (stable: reports and tests use them).
BUCKET_DOMAIN = "bucket-domain"
ALREADY_CURRENT = "already-current"
CURRENT_EXPIRES_LATER = "current-expires-later"
CURRENT_EXPIRY_UNKNOWN = "current-expiry-unknown"
CURRENT_NOT_DUE = "current-not-due"
NOT_COVERED = "not-covered"
CANDIDATE_INVALID = "candidate-invalid"  # + ":<CODE>"
PREVIOUS_UNKNOWN = "previous-unknown"
CDN_STATUS = "cdn-status"  # + ":<status>"
SERVED_MISMATCH = "served-mismatch"  # the edge serves another certificate than configured

# Action reasons.
NO_CERTIFICATE = "no-certificate"
CURRENT_INVALID = "current-invalid"  # + ":<CODE>"
NOT_COVERING = "current-not-covering"
EXPIRES_LATER = "expires-later"

# Rollback strategies recorded on each action before anything changes.
ROLLBACK_RESTORE = "restore"  # bind / set the previous CAS certificate again
ROLLBACK_REMOVE = "remove"  # OSS DeleteCertificate / CDN SSL off: there was none
ROLLBACK_NONE = "none"  # the previous certificate is not in CAS: cannot be restored

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
_REFUSING_VALUES = frozenset(c.value for c in REFUSING_CODES)
_DATE_VALUES = frozenset(c.value for c in _DATE_CODES)
# CDN domain states in which the certificate cannot be configured or verified: a paused
# (offline / stopping) domain serves nothing at the edge, so a write could never verify.
CDN_PAUSED_STATES = frozenset({"offline", "stopping"})
_CDN_BLOCKED_STATES = CDN_PAUSED_STATES | frozenset(
    {"checking", "check_failed", "deleting", "configure_failed"}
)
# Skips that a live probe of the served certificate may overturn (`plan_certificate`'s
# `served`): the current certificate looks fine to the control plane.
RECHECK_REASONS = frozenset(
    {CURRENT_EXPIRES_LATER, CURRENT_EXPIRY_UNKNOWN, CURRENT_NOT_DUE, PREVIOUS_UNKNOWN}
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
    reason: str
    previous: DeployedCert | None
    # OSS PreviousCertId; None: the domain has none. certpilot never sends Force: a first
    # binding sends neither, so a binding someone made meanwhile fails the write as a
    # conflict instead of being overwritten.
    previous_identifier: str | None
    rollback: str  # restore | remove | none
    api_name: str | None = None  # the domain as the service spells it (`.example.org`)
    edge_host: str | None = None  # where live probes connect (`DomainRecord.edge_host`)

    @property
    def previous_cas_id(self) -> int | None:
        """The CAS id of the certificate there now (None: none, or not held in CAS)."""
        return self.previous.cas_id if self.previous is not None else None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        previous = self.previous
        return {
            "domain": self.domain,
            "route": self.route.value,
            "bucket": self.bucket,
            "region": self.region,
            "certId": self.cas_id,
            "certIdentifier": self.identifier,
            "reason": self.reason,
            "previousCertId": previous.cas_id if previous else None,
            "previousNotAfter": _iso(previous.not_after) if previous else None,
            "rollback": self.rollback,
        }


@dataclass(frozen=True)
class Skip:
    """A domain the certificate covers (or nearly covers) that is left alone."""

    domain: str
    reason: str
    detail: str = ""
    route: Route | None = None

    @property
    def code(self) -> str:
        """The reason without its detail suffix (`candidate-invalid:X` -> `candidate-invalid`)."""
        return self.reason.split(":", 1)[0]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "domain": self.domain,
            "route": self.route.value if self.route else None,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Plan:
    """What deploying one certificate would do, decided at `now`."""

    cert: CatalogCert
    now: datetime
    actions: tuple[Action, ...]
    skipped: tuple[Skip, ...]
    findings: tuple[Finding, ...] = field(default=())
    refused: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form of the dry run."""
        cert = self.cert
        return {
            "certificate": {
                "certId": cert.cas_id,
                "certIdentifier": cert.identifier,
                "name": cert.name,
                "commonName": cert.common_name,
                "sans": list(cert.sans),
                "issuer": cert.issuer,
                "notBefore": _iso(cert.not_before),
                "notAfter": _iso(cert.not_after),
                "fingerprintSha256": cert.fingerprint_sha256,
            },
            "now": _iso(self.now),
            "refused": self.refused,
            "actions": [a.to_dict() for a in self.actions],
            "skipped": [s.to_dict() for s in self.skipped],
            "findings": [f.to_dict() for f in self.findings],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def certificate_findings(cert: CatalogCert, now: datetime) -> tuple[Finding, ...]:
    """What is wrong with the certificate itself at `now` (empty when usable).

    Dates and revocation are judged here; other problems come from the catalog's
    validation (`cert.problems`), with the pre-write check's own findings (and their
    messages) where it made them (`cert.findings`). Unknown codes in `problems` are
    ignored.
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
    if not cert.chain_complete and Code.CHAIN_INCOMPLETE.value not in problems:
        problems.append(Code.CHAIN_INCOMPLETE.value)
    for problem in problems:
        try:
            code = Code(problem)
        except ValueError:
            continue
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
    to what a live probe found wrong with the certificate its edge serves (e.g.
    WEAK_KEY); it can overturn only a skip of `RECHECK_REASONS`. It counts against the
    current certificate only when the served fingerprint is the configured one's (the
    catalog's SHA-256 for its CAS id, or the fingerprint the service reports): then the
    current certificate is invalid. When it is another certificate, the domain is
    skipped as `served-mismatch` with a SERVED_MISMATCH finding; when the configured
    fingerprint is unknown, the observation is ignored. Never raises for data it
    cannot use: such domains are skipped with a reason. `findings` are the
    certificate's own, then a WRONG_LOCATION for each covered CDN domain that also has
    a certificate on OSS and a SERVED_MISMATCH for each domain skipped as such.
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
            if near:
                skipped.append(Skip(record.name, NOT_COVERED, near, record.route))
            continue
        wrong = wrong_location(record)
        if wrong is not None:
            located.append(wrong)
        if record.route is Route.BUCKET_DOMAIN:
            skipped.append(
                Skip(record.name, BUCKET_DOMAIN, "Alibaba manages bucket domains", record.route)
            )
            continue
        if refusing:
            code = refusing[0].value
            skipped.append(
                Skip(
                    record.name,
                    f"{CANDIDATE_INVALID}:{code}",
                    "certificate refused: " + ", ".join(c.value for c in refusing),
                    record.route,
                )
            )
            continue
        decision = _decide(cert, record, now, policy, catalog, (served or {}).get(record.name))
        if isinstance(decision, Skip):
            skipped.append(decision)
            if decision.reason == SERVED_MISMATCH:
                located.append(make_finding(Code.SERVED_MISMATCH, record.name, decision.detail))
        else:
            actions.append(decision)
    return Plan(
        cert=cert,
        now=now,
        actions=tuple(actions),
        skipped=tuple(skipped),
        findings=findings + tuple(located),
        refused=bool(refusing),
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


def _near_miss(sans: tuple[str, ...], name: str) -> str:
    """Why a related domain is not covered ("" when it is simply another name)."""
    try:
        host = normalize_hostname(name[2:] if name.startswith("*.") else name)
    except InvalidHostname:
        return ""
    off = wildcard_level_off(sans, host)
    if off:
        return f"{Code.WILDCARD_LEVEL.value}: {off} covers exactly one label"
    for san in sans:
        parent = san.split(".", 1)[1] if "." in san else ""
        if parent and parent.count(".") >= 1 and (host == parent or host.endswith("." + parent)):
            return f"{Code.NAME_MISMATCH.value}: not among the certificate's names"
    return ""


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
        if record.cdn_status in CDN_PAUSED_STATES:
            detail = (
                f"the CDN domain is paused ({record.cdn_status}): it serves nothing, so a"
                " certificate change could not be verified; it is deployed to once started again"
            )
        else:
            detail = "the CDN domain cannot be configured in this state"
        return Skip(record.name, f"{CDN_STATUS}:{record.cdn_status}", detail, route)
    if record.deployed is None:
        return _action(cert, record, NO_CERTIFICATE)
    current = _with_catalog_dates(record.deployed, catalog)
    record = replace(record, deployed=current)
    if _same_certificate(cert, current):
        return Skip(record.name, ALREADY_CURRENT, f"certificate {cert.cas_id} is deployed", route)
    decision = _judge_current(cert, record, current, now, policy, catalog)
    if observed is None or isinstance(decision, Action) or decision.reason not in RECHECK_REASONS:
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
    if invalid:
        return _replacement(cert, record, invalid)
    if current.not_after is None:
        return Skip(
            record.name,
            CURRENT_EXPIRY_UNKNOWN,
            "the deployed certificate's expiry is not known",
            route,
        )
    if current.not_after >= cert.not_after:
        return Skip(
            record.name,
            CURRENT_EXPIRES_LATER,
            f"deployed certificate expires {_iso(current.not_after)}, "
            f"not before this one ({_iso(cert.not_after)})",
            route,
        )
    if current.cas_id is None:
        # Not held in CAS: a failed verification could not put it back (and OSS
        # PutCname may not even know its PreviousCertId). Replaced once it is invalid.
        return Skip(
            record.name,
            PREVIOUS_UNKNOWN,
            "the deployed certificate is not held in CAS and could not be restored if this"
            " one fails to verify: it is replaced only once it is invalid",
            route,
        )
    if policy.replace_only_when_due and current.not_after - now > timedelta(days=policy.renew_days):
        return Skip(
            record.name,
            CURRENT_NOT_DUE,
            f"deployed certificate is valid until {_iso(current.not_after)}",
            route,
        )
    return _action(cert, record, EXPIRES_LATER)


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
    if not configured:
        return decision  # which certificate the edge serves cannot be told
    if observed.sha256 in configured or observed.sha1 in configured:
        return _replacement(cert, record, f"{CURRENT_INVALID}:{observed.problem}")
    which = f"certificate {current.cas_id}" if current.cas_id is not None else "the configured one"
    served = (observed.sha256 or "?")[:16]
    return Skip(
        record.name,
        SERVED_MISMATCH,
        f"the edge serves another certificate (SHA-256 {served}...) than {which}, and"
        f" browsers reject it ({observed.problem}): a stale edge or DNS pointing elsewhere;"
        " the configured certificate is not to blame and is left alone",
        record.route,
    )


def _configured_fingerprints(current: DeployedCert, catalog: Catalog | None) -> frozenset[str]:
    """The fingerprints (SHA-256 from the catalog, or the service's own) of `current`."""
    found = set()
    known = catalog.by_id(current.cas_id) if catalog and current.cas_id is not None else None
    if known is not None:
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


def _current_problem(
    current: DeployedCert, domain: str, now: datetime, catalog: Catalog | None
) -> str:
    """`current-invalid:<CODE>` / `current-not-covering` when the deployed one is broken."""
    if current.not_after is not None and now > current.not_after:
        return f"{CURRENT_INVALID}:{Code.CERT_EXPIRED.value}"
    if current.not_before is not None and now < current.not_before:
        return f"{CURRENT_INVALID}:{Code.CERT_NOT_YET_VALID.value}"
    known = catalog.by_id(current.cas_id) if catalog and current.cas_id is not None else None
    if known is not None:
        if known.revoked:
            return f"{CURRENT_INVALID}:{Code.CERT_REVOKED.value}"
        if not domain_covered(known.sans, domain):
            return NOT_COVERING
        if not known.chain_complete:
            return f"{CURRENT_INVALID}:{Code.CHAIN_INCOMPLETE.value}"
        for problem in known.problems:
            if problem in _REFUSING_VALUES and problem not in _DATE_VALUES:
                return f"{CURRENT_INVALID}:{problem}"
    return ""


def _replacement(cert: CatalogCert, record: DomainRecord, reason: str) -> Action | Skip:
    """Replace an invalid current certificate, unless OSS could not be told which one
    is bound (PutCname checks PreviousCertId)."""
    current = record.deployed
    if (
        record.route is Route.OSS
        and current is not None
        and current.cas_id is None
        and not current.identifier
    ):
        return Skip(
            record.name,
            PREVIOUS_UNKNOWN,
            f"{reason}, but the bound certificate's CertId is not known:"
            " PreviousCertId cannot be given",
            record.route,
        )
    return _action(cert, record, reason)


def _action(cert: CatalogCert, record: DomainRecord, reason: str) -> Action:
    previous = record.deployed
    previous_identifier: str | None = None
    if previous is not None:
        # As the service reported it (an upload's id too), else built from the CAS id.
        previous_identifier = previous.identifier or (
            f"{previous.cas_id}-{previous.region}" if previous.cas_id is not None else None
        )
    if previous is None:
        rollback = ROLLBACK_REMOVE
    elif previous.cas_id is not None:
        rollback = ROLLBACK_RESTORE
    else:
        rollback = ROLLBACK_NONE
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
