"""The `CertificateError` tree: every problem with certificate or key input.

`CertificateError` is a `certpilot.core.errors.CertpilotError` (and a ValueError).

Each failure is a narrow subclass whose message is one bounded line and never
carries input bytes, let alone key material.
"""

from __future__ import annotations

from certpilot.core.errors import CertpilotError


class CertificateError(CertpilotError, ValueError):
    """Base of every input problem. The message is always a single bounded line.

    Part of certpilot's error tree, and a ValueError for callers that catch that.
    """

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
