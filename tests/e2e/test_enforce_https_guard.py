"""enforce-https end to end: the guard (no certificate, HTTP origins, new domains),
concurrent runs, faults during enforcement, dry run, rejections and `certpilot invoke`.

The cloud state is read back through the real SDKs and the edge judged from outside
(`http.client`, `ssl`), never by certpilot's own probes."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tests.e2e.cli_helpers import run_certpilot
from tests.e2e.enforce_helpers import (
    EVENTS,
    HTTPS_ORIGIN,
    WILD,
    bucket_of,
    cdn_estate,
    cdn_features,
    codes,
    domain_of,
    http_get,
    https_get,
    invoke,
    is_ours,
    media,
    sample,
    stored_policy,
    use_estate,
)
from tests.tls_oracle import handshake

pytestmark = pytest.mark.e2e

OTHER = {"name": "other", "sans": ["*.example.net"], "days": 200}
THEIRS = {
    "Effect": "Allow",
    "Action": ["oss:GetObject"],
    "Principal": ["1234567890"],
    "Resource": ["acs:oss:*:*:media/*"],
}


def test_new_domain_without_certificate_is_not_enforced_nor_its_bucket(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bucket with a verified domain and a newly bound one that CAS has no
    # certificate for (only *.example.net is there)
    use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [OTHER, {**WILD, "name": "img", "sans": ["img.example.com"]}],
            "buckets": [
                media(
                    cnames=[
                        {"domain": "img.example.com", "certificate": "img"},
                        {"domain": "new.example.com"},
                    ]
                )
            ],
        },
    )
    # when the PutCname event of the new domain arrives
    summary = invoke(
        cloud, sample(cloud, "oss-putcname", BucketName="media", Domain="new.example.com")
    )
    # then the domain is not enforced (NO_CERTIFICATE), and the bucket is blocked by it
    assert summary["ok"] is False
    new = domain_of(summary, "new.example.com")
    assert (new["outcome"], new["reason"]) == ("not-enforced", "no-certificate")
    result = bucket_of(summary, "media")
    assert result["outcome"] == "blocked"
    assert result["facts"]["blockers"] == [
        {"domain": "new.example.com", "reason": "https-not-verified"}
    ]
    assert ("NO_CERTIFICATE", "new.example.com") in codes(summary)
    assert ("ENFORCEMENT_BLOCKED", "new.example.com") in codes(summary)
    # and nothing was written: plain HTTP still works for both domains
    assert stored_policy(cloud, "media") is None
    assert cloud.action_stats("oss:PutBucketPolicy")["calls"] == 0
    assert http_get(cloud, "new.example.com").status == 200
    assert http_get(cloud, "img.example.com").status == 200


def test_new_domain_with_matching_certificate_gets_it_is_verified_then_enforced(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a newly bound domain without a certificate, and CAS holding two covering
    # ones (the one expiring last is the best) and one that does not cover it
    ids = use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [
                {**WILD, "name": "short", "days": 30},
                WILD,
                OTHER,
            ],
            "buckets": [
                media(
                    policy={"Version": "1", "Statement": [THEIRS]},
                    cnames=[{"domain": "new.example.com"}],
                )
            ],
        },
    )
    assert http_get(cloud, "new.example.com").status == 200
    # when its PutCname event arrives
    summary = invoke(
        cloud, sample(cloud, "oss-putcname", BucketName="media", Domain="new.example.com")
    )
    # then it got the best certificate, which the edge serves with a valid chain
    assert summary["ok"] is True, summary
    new = domain_of(summary, "new.example.com")
    assert (new["outcome"], new["reason"]) == ("enforced", "verified")
    assert new["facts"]["certId"] == ids["wild"]
    bound = cloud.state()["buckets"]["media"]["cnames"]["new.example.com"]["certificate"]
    assert bound["cert_id"] == ids["wild"]
    assert handshake(cloud.https, "new.example.com", cloud.ca_bundle).verified
    # and only then was the bucket enforced: HTTP 403, HTTPS 200, their statement kept
    assert bucket_of(summary, "media")["outcome"] == "enforced"
    assert http_get(cloud, "new.example.com").status == 403
    assert https_get(cloud, "new.example.com").status == 200
    document = json.loads(stored_policy(cloud, "media") or "")
    assert document["Statement"][0] == THEIRS and is_ours(document["Statement"][1], "media")


def _http_origin_estate() -> dict[str, Any]:
    return {
        "certificates": [WILD],
        "buckets": [media(policy={"Version": "1", "Statement": [THEIRS]})],
        # Pulls the bucket over HTTP (no forward_scheme: CDN's default).
        "cdn_domains": [{"name": "pull.example.com", "origin": "media", "certificate": "wild"}],
    }


def test_cdn_origin_over_http_is_switched_to_https_before_the_policy(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bucket that a CDN domain pulls over HTTP
    use_estate(cloud, monkeypatch, _http_origin_estate())
    assert https_get(cloud, "pull.example.com").status == 200
    start = max((int(c["seq"]) for c in cloud.calls()), default=0)
    # when the bucket's direct domain is enforced
    summary = invoke(cloud, {"domain": "img.example.com"})
    # then the emulator's call log shows the origin switched before the policy was written
    applied = [c for c in cloud.calls(start) if c["outcome"] == "ok"]
    switch = [
        int(c["seq"])
        for c in applied
        if c["action"] == "cdn:BatchSetCdnDomainConfig" and "forward_scheme" in str(c["params"])
    ]
    policy = [int(c["seq"]) for c in applied if c["action"] == "oss:PutBucketPolicy"]
    assert switch and policy and max(switch) < min(policy), applied
    # and the CDN origin was switched to HTTPS and the policy written
    assert summary["ok"] is True, summary
    result = bucket_of(summary, "media")
    assert result["outcome"] == "enforced"
    assert result["facts"]["originsSwitched"] == ["pull.example.com"]
    forward = cdn_features(cloud, "pull.example.com")["forward_scheme"]
    assert (forward["enable"], forward["scheme_origin"], forward["_status"]) == (
        "on",
        "https",
        "success",
    )
    assert is_ours(json.loads(stored_policy(cloud, "media") or "")["Statement"][-1], "media")
    # and the CDN domain keeps serving, over HTTP and HTTPS, while the bucket denies HTTP
    assert https_get(cloud, "pull.example.com").status == 200
    assert http_get(cloud, "pull.example.com").status == 200
    assert http_get(cloud, "img.example.com").status == 403


@pytest.mark.parametrize("after", [False, True], ids=["before-applied", "after-applied"])
def test_origin_switch_fault_never_locks_the_bucket_against_the_cdn_domain(
    cloud: Any, monkeypatch: pytest.MonkeyPatch, after: bool
) -> None:
    # given a bucket a CDN domain pulls over HTTP, and the origin switch failing
    # (refused outright, or applied and then answered with an error)
    use_estate(cloud, monkeypatch, _http_origin_estate())
    cloud.faults(
        action="cdn:BatchSetCdnDomainConfig",
        error={"code": "InvalidParameter", "status": 400},
        after=after,
        times=1,
    )
    # when the bucket's direct domain is enforced
    summary = invoke(cloud, {"domain": "img.example.com"})
    forward = cdn_features(cloud, "pull.example.com").get("forward_scheme")
    document = stored_policy(cloud, "media")
    if after:
        # then a switch the cloud applied is confirmed by reading it back, and only
        # then is the policy written
        assert forward is not None and forward["scheme_origin"] == "https"
        assert bucket_of(summary, "media")["outcome"] == "enforced", summary
        assert document is not None and is_ours(json.loads(document)["Statement"][-1], "media")
    else:
        # then the bucket is left open, naming the CDN domain
        assert forward is None
        result = bucket_of(summary, "media")
        assert result["outcome"] == "blocked"
        assert ("ENFORCEMENT_BLOCKED", "pull.example.com") in codes(summary)
        assert json.loads(document or "")["Statement"] == [THEIRS]
    # either way the CDN domain still serves and no statement was lost
    assert https_get(cloud, "pull.example.com").status == 200
    assert THEIRS in json.loads(document or "")["Statement"]


@pytest.mark.parametrize("after", [False, True], ids=["before-applied", "after-applied"])
def test_policy_write_fault_loses_no_statement(
    cloud: Any, monkeypatch: pytest.MonkeyPatch, after: bool
) -> None:
    # given a bucket with someone's statement and PutBucketPolicy failing once
    use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [WILD],
            "buckets": [media(policy={"Version": "1", "Statement": [THEIRS]})],
        },
    )
    cloud.faults(
        action="oss:PutBucketPolicy",
        error={"code": "AccessDenied", "status": 403},
        after=after,
        times=1,
    )
    # when enforce-https runs
    summary = invoke(cloud, {"domain": "img.example.com"})
    # then the statement is there once and theirs kept (the run reads, merges and
    # writes again after the error)
    assert summary["ok"] is True, summary
    result = bucket_of(summary, "media")
    assert (result["outcome"], result["facts"]["errorCode"]) == ("enforced", "AccessDenied")
    document = json.loads(stored_policy(cloud, "media") or "")
    assert document["Statement"][0] == THEIRS
    assert sum(is_ours(s, "media") for s in document["Statement"]) == 1
    assert http_get(cloud, "img.example.com").status == 403


def test_certificate_write_fault_leaves_the_bucket_open(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a new domain without a certificate and every PutCname refused
    use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [WILD],
            "buckets": [media(cnames=[{"domain": "new.example.com"}])],
        },
    )
    cloud.faults(action="oss:PutCname", error={"code": "AccessDenied", "status": 403})
    # when it is enforced
    summary = invoke(cloud, {"domain": "new.example.com"})
    # then the domain is not enforced and the bucket stays open for its HTTP visitors
    new = domain_of(summary, "new.example.com")
    assert (new["outcome"], new["reason"]) == ("not-enforced", "certificate-not-deployed")
    assert bucket_of(summary, "media")["outcome"] == "blocked"
    assert stored_policy(cloud, "media") is None
    assert http_get(cloud, "new.example.com").status == 200


def test_two_concurrent_runs_on_one_bucket_keep_every_statement(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bucket with someone's statement and two domains bound in the same minute
    use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [WILD],
            "buckets": [
                media(
                    policy={"Version": "1", "Statement": [THEIRS]},
                    cnames=[
                        {"domain": "a.example.com", "certificate": "wild"},
                        {"domain": "b.example.com", "certificate": "wild"},
                    ],
                )
            ],
        },
    )
    # and someone adding a statement of their own while the runs write (slow writes)
    cloud.faults(action="oss:PutBucketPolicy", latency=0.3, times=2)
    extra = {**THEIRS, "Principal": ["999"]}
    summaries: list[dict[str, Any]] = []

    def run(domain: str) -> None:
        summaries.append(invoke(cloud, {"domain": domain}))

    threads = [threading.Thread(target=run, args=(d,)) for d in ("a.example.com", "b.example.com")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # when both are done and the other writer merges its statement too
    import alibabacloud_oss_v2 as oss

    current = json.loads(stored_policy(cloud, "media") or "")
    current["Statement"].append(extra)
    cloud.oss_client().put_bucket_policy(
        oss.PutBucketPolicyRequest(bucket="media", body=json.dumps(current))
    )
    again = invoke(cloud, {"bucket": "media"})
    # then both runs succeeded, and every statement is there, ours exactly once
    assert [s["ok"] for s in summaries] == [True, True], summaries
    assert again["status"] == "nothing-to-do", again
    statements = json.loads(stored_policy(cloud, "media") or "")["Statement"]
    assert THEIRS in statements and extra in statements
    assert sum(is_ours(s, "media") for s in statements) == 1
    for domain in ("a.example.com", "b.example.com"):
        assert http_get(cloud, domain).status == 403
        assert https_get(cloud, domain).status == 200


def test_dry_run_answers_the_plan_and_writes_nothing(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a new domain that would get a certificate, a CDN domain pulling over HTTP
    estate = _http_origin_estate()
    estate["buckets"][0]["cnames"].append({"domain": "new.example.com"})
    use_estate(cloud, monkeypatch, estate)
    # when a dry run names the bucket
    summary = invoke(cloud, {"bucket": "media", "dryRun": True})
    # then the plan says what would happen, and no write was sent
    assert summary["status"] == "dry-run", summary
    new = domain_of(summary, "new.example.com")
    assert new["outcome"] == "planned"
    assert new["facts"]["plan"]["deployCertificate"] > 0
    assert bucket_of(summary, "media")["outcome"] == "planned"
    assert bucket_of(summary, "media")["facts"]["originsSwitched"] == ["pull.example.com"]
    for action in (
        "oss:PutCname",
        "oss:PutBucketPolicy",
        "cdn:BatchSetCdnDomainConfig",
        "cdn:DeleteSpecificConfig",
        "cdn:SetCdnDomainSSLCertificate",
    ):
        assert cloud.action_stats(action)["calls"] == 0, action


def test_event_from_another_account_is_rejected_and_changes_nothing(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_estate(cloud, monkeypatch, _http_origin_estate())
    event = sample(cloud, "oss-putcname", BucketName="media", Domain="img.example.com")
    event["aliyunaccountid"] = "9999999999999999"
    event["data"]["userIdentity"]["accountId"] = "9999999999999999"
    summary = invoke(cloud, event)
    assert (summary["ok"], summary["status"]) == (False, "rejected")
    assert summary["error"]["type"] == "ForeignAccount"
    assert json.loads(stored_policy(cloud, "media") or "")["Statement"] == [THEIRS]
    assert cloud.action_stats("cdn:DescribeUserDomains")["calls"] == 0


def test_opted_out_bucket_is_left_alone(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [WILD],
            "buckets": [media()],
        },
        CERTPILOT_ENFORCE_SKIP_BUCKETS="other, media",
    )
    summary = invoke(cloud, {"bucket": "media"})
    assert summary["ok"] is True, summary
    assert bucket_of(summary, "media")["outcome"] == "skipped"
    assert domain_of(summary, "img.example.com")["reason"] == "opted-out"
    assert stored_policy(cloud, "media") is None
    assert http_get(cloud, "img.example.com").status == 200


def test_bucket_tagged_off_is_left_alone(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a bucket its owners tagged certpilot-enforce=off (through the OSS SDK)
    import alibabacloud_oss_v2 as oss

    use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [WILD],
            "buckets": [media()],
        },
    )
    cloud.oss_client().put_bucket_tags(
        oss.PutBucketTagsRequest(
            bucket="media",
            tagging=oss.Tagging(
                tag_set=oss.TagSet(tags=[oss.Tag(key="certpilot-enforce", value="off")])
            ),
        )
    )
    # when its domain is enforced
    summary = invoke(cloud, {"domain": "img.example.com"})
    # then the bucket is skipped, its policy untouched, HTTP still served
    assert summary["ok"] is True, summary
    assert bucket_of(summary, "media")["outcome"] == "skipped"
    assert stored_policy(cloud, "media") is None
    assert http_get(cloud, "img.example.com").status == 200


def test_certpilot_invoke_enforce_https_with_the_direct_sample(cloud: Any) -> None:
    # given an account where the direct sample's domain is a verified direct domain
    cloud.load_estate(
        {
            "settings": {"propagation_delay": 0.1},
            "certificates": [WILD],
            "buckets": [media()],
        }
    )
    sample_event = json.loads((EVENTS / "enforce-https.direct.json").read_text())
    assert sample_event.get("domain") == "img.example.com"
    run = run_certpilot(
        cloud,
        "invoke",
        "enforce-https",
        "--event",
        str(EVENTS / "enforce-https.direct.json"),
        env={"CERTPILOT_VERIFY_DEADLINE": "5"},
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["status"] == "enforced"
    assert http_get(cloud, "img.example.com").status == 403


@pytest.mark.parametrize("after", [False, True], ids=["before-applied", "after-applied"])
def test_cdn_feature_write_fault_is_settled_by_reading_the_configs_back(
    cloud: Any, monkeypatch: pytest.MonkeyPatch, after: bool
) -> None:
    # given a CDN domain to enforce and its feature write failing once (refused, or
    # applied and then answered with an error)
    use_estate(cloud, monkeypatch, cdn_estate(configs=HTTPS_ORIGIN))
    cloud.faults(
        action="cdn:BatchSetCdnDomainConfig",
        error={"code": "InvalidParameter", "status": 400},
        after=after,
        times=1,
    )
    # when it is enforced
    summary = invoke(cloud, {"domain": "cdn.example.com"})
    result = domain_of(summary, "cdn.example.com")
    features = cdn_features(cloud, "cdn.example.com")
    if after:
        # then the read-back shows the write was applied: enforced, verified outside
        assert result["outcome"] == "enforced", summary
        assert result["facts"]["features"]["errorCode"] == "InvalidParameter"
        assert http_get(cloud, "cdn.example.com").status == 301
    else:
        # then the domain failed, naming what is missing, and the edge is as it was
        assert (result["outcome"], result["reason"]) == ("failed", "features-failed")
        assert "https_force" in result["facts"]["features"]["missing"]
        assert "https_force" not in features
        assert http_get(cloud, "cdn.example.com").status == 200
    # either way HTTPS keeps working
    assert https_get(cloud, "cdn.example.com").status == 200


def test_opted_out_domain_is_not_changed(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a CDN domain listed in CERTPILOT_ENFORCE_SKIP_DOMAINS
    use_estate(
        cloud,
        monkeypatch,
        cdn_estate(configs=HTTPS_ORIGIN),
        CERTPILOT_ENFORCE_SKIP_DOMAINS="cdn.example.com",
    )
    # when its AddCdnDomain event arrives
    summary = invoke(cloud, sample(cloud, "cdn-addcdndomain", DomainName="cdn.example.com"))
    # then it is skipped and no CDN feature was written
    result = domain_of(summary, "cdn.example.com")
    assert (result["outcome"], result["reason"]) == ("skipped", "opted-out")
    assert cloud.action_stats("cdn:BatchSetCdnDomainConfig")["calls"] == 0
    assert http_get(cloud, "cdn.example.com").status == 200


def test_settings_choose_the_hsts_and_the_cdn_features(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given HSTS of 600 s with includeSubDomains, and only https_force and HSTS wanted
    use_estate(
        cloud,
        monkeypatch,
        cdn_estate(configs=HTTPS_ORIGIN),
        CERTPILOT_HSTS_MAX_AGE="600",
        CERTPILOT_HSTS_INCLUDE_SUBDOMAINS="true",
        CERTPILOT_CDN_FEATURES="https_force, hsts",
    )
    # when the domain is enforced
    summary = invoke(cloud, {"domain": "cdn.example.com"})
    # then HSTS carries the configured values, and HTTP/2 and gzip were left alone
    assert summary["ok"] is True, summary
    features = cdn_features(cloud, "cdn.example.com")
    assert features["HSTS"]["https_hsts_max_age"] == "600"
    assert features["HSTS"]["https_hsts_include_subdomains"] == "on"
    assert "https_option" not in features and "gzip" not in features
    assert https_get(cloud, "cdn.example.com").hsts == "max-age=600; includeSubDomains"
    assert http_get(cloud, "cdn.example.com").status == 301


def test_a_candidate_its_ca_revoked_is_passed_over_for_the_next_best(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a new domain, the longest-lasting covering certificate revoked by its CA
    # (CAS's listing does not say so), and a shorter one that is good
    ids = use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [{**WILD, "name": "long", "days": 300}, WILD],
            "buckets": [media(cnames=[{"domain": "new.example.com"}])],
        },
    )
    cloud.admin("POST", "cas/revoke", {"certId": ids["long"]})
    # when it is enforced
    summary = invoke(cloud, {"domain": "new.example.com"})
    # then deploy-cert's pre-write check refused the revoked one, the next was deployed
    assert summary["ok"] is True, summary
    assert domain_of(summary, "new.example.com")["facts"]["certId"] == ids["wild"]
    bound = cloud.state()["buckets"]["media"]["cnames"]["new.example.com"]["certificate"]
    assert bound["cert_id"] == ids["wild"]
    assert cloud.action_stats("oss:PutCname")["calls"] == 1  # the revoked one never sent
    assert http_get(cloud, "new.example.com").status == 403
