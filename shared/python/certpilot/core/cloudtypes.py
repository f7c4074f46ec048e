"""What the cloud adapters hand the rest of certpilot: plain values, never SDK models.

The adapters (`certpilot.cloud.oss`, `.cdn`, `.cas`) build these from the services'
answers; discovery and the jobs work on them without importing any adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from certpilot.core.model import DeployedCert

# -- OSS ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketInfo:
    """A bucket and the region it lives in."""

    name: str
    region: str


@dataclass(frozen=True)
class CnameInfo:
    """A custom domain bound to a bucket, with the certificate OSS hosts for it."""

    domain: str
    status: str  # Enabled | Disabled
    certificate: DeployedCert | None
    cert_identifier: str | None  # the bound CertId (`<cas id>-<region>`), for PreviousCertId


# -- CDN ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """An origin of a CDN domain (`type` oss | domain | ipaddr | fc_domain)."""

    type: str
    content: str
    port: int | None = None
    priority: int | None = None


@dataclass(frozen=True)
class CdnDomainInfo:
    """A CDN domain as DescribeUserDomains lists it."""

    name: str
    status: str  # online | offline | configuring | configure_failed | checking | ...
    ssl_on: bool
    sources: tuple[Source, ...]
    cname: str | None = None


# -- CAS ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CasSummary:
    """A certificate as ListUserCertificateOrder (OrderType=CERT) lists it."""

    cas_id: int
    name: str
    common_name: str
    sans: tuple[str, ...]  # as listed (not normalised)
    issuer: str
    start: datetime | None  # day precision in the listing
    end: datetime | None
    expired: bool
    upload: bool
    status: str  # ISSUED | WILLEXPIRED | EXPIRED | REVOKED ...
    fingerprint: str | None = None  # upper hex, no colons
    sha256: str | None = None


@dataclass(frozen=True)
class ChainEntry:
    """One `CertChain[]` element of GetUserCertificateDetail."""

    common_name: str
    issuer_common_name: str
    not_before: datetime | None = None
    not_after: datetime | None = None


@dataclass(frozen=True)
class CasDetail:
    """GetUserCertificateDetail with CertFilter=true (no Cert, no Key)."""

    cas_id: int
    identifier: str  # CertIdentifier `<id>-<region>`
    name: str
    common_name: str
    sans: tuple[str, ...]
    issuer: str
    not_before: datetime | None
    not_after: datetime | None
    expired: bool
    fingerprint: str | None
    sha256: str | None
    algorithm: str | None
    chain: tuple[ChainEntry, ...] | None  # None when the service sent no CertChain
    # `Cert`: the public PEM chain, only from `get_certificate(with_pem=True)`; None when
    # not asked for or not sent. (Whether CAS's `Cert` carries the intermediates that
    # `CertChain` lists is UNCONFIRMED: `discovery.catalog.load_candidate` handles both.)
    cert_pem: str | None = None
    # A purchased certificate's order (links it to a ListUserCertificateOrder CPACK/BUY row).
    order_id: int | None = None
    instance_id: str | None = None


@dataclass(frozen=True)
class CasOrder:
    """A purchased certificate's order, as ListUserCertificateOrder (CPACK / BUY) lists
    it: no CertificateId; `OrderId` / `InstanceId` name it in the certificate's detail."""

    order_id: int | None
    instance_id: str | None
    status: str  # ISSUED | WILLEXPIRED | EXPIRED | REVOKED | PAYED ...
    domain: str
    end: datetime | None
