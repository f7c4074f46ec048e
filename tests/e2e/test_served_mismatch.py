"""An edge serving another certificate than the configured one is reported, whatever
the plan decided for the domain (SERVED_MISMATCH with both fingerprints).

The served certificate is read with Python's own `ssl` module, not certpilot's probe.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
from typing import Any

import pytest

from tests.e2e.deploy_helpers import REPO, cloudevent, invoke, issue, sha256_of, use_estate

pytestmark = pytest.mark.e2e

DEMO = REPO / "emulator" / "estates" / "demo.json"
DOWNLOAD = "download.example.com"


def served_sha256(edge: str, domain: str) -> str:
    """SHA-256 (upper hex) of the leaf the edge at `edge` (host:port) serves for `domain`."""
    host, port = edge.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=domain) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest().upper()


def hex_of(fingerprint: str) -> str:
    return fingerprint.replace(":", "").upper()


def test_the_demo_reports_the_download_domain_served_another_certificate(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the demo estate: CDN download.example.com is configured with its own
    # certificate (250 days left), while its edge still serves the expiring wildcard
    ids = use_estate(cloud, monkeypatch, json.loads(DEMO.read_text(encoding="utf-8")))
    configured = hex_of(sha256_of(cloud, ids["download-example-com"]))
    served = served_sha256(cloud.https, DOWNLOAD)
    assert served == hex_of(sha256_of(cloud, ids["wildcard-example-com"])) != configured
    # when the renewed wildcard (90 days) is rolled out, as `make demo` does
    renewed = issue(cloud, ["*.example.com"], days=90)
    summary = invoke(cloud, cloudevent(cloud, renewed["identifier"]))
    # then the domain keeps its longer-lived certificate...
    [result] = [r for r in summary["results"] if r["domain"] == DOWNLOAD]
    assert (result["outcome"], result["reason"]) == ("skipped", "current-expires-later")
    # ...and the run reports that its edge serves another one, with both fingerprints
    [finding] = [
        f for f in summary["findings"] if f["code"] == "SERVED_MISMATCH" and f["domain"] == DOWNLOAD
    ]
    assert (finding["configured"], finding["served"]) == (configured, served)
    assert finding["severity"] == "error"


def test_an_edge_serving_the_configured_certificate_raises_no_mismatch(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CDN domain whose longer-lived certificate is the one its edge serves
    ids = use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [{"name": "long", "sans": ["www.example.com"], "days": 300}],
            "buckets": [{"name": "assets"}],
            "cdn_domains": [{"name": "www.example.com", "origin": "assets", "certificate": "long"}],
        },
    )
    assert served_sha256(cloud.https, "www.example.com") == hex_of(sha256_of(cloud, ids["long"]))
    # when a shorter-lived wildcard is rolled out
    summary = invoke(cloud, cloudevent(cloud, issue(cloud, ["*.example.com"], days=90)["certId"]))
    # then the domain is left alone and nothing is reported about its edge
    assert [r["reason"] for r in summary["results"]] == ["current-expires-later"]
    assert summary["findings"] == []


def test_a_domain_whose_write_failed_is_reported_when_its_edge_serves_another(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CDN domain due for renewal whose edge serves another certificate than the
    # configured "old", and a CDN that refuses the certificate write
    ids = use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [
                {"name": "old", "sans": ["*.example.com"], "not_before": "-70d", "days": 90},
                {"name": "other", "sans": ["www.example.com"], "days": 300},
            ],
            "buckets": [{"name": "assets"}],
            "cdn_domains": [
                {
                    "name": "www.example.com",
                    "origin": "assets",
                    "certificate": "old",
                    "edge_certificate": "other",
                }
            ],
        },
    )
    cloud.faults(
        action="cdn:SetCdnDomainSSLCertificate",
        error={"code": "Certificate.MissMatch", "status": 400},
    )
    # when a renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, issue(cloud, ["*.example.com"], days=90)["certId"]))
    # then the write failed, and the run says the edge serves another certificate than
    # the one still configured
    [result] = summary["results"]
    assert (result["outcome"], result["reason"], result["errorCode"]) == (
        "failed",
        "write-failed",
        "Certificate.MissMatch",
    )
    [finding] = [f for f in summary["findings"] if f["code"] == "SERVED_MISMATCH"]
    assert finding["domain"] == "www.example.com"
    assert finding["configured"] == hex_of(sha256_of(cloud, ids["old"]))
    assert finding["served"] == served_sha256(cloud.https, "www.example.com")
    assert finding["served"] == hex_of(sha256_of(cloud, ids["other"]))
