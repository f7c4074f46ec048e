"""The routing rule of DESIGN §4, as a pure function (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from certpilot.core.cloudtypes import BucketInfo, CdnDomainInfo, CnameInfo, Source
from certpilot.core.model import DeployedCert, Location, Route
from certpilot.core.names import normalize_domain
from certpilot.discovery.inventory import (
    classify,
    oss_origin,
    parse_bucket_domain,
)

EXPIRY = datetime(2030, 1, 1, tzinfo=timezone.utc)
OSS_CERT = DeployedCert(Location.OSS, 101, "CAS", EXPIRY)
CDN_CERT = DeployedCert(Location.CDN, None, "cas", EXPIRY, name="wild")
BUCKETS = [BucketInfo("assets", "cn-hangzhou"), BucketInfo("media", "cn-shanghai")]


def cname(domain: str, cert: DeployedCert | None = None) -> CnameInfo:
    return CnameInfo(domain, "Enabled", cert, "101-cn-hangzhou" if cert else None)


def cdn(name: str, *sources: Source, ssl_on: bool = False) -> CdnDomainInfo:
    return CdnDomainInfo(name, "online", ssl_on, tuple(sources))


def oss_source(bucket: str, region: str, priority: int = 20) -> Source:
    return Source("oss", f"{bucket}.oss-{region}.aliyuncs.com", 80, priority)


def test_oss_custom_domain_without_cdn_routes_to_oss() -> None:
    inv = classify(BUCKETS, {"assets": [cname("static.example.com", OSS_CERT)]}, [], {})

    [record] = inv.domains
    assert (record.name, record.route, record.bucket, record.region) == (
        "static.example.com",
        Route.OSS,
        "assets",
        "cn-hangzhou",
    )
    # with the bound CertId, PutCname's PreviousCertId
    assert record.deployed == replace(OSS_CERT, identifier="101-cn-hangzhou")
    assert record.cname_bound and record.oss_hosted is None


def test_cdn_domain_with_oss_origin_routes_to_cdn_with_its_listed_certificate() -> None:
    domains = [cdn("cdn.example.com", oss_source("media", "cn-shanghai"), ssl_on=True)]

    inv = classify(BUCKETS, {}, domains, {"cdn.example.com": CDN_CERT})

    [record] = inv.domains
    assert (record.route, record.bucket, record.region) == (Route.CDN, "media", "cn-shanghai")
    assert record.deployed == CDN_CERT and record.cdn_status == "online"
    assert not record.cname_bound


def test_cdn_wins_over_a_cname_binding_and_an_oss_hosted_cert_is_the_wrong_location() -> None:
    domains = [cdn("video.example.com", oss_source("assets", "cn-hangzhou"))]
    cnames = {"assets": [cname("video.example.com", OSS_CERT)]}

    inv = classify(BUCKETS, cnames, domains, {})

    [record] = inv.domains
    assert record.route is Route.CDN and record.cname_bound
    assert record.deployed is None  # HTTPS is off on CDN: where the traffic goes
    assert record.oss_hosted == OSS_CERT


def test_https_on_but_not_yet_listed_is_an_unknown_cdn_certificate() -> None:
    domains = [cdn("new.example.com", oss_source("assets", "cn-hangzhou"), ssl_on=True)]

    [record] = classify(BUCKETS, {}, domains, {}).domains

    assert record.deployed is not None and record.deployed.location is Location.CDN
    assert record.deployed.not_after is None and record.deployed.cas_id is None


def test_ssl_off_ignores_a_stale_https_listing() -> None:
    domains = [cdn("cdn.example.com", oss_source("assets", "cn-hangzhou"), ssl_on=False)]

    [record] = classify(BUCKETS, {}, domains, {"cdn.example.com": CDN_CERT}).domains

    assert record.deployed is None


def test_cdn_domains_without_oss_origin_are_left_out_with_their_bindings() -> None:
    domains = [
        cdn("app.example.com", Source("domain", "origin.example.com", 443)),
        cdn("api.example.com", Source("ipaddr", "203.0.113.1", 80)),
    ]
    cnames = {"assets": [cname("app.example.com", OSS_CERT)]}

    inv = classify(BUCKETS, cnames, domains, {})

    assert inv.domains == ()
    assert inv.buckets == ("assets", "media")


def test_bucket_domains_are_recorded_as_never_touched() -> None:
    domains = [cdn("assets.oss-cn-hangzhou.aliyuncs.com", oss_source("assets", "cn-hangzhou"))]

    [record] = classify(BUCKETS, {}, domains, {}).domains

    assert record.route is Route.BUCKET_DOMAIN
    assert (record.bucket, record.region, record.deployed) == ("assets", "cn-hangzhou", None)


def test_names_are_normalised_and_sorted_and_invalid_ones_dropped() -> None:
    cnames = {
        "assets": [cname("WWW.Example.COM."), cname("bücher.example.com"), cname("bad_name!")],
    }
    domains = [cdn(".wild.example.com", oss_source("assets", "cn-hangzhou"))]

    inv = classify(BUCKETS, cnames, domains, {})

    assert [r.name for r in inv.domains] == [
        "*.wild.example.com",
        "www.example.com",
        "xn--bcher-kva.example.com",
    ]
    assert inv.get("www.example.com") is not None


def test_the_primary_oss_origin_is_the_lowest_priority_number() -> None:
    sources = (
        Source("domain", "backup.example.com", 80, 10),
        oss_source("media", "cn-shanghai", 30),
        oss_source("assets", "cn-hangzhou", 20),
    )

    origin = oss_origin(sources)

    assert origin is not None and origin.content.startswith("assets.")


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("assets.oss-cn-hangzhou.aliyuncs.com", ("assets", "cn-hangzhou")),
        ("my-bucket.oss-ap-southeast-1.aliyuncs.com", ("my-bucket", "ap-southeast-1")),
        ("assets.oss-cn-hangzhou-internal.aliyuncs.com", ("assets", "cn-hangzhou")),
        ("assets.oss-accelerate.aliyuncs.com", ("assets", None)),
        ("static.example.com", None),
        ("oss-cn-hangzhou.aliyuncs.com", None),
    ],
)
def test_bucket_domain_parsing(name: str, parsed: tuple[str, str | None] | None) -> None:
    assert parse_bucket_domain(name) == parsed


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("*.Example.com", "*.example.com"), (".example.com", "*.example.com"), ("a..b", None)],
)
def test_domain_normalisation(raw: str, normalised: str | None) -> None:
    assert normalize_domain(raw) == normalised


def test_a_dot_form_wildcard_cdn_domain_keeps_the_name_cdn_lists_it_by() -> None:
    # given CDN lists a wildcard domain as `.example.org`, in both listings
    domains = [cdn(".example.org", oss_source("assets", "cn-hangzhou"), ssl_on=True)]
    https = {".example.org": CDN_CERT}

    # when the domains are classified
    [record] = classify(BUCKETS, {}, domains, https).domains

    # then certpilot names it `*.example.org`, keeps CDN's spelling for its calls, and
    # finds its certificate in the HTTPS listing
    assert (record.name, record.api_name) == ("*.example.org", ".example.org")
    assert record.deployed == CDN_CERT


def test_oss_bindings_keep_the_name_oss_lists_them_by() -> None:
    inv = classify(BUCKETS, {"assets": [cname("bücher.example.com", OSS_CERT)]}, [], {})

    [record] = inv.domains
    assert (record.name, record.api_name) == ("xn--bcher-kva.example.com", "bücher.example.com")
