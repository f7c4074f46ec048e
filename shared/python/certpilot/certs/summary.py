"""What a person wants to see of a certificate: names, dates, fingerprint, key and
signature, and `describe` that gathers them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from certpilot.certs.chain import is_ca, is_self_signed
from certpilot.certs.errors import CorruptCertificate
from certpilot.certs.keys import key_description


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z suffix, seconds precision."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as colon-separated upper hex (AB:CD:...)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _subject_alt_names(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:
        raise CorruptCertificate("the certificate's extensions do not parse") from exc


def dns_sans(cert: x509.Certificate) -> tuple[str, ...]:
    """The dNSName entries of subjectAltName, as written in the certificate.

    Raises CorruptCertificate when the extension is malformed.
    """
    sans = _subject_alt_names(cert)
    return () if sans is None else tuple(sans.get_values_for_type(x509.DNSName))


def ip_sans(cert: x509.Certificate) -> tuple[str, ...]:
    """The iPAddress entries of subjectAltName, as text.

    Raises CorruptCertificate when the extension is malformed.
    """
    sans = _subject_alt_names(cert)
    return () if sans is None else tuple(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def common_name(name: x509.Name) -> str | None:
    """The first commonName of a distinguished name, or None."""
    return _attribute(name, x509.NameOID.COMMON_NAME)


def issuer_organization(cert: x509.Certificate) -> str:
    """The issuing CA's organization, else its common name, else the whole issuer DN.

    What tells two CAs apart when choosing a backup certificate (DESIGN §5).
    """
    return (
        _attribute(cert.issuer, x509.NameOID.ORGANIZATION_NAME)
        or common_name(cert.issuer)
        or cert.issuer.rfc4514_string()
    )


def public_key_description(cert: x509.Certificate) -> tuple[str, int]:
    """`key_description` of the certificate's public key; ("unknown", 0) for a key
    algorithm cryptography does not support (SM2, for instance)."""
    try:
        return key_description(cert.public_key())
    except (UnsupportedAlgorithm, ValueError):
        return "unknown", 0


def signature_hash_name(cert: x509.Certificate) -> str | None:
    """Name of the signature's hash ("sha256", "sha1"), None for Ed25519/Ed448,
    the dotted OID when the algorithm is unknown to cryptography."""
    try:
        digest = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return cert.signature_algorithm_oid.dotted_string
    return None if digest is None else digest.name


def days_left(cert: x509.Certificate, now: datetime) -> int:
    """Whole days from `now` to notAfter, rounded down (negative once expired)."""
    return (cert.not_valid_after_utc - now) // timedelta(days=1)


@dataclass(frozen=True)
class CertSummary:
    """What a person wants to see of one certificate."""

    subject: str
    common_name: str | None
    sans: tuple[str, ...]
    ip_sans: tuple[str, ...]
    issuer: str
    serial: str
    sha256: str
    not_before: str
    not_after: str
    days_left: int
    key_type: str
    key_size: int
    curve: str | None
    signature_hash: str | None
    is_ca: bool
    self_signed: bool

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "subject": self.subject,
            "common_name": self.common_name,
            "sans": list(self.sans),
            "ip_sans": list(self.ip_sans),
            "issuer": self.issuer,
            "serial": self.serial,
            "sha256": self.sha256,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "days_left": self.days_left,
            "key_type": self.key_type,
            "key_size": self.key_size,
            "curve": self.curve,
            "signature_hash": self.signature_hash,
            "is_ca": self.is_ca,
            "self_signed": self.self_signed,
        }


def describe(cert: x509.Certificate, now: datetime) -> CertSummary:
    """Summarize a certificate; `now` (timezone-aware) gives `days_left`.

    Raises CorruptCertificate when its extensions do not parse, ValueError for a
    naive `now`.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    key_type, key_size = public_key_description(cert)
    try:
        public: object = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        public = None
    serial = format(cert.serial_number, "X")
    return CertSummary(
        subject=cert.subject.rfc4514_string(),
        common_name=common_name(cert.subject),
        sans=dns_sans(cert),
        ip_sans=ip_sans(cert),
        issuer=cert.issuer.rfc4514_string(),
        serial=serial.zfill(len(serial) + len(serial) % 2),
        sha256=fingerprint_sha256(cert),
        not_before=iso_utc(cert.not_valid_before_utc),
        not_after=iso_utc(cert.not_valid_after_utc),
        days_left=days_left(cert, now),
        key_type=key_type,
        key_size=key_size,
        curve=public.curve.name if isinstance(public, ec.EllipticCurvePublicKey) else None,
        signature_hash=signature_hash_name(cert),
        is_ca=is_ca(cert),
        self_signed=is_self_signed(cert),
    )
