"""inventory: a CDN certificate's CAS id from its CertName (pure `match_cas_certificate`),
else from DescribeDomainCertificateInfo (`with_cert_ids`, against a fake CDN)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from certpilot.core.cloudtypes import CasSummary
from certpilot.core.errors import CloudError, NotFoundError, ThrottledError, TransientError
from certpilot.core.model import DeployedCert, DomainRecord, Inventory, Location, Route
from certpilot.discovery.inventory import cas_by_name, match_cas_certificate, with_cert_ids

EXPIRES = datetime(2031, 3, 10, 15, 30, tzinfo=timezone.utc)


def summary(cas_id: int, name: str, end: datetime | None) -> CasSummary:
    return CasSummary(
        cas_id=cas_id,
        name=name,
        common_name="*.example.com",
        sans=("*.example.com",),
        issuer="CA One",
        start=None,
        end=end,
        expired=False,
        upload=True,
        status="ISSUED",
    )


# The CAS listing gives the expiry as a calendar day (its midnight, here in UTC).
LISTING = [
    summary(11, "wild-2031", datetime(2031, 3, 11, tzinfo=timezone.utc)),
    summary(12, "other", datetime(2032, 1, 1, tzinfo=timezone.utc)),
    summary(13, "twice", EXPIRES),
    summary(14, "twice", EXPIRES),
    summary(15, "undated", None),
    summary(11, "wild-2031", datetime(2031, 3, 11, tzinfo=timezone.utc)),  # listed twice
]


def listed(
    name: str | None, cert_type: str = "cas", not_after: datetime | None = EXPIRES
) -> DeployedCert:
    """A DescribeCdnHttpsDomainList entry: no CAS id."""
    return DeployedCert(Location.CDN, None, cert_type, not_after, name=name)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (listed("wild-2031"), 11),  # one name, expiry within the listed day
        (listed("wild-2031", not_after=EXPIRES - timedelta(days=1)), 11),  # zone slack
        (listed("wild-2031", not_after=EXPIRES + timedelta(days=30)), None),  # other cert
        (listed("wild-2031", not_after=None), None),  # expiry unknown: no cross-check
        (listed("wild-2031", cert_type="upload"), None),  # not a CAS reference
        (listed("wild-2031", cert_type="free"), None),
        (listed("twice"), None),  # ambiguous: two CAS ids under one name
        (listed("undated"), None),
        (listed("missing"), None),
        (listed(None), None),
        (None, None),
    ],
)
def test_match_by_name_type_and_expiry(entry: DeployedCert | None, expected: int | None) -> None:
    found = match_cas_certificate(entry, cas_by_name(LISTING))
    assert (found.cas_id if found else None) == expected


# -- with_cert_ids: one DescribeDomainCertificateInfo per domain, never fatal for one ----


class FakeCdn:
    """DescribeDomainCertificateInfo answers by the name CDN knows."""

    def __init__(self, answers: dict[str, DeployedCert | None]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def certificate_info(self, domain: str) -> DeployedCert | None:
        self.asked.append(domain)
        if domain not in self.answers:
            raise NotFoundError("cdn", "DescribeDomainCertificateInfo", "InvalidDomain.NotFound")
        return self.answers[domain]


def clients_with(cdn: FakeCdn) -> Any:
    return SimpleNamespace(cdn=cdn, settings=SimpleNamespace(cas_region="cn-hangzhou"))


def https_on(name: str, api_name: str | None = None) -> DomainRecord:
    """A CDN domain DescribeUserDomains lists with HTTPS on (certificate not listed yet)."""
    placeholder = DeployedCert(Location.CDN, None, "", None)
    return DomainRecord(name, Route.CDN, "assets", "cn-hangzhou", placeholder, api_name=api_name)


BOUND = DeployedCert(Location.CDN, 4242, "cas", EXPIRES, name="wild-2031")


def test_https_on_without_a_certificate_entry_keeps_the_unknown_certificate() -> None:
    # given DescribeUserDomains says HTTPS is on, DescribeDomainCertificateInfo has none
    inventory = Inventory((https_on("a.example.com"),))
    cdn = FakeCdn({"a.example.com": None})
    # when the certificate ids are filled in
    [record] = with_cert_ids(inventory, clients_with(cdn), ["a.example.com"]).domains
    # then the certificate stays unknown (plan skips it), never "no certificate"
    assert record.deployed is not None
    assert (record.deployed.cas_id, record.deployed.not_after) == (None, None)


def test_one_unknown_domain_does_not_fail_the_others() -> None:
    # given two CDN domains, one of which CDN no longer knows
    inventory = Inventory((https_on("gone.example.com"), https_on("b.example.com")))
    cdn = FakeCdn({"b.example.com": BOUND})
    # when the certificate ids are filled in
    enriched = with_cert_ids(inventory, clients_with(cdn), ["gone.example.com", "b.example.com"])
    # then the known one gets its id and the unknown one keeps its listed record
    found = enriched.get("b.example.com")
    assert found is not None and found.deployed is not None and found.deployed.cas_id == 4242
    assert enriched.get("gone.example.com") == inventory.get("gone.example.com")


def test_a_dot_form_wildcard_is_looked_up_by_the_name_cdn_lists() -> None:
    # given CDN lists the wildcard domain as `.example.org`
    inventory = Inventory((https_on("*.example.org", api_name=".example.org"),))
    cdn = FakeCdn({".example.org": BOUND})
    # when its certificate id is asked for by certpilot's name
    [record] = with_cert_ids(inventory, clients_with(cdn), ["*.example.org"]).domains
    # then CDN was asked with its own spelling, and answered
    assert cdn.asked == [".example.org"]
    assert record.deployed is not None and record.deployed.cas_id == 4242


@pytest.mark.parametrize(
    "error",
    [
        TransientError("cdn", "DescribeDomainCertificateInfo", "InternalError", 500),
        ThrottledError("cdn", "DescribeDomainCertificateInfo", "Throttling.User", 400),
    ],
)
def test_a_lookup_failing_after_retries_keeps_the_unknown_certificate_for_that_domain(
    error: CloudError,
) -> None:
    # given two CDN domains, one whose DescribeDomainCertificateInfo keeps failing
    inventory = Inventory((https_on("flaky.example.com"), https_on("b.example.com")))
    cdn = FakeCdn({"b.example.com": BOUND})
    original = cdn.certificate_info

    def flaky(domain: str) -> DeployedCert | None:
        if domain == "flaky.example.com":
            raise error
        return original(domain)

    cdn.certificate_info = flaky  # type: ignore[method-assign]
    # when the certificate ids are filled in
    enriched = with_cert_ids(inventory, clients_with(cdn), ["flaky.example.com", "b.example.com"])
    # then the rollout goes on: the flaky one keeps the unknown certificate (plan skips
    # it as current-expiry-unknown), the other gets its id
    flaky_record = enriched.get("flaky.example.com")
    assert flaky_record is not None and flaky_record.deployed is not None
    assert (flaky_record.deployed.cas_id, flaky_record.deployed.not_after) == (None, None)
    found = enriched.get("b.example.com")
    assert found is not None and found.deployed is not None and found.deployed.cas_id == 4242
