"""check-expiry's repairs beyond a newer certificate (issue 11, point 2): failover to a
backup from another CA, end to end against the emulator, judged at the edge by
`tests/tls_oracle.py`."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.deploy_helpers import sha256_of
from tests.e2e.fc_helpers import register_deploy_cert
from tests.e2e.test_check_expiry import REPORTS, invoke, rows, timer
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
    register_deploy_cert(cloud)
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


DRIFT: dict[str, Any] = {
    "settings": {"propagation_delay": 0.3},
    "certificates": [
        {"name": "wild", "sans": ["*.example.com"], "ca": "one", "not_before": "-30d",
         "not_after": "+200d"},
        {"name": "wild-two", "sans": ["*.example.com"], "ca": "two", "not_before": "-30d",
         "not_after": "+150d"},
    ],
    "buckets": [
        {
            "name": "assets",
            "region": "cn-hangzhou",
            "https_only": True,
            "objects": {"index.html": "<p>assets</p>\n"},
            "cnames": [{"domain": "secure.example.com", "certificate": "wild"}],
        }
    ],
    "cdn_domains": [
        {
            "name": "cdn.example.com",
            "origin": "assets",
            "certificate": "wild",
            "configs": {
                "https_force": {"enable": "on", "https_rewrite": "301"},
                "HSTS": {"enabled": "on", "https_hsts_max_age": 5184000},
                "forward_scheme": {"enable": "on", "scheme_origin": "https"},
            },
        }
    ],
}  # fmt: skip
EXTRA = {
    "Effect": "Allow",
    "Action": ["oss:GetObject"],
    "Principal": ["*"],
    "Resource": ["acs:oss:*:*:assets/public/*"],
}


def _drift(cloud: Any) -> None:
    """Someone removes the HTTPS-only statement (keeping another) and deletes the CDN
    domain's https_force, through the SDKs."""
    import json

    import alibabacloud_oss_v2 as oss
    from alibabacloud_cdn20180510 import models

    from tests.e2e.enforce_helpers import is_ours, stored_policy

    current = json.loads(stored_policy(cloud, "assets") or "")
    current["Statement"] = [s for s in current["Statement"] if not is_ours(s, "assets")] + [EXTRA]
    cloud.oss_client().put_bucket_policy(
        oss.PutBucketPolicyRequest(bucket="assets", body=json.dumps(current))
    )
    cdn = cloud.cdn_client()
    body = cdn.describe_cdn_domain_configs(
        models.DescribeCdnDomainConfigsRequest(domain_name="cdn.example.com")
    ).body.to_map()
    [force] = [
        c for c in body["DomainConfigs"]["DomainConfig"] if c["FunctionName"] == "https_force"
    ]
    cdn.delete_specific_config(
        models.DeleteSpecificConfigRequest(
            domain_name="cdn.example.com", config_id=force["ConfigId"]
        )
    )


def test_drifted_enforcement_is_restored_by_the_next_sweep_and_report_only_writes_nothing(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from tests.e2e.enforce_helpers import http_get, is_ours, stored_policy
    from tests.e2e.test_check_expiry import READ_PREFIXES

    for name, value in {**cloud.certpilot_env(), "CERTPILOT_LOG_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(name, value)
    cloud.load_estate(DRIFT)
    # given an enforced bucket and CDN domain, whose enforcement then drifts
    assert http_get(cloud, "secure.example.com").status == 403
    assert http_get(cloud, "cdn.example.com").status == 301
    _drift(cloud)
    # (the edge follows a change after the estate's propagation delay)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        http_get(cloud, "secure.example.com").status == 403
        or http_get(cloud, "cdn.example.com").status == 301
    ):
        time.sleep(0.1)
    assert http_get(cloud, "secure.example.com").status != 403
    assert http_get(cloud, "cdn.example.com").status != 301
    # when a report-only sweep runs: the drift is reported, nothing is written
    seq = max((c["seq"] for c in cloud.calls()), default=0)
    looked = invoke(cloud, timer())
    for domain in ("secure.example.com", "cdn.example.com"):
        row = rows(looked)[domain]
        assert "HTTP_NOT_FORCED" in {f["code"] for f in row["findings"]}, row
        assert row["repairs"] == []
    actions = [c["action"] for c in cloud.calls(since=seq)]
    cloud_calls = [a for a in actions if a.split(":", 1)[0] in ("oss", "cdn", "cas", "fc")]
    assert cloud_calls
    assert [a for a in cloud_calls if not a.split(":", 1)[1].startswith(READ_PREFIXES)] == []
    # when the timer fires without reportOnly
    summary = invoke(cloud, timer(""))
    # then both are restored by enforce-https, said as ENFORCEMENT_RESTORED
    for domain in ("secure.example.com", "cdn.example.com"):
        [repair] = rows(summary)[domain]["repairs"]
        assert (repair["kind"], repair["status"]) == ("enforcement-restored", "confirmed"), repair
        assert repair["fixes"] and "HTTP_NOT_FORCED" in repair["fixes"]
    assert http_get(cloud, "secure.example.com").status == 403
    assert http_get(cloud, "cdn.example.com").status == 301
    # and no statement was dropped: the other one is there, ours exactly once
    statements = json.loads(stored_policy(cloud, "assets") or "")["Statement"]
    assert EXTRA in statements
    assert sum(is_ours(s, "assets") for s in statements) == 1
    # and the next sweep finds nothing drifted
    after = invoke(cloud, timer())
    for domain in ("secure.example.com", "cdn.example.com"):
        assert "HTTP_NOT_FORCED" not in {f["code"] for f in rows(after)[domain]["findings"]}
