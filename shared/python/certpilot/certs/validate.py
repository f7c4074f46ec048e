"""Is this certificate usable for this domain? Pure checks that return findings.

Every function takes what it judges plus `now`; none reads the clock or the network.
The only I/O is loading the default trust store on first use when none is given.

Checks and their codes: dates (CERT_EXPIRED, CERT_NOT_YET_VALID, CERT_EXPIRING), names
(NAME_MISMATCH, WILDCARD_LEVEL), chain (CHAIN_INCOMPLETE, UNTRUSTED_ROOT, CHAIN_ORDER),
key (KEY_MISMATCH), format (NOT_PEM), strength (WEAK_KEY, WEAK_SIGNATURE).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from certpilot.certs import (
    CertBundle,
    InputFormat,
    PrivateKey,
    common_name,
    days_left,
    dns_sans,
    is_ca,
    is_self_signed,
    iso_utc,
    key_description,
    public_key_description,
    public_key_matches,
    signature_hash_name,
)
from certpilot.certs.trust import TrustStore
from certpilot.core.findings import Code, Finding, has_errors, make_finding
from certpilot.core.names import covers, normalize_hostname, wildcard_level_off

DEFAULT_RENEW_DAYS = 30
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
WEAK_HASHES = frozenset({"sha1", "md5"})
# Signature algorithms too old for cryptography to name: md2/md4 with RSA.
_LEGACY_SIGNATURE_OIDS = frozenset({"1.2.840.113549.1.1.2", "1.2.840.113549.1.1.3"})


def _label(cert: x509.Certificate) -> str:
    name = common_name(cert.subject)
    return repr(name) if name else repr(cert.subject.rfc4514_string())


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now


def _chain_roles(bundle: CertBundle) -> Iterator[tuple[str, x509.Certificate]]:
    """The leaf and the intermediates, each with how a message names it."""
    for position, cert in enumerate(bundle.chain):
        yield ("certificate" if position == 0 else f"intermediate {_label(cert)}"), cert


# ---------------------------------------------------------------- dates


def check_dates(
    bundle: CertBundle, domain: str, now: datetime, renew_days: int = DEFAULT_RENEW_DAYS
) -> list[Finding]:
    """CERT_EXPIRED / CERT_NOT_YET_VALID / CERT_EXPIRING for the leaf and intermediates.

    Validity includes both ends (RFC 5280). The root's own dates are not judged:
    browsers treat anchors by their trust store entry. Raises ValueError for a
    naive `now`.
    """
    now = _aware(now)
    window = timedelta(days=renew_days)
    findings: list[Finding] = []
    for role, cert in _chain_roles(bundle):
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        if now > not_after:
            findings.append(
                make_finding(
                    Code.CERT_EXPIRED,
                    domain,
                    f"the {role} expired on {iso_utc(not_after)}"
                    f" ({-days_left(cert, now)} days ago)",
                )
            )
        elif now < not_before:
            findings.append(
                make_finding(
                    Code.CERT_NOT_YET_VALID,
                    domain,
                    f"the {role} is valid only from {iso_utc(not_before)}",
                )
            )
        elif not_after - now <= window:
            findings.append(
                make_finding(
                    Code.CERT_EXPIRING,
                    domain,
                    f"the {role} expires on {iso_utc(not_after)}, in {days_left(cert, now)}"
                    f" days (renewal window {renew_days} days)",
                )
            )
    return findings


# ---------------------------------------------------------------- names


def check_names(cert: x509.Certificate, domain: str) -> list[Finding]:
    """NAME_MISMATCH or WILDCARD_LEVEL when the certificate's SANs do not cover `domain`.

    Raises InvalidHostname for an invalid domain.
    """
    host = normalize_hostname(domain)
    # Only subjectAltName counts. Browsers stopped falling back to the subject CN
    # (Chrome 58, Firefox 48), so a CN that names the domain does not help.
    sans = dns_sans(cert)
    if covers(sans, host):
        return []
    if not sans:
        return [
            make_finding(
                Code.NAME_MISMATCH,
                host,
                "the certificate has no DNS subjectAltName; browsers ignore the subject CN",
            )
        ]
    off = wildcard_level_off(sans, host)
    if off is not None:
        return [
            make_finding(
                Code.WILDCARD_LEVEL,
                host,
                f"{off!r} covers exactly one label below its base; {host!r} is one level off",
            )
        ]
    shown = ", ".join(sans[:5]) + (f" and {len(sans) - 5} more" if len(sans) > 5 else "")
    return [make_finding(Code.NAME_MISMATCH, host, f"{host!r} is not among the names: {shown}")]


# ---------------------------------------------------------------- chain


class ChainStatus(str, enum.Enum):
    """Where the chain leads."""

    TRUSTED = "trusted"  # reaches an anchor of the trust store
    INCOMPLETE = "incomplete"  # stops at a certificate whose issuer is nowhere to be found
    UNTRUSTED_ROOT = "untrusted_root"  # ends at a self-signed certificate that is no anchor

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ChainAnalysis:
    """The verdict on a bundle's chain."""

    status: ChainStatus
    top: x509.Certificate  # the last certificate the bundle itself provides
    anchor: x509.Certificate | None  # the trust anchor reached, when TRUSTED
    not_a_ca: x509.Certificate | None = None  # an issuer in the bundle that may not issue


def analyze_chain(bundle: CertBundle, trust: TrustStore) -> ChainAnalysis:
    """Follow the bundle's chain to a trust anchor.

    TRUSTED when a certificate of the chain is an anchor or was issued by one;
    UNTRUSTED_ROOT when it ends at a self-signed certificate that is not an anchor;
    INCOMPLETE when it stops at a certificate whose issuer is neither in the bundle nor
    an anchor, or passes through an issuer that is not a CA. Like OpenSSL (and unlike
    browsers that fetch missing intermediates via AIA), nothing is downloaded: what the
    server sends must suffice.
    Raises TrustStoreError when the trust store cannot be loaded.
    """
    path = list(bundle.chain) + ([bundle.root] if bundle.root is not None else [])
    for position, cert in enumerate(path):
        # An issuer without basicConstraints CA:TRUE cannot issue (RFC 5280 4.2.1.9):
        # the real intermediate is missing. Anchors themselves are trusted as they are.
        if position > 0 and not is_ca(cert) and not trust.contains(cert):
            return ChainAnalysis(ChainStatus.INCOMPLETE, path[position - 1], None, cert)
        if trust.contains(cert):
            return ChainAnalysis(ChainStatus.TRUSTED, path[-1], cert)
    top = path[-1]
    if is_self_signed(top):
        return ChainAnalysis(ChainStatus.UNTRUSTED_ROOT, top, None)
    issuer = trust.find_issuer(top)
    if issuer is not None:
        return ChainAnalysis(ChainStatus.TRUSTED, top, issuer)
    return ChainAnalysis(ChainStatus.INCOMPLETE, top, None)


def check_chain(
    bundle: CertBundle, domain: str, trust: TrustStore, analysis: ChainAnalysis | None = None
) -> list[Finding]:
    """CHAIN_INCOMPLETE or UNTRUSTED_ROOT from `analyze_chain` (pass it to avoid redoing it)."""
    result = analysis if analysis is not None else analyze_chain(bundle, trust)
    if result.status is ChainStatus.TRUSTED:
        return []
    if result.status is ChainStatus.UNTRUSTED_ROOT:
        what = (
            "the certificate is self-signed"
            if result.top is bundle.leaf
            else (f"the chain ends at the self-signed {_label(result.top)}")
        )
        return [
            make_finding(
                Code.UNTRUSTED_ROOT,
                domain,
                f"{what}, which is not in the trust store ({trust.description})",
            )
        ]
    if result.not_a_ca is not None:
        message = (
            f"{_label(result.not_a_ca)} issued {_label(result.top)} but is not a CA certificate"
            " (basicConstraints): replace it with the CA's real intermediate certificate"
        )
        return [make_finding(Code.CHAIN_INCOMPLETE, domain, message)]
    issuer = result.top.issuer.rfc4514_string()
    namesakes = [c for c in bundle.unrelated if c.subject == result.top.issuer]
    if namesakes or trust.named(result.top.issuer):
        # The issuer is there by name, but its key does not verify the signature: a
        # forged or corrupted certificate, or one re-issued under another key.
        message = (
            f"the signature of {_label(result.top)} does not verify with the key of its"
            f" issuer {issuer!r}: the chain has no valid issuer (a corrupted or forged"
            " certificate, or an intermediate of another key with the same name)"
        )
        return [make_finding(Code.CHAIN_INCOMPLETE, domain, message)]
    message = (
        f"the issuer {issuer!r} of {_label(result.top)} is neither in the bundle nor a"
        f" trusted root: append the missing intermediate certificate(s) after the leaf,"
        " or trust that root if it is a private CA"
    )
    if bundle.unrelated:
        message += f" ({len(bundle.unrelated)} certificate(s) in the bundle are not on its chain)"
    return [make_finding(Code.CHAIN_INCOMPLETE, domain, message)]


def check_order(bundle: CertBundle, domain: str) -> list[Finding]:
    """CHAIN_ORDER when the input was not leaf-first, repeated a certificate, or carried
    certificates that are not on the chain (all repaired in `to_pem_bundle`)."""
    problems: list[str] = []
    if bundle.order_was_wrong:
        problems.append("certificates are not in leaf-first issuing order")
    if bundle.duplicates_removed:
        problems.append(f"{bundle.duplicates_removed} duplicate certificate(s)")
    if bundle.unrelated:
        names = ", ".join(_label(c) for c in bundle.unrelated[:3])
        problems.append(f"{len(bundle.unrelated)} certificate(s) not on the chain ({names})")
    if not problems:
        return []
    return [
        make_finding(
            Code.CHAIN_ORDER,
            domain,
            "; ".join(problems) + ": the normalized PEM chain is leaf first, then its issuers",
        )
    ]


# ---------------------------------------------------------------- key, format, strength


def check_key(cert: x509.Certificate, key: PrivateKey, domain: str) -> list[Finding]:
    """KEY_MISMATCH when `key` is not the private key of `cert` (RSA, ECDSA, Ed25519)."""
    if public_key_matches(cert, key):
        return []
    key_type, key_bits = key_description(key)
    cert_type, cert_bits = public_key_description(cert)
    return [
        make_finding(
            Code.KEY_MISMATCH,
            domain,
            f"the private key ({key_type} {key_bits}) does not belong to the certificate"
            f" ({cert_type} {cert_bits})",
        )
    ]


def check_format(bundle: CertBundle, domain: str) -> list[Finding]:
    """NOT_PEM when the input was DER, PKCS#7 or PKCS#12 (CDN and OSS take PEM only)."""
    if bundle.source_format is InputFormat.PEM:
        return []
    return [
        make_finding(
            Code.NOT_PEM,
            domain,
            f"the input is {bundle.source_format.value}; CDN and OSS accept PEM only:"
            " upload the converted leaf-first PEM chain",
        )
    ]


def check_strength(bundle: CertBundle, domain: str) -> list[Finding]:
    """WEAK_KEY (RSA < 2048, EC < 256 bits, DSA) and WEAK_SIGNATURE (SHA-1, MD5) on the
    leaf and intermediates. A root's self-signature is not judged: nobody verifies it."""
    findings: list[Finding] = []
    for role, cert in _chain_roles(bundle):
        key_type, bits = public_key_description(cert)
        weak = (
            (key_type == "RSA" and bits < MIN_RSA_BITS)
            or (key_type == "EC" and bits < MIN_EC_BITS)
            or key_type == "DSA"
        )
        if weak:
            findings.append(
                make_finding(Code.WEAK_KEY, domain, f"the {role} has a {key_type} {bits}-bit key")
            )
        digest = signature_hash_name(cert)
        if digest is not None and (digest in WEAK_HASHES or digest in _LEGACY_SIGNATURE_OIDS):
            findings.append(
                make_finding(Code.WEAK_SIGNATURE, domain, f"the {role} is signed with {digest}")
            )
    return findings


# ---------------------------------------------------------------- entry points


def validate(
    bundle: CertBundle,
    domain: str,
    *,
    now: datetime,
    trust: TrustStore | None = None,
    key: PrivateKey | None = None,
    renew_days: int = DEFAULT_RENEW_DAYS,
) -> list[Finding]:
    """Every check of this module for one domain, in a stable order.

    `key` defaults to the key that came with the bundle (PKCS#12, combined PEM); the key
    check is skipped when there is none. `trust` defaults to the Mozilla roots.
    Raises InvalidHostname for an invalid domain, ValueError for a naive `now`,
    TrustStoreError when the trust store cannot be loaded.
    """
    host, findings = _certificate_findings(bundle, domain, now, trust, renew_days)
    chosen_key = key if key is not None else bundle.key
    if chosen_key is not None:
        findings += check_key(bundle.leaf, chosen_key, host)
    findings += check_format(bundle, host)
    return findings


def _certificate_findings(
    bundle: CertBundle, domain: str, now: datetime, trust: TrustStore | None, renew_days: int
) -> tuple[str, list[Finding]]:
    """The normalized domain and every finding but key and format (what `validate` and
    `validate_for_deploy` share, with the same argument checks)."""
    host = normalize_hostname(domain)
    store = trust if trust is not None else TrustStore.default()
    now = _aware(now)
    findings = check_dates(bundle, host, now, renew_days)
    findings += check_names(bundle.leaf, host)
    findings += check_chain(bundle, host, store)
    findings += check_order(bundle, host)
    findings += check_strength(bundle, host)
    return host, findings


@dataclass(frozen=True)
class DeployVerdict:
    """Can this certificate go on this domain?"""

    domain: str
    usable: bool  # no error finding
    findings: tuple[Finding, ...]
    not_after: datetime  # the leaf's, for "never replace with one that expires sooner"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "domain": self.domain,
            "usable": self.usable,
            "not_after": iso_utc(self.not_after),
            "findings": [f.to_dict() for f in self.findings],
        }


def validate_for_deploy(
    bundle: CertBundle,
    domain: str,
    *,
    now: datetime,
    trust: TrustStore | None = None,
    renew_days: int = DEFAULT_RENEW_DAYS,
) -> DeployVerdict:
    """Judge a CAS certificate (parsed PEM chain, no key) for deployment on `domain`.

    Deploys go by CAS reference, so neither the key nor the upload format is judged.
    Usable means no error finding: dates valid, names cover the domain, chain reaches
    a trusted root, no weak key or signature. CERT_EXPIRING and CHAIN_ORDER are
    warnings and leave it usable. Raises like `validate`.
    """
    host, findings = _certificate_findings(bundle, domain, now, trust, renew_days)
    return DeployVerdict(
        domain=host,
        usable=not has_errors(findings),
        findings=tuple(findings),
        not_after=bundle.leaf.not_valid_after_utc,
    )
