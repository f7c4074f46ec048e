"""Revocation the way a CA shows it: the emulator's OCSP responders and CRLs, parsed
with `cryptography`, and certpilot's own check (`certpilot.certs.revocation`) against
them, over real HTTP.

Scenarios: every issued certificate points at a responder and a CRL; good, revoked and
unknown answers, signed by the CA or its delegated responder; revocation by CAS id,
serial or fingerprint; a responder made slow or unavailable by a fault.
"""

from __future__ import annotations

import base64
import urllib.parse
import urllib.request
from typing import Any

import pytest
from alibabacloud_cas20200407 import models as cas_models
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from certpilot.certs.revocation import (
    RevocationStatus,
    Source,
    Unknown,
    check_pem,
    check_revocation,
    crl_urls,
    ocsp_urls,
)
from tests.conftest import Emulator

pytestmark = pytest.mark.integration

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _issue(cloud: Emulator, host: str, **recipe: Any) -> tuple[int, list[x509.Certificate], str]:
    """(CAS id, parsed chain, chain PEM) of a certificate the emulator's CA issues, the
    PEM read back through the real CAS SDK."""
    issued = cloud.admin("POST", "cas/issue", {"sans": [host], **recipe})
    body = (
        cloud.cas_client()
        .get_user_certificate_detail(
            cas_models.GetUserCertificateDetailRequest(cert_id=issued["certId"])
        )
        .body
    )
    return issued["certId"], x509.load_pem_x509_certificates(body.cert.encode()), body.cert


def _post_ocsp(url: str, leaf: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    der = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, issuer, hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    request = urllib.request.Request(
        url, data=der, headers={"Content-Type": "application/ocsp-request"}, method="POST"
    )
    with _DIRECT.open(request, timeout=10) as answer:
        assert answer.headers["Content-Type"] == "application/ocsp-response"
        return ocsp.load_der_ocsp_response(answer.read())


def _get(url: str) -> bytes:
    with _DIRECT.open(url, timeout=10) as answer:
        data: bytes = answer.read()
        return data


def _signed_by(response: ocsp.OCSPResponse, key: Any) -> bool:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert response.signature_hash_algorithm is not None
    key.verify(
        response.signature,
        response.tbs_response_bytes,
        ec.ECDSA(response.signature_hash_algorithm),
    )
    return True


def test_issued_certificates_name_the_control_planes_responder_and_crl(cloud: Emulator) -> None:
    # Given a certificate the emulator's CA One issued
    _, (leaf, intermediate), _ = _issue(cloud, "www.example.com")
    # Then it and its intermediate point at OCSP and CRL URLs on the control plane
    assert ocsp_urls(leaf) == [f"{cloud.api}/pki/ocsp/one"]
    assert crl_urls(leaf) == [f"{cloud.api}/pki/crl/one.crl"]
    assert ocsp_urls(intermediate) == [f"{cloud.api}/pki/ocsp/root"]
    assert crl_urls(intermediate) == [f"{cloud.api}/pki/crl/root.crl"]


def test_ocsp_answers_good_then_revoked_signed_by_the_issuer(cloud: Emulator) -> None:
    # Given a certificate of CA One, which signs its own OCSP answers
    cert_id, (leaf, issuer), _ = _issue(cloud, "www.example.com")
    url = ocsp_urls(leaf)[0]
    # When its OCSP responder is asked
    good = _post_ocsp(url, leaf, issuer)
    # Then it is good, fresh, and signed by the issuer
    assert good.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert good.serial_number == leaf.serial_number
    assert good.next_update_utc is not None and good.next_update_utc > good.this_update_utc
    assert good.certificates == [] and _signed_by(good, issuer.public_key())

    # When the CA revokes it (key compromise)
    cloud.admin("POST", "cas/revoke", {"certId": cert_id, "reason": "keyCompromise"})
    # Then OCSP says revoked, with the reason and time, by POST and by GET
    revoked = _post_ocsp(url, leaf, issuer)
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason is x509.ReasonFlags.key_compromise
    assert revoked.revocation_time_utc is not None
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()  # noqa: S303
    encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
    by_get = ocsp.load_der_ocsp_response(_get(f"{url}/{urllib.parse.quote(encoded, safe='')}"))
    assert by_get.certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_a_delegated_responder_signs_for_ca_two(cloud: Emulator) -> None:
    # Given a certificate of CA Two, which answers through a delegated responder
    _, (leaf, issuer), _ = _issue(cloud, "shop.example.com", ca="two")
    # When its responder is asked
    answer = _post_ocsp(ocsp_urls(leaf)[0], leaf, issuer)
    # Then the answer carries the responder's certificate: OCSP-signing, issued by CA Two
    [responder] = answer.certificates
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.OCSP_SIGNING in eku
    responder.verify_directly_issued_by(issuer)
    assert _signed_by(answer, responder.public_key())
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_unknown_serials_and_foreign_requests(cloud: Emulator) -> None:
    # Given a certificate of CA One and CA Two's responder
    _, (leaf, issuer), _ = _issue(cloud, "www.example.com")
    forged = (
        x509.CertificateBuilder()
        .subject_name(leaf.subject)
        .issuer_name(leaf.issuer)
        .public_key(leaf.public_key())
        .serial_number(12345)
        .not_valid_before(leaf.not_valid_before_utc)
        .not_valid_after(leaf.not_valid_after_utc)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    # Then a serial CA One never issued is unknown
    unknown = _post_ocsp(ocsp_urls(leaf)[0], forged, issuer)
    assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    # And asking CA Two about CA One's certificate is unauthorized
    foreign = _post_ocsp(f"{cloud.api}/pki/ocsp/two", leaf, issuer)
    assert foreign.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_the_crl_is_signed_and_lists_revoked_serials(cloud: Emulator) -> None:
    # Given two certificates of CA One, one revoked by serial, one by fingerprint
    _, (first, issuer), _ = _issue(cloud, "a.example.com")
    _, (second, _), _ = _issue(cloud, "b.example.com")
    _, (kept, _), _ = _issue(cloud, "c.example.com")
    cloud.admin("POST", "cas/revoke", {"serial": format(first.serial_number, "x")})
    sha256 = second.fingerprint(hashes.SHA256()).hex()
    cloud.admin("POST", "cas/revoke", {"fingerprint": sha256, "reason": "superseded"})
    # When the CRL is fetched from the distribution point
    crl = x509.load_der_x509_crl(_get(crl_urls(first)[0]))
    # Then it is CA One's, signed by it, with a next update, listing both (and not the third)
    assert crl.issuer == issuer.subject and crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    assert crl.next_update_utc is not None and crl.next_update_utc > crl.last_update_utc
    assert crl.get_revoked_certificate_by_serial_number(first.serial_number) is not None
    entry = crl.get_revoked_certificate_by_serial_number(second.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.superseded
    assert crl.get_revoked_certificate_by_serial_number(kept.serial_number) is None


def test_certpilot_reads_good_and_revoked_from_either_kind_of_responder(cloud: Emulator) -> None:
    # Given certificates of CA One (self-signed answers) and CA Two (delegated)
    one_id, _, one_pem = _issue(cloud, "one.example.com")
    two_id, _, two_pem = _issue(cloud, "two.example.com", ca="two")
    # Then certpilot's check finds both good through OCSP
    for pem in (one_pem, two_pem):
        verdict = check_pem(pem, timeout=5)
        assert (verdict.status, verdict.source) == (RevocationStatus.GOOD, Source.OCSP)
    # When both are revoked
    for cert_id in (one_id, two_id):
        cloud.admin("POST", "cas/revoke", {"certId": cert_id, "reason": "cessationOfOperation"})
    # Then both are revoked, with the CA's reason and time
    for pem in (one_pem, two_pem):
        verdict = check_pem(pem, timeout=5)
        assert verdict.revoked and verdict.source is Source.OCSP
        assert verdict.reason == "cessationOfOperation" and verdict.revoked_at is not None


def test_an_unavailable_responder_falls_back_to_the_crl(cloud: Emulator) -> None:
    # Given a revoked certificate and an OCSP responder that answers 500
    cert_id, (leaf, issuer), _ = _issue(cloud, "www.example.com")
    cloud.admin("POST", "cas/revoke", {"certId": cert_id})
    cloud.faults(action="pki:OCSP", error={"code": "InternalError", "status": 500})
    # When certpilot checks it
    verdict = check_revocation(leaf, issuer, timeout=5)
    # Then the CRL tells it is revoked
    assert (verdict.status, verdict.source) == (RevocationStatus.REVOKED, Source.CRL)
    assert verdict.tried == (Source.OCSP, Source.CRL)
    assert cloud.action_stats("pki:OCSP")["errors"] == 1
    assert cloud.action_stats("pki:CRL")["calls"] == 1


def test_with_no_answer_at_all_the_status_is_unknown_never_revoked(cloud: Emulator) -> None:
    # Given a revoked certificate whose OCSP responder and CRL are both unavailable
    cert_id, (leaf, issuer), _ = _issue(cloud, "www.example.com")
    cloud.admin("POST", "cas/revoke", {"certId": cert_id})
    cloud.faults(action="pki:*", drop=True)
    # When certpilot checks it
    verdict = check_revocation(leaf, issuer, timeout=5)
    # Then it cannot tell: unknown (unreachable), not revoked
    assert verdict.status is RevocationStatus.UNKNOWN and not verdict.revoked
    assert verdict.why is Unknown.UNREACHABLE


def test_a_slow_responder_is_bounded_by_the_timeout(cloud: Emulator) -> None:
    # Given an OCSP responder and CRL that take 3 seconds to answer
    _, (leaf, issuer), _ = _issue(cloud, "www.example.com")
    cloud.faults(action="pki:*", latency=3)
    # When certpilot checks with a budget of half a second
    verdict = check_revocation(leaf, issuer, timeout=0.5)
    # Then it gives up: unknown because of time
    assert verdict.status is RevocationStatus.UNKNOWN and verdict.why is Unknown.TIMEOUT
