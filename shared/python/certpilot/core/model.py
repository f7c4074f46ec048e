"""The typed, read-only picture of an account that planning works on.

Inventory (`certpilot.discovery.inventory`) and the certificate catalog
(`certpilot.discovery.catalog`) build these from the cloud;
`certpilot.jobs.deploy_cert.plan` decides on them without any I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from certpilot.core.certref import DEFAULT_REGION
from certpilot.core.findings import Code, Finding


class Route(str, enum.Enum):
    """Where a domain's certificate lives (DESIGN §4)."""

    BUCKET_DOMAIN = "bucket-domain"  # <bucket>.oss-<region>.aliyuncs.com: Alibaba manages it
    OSS = "oss"  # OSS custom domain without CDN: OSS certificate hosting (PutCname)
    CDN = "cdn"  # CDN-accelerated domain with an OSS origin: SetCdnDomainSSLCertificate


class Location(str, enum.Enum):
    """Where a deployed certificate was found."""

    OSS = "oss"
    CDN = "cdn"


@dataclass(frozen=True)
class DeployedCert:
    """The certificate a domain has now, as the control plane reports it.

    Fields the listing calls do not carry are None (e.g. `cas_id` for a CDN
    certificate seen only through DescribeCdnHttpsDomainList).
    """

    location: Location
    cas_id: int | None  # CAS CertificateId when bound by reference
    cert_type: str  # OSS: CAS | Upload; CDN: cas | upload | free
    not_after: datetime | None
    not_before: datetime | None = None
    fingerprint: str | None = None  # hex as the service reports it (normalised upper, no colons)
    common_name: str | None = None
    name: str | None = None  # CDN CertName / CAS name
    region: str = DEFAULT_REGION
    # The bound certificate's id as the service reports it (OSS CertId `<id>-<region>`),
    # also for an upload that CAS does not hold (then `cas_id` is None): PutCname's
    # PreviousCertId. None when unknown (CDN listings).
    identifier: str | None = None


@dataclass(frozen=True)
class DomainRecord:
    """One domain of the account, classified and routed."""

    name: str  # normalised A-label form
    route: Route
    bucket: str | None  # the OSS bucket (the origin bucket for a CDN domain)
    region: str | None  # the bucket's region
    deployed: DeployedCert | None  # where the traffic goes (CDN for CDN domains)
    # A certificate hosted on OSS for a domain whose traffic goes through CDN
    # (FAQ "wrong location"): reported, never counted as HTTPS.
    oss_hosted: DeployedCert | None = None
    cdn_status: str | None = None  # online | configuring | offline | ...
    cname_bound: bool = False  # also bound to the bucket as an OSS custom domain
    # The name as the service lists it (CDN spells a wildcard `.example.org`), sent back
    # in every call about this domain; None: same as `name`.
    api_name: str | None = None
    # The host live probes connect to when no CERTPILOT_EDGE_HTTPS is set (SNI stays the
    # domain): a CDN domain's CNAME target (DescribeUserDomains `Cname`), an OSS custom
    # domain's bucket endpoint `<bucket>.oss-<region>.aliyuncs.com`; None: the domain.
    edge_host: str | None = None


@dataclass(frozen=True)
class Inventory:
    """Every domain of the account that certpilot knows about."""

    domains: tuple[DomainRecord, ...]
    buckets: tuple[str, ...] = ()

    def get(self, name: str) -> DomainRecord | None:
        """The record named `name` (normalised form), or None."""
        for record in self.domains:
            if record.name == name:
                return record
        return None


@dataclass(frozen=True)
class CatalogCert:
    """A certificate held by CAS, parsed and validated (never its private key)."""

    cas_id: int
    identifier: str  # CertIdentifier `<id>-<region>`, what OSS PutCname takes
    name: str
    common_name: str
    sans: tuple[str, ...]  # normalised A-label DNS names
    issuer: str  # the issuing CA (organisation, else common name): backups come from another
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str  # upper hex, no colons
    region: str = DEFAULT_REGION
    revoked: bool = False
    # Validation of the certificate itself (dates are re-judged by plan with its `now`):
    chain_complete: bool = True
    problems: tuple[Code, ...] = field(default=())  # finding codes such as CHAIN_INCOMPLETE
    # The findings behind `problems` with their messages, when the certificate was judged
    # from its PEM chain with signatures (a candidate's pre-write check); else empty.
    findings: tuple[Finding, ...] = field(default=())
    signatures_checked: bool = False

    def valid_at(self, now: datetime) -> bool:
        """True when not revoked and `now` is inside its validity (RFC 5280: both
        `notBefore` and `notAfter` are inclusive; expired only when now > not_after)."""
        return self.not_before <= now <= self.not_after and not self.revoked


@dataclass(frozen=True)
class Catalog:
    """The certificates CAS holds."""

    certificates: tuple[CatalogCert, ...]

    def by_id(self, cas_id: int) -> CatalogCert | None:
        """The certificate with CAS id `cas_id`, or None."""
        for cert in self.certificates:
            if cert.cas_id == cas_id:
                return cert
        return None


@dataclass(frozen=True)
class EdgeObservation:
    """What a live handshake saw a domain's edge serve, and what browsers reject in it.

    Planning counts `problem` against the configured certificate only when the served
    fingerprint is that certificate's (a stale edge or DNS pointing elsewhere serves
    another one), and reports a served fingerprint other than the configured one.
    """

    problem: Code | None  # the finding a browser would reject it for (None: accepted)
    sha256: str | None  # of the served leaf, upper hex, no colons
    sha1: str | None = None  # of the served leaf (OSS reports SHA-1 fingerprints)
