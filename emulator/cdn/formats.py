"""How CDN answers write times and take comma-separated lists."""

from __future__ import annotations

from datetime import datetime, timezone

_ISO = "%Y-%m-%dT%H:%M:%SZ"


def iso(ts: float | datetime) -> str:
    """ISO 8601 in UTC, whole seconds (`2024-01-31T08:00:00Z`)."""
    moment = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, timezone.utc)
    return moment.astimezone(timezone.utc).strftime(_ISO)


def plain_time(moment: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS` in UTC (DescribeCdnHttpsDomainList)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def openssl_time(moment: datetime) -> str:
    """OpenSSL's `Jan 31 08:00:00 2024 GMT` (DescribeCdnDomainByCertificate)."""
    return moment.astimezone(timezone.utc).strftime("%b %d %H:%M:%S %Y GMT")


def csv(value: str | None) -> list[str]:
    """The non-empty, stripped items of a comma-separated parameter."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]
