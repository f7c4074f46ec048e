"""deploy-cert against a CDN that behaves as documented while a change propagates: the edge
serves the old and the new certificate side by side, node by node, and a domain still
configuring an earlier change answers ServiceBusy.

The oracle is the emulator's own record of every TLS handshake its edge answered (which
node, which certificate, whether the change had reached every node by then), not
certpilot's probe: a domain reported `deployed` must have been judged on handshakes
made once every node served the new certificate.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.deploy_helpers import cloudevent, invoke, issue, use_estate
from tests.integration.polling import poll

pytestmark = pytest.mark.e2e

CDN = [f"cdn{i}.example.com" for i in range(6)]
BUSY = CDN[:2]  # configuring an earlier feature change when the run starts
OSS = ["static.example.com", "files.example.com"]
PROPAGATION = 1.5  # seconds for a change to reach the last of the 3 edge nodes


def fleet_estate() -> dict[str, Any]:
    return {
        "settings": {"propagation_delay": 0},
        "certificates": [
            {"name": "old", "sans": ["*.example.com"], "not_before": "-70d", "days": 90}
        ],
        "buckets": [
            {
                "name": "assets",
                "objects": {"index.html": "<p>hi</p>"},
                "cnames": [{"domain": d, "certificate": "old"} for d in OSS],
            }
        ],
        "cdn_domains": [{"name": d, "origin": "assets", "certificate": "old"} for d in CDN],
    }


def test_a_rollout_under_node_by_node_propagation_and_busy_domains_is_never_reported_early(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given CDN domains behind an edge of 3 nodes that each switch at their own time
    # within a 1.5 s propagation, two of them still configuring an earlier change (held
    # `configuring` until the run has been refused on both, whatever the machine's speed)
    use_estate(cloud, monkeypatch, fleet_estate(), verify_deadline=10.0)
    cloud.settings(propagation_delay=PROPAGATION, edge_nodes=3, edge_node_selection="round_robin")
    new = issue(cloud, ["*.example.com"], days=120)
    for domain in BUSY:
        cloud.admin("POST", "cdn/status", {"domain": domain, "status": "configuring"})
    # When the renewal is rolled out, and the earlier change settles meanwhile
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(invoke, cloud, cloudevent(cloud, new["certId"]))
        poll(
            lambda: cloud.action_stats("cdn:SetCdnDomainSSLCertificate")["errors"],
            lambda refused: refused >= len(BUSY) or running.done(),
            timeout=30.0,
        )
        for domain in BUSY:
            cloud.admin("POST", "cdn/status", {"domain": domain, "status": None})
        summary = running.result(timeout=60)
    # Then every domain is verified (none could be left unwritten or rolled back here)
    results = {r["domain"]: r for r in summary["results"]}
    assert {results[d]["outcome"] for d in (*CDN, *OSS)} == {"deployed"}, summary["results"]
    assert (summary["ok"], summary["status"]) == (True, "deployed")
    # and the summary says on how many consecutive handshakes each was judged
    assert summary["verifyConsecutive"] == 3
    # and the busy domains were written once their earlier change had propagated: their
    # first writes were refused as ServiceBusy, and each domain was written once
    busy = cloud.action_stats("cdn:SetCdnDomainSSLCertificate")
    assert busy["errors"] >= len(BUSY) and busy["calls"] - busy["errors"] == len(CDN)
    # and no CDN domain was judged on a handshake made before every node had the new
    # certificate: the last handshakes certpilot made to each (its confirmation) came
    # from every node, all serving the new certificate, all after the change settled
    logs = {
        domain: cloud.admin("GET", f"edge/handshakes?host={domain}")["handshakes"] for domain in CDN
    }
    for log in logs.values():
        last = log[-3:]
        assert {h["node"] for h in last} == {0, 1, 2}, log
        assert all(h["settled"] and h["fingerprint"] == new["sha256"] for h in last), log
    # while the busy domains, written last, were probed while their nodes still
    # disagreed (so the check above could have failed)
    for domain in BUSY:
        assert any(not h["settled"] for h in logs[domain]), logs[domain]


def test_a_single_handshake_judges_too_early_the_negative_control(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same fleet, and certpilot told to judge on one handshake
    use_estate(cloud, monkeypatch, fleet_estate(), verify_deadline=10.0)
    monkeypatch.setenv("CERTPILOT_VERIFY_CONSECUTIVE", "1")
    cloud.settings(propagation_delay=2.0, edge_nodes=3, edge_node_selection="round_robin")
    new = issue(cloud, ["*.example.com"], days=120)
    # When the renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    assert summary["status"] == "deployed" and summary["verifyConsecutive"] == 1
    # Then some CDN domain was reported on a handshake made while another node still
    # served the old certificate: the oracle above catches exactly this
    early = [
        domain
        for domain in CDN
        if not cloud.admin("GET", f"edge/handshakes?host={domain}")["handshakes"][-1]["settled"]
    ]
    assert early, "with one handshake some domain should have been judged before it settled"
