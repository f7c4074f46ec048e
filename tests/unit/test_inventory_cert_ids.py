"""inventory.match_cas_certificate: a CDN certificate's CAS id from its CertName (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from certpilot.adapters.cas import CasSummary
from certpilot.inventory import cas_by_name, match_cas_certificate
from certpilot.model import DeployedCert, Location

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
