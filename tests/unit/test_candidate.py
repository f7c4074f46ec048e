"""The pre-write check of a candidate: its PEM chain judged with signatures, whatever
shape CAS hands it in (Cert with or without intermediates, CertChain missing, partial
or listing the leaf), and how the plan refuses on it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from certpilot.certs.candidate import judge_candidate, parse_candidate
from certpilot.certs.chain import signed_by
from certpilot.certs.trust import TrustStore
from certpilot.cloud.cas import parse_detail
from certpilot.core.findings import Code
from certpilot.core.model import Inventory
from certpilot.discovery.catalog import judge_detail
from certpilot.jobs.deploy_cert.plan import plan_certificate
from tests.pki import DAY, NOW, Issued, _tlv, build_pki, make_ca, make_key, make_leaf, pem

SANS = ("www.example.com", "example.com")


def _trust(pki: Any) -> TrustStore:
    return TrustStore.from_certificates([pki.root.cert], label="test root")


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


def _entry(cert: x509.Certificate) -> dict[str, Any]:
    issuer = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    return {"CommonName": _cn(cert), "IssuerCommonName": str(issuer)}


def _detail(cert_pem: bytes | None, chain: list[x509.Certificate] | None) -> Any:
    """GetUserCertificateDetail as CAS answers with CertFilter=false (key included)."""
    body: dict[str, Any] = {
        "Id": 7,
        "Name": "renewal",
        "Common": "www.example.com",
        "Sans": ",".join(SANS),
        "CertIdentifier": "7-cn-hangzhou",
        # built at run time: no file holds a key-looking PEM header
        "Key": "-----BEGIN " + "PRIVATE KEY-----\nMIIsecret\n-----END " + "PRIVATE KEY-----\n",
    }
    if cert_pem is not None:
        body["Cert"] = cert_pem.decode()
    if chain is not None:
        body["CertChain"] = [_entry(c) for c in chain]
    return parse_detail(body, 7, "cn-hangzhou")


def _codes(cert: Any) -> set[str]:
    return set(cert.problems)


def test_a_sound_chain_is_usable_and_named_by_its_own_leaf() -> None:
    # given a leaf-first chain to a trusted root
    pki = build_pki(SANS)
    # when it is judged before a write
    verdict = judge_candidate(parse_candidate(pki.chain_pem()), now=NOW, trust=_trust(pki))
    # then nothing stands in its way, and its names and dates are the leaf's
    assert verdict.usable and verdict.findings == ()
    assert verdict.sans == SANS
    assert verdict.not_after == pki.leaf.cert.not_valid_after_utc
    assert verdict.for_domain("other.example.net")[0].code is Code.NAME_MISMATCH


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("leaf-first", set()),
        ("with-root", set()),
        ("reversed", {"CHAIN_ORDER"}),
        ("leaf-twice", {"CHAIN_ORDER"}),
    ],
)
def test_the_pem_chain_is_normalised_leaf_first_and_judged_with_signatures(
    shape: str, expected: set[str]
) -> None:
    # given the chain CAS holds in one of the shapes uploads come in, and a CertChain
    # that lists the leaf too
    pki = build_pki(SANS, depth=2)
    leaf, lower, upper = pki.chain
    certs = {
        "leaf-first": [leaf, lower, upper],
        "with-root": [leaf, lower, upper, pki.root.cert],
        "reversed": [upper, lower, leaf],
        "leaf-twice": [leaf, leaf, lower, upper],
    }[shape]
    # when the candidate is judged from its detail
    cert = judge_detail(_detail(pem(*certs), certs), _trust(pki), NOW)
    # then the chain verifies; disorder and duplicates are warnings, not refusals
    assert cert.signatures_checked and cert.chain_complete
    assert _codes(cert) == expected


def test_a_missing_intermediate_is_incomplete_unless_the_trust_store_holds_it() -> None:
    # given a leaf sent without its intermediate, and CAS listing only the leaf
    pki = build_pki(SANS)
    detail = _detail(pem(pki.leaf.cert), [pki.leaf.cert])
    # when judged against the root alone, then the chain is incomplete (no AIA fetching)
    alone = judge_detail(detail, _trust(pki), NOW)
    assert not alone.chain_complete and "CHAIN_INCOMPLETE" in _codes(alone)
    # and when the trust store also knows the intermediate, then it completes the chain
    known = TrustStore.from_certificates([pki.root.cert, pki.intermediates[0].cert])
    assert judge_detail(detail, known, NOW).chain_complete


def test_when_cert_lacks_intermediates_that_certchain_lists_the_names_decide() -> None:
    # given the other reading of CAS: Cert is the leaf, CertChain lists the full chain
    pki = build_pki(SANS)
    listed = [pki.leaf.cert, pki.intermediates[0].cert]
    # when judged, then the chain CAS lists is complete by its names (not refused)...
    cert = judge_detail(_detail(pem(pki.leaf.cert), listed), _trust(pki), NOW)
    assert cert.chain_complete and _codes(cert) == set()
    # ...and a listed chain that ends at an unknown CA is still refused
    stranger = make_ca("Stranger Root", slot=31)
    odd = make_ca("certpilot Test Intermediate 1", issuer=stranger, slot=32)
    leaf = make_leaf(odd, SANS, slot=33)
    listed = [leaf.cert, odd.cert, stranger.cert]
    cert = judge_detail(_detail(pem(leaf.cert), listed), _trust(pki), NOW)
    assert "UNTRUSTED_ROOT" in _codes(cert)


def test_a_signature_that_does_not_verify_is_no_issuer() -> None:
    # given a leaf naming the real intermediate as issuer but signed by another key
    pki = build_pki(SANS)
    intermediate = pki.intermediates[0].cert
    forged = make_leaf(Issued(intermediate, make_key("ec256", slot=41)), SANS)
    chain = [forged.cert, intermediate]
    # when judged, then the chain has no valid issuer: refused even though CertChain's
    # names look complete
    cert = judge_detail(_detail(pem(*chain), chain), _trust(pki), NOW)
    assert not cert.chain_complete and "CHAIN_INCOMPLETE" in _codes(cert)


_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_ECDSA_SHA1 = bytes.fromhex("300906072a8648ce3d0401")


def _ecdsa_sha1(cert: x509.Certificate, issuer_key: Any) -> x509.Certificate:
    """`cert` re-signed with ecdsa-with-SHA1 (cryptography's builder refuses SHA-1)."""
    tbs = cert.tbs_certificate_bytes
    header = 2 + (tbs[1] & 0x7F if tbs[1] & 0x80 else 0)
    content = tbs[header:]
    assert content.count(_ECDSA_SHA256) == 1
    new_tbs = _tlv(0x30, content.replace(_ECDSA_SHA256, _ECDSA_SHA1))
    signature = issuer_key.sign(new_tbs, ec.ECDSA(hashes.SHA1()))  # noqa: S303 (the point)
    der = _tlv(0x30, new_tbs + _ECDSA_SHA1 + _tlv(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def test_an_ecdsa_sha1_signature_verifies_and_is_weak_not_broken() -> None:
    # given an intermediate that signed a leaf with ecdsa-with-SHA1
    pki = build_pki(SANS)
    issuer = pki.intermediates[0]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, SANS[0])]))
        .issuer_name(issuer.cert.subject)
        .public_key(make_key("ec256", slot=42).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 60 * DAY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in SANS]), False)
    )
    leaf = _ecdsa_sha1(builder.sign(issuer.key, hashes.SHA256()), issuer.key)
    # when judged, then the signature verifies and only its digest is refused
    assert signed_by(leaf, issuer.cert)
    cert = judge_detail(_detail(pem(leaf, issuer.cert), None), _trust(pki), NOW)
    assert _codes(cert) == {"WEAK_SIGNATURE"}


def test_without_cert_only_the_names_are_judged_and_unparseable_text_is_refused() -> None:
    pki = build_pki(SANS)
    # given no Cert at all: the names-only judgement, marked as such
    bare = judge_detail(_detail(None, pki.chain), _trust(pki), NOW)
    assert not bare.signatures_checked and bare.chain_complete
    # given text that is no certificate: NOT_PEM
    broken = judge_detail(_detail(b"-----BEGIN CERTIFICATE-----\nAAAA\n", None), _trust(pki), NOW)
    assert _codes(broken) == {"NOT_PEM"}


def test_the_key_cas_sends_is_never_kept() -> None:
    # given CAS's answer with CertFilter=false (it carries Key)
    pki = build_pki(SANS)
    detail = _detail(pki.chain_pem(), pki.chain)
    # then neither the parsed detail nor the judged certificate holds it
    assert "PRIVATE KEY" not in repr(asdict(detail))
    assert "PRIVATE KEY" not in repr(judge_detail(detail, _trust(pki), NOW))


@pytest.mark.parametrize(
    ("pki_options", "code"),
    [
        ({"leaf_key": "rsa1024"}, Code.WEAK_KEY),
        ({"ca_digest": "sha1", "ca_key": "rsa2048"}, Code.WEAK_SIGNATURE),
    ],
)
def test_the_plan_refuses_on_the_checks_findings_with_their_messages(
    pki_options: dict[str, Any], code: Code
) -> None:
    # given a candidate whose weakness only its PEM shows
    pki = build_pki(SANS, **pki_options)
    cert = judge_detail(_detail(pki.chain_pem(), pki.chain), _trust(pki), NOW)
    # when planned, then it is refused with the check's own finding (not a generic one)
    plan = plan_certificate(cert, Inventory(domains=()), NOW)
    assert plan.refused
    [finding] = [f for f in plan.findings if f.code is code]
    assert finding in cert.findings


def test_an_expired_intermediate_is_refused_though_the_leaf_is_valid() -> None:
    # given a valid leaf under an intermediate that expired yesterday
    root = make_ca("certpilot Test Root", slot=50)
    expired = make_ca(
        "Old Intermediate", issuer=root, slot=51, not_before=NOW - 400 * DAY, not_after=NOW - DAY
    )
    leaf = make_leaf(expired, SANS, slot=52)
    chain = [leaf.cert, expired.cert]
    trust = TrustStore.from_certificates([root.cert])
    cert = judge_detail(_detail(pem(*chain), chain), trust, NOW)
    # when planned, then CERT_EXPIRED (of the intermediate) refuses it
    plan = plan_certificate(cert, Inventory(domains=()), NOW)
    assert plan.refused and Code.CERT_EXPIRED in {f.code for f in plan.findings}
