"""Bucket policies put through the real OSS SDK, judged by the emulator's live edge.

Every request to a bucket (its bucket domain, its custom domains) is evaluated against
the policy: explicit Deny wins, `acs:SecureTransport`, `acs:CurrentTime` and
`acs:SourceIp` conditions (the edge sees the visitor's address, here 127.0.0.1).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import ssl
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest

from tests.conftest import Emulator

pytestmark = pytest.mark.integration

BUCKET = "assets"
BUCKET_DOMAIN = f"{BUCKET}.oss-cn-hangzhou.aliyuncs.com"
CUSTOM = "static.example.com"
DENIED = ("AccessDenied", "0003-00000101")


@pytest.fixture
def site(cloud: Emulator) -> oss.Client:
    """Bucket `assets` with an object, bound to a custom domain with a certificate; no
    policy yet; changes reach the edge at once."""
    cloud.load_estate(
        {
            "certificates": [{"name": "site", "sans": [CUSTOM]}],
            "buckets": [
                {
                    "name": BUCKET,
                    "objects": {"index.html": "<p>hello</p>"},
                    "cnames": [{"domain": CUSTOM, "certificate": "site"}],
                }
            ],
        }
    )
    cloud.settings(propagation_delay=0.0)
    return cloud.oss_client()


def put_policy(client: oss.Client, *statements: dict[str, Any]) -> None:
    full = [
        {
            "Principal": ["*"],
            "Action": ["oss:GetObject"],
            "Resource": [f"acs:oss:*:*:{BUCKET}/*"],
        }
        | statement
        for statement in statements
    ]
    body = json.dumps({"Version": "1", "Statement": full})
    client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket=BUCKET, body=body))


def get(cloud: Emulator, host: str, *, https: bool) -> tuple[int, str | None, str | None]:
    """GET /index.html from the edge for `host`: (status, error Code, x-oss-ec)."""
    edge = cloud.https if https else cloud.http
    assert edge is not None
    address, port = edge.rsplit(":", 1)
    raw = socket.create_connection((address, int(port)), timeout=5)
    if https:
        raw = ssl.create_default_context(cafile=cloud.ca_bundle).wrap_socket(
            raw, server_hostname=host
        )
    conn = http.client.HTTPConnection(host, timeout=5)
    conn.sock = raw
    try:
        conn.request("GET", "/index.html")
        response = conn.getresponse()
        body = response.read().decode()
        code = body.split("<Code>")[1].split("</Code>")[0] if "<Code>" in body else None
        return response.status, code, response.getheader("x-oss-ec")
    finally:
        conn.close()


def at(hours: float) -> str:
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_plain_http_is_denied_by_secure_transport_on_every_host_of_the_bucket(
    cloud: Emulator, site: oss.Client
) -> None:
    # given the HTTPS-only statement: Deny when acs:SecureTransport is false
    put_policy(site, {"Effect": "Deny", "Condition": {"Bool": {"acs:SecureTransport": ["false"]}}})

    # then plain HTTP is refused on the bucket domain and the custom domain
    assert get(cloud, BUCKET_DOMAIN, https=False) == (403, *DENIED)
    assert get(cloud, CUSTOM, https=False) == (403, *DENIED)
    # while HTTPS is served
    assert get(cloud, CUSTOM, https=True)[0] == 200


def test_explicit_deny_wins_over_an_allow(cloud: Emulator, site: oss.Client) -> None:
    # given an Allow and a Deny for the same request, in that order
    put_policy(site, {"Effect": "Allow"}, {"Effect": "Deny"})

    # then the Deny decides
    assert get(cloud, CUSTOM, https=True) == (403, *DENIED)


@pytest.mark.parametrize(
    ("window", "status"),
    [
        ((-1, 1), 403),  # now is inside the window: denied
        ((-2, -1), 200),  # the window is over: the statement expired by itself
        ((1, 2), 200),  # the window has not begun
    ],
    ids=["inside", "after", "before"],
)
def test_a_deny_bounded_by_current_time_applies_only_inside_its_window(
    cloud: Emulator, site: oss.Client, window: tuple[float, float], status: int
) -> None:
    # given a Deny between two instants (the ...Equals forms included)
    start, end = window
    put_policy(
        site,
        {
            "Effect": "Deny",
            "Condition": {
                "DateGreaterThanEquals": {"acs:CurrentTime": [at(start)]},
                "DateLessThan": {"acs:CurrentTime": [at(end)]},
            },
        },
    )

    # then the edge denies only while the request time is inside it
    assert get(cloud, CUSTOM, https=True)[0] == status
    assert get(cloud, BUCKET_DOMAIN, https=False)[0] == status


@pytest.mark.parametrize(
    ("operator", "status"),
    [("IpAddress", 403), ("NotIpAddress", 200)],
)
def test_source_ip_is_the_visitors_address(
    cloud: Emulator, site: oss.Client, operator: str, status: int
) -> None:
    # given a Deny on 127.0.0.1 (or on everything else) for requests from outside any
    # VPC, as OSS requires acs:SourceVpc next to acs:SourceIp
    put_policy(
        site,
        {
            "Effect": "Deny",
            "Condition": {
                operator: {"acs:SourceIp": ["127.0.0.1/32"]},
                "StringNotLike": {"acs:SourceVpc": ["vpc-*"]},
            },
        },
    )

    # then the edge judges the test's own address, 127.0.0.1
    assert get(cloud, CUSTOM, https=True)[0] == status


def test_a_deleted_policy_denies_nothing_anymore(cloud: Emulator, site: oss.Client) -> None:
    # given a Deny-all policy, then deleted
    put_policy(site, {"Effect": "Deny", "Condition": {"Bool": {"acs:SecureTransport": ["true"]}}})
    assert get(cloud, CUSTOM, https=True) == (403, *DENIED)

    site.delete_bucket_policy(oss.DeleteBucketPolicyRequest(bucket=BUCKET))

    # then the edge serves again
    assert get(cloud, CUSTOM, https=True)[0] == 200
