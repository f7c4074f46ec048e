"""What the deploy-cert end-to-end tests share.

Pointing certpilot at the emulator, issuing a certificate in its CAS as a CA would,
handing deploy-cert its event exactly as FC does (event bytes, a context with
credentials and a request id), and reading back what the control plane binds and
what the live edge serves. The edge is judged by `tests.tls_oracle` (Python's `ssl`
module), never by certpilot's own probe.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.fc_helpers import REPO, fc_context, fc_handler
from tests.tls_oracle import EdgeView, handshake

EVENTS = REPO / "events"
# The calls that write a certificate binding.
WRITES = ("oss:PutCname", "cdn:SetCdnDomainSSLCertificate")
# A certificate old enough to be renewed (20 days left), for estates.
OLD: dict[str, Any] = {"name": "old", "sans": ["*.example.com"], "not_before": "-70d", "days": 90}


def handler() -> Callable[[bytes, Any], Any]:
    """deploy-cert's entry point, loaded from its file as FC loads it."""
    return fc_handler("deploy_cert")


def use_estate(
    cloud: Any,
    monkeypatch: pytest.MonkeyPatch,
    estate: dict[str, Any],
    *,
    verify_deadline: float | None = 5.0,
) -> dict[str, int]:
    """Point certpilot at the emulator and load `estate`; returns the certificate ids.

    `verify_deadline` is CERTPILOT_VERIFY_DEADLINE in seconds (None: certpilot's own).
    """
    for name, value in cloud.certpilot_env().items():
        monkeypatch.setenv(name, value)
    if verify_deadline is not None:
        monkeypatch.setenv("CERTPILOT_VERIFY_DEADLINE", str(verify_deadline))
    monkeypatch.setenv("CERTPILOT_LOG_LEVEL", "WARNING")
    ids: dict[str, int] = cloud.load_estate(estate)
    return ids


def issue(cloud: Any, sans: list[str], **recipe: Any) -> dict[str, Any]:
    """Issue a certificate in the emulator's CAS, as a CA renewing it would; with its
    SHA-256 fingerprint (`sha256`)."""
    body = {"sans": sans, "name": f"issued-{uuid.uuid4().hex[:8]}", **recipe}
    result: dict[str, Any] = cloud.admin("POST", "cas/issue", body)
    result["sha256"] = sha256_of(cloud, result["certId"])
    return result


def sha256_of(cloud: Any, cert_id: int) -> str:
    """The SHA-256 fingerprint of the emulator's certificate `cert_id`."""
    fingerprint: str = cloud.state()["certificates"][str(cert_id)]["sha256"]
    return fingerprint


def cloudevent(cloud: Any, cert_id: object, **changes: Any) -> bytes:
    """The certificate-issued CloudEvent for `cert_id`, from this account, with `changes`
    to its top-level fields."""
    event = json.loads((EVENTS / "deploy-cert.cloudevent.json").read_text())
    event["aliyunaccountid"] = cloud.account_id
    event["id"] = str(uuid.uuid4())
    event["data"] = {"certId": cert_id}
    event.update(changes)
    return json.dumps(event).encode()


def invoke(cloud: Any, event: bytes) -> dict[str, Any]:
    """Call the handler as FC does: bytes in, JSON text out."""
    result = handler()(event, fc_context(cloud, "deploy-cert"))
    assert isinstance(result, (str, bytes))
    summary: dict[str, Any] = json.loads(result)
    return summary


def outcomes(summary: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """(outcome, reason) of every domain of a summary."""
    return {r["domain"]: (r["outcome"], r["reason"]) for r in summary["results"]}


def result_of(summary: dict[str, Any], domain: str) -> dict[str, Any]:
    """The one result of `domain` in a summary."""
    [result] = [r for r in summary["results"] if r["domain"] == domain]
    return result


def bound(cloud: Any) -> dict[str, int | None]:
    """The certificate id bound to every domain, as the control plane reports it."""
    state = cloud.state()
    found: dict[str, int | None] = {}
    for bucket in state["buckets"].values():
        for name, cname in bucket["cnames"].items():
            cert = cname["certificate"]
            found[name] = cert["cert_id"] if cert else None
    for name, domain in state["cdn_domains"].items():
        found[name] = domain["ssl"]["cert_id"] if domain["ssl"] else None
    return found


def writes(cloud: Any) -> int:
    """How many certificate writes (`WRITES`) the cloud was sent."""
    return sum(cloud.action_stats(action)["calls"] for action in WRITES)


def edge_view(cloud: Any, domain: str) -> EdgeView:
    """One handshake with the emulator's edge for `domain` (SNI), judged by Python's
    `ssl` module against the emulator's CA bundle."""
    assert cloud.https and cloud.ca_bundle
    return handshake(cloud.https, domain, cloud.ca_bundle)


def served(cloud: Any, domain: str) -> str:
    """The SHA-256 fingerprint (upper hex) of the leaf the edge serves for `domain`."""
    return edge_view(cloud, domain).sha256


def served_by_every_node(cloud: Any, domain: str, *, timeout: float = 10.0) -> str:
    """What every CDN edge node serves for `domain` once they agree: polls until as many
    consecutive handshakes as the fleet has nodes (round robin: one per node) agree."""
    import time

    nodes = int(cloud.settings()["edge_nodes"])
    deadline = time.monotonic() + timeout
    while True:
        seen = {served(cloud, domain) for _ in range(nodes)}
        if len(seen) == 1 or time.monotonic() > deadline:
            assert len(seen) == 1, f"the edge nodes still disagree on {domain}: {seen}"
            return seen.pop()
        time.sleep(0.05)
