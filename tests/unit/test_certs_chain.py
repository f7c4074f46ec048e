"""Chain normalization (leaf first, issuing order, no root, no duplicates) and describe()."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from cryptography import x509

from certpilot import certs
from certpilot.certs import CertBundle, describe, normalize_chain
from tests.pki import DAY, KEY_KINDS, NOW, Pki, build_pki, make_ca, make_leaf


@pytest.fixture(scope="module")
def pki() -> Pki:
    return build_pki(depth=2)


@pytest.fixture(scope="module")
def other() -> Pki:
    return build_pki(("other.example.org",), root_cn="Other Root", slot=3)


# The chain of `pki` is [leaf, int2, int1]; root issued int1.
ORDERS: list[tuple[str, Callable[[Pki, Pki], list[x509.Certificate]], dict[str, object]]] = [
    ("leaf-first", lambda p, o: p.chain, {"wrong": False, "root": False}),
    ("reversed", lambda p, o: p.chain[::-1], {"wrong": True, "root": False}),
    ("leaf-last", lambda p, o: p.chain[1:] + p.chain[:1], {"wrong": True, "root": False}),
    (
        "intermediates-swapped",
        lambda p, o: [p.chain[0], p.chain[2], p.chain[1]],
        {"wrong": True, "root": False},
    ),
    ("with-root-last", lambda p, o: [*p.chain, p.root.cert], {"wrong": False, "root": True}),
    ("with-root-first", lambda p, o: [p.root.cert, *p.chain], {"wrong": True, "root": True}),
    (
        "duplicates",
        lambda p, o: [p.chain[0], p.chain[0], *p.chain[1:], p.chain[1]],
        {"wrong": False, "root": False, "duplicates": 2},
    ),
    (
        "unrelated-cert",
        lambda p, o: [*p.chain, o.intermediates[0].cert],
        {"wrong": False, "root": False, "unrelated": 1},
    ),
    (
        "unrelated-cert-first",
        lambda p, o: [o.intermediates[0].cert, *p.chain],
        {"wrong": False, "root": False, "unrelated": 1},
    ),
]


@pytest.mark.parametrize(("arrange", "expect"), [o[1:] for o in ORDERS], ids=[o[0] for o in ORDERS])
def test_normalize_chain_repairs_order(
    pki: Pki,
    other: Pki,
    arrange: Callable[[Pki, Pki], list[x509.Certificate]],
    expect: dict[str, object],
) -> None:
    # given the certificates in some order, when normalized
    chain = normalize_chain(arrange(pki, other))
    # then leaf first, issuers in order, root set apart
    assert [chain.leaf, *chain.intermediates] == pki.chain
    assert chain.order_was_wrong is expect["wrong"]
    assert (chain.root is not None) is expect["root"]
    assert chain.duplicates_removed == expect.get("duplicates", 0)
    assert len(chain.unrelated) == expect.get("unrelated", 0)


def test_order_is_not_judged_for_unordered_containers(pki: Pki) -> None:
    chain = normalize_chain(pki.chain[::-1], order_matters=False)
    assert not chain.order_was_wrong and chain.leaf == pki.leaf.cert


def test_single_self_signed_certificate_is_the_leaf() -> None:
    root = make_ca("lonely.example.com")
    chain = normalize_chain([root.cert])
    assert chain.leaf == root.cert and chain.root is None and chain.intermediates == ()


def test_key_picks_the_leaf_among_two_leaves(pki: Pki) -> None:
    # given two leaves of the same intermediate
    issuer = pki.intermediates[-1]
    first = make_leaf(issuer, ["a.example.com"], slot=1)
    second = make_leaf(issuer, ["b.example.com"], slot=2)
    certs_in = [first.cert, second.cert, issuer.cert]
    # then without a key the first wins; with a key, the one it belongs to
    assert normalize_chain(certs_in).leaf == first.cert
    chosen = normalize_chain(certs_in, second.key)
    assert chosen.leaf == second.cert and chosen.unrelated == (first.cert,)


def test_empty_and_huge_bundles_are_refused(pki: Pki) -> None:
    with pytest.raises(certs.NoCertificate):
        normalize_chain([])
    many = [
        make_leaf(pki.root, [f"h{i}.example.com"]).cert
        for i in range(certs.MAX_BUNDLE_CERTIFICATES + 1)
    ]
    with pytest.raises(certs.InputTooLarge):
        normalize_chain(many)


def test_bundle_pem_has_no_root(pki: Pki) -> None:
    bundle = CertBundle.from_certificates([pki.root.cert, *pki.chain[::-1]])
    text = bundle.to_pem_bundle()
    assert text.count("BEGIN CERTIFICATE") == 3
    assert bundle.root_included and bundle.order_was_wrong
    assert certs.load_pem_certificates(text.encode()) == pki.chain


def test_sha1_signed_chain_is_still_assembled() -> None:
    weak = build_pki(depth=1, ca_key="rsa2048", leaf_digest="sha1", ca_digest="sha1")
    chain = normalize_chain([weak.root.cert, *weak.chain[::-1]])
    assert [chain.leaf, *chain.intermediates] == weak.chain and chain.root == weak.root.cert


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_describe_each_key_type(kind: str) -> None:
    p = build_pki(
        ("www.example.com", "example.com"),
        leaf_key=kind,
        ca_key="rsa2048" if kind == "rsa2048" else "ec256",
    )
    summary = describe(p.leaf.cert, NOW)
    expected = {"rsa2048": ("RSA", 2048), "ec256": ("EC", 256), "ed25519": ("Ed25519", 256)}[kind]
    assert (summary.key_type, summary.key_size) == expected
    assert summary.sans == ("www.example.com", "example.com")
    assert summary.subject == "CN=www.example.com"
    assert summary.issuer == "CN=certpilot Test Intermediate 1,O=certpilot tests"
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", summary.sha256)
    assert re.fullmatch(r"[0-9A-F]+", summary.serial) and len(summary.serial) % 2 == 0
    assert int(summary.serial, 16) == p.leaf.cert.serial_number
    assert summary.not_before == "2025-05-02T12:00:00Z"
    assert summary.not_after == "2025-07-31T12:00:00Z"
    assert summary.days_left == 60
    assert summary.signature_hash == "sha256"
    assert not summary.is_ca and not summary.self_signed
    assert summary.to_dict()["sans"] == ["www.example.com", "example.com"]


@pytest.mark.parametrize(
    ("offset", "days"),
    [(0 * DAY, 60), (DAY / 2, 59), (60 * DAY, 0), (61 * DAY, -1), (70 * DAY, -10)],
    ids=["now", "half-day-later", "on-expiry", "one-day-after", "ten-days-after"],
)
def test_days_left_rounds_down(pki: Pki, offset: object, days: int) -> None:
    assert certs.days_left(pki.leaf.cert, NOW + offset) == days  # type: ignore[operator]


def test_describe_refuses_naive_now(pki: Pki) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        describe(pki.leaf.cert, NOW.replace(tzinfo=None))


def test_issuer_organization_and_self_signed(pki: Pki) -> None:
    assert certs.issuer_organization(pki.leaf.cert) == "certpilot tests"
    assert certs.is_self_signed(pki.root.cert)
    assert not certs.is_self_signed(pki.leaf.cert)
    assert certs.signed_by(pki.chain[1], pki.chain[2])
    assert not certs.signed_by(pki.chain[2], pki.chain[1])
