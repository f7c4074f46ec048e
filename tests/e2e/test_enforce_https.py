"""enforce-https end to end: events through the handler as FC delivers them, the cloud
state read back through the real SDKs, the edge judged from outside (`http.client`,
`ssl`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.enforce_helpers import (
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

pytestmark = pytest.mark.e2e

FOREIGN = [
    {
        "Effect": "Allow",
        "Action": ["oss:GetObject"],
        "Principal": ["1234567890"],
        "Resource": ["acs:oss:*:*:media/*"],
    },
    {
        "Effect": "Deny",
        "Action": ["oss:DeleteObject"],
        "Principal": ["*"],
        "Resource": ["acs:oss:*:*:media/private/*"],
    },
    {
        "Effect": "Allow",
        "Action": ["oss:PutObject"],
        "Principal": ["2345678901"],
        "Resource": ["acs:oss:*:*:media/uploads/*"],
        "Condition": {"StringLike": {"oss:Prefix": ["uploads/"]}},
    },
]


def test_foreign_statements_kept_ours_added_once_and_duplicates_change_nothing(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bucket whose policy holds three statements someone else wrote, and a
    # direct custom domain serving a valid certificate
    use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [WILD],
            "buckets": [media(policy={"Version": "1", "Statement": FOREIGN})],
        },
    )
    event = sample(cloud, "oss-putcname", BucketName="media", Domain="img.example.com")
    # when the PutCname event arrives
    summary = invoke(cloud, event)
    # then the bucket is enforced and the domain verified from outside
    assert summary["ok"] is True, summary
    assert summary["status"] == "enforced"
    assert bucket_of(summary, "media")["outcome"] == "enforced"
    assert domain_of(summary, "img.example.com")["outcome"] == "enforced"
    document = json.loads(stored_policy(cloud, "media") or "")
    theirs = [s for s in document["Statement"] if not is_ours(s, "media")]
    assert theirs == FOREIGN
    assert sum(is_ours(s, "media") for s in document["Statement"]) == 1
    # and plain HTTP is refused by the edge while HTTPS answers
    assert http_get(cloud, "img.example.com").status == 403
    assert https_get(cloud, "img.example.com").status == 200
    before = stored_policy(cloud, "media")
    puts = cloud.action_stats("oss:PutBucketPolicy")["calls"]
    # when the same event is delivered twice more
    again = [invoke(cloud, event) for _ in range(2)]
    # then nothing is written and the document is byte for byte the same
    for later in again:
        assert later["ok"] is True, later
        assert later["status"] == "nothing-to-do"
        assert bucket_of(later, "media")["outcome"] == "already-enforced"
        assert domain_of(later, "img.example.com")["outcome"] == "already-enforced"
    assert stored_policy(cloud, "media") == before
    assert cloud.action_stats("oss:PutBucketPolicy")["calls"] == puts


def test_bucket_without_policy_gets_ours_alone(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a bucket with no policy at all and one verified direct domain
    use_estate(cloud, monkeypatch, {"certificates": [WILD], "buckets": [media()]})
    assert stored_policy(cloud, "media") is None
    # when a direct event names the bucket
    summary = invoke(cloud, {"bucket": "media"})
    # then the policy holds exactly our statement and HTTP gets 403
    assert summary["ok"] is True, summary
    document = json.loads(stored_policy(cloud, "media") or "")
    assert len(document["Statement"]) == 1 and is_ours(document["Statement"][0], "media")
    assert http_get(cloud, "img.example.com").status == 403
    assert https_get(cloud, "img.example.com").status == 200


@pytest.mark.parametrize(
    ("stored", "refusal"),
    [
        # Valid JSON to a lenient reader, but which Statement is meant is unknowable.
        (
            '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject"],'
            ' "Principal": ["1"], "Resource": ["acs:oss:*:*:media/*"]}], "Statement": [{"Effect":'
            ' "Deny", "Action": ["oss:*"], "Principal": ["2"],'
            ' "Resource": ["acs:oss:*:*:media"]}]}',
            "unparseable",
        ),
        (
            json.dumps(
                {
                    "Version": "1",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["oss:GetObject"],
                            "Principal": [str(10**15 + i)],
                            "Resource": [f"acs:oss:*:*:media/{'p' * 60}{i}/*"],
                        }
                        for i in range(110)
                    ],
                }
            ),
            "too-large",
        ),
    ],
    ids=["unparseable", "near-limit"],
)
def test_policy_that_cannot_take_ours_is_left_untouched_with_a_finding(
    cloud: Any, monkeypatch: pytest.MonkeyPatch, stored: str, refusal: str
) -> None:
    # given a bucket whose policy is unparseable, or so close to 16 KB that ours won't fit
    use_estate(cloud, monkeypatch, {"certificates": [WILD], "buckets": [media(policy=stored)]})
    before = stored_policy(cloud, "media")
    # when enforce-https runs for its domain
    summary = invoke(cloud, {"domain": "img.example.com"})
    # then the policy is untouched and POLICY_UNMERGEABLE says why
    assert summary["ok"] is False
    result = bucket_of(summary, "media")
    assert result["outcome"] == "unmergeable"
    assert result["facts"]["refusal"] == refusal
    assert ("POLICY_UNMERGEABLE", "media") in codes(summary)
    assert stored_policy(cloud, "media") == before
    assert cloud.action_stats("oss:PutBucketPolicy")["calls"] == 0
    assert domain_of(summary, "img.example.com")["outcome"] == "not-enforced"
    assert http_get(cloud, "img.example.com").status == 200


def test_cdn_domain_with_http_force_ends_with_https_force_hsts_http2_gzip(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CDN domain with http_force, pulling its bucket over HTTPS already
    use_estate(
        cloud, monkeypatch, cdn_estate(configs={"http_force": {"enable": "on"}, **HTTPS_ORIGIN})
    )
    # when the CDN AddCdnDomain event arrives
    summary = invoke(cloud, sample(cloud, "cdn-addcdndomain", DomainName="cdn.example.com"))
    # then http_force is gone and our features are in place, `success`
    assert summary["ok"] is True, summary
    features = cdn_features(cloud, "cdn.example.com")
    assert "http_force" not in features
    assert features["https_force"]["enable"] == "on"
    assert features["https_force"]["https_rewrite"] == "301"
    assert features["HSTS"]["https_hsts_max_age"] == "5184000"
    assert features["HSTS"]["https_hsts_include_subdomains"] == "off"
    assert features["https_option"]["http2"] == "on"
    assert features["gzip"]["enable"] == "on"
    assert {v["_status"] for v in features.values()} == {"success"}
    # and the edge redirects plain HTTP to the same URL on https, with HSTS on HTTPS
    plain = http_get(cloud, "cdn.example.com", "/index.html?x=1")
    assert (plain.status, plain.location) == (301, "https://cdn.example.com/index.html?x=1")
    secure = https_get(cloud, "cdn.example.com")
    assert secure.status == 200
    assert secure.hsts == "max-age=5184000"
    # and the bucket is enforced too (the origin already fetches over HTTPS)
    assert bucket_of(summary, "media")["outcome"] == "enforced"
    assert https_get(cloud, "cdn.example.com", "/index.html").status == 200
    # when the legacy CDN trigger delivers the same domain again (a retried delivery)
    writes = {
        a: cloud.action_stats(a)["calls"]
        for a in ("cdn:BatchSetCdnDomainConfig", "cdn:DeleteSpecificConfig", "oss:PutBucketPolicy")
    }
    legacy = sample(cloud, "cdn-legacy")
    legacy["events"][0]["resource"]["domain"] = "cdn.example.com"
    legacy["events"][0]["userIdentity"]["aliUid"] = cloud.account_id
    again = invoke(cloud, legacy)
    # then nothing is written and the domain is already enforced
    assert (again["ok"], again["status"]) == (True, "nothing-to-do"), again
    assert domain_of(again, "cdn.example.com")["outcome"] == "already-enforced"
    assert {a: cloud.action_stats(a)["calls"] for a in writes} == writes


def test_cdn_features_wait_out_service_busy_under_node_by_node_propagation(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CDN domain with http_force, and changes that take 0.6 s to reach every
    # edge node (the domain answers ServiceBusy to writes meanwhile)
    estate = cdn_estate(configs={"http_force": {"enable": "on"}})
    use_estate(cloud, monkeypatch, {"settings": {"propagation_delay": 0.6}, **estate})
    # when it is enforced
    summary = invoke(cloud, {"domain": "cdn.example.com"})
    # then the feature write was refused as busy (after the http_force delete) and sent
    # again until it went through, and every node redirects
    assert summary["ok"] is True, summary
    result = domain_of(summary, "cdn.example.com")
    assert result["outcome"] == "enforced"
    assert result["facts"]["features"]["outcome"] == "applied"
    # (the adapter retries a busy answer with a short backoff, deploy-cert's busy retry
    # waits out what is left: the cloud saw the refused attempts)
    assert cloud.action_stats("cdn:BatchSetCdnDomainConfig")["errors"] >= 1
    features = cdn_features(cloud, "cdn.example.com")
    assert "http_force" not in features
    for _ in range(6):  # every node, round robin
        assert http_get(cloud, "cdn.example.com").status == 301
        assert https_get(cloud, "cdn.example.com").hsts == "max-age=5184000"


@pytest.mark.parametrize("name", ["new.example.com", "*.example.com"], ids=["name", "wildcard"])
def test_new_cdn_domain_gets_its_certificate_then_https_is_forced(
    cloud: Any, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # given a CDN domain just added without HTTPS (a wildcard one too), pulling its
    # bucket over HTTPS, and CAS holding a certificate that covers it
    ids = use_estate(cloud, monkeypatch, cdn_estate(name, configs=HTTPS_ORIGIN, certificate=None))
    visitor = name.replace("*", "certpilot-verify")
    assert http_get(cloud, visitor).status == 200
    # when its AddCdnDomain event arrives
    summary = invoke(cloud, sample(cloud, "cdn-addcdndomain", DomainName=name))
    # then it got the certificate first, was verified, and then HTTPS was forced
    assert summary["ok"] is True, summary
    result = domain_of(summary, name)
    assert (result["outcome"], result["facts"]["certId"]) == ("enforced", ids["wild"])
    assert cloud.state()["cdn_domains"][name]["ssl"]["cert_id"] == ids["wild"]
    plain = http_get(cloud, visitor, "/a?b=c")
    assert (plain.status, plain.location) == (301, f"https://{visitor}/a?b=c")
    secure = https_get(cloud, visitor)
    assert (secure.status, secure.hsts) == (200, "max-age=5184000")
