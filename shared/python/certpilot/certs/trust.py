"""Trust anchors: the Mozilla roots (certifi) or a CA bundle file.

A store is loaded on first use, so building one costs nothing until a chain is
checked. Anchors are matched by subject and public key (RFC 5280 trust anchors are a
name and a key), so a re-issued or cross-signed root counts as the same anchor.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from certpilot.certs import (
    CertificateError,
    load_pem_certificates,
    read_input,
    same_key_and_subject,
    signed_by,
)

CA_BUNDLE_ENV = "CERTPILOT_CA_BUNDLE"
MAX_CA_BUNDLE_BYTES = 16 * 1024 * 1024


class TrustStoreError(CertificateError):
    """The CA bundle could not be read or holds no certificate."""


class TrustStore:
    """A set of trust anchors, loaded lazily from a PEM file or given directly."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        certificates: Iterable[x509.Certificate] | None = None,
        label: str | None = None,
    ) -> None:
        """Use `path` (a PEM CA bundle) or `certificates`; with neither, the Mozilla roots."""
        if path is not None and certificates is not None:
            raise ValueError("give a path or certificates, not both")
        self._path = Path(path) if path is not None else None
        self._given = tuple(certificates) if certificates is not None else None
        self._label = label
        self._lock = threading.Lock()
        self._anchors: tuple[x509.Certificate, ...] | None = None
        self._by_subject: dict[x509.Name, list[x509.Certificate]] = {}

    _default: TrustStore | None = None
    _default_lock = threading.Lock()

    @classmethod
    def default(cls) -> TrustStore:
        """The Mozilla root program (certifi), shared and loaded once per process."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls(label="Mozilla roots (certifi)")
            return cls._default

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TrustStore:
        """A store of the CA certificates in the PEM file at `path` (read on first use)."""
        return cls(path)

    @classmethod
    def from_certificates(
        cls, certificates: Iterable[x509.Certificate], label: str = "given certificates"
    ) -> TrustStore:
        """A store of exactly these anchors."""
        return cls(certificates=certificates, label=label)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrustStore:
        """`CERTPILOT_CA_BUNDLE` when set and non-empty, else the Mozilla roots."""
        env = os.environ if environ is None else environ
        path = env.get(CA_BUNDLE_ENV, "").strip()
        return cls.from_file(path) if path else cls.default()

    @property
    def description(self) -> str:
        """Where the anchors come from, for reports."""
        if self._label:
            return self._label
        return str(self._path) if self._path is not None else "Mozilla roots (certifi)"

    def load(self) -> None:
        """Load the anchors now. Raises TrustStoreError when the bundle is unusable."""
        with self._lock:
            if self._anchors is not None:
                return
            anchors = list(self._given) if self._given is not None else self._read()
            by_subject: dict[x509.Name, list[x509.Certificate]] = {}
            for anchor in anchors:
                by_subject.setdefault(anchor.subject, []).append(anchor)
            self._by_subject = by_subject
            self._anchors = tuple(anchors)

    def _read(self) -> list[x509.Certificate]:
        if self._path is None:
            import certifi  # only when the default store is actually used

            path = Path(certifi.where())
        else:
            path = self._path
        try:
            data = read_input(path, limit=MAX_CA_BUNDLE_BYTES)
        except CertificateError as exc:
            raise TrustStoreError(f"CA bundle {path}: {exc}") from exc
        try:
            # One odd entry in a system bundle must not disable all the others, and the
            # anchors' own encoding quirks (negative serials) are not ours to warn about.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                anchors = load_pem_certificates(data, skip_invalid=True)
        except CertificateError as exc:
            raise TrustStoreError(f"CA bundle {path}: {exc}") from exc
        if not anchors:
            raise TrustStoreError(f"CA bundle {path} holds no PEM certificate")
        return anchors

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """Every anchor (loads the store)."""
        self.load()
        assert self._anchors is not None
        return self._anchors

    def __len__(self) -> int:
        return len(self.certificates)

    def contains(self, cert: x509.Certificate) -> bool:
        """True when `cert` is an anchor: same subject and same public key as one."""
        self.load()
        return any(same_key_and_subject(cert, a) for a in self._by_subject.get(cert.subject, ()))

    def named(self, name: x509.Name) -> tuple[x509.Certificate, ...]:
        """The anchors whose subject is `name` (loads the store)."""
        self.load()
        return tuple(self._by_subject.get(name, ()))

    def find_issuer(self, cert: x509.Certificate) -> x509.Certificate | None:
        """The anchor that issued `cert` (subject match plus verified signature), or None."""
        self.load()
        for anchor in self._by_subject.get(cert.issuer, ()):
            if signed_by(cert, anchor):
                return anchor
        return None
