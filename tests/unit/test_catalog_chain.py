"""Chain completeness judged from CAS's CertChain[] by names (pure), and CatalogCert parsing."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from certpilot.cloud.cas import parse_detail, split_sans
from certpilot.core.cloudtypes import CasDetail, CasSummary, ChainEntry
from certpilot.discovery.catalog import from_detail, from_summary, judge_chain

ANCHORS = frozenset({"root ca"})
LEAF = ChainEntry("www.example.com", "Issuing CA")
ISSUING = ChainEntry("Issuing CA", "Root CA")
ROOT = ChainEntry("Root CA", "Root CA")
CROSS = ChainEntry("Issuing CA", "Policy CA")
POLICY = ChainEntry("Policy CA", "Root CA")
BAD_ISSUING = ChainEntry("Issuing CA", "Corp Root")
BAD_ROOT = ChainEntry("Corp Root", "Corp Root")
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
T1 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        ([LEAF, ISSUING], (True, ())),
        ([LEAF, ISSUING, ROOT], (True, ())),
        ([LEAF, CROSS, POLICY], (True, ())),
        ([LEAF], (False, ("CHAIN_INCOMPLETE",))),
        ([LEAF, POLICY], (False, ("CHAIN_INCOMPLETE",))),
        ([ISSUING, LEAF], (True, ("CHAIN_ORDER",))),
        ([LEAF, POLICY, CROSS], (True, ("CHAIN_ORDER",))),
        ([LEAF, BAD_ISSUING], (False, ("UNTRUSTED_ROOT",))),
        ([LEAF, BAD_ISSUING, BAD_ROOT], (False, ("UNTRUSTED_ROOT",))),
        ([ISSUING], (True, ())),  # no leaf entry: the first is its issuer
        ([], (True, ())),  # no CertChain: not judged
        (None, (True, ())),
    ],
)
def test_chain_judgement(
    chain: list[ChainEntry] | None, expected: tuple[bool, tuple[str, ...]]
) -> None:
    assert judge_chain("www.example.com", chain, ANCHORS) == expected


def test_a_leaf_issued_straight_by_an_anchor_is_complete() -> None:
    leaf = ChainEntry("www.example.com", "Root CA")

    assert judge_chain("www.example.com", [leaf], ANCHORS) == (True, ())


def test_a_self_signed_leaf_is_an_untrusted_root() -> None:
    leaf = ChainEntry("www.example.com", "www.example.com")

    assert judge_chain("www.example.com", [leaf], ANCHORS) == (False, ("UNTRUSTED_ROOT",))


def test_detail_becomes_a_catalog_cert() -> None:
    body = {
        "Id": 77,
        "Name": "wild",
        "Common": "*.Example.com",
        "Sans": "*.Example.com, example.com,,bücher.example.com",
        "Issuer": "Emulator CA One",
        "NotBefore": int(T0.timestamp() * 1000),
        "NotAfter": int(T1.timestamp() * 1000),
        "Sha2": "ab:cd" + "ef" * 30,
        "CertIdentifier": "77-cn-hangzhou",
        "CertChain": [
            {"CommonName": "*.Example.com", "IssuerCommonName": "Issuing CA"},
            {"CommonName": "Issuing CA", "IssuerCommonName": "Root CA"},
        ],
    }

    cert = from_detail(parse_detail(body, 77, "cn-hangzhou"), ANCHORS)

    assert cert.sans == ("*.example.com", "example.com", "xn--bcher-kva.example.com")
    assert (cert.cas_id, cert.identifier, cert.region) == (77, "77-cn-hangzhou", "cn-hangzhou")
    assert (cert.not_before, cert.not_after) == (T0, T1)
    assert cert.fingerprint_sha256 == "ABCD" + "EF" * 30
    assert cert.chain_complete and cert.problems == () and not cert.revoked


def test_a_certificate_rows_status_is_not_taken_for_revocation() -> None:
    # given a certificate row (OrderType CERT) that says REVOKED: CAS documents Status
    # for orders only, and cannot know that a CA revoked an uploaded certificate
    summary = CasSummary(
        cas_id=9,
        name="old",
        common_name="www.example.com",
        sans=("www.example.com",),
        issuer="CA",
        start=T0,
        end=T1,
        expired=False,
        upload=True,
        status="REVOKED",
    )

    # when it becomes a catalog certificate
    cert = from_summary(summary, "cn-hangzhou")

    # then it is not marked revoked (its CA is asked instead)
    assert not cert.revoked and cert.identifier == "9-cn-hangzhou"
    assert cert.valid_at(datetime(2025, 6, 1, tzinfo=timezone.utc))


def test_detail_without_optional_fields_still_parses() -> None:
    detail = parse_detail({"Common": "a.example.com"}, 5, "ap-southeast-1")

    assert isinstance(detail, CasDetail)
    assert detail.identifier == "5-ap-southeast-1" and detail.chain is None
    assert split_sans(["a", " b ", ""]) == ("a", "b")
