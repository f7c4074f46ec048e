"""deploy-cert and revocation, end to end: the CA's OCSP responder and CRL (the emulator's
test PKI), CAS order status for purchased certificates, and CAS on the International
site (`ap-southeast-1`).

A revoked candidate is refused before any write; a revoked current certificate makes
its domains due for replacement; a CA that cannot be reached revokes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.deploy_helpers import (
    WRITES,
    bound,
    cloudevent,
    invoke,
    issue,
    outcomes,
    served,
    use_estate,
)

pytestmark = pytest.mark.e2e

# A current certificate that lasts longer than the renewal: left alone unless revoked.
ESTATE: dict[str, Any] = {
    "certificates": [{"name": "current", "sans": ["*.example.com"], "days": 300}],
    "buckets": [
        {
            "name": "assets",
            "cnames": [
                {"domain": "static.example.com", "certificate": "current"},
                {"domain": "files.example.com", "certificate": "current"},
            ],
        }
    ],
    "cdn_domains": [{"name": "cdn.example.com", "origin": "assets", "certificate": "current"}],
}
DOMAINS = ("static.example.com", "files.example.com", "cdn.example.com")


@pytest.fixture
def account(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, int]]:
    ids = use_estate(cloud, monkeypatch, ESTATE)
    return cloud, ids


def _writes(cloud: Any) -> dict[str, int]:
    actions = cloud.stats()["actions"]
    return {action: actions.get(action, {}).get("calls", 0) for action in WRITES}


def test_a_candidate_its_ca_revoked_is_refused_with_no_write(
    account: tuple[Any, dict[str, int]],
) -> None:
    cloud, _ = account
    before = bound(cloud)
    # Given a renewal uploaded to CAS, then revoked by its CA (CAS cannot know: only its
    # OCSP responder says so)
    new = issue(cloud, ["*.example.com"], days=400)
    cloud.admin("POST", "cas/revoke", {"certId": new["certId"], "reason": "keyCompromise"})
    # When its event reaches deploy-cert
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # Then it is refused as revoked, every covered domain skipped, nothing written
    assert (summary["ok"], summary["status"]) == (False, "refused")
    assert "CERT_REVOKED" in [f["code"] for f in summary["findings"]]
    assert {reason for _, reason in outcomes(summary).values()} == {
        "candidate-invalid:CERT_REVOKED"
    }
    assert _writes(cloud) == {"oss:PutCname": 0, "cdn:SetCdnDomainSSLCertificate": 0}
    assert bound(cloud) == before
    # And the CA was asked (OCSP)
    assert cloud.action_stats("pki:OCSP")["calls"] >= 1


def test_a_purchased_candidate_whose_order_is_revoked_is_refused_without_the_ca(
    account: tuple[Any, dict[str, int]],
) -> None:
    cloud, _ = account
    # Given a certificate bought through CAS and revoked, and its CA unreachable
    new = issue(cloud, ["*.example.com"], days=400, order="BUY")
    cloud.admin("POST", "cas/revoke", {"certId": new["certId"]})
    cloud.faults(action="pki:*", drop=True)
    # When its event reaches deploy-cert
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # Then CAS's order status alone refuses it
    assert summary["status"] == "refused"
    assert "CERT_REVOKED" in [f["code"] for f in summary["findings"]]
    assert sum(_writes(cloud).values()) == 0


@pytest.mark.parametrize("revoked", [False, True], ids=["current-good", "current-revoked"])
def test_a_revoked_current_certificate_makes_its_domains_due(
    account: tuple[Any, dict[str, int]], revoked: bool
) -> None:
    cloud, ids = account
    # Given three domains on one current certificate that outlasts the renewal
    if revoked:
        # (which its CA then revoked: CAS cannot know, the edge serves it, OCSP says so)
        cloud.admin("POST", "cas/revoke", {"certId": ids["current"]})
    new = issue(cloud, ["*.example.com"], days=200)
    # When the renewal's event reaches deploy-cert
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    result = outcomes(summary)
    if not revoked:
        # Then a good current certificate that expires later stays
        assert {result[d] for d in DOMAINS} == {("skipped", "current-expires-later")}
        return
    # Then a revoked one is replaced everywhere, the edge serving the renewal
    assert {result[d] for d in DOMAINS} == {("deployed", "current-invalid:CERT_REVOKED")}
    assert summary["status"] == "deployed"
    for domain in DOMAINS:
        assert bound(cloud)[domain] == new["certId"]
        assert served(cloud, domain) == new["sha256"]
    # And the shared current certificate was asked about once (plus the candidate)
    assert cloud.action_stats("pki:OCSP")["calls"] == 2


def test_a_ca_that_cannot_be_reached_revokes_nothing(
    account: tuple[Any, dict[str, int]],
) -> None:
    cloud, ids = account
    # Given a current certificate its CA revoked, and the CA's responder and CRL down
    cloud.admin("POST", "cas/revoke", {"certId": ids["current"]})
    cloud.faults(action="pki:*", drop=True)
    new = issue(cloud, ["*.example.com"], days=200)
    # When the renewal's event reaches deploy-cert
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # Then "unknown" is not "revoked": the candidate is not refused, the current one
    # (which outlasts it) stays
    assert summary["ok"] is True
    assert {outcomes(summary)[d] for d in DOMAINS} == {("skipped", "current-expires-later")}
    assert cloud.action_stats("pki:OCSP")["errors"] >= 1


def test_deploy_cert_on_an_international_account(
    emulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an emulator of an International-site account: CAS in ap-southeast-1
    intl = emulator_factory("--cas-region", "ap-southeast-1")
    assert intl.info["cas_region"] == "ap-southeast-1"
    use_estate(intl, monkeypatch, ESTATE)
    monkeypatch.setenv("CERTPILOT_CAS_REGION", "ap-southeast-1")
    new = issue(intl, ["*.example.com"], days=400)
    assert new["identifier"] == f"{new['certId']}-ap-southeast-1"
    # When the renewal's event (by identifier) reaches deploy-cert
    summary = invoke(intl, cloudevent(intl, new["identifier"]))
    # Then it is deployed on OSS and CDN, by the International CertIdentifier / CertRegion
    assert summary["status"] == "deployed", summary
    state = intl.state()
    cname = state["buckets"]["assets"]["cnames"]["static.example.com"]["certificate"]
    assert (cname["cert_id"], cname["cert_region"]) == (new["certId"], "ap-southeast-1")
    ssl = state["cdn_domains"]["cdn.example.com"]["ssl"]
    assert (ssl["cert_id"], ssl["cert_region"]) == (new["certId"], "ap-southeast-1")
    for domain in DOMAINS:
        assert served(intl, domain) == new["sha256"]


def test_a_purchased_current_certificate_whose_order_is_revoked_is_replaced(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given domains on a certificate bought through CAS, revoked (CAS's order says so),
    # and its CA unreachable
    bought = {
        **ESTATE["certificates"][0],
        "source": "issued",
        "order": "BUY",
        "revoked": True,
    }
    use_estate(cloud, monkeypatch, {**ESTATE, "certificates": [bought]})
    cloud.faults(action="pki:*", drop=True)
    new = issue(cloud, ["*.example.com"], days=200)
    # When a renewal that expires sooner than it arrives
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # Then the order's status alone makes every domain due
    assert {outcomes(summary)[d] for d in DOMAINS} == {("deployed", "current-invalid:CERT_REVOKED")}
