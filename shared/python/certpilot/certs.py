"""Certificates and private keys: reading, format detection, chain normalization.

Reads certificates from PEM, DER, PKCS#7 (PEM or DER) and PKCS#12, and private keys
from PEM/DER (PKCS#1, SEC1, PKCS#8, encrypted or not) or PKCS#12. Every failure is a
narrow `CertificateError` subclass whose message is one line and never carries input
bytes, let alone key material.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

MAX_INPUT_BYTES = 1024 * 1024
MAX_BUNDLE_CERTIFICATES = 50  # a served chain is a handful; more is a CA bundle, not a chain


# ---------------------------------------------------------------- errors


class CertificateError(ValueError):
    """Base of every input problem. The message is always a single bounded line."""

    def __init__(self, message: str) -> None:
        line = " ".join(str(message).split())
        super().__init__(line[:300])


class InputUnreadable(CertificateError):
    """The file could not be read (a directory, no permission, I/O error)."""


class InputNotFound(InputUnreadable):
    """The file does not exist."""


class EmptyInput(CertificateError):
    """The input is empty or only whitespace."""


class InputTooLarge(CertificateError):
    """The input is over the size limit (1 MiB), or holds too many certificates."""


class UnrecognizedFormat(CertificateError):
    """Neither PEM, DER, PKCS#7 nor PKCS#12 (binary garbage, text without PEM)."""


class TruncatedPem(CertificateError):
    """A PEM block has no END line (or an END line has no BEGIN): the file was cut."""


class CorruptCertificate(CertificateError):
    """A certificate block or structure is there but does not parse."""


class CorruptKey(CertificateError):
    """A private key block is there but does not parse."""


class NotACertificate(CertificateError):
    """The input holds something else (a CSR, a public key, a CRL) where certificates
    are expected."""


class KeyGivenAsCertificate(NotACertificate):
    """A private key was given where a certificate is expected."""


class NotAPrivateKey(CertificateError):
    """No private key where one is expected."""


class CertificateGivenAsKey(NotAPrivateKey):
    """A certificate was given where a private key is expected."""


class NoCertificate(CertificateError):
    """A container (PKCS#7, PKCS#12) that holds no certificate."""


class BadPassword(CertificateError):
    """Wrong password for a PKCS#12 file or an encrypted private key."""


class PasswordRequired(BadPassword):
    """The PKCS#12 file or private key is encrypted and no password was given."""


class UnsupportedKey(CertificateError):
    """A key type or key format that TLS server certificates do not use (DSA, OpenSSH)."""


# ---------------------------------------------------------------- formats


class InputFormat(str, enum.Enum):
    """How the certificates were encoded in the input."""

    PEM = "PEM"
    DER = "DER"
    PKCS7_PEM = "PKCS7-PEM"
    PKCS7_DER = "PKCS7-DER"
    PKCS12 = "PKCS12"

    def __str__(self) -> str:
        return self.value


_CERT_LABELS = frozenset({"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"})
_PKCS7_LABELS = frozenset({"PKCS7", "PKCS #7 SIGNED DATA", "CMS"})
_IGNORED_LABELS = frozenset({"EC PARAMETERS"})  # `openssl ecparam` puts it before EC keys
_OTHER_LABELS = {
    "CERTIFICATE REQUEST": "a certificate signing request (CSR)",
    "NEW CERTIFICATE REQUEST": "a certificate signing request (CSR)",
    "PUBLIC KEY": "a public key",
    "RSA PUBLIC KEY": "a public key",
    "X509 CRL": "a certificate revocation list",
}
_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 #]{1,40})-----")
_OID_PKCS7_DATA = bytes.fromhex("06092a864886f70d010701")
_OID_PKCS7_SIGNED = bytes.fromhex("06092a864886f70d010702")


@dataclass(frozen=True)
class _PemBlock:
    label: str
    text: bytes  # the whole block, BEGIN and END lines included
    body: bytes


def _pem_blocks(data: bytes) -> list[_PemBlock]:
    blocks: list[_PemBlock] = []
    pos = 0
    while (match := _BEGIN.search(data, pos)) is not None:
        label = match.group(1).decode("ascii")
        end_marker = b"-----END " + match.group(1) + b"-----"
        end = data.find(end_marker, match.end())
        next_begin = data.find(b"-----BEGIN ", match.end())
        if end < 0 or 0 <= next_begin < end:
            raise TruncatedPem(f"PEM block {label!r} has no END line: the file looks truncated")
        stop = end + len(end_marker)
        blocks.append(_PemBlock(label, data[match.start() : stop], data[match.end() : end]))
        pos = stop
    if data.count(b"-----END ") > len(blocks):
        raise TruncatedPem("a PEM END line has no BEGIN line: the file looks truncated")
    return blocks


def _b64(block: _PemBlock, what: type[CertificateError]) -> bytes:
    body = b"".join(block.body.split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise what(f"PEM block {block.label!r} is not valid base64") from exc


def _der_header(data: bytes, offset: int = 0) -> tuple[int, int, int] | None:
    """(tag, header length, content length) of the DER element at offset, or None."""
    if len(data) < offset + 2:
        return None
    tag, first = data[offset], data[offset + 1]
    if first < 0x80:
        return tag, 2, first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < offset + 2 + count:
        return None
    length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    return tag, 2 + count, length


def _der_kind(data: bytes) -> str | None:
    """Sniff DER structure: 'pkcs12', 'pkcs7' or 'sequence' (maybe a cert or key)."""
    outer = _der_header(data)
    if outer is None or outer[0] != 0x30:
        return None
    inner = data[outer[1] :]
    # PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo { OID data|signedData } }
    if inner.startswith(b"\x02\x01\x03\x30"):
        content = _der_header(inner, 3)
        if content is not None:
            oid = inner[3 + content[1] : 3 + content[1] + len(_OID_PKCS7_DATA)]
            if oid in (_OID_PKCS7_DATA, _OID_PKCS7_SIGNED):
                return "pkcs12"
    if inner.startswith(_OID_PKCS7_SIGNED):
        return "pkcs7"
    return "sequence"


def _first_der_element(data: bytes) -> bytes:
    # OpenSSL's TRUSTED CERTIFICATE is a certificate followed by trust settings.
    header = _der_header(data)
    if header is None:
        return data
    return data[: header[1] + header[2]]


def detect_format(data: bytes) -> InputFormat:
    """Say how `data` encodes certificates, from its structure alone (no full parse).

    Raises EmptyInput, InputTooLarge, TruncatedPem, or UnrecognizedFormat.
    """
    _check_size(data)
    if b"-----BEGIN " in data:
        labels = {block.label for block in _pem_blocks(data)}
        return InputFormat.PKCS7_PEM if labels & _PKCS7_LABELS else InputFormat.PEM
    kind = _der_kind(data)
    if kind == "pkcs12":
        return InputFormat.PKCS12
    if kind == "pkcs7":
        return InputFormat.PKCS7_DER
    if kind == "sequence":
        return InputFormat.DER
    raise _unrecognized(data)


def _check_size(data: bytes, limit: int = MAX_INPUT_BYTES) -> None:
    if len(data) > limit:
        raise InputTooLarge(f"input is over {limit} bytes; a certificate file is a few KiB")
    if not data.strip():
        raise EmptyInput("input is empty")


def _unrecognized(data: bytes) -> UnrecognizedFormat:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return UnrecognizedFormat("unrecognized binary data: not DER, PKCS#7 or PKCS#12")
    if text.isprintable() or all(c.isprintable() or c.isspace() for c in text):
        return UnrecognizedFormat("text without a PEM '-----BEGIN' line: not a certificate")
    return UnrecognizedFormat("unrecognized binary data: not DER, PKCS#7 or PKCS#12")


# ---------------------------------------------------------------- reading


def read_input(path: str | os.PathLike[str], *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """Read a certificate or key file, at most `limit` bytes.

    Raises InputNotFound, InputUnreadable, EmptyInput or InputTooLarge. Messages do
    not repeat the path: callers name the file.
    """
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError as exc:
        raise InputNotFound("no such file") from exc
    except IsADirectoryError as exc:
        raise InputUnreadable("is a directory, not a file") from exc
    except PermissionError as exc:
        raise InputUnreadable("permission denied") from exc
    except OSError as exc:
        raise InputUnreadable(f"cannot be read ({exc.strerror or type(exc).__name__})") from exc
    _check_size(data, limit)
    return data


def _load_cert_der(der: bytes, where: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CorruptCertificate(f"{where} is not a valid X.509 certificate") from exc


def _load_pkcs7_der(der: bytes) -> list[x509.Certificate]:
    try:
        certs = pkcs7.load_der_pkcs7_certificates(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CorruptCertificate("PKCS#7 data does not parse") from exc
    if not certs:
        raise NoCertificate("the PKCS#7 bundle holds no certificate")
    return list(certs)


def _load_pkcs12(
    data: bytes, password: bytes | None
) -> tuple[list[x509.Certificate], PrivateKey | None]:
    # A PKCS#12 made with an empty password opens with b"" but not always with None; an
    # unprotected one refuses a password, which a caller may give for its key anyway.
    attempts: list[bytes | None] = [None, b""] if password is None else [password, None, b""]
    for attempt in attempts:
        try:
            loaded = pkcs12.load_pkcs12(data, attempt)
        except (ValueError, UnsupportedAlgorithm):
            continue
        break
    else:
        if password is None:
            raise PasswordRequired(
                "the PKCS#12 file is password-protected and no password was given"
            )
        raise BadPassword("wrong PKCS#12 password (or a damaged or unsupported PKCS#12 file)")
    certs = [loaded.cert.certificate] if loaded.cert is not None else []
    certs.extend(extra.certificate for extra in loaded.additional_certs)
    key = _check_key_type(loaded.key) if loaded.key is not None else None
    return certs, key


def _check_key_type(key: object) -> PrivateKey:
    if isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        return key
    if isinstance(key, dsa.DSAPrivateKey):
        raise UnsupportedKey("DSA keys are not used for TLS server certificates")
    raise UnsupportedKey(f"unsupported private key type {type(key).__name__}")


def _load_pem_key(block: _PemBlock, password: bytes | None) -> PrivateKey:
    if block.label == "OPENSSH PRIVATE KEY":
        raise UnsupportedKey("OpenSSH private key format: convert it to PKCS#8 PEM")
    encrypted = block.label == "ENCRYPTED PRIVATE KEY" or b"ENCRYPTED" in block.body[:200]
    if encrypted and password is None:
        raise PasswordRequired("the private key is encrypted and no password was given")
    try:
        key = serialization.load_pem_private_key(block.text, password if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise BadPassword("wrong password for the encrypted private key") from exc
        raise CorruptKey(f"PEM block {block.label!r} is not a valid private key") from exc
    except TypeError as exc:
        raise CorruptKey(f"PEM block {block.label!r} is not a valid private key") from exc
    except UnsupportedAlgorithm as exc:
        raise UnsupportedKey(f"PEM block {block.label!r} uses an unsupported algorithm") from exc
    return _check_key_type(key)


def _der_private_key(data: bytes, password: bytes | None) -> PrivateKey | None:
    """The DER private key in data, or None when data is not one."""
    try:
        key = serialization.load_der_private_key(data, None)
    except TypeError:  # parsed far enough to know it is an encrypted key
        if password is None:
            raise PasswordRequired(
                "the private key is encrypted and no password was given"
            ) from None
        try:
            key = serialization.load_der_private_key(data, password)
        except (ValueError, TypeError) as exc:
            raise BadPassword("wrong password for the encrypted private key") from exc
    except (ValueError, UnsupportedAlgorithm):
        return None
    return _check_key_type(key)


@dataclass(frozen=True)
class _Loaded:
    certs: list[x509.Certificate]
    key: PrivateKey | None
    fmt: InputFormat


def _load_any(data: bytes, password: bytes | None) -> _Loaded:
    _check_size(data)
    if b"-----BEGIN " in data:
        return _load_pem(data, password)
    kind = _der_kind(data)
    if kind == "pkcs12":
        certs, key = _load_pkcs12(data, password)
        if not certs:
            raise NoCertificate("the PKCS#12 file holds no certificate")
        return _Loaded(certs, key, InputFormat.PKCS12)
    if kind == "pkcs7":
        return _Loaded(_load_pkcs7_der(data), None, InputFormat.PKCS7_DER)
    if kind == "sequence":
        try:
            return _Loaded([x509.load_der_x509_certificate(data)], None, InputFormat.DER)
        except ValueError:
            pass
        try:
            is_key = _der_private_key(data, None) is not None
        except (BadPassword, UnsupportedKey):
            is_key = True
        if is_key:
            raise KeyGivenAsCertificate("expected a certificate but the file holds a private key")
        raise UnrecognizedFormat("DER data that is neither a certificate, PKCS#7 nor PKCS#12")
    raise _unrecognized(data)


def _load_pem(data: bytes, password: bytes | None) -> _Loaded:
    blocks = _pem_blocks(data)
    certs: list[x509.Certificate] = []
    key_blocks: list[_PemBlock] = []
    others: list[str] = []
    pkcs7_seen = False
    for number, block in enumerate(blocks, start=1):
        if block.label in _CERT_LABELS:
            der = _b64(block, CorruptCertificate)
            if block.label == "TRUSTED CERTIFICATE":
                der = _first_der_element(der)
            certs.append(_load_cert_der(der, f"PEM block {number} ({block.label})"))
        elif block.label in _PKCS7_LABELS:
            certs.extend(_load_pkcs7_der(_b64(block, CorruptCertificate)))
            pkcs7_seen = True
        elif block.label.endswith("PRIVATE KEY"):
            key_blocks.append(block)
        elif block.label not in _IGNORED_LABELS:
            others.append(block.label)
    if not certs:
        if key_blocks:
            raise KeyGivenAsCertificate("expected a certificate but the file holds a private key")
        if others:
            what = _OTHER_LABELS.get(others[0], f"a PEM {others[0]!r} block")
            raise NotACertificate(f"expected a certificate but the file holds {what}")
        raise NoCertificate("the file holds no certificate")
    # A combined "chain + key" PEM (haproxy style) is accepted; its key is checked too.
    key = _load_pem_key(key_blocks[0], password) if key_blocks else None
    return _Loaded(certs, key, InputFormat.PKCS7_PEM if pkcs7_seen else InputFormat.PEM)


def load_pem_certificates(data: bytes, *, skip_invalid: bool = False) -> list[x509.Certificate]:
    """Every certificate block of PEM text (CA bundles); other blocks are ignored.

    With `skip_invalid`, blocks that do not parse are skipped instead of raising
    CorruptCertificate. Raises TruncatedPem for a cut file.
    """
    found: list[x509.Certificate] = []
    for number, block in enumerate(_pem_blocks(data), start=1):
        if block.label not in _CERT_LABELS:
            continue
        try:
            der = _b64(block, CorruptCertificate)
            if block.label == "TRUSTED CERTIFICATE":
                der = _first_der_element(der)
            found.append(_load_cert_der(der, f"PEM block {number} ({block.label})"))
        except CorruptCertificate:
            if not skip_invalid:
                raise
    return found


def load_certificates(
    data: bytes, password: bytes | None = None
) -> tuple[list[x509.Certificate], InputFormat]:
    """Every certificate in `data`, in input order, and the detected format.

    Raises a CertificateError subclass (EmptyInput, InputTooLarge, UnrecognizedFormat,
    TruncatedPem, CorruptCertificate, KeyGivenAsCertificate, NotACertificate,
    NoCertificate, BadPassword, PasswordRequired, ...).
    """
    loaded = _load_any(data, password)
    return loaded.certs, loaded.fmt


def load_bundle(data: bytes, password: bytes | None = None) -> CertBundle:
    """Parse certificate input of any supported format into a normalized CertBundle.

    A private key found in the input (PKCS#12, combined PEM) becomes `bundle.key`.
    Raises a CertificateError subclass, see `load_certificates`.
    """
    loaded = _load_any(data, password)
    # PKCS#7 and PKCS#12 hold a SET of certificates: their order carries no meaning.
    order_matters = loaded.fmt in (InputFormat.PEM, InputFormat.DER)
    return CertBundle.from_certificates(
        loaded.certs, key=loaded.key, source_format=loaded.fmt, order_matters=order_matters
    )


def load_bundle_file(path: str | os.PathLike[str], password: bytes | None = None) -> CertBundle:
    """`read_input` then `load_bundle`."""
    return load_bundle(read_input(path), password)


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """Parse a private key: PEM or DER, PKCS#1/SEC1/PKCS#8 (encrypted or not), PKCS#12.

    Supports RSA, ECDSA, Ed25519 (and Ed448). Raises EmptyInput, InputTooLarge,
    TruncatedPem, CertificateGivenAsKey, NotAPrivateKey, CorruptKey, BadPassword,
    PasswordRequired, UnsupportedKey or UnrecognizedFormat.
    """
    _check_size(data)
    if b"-----BEGIN " in data:
        blocks = _pem_blocks(data)
        keys = [block for block in blocks if block.label.endswith("PRIVATE KEY")]
        if not keys:
            if any(b.label in _CERT_LABELS | _PKCS7_LABELS for b in blocks):
                raise CertificateGivenAsKey(
                    "expected a private key but the file holds only certificates"
                )
            raise NotAPrivateKey("the file holds no private key")
        if len(keys) > 1:
            raise NotAPrivateKey(f"the file holds {len(keys)} private keys; expected one")
        return _load_pem_key(keys[0], password)
    kind = _der_kind(data)
    if kind == "pkcs12":
        _, key = _load_pkcs12(data, password)
        if key is None:
            raise NotAPrivateKey("the PKCS#12 file holds no private key")
        return key
    if kind == "pkcs7":
        raise CertificateGivenAsKey("expected a private key but the file is a PKCS#7 bundle")
    if kind == "sequence":
        key = _der_private_key(data, password)
        if key is not None:
            return key
        try:
            x509.load_der_x509_certificate(data)
        except ValueError:
            raise UnrecognizedFormat("DER data that is not a private key") from None
        raise CertificateGivenAsKey("expected a private key but the file holds a certificate")
    raise _unrecognized(data)


def load_private_key_file(
    path: str | os.PathLike[str], password: bytes | None = None
) -> PrivateKey:
    """`read_input` then `load_private_key`."""
    return load_private_key(read_input(path), password)


# ---------------------------------------------------------------- chains


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when `issuer`'s name is `cert`'s issuer and its key verifies `cert`'s signature.

    Also verifies legacy signatures (SHA-1, MD5) so that weak chains are still
    assembled and reported as WEAK_SIGNATURE rather than as broken.
    """
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return _verify_legacy(cert, issuer)
    return True


def _verify_legacy(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        public = issuer.public_key()
        digest = cert.signature_hash_algorithm
        params = cert.signature_algorithm_parameters
        if isinstance(public, rsa.RSAPublicKey):
            # cryptography reports no padding for md5WithRSAEncryption; it is PKCS#1 v1.5.
            params = padding.PKCS1v15() if params is None else params
            if not isinstance(params, padding.PKCS1v15 | padding.PSS) or digest is None:
                return False
            public.verify(cert.signature, cert.tbs_certificate_bytes, params, digest)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            if not isinstance(params, ec.ECDSA):
                return False
            public.verify(cert.signature, cert.tbs_certificate_bytes, params)
        elif isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    """True when the certificate is signed by its own key under its own name."""
    return signed_by(cert, cert)


def is_ca(cert: x509.Certificate) -> bool:
    """True when basicConstraints says CA (a malformed extension counts as not CA)."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return constraints.ca


def _spki(public_key: object) -> bytes:
    assert hasattr(public_key, "public_bytes")
    data: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def public_key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    """True when `key` is the private half of the certificate's public key."""
    try:
        return _spki(cert.public_key()) == _spki(key.public_key())
    except (ValueError, UnsupportedAlgorithm):
        return False


def same_key_and_subject(a: x509.Certificate, b: x509.Certificate) -> bool:
    """True when both certificates name the same subject with the same public key
    (a re-issued or cross-signed CA: the same trust anchor)."""
    if a.subject != b.subject:
        return False
    try:
        return _spki(a.public_key()) == _spki(b.public_key())
    except (ValueError, UnsupportedAlgorithm):
        return False


@dataclass(frozen=True)
class NormalizedChain:
    """A bundle reordered as servers must send it."""

    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    root: x509.Certificate | None  # a self-signed CA found at the end of the chain
    order_was_wrong: bool
    duplicates_removed: int
    unrelated: tuple[x509.Certificate, ...]  # certificates that are not on the leaf's chain


def normalize_chain(
    certs: Sequence[x509.Certificate],
    key: PrivateKey | None = None,
    *,
    order_matters: bool = True,
) -> NormalizedChain:
    """Order certificates leaf first, then each issuer, without duplicates or root.

    The leaf is the certificate that issued no other certificate of the bundle
    (preferring one matching `key`, then a non-CA one, then the longest chain, then
    input order). Issuance means name match plus a verified signature. Certificates
    not on the leaf's chain land in `unrelated`. `order_was_wrong` reports whether the
    input order differed (always False when `order_matters` is False).
    Raises NoCertificate for an empty sequence and InputTooLarge for a huge one.
    """
    if not certs:
        raise NoCertificate("no certificate given")
    unique: list[x509.Certificate] = []
    first_seen: list[int] = []  # input position of each unique certificate
    seen: set[bytes] = set()
    for position, cert in enumerate(certs):
        der = cert.public_bytes(serialization.Encoding.DER)
        if der not in seen:
            seen.add(der)
            unique.append(cert)
            first_seen.append(position)
    if len(unique) > MAX_BUNDLE_CERTIFICATES:
        raise InputTooLarge(
            f"{len(unique)} certificates; a server chain holds at most {MAX_BUNDLE_CERTIFICATES}"
        )
    count = len(unique)
    # issuers_of[j]: indexes of other certificates that signed certificate j.
    issuers_of = {
        j: [i for i in range(count) if i != j and signed_by(unique[j], unique[i])]
        for j in range(count)
    }
    issued_something = {i for issuers in issuers_of.values() for i in issuers}
    self_signed = {i for i in range(count) if is_self_signed(unique[i])}

    def walk(start: int) -> list[int]:
        path, current = [start], start
        while current not in self_signed:
            # Prefer a non-root issuer: it continues the chain (cross-signed CAs).
            options = sorted(
                (i for i in issuers_of[current] if i not in path),
                key=lambda i: (i in self_signed, i),
            )
            if not options:
                break
            current = options[0]
            path.append(current)
        return path

    candidates = [i for i in range(count) if i not in issued_something] or [0]
    if key is not None:
        matching = [i for i in candidates if public_key_matches(unique[i], key)]
        candidates = matching or candidates
    non_ca = [i for i in candidates if not is_ca(unique[i])]
    candidates = non_ca or candidates
    paths = [walk(i) for i in candidates]
    path = max(paths, key=len)  # max() keeps the first of equals: input order breaks ties

    root_index = path[-1] if len(path) > 1 and path[-1] in self_signed else None
    chain_indexes = path[:-1] if root_index is not None else path
    positions = [first_seen[i] for i in path]
    return NormalizedChain(
        leaf=unique[path[0]],
        intermediates=tuple(unique[i] for i in chain_indexes[1:]),
        root=unique[root_index] if root_index is not None else None,
        order_was_wrong=order_matters and positions != sorted(positions),
        duplicates_removed=len(certs) - count,
        unrelated=tuple(unique[i] for i in range(count) if i not in path),
    )


def to_pem(certs: Sequence[x509.Certificate]) -> str:
    """Concatenated PEM of the certificates, in the given order."""
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


@dataclass(frozen=True)
class CertBundle:
    """A parsed, normalized certificate chain (leaf first, no root) and maybe its key."""

    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...] = ()
    key: PrivateKey | None = field(default=None, repr=False, compare=False)
    source_format: InputFormat = InputFormat.PEM
    order_was_wrong: bool = False
    root: x509.Certificate | None = None  # the self-signed root, when the input had it
    duplicates_removed: int = 0
    unrelated: tuple[x509.Certificate, ...] = ()

    @property
    def root_included(self) -> bool:
        """Whether the input included the chain's self-signed root."""
        return self.root is not None

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Leaf then intermediates: what a server sends."""
        return (self.leaf, *self.intermediates)

    def to_pem_bundle(self) -> str:
        """The normalized chain as PEM text: leaf first, intermediates, no root, no key."""
        return to_pem(self.chain)

    @classmethod
    def from_certificates(
        cls,
        certs: Sequence[x509.Certificate],
        *,
        key: PrivateKey | None = None,
        source_format: InputFormat = InputFormat.PEM,
        order_matters: bool = True,
    ) -> CertBundle:
        """Normalize `certs` (see `normalize_chain`) into a bundle."""
        chain = normalize_chain(certs, key, order_matters=order_matters)
        return cls(
            leaf=chain.leaf,
            intermediates=chain.intermediates,
            key=key,
            source_format=source_format,
            order_was_wrong=chain.order_was_wrong,
            root=chain.root,
            duplicates_removed=chain.duplicates_removed,
            unrelated=chain.unrelated,
        )


# ---------------------------------------------------------------- description


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z suffix, seconds precision."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as colon-separated upper hex (AB:CD:...)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def dns_sans(cert: x509.Certificate) -> tuple[str, ...]:
    """The dNSName entries of subjectAltName, as written in the certificate.

    Raises CorruptCertificate when the extension is malformed.
    """
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    except ValueError as exc:
        raise CorruptCertificate("the certificate's extensions do not parse") from exc
    return tuple(ext.value.get_values_for_type(x509.DNSName))


def ip_sans(cert: x509.Certificate) -> tuple[str, ...]:
    """The iPAddress entries of subjectAltName, as text."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    except ValueError as exc:
        raise CorruptCertificate("the certificate's extensions do not parse") from exc
    return tuple(str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress))


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


def key_description(public_key: object) -> tuple[str, int]:
    """(type, bits) of a public or private key: ("RSA", 2048), ("EC", 256), ("Ed25519", 256)."""
    if isinstance(public_key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "RSA", public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return "EC", public_key.curve.key_size
    if isinstance(public_key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "Ed25519", 256
    if isinstance(public_key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return "Ed448", 456
    if isinstance(public_key, dsa.DSAPublicKey | dsa.DSAPrivateKey):
        return "DSA", public_key.key_size
    return type(public_key).__name__, 0


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


def days_left(cert: x509.Certificate, now: datetime) -> int:
    """Whole days from `now` to notAfter, rounded down (negative once expired)."""
    return (cert.not_valid_after_utc - now) // timedelta(days=1)


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
