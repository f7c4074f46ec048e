"""The certificate catalog against the emulator's CAS, through the real SDK."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from certpilot.certs.trust import TrustStore
from certpilot.discovery import catalog
from tests.integration.clients import calls, make_clients

pytestmark = pytest.mark.integration

ESTATE: dict[str, Any] = {
    "certificates": [
        {"name": "good", "sans": ["*.example.com", "example.com"], "ca": "one", "days": 90},
        {"name": "idn", "sans": ["bücher.example.com"], "ca": "one", "days": 90},
        {"name": "backup", "sans": ["www.example.com"], "ca": "two", "chain": "with-root"},
        {"name": "partial", "sans": ["partial.example.com"], "ca": "one", "chain": "leaf-only"},
        {"name": "order", "sans": ["order.example.com"], "ca": "one", "chain": "wrong-order"},
        {"name": "internal", "sans": ["internal.example.com"], "ca": "untrusted"},
        # Purchased through CAS, then revoked: its order says REVOKED.
        {
            "name": "revoked",
            "sans": ["revoked.example.com"],
            "ca": "two",
            "source": "issued",
            "order": "BUY",
            "revoked": True,
        },
        # Uploaded, then revoked by its CA: CAS cannot know (only OCSP / CRL tell).
        {"name": "ca-revoked", "sans": ["ca-revoked.example.com"], "ca": "one", "revoked": True},
        {
            "name": "expired",
            "sans": ["old.example.com"],
            "ca": "one",
            "not_before": "-100d",
            "not_after": "-1d",
        },
    ]
}
USABLE = 8  # all but the expired one: CAS lists certificates by their dates only


@pytest.fixture
def loaded(cloud: Any) -> Any:
    cloud.load_estate(ESTATE)
    return cloud


def test_catalog_parses_and_judges_every_certificate(loaded: Any) -> None:
    # Given CAS holding certificates of every chain shape, one revoked, one expired
    clients = make_clients(loaded)
    trust = TrustStore.from_file(loaded.ca_bundle)

    # When the catalog is loaded
    result = catalog.load(clients, trust)

    # Then each usable certificate is there, judged by its chain
    by_name = {c.name: c for c in result.certificates}
    assert set(by_name) == {
        "good",
        "idn",
        "backup",
        "partial",
        "order",
        "internal",
        "revoked",
        "ca-revoked",
    }
    judged = {
        n: (c.chain_complete, c.problems)
        for n, c in by_name.items()
        if n not in ("revoked", "ca-revoked")
    }
    assert judged == {
        "good": (True, ()),
        "idn": (True, ()),
        "backup": (True, ()),
        "partial": (False, ("CHAIN_INCOMPLETE",)),
        "order": (True, ("CHAIN_ORDER",)),
        "internal": (False, ("UNTRUSTED_ROOT",)),
    }
    good = by_name["good"]
    assert good.sans == ("*.example.com", "example.com")
    assert good.identifier == f"{good.cas_id}-cn-hangzhou" and good.region == "cn-hangzhou"
    assert good.not_before < good.not_after and good.not_after.tzinfo is not None
    assert len(good.fingerprint_sha256) == 64 and good.issuer
    assert by_name["idn"].sans == ("xn--bcher-kva.example.com",)
    assert by_name["good"].issuer != by_name["backup"].issuer
    # And only the purchased one is known revoked, from its order (not the listing row)
    assert by_name["revoked"].revoked and not by_name["revoked"].valid_at(good.not_before)
    assert [c.name for c in result.certificates if c.revoked] == ["revoked"]


def test_catalog_costs_one_detail_call_per_usable_certificate(loaded: Any) -> None:
    # Given a harmless fault that counts the detail calls excluding Cert and Key
    # (the SDK sends a Python bool as "True")
    clients = make_clients(loaded)
    [probe] = loaded.faults(
        action="cas:GetUserCertificateDetail", where={"CertFilter": "True"}, latency=0.001
    )

    # When the catalog is loaded
    catalog.load(clients, TrustStore.from_file(loaded.ca_bundle))

    # Then the listing took one call per status asked, the details one per usable
    # certificate, and every detail call asked CAS to leave out Cert and Key
    # usable certificates + revoked BUY orders + revoked CPACK orders
    assert calls(loaded, "cas:ListUserCertificateOrder") == 3
    assert calls(loaded, "cas:GetUserCertificateDetail") == USABLE
    applied = {f["id"]: f["applied"] for f in loaded.admin("GET", "faults")["faults"]}
    assert applied[probe["id"]] == USABLE


def test_catalog_can_be_narrowed_to_the_domains_at_hand(loaded: Any) -> None:
    clients = make_clients(loaded)

    result = catalog.load(
        clients,
        TrustStore.from_file(loaded.ca_bundle),
        covering=["www.example.com"],
        include_revoked=False,
    )

    assert sorted(c.name for c in result.certificates) == ["backup", "good"]
    assert calls(loaded, "cas:GetUserCertificateDetail") == 2


def test_expired_certificates_on_request(loaded: Any) -> None:
    clients = make_clients(loaded)

    result = catalog.load(clients, TrustStore.from_file(loaded.ca_bundle), include_expired=True)

    [expired] = [c for c in result.certificates if c.name == "expired"]
    assert not expired.valid_at(datetime.now(timezone.utc))
    assert expired.valid_at(expired.not_after - timedelta(days=1))


def test_many_certificates_are_paged(cloud: Any) -> None:
    # Given more certificates than one ListUserCertificateOrder page holds
    cloud.load_estate(
        {
            "certificates": [
                {"name": f"c{i:03d}", "sans": [f"h{i:03d}.example.com"], "ca": "one"}
                for i in range(120)
            ]
        }
    )
    clients = make_clients(cloud)

    # When they are listed
    listed = clients.cas.list_certificates()

    # Then all pages were read (50 a page)
    assert len({s.cas_id for s in listed}) == 120
    assert calls(cloud, "cas:ListUserCertificateOrder") == 3


def test_a_refused_revoked_filter_does_not_fail_the_catalog(loaded: Any) -> None:
    # Given a CAS that refuses Status=REVOKED for orders
    clients = make_clients(loaded)
    loaded.faults(
        action="cas:ListUserCertificateOrder",
        where={"Status": "REVOKED"},
        error={"code": "InvalidParameter", "status": 400},
    )

    # When the catalog is loaded
    result = catalog.load(clients, TrustStore.from_file(loaded.ca_bundle))

    # Then the usable certificates are all there, only the order's revocation is unknown
    assert len(result.certificates) == USABLE
    assert not any(c.revoked for c in result.certificates)


def test_a_candidate_is_judged_from_its_pem_chain_like_the_names_judge_it(loaded: Any) -> None:
    # Given CAS holding certificates of every chain shape
    clients = make_clients(loaded)
    trust = TrustStore.from_file(loaded.ca_bundle)
    listed = {c.name: c for c in catalog.load(clients, trust).certificates}
    now = datetime.now(timezone.utc)

    # When each usable one is loaded as a candidate (its PEM, signatures checked)
    judged = {
        name: catalog.load_candidate(clients, trust, cert.cas_id, now)
        for name, cert in listed.items()
        if name not in ("revoked", "ca-revoked")
    }

    # Then every one was checked from its PEM, and
    # the verdicts agree with the names-only ones except where only signatures can tell
    # (an untrusted CA whose root is not sent is a chain that stops short of any anchor)
    assert all(c is not None and c.signatures_checked for c in judged.values())
    verdicts = {n: (c.chain_complete, c.problems) for n, c in judged.items() if c is not None}
    assert verdicts == {
        "good": (True, ()),
        "idn": (True, ()),
        "backup": (True, ()),
        "partial": (False, ("CHAIN_INCOMPLETE",)),
        "order": (True, ("CHAIN_ORDER",)),
        "internal": (False, ("CHAIN_INCOMPLETE",)),
    }
    for name, cert in judged.items():
        assert cert is not None
        assert cert.sans == listed[name].sans
        assert cert.fingerprint_sha256 == listed[name].fingerprint_sha256
    # And an id CAS does not hold is None
    assert catalog.load_candidate(clients, trust, 987654, now) is None
