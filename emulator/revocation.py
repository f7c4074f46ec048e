"""The test PKI's OCSP responders and CRLs, served from the control plane.

Every certificate the emulator's PKI issues (with a `base_url`) names, in its Authority
Information Access and CRL distribution points, these URLs under the control plane:

- `POST /pki/ocsp/<ca>` (body `application/ocsp-request`, DER) and
  `GET /pki/ocsp/<ca>/<base64 request>` (RFC 6960 appendix A.1): a signed
  `application/ocsp-response`, by the CA itself or by its delegated responder
  (`pki.DELEGATED_OCSP`), status good / revoked (time, reason) / unknown (a serial the
  CA never issued), `thisUpdate` now and `nextUpdate` an hour later. A request that
  does not parse is `malformedRequest`; one about another CA's certificate
  `unauthorized`.
- `GET /pki/crl/<ca>.crl`: the CA's CRL (DER, `application/pkix-crl`), signed by the
  CA, `nextUpdate` a day after `lastUpdate`.

The calls go through the platform's faults and stats under the action keys
`pki:OCSP` and `pki:CRL` (e.g. `{"action": "pki:OCSP", "latency": 5}` makes the
responder slow, `{"action": "pki:OCSP", "error": "InternalError"}` unavailable).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

from emulator.core import Request, Response, ServiceError
from emulator.pki import AUTHORITIES, Revocation, TestPki

PREFIX = "/pki/"
OCSP_VALIDITY = dt.timedelta(hours=1)
CRL_VALIDITY = dt.timedelta(days=1)
_UTC = dt.timezone.utc
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def action_of(request: Request) -> str:
    """The action key of a `/pki/` request ("pki:OCSP", "pki:CRL" or "pki:unknown")."""
    rest = request.path[len(PREFIX) :]
    if rest.startswith("ocsp/"):
        return "pki:OCSP"
    if rest.startswith("crl/"):
        return "pki:CRL"
    return "pki:unknown"


def handle(pki: TestPki | None, request: Request) -> Response:
    """Answer one `/pki/` request (see the module docstring).

    Raises ServiceError(404) for an unknown path or authority.
    """
    rest = request.path[len(PREFIX) :]
    kind, _, tail = rest.partition("/")
    if pki is None:
        raise ServiceError(404, "NotFound", "This emulator runs without a PKI.")
    if kind == "crl" and request.method == "GET" and tail.endswith(".crl"):
        name = tail[: -len(".crl")]
        _known(name)
        return Response(200, crl(pki, name), {"Content-Type": "application/pkix-crl"})
    if kind == "ocsp":
        name, _, encoded = tail.partition("/")
        _known(name)
        if request.method == "POST" and not encoded:
            der = request.body
        elif request.method == "GET" and encoded:
            der = _from_base64(unquote(encoded))
        else:
            raise ServiceError(405, "MethodNotAllowed", "OCSP takes POST or GET /<base64>.")
        return Response(200, answer(pki, name, der), {"Content-Type": "application/ocsp-response"})
    raise ServiceError(404, "NotFound", f"No such PKI resource {request.path!r}.")


def _known(name: str) -> None:
    if name not in AUTHORITIES:
        raise ServiceError(404, "NotFound", f"No certificate authority {name!r}.")


def _from_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"+/", validate=False)
    except (binascii.Error, ValueError):
        return b""


def _key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING contents (what issuerKeyHash hashes)."""
    public = cert.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        return public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    if isinstance(public, rsa.RSAPublicKey):
        return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    raise TypeError(f"unsupported CA key {type(public).__name__}")


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def answer(pki: TestPki, name: str, der: bytes, now: dt.datetime | None = None) -> bytes:
    """The DER OCSP response of authority `name` to the DER request `der`."""
    try:
        request = ocsp.load_der_ocsp_request(der)
        algorithm = request.hash_algorithm
        serial = request.serial_number
        name_hash, key_hash = request.issuer_name_hash, request.issuer_key_hash
    except (ValueError, TypeError):
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    if algorithm.name not in _HASHES:
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    issuer, _ = pki.authority(name)
    if (
        _digest(algorithm, issuer.subject.public_bytes()) != name_hash
        or _digest(algorithm, _key_bits(issuer)) != key_hash
    ):
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    moment = (now or dt.datetime.now(_UTC)).replace(microsecond=0)
    status = pki.status(name, serial)
    revoked = status if isinstance(status, Revocation) else None
    cert_status = (
        ocsp.OCSPCertStatus.REVOKED
        if revoked
        else ocsp.OCSPCertStatus.GOOD
        if status == "good"
        else ocsp.OCSPCertStatus.UNKNOWN
    )
    signer, key, delegated = pki.ocsp_signer(name)
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=name_hash,
        issuer_key_hash=key_hash,
        serial_number=serial,
        algorithm=algorithm,
        cert_status=cert_status,
        this_update=moment,
        next_update=moment + OCSP_VALIDITY,
        revocation_time=revoked.revoked_at if revoked else None,
        revocation_reason=revoked.reason if revoked else None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer)
    if delegated:
        builder = builder.certificates([signer])
    nonce = _nonce(request)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _nonce(request: Any) -> bytes | None:
    try:
        return bytes(request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce)
    except x509.ExtensionNotFound:
        return None


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def crl(pki: TestPki, name: str, now: dt.datetime | None = None) -> bytes:
    """The DER CRL of authority `name`, signed by it, listing its revoked serials."""
    issuer, key = pki.authority(name)
    moment = (now or dt.datetime.now(_UTC)).replace(microsecond=0)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(moment)
        .next_update(moment + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(int(moment.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
    )
    for serial, revocation in sorted(pki.revoked(name).items()):
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(revocation.revoked_at)
        )
        if revocation.reason is not None:
            entry = entry.add_extension(x509.CRLReason(revocation.reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
