"""Certificates and private keys from each input format: PEM, DER, PKCS#7 (PEM or DER)
and PKCS#12, keys also as PKCS#1, SEC1 or PKCS#8 (encrypted or not)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certpilot.certs.chain import CertBundle
from certpilot.certs.errors import (
    BadPassword,
    CertificateGivenAsKey,
    CorruptCertificate,
    KeyGivenAsCertificate,
    NoCertificate,
    NotACertificate,
    NotAPrivateKey,
    PasswordRequired,
    UnrecognizedFormat,
    UnsupportedKey,
)
from certpilot.certs.keys import PrivateKey, check_key_type, der_private_key, pem_private_key
from certpilot.certs.reading import (
    CERT_LABELS,
    IGNORED_LABELS,
    OTHER_LABELS,
    PKCS7_LABELS,
    InputFormat,
    PemBlock,
    block_der,
    check_size,
    der_kind,
    first_der_element,
    pem_blocks,
    read_input,
    unrecognized,
)


def _load_cert_der(der: bytes, where: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CorruptCertificate(f"{where} is not a valid X.509 certificate") from exc


def _pem_certificate(block: PemBlock, number: int) -> x509.Certificate:
    der = block_der(block, CorruptCertificate)
    if block.label == "TRUSTED CERTIFICATE":
        der = first_der_element(der)
    return _load_cert_der(der, f"PEM block {number} ({block.label})")


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
    key = check_key_type(loaded.key) if loaded.key is not None else None
    return certs, key


@dataclass(frozen=True)
class _Loaded:
    certs: list[x509.Certificate]
    key: PrivateKey | None
    fmt: InputFormat


def _load_any(data: bytes, password: bytes | None) -> _Loaded:
    check_size(data)
    if b"-----BEGIN " in data:
        return _load_pem(data, password)
    kind = der_kind(data)
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
            is_key = der_private_key(data, None) is not None
        except (BadPassword, UnsupportedKey):
            is_key = True
        if is_key:
            raise KeyGivenAsCertificate("expected a certificate but the file holds a private key")
        raise UnrecognizedFormat("DER data that is neither a certificate, PKCS#7 nor PKCS#12")
    raise unrecognized(data)


def _load_pem(data: bytes, password: bytes | None) -> _Loaded:
    blocks = pem_blocks(data)
    certs: list[x509.Certificate] = []
    key_blocks: list[PemBlock] = []
    others: list[str] = []
    pkcs7_seen = False
    for number, block in enumerate(blocks, start=1):
        if block.label in CERT_LABELS:
            certs.append(_pem_certificate(block, number))
        elif block.label in PKCS7_LABELS:
            certs.extend(_load_pkcs7_der(block_der(block, CorruptCertificate)))
            pkcs7_seen = True
        elif block.label.endswith("PRIVATE KEY"):
            key_blocks.append(block)
        elif block.label not in IGNORED_LABELS:
            others.append(block.label)
    if not certs:
        if key_blocks:
            raise KeyGivenAsCertificate("expected a certificate but the file holds a private key")
        if others:
            what = OTHER_LABELS.get(others[0], f"a PEM {others[0]!r} block")
            raise NotACertificate(f"expected a certificate but the file holds {what}")
        raise NoCertificate("the file holds no certificate")
    # A combined "chain + key" PEM (haproxy style) is accepted; its key is checked too.
    key = pem_private_key(key_blocks[0], password) if key_blocks else None
    return _Loaded(certs, key, InputFormat.PKCS7_PEM if pkcs7_seen else InputFormat.PEM)


def load_pem_certificates(data: bytes, *, skip_invalid: bool = False) -> list[x509.Certificate]:
    """Every certificate block of PEM text (CA bundles); other blocks are ignored.

    With `skip_invalid`, blocks that do not parse are skipped instead of raising
    CorruptCertificate. Raises TruncatedPem for a cut file.
    """
    found: list[x509.Certificate] = []
    for number, block in enumerate(pem_blocks(data), start=1):
        if block.label not in CERT_LABELS:
            continue
        try:
            found.append(_pem_certificate(block, number))
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
    check_size(data)
    if b"-----BEGIN " in data:
        blocks = pem_blocks(data)
        keys = [block for block in blocks if block.label.endswith("PRIVATE KEY")]
        if not keys:
            if any(b.label in CERT_LABELS | PKCS7_LABELS for b in blocks):
                raise CertificateGivenAsKey(
                    "expected a private key but the file holds only certificates"
                )
            raise NotAPrivateKey("the file holds no private key")
        if len(keys) > 1:
            raise NotAPrivateKey(f"the file holds {len(keys)} private keys; expected one")
        return pem_private_key(keys[0], password)
    kind = der_kind(data)
    if kind == "pkcs12":
        _, key = _load_pkcs12(data, password)
        if key is None:
            raise NotAPrivateKey("the PKCS#12 file holds no private key")
        return key
    if kind == "pkcs7":
        raise CertificateGivenAsKey("expected a private key but the file is a PKCS#7 bundle")
    if kind == "sequence":
        key = der_private_key(data, password)
        if key is not None:
            return key
        try:
            x509.load_der_x509_certificate(data)
        except ValueError:
            raise UnrecognizedFormat("DER data that is not a private key") from None
        raise CertificateGivenAsKey("expected a private key but the file holds a certificate")
    raise unrecognized(data)


def load_private_key_file(
    path: str | os.PathLike[str], password: bytes | None = None
) -> PrivateKey:
    """`read_input` then `load_private_key`."""
    return load_private_key(read_input(path), password)
