"""A throwaway public-key infrastructure for the emulator, its tests and its demo.

`TestPki.create(directory)` makes, in a few milliseconds (EC P-256 CA keys):

- "Emulator Root CA" (trusted: the only certificate in `ca_bundle_path`), and under it
  the issuing intermediates "Emulator CA One" and "Emulator CA Two", with distinct
  organization names so that a backup certificate really comes from another CA;
- "Untrusted Root" with its intermediate "Untrusted CA", which no bundle contains.

`issue()` turns a recipe (names, validity, key type, signature hash, chain shape) into a
PEM chain and a PEM private key. Keys are generated per call and never written to disk
except by the caller.

Revocation: made with a `base_url` (the control plane's), every intermediate and leaf
names an OCSP responder (Authority Information Access) and a CRL distribution point
there, `{base_url}/pki/ocsp/<ca>` and `{base_url}/pki/crl/<ca>.crl`, which
`emulator.revocation` serves from this object's records (`status`, `revoke`). CA Two
answers OCSP through a delegated responder (a certificate with the OCSP-signing EKU that
CA Two issued); the root and the other CAs sign their answers themselves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from emulator import idn

CA_NAMES = ("one", "two", "untrusted")
# Every authority that issues something (roots sign the intermediates).
AUTHORITIES = ("root", "one", "two", "untrusted-root", "untrusted")
# CAs that answer OCSP through a delegated responder rather than with their own key.
DELEGATED_OCSP = ("two",)
KEY_TYPES = ("ec", "rsa", "rsa1024")
CHAIN_SHAPES = ("complete", "leaf-only", "wrong-order", "with-root")
SIGNATURE_HASHES = ("sha256", "sha1")

_UTC = dt.timezone.utc
_CA_LIFETIME = dt.timedelta(days=3650 * 2)
_CA_BACKDATE = dt.timedelta(days=3650)
_LEAF_BACKDATE = dt.timedelta(hours=1)

# AlgorithmIdentifier DER of ecdsa-with-SHA256 / ecdsa-with-SHA1 (every CA key is EC).
_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_ECDSA_SHA1 = bytes.fromhex("300906072a8648ce3d0401")


class PkiError(ValueError):
    """A recipe that cannot be issued (unknown CA, key type, chain shape, bad names)."""


@dataclass(frozen=True)
class _Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def to_a_label(name: str) -> str:
    """`name` in lower-case A-label form (UTS 46 / IDNA 2008, label by label; `*` kept).

    Raises PkiError for a name that is not a valid hostname.
    """
    try:
        return idn.to_a_label(name)
    except idn.IdnError as err:
        raise PkiError(str(err)) from None


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def revocation_extensions(
    base_url: str | None, issuer: str
) -> list[x509.AuthorityInformationAccess | x509.CRLDistributionPoints]:
    """The AIA (OCSP) and CRL distribution point extensions for a certificate that
    authority `issuer` signs; none without `base_url`."""
    if not base_url:
        return []
    root = base_url.rstrip("/")
    return [
        x509.AuthorityInformationAccess(
            [
                x509.AccessDescription(
                    AuthorityInformationAccessOID.OCSP,
                    x509.UniformResourceIdentifier(f"{root}/pki/ocsp/{issuer}"),
                )
            ]
        ),
        x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    full_name=[x509.UniformResourceIdentifier(f"{root}/pki/crl/{issuer}.crl")],
                    relative_name=None,
                    reasons=None,
                    crl_issuer=None,
                )
            ]
        ),
    ]


def _make_ca(
    common_name: str,
    organization: str,
    now: dt.datetime,
    parent: _Authority | None,
    *,
    base_url: str | None = None,
    parent_name: str = "",
) -> _Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name, organization)
    issuer_cert = parent.cert if parent else None
    signer = parent.key if parent else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(_serial(common_name))
        .not_valid_before(now - _CA_BACKDATE)
        .not_valid_after(now + _CA_LIFETIME)
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=None if parent is None else 0),
            critical=True,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if parent is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), False
        )
        for extension in revocation_extensions(base_url, parent_name):
            builder = builder.add_extension(extension, False)
    return _Authority(key, builder.sign(signer, hashes.SHA256()))


def _make_responder(name: str, ca: _Authority, now: dt.datetime) -> _Authority:
    """A delegated OCSP responder certificate for `ca` (EKU OCSPSigning, RFC 6960 4.2.2.2)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} OCSP Responder", "Emulator OCSP"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial(f"{name} OCSP Responder"))
        .not_valid_before(now - _LEAF_BACKDATE)
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False)
        .add_extension(x509.OCSPNoCheck(), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return _Authority(key, cert)


@dataclass(frozen=True)
class Revocation:
    """A revoked serial: when, and the RFC 5280 reason (None: unspecified)."""

    revoked_at: dt.datetime
    reason: x509.ReasonFlags | None = None


@dataclass
class _Records:
    """What each CA has issued and revoked (serial numbers), like a CA's database."""

    issued: dict[str, set[int]] = field(default_factory=dict)
    revoked: dict[tuple[str, int], Revocation] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _serial(seed: str) -> int:
    # Stable CA serials make repeated runs easy to compare; leaves use random serials.
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:16], "big") >> 1


def _validity(
    not_before: dt.datetime | None, not_after: dt.datetime | None, days: float
) -> tuple[dt.datetime, dt.datetime]:
    """(not_before, not_after) of a leaf; see `TestPki.issue`.

    Raises PkiError for a `days` that is not a finite positive number, or a window
    outside what X.509 can encode (years 1 to 9999).
    """
    if isinstance(days, bool) or not isinstance(days, (int, float)):
        raise PkiError(f"days must be a number, got {days!r}")
    if not math.isfinite(days) or days <= 0:
        raise PkiError(f"days must be a finite positive number, got {days!r}")
    now = dt.datetime.now(_UTC).replace(microsecond=0)
    start = _aware(not_before) if not_before else now - _LEAF_BACKDATE
    if not_after:
        return start, _aware(not_after)
    try:
        end = (_aware(not_before) if not_before else now) + dt.timedelta(days=days)
    except OverflowError:
        raise PkiError(f"days={days!r} ends after the year 9999") from None
    return start, end


class TestPki:
    """Root, issuing CAs and an untrusted hierarchy; issues leaf certificates by recipe."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        directory: Path,
        authorities: dict[str, _Authority],
        *,
        base_url: str | None = None,
        responders: dict[str, _Authority] | None = None,
    ) -> None:
        self.directory = directory
        self._ca = authorities
        self.base_url = base_url
        self._responders = responders or {}
        self._records = _Records()
        self.ca_bundle_path = directory / "ca-bundle.pem"
        self.untrusted_bundle_path = directory / "untrusted-root.pem"

    @classmethod
    def create(cls, directory: Path, *, base_url: str | None = None) -> TestPki:
        """Make the CA hierarchy and write the trusted root to `directory/ca-bundle.pem`
        (and the untrusted root to `directory/untrusted-root.pem`).

        `base_url` (the control plane, `http://127.0.0.1:PORT`): where the OCSP
        responders and CRLs are served; without it nothing names one.
        """
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(_UTC).replace(microsecond=0)
        root = _make_ca("Emulator Root CA", "Emulator Trust Services", now, None)
        one = _make_ca(
            "Emulator CA One",
            "Emulator One Certificates Ltd",
            now,
            root,
            base_url=base_url,
            parent_name="root",
        )
        two = _make_ca(
            "Emulator CA Two",
            "Emulator Two Trust Inc",
            now,
            root,
            base_url=base_url,
            parent_name="root",
        )
        bad_root = _make_ca("Untrusted Root", "Untrusted Test Authority", now, None)
        bad = _make_ca(
            "Untrusted CA",
            "Untrusted Test Authority",
            now,
            bad_root,
            base_url=base_url,
            parent_name="untrusted-root",
        )
        authorities = {
            "root": root,
            "one": one,
            "two": two,
            "untrusted-root": bad_root,
            "untrusted": bad,
        }
        responders = {
            name: _make_responder(name, authorities[name], now) for name in DELEGATED_OCSP
        }
        pki = cls(directory, authorities, base_url=base_url, responders=responders)
        for name, parent in (("one", "root"), ("two", "root"), ("untrusted", "untrusted-root")):
            pki._records.issued.setdefault(parent, set()).add(authorities[name].cert.serial_number)
        pki.ca_bundle_path.write_text(root.pem)
        pki.untrusted_bundle_path.write_text(bad_root.pem)
        return pki

    @property
    def root_pem(self) -> str:
        """The trusted root certificate (PEM)."""
        return self._ca["root"].pem

    def intermediate_pem(self, ca: str = "one") -> str:
        """The issuing CA certificate of `ca` ("one" | "two" | "untrusted") in PEM."""
        return self._authority(ca).pem

    def root_of(self, ca: str) -> str:
        """The root certificate (PEM) that issuing CA `ca` chains to."""
        self._authority(ca)
        return self._ca["untrusted-root" if ca == "untrusted" else "root"].pem

    def _authority(self, ca: str) -> _Authority:
        if ca not in CA_NAMES:
            raise PkiError(f"unknown ca {ca!r}: expected one of {', '.join(CA_NAMES)}")
        return self._ca[ca]

    # --- the CA's records: what the OCSP responders and CRLs answer -------------------

    def authority(self, name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """(certificate, key) of authority `name` (one of AUTHORITIES); KeyError if unknown."""
        found = self._ca[name]
        return found.cert, found.key

    def ocsp_signer(self, name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, bool]:
        """(certificate, key, delegated) that signs authority `name`'s OCSP answers."""
        delegated = self._responders.get(name)
        if delegated is not None:
            return delegated.cert, delegated.key, True
        cert, key = self.authority(name)
        return cert, key, False

    def issuer_of(self, cert: x509.Certificate) -> str | None:
        """The name of the authority that signed `cert` (name and signature), or None."""
        for name, found in self._ca.items():
            if found.cert.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(found.cert)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return name
        return None

    def status(self, name: str, serial: int) -> Revocation | str:
        """A Revocation for a revoked serial of authority `name`, "good" for one it
        issued, "unknown" for any other serial."""
        with self._records.lock:
            revoked = self._records.revoked.get((name, serial))
            if revoked is not None:
                return revoked
            return "good" if serial in self._records.issued.get(name, set()) else "unknown"

    def revoked(self, name: str) -> dict[int, Revocation]:
        """Every revoked serial of authority `name`."""
        with self._records.lock:
            return {s: r for (ca, s), r in self._records.revoked.items() if ca == name}

    def revoke(self, name: str, serial: int, reason: x509.ReasonFlags | None = None) -> Revocation:
        """Record `serial` of authority `name` revoked now (the first revocation stays)."""
        with self._records.lock:
            key = (name, serial)
            if key not in self._records.revoked:
                now = dt.datetime.now(_UTC).replace(microsecond=0)
                self._records.revoked[key] = Revocation(now, reason)
            return self._records.revoked[key]

    def find_serial(self, serial: int) -> str | None:
        """The authority that issued `serial`, or None."""
        with self._records.lock:
            for name, serials in self._records.issued.items():
                if serial in serials:
                    return name
        return None

    def forget_revocations(self) -> None:
        """Un-revoke everything (the emulator's reset: a fresh world)."""
        with self._records.lock:
            self._records.revoked.clear()

    def issue(
        self,
        sans: list[str],
        *,
        ca: str = "one",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        days: float = 90,
        key_type: str = "ec",
        chain: str = "complete",
        serial: int | None = None,
        signature_hash: str = "sha256",
        common_name: str | None = None,
    ) -> tuple[str, str]:
        """Issue a leaf certificate for DNS `sans` (IDNs converted to A-labels).

        Validity: `not_before` defaults to an hour ago; `not_after` to `not_before`
        (or now) plus `days`. Past or future windows give expired / not-yet-valid leaves.
        `key_type` "ec" (P-256), "rsa" (2048) or "rsa1024" (weak); `signature_hash`
        "sha256" or "sha1" (weak); `chain` "complete" (leaf, intermediate), "leaf-only",
        "wrong-order" (intermediate, leaf) or "with-root" (leaf, intermediate, root).
        Returns (chain PEM, PKCS#8 key PEM). Raises PkiError for an invalid recipe.
        """
        authority = self._authority(ca)
        if not sans:
            raise PkiError("a certificate needs at least one subject alternative name")
        if key_type not in KEY_TYPES:
            raise PkiError(f"unknown key_type {key_type!r}: expected one of {', '.join(KEY_TYPES)}")
        if chain not in CHAIN_SHAPES:
            raise PkiError(f"unknown chain {chain!r}: expected one of {', '.join(CHAIN_SHAPES)}")
        if signature_hash not in SIGNATURE_HASHES:
            raise PkiError(
                f"unknown signature_hash {signature_hash!r}: expected one of "
                f"{', '.join(SIGNATURE_HASHES)}"
            )
        names = [to_a_label(san) for san in sans]
        start, end = _validity(not_before, not_after, days)
        if end <= start:
            raise PkiError(f"not_after ({end.isoformat()}) must be after not_before")

        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if key_type == "ec":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = rsa.generate_private_key(65537, 1024 if key_type == "rsa1024" else 2048)
        cn = to_a_label(common_name) if common_name else names[0]
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(authority.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial if serial is not None else x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=key_type != "ec",
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in dict.fromkeys(names)]),
                False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
                False,
            )
        )
        for extension in revocation_extensions(self.base_url, ca):
            builder = builder.add_extension(extension, False)
        leaf = builder.sign(authority.key, hashes.SHA256())
        with self._records.lock:
            self._records.issued.setdefault(ca, set()).add(leaf.serial_number)
        leaf_pem = leaf.public_bytes(serialization.Encoding.PEM).decode("ascii")
        if signature_hash == "sha1":
            leaf_pem = _resign_sha1(leaf, authority.key)

        parts = {
            "complete": [leaf_pem, authority.pem],
            "leaf-only": [leaf_pem],
            "wrong-order": [authority.pem, leaf_pem],
            "with-root": [leaf_pem, authority.pem, self.root_of(ca)],
        }[chain]
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        return "".join(parts), key_pem


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=_UTC)


def _resign_sha1(leaf: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> str:
    """Re-sign `leaf` with SHA-1, which cryptography's builder refuses to do.

    The TBS certificate is re-encoded with the SHA-1 AlgorithmIdentifier and signed
    with the raw primitive, then wrapped in a Certificate SEQUENCE by hand.
    """
    tbs = leaf.tbs_certificate_bytes
    tag, content = _der_split(tbs)
    fields = _der_elements(content)
    # TBSCertificate: [0] version, serialNumber, signature AlgorithmIdentifier, ...
    if fields[2] != _ECDSA_SHA256:
        raise PkiError("unexpected signature algorithm in the leaf to re-sign")
    fields[2] = _ECDSA_SHA1
    new_tbs = _der(tag, b"".join(fields))
    signature = ca_key.sign(new_tbs, ec.ECDSA(hashes.SHA1()))  # noqa: S303  (the point)
    bit_string = _der(0x03, b"\x00" + signature)
    der = _der(0x30, new_tbs + _ECDSA_SHA1 + bit_string)
    cert = x509.load_der_x509_certificate(der)
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _der_split(data: bytes) -> tuple[int, bytes]:
    tag, header, length = _der_header(data, 0)
    return tag, data[header : header + length]


def _der_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, header length, content length) of the DER element at `pos`."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        return tag, 2, first
    count = first & 0x7F
    length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
    return tag, 2 + count, length


def _der_elements(content: bytes) -> list[bytes]:
    out = []
    pos = 0
    while pos < len(content):
        _, header, length = _der_header(content, pos)
        out.append(content[pos : pos + header + length])
        pos += header + length
    return out
