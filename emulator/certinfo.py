"""Certificate parsing shared by the emulated CAS, OSS and CDN.

`make_cas_certificate` turns a PEM chain and key into a `CasCertificate` (CAS terms for
errors); `parse_bundle` is the service-neutral core that OSS and CDN map to their own
error codes; `cert_covers` is the RFC 6125 name check every service applies before it
accepts a certificate for a domain.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from emulator.core import ServiceError
from emulator.idn import IdnError, to_a_label
from emulator.state import BoundCertificate, CasCertificate, State

# CAS reports calendar dates (StartDate / EndDate) in China Standard Time (chosen:
# UNCONFIRMED; the console shows Beijing dates). Exact instants are in the ms fields.
CAS_DATE_TZ = timezone(timedelta(hours=8))


class CertificateProblem(ValueError):
    """A PEM certificate/key pair that a service must refuse.

    `kind` is "cert" (no parsable certificate), "key" (no parsable private key) or
    "mismatch" (the key belongs to none of the certificates).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class ParsedBundle:
    """A parsed chain as given (order kept) and the certificate the key belongs to."""

    chain: tuple[x509.Certificate, ...]
    leaf: x509.Certificate


def parse_certificates(cert_pem: str) -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM text, in order; raises CertificateProblem("cert")."""
    if "-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise CertificateProblem("cert", "The certificate is not in PEM format.")
    try:
        chain = x509.load_pem_x509_certificates(cert_pem.encode("utf-8"))
    except ValueError:
        raise CertificateProblem("cert", "The certificate content cannot be parsed.") from None
    if not chain:
        raise CertificateProblem("cert", "The certificate content is empty.")
    return tuple(chain)


def parse_private_key(key_pem: str) -> PrivateKeyTypes:
    """A PEM private key (PKCS#1, SEC1 or PKCS#8, unencrypted); raises CertificateProblem."""
    try:
        return serialization.load_pem_private_key(key_pem.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise CertificateProblem("key", "The private key cannot be parsed.") from None


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def parse_bundle(cert_pem: str, key_pem: str) -> ParsedBundle:
    """Parse a chain and its key; the leaf is the certificate the key belongs to.

    The chain order is kept as given (a wrong-order chain is stored as such, the way
    a careless upload would be). Raises CertificateProblem.
    """
    chain = parse_certificates(cert_pem)
    key = parse_private_key(key_pem)
    public = _public_der(key.public_key())
    for cert in chain:
        if _public_der(cert.public_key()) == public:
            return ParsedBundle(chain, cert)
    raise CertificateProblem("mismatch", "The certificate and the private key do not match.")


def _first(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return ""
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def dns_names(cert: x509.Certificate) -> list[str]:
    """The DNS SANs of `cert`, or its subject CN when it has no SAN extension."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        common = _first(cert.subject, NameOID.COMMON_NAME)
        return [common] if common else []
    return [str(n) for n in ext.value.get_values_for_type(x509.DNSName)]


def common_name(cert: x509.Certificate) -> str:
    """Subject CN, or the first SAN when the subject has no CN."""
    return _first(cert.subject, NameOID.COMMON_NAME) or next(iter(dns_names(cert)), "")


def issuer_name(cert: x509.Certificate) -> str:
    """The issuer as CAS shows it: the organization, else the common name."""
    return _first(cert.issuer, NameOID.ORGANIZATION_NAME) or _first(
        cert.issuer, NameOID.COMMON_NAME
    )


def subject_field(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    """One subject attribute (e.g. NameOID.ORGANIZATION_NAME), "" when absent."""
    return _first(cert.subject, oid)


def issuer_common_name(cert: x509.Certificate) -> str:
    return _first(cert.issuer, NameOID.COMMON_NAME)


def key_algorithm(cert: x509.Certificate) -> str:
    """CAS `Algorithm`: RSA, ECC (or the key class name for anything else)."""
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(public, ec.EllipticCurvePublicKey):
        return "ECC"
    return type(public).__name__


def fingerprint(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> str:
    """Upper-case hex digest of the DER certificate, no separators (CAS style)."""
    return cert.fingerprint(algorithm).hex().upper()


def colon_hex(hex_digest: str) -> str:
    """`AB12CD` -> `AB:12:CD` (OSS ListCname style)."""
    return ":".join(hex_digest[i : i + 2] for i in range(0, len(hex_digest), 2))


def make_cas_certificate(
    state: State, *, name: str, cert_pem: str, key_pem: str, source: str = "upload"
) -> CasCertificate:
    """Parse a PEM chain + key into a new CasCertificate with a fresh id (not inserted).

    Raises ServiceError in CAS terms: `ParseCertificateFailed` (no parsable
    certificate), `ParsePrivateKeyFailed` and `CertificateKeyMismatch` (chosen codes).
    """
    try:
        bundle = parse_bundle(cert_pem, key_pem)
    except CertificateProblem as problem:
        raise cas_error(problem) from None
    leaf = bundle.leaf
    sans = dns_names(leaf)
    return CasCertificate(
        id=state.next_cert_id(),
        name=name,
        cert_pem=cert_pem,
        key_pem=key_pem,
        source=source,
        common_name=common_name(leaf),
        sans=sans,
        issuer=issuer_name(leaf),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        fingerprint_sha1=fingerprint(leaf, hashes.SHA1()),  # noqa: S303  (CAS reports SHA-1)
        sha256=fingerprint(leaf, hashes.SHA256()),
        serial=format(leaf.serial_number, "x"),
        created_ms=int(state.now() * 1000),
        region=state.cas_region,
    )


def cas_error(problem: CertificateProblem) -> ServiceError:
    """The CAS RPC error for a refused certificate/key (codes partly chosen)."""
    if problem.kind == "cert":
        # Documented in the CAS error list.
        return ServiceError(400, "ParseCertificateFailed", problem.message)
    if problem.kind == "key":
        return ServiceError(400, "ParsePrivateKeyFailed", problem.message)  # chosen
    return ServiceError(400, "CertificateKeyMismatch", problem.message)  # chosen


def _normalize(domain: str) -> str:
    try:
        return to_a_label(domain)
    except IdnError:
        return domain.strip().rstrip(".").lower()


def name_covers(pattern: str, domain: str) -> bool:
    """RFC 6125 match of one certificate name against a hostname.

    A wildcard is only a whole left-most label and covers exactly one label:
    `*.example.com` covers `www.example.com`, not `example.com` nor `a.b.example.com`;
    `*.com` covers nothing.
    """
    pattern, domain = _normalize(pattern), _normalize(domain)
    if not pattern or not domain:
        return False
    if not pattern.startswith("*."):
        return "*" not in pattern and pattern == domain
    suffix = pattern[2:]
    if "*" in suffix or suffix.count(".") < 1:
        return False
    head, _, rest = domain.partition(".")
    return bool(head) and rest == suffix


def cert_covers(cert: CasCertificate, domain: str) -> bool:
    """Whether any of the certificate's names covers `domain` (one-label wildcards)."""
    return any(name_covers(name, domain) for name in cert.sans)


def bound_from_cas(
    cert: CasCertificate, cert_type: str, *, bound_at: float | None = None
) -> BoundCertificate:
    """The binding of a CAS certificate on an OSS domain ("CAS") or CDN domain ("cas")."""
    return BoundCertificate(
        cert_type=cert_type,
        cert_id=cert.id,
        cert_region=cert.region,
        cert_name=cert.name,
        cert_pem=cert.cert_pem,
        key_pem=cert.key_pem,
        bound_at=time.time() if bound_at is None else bound_at,
    )


@dataclass(frozen=True)
class LeafSummary:
    """What a control plane reports about a bound certificate."""

    common_name: str
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    sha1: str  # upper hex, no separators
    serial: str  # lower hex


@functools.lru_cache(maxsize=512)
def summarize(cert_pem: str, key_pem: str = "") -> LeafSummary:
    """Summary of the leaf of a stored (already validated) chain.

    With `key_pem` the leaf is the certificate the key belongs to, else the first one.
    Raises CertificateProblem for content that does not parse.
    """
    leaf = parse_bundle(cert_pem, key_pem).leaf if key_pem else parse_certificates(cert_pem)[0]
    return LeafSummary(
        common_name=common_name(leaf),
        sans=tuple(dns_names(leaf)),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        sha1=fingerprint(leaf, hashes.SHA1()),  # noqa: S303
        serial=format(leaf.serial_number, "x"),
    )
