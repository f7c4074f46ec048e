"""What the cloud adapters hand the rest of certpilot: plain values, never SDK models.

The adapters (`certpilot.cloud.oss`, `.cdn`, `.cas`) build these from the services'
answers; discovery and the jobs work on them without importing any adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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


@dataclass(frozen=True)
class CdnFunction:
    """One feature to configure: `functionName` and its arguments."""

    name: str
    args: Mapping[str, str] = field(default_factory=dict)
    # The existing config to change in place (keeps its ConfigId); None: set it anew.
    config_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The feature as BatchSetCdnDomainConfig's `Functions` JSON lists it."""
        wire: dict[str, Any] = {
            "functionName": self.name,
            "functionArgs": [{"argName": k, "argValue": str(v)} for k, v in self.args.items()],
        }
        if self.config_id:
            wire["configId"] = int(self.config_id)
        return wire


@dataclass(frozen=True)
class CdnConfig:
    """A configured feature of a domain (DescribeCdnDomainConfigs)."""

    config_id: str
    function_name: str
    status: str  # success | testing | failed | configuring
    args: Mapping[str, str]
    parent_id: str | None = None

    def arg(self, name: str, default: str = "") -> str:
        """The value of argument `name`, or `default` when it is not configured."""
        return self.args.get(name, default)


@dataclass(frozen=True)
class CdnConfigRef:
    """What BatchSetCdnDomainConfig reports for each domain and feature it set."""

    domain: str
    function_name: str
    config_id: str


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
