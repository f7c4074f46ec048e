"""validate(): every finding code it emits, as given/when/then scenarios at a fixed NOW."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from certpilot.certs import CertBundle, PrivateKey, load_bundle
from certpilot.certs.trust import TrustStore
from certpilot.certs.validate import (
    ChainStatus,
    analyze_chain,
    check_dates,
    validate,
    validate_for_deploy,
)
from certpilot.core.findings import Code, Severity, has_errors
from certpilot.core.names import InvalidHostname
from tests.pki import (
    DAY,
    NOW,
    Pki,
    build_pki,
    der,
    key_bytes,
    make_ca,
    make_key,
    make_leaf,
    p7b,
    p12,
    pem,
)


@dataclass(frozen=True)
class Given:
    """What a scenario judges."""

    bundle: CertBundle
    trust: TrustStore
    key: PrivateKey | None = None
    domain: str = "www.example.com"


def _trusting(p: Pki) -> TrustStore:
    return TrustStore.from_certificates([p.root.cert])


def _plain(p: Pki, *, key: PrivateKey | None = None, domain: str = "www.example.com") -> Given:
    return Given(load_bundle(p.chain_pem()), _trusting(p), key=key, domain=domain)


def _expired(_: None) -> Given:
    return _plain(build_pki(leaf_not_before=NOW - 400 * DAY, leaf_not_after=NOW - DAY))


def _not_yet_valid(_: None) -> Given:
    return _plain(build_pki(leaf_not_before=NOW + DAY, leaf_not_after=NOW + 90 * DAY))


def _expiring(_: None) -> Given:
    return _plain(build_pki(leaf_not_after=NOW + 10 * DAY))


def _expiring_on_the_edge(_: None) -> Given:
    return _plain(build_pki(leaf_not_after=NOW + 30 * DAY))


def _just_outside_window(_: None) -> Given:
    return _plain(build_pki(leaf_not_after=NOW + 30 * DAY + 1 * DAY / 24))


def _expired_intermediate(_: None) -> Given:
    root = make_ca()
    inter = make_ca("Old Intermediate", issuer=root, slot=4, not_after=NOW - DAY)
    leaf = make_leaf(inter)
    return Given(load_bundle(pem(leaf.cert, inter.cert)), TrustStore.from_certificates([root.cert]))


def _named(sans: tuple[str, ...], domain: str) -> Callable[[None], Given]:
    def build(_: None) -> Given:
        return _plain(build_pki(sans), domain=domain)

    return build


_name_mismatch = _named(("oss.example.com",), "cdn.example.com")


def _cn_only(_: None) -> Given:
    # the CN names the domain but there is no SAN: browsers refuse it
    return _plain(build_pki((), cn="www.example.com"))


def _chain_incomplete(_: None) -> Given:
    p = build_pki(depth=2)
    return Given(load_bundle(pem(p.leaf.cert)), _trusting(p))


def _chain_gap(_: None) -> Given:
    p = build_pki(depth=2)
    # leaf and the top intermediate, the middle one missing
    return Given(load_bundle(pem(p.chain[0], p.chain[2])), _trusting(p))


def _untrusted_root(*, included: bool) -> Callable[[None], Given]:
    def build(_: None) -> Given:
        p = build_pki()
        stranger = build_pki(root_cn="Someone Else Root", slot=5)
        return Given(load_bundle(p.chain_pem(include_root=included)), _trusting(stranger))

    return build


def _same_name_other_key_root(_: None) -> Given:
    # a root with the right name but another key does not anchor the chain
    p = build_pki()
    impostor = make_ca(slot=6)
    return Given(load_bundle(p.chain_pem()), TrustStore.from_certificates([impostor.cert]))


def _self_signed_leaf(_: None) -> Given:
    me = make_ca("www.example.com", slot=8, ca=False)
    return Given(load_bundle(me.pem), _trusting(build_pki()))


def _self_signed_leaf_trusted(_: None) -> Given:
    # a private deployment that trusts the self-signed certificate itself
    me = make_ca("www.example.com", slot=8, ca=False)
    leaf_with_san = make_leaf(me, ["www.example.com"], slot=8)
    return Given(
        load_bundle(pem(leaf_with_san.cert, me.cert)), TrustStore.from_certificates([me.cert])
    )


def _issuer_not_a_ca(_: None) -> Given:
    root = make_ca()
    not_a_ca = make_ca("Not A CA", issuer=root, slot=41, ca=False)
    leaf = make_leaf(not_a_ca)
    return Given(
        load_bundle(pem(leaf.cert, not_a_ca.cert)), TrustStore.from_certificates([root.cert])
    )


def _wrong_order(_: None) -> Given:
    p = build_pki(depth=2)
    return Given(load_bundle(pem(*p.chain[::-1])), _trusting(p))


def _root_included_trusted(_: None) -> Given:
    p = build_pki(depth=2)
    return Given(load_bundle(p.chain_pem(include_root=True)), _trusting(p))


def _key_matches(kind: str) -> Callable[[None], Given]:
    def build(_: None) -> Given:
        p = build_pki(leaf_key=kind)
        return _plain(p, key=p.leaf.key)

    return build


def _key_mismatch(kind: str, other: str) -> Callable[[None], Given]:
    def build(_: None) -> Given:
        return _plain(build_pki(leaf_key=kind), key=make_key(other, 42))

    return build


def _combined_pem_with_wrong_key(_: None) -> Given:
    p = build_pki()
    data = p.chain_pem() + key_bytes(make_key("ec256", 9))
    return Given(load_bundle(data), _trusting(p))


def _p12_with_its_key(_: None) -> Given:
    p = build_pki()
    return Given(load_bundle(p12(p.leaf.key, p.leaf.cert, p.chain[1:])), _trusting(p))


def _fmt(encode: Callable[[Pki], bytes]) -> Callable[[None], Given]:
    def build(_: None) -> Given:
        p = build_pki(depth=0)
        return Given(load_bundle(encode(p)), _trusting(p))

    return build


def _weak(leaf_key: str = "ec256", ca_key: str = "rsa2048", **kw: str) -> Callable[[None], Given]:
    def build(_: None) -> Given:
        return _plain(build_pki(leaf_key=leaf_key, ca_key=ca_key, **kw))  # type: ignore[arg-type]

    return build


SCENARIOS: list[tuple[str, Callable[[None], Given], list[Code]]] = [
    ("clean-ec", _key_matches("ec256"), []),
    ("clean-rsa", _key_matches("rsa2048"), []),
    ("clean-ed25519", _key_matches("ed25519"), []),
    ("expired", _expired, [Code.CERT_EXPIRED]),
    ("not-yet-valid", _not_yet_valid, [Code.CERT_NOT_YET_VALID]),
    ("expiring-in-10-days", _expiring, [Code.CERT_EXPIRING]),
    ("expiring-exactly-30-days", _expiring_on_the_edge, [Code.CERT_EXPIRING]),
    ("30-days-and-an-hour", _just_outside_window, []),
    ("expired-intermediate", _expired_intermediate, [Code.CERT_EXPIRED]),
    ("name-mismatch", _name_mismatch, [Code.NAME_MISMATCH]),
    ("wildcard-apex", _named(("*.example.com",), "example.com"), [Code.WILDCARD_LEVEL]),
    (
        "wildcard-two-deep",
        _named(("*.example.com",), "cdn.oss.example.com"),
        [Code.WILDCARD_LEVEL],
    ),
    ("wildcard-ok", _named(("*.example.com",), "oss.example.com"), []),
    ("cn-only-no-san", _cn_only, [Code.NAME_MISMATCH]),
    ("idn-domain", _named(("xn--bcher-kva.example",), "Bücher.example"), []),
    ("chain-incomplete", _chain_incomplete, [Code.CHAIN_INCOMPLETE]),
    ("chain-gap", _chain_gap, [Code.CHAIN_INCOMPLETE, Code.CHAIN_ORDER]),
    ("untrusted-root-included", _untrusted_root(included=True), [Code.UNTRUSTED_ROOT]),
    ("untrusted-root-not-included", _untrusted_root(included=False), [Code.CHAIN_INCOMPLETE]),
    ("same-name-other-key-root", _same_name_other_key_root, [Code.CHAIN_INCOMPLETE]),
    ("self-signed-leaf", _self_signed_leaf, [Code.NAME_MISMATCH, Code.UNTRUSTED_ROOT]),
    ("self-signed-trusted", _self_signed_leaf_trusted, []),
    ("issuer-not-a-ca", _issuer_not_a_ca, [Code.CHAIN_INCOMPLETE]),
    ("wrong-order", _wrong_order, [Code.CHAIN_ORDER]),
    ("root-included-trusted", _root_included_trusted, []),
    ("key-mismatch-rsa", _key_mismatch("rsa2048", "rsa2048"), [Code.KEY_MISMATCH]),
    ("key-mismatch-ec", _key_mismatch("ec256", "ec256"), [Code.KEY_MISMATCH]),
    ("key-mismatch-ed25519", _key_mismatch("ed25519", "ed25519"), [Code.KEY_MISMATCH]),
    ("key-mismatch-type", _key_mismatch("rsa2048", "ec256"), [Code.KEY_MISMATCH]),
    ("combined-pem-wrong-key", _combined_pem_with_wrong_key, [Code.KEY_MISMATCH]),
    ("p12-with-its-key", _p12_with_its_key, [Code.NOT_PEM]),
    ("not-pem-der", _fmt(lambda p: der(p.leaf.cert)), [Code.NOT_PEM]),
    ("not-pem-p7b", _fmt(lambda p: p7b(p.chain)), [Code.NOT_PEM]),
    ("not-pem-p7b-pem", _fmt(lambda p: p7b(p.chain, as_pem=True)), [Code.NOT_PEM]),
    ("not-pem-p12", _fmt(lambda p: p12(p.leaf.key, p.leaf.cert, ())), [Code.NOT_PEM]),
    ("weak-rsa-1024-leaf", _weak(leaf_key="rsa1024"), [Code.WEAK_KEY]),
    ("weak-ec-224-leaf", _weak(leaf_key="ec224"), [Code.WEAK_KEY]),
    ("weak-rsa-1024-intermediate", _weak(ca_key="rsa1024"), [Code.WEAK_KEY]),
    ("sha1-leaf", _weak(leaf_digest="sha1"), [Code.WEAK_SIGNATURE]),
    ("md5-leaf", _weak(leaf_digest="md5"), [Code.WEAK_SIGNATURE]),
    ("sha1-intermediate", _weak(ca_digest="sha1"), [Code.WEAK_SIGNATURE]),
    ("rsa-3072-ok", _weak(leaf_key="rsa3072"), []),
    ("ec-384-ok", _weak(leaf_key="ec384", ca_key="ec384"), []),
]


@pytest.mark.parametrize(
    ("build", "codes"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS]
)
def test_validate_scenarios(build: Callable[[None], Given], codes: list[Code]) -> None:
    # given a bundle, maybe a key, a trust store
    given = build(None)
    # when validated at NOW
    findings = validate(given.bundle, given.domain, now=NOW, trust=given.trust, key=given.key)
    # then exactly these codes, each with its default severity and browser error
    assert sorted(f.code.value for f in findings) == sorted(c.value for c in codes)
    for finding in findings:
        assert finding.severity is finding.code.severity
        assert finding.browser_error == finding.code.browser_error
        assert "\n" not in finding.message and finding.message
        assert finding.domain == "www.example.com" or given.domain != "www.example.com"
    assert has_errors(findings) is any(c.severity is Severity.ERROR for c in codes)


def test_renew_days_moves_the_window() -> None:
    given = _plain(build_pki(leaf_not_after=NOW + 45 * DAY))
    assert [f.code for f in validate(given.bundle, given.domain, now=NOW, trust=given.trust)] == []
    found = validate(given.bundle, given.domain, now=NOW, trust=given.trust, renew_days=60)
    assert [f.code for f in found] == [Code.CERT_EXPIRING]
    assert "in 45 days" in found[0].message


def test_chain_analysis_names_the_anchor() -> None:
    p = build_pki(depth=2)
    analysis = analyze_chain(load_bundle(p.chain_pem()), _trusting(p))
    assert analysis.status is ChainStatus.TRUSTED and analysis.anchor == p.root.cert
    broken = analyze_chain(load_bundle(pem(p.leaf.cert)), _trusting(p))
    assert broken.status is ChainStatus.INCOMPLETE and broken.top == p.leaf.cert


def test_intermediate_as_trust_anchor() -> None:
    # a store that trusts the intermediate directly accepts the chain
    p = build_pki(depth=1)
    store = TrustStore.from_certificates([p.intermediates[0].cert])
    assert validate(load_bundle(pem(p.leaf.cert)), "www.example.com", now=NOW, trust=store) == []


def test_mozilla_store_does_not_trust_the_test_pki() -> None:
    p = build_pki(depth=1)
    findings = validate(load_bundle(p.chain_pem(include_root=True)), "www.example.com", now=NOW)
    assert [f.code for f in findings] == [Code.UNTRUSTED_ROOT]
    assert "Mozilla" in findings[0].message


def test_validate_refuses_bad_domain_and_naive_now() -> None:
    given = _plain(build_pki())
    with pytest.raises(InvalidHostname):
        validate(given.bundle, "192.0.2.1", now=NOW, trust=given.trust)
    with pytest.raises(ValueError, match="timezone-aware"):
        validate(given.bundle, "www.example.com", now=NOW.replace(tzinfo=None), trust=given.trust)
    with pytest.raises(ValueError, match="timezone-aware"):
        check_dates(given.bundle, "www.example.com", NOW.replace(tzinfo=None))


DEPLOY: list[tuple[str, Callable[[None], Given], bool, list[Code]]] = [
    ("usable", _key_matches("ec256"), True, []),
    ("expiring-still-usable", _expiring, True, [Code.CERT_EXPIRING]),
    ("wrong-order-still-usable", _wrong_order, True, [Code.CHAIN_ORDER]),
    ("expired-unusable", _expired, False, [Code.CERT_EXPIRED]),
    ("incomplete-unusable", _chain_incomplete, False, [Code.CHAIN_INCOMPLETE]),
    ("name-unusable", _name_mismatch, False, [Code.NAME_MISMATCH]),
    # deploys go by CAS reference: the key and the upload format are not judged
    ("bundled-key-ignored", _combined_pem_with_wrong_key, True, []),
]


@pytest.mark.parametrize(
    ("build", "usable", "codes"), [d[1:] for d in DEPLOY], ids=[d[0] for d in DEPLOY]
)
def test_validate_for_deploy(
    build: Callable[[None], Given], usable: bool, codes: list[Code]
) -> None:
    given = build(None)
    verdict = validate_for_deploy(given.bundle, given.domain, now=NOW, trust=given.trust)
    assert verdict.usable is usable
    assert [f.code for f in verdict.findings] == codes
    assert verdict.not_after == given.bundle.leaf.not_valid_after_utc
    assert verdict.to_dict()["usable"] is usable
