"""Inventory against the emulator, through the real OSS and CDN SDKs.

Scenarios: a mixed estate routed per DESIGN §4, the calls an inventory costs (no
per-domain calls when the listings suffice), paging of 1,200 CDN domains, and
throttling / transient 5xx absorbed by the adapters.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest

from certpilot.cloud.ratelimit import RateLimiter
from certpilot.core.model import Location, Route
from certpilot.discovery import catalog, inventory
from tests.integration import clients as integration_clients

pytestmark = pytest.mark.integration

MIXED_ESTATE: dict[str, Any] = {
    "certificates": [
        {"name": "wild-example-com", "sans": ["*.example.com"], "ca": "one", "days": 90},
        {"name": "shop-example-org", "sans": ["shop.example.org"], "ca": "two", "days": 60},
    ],
    "buckets": [
        {
            "name": "assets-hz",
            "region": "cn-hangzhou",
            "cnames": [
                {"domain": "static.example.com", "certificate": "wild-example-com"},
                {"domain": "plain.example.com"},
                # Also a CDN domain: CDN wins, the OSS-hosted cert is the wrong location.
                {"domain": "video.example.com", "certificate": "wild-example-com"},
                # Also a CDN domain without OSS origin: not certpilot's.
                {"domain": "app.example.com"},
            ],
        },
        {
            "name": "media-sh",
            "region": "cn-shanghai",
            "cnames": [{"domain": "shop.example.org", "certificate": "shop-example-org"}],
        },
    ],
    "cdn_domains": [
        {"name": "cdn.example.com", "origin": "assets-hz", "certificate": "wild-example-com"},
        {"name": "img.example.com", "origin": "media-sh"},
        {"name": "video.example.com", "origin": "assets-hz"},
        {
            "name": "app.example.com",
            "sources": [{"type": "domain", "content": "origin.example.com", "port": 443}],
            "certificate": "wild-example-com",
        },
        {
            "name": "api.example.com",
            "sources": [{"type": "ipaddr", "content": "203.0.113.10"}],
        },
    ],
}


make_clients = functools.partial(integration_clients.make_clients, base_delay=0.02, max_delay=0.2)


def calls(cloud: Any) -> dict[str, int]:
    # The cloud APIs only: an OCSP fetch that an earlier test's probe thread finishes
    # after the reset lands on the emulator's PKI (`pki:`), not on an API.
    return {k: v["calls"] for k, v in cloud.stats()["actions"].items() if not k.startswith("pki:")}


def test_mixed_estate_is_routed_per_design(cloud: Any) -> None:
    # Given buckets in two regions, OSS custom domains and CDN domains of every kind
    cloud.load_estate(MIXED_ESTATE)
    clients = make_clients(cloud)

    # When the inventory is taken
    inv = inventory.discover(clients, clients.settings)

    # Then every domain is routed where its traffic goes
    routes = {r.name: r.route for r in inv.domains}
    assert routes == {
        "static.example.com": Route.OSS,
        "plain.example.com": Route.OSS,
        "shop.example.org": Route.OSS,
        "cdn.example.com": Route.CDN,
        "img.example.com": Route.CDN,
        "video.example.com": Route.CDN,
    }
    assert inv.buckets == ("assets-hz", "media-sh")

    static = inv.get("static.example.com")
    assert static is not None and static.deployed is not None
    assert static.deployed.location is Location.OSS
    assert static.deployed.cas_id is not None
    assert (static.bucket, static.region) == ("assets-hz", "cn-hangzhou")

    shop = inv.get("shop.example.org")
    assert shop is not None and (shop.bucket, shop.region) == ("media-sh", "cn-shanghai")

    plain = inv.get("plain.example.com")
    assert plain is not None and plain.deployed is None

    cdn = inv.get("cdn.example.com")
    assert cdn is not None and cdn.deployed is not None
    assert cdn.deployed.location is Location.CDN
    assert cdn.deployed.cas_id is None  # the listing does not carry it
    assert cdn.deployed.not_after is not None
    assert (cdn.bucket, cdn.region, cdn.cname_bound) == ("assets-hz", "cn-hangzhou", False)

    img = inv.get("img.example.com")
    assert img is not None and img.deployed is None
    assert (img.bucket, img.region) == ("media-sh", "cn-shanghai")

    # A CDN domain also bound as a CNAME goes to CDN; its OSS-hosted cert is reported
    video = inv.get("video.example.com")
    assert video is not None
    assert video.cname_bound and video.deployed is None
    assert video.oss_hosted is not None and video.oss_hosted.location is Location.OSS


def test_inventory_costs_listing_calls_only(cloud: Any) -> None:
    # Given the mixed estate
    cloud.load_estate(MIXED_ESTATE)
    clients = make_clients(cloud)

    # When the inventory is taken
    inventory.discover(clients, clients.settings)

    # Then it used one listing per bucket and per CDN listing, nothing per domain
    assert calls(cloud) == {
        "oss:ListBuckets": 1,
        "oss:ListCname": 2,
        "cdn:DescribeUserDomains": 1,
        "cdn:DescribeCdnHttpsDomainList": 1,
    }


def test_cert_ids_are_fetched_only_for_the_domains_asked(cloud: Any) -> None:
    # Given an inventory whose CDN certificate lacks its CAS id
    cloud.load_estate(MIXED_ESTATE)
    clients = make_clients(cloud)
    inv = inventory.discover(clients, clients.settings)
    before = calls(cloud)

    # When the deploy step asks for the CAS ids of the domains it will touch
    enriched = inventory.with_cert_ids(inv, clients, ["cdn.example.com", "static.example.com"])

    # Then one DescribeDomainCertificateInfo call is made (OSS listings carry the id)
    after = calls(cloud)
    assert after.get("cdn:DescribeDomainCertificateInfo", 0) == 1
    assert before.get("cdn:DescribeDomainCertificateInfo", 0) == 0
    cdn = enriched.get("cdn.example.com")
    static = enriched.get("static.example.com")
    assert cdn is not None and cdn.deployed is not None
    assert cdn.deployed.cas_id == static.deployed.cas_id  # type: ignore[union-attr]
    assert cdn.deployed.not_after is not None
    assert inv.get("cdn.example.com").deployed.cas_id is None  # type: ignore[union-attr]


CAS_BOUND_ESTATE: dict[str, Any] = {
    "certificates": [
        {"name": "wild-a", "sans": ["*.example.com"], "days": 90},
        {"name": "wild-b", "sans": ["*.example.com"], "days": 200},
        {"name": "pem-only", "sans": ["*.example.com"], "days": 60, "cas": False},
    ],
    "buckets": [{"name": "origin", "region": "cn-hangzhou"}],
    "cdn_domains": [
        *(
            {
                "name": f"d{i:02d}.example.com",
                "origin": "origin",
                "certificate": "wild-a" if i % 2 else "wild-b",
            }
            for i in range(20)
        ),
        {"name": "bare.example.com", "origin": "origin"},
        {"name": "upload.example.com", "origin": "origin", "certificate": "pem-only"},
        {"name": "renamed.example.com", "origin": "origin"},
    ],
}


def test_cas_ids_of_cdn_certificates_come_from_the_cas_listing_by_name(cloud: Any) -> None:
    # Given 20 CDN domains bound by CAS reference, one without HTTPS, one bound by PEM,
    # and one bound to wild-a under the name of wild-b (CertName given explicitly)
    ids = cloud.load_estate(CAS_BOUND_ESTATE)
    from alibabacloud_cdn20180510 import models

    cloud.cdn_client().set_cdn_domain_sslcertificate(
        models.SetCdnDomainSSLCertificateRequest(
            domain_name="renamed.example.com",
            sslprotocol="on",
            cert_type="cas",
            cert_id=ids["wild-a"],
            cert_region="cn-hangzhou",
            cert_name="wild-b",
        )
    )
    clients = make_clients(cloud)
    inv = inventory.discover(clients, clients.settings)
    listing = catalog.list_all(clients, include_expired=True)
    before = calls(cloud)

    # When the CAS ids of every CDN domain are filled in with the CAS listing at hand
    names = [r.name for r in inv.domains if r.route is Route.CDN]
    enriched = inventory.with_cert_ids(inv, clients, names, cas=listing.summaries)

    # Then only the PEM-bound domain and the misnamed one (its expiry disagrees with
    # wild-b's) cost a DescribeDomainCertificateInfo call...
    looked_up = calls(cloud).get("cdn:DescribeDomainCertificateInfo", 0)
    assert looked_up - before.get("cdn:DescribeDomainCertificateInfo", 0) == 2
    # ...and every id is the one the control plane has bound
    state = cloud.state()["cdn_domains"]
    for record in enriched.domains:
        ssl = state[record.name]["ssl"]
        expected = ssl["cert_id"] if ssl else None
        got = record.deployed.cas_id if record.deployed else None
        assert got == expected, record.name
        if record.deployed is not None and record.deployed.cas_id is not None:
            assert record.deployed.region == "cn-hangzhou"
    assert enriched.get("bare.example.com").deployed is None  # type: ignore[union-attr]


def test_an_account_without_https_cdn_domains_needs_no_certificate_listing(cloud: Any) -> None:
    # Given CDN domains with an OSS origin but none with HTTPS
    cloud.load_estate(
        {
            "buckets": [{"name": "bare", "region": "cn-beijing"}],
            "cdn_domains": [{"name": "cdn.example.net", "origin": "bare"}],
        }
    )
    clients = make_clients(cloud)

    # When the inventory is taken
    inv = inventory.discover(clients, clients.settings)

    # Then the HTTPS listing is skipped and the domain has no certificate
    record = inv.get("cdn.example.net")
    assert record is not None and record.route is Route.CDN and record.deployed is None
    assert record.region == "cn-beijing"
    assert "cdn:DescribeCdnHttpsDomainList" not in calls(cloud)


def test_1200_cdn_domains_take_three_pages(cloud: Any) -> None:
    # Given 1,200 CDN domains with an OSS origin
    cloud.load_estate(
        {
            "buckets": [{"name": "big", "region": "cn-hangzhou"}],
            "cdn_domains": [
                {"name": f"d{i:04d}.example.com", "origin": "big"} for i in range(1200)
            ],
        }
    )
    clients = make_clients(cloud)

    # When the inventory is taken
    inv = inventory.discover(clients, clients.settings)

    # Then three DescribeUserDomains pages (500 + 500 + 200) were read
    assert len(inv.domains) == 1200
    assert calls(cloud)["cdn:DescribeUserDomains"] == 3


def test_throttling_and_transient_errors_are_absorbed(cloud: Any) -> None:
    # Given listings that are throttled or fail with 5xx a few times
    cloud.load_estate(MIXED_ESTATE)
    cloud.faults(
        {
            "action": "cdn:DescribeUserDomains",
            "error": {"code": "Throttling.User", "status": 400},
            "times": 2,
        },
        {"action": "oss:ListCname", "error": {"code": "InternalError", "status": 500}, "times": 2},
        {
            "action": "oss:ListBuckets",
            "error": {"code": "ServiceUnavailable", "status": 503},
            "times": 1,
        },
        {
            "action": "cdn:DescribeCdnHttpsDomainList",
            "error": {"code": "ServiceBusy", "status": 403},
            "times": 1,
        },
    )
    clients = make_clients(cloud)

    # When the inventory is taken
    inv = inventory.discover(clients, clients.settings)

    # Then it completes as if nothing happened, with exactly the retries needed
    assert len(inv.domains) == 6
    counts = calls(cloud)
    assert counts["cdn:DescribeUserDomains"] == 3
    assert counts["oss:ListCname"] == 4
    assert counts["oss:ListBuckets"] == 2
    assert counts["cdn:DescribeCdnHttpsDomainList"] == 2


def test_flow_control_of_the_emulator_is_respected_under_concurrency(cloud: Any) -> None:
    # Given many buckets and an emulator enforcing a tight ListCname limit
    cloud.load_estate(
        {"buckets": [{"name": f"b{i:02d}-bucket", "region": "cn-hangzhou"} for i in range(30)]}
    )
    cloud.settings(qps={"oss:ListCname": 40})
    clients = make_clients(cloud, limiter=RateLimiter({("oss", "ListCname"): 40}))

    # When the inventory reads them with a thread pool
    inv = inventory.discover(clients, clients.settings)

    # Then the client-side limiter kept every call under the limit: nothing was throttled
    assert len(inv.buckets) == 30
    stats = cloud.action_stats("oss:ListCname")
    assert stats == {"calls": 30, "throttled": 0, "errors": 0}


DOT_FORM_ESTATE: dict[str, Any] = {
    "certificates": [
        {"name": "org-wild", "sans": ["*.example.org"], "days": 30},
        {"name": "pem-wild", "sans": ["*.example.net"], "days": 30, "cas": False},
    ],
    "buckets": [{"name": "origin", "region": "cn-hangzhou"}],
    "cdn_domains": [
        # CDN's own spelling of a wildcard domain
        {"name": ".example.org", "origin": "origin", "certificate": "org-wild"},
        {"name": ".example.net", "origin": "origin", "certificate": "pem-wild"},
    ],
}


def test_a_dot_form_wildcard_cdn_domain_is_read_by_the_name_cdn_lists(cloud: Any) -> None:
    # Given CDN lists wildcard domains as `.example.org` / `.example.net`
    ids = cloud.load_estate(DOT_FORM_ESTATE)
    clients = make_clients(cloud)

    # When the inventory is taken and the CAS ids looked up one domain at a time
    inv = inventory.discover(clients, clients.settings)
    enriched = inventory.with_cert_ids(inv, clients, ["*.example.org", "*.example.net"])

    # Then certpilot names them `*.example.…`, keeps CDN's spelling for its calls, and
    # DescribeDomainCertificateInfo answered for both (no InvalidDomain.NotFound)
    org, net = enriched.get("*.example.org"), enriched.get("*.example.net")
    assert org is not None and net is not None
    assert (org.api_name, net.api_name) == (".example.org", ".example.net")
    listed = inv.get("*.example.org")
    assert listed is not None and listed.deployed is not None
    assert listed.deployed.not_after is not None  # found in the HTTPS listing by its name
    assert org.deployed is not None and org.deployed.cas_id == ids["org-wild"]
    assert net.deployed is not None and net.deployed.cas_id is None  # bound by PEM
    assert net.deployed.not_after is not None
    assert calls(cloud)["cdn:DescribeDomainCertificateInfo"] == 2


def test_a_domain_cdn_does_not_know_does_not_fail_the_lookup_of_the_others(cloud: Any) -> None:
    # Given an inventory that also holds a CDN domain CDN does not know (deleted since)
    cloud.load_estate(DOT_FORM_ESTATE)
    clients = make_clients(cloud)
    inv = inventory.discover(clients, clients.settings)
    [known] = [r for r in inv.domains if r.name == "*.example.org"]
    ghost = dataclasses.replace(known, name="ghost.example.org", api_name="ghost.example.org")
    inv = dataclasses.replace(inv, domains=(*inv.domains, ghost))

    # When the CAS ids of both are looked up
    enriched = inventory.with_cert_ids(inv, clients, ["*.example.org", "ghost.example.org"])

    # Then the known one gets its id and the unknown one keeps its listed record
    org = enriched.get("*.example.org")
    assert org is not None and org.deployed is not None and org.deployed.cas_id is not None
    assert enriched.get("ghost.example.org") == ghost
    assert cloud.action_stats("cdn:DescribeDomainCertificateInfo")["errors"] == 1
