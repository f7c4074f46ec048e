"""check-expiry's repairs beyond a newer certificate (issue 11, point 2): failover to a
backup from another CA, end to end against the emulator, judged at the edge by
`tests/tls_oracle.py`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.deploy_helpers import sha256_of
from tests.e2e.test_check_expiry import REPO, REPORTS, invoke, rows, timer
from tests.tls_oracle import handshake

pytestmark = pytest.mark.e2e

DOMAIN = "www.example.com"
ESTATE: dict[str, Any] = {
    "settings": {"propagation_delay": 0.3},
    "certificates": [
        {"name": "primary", "sans": [DOMAIN], "ca": "one", "not_before": "-30d",
         "not_after": "+200d"},
        {"name": "same-ca-longer", "sans": [DOMAIN], "ca": "one", "not_before": "-10d",
         "not_after": "+320d"},
        {"name": "backup-ca-two", "sans": [DOMAIN], "ca": "two", "not_before": "-10d",
         "not_after": "+150d"},
    ],
    "buckets": [
        {
            "name": "assets",
            "region": "cn-hangzhou",
            "https_only": True,
            "objects": {"index.html": "<p>assets</p>\n"},
            "cnames": [{"domain": DOMAIN, "certificate": "primary"}],
        },
        {"name": REPORTS},
    ],
    "cdn_domains": [],
}  # fmt: skip


def _deploy_function(cloud: Any) -> None:
    env = {
        k: v
        for k, v in cloud.certpilot_env().items()
        if not k.startswith("ALIBABA_CLOUD_") and k != "CERTPILOT_ACCOUNT_ID"
    }
    cloud.register_function(
        "certpilot-deploy-cert",
        REPO / "functions" / "deploy_cert" / "index.py",
        env={**env, "CERTPILOT_VERIFY_DEADLINE": "8", "CERTPILOT_LOG_LEVEL": "WARNING"},
        layers=[REPO / "shared" / "python"],
        async_retries=0,
    )


def test_a_primary_revoked_by_its_ca_fails_over_to_the_backup_from_the_other_ca(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a domain on a CA One certificate, a longer one from CA One and a backup from
    # CA Two in CAS, and deploy-cert as an FC function
    # (and a bucket for the reports: the next sweep settles the repair from it)
    env = {"CERTPILOT_LOG_LEVEL": "WARNING", "CERTPILOT_REPORT_BUCKET": REPORTS}
    for name, value in {**cloud.certpilot_env(), **env}.items():
        monkeypatch.setenv(name, value)
    ids = cloud.load_estate(ESTATE)
    _deploy_function(cloud)
    edge, bundle = cloud.https, cloud.ca_bundle
    assert handshake(edge, DOMAIN, bundle).sha256 == sha256_of(cloud, ids["primary"])
    # when CA One revokes the primary and the timer fires without reportOnly
    cloud.admin("POST", "cas/revoke", {"certId": ids["primary"], "reason": "keyCompromise"})
    summary = invoke(cloud, timer(""))
    # then deploy-cert is invoked once, with the backup from CA Two, as a failover
    row = rows(summary)[DOMAIN]
    assert "CERT_REVOKED" in {f["code"] for f in row["findings"]}
    [repair] = row["repairs"]
    assert (repair["kind"], repair["casId"], repair["status"]) == (
        "failed-over",
        ids["backup-ca-two"],
        "pending",
    )
    [record] = cloud.invocations("certpilot-deploy-cert")
    cloud.wait_invocation(record["requestId"], timeout=90)
    # and the edge serves the backup, verified by a client
    view = handshake(edge, DOMAIN, bundle)
    assert view.verified
    assert view.sha256 == sha256_of(cloud, ids["backup-ca-two"])
    # and the next sweep confirms the failover
    second = invoke(cloud, timer())
    settled = {(s["domain"], s["casId"]): s["status"] for s in second["settledRepairs"]}
    assert settled[(DOMAIN, ids["backup-ca-two"])] == "confirmed"
    assert "CERT_REVOKED" not in {f["code"] for f in rows(second)[DOMAIN]["findings"]}
