"""Fakes and fixtures the unit tests share."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from certpilot.core.model import CatalogCert

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def wildcard_cert(fingerprint: str = "AA" * 32, now: datetime = NOW) -> CatalogCert:
    """A freshly issued `*.example.com` (CAS id 2001, 90 days left at `now`)."""
    return CatalogCert(
        cas_id=2001,
        identifier="2001-cn-hangzhou",
        name="new",
        common_name="*.example.com",
        sans=("*.example.com",),
        issuer="CA One",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=90),
        fingerprint_sha256=fingerprint,
    )


class FakeClock:
    """Time that moves only when the code under test sleeps: hand it `clock` (the
    monotonic time, from 0.0) and `sleep` (records each pause in `sleeps`)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
