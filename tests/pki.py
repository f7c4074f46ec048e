"""A test PKI made at test time: roots, intermediates, leaves, in any shape.

Nothing here is committed key material: keys are generated per process (and cached
so that RSA generation does not dominate the run). `NOW` is the fixed instant the
unit tests judge at; `real_now()` is for tests that talk to real TLS stacks.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

KEY_KINDS = ("rsa2048", "ec256", "ed25519")


def real_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@functools.cache
def make_key(kind: str = "ec256", slot: int = 0) -> Key:
    """A private key of `kind`; the same (kind, slot) gives the same key in a process."""
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    curves = {"ec256": ec.SECP256R1(), "ec384": ec.SECP384R1(), "ec224": ec.SECP224R1()}
    if kind in curves:
        return ec.generate_private_key(curves[kind])
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind}")


def _hash(name: str, key: Key) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    choices: dict[str, hashes.SHA256 | hashes.SHA384 | hashes.SHA512] = {
        "sha256": hashes.SHA256(),
        "sha384": hashes.SHA384(),
        "sha512": hashes.SHA512(),
    }
    return choices[name]


def _name(cn: str | None, org: str | None = None) -> x509.Name:
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


# DER surgery for legacy signatures: cryptography no longer signs certificates with
# SHA-1 or MD5, so build with SHA-256 and re-sign the TBS under the old algorithm.
_SHA256_RSA = bytes.fromhex("2a864886f70d01010b")
_LEGACY_RSA = {
    "sha1": bytes.fromhex("2a864886f70d010105"),
    "md5": bytes.fromhex("2a864886f70d010104"),
}


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def _resign_legacy(cert: x509.Certificate, issuer_key: Key, digest: str) -> x509.Certificate:
    if not isinstance(issuer_key, rsa.RSAPrivateKey):
        raise ValueError("legacy signatures are made with RSA issuers only")
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(_SHA256_RSA) == 1
    oid = _LEGACY_RSA[digest]
    tbs = tbs.replace(_SHA256_RSA, oid)
    algorithm = hashes.SHA1() if digest == "sha1" else hashes.MD5()  # noqa: S303 - on purpose
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), algorithm)
    alg_id = _tlv(0x30, _tlv(0x06, oid) + b"\x05\x00")
    der = _tlv(0x30, tbs + alg_id + _tlv(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: Key = field(repr=False)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def _sign(builder: x509.CertificateBuilder, issuer_key: Key, digest: str) -> x509.Certificate:
    if digest in _LEGACY_RSA:
        return _resign_legacy(builder.sign(issuer_key, hashes.SHA256()), issuer_key, digest)
    return builder.sign(issuer_key, _hash(digest, issuer_key))


def _identified(
    builder: x509.CertificateBuilder, key: Key, issuer: Issued | None, sans: Sequence[str]
) -> x509.CertificateBuilder:
    """Add the key identifiers (AKI only under an issuer) and the DNS SANs, if any."""
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    return builder


def make_ca(
    cn: str = "certpilot Test Root",
    *,
    issuer: Issued | None = None,
    key_kind: str = "ec256",
    slot: int = 0,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    digest: str = "sha256",
    org: str | None = "certpilot tests",
    ca: bool = True,
    base: datetime = NOW,
    sans: Sequence[str] = (),
) -> Issued:
    """A root (issuer None: self-signed) or an intermediate CA (with `ca=False` and
    `sans`, a self-signed server certificate)."""
    key = make_key(key_kind, slot)
    signer_key = issuer.key if issuer is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, org))
        .issuer_name(issuer.cert.subject if issuer is not None else _name(cn, org))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or base - 3650 * DAY)
        .not_valid_after(not_after or base + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return Issued(_sign(_identified(builder, key, issuer, sans), signer_key, digest), key)


def make_leaf(
    issuer: Issued,
    sans: Sequence[str] = ("www.example.com",),
    *,
    cn: str | None = None,
    key_kind: str = "ec256",
    slot: int = 0,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    digest: str = "sha256",
    base: datetime = NOW,
) -> Issued:
    """A server certificate with these DNS SANs (none: no SAN extension at all)."""
    key = make_key(key_kind, slot + 100)
    subject_cn = cn if cn is not None else (sans[0] if sans else None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject_cn, None))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or base - 30 * DAY)
        .not_valid_after(not_after or base + 60 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    return Issued(_sign(_identified(builder, key, issuer, sans), issuer.key, digest), key)


@dataclass(frozen=True)
class Pki:
    """root -> intermediates (top-down) -> leaf."""

    root: Issued
    intermediates: tuple[Issued, ...]
    leaf: Issued

    @property
    def chain(self) -> list[x509.Certificate]:
        """Leaf first, then intermediates bottom-up: what a server should send."""
        return [self.leaf.cert, *(i.cert for i in reversed(self.intermediates))]

    def chain_pem(self, *, include_root: bool = False) -> bytes:
        certs = self.chain + ([self.root.cert] if include_root else [])
        return pem(*certs)


def build_pki(
    sans: Sequence[str] = ("www.example.com",),
    *,
    depth: int = 1,
    leaf_key: str = "ec256",
    ca_key: str = "ec256",
    root_cn: str = "certpilot Test Root",
    slot: int = 0,
    leaf_not_before: datetime | None = None,
    leaf_not_after: datetime | None = None,
    leaf_digest: str = "sha256",
    ca_digest: str = "sha256",
    cn: str | None = None,
    base: datetime = NOW,
) -> Pki:
    """A root, `depth` intermediates and a leaf for `sans`."""
    root = make_ca(root_cn, key_kind=ca_key, slot=slot, base=base)
    issuer, intermediates = root, []
    for level in range(depth):
        issuer = make_ca(
            f"certpilot Test Intermediate {level + 1}",
            issuer=issuer,
            key_kind=ca_key,
            slot=slot * 10 + level + 1,
            digest=ca_digest,
            base=base,
        )
        intermediates.append(issuer)
    leaf = make_leaf(
        issuer,
        sans,
        cn=cn,
        key_kind=leaf_key,
        slot=slot,
        not_before=leaf_not_before,
        not_after=leaf_not_after,
        digest=leaf_digest,
        base=base,
    )
    return Pki(root, tuple(intermediates), leaf)


# ------------------------------------------------------------------ encodings


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def p7b(certs: Sequence[x509.Certificate], *, as_pem: bool = False) -> bytes:
    encoding = serialization.Encoding.PEM if as_pem else serialization.Encoding.DER
    return pkcs7.serialize_certificates(list(certs), encoding)


def _encryption(password: bytes | None) -> serialization.KeySerializationEncryption:
    if password:
        return serialization.BestAvailableEncryption(password)
    return serialization.NoEncryption()


def p12(
    key: Key | None,
    cert: x509.Certificate | None,
    cas: Sequence[x509.Certificate] = (),
    password: bytes | None = None,
) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"test", key, cert, list(cas) or None, _encryption(password)
    )


def key_bytes(
    key: Key, fmt: str = "pkcs8", *, as_pem: bool = True, password: bytes | None = None
) -> bytes:
    """Serialize a key: fmt pkcs8 | traditional (PKCS#1 for RSA, SEC1 for EC)."""
    encoding = serialization.Encoding.PEM if as_pem else serialization.Encoding.DER
    private_format = (
        serialization.PrivateFormat.PKCS8
        if fmt == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return key.private_bytes(encoding, private_format, _encryption(password))


def key_markers(key: Key) -> list[bytes]:
    """Byte strings that would reveal this key if they appeared in output."""
    raw = key_bytes(key, as_pem=True)
    body = b"".join(raw.splitlines()[1:-1])
    return [b"PRIVATE KEY", body[:40], body[-40:]]
