"""Is a certificate revoked? Asked of its CA, for any certificate (uploaded or bought).

`check_revocation(cert, issuer, timeout=...)` asks the OCSP responder named in the
certificate's Authority Information Access (RFC 6960, POST, a SHA-1 CertID and a nonce)
and, when that gives no definite answer, the CRL at its distribution points (RFC 5280).
Every answer is verified before it is believed:

- OCSP: signed by the issuer itself, or by a delegated responder whose certificate the
  issuer signed, that carries the OCSP-signing EKU and is valid now; about this very
  certificate (issuer hashes and serial); the nonce echoed if echoed at all; fresh
  (`thisUpdate` not in the future, `nextUpdate` not past, or `thisUpdate` within
  `MAX_AGE` when there is none), with `CLOCK_SKEW` of tolerance.
- CRL: issued by the issuer (name) and signed by its key; `nextUpdate` not past.

The result is a `Revocation`: GOOD, REVOKED (with the reason and time the CA gives) or
UNKNOWN (with why). UNKNOWN is never REVOKED: a responder that is down, slow, or says
"unknown" does not make a certificate unusable.

The whole check is bounded by `timeout` seconds (each request gets what is left).
Requests to a loopback host never go through a proxy (the emulator's responder); others
honour the usual proxy variables. Nothing here imports a cloud SDK or `certpilot.cloud`.
"""

from __future__ import annotations

import enum
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from certpilot.core.net import opener_for

if TYPE_CHECKING:
    from certpilot.certs.trust import TrustStore

DEFAULT_TIMEOUT = 4.0
CLOCK_SKEW = timedelta(minutes=5)
# An answer without nextUpdate is believed this long after its thisUpdate.
MAX_AGE = timedelta(days=7)
MAX_OCSP_BYTES = 64 * 1024
MAX_CRL_BYTES = 20 * 1024 * 1024

# `fetch(url, body or None for GET, content type, timeout seconds) -> response bytes`;
# raises OSError (urllib's errors included) when there is no usable answer.
Fetch = Callable[[str, bytes | None, str, float], bytes]
K = TypeVar("K")


class RevocationStatus(str, enum.Enum):
    """What the CA says of the certificate."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # no verified, definite answer: never treated as revoked


class Source(str, enum.Enum):
    """Where the answer came from."""

    OCSP = "ocsp"
    CRL = "crl"


class Unknown(str, enum.Enum):
    """Why the status is UNKNOWN (the last obstacle met)."""

    NOT_AVAILABLE = "not-available"  # the certificate itself could not be read
    NO_ISSUER = "no-issuer"  # the issuing certificate is not at hand: nothing to verify with
    NO_POINTERS = "no-pointers"  # the certificate names no OCSP responder and no CRL
    UNREACHABLE = "unreachable"  # connection refused, HTTP error, timed out
    TIMEOUT = "timeout"  # the check's time budget ran out
    MALFORMED = "malformed"  # the answer does not parse
    RESPONDER_ERROR = "responder-error"  # OCSP status other than successful
    BAD_SIGNATURE = "bad-signature"  # not signed by the issuer or an authorised responder
    WRONG_CERTIFICATE = "wrong-certificate"  # the answer is about another certificate
    STALE = "stale"  # outside its validity (thisUpdate / nextUpdate)
    UNKNOWN_TO_CA = "unknown-to-ca"  # the responder does not know the serial
    UNSUPPORTED = "unsupported"  # only non-HTTP pointers (ldap:...)


@dataclass(frozen=True)
class Revocation:
    """The outcome of one check. `reason`: RFC 5280 reason name (e.g. "keyCompromise")
    when REVOKED and given; `why`: set when UNKNOWN."""

    status: RevocationStatus
    source: Source | None = None
    revoked_at: datetime | None = None
    reason: str | None = None
    why: Unknown | None = None
    tried: tuple[Source, ...] = field(default=())

    @property
    def revoked(self) -> bool:
        """True only for a verified REVOKED answer."""
        return self.status is RevocationStatus.REVOKED

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "status": self.status.value,
            "source": self.source.value if self.source else None,
            "revokedAt": self.revoked_at.isoformat().replace("+00:00", "Z")
            if self.revoked_at
            else None,
            "reason": self.reason,
            "why": self.why.value if self.why else None,
        }


def _unknown(why: Unknown, tried: Iterable[Source] = ()) -> Revocation:
    return Revocation(RevocationStatus.UNKNOWN, why=why, tried=tuple(tried))


class _Failed(Exception):
    """One source gave no definite answer (`why`)."""

    def __init__(self, why: Unknown) -> None:
        super().__init__(why.value)
        self.why = why


# --- transport -----------------------------------------------------------------------


def http_fetch(url: str, body: bytes | None, content_type: str, timeout: float) -> bytes:
    """GET (body None) or POST `url`; the answer's bytes (at most `MAX_CRL_BYTES`).

    Loopback hosts are reached directly, never through a proxy. Raises OSError for a
    scheme other than http(s), a connection or HTTP error, a timeout, an oversized answer.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OSError(f"unsupported URL scheme {parts.scheme!r}")
    # The scheme is checked just above: http(s) only.
    request = urllib.request.Request(  # noqa: S310
        url, data=body, method="POST" if body is not None else "GET"
    )
    if body is not None:
        request.add_header("Content-Type", content_type)
    request.add_header("Accept", "*/*")
    with opener_for(parts.hostname).open(request, timeout=timeout) as response:
        data: bytes = response.read(MAX_CRL_BYTES + 1)
    if len(data) > MAX_CRL_BYTES:
        raise OSError("answer too large")
    return data


# --- what the certificate points at --------------------------------------------------


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """The OCSP responder URLs of `cert`'s Authority Information Access (may be empty)."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The CRL distribution point URIs of `cert` (may be empty)."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


# --- signatures ----------------------------------------------------------------------


def _verify(
    public_key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> bool:
    """Whether `signature` over `data` verifies with `public_key` (PKCS#1 v1.5 for RSA)."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, dsa.DSAPublicKey) and algorithm is not None:
            public_key.verify(signature, data, algorithm)
        elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def _key_id(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey bits (OCSP ResponderID byKey, RFC 6960 4.2.1)."""
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _names_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_key_hash is not None:
        return response.responder_key_hash == _key_id(cert)
    return response.responder_name == cert.subject


def _valid_now(cert: x509.Certificate, now: datetime) -> bool:
    return cert.not_valid_before_utc - CLOCK_SKEW <= now <= cert.not_valid_after_utc + CLOCK_SKEW


def _can_sign_ocsp(candidate: x509.Certificate, issuer: x509.Certificate, now: datetime) -> bool:
    """A delegated responder: issued by `issuer`, OCSP-signing EKU, valid now."""
    try:
        eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    if ExtendedKeyUsageOID.OCSP_SIGNING not in eku or candidate.issuer != issuer.subject:
        return False
    try:
        candidate.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return _valid_now(candidate, now)


def _ocsp_signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> x509.Certificate:
    """The certificate whose key signed `response`: the issuer, or an authorised
    delegated responder it carries. Raises _Failed(BAD_SIGNATURE)."""
    candidates = [issuer] if _names_responder(response, issuer) else []
    candidates += [
        c
        for c in response.certificates
        if _names_responder(response, c) and _can_sign_ocsp(c, issuer, now)
    ]
    for signer in candidates:
        if _verify(
            signer.public_key(),
            response.signature,
            response.tbs_response_bytes,
            response.signature_hash_algorithm,
        ):
            return signer
    raise _Failed(Unknown.BAD_SIGNATURE)


def _fresh(this_update: datetime, next_update: datetime | None, now: datetime) -> bool:
    if this_update > now + CLOCK_SKEW:
        return False
    if next_update is None:
        return now - this_update <= MAX_AGE
    return now <= next_update + CLOCK_SKEW


# --- OCSP ----------------------------------------------------------------------------


def _ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes, bytes]:
    nonce = secrets.token_bytes(16)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303  (CertID: what responders take)
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
    )
    return request.public_bytes(serialization.Encoding.DER), nonce


def _ocsp_answer(
    der: bytes, cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes, now: datetime
) -> Revocation:
    """The verified verdict of a DER OCSP response. Raises _Failed."""
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        raise _Failed(Unknown.MALFORMED) from None
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _Failed(Unknown.RESPONDER_ERROR)
    _ocsp_signer(response, issuer, now)
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        echoed = None
    if echoed is not None and echoed != nonce:
        raise _Failed(Unknown.WRONG_CERTIFICATE)
    expected = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303
    for single in response.responses:
        same = (
            single.serial_number == cert.serial_number
            and single.issuer_key_hash == expected.issuer_key_hash
            and single.issuer_name_hash == expected.issuer_name_hash
        )
        if not same:
            continue
        if not _fresh(single.this_update_utc, single.next_update_utc, now):
            raise _Failed(Unknown.STALE)
        if single.certificate_status is ocsp.OCSPCertStatus.GOOD:
            return Revocation(RevocationStatus.GOOD, Source.OCSP)
        if single.certificate_status is ocsp.OCSPCertStatus.REVOKED:
            reason = single.revocation_reason
            return Revocation(
                RevocationStatus.REVOKED,
                Source.OCSP,
                revoked_at=single.revocation_time_utc,
                reason=reason.value if reason is not None else None,
            )
        raise _Failed(Unknown.UNKNOWN_TO_CA)
    raise _Failed(Unknown.WRONG_CERTIFICATE)


# --- CRL -----------------------------------------------------------------------------


def _crl_answer(
    data: bytes, cert: x509.Certificate, issuer: x509.Certificate, now: datetime
) -> Revocation:
    """The verified verdict of a CRL (DER, or PEM). Raises _Failed."""
    try:
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_crl(data)
        )
    except ValueError:
        raise _Failed(Unknown.MALFORMED) from None
    if crl.issuer != issuer.subject:
        raise _Failed(Unknown.WRONG_CERTIFICATE)
    try:
        signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError, UnsupportedAlgorithm):
        signed = False
    if not signed:
        raise _Failed(Unknown.BAD_SIGNATURE)
    if not _fresh(crl.last_update_utc, crl.next_update_utc, now):
        raise _Failed(Unknown.STALE)
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return Revocation(RevocationStatus.GOOD, Source.CRL)
    try:
        reason: str | None = entry.extensions.get_extension_for_class(
            x509.CRLReason
        ).value.reason.value
    except (x509.ExtensionNotFound, ValueError):
        reason = None
    return Revocation(
        RevocationStatus.REVOKED,
        Source.CRL,
        revoked_at=entry.revocation_date_utc,
        reason=reason,
    )


# --- the check -----------------------------------------------------------------------


def check_revocation(
    cert: x509.Certificate,
    issuer: x509.Certificate | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    now: datetime | None = None,
    fetch: Fetch | None = None,
) -> Revocation:
    """Ask `cert`'s CA whether it is revoked: OCSP first, then the CRL (module docstring).

    `issuer`: the certificate that signed `cert` (None: UNKNOWN, nothing to verify the
    answers with). `timeout`: seconds for the whole check. `now`: the time answers are
    judged at (default: the clock). `fetch`: the transport (default `http_fetch`).
    Never raises for what the network or the CA does: that is an UNKNOWN.
    """
    if issuer is None:
        return _unknown(Unknown.NO_ISSUER)
    moment = now or datetime.now(timezone.utc)
    transport = fetch or http_fetch
    deadline = time.monotonic() + max(0.0, timeout)
    responders, crls = ocsp_urls(cert), crl_urls(cert)
    if not responders and not crls:
        return _unknown(Unknown.NO_POINTERS)
    tried: list[Source] = []
    why = Unknown.UNSUPPORTED
    for source, urls in ((Source.OCSP, responders), (Source.CRL, crls)):
        for url in urls:
            if urlsplit(url).scheme not in ("http", "https"):
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return _unknown(Unknown.TIMEOUT, tried)
            if source not in tried:
                tried.append(source)
            try:
                if source is Source.OCSP:
                    body, nonce = _ocsp_request(cert, issuer)
                    der = transport(url, body, "application/ocsp-request", left)
                    verdict = _ocsp_answer(der, cert, issuer, nonce, moment)
                else:
                    verdict = _crl_answer(transport(url, None, "", left), cert, issuer, moment)
                return replace(verdict, tried=tuple(tried))
            except _Failed as failed:
                why = failed.why
            except TimeoutError:
                why = Unknown.TIMEOUT
            except (OSError, ValueError):
                why = Unknown.TIMEOUT if time.monotonic() >= deadline else Unknown.UNREACHABLE
    return _unknown(why, tried)


def find_issuer(
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    trust: TrustStore | None = None,
) -> x509.Certificate | None:
    """The certificate in `chain` (else among `trust`'s anchors) that signed `cert`."""
    for candidate in chain:
        if candidate.subject != cert.issuer or candidate == cert:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return candidate
    return trust.find_issuer(cert) if trust is not None else None


def check_pem(
    chain_pem: str,
    *,
    trust: TrustStore | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    now: datetime | None = None,
    fetch: Fetch | None = None,
) -> Revocation:
    """`check_revocation` of the first certificate of a PEM chain, its issuer taken from
    the rest of the chain or from `trust`. A text without a certificate is UNKNOWN
    (MALFORMED)."""
    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode("ascii", "replace"))
    except ValueError:
        return _unknown(Unknown.MALFORMED)
    leaf = chain[0]
    issuer = find_issuer(leaf, chain[1:], trust)
    return check_revocation(leaf, issuer, timeout=timeout, now=now, fetch=fetch)


def check_many(
    chains: Mapping[K, str],
    *,
    trust: TrustStore | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    concurrency: int = 8,
    now: datetime | None = None,
    fetch: Fetch | None = None,
) -> dict[K, Revocation]:
    """`check_pem` of each distinct PEM chain once, at most `concurrency` at a time; the
    result for every key (keys that share a chain share its answer)."""
    distinct = list(dict.fromkeys(chains.values()))
    if not distinct:
        return {}
    workers = max(1, min(len(distinct), concurrency))

    def one(pem: str) -> Revocation:
        return check_pem(pem, trust=trust, timeout=timeout, now=now, fetch=fetch)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="revocation") as pool:
        answers = dict(zip(distinct, pool.map(one, distinct), strict=True))
    return {key: answers[pem] for key, pem in chains.items()}
