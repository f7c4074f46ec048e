"""Certificates and private keys: reading, format detection, chain normalization.

Reads certificates from PEM, DER, PKCS#7 (PEM or DER) and PKCS#12, and private keys
from PEM/DER (PKCS#1, SEC1, PKCS#8, encrypted or not) or PKCS#12. Every failure is a
narrow `CertificateError` subclass whose message is one line and never carries input
bytes, let alone key material.

Import from here; the modules behind it are:
- `errors`: the CertificateError tree;
- `reading`: size limits, reading files, PEM framing, DER sniffing, `detect_format`
  (bytes only, no cryptography);
- `keys`: private key types and decoding, matching keys to certificates;
- `chain`: signatures, `normalize_chain`, `CertBundle`;
- `loading`: certificates and keys from each format (`load_bundle`, `load_private_key`);
- `summary`: names, dates, fingerprints, `describe`.
"""

from __future__ import annotations

from certpilot.certs.chain import (
    MAX_BUNDLE_CERTIFICATES,
    CertBundle,
    NormalizedChain,
    is_ca,
    is_self_signed,
    normalize_chain,
    signed_by,
    to_pem,
)
from certpilot.certs.errors import (
    BadPassword,
    CertificateError,
    CertificateGivenAsKey,
    CorruptCertificate,
    CorruptKey,
    EmptyInput,
    InputNotFound,
    InputTooLarge,
    InputUnreadable,
    KeyGivenAsCertificate,
    NoCertificate,
    NotACertificate,
    NotAPrivateKey,
    PasswordRequired,
    TruncatedPem,
    UnrecognizedFormat,
    UnsupportedKey,
)
from certpilot.certs.keys import (
    PrivateKey,
    key_description,
    public_key_matches,
    same_key_and_subject,
)
from certpilot.certs.loading import (
    load_bundle,
    load_bundle_file,
    load_certificates,
    load_pem_certificates,
    load_private_key,
    load_private_key_file,
)
from certpilot.certs.reading import MAX_INPUT_BYTES, InputFormat, detect_format, read_input
from certpilot.certs.summary import (
    CertSummary,
    common_name,
    days_left,
    describe,
    dns_sans,
    fingerprint_sha256,
    ip_sans,
    iso_utc,
    issuer_organization,
    public_key_description,
    signature_hash_name,
)

__all__ = [
    "MAX_BUNDLE_CERTIFICATES",
    "MAX_INPUT_BYTES",
    "BadPassword",
    "CertBundle",
    "CertSummary",
    "CertificateError",
    "CertificateGivenAsKey",
    "CorruptCertificate",
    "CorruptKey",
    "EmptyInput",
    "InputFormat",
    "InputNotFound",
    "InputTooLarge",
    "InputUnreadable",
    "KeyGivenAsCertificate",
    "NoCertificate",
    "NormalizedChain",
    "NotACertificate",
    "NotAPrivateKey",
    "PasswordRequired",
    "PrivateKey",
    "TruncatedPem",
    "UnrecognizedFormat",
    "UnsupportedKey",
    "common_name",
    "days_left",
    "describe",
    "detect_format",
    "dns_sans",
    "fingerprint_sha256",
    "ip_sans",
    "is_ca",
    "is_self_signed",
    "iso_utc",
    "issuer_organization",
    "key_description",
    "load_bundle",
    "load_bundle_file",
    "load_certificates",
    "load_pem_certificates",
    "load_private_key",
    "load_private_key_file",
    "normalize_chain",
    "public_key_description",
    "public_key_matches",
    "read_input",
    "same_key_and_subject",
    "signature_hash_name",
    "signed_by",
    "to_pem",
]
