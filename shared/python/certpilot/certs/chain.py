"""Chains: who signed whom, and a bundle reordered as servers must send it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from certpilot.certs.errors import InputTooLarge, NoCertificate
from certpilot.certs.keys import PrivateKey, public_key_matches
from certpilot.certs.reading import InputFormat

MAX_BUNDLE_CERTIFICATES = 50  # a served chain is a handful; more is a CA bundle, not a chain


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
            # cryptography reports no parameters for ecdsa-with-SHA1; it is ECDSA(SHA-1).
            params = ec.ECDSA(digest) if params is None and digest is not None else params
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
