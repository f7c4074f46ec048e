"""Private keys: the types TLS servers use, decoding one PEM or DER key, and matching
keys to certificates."""

from __future__ import annotations

from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from certpilot.certs.errors import BadPassword, CorruptKey, PasswordRequired, UnsupportedKey
from certpilot.certs.reading import PemBlock

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


def check_key_type(key: object) -> PrivateKey:
    """`key` when it is a supported private key. Raises UnsupportedKey (DSA, others)."""
    if isinstance(key, PrivateKey):
        return key
    if isinstance(key, dsa.DSAPrivateKey):
        raise UnsupportedKey("DSA keys are not used for TLS server certificates")
    raise UnsupportedKey(f"unsupported private key type {type(key).__name__}")


def pem_private_key(block: PemBlock, password: bytes | None) -> PrivateKey:
    """The private key of one PEM block.

    Raises PasswordRequired, BadPassword, CorruptKey or UnsupportedKey.
    """
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
    return check_key_type(key)


def der_private_key(data: bytes, password: bytes | None) -> PrivateKey | None:
    """The DER private key in data, or None when data is not one.

    Raises PasswordRequired, BadPassword or UnsupportedKey.
    """
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
    return check_key_type(key)


def _same_public_key(cert: x509.Certificate, other: x509.Certificate | PrivateKey) -> bool:
    # A key algorithm cryptography cannot load (SM2, for instance) matches nothing.
    try:
        return _spki(cert.public_key()) == _spki(other.public_key())
    except (ValueError, UnsupportedAlgorithm):
        return False


def _spki(public_key: object) -> bytes:
    assert hasattr(public_key, "public_bytes")
    data: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def public_key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    """True when `key` is the private half of the certificate's public key."""
    return _same_public_key(cert, key)


def same_key_and_subject(a: x509.Certificate, b: x509.Certificate) -> bool:
    """True when both certificates name the same subject with the same public key
    (a re-issued or cross-signed CA: the same trust anchor)."""
    return a.subject == b.subject and _same_public_key(a, b)


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
