"""The pre-write check of a candidate certificate: what every job runs before it writes.

A job about to put a certificate on a domain (deploy-cert rolling out a renewal,
enforce-https picking the best certificate, check-expiry repairing) first judges the
certificate's own PEM chain here, with signatures, against the trust store: dates,
chain signatures and order, the anchor it reaches, key sizes and signature digests
at the level browsers enforce, and per domain the names. A certificate with an error
finding (`CandidateVerdict.refusing`) is refused before anything is written.

Chain completion follows what browsers can rely on without fetching anything: the
certificates the server sends (the PEM chain), then the trust store (a
`CERTPILOT_CA_BUNDLE` may hold known intermediates as well as roots). Missing
intermediates are not downloaded from the Authority Information Access URL: Firefox
and many non-browser clients do not, so such a chain is CHAIN_INCOMPLETE.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from certpilot.certs import (
    CertBundle,
    common_name,
    dns_sans,
    fingerprint_sha256,
    load_pem_certificates,
)
from certpilot.certs.errors import NoCertificate
from certpilot.certs.trust import TrustStore
from certpilot.certs.validate import (
    DEFAULT_RENEW_DAYS,
    ChainAnalysis,
    ChainStatus,
    analyze_chain,
    check_chain,
    check_dates,
    check_names,
    check_order,
    check_strength,
)
from certpilot.core.findings import Code, Finding, Severity


@dataclass(frozen=True)
class CandidateVerdict:
    """The verdict on a candidate certificate, independent of any one domain.

    `findings` name the certificate by `subject`; `for_domain` adds the name checks.
    """

    bundle: CertBundle  # leaf first, then the intermediates the PEM carried
    subject: str  # what the findings name (the leaf's common name, else a label)
    findings: tuple[Finding, ...]
    chain: ChainAnalysis

    @property
    def refusing(self) -> tuple[Code, ...]:
        """The codes of the error findings, each once, in finding order."""
        return tuple(dict.fromkeys(f.code for f in self.findings if f.severity is Severity.ERROR))

    @property
    def usable(self) -> bool:
        """True when no finding is an error (warnings such as CHAIN_ORDER leave it usable)."""
        return not self.refusing

    @property
    def sans(self) -> tuple[str, ...]:
        """The leaf's DNS subjectAltNames as written (what browsers match names against)."""
        return dns_sans(self.bundle.leaf)

    @property
    def fingerprint_sha256(self) -> str:
        """The leaf's SHA-256 fingerprint, upper hex without colons."""
        return fingerprint_sha256(self.bundle.leaf).replace(":", "")

    @property
    def not_before(self) -> datetime:
        """The leaf's notBefore (UTC)."""
        return self.bundle.leaf.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        """The leaf's notAfter (UTC)."""
        return self.bundle.leaf.not_valid_after_utc

    @property
    def missing_issuer(self) -> x509.Name | None:
        """The issuer the chain stops short of because the PEM does not carry it (no
        certificate sent or trusted has its name), else None. A certificate that has the
        name but whose key does not verify the signature is not missing: it is wrong."""
        if self.chain.status is not ChainStatus.INCOMPLETE or self.chain.not_a_ca is not None:
            return None
        wanted = self.chain.top.issuer
        carried = (*self.bundle.chain, *self.bundle.unrelated)
        if self.bundle.root is not None:
            carried += (self.bundle.root,)
        if any(cert.subject == wanted for cert in carried):
            return None
        return wanted

    def for_domain(self, domain: str) -> tuple[Finding, ...]:
        """The certificate's findings plus NAME_MISMATCH / WILDCARD_LEVEL for `domain`.

        Raises InvalidHostname for an invalid domain.
        """
        return self.findings + tuple(check_names(self.bundle.leaf, domain))


def parse_candidate(pem: str | bytes) -> CertBundle:
    """The PEM chain of a candidate as a normalized bundle (leaf first, duplicates and
    a trailing root set aside, order problems recorded for CHAIN_ORDER).

    Raises a CertificateError subclass when the text holds no parseable certificate
    (TruncatedPem, CorruptCertificate, NoCertificate).
    """
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    certificates = load_pem_certificates(data)
    if not certificates:
        raise NoCertificate("the certificate text holds no PEM certificate")
    return CertBundle.from_certificates(certificates)


def judge_candidate(
    bundle: CertBundle,
    *,
    now: datetime,
    trust: TrustStore,
    subject: str | None = None,
    renew_days: int = DEFAULT_RENEW_DAYS,
) -> CandidateVerdict:
    """Judge a candidate's chain before any write: dates (leaf and intermediates),
    signatures up to a trust anchor (CHAIN_INCOMPLETE, UNTRUSTED_ROOT; a signature that
    does not verify leaves the chain without a valid issuer: CHAIN_INCOMPLETE), order
    (CHAIN_ORDER, a warning), key sizes and digests (WEAK_KEY, WEAK_SIGNATURE).

    `subject` names the certificate in findings (default: the leaf's common name).
    Raises ValueError for a naive `now`, TrustStoreError when the store cannot be loaded.
    """
    label = subject or common_name(bundle.leaf.subject) or bundle.leaf.subject.rfc4514_string()
    analysis = analyze_chain(bundle, trust)
    findings = check_dates(bundle, label, now, renew_days)
    findings += check_chain(bundle, label, trust, analysis)
    findings += check_order(bundle, label)
    findings += check_strength(bundle, label)
    return CandidateVerdict(bundle=bundle, subject=label, findings=tuple(findings), chain=analysis)


def issuer_listed(missing: x509.Name, listed_names: Iterable[str]) -> bool:
    """True when the common name of `missing` is among `listed_names` (case-insensitive):
    the certificate's metadata names an issuer that its PEM does not carry."""
    name = (common_name(missing) or "").strip().lower()
    return bool(name) and name in {n.strip().lower() for n in listed_names}
