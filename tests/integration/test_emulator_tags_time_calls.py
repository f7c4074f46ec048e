"""Emulator additions for disable-https and the fallback, driven through the real SDKs:
CDN domain tags (TagResources, UntagResources, ListTagResources, DescribeTagResources),
the account's time moving on (`time_offset`: policies' `acs:CurrentTime`) while
signing keeps real time, and the ordered call log (`GET /_emulator/calls`)."""

from __future__ import annotations

import http.client
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alibabacloud_cdn20180510 import models
from Tea.exceptions import TeaException

from tests.integration.polling import poll

REGION = "cn-hangzhou"
BUCKET = "assets"
DOMAIN = "static.example.com"
ESTATE = {
    "certificates": [{"name": "wild", "sans": ["*.example.com"]}],
    "buckets": [
        {
            "name": BUCKET,
            "region": REGION,
            "objects": {"index.html": "<p>hi</p>"},
            "cnames": [{"domain": DOMAIN, "certificate": "wild"}],
        }
    ],
    "cdn_domains": [
        {"name": "cdn.example.com", "origin": BUCKET, "certificate": "wild"},
        {"name": "img.example.com", "origin": BUCKET},
    ],
}


def _tag(cdn: Any, domains: list[str], **tags: str) -> None:
    cdn.tag_resources(
        models.TagResourcesRequest(
            resource_id=domains,
            resource_type="DOMAIN",
            tag=[models.TagResourcesRequestTag(key=k, value=v) for k, v in tags.items()],
        )
    )


def _listed(cdn: Any, key: str | None = None) -> list[tuple[str, str, str]]:
    tag = [models.ListTagResourcesRequestTag(key=key)] if key else None
    body = cdn.list_tag_resources(
        models.ListTagResourcesRequest(resource_type="DOMAIN", tag=tag)
    ).body.to_map()
    return [
        (item["ResourceId"], item["TagKey"], item["TagValue"])
        for item in body["TagResources"]["TagResource"]
    ]


def test_cdn_domain_tags_through_the_sdk(cloud: Any) -> None:
    # given two CDN domains
    cloud.load_estate(ESTATE)
    cdn = cloud.cdn_client()
    # when one gets two tags and the other one, then a value is overwritten
    _tag(cdn, ["cdn.example.com"], **{"certpilot-fallback-until": "2030-01-01T00:00:00Z"})
    _tag(cdn, ["cdn.example.com", "img.example.com"], team="web")
    _tag(cdn, ["cdn.example.com"], team="ops")
    # then the listing filtered by key shows only that key's holders, unfiltered all
    assert _listed(cdn, "certpilot-fallback-until") == [
        ("cdn.example.com", "certpilot-fallback-until", "2030-01-01T00:00:00Z")
    ]
    assert sorted(_listed(cdn)) == [
        ("cdn.example.com", "certpilot-fallback-until", "2030-01-01T00:00:00Z"),
        ("cdn.example.com", "team", "ops"),
        ("img.example.com", "team", "web"),
    ]
    described = cdn.describe_tag_resources(
        models.DescribeTagResourcesRequest(resource_id=["img.example.com"], resource_type="DOMAIN")
    ).body.to_map()
    assert described["TagResources"] == [
        {"ResourceId": "img.example.com", "Tag": [{"Key": "team", "Value": "web"}]}
    ]
    # when a key is removed (and one that is not there), then only it goes
    cdn.untag_resources(
        models.UntagResourcesRequest(
            resource_id=["cdn.example.com"],
            resource_type="DOMAIN",
            tag_key=["certpilot-fallback-until", "absent"],
        )
    )
    assert _listed(cdn, "certpilot-fallback-until") == []
    assert ("cdn.example.com", "team", "ops") in _listed(cdn)


@pytest.mark.parametrize(
    ("domains", "key", "code"),
    [
        (["nope.example.com"], "k", "InvalidDomain.NotFound"),
        (["cdn.example.com"], "aliyun-x", "InvalidParameter"),
        (["cdn.example.com"], "acs:x", "InvalidParameter"),
    ],
)
def test_tag_refusals(cloud: Any, domains: list[str], key: str, code: str) -> None:
    cloud.load_estate(ESTATE)
    with pytest.raises(TeaException) as caught:
        _tag(cloud.cdn_client(), domains, **{key: "v"})
    assert caught.value.code == code
    assert _listed(cloud.cdn_client()) == []


def test_tags_leave_with_their_domain(cloud: Any) -> None:
    cloud.load_estate(ESTATE)
    cdn = cloud.cdn_client()
    _tag(cdn, ["img.example.com"], team="web")
    cdn.delete_cdn_domain(models.DeleteCdnDomainRequest(domain_name="img.example.com"))
    assert _listed(cdn) == []


def _http_status(cloud: Any, host: str) -> int:
    address, port = cloud.http.rsplit(":", 1)
    conn = http.client.HTTPConnection(address, int(port), timeout=5)
    try:
        conn.request("GET", "/index.html", headers={"Host": host})
        return conn.getresponse().status
    finally:
        conn.close()


def test_time_offset_moves_policy_time_but_not_request_signing(cloud: Any) -> None:
    # given a bucket that denies plain HTTP until an hour from now only
    cloud.load_estate(ESTATE)
    until = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    statement = {
        "Effect": "Deny",
        "Action": ["oss:*"],
        "Principal": ["*"],
        "Resource": [f"acs:oss:*:*:{BUCKET}", f"acs:oss:*:*:{BUCKET}/*"],
        "Condition": {
            "Bool": {"acs:SecureTransport": ["false"]},
            "DateGreaterThan": {"acs:CurrentTime": [until]},
        },
    }
    import alibabacloud_oss_v2 as oss

    client = cloud.oss_client()
    client.put_bucket_policy(
        oss.PutBucketPolicyRequest(
            bucket=BUCKET, body=json.dumps({"Version": "1", "Statement": [statement]})
        )
    )
    poll(lambda: _http_status(cloud, DOMAIN), lambda s: s == 200)
    # when the account's time moves on two hours
    settings = cloud.settings(time_offset=7200)
    # then the statement applies, and signed calls still work (real time signs)
    assert settings["time_offset"] == 7200
    assert _http_status(cloud, DOMAIN) == 403
    assert client.get_bucket_policy(oss.GetBucketPolicyRequest(bucket=BUCKET)).body
    # and a reset puts the account's time back
    cloud.reset()
    assert cloud.settings()["time_offset"] == 0


def test_call_log_keeps_order_and_identifying_parameters_only(cloud: Any) -> None:
    cloud.load_estate(ESTATE)
    cdn = cloud.cdn_client()
    first = cloud.calls()
    since = first[-1]["seq"] if first else 0
    cdn.describe_cdn_domain_configs(
        models.DescribeCdnDomainConfigsRequest(domain_name="cdn.example.com")
    )
    cdn.set_cdn_domain_sslcertificate(
        models.SetCdnDomainSSLCertificateRequest(domain_name="img.example.com", sslprotocol="off")
    )
    log = cloud.calls(since)
    assert [c["action"] for c in log] == [
        "cdn:DescribeCdnDomainConfigs",
        "cdn:SetCdnDomainSSLCertificate",
    ]
    assert log[1]["params"] == {"DomainName": "img.example.com", "SSLProtocol": "off"}
    assert log[0]["seq"] < log[1]["seq"] and all(c["outcome"] == "ok" for c in log)
    only = cloud.calls(since, "cdn:SetCdnDomainSSLCertificate")
    assert [c["seq"] for c in only] == [log[1]["seq"]]
