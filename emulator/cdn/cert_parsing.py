"""Reading the certificates CDN calls carry (SSLPub, SSLPri) and which names they cover."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from emulator import certinfo
from emulator.cdn.errors import invalid
from emulator.core import ServiceError


def names_cover(names: Iterable[str], domain: str) -> bool:
    """True when one of the certificate names covers `domain` (RFC 6125, one-label `*`).

    A wildcard CDN domain (".example.com" / "*.example.com") is covered only by the
    same wildcard name.
    """
    host = "*" + domain if domain.startswith(".") else domain
    return any(certinfo.name_covers(name, host) for name in names)


@dataclass(frozen=True)
class ParsedCert:
    """The facts about a certificate that the CDN reports (the leaf of a chain)."""

    leaf: x509.Certificate
    names: tuple[str, ...]  # DNS SANs, or the CN when there are none
    common_name: str
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, leaf: x509.Certificate) -> ParsedCert:
        return cls(
            leaf=leaf,
            names=tuple(certinfo.dns_names(leaf)),
            common_name=certinfo.common_name(leaf),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
        )

    @property
    def issuer(self) -> str:
        """The issuer DN the way DescribeCdnDomainByCertificate prints it (`C=.., O=..`)."""
        return ", ".join(
            f"{attr.rfc4514_attribute_name}={attr.value!s}"
            for rdn in self.leaf.issuer.rdns
            for attr in rdn
        )

    @property
    def key_type(self) -> str:
        """RSA | ECDSA | DSA, the CertType of DescribeCdnDomainByCertificate."""
        key = self.leaf.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            return "RSA"
        if isinstance(key, ec.EllipticCurvePublicKey):
            return "ECDSA"
        if isinstance(key, dsa.DSAPublicKey):
            return "DSA"
        return type(key).__name__

    @property
    def life(self) -> str:
        """CertLife: "3 months", "1 years"."""
        months = max(1, round((self.not_after - self.not_before).days / 30.4))
        if months >= 12 and months % 12 == 0:
            return f"{months // 12} years"
        return f"{months} months"


def _certificates(pem: str) -> tuple[x509.Certificate, ...]:
    """The certificates of an SSLPub; raises InvalidSSLPub / Certificate.FormatError."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise invalid("InvalidSSLPub", "The specified SSLPub is invalid.")
    try:
        return certinfo.parse_certificates(pem)
    except certinfo.CertificateProblem:
        raise invalid(
            "Certificate.FormatError", "The format of the certificate is invalid."
        ) from None


def parse_public(pem: str) -> ParsedCert:
    """The leaf of a chain given without its key: the first non-CA certificate.

    Raises InvalidSSLPub or Certificate.FormatError.
    """
    chain = _certificates(pem)
    for cert in chain:
        try:
            if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                return ParsedCert.of(cert)
        except x509.ExtensionNotFound:
            return ParsedCert.of(cert)
    return ParsedCert.of(chain[0])


def parse_upload(cert_pem: str, key_pem: str) -> ParsedCert:
    """The leaf (the certificate the key belongs to) of an uploaded chain.

    Raises InvalidSSLPub, Certificate.FormatError, InvalidSSLPri or Certificate.MissMatch.
    """
    _certificates(cert_pem)
    try:
        return ParsedCert.of(certinfo.parse_bundle(cert_pem, key_pem).leaf)
    except certinfo.CertificateProblem as problem:
        if problem.kind == "key":
            raise invalid("InvalidSSLPri", "The specified SSLPri is invalid.") from None
        raise invalid(
            "Certificate.MissMatch", "The SSLPri does not match the certificate."
        ) from None


@functools.lru_cache(maxsize=2048)
def bound_leaf(cert_pem: str, key_pem: str) -> ParsedCert:
    """The leaf of a bound (already validated) certificate; cached, lists read many."""
    try:
        return parse_upload(cert_pem, key_pem)
    except ServiceError:
        return parse_public(cert_pem)


def decode_ssl_pub(raw: str) -> str:
    """SSLPub as DescribeCdnDomainByCertificate takes it: PEM, or base64 of the PEM.

    Raises InvalidSSLPub when it is neither.
    """
    text = unquote(raw) if "%" in raw else raw
    if "-----BEGIN" in text:
        return text
    try:
        return base64.b64decode(text.strip(), validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid("InvalidSSLPub", "The specified SSLPub is invalid.") from None
