"""certpilot.certs.revocation judged on answers made here: a CA, its leaf, OCSP answers
and CRLs built with `cryptography`, handed over by an in-memory transport (`fetch`).

Scenarios: good and revoked answers from the issuer or an authorised delegated responder;
every answer that must not be believed (forged, stale, about another certificate, a
responder without the OCSP-signing EKU, a replayed nonce); the CRL fallback; unknown is
never revoked; each distinct chain asked about once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from certpilot.certs.revocation import (
    Revocation,
    RevocationStatus,
    Source,
    Unknown,
    check_many,
    check_pem,
    check_revocation,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
OCSP_URL = "http://ocsp.ca.test/"
CRL_URL = "http://crl.ca.test/ca.crl"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _ca(cn: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - 100 * 24 * HOUR)
        .not_valid_after(NOW + 1000 * 24 * HOUR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def _issued(
    ca: Authority, cn: str, *, serial: int, ocsp_url: str | None, crl_url: str | None, eku: bool
) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - 24 * HOUR)
        .not_valid_after(NOW + 90 * 24 * HOUR)
    )
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
        )
    if ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
                    )
                ]
            ),
            critical=False,
        )
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(crl_url)], None, None, None
                    )
                ]
            ),
            critical=False,
        )
    return Authority(key, builder.sign(ca.key, hashes.SHA256()))


CA = _ca("Test CA")
OTHER = _ca("Other CA")
LEAF = _issued(CA, "www.example.com", serial=4242, ocsp_url=OCSP_URL, crl_url=CRL_URL, eku=False)
RESPONDER = _issued(CA, "Test CA OCSP", serial=7, ocsp_url=None, crl_url=None, eku=True)
NO_EKU = _issued(CA, "Test CA helper", serial=8, ocsp_url=None, crl_url=None, eku=False)


REVOKED = ocsp.OCSPCertStatus.REVOKED


@dataclass(frozen=True)
class Answer:
    """How the fake OCSP responder answers (revoked unless told otherwise: what must not
    be believed is a revocation)."""

    status: ocsp.OCSPCertStatus = REVOKED
    signer: Authority = CA
    include: tuple[x509.Certificate, ...] = ()
    this_update: datetime = NOW - HOUR
    next_update: datetime | None = NOW + HOUR
    serial: int | None = None  # another certificate's serial
    nonce: bytes | None = None  # None: echo the request's
    reason: x509.ReasonFlags | None = None


def ocsp_answer(answer: Answer) -> Callable[[bytes], bytes]:
    def respond(request_der: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(request_der)
        echoed = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        revoked = answer.status is ocsp.OCSPCertStatus.REVOKED
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=answer.serial or request.serial_number,
                algorithm=request.hash_algorithm,
                cert_status=answer.status,
                this_update=answer.this_update,
                next_update=answer.next_update,
                revocation_time=NOW - 2 * HOUR if revoked else None,
                revocation_reason=answer.reason if revoked else None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, answer.signer.cert)
            .add_extension(x509.OCSPNonce(answer.nonce or echoed), critical=False)
        )
        if answer.include:
            builder = builder.certificates(list(answer.include))
        return builder.sign(answer.signer.key, hashes.SHA256()).public_bytes(
            serialization.Encoding.DER
        )

    return respond


def crl(
    *,
    revoked: tuple[int, ...] = (),
    signer: Authority = CA,
    next_update: datetime = NOW + 24 * HOUR,
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(CA.cert.subject)
        .last_update(NOW - HOUR)
        .next_update(next_update)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - 3 * HOUR)
            .add_extension(x509.CRLReason(x509.ReasonFlags.superseded), critical=False)
            .build()
        )
    return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclass
class Transport:
    """An in-memory network: URL -> answer (bytes, a function of the request body, or an
    exception to raise); counts every request."""

    routes: dict[str, bytes | Callable[[bytes], bytes] | Exception]
    calls: list[str] = field(default_factory=list)

    def __call__(self, url: str, body: bytes | None, content_type: str, timeout: float) -> bytes:
        self.calls.append(url)
        assert timeout > 0
        route = self.routes.get(url, OSError("connection refused"))
        if isinstance(route, Exception):
            raise route
        if callable(route):
            assert body is not None and content_type == "application/ocsp-request"
            return route(body)
        return route


def check(transport: Transport, leaf: x509.Certificate = LEAF.cert) -> Revocation:
    return check_revocation(leaf, CA.cert, timeout=5, now=NOW, fetch=transport)


GOOD = Answer(status=ocsp.OCSPCertStatus.GOOD)


def test_a_good_answer_signed_by_the_issuer_is_good() -> None:
    transport = Transport({OCSP_URL: ocsp_answer(GOOD)})
    verdict = check(transport)
    assert (verdict.status, verdict.source, verdict.why) == (
        RevocationStatus.GOOD,
        Source.OCSP,
        None,
    )
    assert transport.calls == [OCSP_URL]  # no CRL needed


def test_a_revoked_answer_carries_the_reason_and_time() -> None:
    answer = Answer(status=ocsp.OCSPCertStatus.REVOKED, reason=x509.ReasonFlags.key_compromise)
    verdict = check(Transport({OCSP_URL: ocsp_answer(answer)}))
    assert verdict.revoked and verdict.source is Source.OCSP
    assert (verdict.reason, verdict.revoked_at) == ("keyCompromise", NOW - 2 * HOUR)


def test_a_delegated_responder_with_the_ocsp_signing_eku_is_believed() -> None:
    answer = Answer(status=ocsp.OCSPCertStatus.REVOKED, signer=RESPONDER, include=(RESPONDER.cert,))
    assert check(Transport({OCSP_URL: ocsp_answer(answer)})).revoked


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (Answer(signer=NO_EKU, include=(NO_EKU.cert,)), Unknown.BAD_SIGNATURE),
        (Answer(signer=OTHER), Unknown.BAD_SIGNATURE),
        (Answer(signer=OTHER, include=(OTHER.cert,)), Unknown.BAD_SIGNATURE),
        (Answer(next_update=NOW - HOUR, this_update=NOW - 2 * HOUR), Unknown.STALE),
        (Answer(this_update=NOW + HOUR), Unknown.STALE),
        (Answer(next_update=None, this_update=NOW - 30 * 24 * HOUR), Unknown.STALE),
        (Answer(serial=999), Unknown.WRONG_CERTIFICATE),
        (Answer(nonce=b"0123456789abcdef"), Unknown.WRONG_CERTIFICATE),
        (Answer(status=ocsp.OCSPCertStatus.UNKNOWN), Unknown.UNKNOWN_TO_CA),
    ],
    ids=[
        "responder-without-eku",
        "signed-by-another-ca",
        "another-ca-includes-itself",
        "past-next-update",
        "this-update-in-future",
        "no-next-update-and-old",
        "another-serial",
        "replayed-nonce",
        "unknown-to-the-ca",
    ],
)
def test_answers_that_must_not_be_believed_leave_the_status_unknown(
    answer: Answer, why: Unknown
) -> None:
    # Given a revoked-looking answer that fails a check, and a CRL that is down
    transport = Transport({OCSP_URL: ocsp_answer(answer), CRL_URL: OSError("down")})
    # When certpilot checks the certificate
    verdict = check(transport)
    # Then it is unknown, for the OCSP answer's reason when the CRL could not help either
    assert verdict.status is RevocationStatus.UNKNOWN and not verdict.revoked
    assert verdict.tried == (Source.OCSP, Source.CRL)
    assert check(Transport({OCSP_URL: ocsp_answer(answer)}), _ocsp_only()).why is why


def _ocsp_only() -> x509.Certificate:
    return _issued(
        CA, "ocsp.example.com", serial=4243, ocsp_url=OCSP_URL, crl_url=None, eku=False
    ).cert


@pytest.mark.parametrize(
    ("ocsp_route", "crl_route", "status"),
    [
        (OSError("refused"), crl(revoked=(4242,)), RevocationStatus.REVOKED),
        (TimeoutError("slow"), crl(), RevocationStatus.GOOD),
        (
            ocsp_answer(Answer(status=ocsp.OCSPCertStatus.UNKNOWN)),
            crl(revoked=(4242,)),
            RevocationStatus.REVOKED,
        ),
        (b"not DER", crl(), RevocationStatus.GOOD),
    ],
    ids=["ocsp-down", "ocsp-slow", "ocsp-unknown", "ocsp-garbage"],
)
def test_without_a_definite_ocsp_answer_the_crl_decides(
    ocsp_route: bytes | Callable[[bytes], bytes] | Exception,
    crl_route: bytes,
    status: RevocationStatus,
) -> None:
    verdict = check(Transport({OCSP_URL: ocsp_route, CRL_URL: crl_route}))
    assert (verdict.status, verdict.source, verdict.tried) == (
        status,
        Source.CRL,
        (Source.OCSP, Source.CRL),
    )
    if verdict.revoked:
        assert (verdict.reason, verdict.revoked_at) == ("superseded", NOW - 3 * HOUR)


@pytest.mark.parametrize(
    ("crl_route", "why"),
    [
        (crl(revoked=(4242,), signer=OTHER), Unknown.BAD_SIGNATURE),
        (crl(revoked=(4242,), next_update=NOW - HOUR), Unknown.STALE),
        (b"garbage", Unknown.MALFORMED),
        (OSError("refused"), Unknown.UNREACHABLE),
    ],
    ids=["forged", "stale", "garbage", "down"],
)
def test_a_crl_that_must_not_be_believed_leaves_the_status_unknown(
    crl_route: bytes | Exception, why: Unknown
) -> None:
    verdict = check(Transport({OCSP_URL: OSError("down"), CRL_URL: crl_route}))
    assert (verdict.status, verdict.why) == (RevocationStatus.UNKNOWN, why)


def test_without_pointers_or_an_issuer_nothing_is_asked() -> None:
    bare = _issued(CA, "bare.example.com", serial=5, ocsp_url=None, crl_url=None, eku=False)
    transport = Transport({})
    assert check(transport, bare.cert).why is Unknown.NO_POINTERS
    no_issuer = check_revocation(LEAF.cert, None, timeout=5, now=NOW, fetch=transport)
    assert no_issuer.why is Unknown.NO_ISSUER
    ldap = _issued(CA, "l.example.com", serial=6, ocsp_url=None, crl_url="ldap://x/y", eku=False)
    assert check(transport, ldap.cert).why is Unknown.UNSUPPORTED
    assert transport.calls == []


def test_a_spent_budget_asks_nothing_more() -> None:
    transport = Transport({OCSP_URL: ocsp_answer(GOOD)})
    verdict = check_revocation(LEAF.cert, CA.cert, timeout=0, now=NOW, fetch=transport)
    assert (verdict.status, verdict.why) == (RevocationStatus.UNKNOWN, Unknown.TIMEOUT)
    assert transport.calls == []


def _chain_pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def test_the_issuer_is_found_in_the_chain_and_each_chain_is_asked_once() -> None:
    # Given three domains, two sharing one certificate
    transport = Transport({OCSP_URL: ocsp_answer(GOOD)})
    other = _issued(CA, "b.example.com", serial=77, ocsp_url=OCSP_URL, crl_url=None, eku=False)
    chains = {
        "a.example.com": _chain_pem(LEAF.cert, CA.cert),
        "a2.example.com": _chain_pem(LEAF.cert, CA.cert),
        "b.example.com": _chain_pem(other.cert, CA.cert),
    }
    # When their revocation is checked
    verdicts = check_many(chains, timeout=5, now=NOW, fetch=transport, concurrency=2)
    # Then every domain has its answer, and the responder was asked twice, not three times
    assert {d: v.status for d, v in verdicts.items()} == dict.fromkeys(
        chains, RevocationStatus.GOOD
    )
    assert len(transport.calls) == 2
    # And a leaf alone, with no issuer at hand, is unknown
    assert check_pem(_chain_pem(LEAF.cert), now=NOW, fetch=transport).why is Unknown.NO_ISSUER
