"""What the enforce-https end-to-end tests share: invoking the handler as FC does,
estates, and an outside view of the edge (plain `http.client` and `ssl`, never
certpilot's own probes)."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.fc_helpers import REPO, fc_context, fc_handler

EVENTS = REPO / "events"
# A certificate covering every *.example.com domain of the estates below.
WILD: dict[str, Any] = {"name": "wild", "sans": ["*.example.com"], "days": 200}
INDEX = {"index.html": "<p>media</p>"}
# A CDN origin pulled over HTTPS already.
HTTPS_ORIGIN = {"forward_scheme": {"enable": "on", "scheme_origin": "https"}}


def handler() -> Callable[[bytes, Any], Any]:
    """enforce-https's entry point, loaded from its file as FC loads it."""
    return fc_handler("enforce_https")


def use_estate(
    cloud: Any, monkeypatch: pytest.MonkeyPatch, estate: dict[str, Any], **env: str
) -> dict[str, int]:
    """Point certpilot at the emulator (short verification) and load `estate`."""
    for name, value in cloud.certpilot_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CERTPILOT_VERIFY_DEADLINE", "8")
    monkeypatch.setenv("CERTPILOT_LOG_LEVEL", "WARNING")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    estate = {"settings": {"propagation_delay": 0.1}, **estate}
    ids: dict[str, int] = cloud.load_estate(estate)
    return ids


def media(**bucket: Any) -> dict[str, Any]:
    """Bucket `media` with an index page and the direct domain img.example.com serving
    WILD; `bucket` adds or replaces fields."""
    return {
        "name": "media",
        "objects": INDEX,
        "cnames": [{"domain": "img.example.com", "certificate": "wild"}],
        **bucket,
    }


def cdn_estate(
    name: str = "cdn.example.com",
    *,
    configs: dict[str, Any] | None = None,
    certificate: str | None = "wild",
) -> dict[str, Any]:
    """WILD, bucket `media` (an index page, no domain) and CDN domain `name` pulling it,
    with `configs` as its features and serving `certificate` (None: no HTTPS yet)."""
    domain: dict[str, Any] = {"name": name, "origin": "media"}
    if certificate is not None:
        domain["certificate"] = certificate
    if configs is not None:
        domain["configs"] = configs
    return {
        "certificates": [WILD],
        "buckets": [{"name": "media", "objects": INDEX}],
        "cdn_domains": [domain],
    }


def invoke(cloud: Any, event: dict[str, Any] | bytes) -> dict[str, Any]:
    """Call the handler as FC does: bytes in, JSON text out."""
    data = event if isinstance(event, bytes) else json.dumps(event).encode()
    result = handler()(data, fc_context(cloud, "enforce-https"))
    summary: dict[str, Any] = json.loads(result)
    return summary


def sample(cloud: Any, name: str, **data_changes: Any) -> dict[str, Any]:
    """A sample event of `events/`, from this account."""
    event: dict[str, Any] = json.loads((EVENTS / f"enforce-https.{name}.json").read_text())
    if "aliyunaccountid" in event:
        event["aliyunaccountid"] = cloud.account_id
        event["data"]["userIdentity"]["accountId"] = cloud.account_id
    event.get("data", {}).get("requestParameters", {}).update(data_changes)
    return event


def domain_of(summary: dict[str, Any], name: str) -> dict[str, Any]:
    """The one result of `name`."""
    [found] = [d for d in summary["domains"] if d["domain"] == name]
    return found


def bucket_of(summary: dict[str, Any], name: str) -> dict[str, Any]:
    """The one result of bucket `name`."""
    [found] = [b for b in summary["buckets"] if b["bucket"] == name]
    return found


def codes(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(code, domain) of every finding."""
    return sorted((f["code"], f["domain"]) for f in summary["findings"])


def policy(cloud: Any, bucket: str) -> str | None:
    """The bucket's stored policy text (None: none)."""
    stored: str | None = cloud.state()["buckets"][bucket].get("policy")
    return stored


def statements(cloud: Any, bucket: str) -> list[dict[str, Any]]:
    """The statements of the bucket's stored policy."""
    text = policy(cloud, bucket)
    return list(json.loads(text)["Statement"]) if text else []


def ours(bucket: str) -> dict[str, Any]:
    """The HTTPS-only statement as the issue specifies it."""
    return {
        "Effect": "Deny",
        "Action": ["oss:*"],
        "Principal": ["*"],
        "Resource": [f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"],
        "Condition": {"Bool": {"acs:SecureTransport": ["false"]}},
    }


def is_ours(statement: dict[str, Any], bucket: str) -> bool:
    """Whether `statement` is the HTTPS-only Deny for `bucket` (spelling aside)."""
    condition = statement.get("Condition", {}).get("Bool", {}).get("acs:SecureTransport")
    values = condition if isinstance(condition, list) else [condition]
    return (
        statement.get("Effect") == "Deny"
        and [str(v).lower() for v in values] == ["false"]
        and f"acs:oss:*:*:{bucket}/*" in statement.get("Resource", [])
    )


@dataclass(frozen=True)
class Answer:
    """What a visitor got."""

    status: int
    location: str | None
    hsts: str | None


def _address(edge: str) -> tuple[str, int]:
    host, _, port = edge.rpartition(":")
    return host, int(port)


def http_get(cloud: Any, domain: str, path: str = "/") -> Answer:
    """GET http://domain/path at the emulator's edge."""
    host, port = _address(cloud.http)
    connection = http.client.HTTPConnection(host, port, timeout=3)
    try:
        connection.request("GET", path, headers={"Host": domain})
        response = connection.getresponse()
        response.read()
        return Answer(response.status, response.getheader("Location"), None)
    finally:
        connection.close()


def https_get(cloud: Any, domain: str, path: str = "/") -> Answer:
    """GET https://domain/path at the emulator's edge, verifying chain and name."""
    host, port = _address(cloud.https)
    context = ssl.create_default_context(cafile=cloud.ca_bundle)
    raw = socket.create_connection((host, port), timeout=3)
    tls = context.wrap_socket(raw, server_hostname=domain)
    connection = http.client.HTTPSConnection(domain, port, timeout=3, context=context)
    connection.sock = tls
    try:
        connection.request("GET", path, headers={"Host": domain})
        response = connection.getresponse()
        response.read()
        return Answer(
            response.status,
            response.getheader("Location"),
            response.getheader("Strict-Transport-Security"),
        )
    finally:
        connection.close()


def stored_policy(cloud: Any, bucket: str) -> str | None:
    """The bucket's policy text through the OSS SDK (None: the bucket has none)."""
    import alibabacloud_oss_v2 as oss

    try:
        result = cloud.oss_client().get_bucket_policy(oss.GetBucketPolicyRequest(bucket=bucket))
    except oss.exceptions.OperationError as error:
        if "NoSuchBucketPolicy" in str(error):
            return None
        raise
    body = result.body
    return body.decode() if isinstance(body, bytes) else str(body)


def cdn_features(cloud: Any, domain: str) -> dict[str, dict[str, str]]:
    """The configured features of a CDN domain through the CDN SDK: name -> arguments
    (with `_status`)."""
    from alibabacloud_cdn20180510 import models

    body = (
        cloud.cdn_client()
        .describe_cdn_domain_configs(models.DescribeCdnDomainConfigsRequest(domain_name=domain))
        .body.to_map()
    )
    found: dict[str, dict[str, str]] = {}
    for item in body["DomainConfigs"]["DomainConfig"]:
        args = {a["ArgName"]: a["ArgValue"] for a in item["FunctionArgs"]["FunctionArg"]}
        found[item["FunctionName"]] = {**args, "_status": item["Status"]}
    return found
