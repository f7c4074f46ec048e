"""Judge one domain for the sweep (DESIGN §6): pure, no I/O, no clock reads.

`judge(state, catalog, now, policy)` returns the findings of one domain from what the
sweep gathered about it (`DomainState`): its inventory record (where the certificate
is configured), what a live handshake saw its edge serve (`Served`, with the codes a
signature-checking judgement of the served chain found and what its CA says of
revocation), what plain HTTP and HTTPS answered, and, for an OSS domain, whether its
bucket policy carries certpilot's HTTPS-only statement (and an emergency fallback).

The certificate itself is judged with deploy-cert's functions (`plan.certificate_findings`,
`plan.expiring_findings`, `plan.wrong_location`, `plan.served_mismatch`), so that a
certificate is judged the same way whichever job looks at it. What could not be
gathered (`DomainState.gaps`) ends in NOT_JUDGED: never an all-clear for that domain.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from certpilot.core.findings import Code, Finding, make_finding
from certpilot.core.model import Catalog, CatalogCert, DomainRecord, EdgeObservation, Route
from certpilot.core.names import wildcard_level_off
from certpilot.jobs.deploy_cert.plan import (
    REFUSING_CODES,
    certificate_findings,
    domain_covered,
    expiring_findings,
    served_mismatch,
    wrong_location,
)

# Codes a signature-checking judgement of the served chain contributes (its dates and
# names are judged here, from the leaf's fields).
SERVED_CHAIN_CODES = frozenset(
    {
        Code.CHAIN_INCOMPLETE,
        Code.CHAIN_ORDER,
        Code.UNTRUSTED_ROOT,
        Code.WEAK_KEY,
        Code.WEAK_SIGNATURE,
    }
)
_CHAIN_TRUST = frozenset({Code.CHAIN_INCOMPLETE, Code.UNTRUSTED_ROOT})
_FORCED_STATUSES = (301, 302, 307, 308)


class Gap(str, enum.Enum):
    """What the sweep could not learn about a domain (each one: NOT_JUDGED)."""

    PROBE_FAILED = "probe-failed"  # no TLS handshake with the edge
    HTTP_UNANSWERED = "http-unanswered"  # plain HTTP or HTTPS GET got no answer
    POLICY_UNREADABLE = "policy-unreadable"  # GetBucketPolicy failed
    CERTIFICATE_UNREADABLE = "certificate-unreadable"  # a CAS detail call failed
    OUT_OF_TIME = "out-of-time"  # the run's time budget ended before it was judged
    CERTIFICATE_UNKNOWN = "certificate-unknown"  # CDN says HTTPS is on, no details
    FALLBACK_UNREADABLE = "fallback-unreadable"  # CDN's fallback records not listed

    def __str__(self) -> str:
        return self.value


_GAP_WORDS = {
    Gap.PROBE_FAILED: "no TLS handshake with its edge",
    Gap.HTTP_UNANSWERED: "its edge did not answer plain HTTP or HTTPS requests",
    Gap.POLICY_UNREADABLE: "its bucket policy could not be read",
    Gap.CERTIFICATE_UNREADABLE: "a certificate's details could not be read from CAS",
    Gap.OUT_OF_TIME: "the run's time budget ended first",
    Gap.CERTIFICATE_UNKNOWN: "CDN reports HTTPS on but not which certificate",
    Gap.FALLBACK_UNREADABLE: "whether an emergency HTTP fallback is in force could not be read",
}


@dataclass(frozen=True)
class Served:
    """What a live TLS handshake saw the domain's edge serve."""

    sha256: str  # of the served leaf, upper hex, no colons
    sha1: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    issuer: str | None = None
    sans: tuple[str, ...] = ()
    # Why a verifying client rejects it (`probe.tls.served_finding_code`), None: accepted.
    rejected: Code | None = None
    # Codes of the signature-checking judgement of the served chain (SERVED_CHAIN_CODES).
    chain_codes: tuple[Code, ...] = ()
    revoked: bool = False  # its CA said REVOKED (OCSP / CRL); UNKNOWN is never revoked


@dataclass(frozen=True)
class WebView:
    """What plain HTTP and HTTPS GETs of `/` answered."""

    http_status: int | None
    http_location: str | None = None
    # Whether a verified HTTPS GET answered (a certificate browsers reject: HSTS is moot).
    https_answered: bool = False
    hsts: str | None = None  # the HTTPS answer's Strict-Transport-Security


@dataclass(frozen=True)
class PolicyView:
    """certpilot's HTTPS-only statement in the domain's bucket policy."""

    statement: bool  # our Deny on acs:SecureTransport=false is there
    fallback_until: datetime | None = None  # an emergency HTTP fallback's end


@dataclass(frozen=True)
class DomainState:
    """Everything the sweep learned about one domain."""

    record: DomainRecord
    served: Served | None = None
    web: WebView | None = None
    policy: PolicyView | None = None
    gaps: tuple[Gap, ...] = ()
    probe_error: str | None = None  # the handshake's error, when there was no certificate
    # A CDN domain's recorded emergency fallback end (its redirect switched off until then).
    cdn_fallback_until: datetime | None = None


@dataclass(frozen=True)
class JudgePolicy:
    """Knobs of the judgement: the renewal window (`CERTPILOT_RENEW_DAYS`)."""

    renew_days: int = 30


@dataclass(frozen=True)
class Verdict:
    """One domain judged: its findings and the facts a report row shows."""

    domain: str
    findings: tuple[Finding, ...]
    judged: bool  # False: NOT_JUDGED is among the findings
    cas_id: int | None = None  # the configured certificate, when CAS holds it
    certificate: str | None = None  # its name (CAS / CDN), else its common name
    issuer: str | None = None
    not_after: datetime | None = None
    https_forced: bool | None = None  # None: not known
    hsts: bool | None = None  # None: not applicable (OSS) or not known
    backup: int | None = None  # the CAS id of the best backup from another CA
    codes: tuple[Code, ...] = field(default=())

    def expires_in_days(self, now: datetime) -> int | None:
        """Whole days until `not_after` (negative once expired), None when unknown."""
        if self.not_after is None:
            return None
        return (self.not_after - now) // timedelta(days=1)


def _for(domain: str, findings: Iterable[Finding]) -> list[Finding]:
    """Findings about a certificate, re-addressed to the domain it is on."""
    return [replace(f, domain=domain) for f in findings]


def _dedupe(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    seen: dict[Code, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.code, finding)
    return tuple(seen.values())


def name_findings(sans: tuple[str, ...], domain: str, what: str) -> list[Finding]:
    """NAME_MISMATCH / WILDCARD_LEVEL when `sans` do not cover `domain`, else []."""
    if not sans or domain_covered(sans, domain):
        return []
    host = domain[2:] if domain.startswith("*.") else domain
    off = wildcard_level_off(sans, host)
    if off:
        return [
            make_finding(
                Code.WILDCARD_LEVEL,
                domain,
                f"{what} names {off}, which covers exactly one label: not {domain}",
            )
        ]
    return [
        make_finding(
            Code.NAME_MISMATCH, domain, f"{what} names {', '.join(sans[:4])}, not {domain}"
        )
    ]


def best_backup(
    domain: str, catalog: Catalog, now: datetime, current_issuer: str | None, current: int | None
) -> CatalogCert | None:
    """The valid, usable CAS certificate covering `domain` from another CA than
    `current_issuer` that expires last (DESIGN §5), or None. With the issuer unknown,
    any usable certificate other than `current` counts."""
    found = [
        c
        for c in catalog.certificates
        if c.valid_at(now)
        and c.cas_id != current
        and domain_covered(c.sans, domain)
        and not any(code in REFUSING_CODES for code in c.problems)
        and c.chain_complete
        and (current_issuer is None or c.issuer.strip().lower() != current_issuer.strip().lower())
    ]
    return max(found, key=lambda c: (c.not_after, c.cas_id)) if found else None


def _served_dates(domain: str, served: Served, now: datetime, renew_days: int) -> list[Finding]:
    """Date findings of a served certificate CAS does not hold (an upload)."""
    if served.not_after is not None and now > served.not_after:
        return [make_finding(Code.CERT_EXPIRED, domain, f"expired on {served.not_after:%Y-%m-%d}")]
    if served.not_before is not None and now < served.not_before:
        return [
            make_finding(
                Code.CERT_NOT_YET_VALID, domain, f"not valid before {served.not_before:%Y-%m-%d}"
            )
        ]
    if served.not_after is not None and served.not_after - now <= timedelta(days=renew_days):
        return [
            make_finding(
                Code.CERT_EXPIRING,
                domain,
                f"expires on {served.not_after:%Y-%m-%d}, inside the renewal window of"
                f" {renew_days} days",
            )
        ]
    return []


def _web_findings(
    state: DomainState, now: datetime
) -> tuple[list[Finding], bool | None, bool | None]:
    """(findings, HTTPS forced, HSTS) from the HTTP answers and the bucket policy."""
    record, web, policy = state.record, state.web, state.policy
    domain = record.name
    found: list[Finding] = []
    forced: bool | None = None
    hsts: bool | None = None
    plain_served = web is not None and web.http_status is not None and 200 <= web.http_status < 300
    redirected = (
        web is not None
        and web.http_status in _FORCED_STATUSES
        and (web.http_location or "").lower().startswith("https://")
    )
    if record.route is Route.CDN:
        ends = state.cdn_fallback_until
        if ends is not None and ends > now:
            forced = False
            found.append(
                make_finding(
                    Code.FALLBACK_ACTIVE,
                    domain,
                    f"emergency HTTP fallback: the CDN redirect to HTTPS is off until"
                    f" {ends:%Y-%m-%dT%H:%M:%SZ}",
                    until=ends,
                )
            )
        elif web is not None and web.http_status is not None:
            forced = redirected
            if not forced:
                found.append(
                    make_finding(
                        Code.HTTP_NOT_FORCED,
                        domain,
                        f"plain HTTP answers {web.http_status}, not a redirect to HTTPS:"
                        " switch on CDN's forced HTTPS redirect (301)",
                    )
                )
        if web is not None and web.https_answered:
            hsts = bool(web.hsts) and "max-age=0" not in (web.hsts or "").replace(" ", "").lower()
            if not hsts:
                found.append(
                    make_finding(
                        Code.HSTS_MISSING,
                        domain,
                        "HTTPS answers without Strict-Transport-Security: switch on HSTS",
                    )
                )
        return found, forced, hsts
    fallback = policy.fallback_until if policy is not None else None
    if fallback is not None and fallback > now:
        forced = False
        found.append(
            make_finding(
                Code.FALLBACK_ACTIVE,
                domain,
                f"bucket {record.bucket} allows plain HTTP until {fallback:%Y-%m-%dT%H:%M:%SZ}"
                " (an emergency fallback)",
                until=fallback,
            )
        )
        return found, forced, hsts
    if policy is not None:
        forced = policy.statement and not plain_served
        if not forced:
            why = (
                f"plain HTTP answers {web.http_status}"
                if plain_served and web is not None
                else f"bucket {record.bucket} has no HTTPS-only policy statement"
            )
            found.append(
                make_finding(
                    Code.HTTP_NOT_FORCED,
                    domain,
                    f"{why}: deny acs:SecureTransport=false in the bucket policy (enforce-https)",
                )
            )
    elif plain_served:
        forced = False
        found.append(
            make_finding(
                Code.HTTP_NOT_FORCED, domain, f"plain HTTP answers {web.http_status if web else ''}"
            )
        )
    return found, forced, hsts


def judge(
    state: DomainState, catalog: Catalog, now: datetime, policy: JudgePolicy | None = None
) -> Verdict:
    """The findings of one domain (module docstring). Never raises for missing data:
    what is missing is a NOT_JUDGED finding naming it."""
    policy = policy or JudgePolicy()
    record = state.record
    domain = record.name
    gaps = list(state.gaps)
    found: list[Finding] = []
    located = wrong_location(record)
    deployed = record.deployed
    if located is not None:
        found.append(located)
    if deployed is None:
        if located is None:
            found.append(
                make_finding(
                    Code.NO_CERTIFICATE,
                    domain,
                    f"no certificate is configured where its traffic goes ({record.route.value})",
                )
            )
        return _verdict(state, found, gaps, now)
    known = catalog.by_id(deployed.cas_id) if deployed.cas_id is not None else None
    if deployed.cas_id is None and not deployed.not_after and state.served is None:
        gaps.append(Gap.CERTIFICATE_UNKNOWN)
    if known is not None:
        own = _for(domain, certificate_findings(known, now))
        if Code.UNTRUSTED_ROOT in known.problems and Code.CHAIN_INCOMPLETE not in known.problems:
            # A chain that ends at an unknown CA is "not complete" too: one cause, one code.
            own = [f for f in own if f.code is not Code.CHAIN_INCOMPLETE]
        found += own
        found += _for(domain, expiring_findings(known, now, policy.renew_days))
        found += name_findings(known.sans, domain, f"certificate {known.cas_id}")
    served = state.served
    if served is not None:
        observed = EdgeObservation(served.rejected, served.sha256, served.sha1)
        mismatch = served_mismatch(record, observed, catalog)
        if mismatch is not None:
            found.append(mismatch)
        # What browsers see is judged too: for the configured certificate (CAS does not
        # judge its key or digest, nor an upload at all) and for a stale edge alike.
        if known is None:
            found += _served_dates(domain, served, now, policy.renew_days)
            found += name_findings(served.sans, domain, "the served certificate")
        if served.revoked:
            found.append(make_finding(Code.CERT_REVOKED, domain, "its CA says it is revoked"))
        for code in served.chain_codes:
            if code in SERVED_CHAIN_CODES:
                found.append(make_finding(code, domain, f"the served chain: {code.meaning}"))
        # OpenSSL names an unknown root "unable to get local issuer" (CHAIN_INCOMPLETE):
        # the signature-checking judgement of the chain tells the two apart.
        chain_judged = any(c in _CHAIN_TRUST for c in served.chain_codes)
        if (
            served.rejected is not None
            and not any(f.code is served.rejected for f in found)
            and not (chain_judged and served.rejected in _CHAIN_TRUST)
        ):
            found.append(
                make_finding(
                    served.rejected,
                    domain,
                    f"browsers reject the served certificate: {served.rejected.meaning}",
                )
            )
    elif known is None and deployed.not_after is not None:
        # Only the control plane's word: dates, since nothing else is known.
        found += _served_dates(
            domain,
            Served("", not_after=deployed.not_after, not_before=deployed.not_before),
            now,
            policy.renew_days,
        )
    web_found, _, _ = _web_findings(state, now)
    found += web_found
    issuer = known.issuer if known is not None else (served.issuer if served else None)
    usable_now = not any(f.code in REFUSING_CODES for f in found)
    backup = best_backup(domain, catalog, now, issuer, deployed.cas_id)
    if backup is None and (known is not None or served is not None):
        found.append(
            make_finding(
                Code.NO_BACKUP,
                domain,
                "CAS holds no valid certificate for it from another CA"
                + ("" if usable_now else " (and the current one is unusable)"),
            )
        )
    return _verdict(state, found, gaps, now, known=known, backup=backup)


def _verdict(
    state: DomainState,
    found: list[Finding],
    gaps: list[Gap],
    now: datetime,
    *,
    known: CatalogCert | None = None,
    backup: CatalogCert | None = None,
) -> Verdict:
    record = state.record
    if gaps:
        unique = list(dict.fromkeys(gaps))
        found.append(
            make_finding(
                Code.NOT_JUDGED,
                record.name,
                "not judged: "
                + "; ".join(_GAP_WORDS[g] for g in unique)
                + (f" ({state.probe_error})" if state.probe_error else ""),
            )
        )
    findings = _dedupe(found)
    _, forced, hsts = _web_findings(state, now)
    deployed = record.deployed
    served = state.served
    return Verdict(
        domain=record.name,
        findings=findings,
        judged=not gaps,
        cas_id=deployed.cas_id if deployed is not None else None,
        certificate=(known.name if known else None)
        or (deployed.name if deployed else None)
        or (deployed.common_name if deployed else None),
        issuer=known.issuer if known else (served.issuer if served else None),
        not_after=known.not_after
        if known
        else (
            deployed.not_after
            if deployed and deployed.not_after
            else (served.not_after if served else None)
        ),
        https_forced=forced if deployed is not None else None,
        hsts=hsts,
        backup=backup.cas_id if backup else None,
        codes=tuple(f.code for f in findings),
    )
