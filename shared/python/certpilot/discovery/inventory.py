"""Discover every domain of the account and where its certificate lives (DESIGN §4).

`discover()` lists with the calls that answer for many domains at once:

- OSS: ListBuckets (all pages), then ListCname per bucket (its hosted certificates);
- CDN: DescribeUserDomains (all pages, 500 a page), and DescribeCdnHttpsDomainList
  (all pages) for the certificates, only when some OSS-origin domain has HTTPS on.

None of these carries the CAS id of a CDN certificate; `with_cert_ids()` fills it in
for the domains a caller is about to change: by the certificate's name in the CAS
listing (no call), else DescribeDomainCertificateInfo (one call per domain).
`classify()` is the pure routing rule, testable without I/O.

Routing: a bucket domain (`<bucket>.oss-<region>.aliyuncs.com`) is recorded as
`Route.BUCKET_DOMAIN` and never modified; a CDN domain whose origin is an OSS bucket
routes to CDN even when it is also bound to a bucket as a CNAME (then a certificate
hosted on OSS for it is `oss_hosted`: the FAQ's wrong location); other OSS custom
domains route to OSS. Each record carries the host its live probes connect to
(`edge_host`): a CDN domain's CNAME target, an OSS custom domain's bucket endpoint.
CDN domains without an OSS origin are not certpilot's and are left out, and so are
OSS bindings of such domains (their traffic goes to that CDN origin, not to OSS).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

from certpilot.core.cloudtypes import BucketInfo, CasSummary, CdnDomainInfo, CnameInfo, Source
from certpilot.core.errors import NotFoundError, ThrottledError, TransientError
from certpilot.core.log import event, get_logger, with_context
from certpilot.core.model import DeployedCert, DomainRecord, Inventory, Location, Route
from certpilot.core.names import InvalidHostname, normalize_domain, normalize_hostname

if TYPE_CHECKING:
    from certpilot.cloud.clients import CloudClients
    from certpilot.core.settings import Settings

_log = get_logger(__name__)

# <bucket>.oss-<region>[-internal].aliyuncs.com, and the global acceleration endpoints.
_BUCKET_DOMAIN = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9-]{1,61}[a-z0-9])\."
    r"oss-(?P<region>[a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com$"
)
_ACCELERATE = ("oss-accelerate", "oss-accelerate-overseas")
MAX_WORKERS = 8


def parse_bucket_domain(name: str) -> tuple[str, str | None] | None:
    """(bucket, region) when `name` is an OSS bucket domain, else None.

    The region is None for the global acceleration endpoints.
    """
    match = _BUCKET_DOMAIN.match(name.strip().lower().rstrip("."))
    if match is None:
        return None
    region = match.group("region")
    return match.group("bucket"), (None if f"oss-{region}" in _ACCELERATE else region)


def oss_endpoint(bucket: str | None, region: str | None) -> str | None:
    """The bucket's public endpoint `<bucket>.oss-<region>.aliyuncs.com`, where an OSS
    custom domain's CNAME points: what its live probes connect to (with SNI = the
    domain). None when the bucket or its region is unknown."""
    if not bucket or not region:
        return None
    return f"{bucket}.oss-{region}.aliyuncs.com"


def cname_target(cname: str | None) -> str | None:
    """A CDN domain's CNAME target (DescribeUserDomains `Cname`) as a host to connect
    to, or None when there is none or it is not a valid hostname."""
    if not cname:
        return None
    try:
        return normalize_hostname(cname.strip().rstrip("."))
    except InvalidHostname:
        return None


def oss_origin(sources: Sequence[Source]) -> Source | None:
    """The primary OSS origin of a CDN domain (lowest Priority number), or None."""
    candidates = [s for s in sources if s.type == "oss" and s.content]
    if not candidates:
        return None
    return min(candidates, key=lambda s: s.priority if s.priority is not None else 1_000)


def _bucket_domain_record(name: str) -> DomainRecord | None:
    """The record of `name` when it is an OSS bucket domain (never modified), else None."""
    bucket_domain = parse_bucket_domain(name)
    if bucket_domain is None:
        return None
    return DomainRecord(name, Route.BUCKET_DOMAIN, bucket_domain[0], bucket_domain[1], None)


def _unknown_cdn_cert() -> DeployedCert:
    # HTTPS is on but the HTTPS listing has not caught up: the details are unknown.
    return DeployedCert(location=Location.CDN, cas_id=None, cert_type="", not_after=None)


def classify(
    buckets: Sequence[BucketInfo],
    cnames: Mapping[str, Sequence[CnameInfo]],
    cdn_domains: Sequence[CdnDomainInfo],
    https: Mapping[str, DeployedCert],
) -> Inventory:
    """Route every domain (pure; see the module docstring for the rules).

    `cnames` maps a bucket name to its ListCname result, `https` a CDN domain to the
    certificate DescribeCdnHttpsDomainList reports for it. Names that are not valid
    hostnames are dropped (and logged).
    """
    region_of = {b.name: b.region for b in buckets}
    # The HTTPS listing spells a wildcard as CDN does (`.example.org`): key it like records.
    https_of = {normalize_domain(key) or key: cert for key, cert in https.items()}
    bindings: dict[str, tuple[str, CnameInfo]] = {}
    for bucket in sorted(cnames):
        for info in cnames[bucket]:
            name = normalize_domain(info.domain)
            if name is None:
                event(_log, "skipping invalid custom domain", domain=info.domain[:80])
                continue
            bindings.setdefault(name, (bucket, info))

    records: dict[str, DomainRecord] = {}
    foreign_cdn: set[str] = set()
    for domain in cdn_domains:
        name = normalize_domain(domain.name)
        if name is None:
            event(_log, "skipping invalid CDN domain", domain=domain.name[:80])
            continue
        bucket_record = _bucket_domain_record(name)
        if bucket_record is not None:
            records[name] = bucket_record
            continue
        origin = oss_origin(domain.sources)
        if origin is None:
            foreign_cdn.add(name)
            continue
        binding = bindings.get(name)
        parsed = parse_bucket_domain(origin.content)
        origin_bucket = parsed[0] if parsed else (binding[0] if binding else None)
        region = (parsed[1] if parsed else None) or region_of.get(origin_bucket or "")
        deployed = None
        if domain.ssl_on:
            deployed = https_of.get(name) or _unknown_cdn_cert()
        records[name] = DomainRecord(
            name=name,
            route=Route.CDN,
            bucket=origin_bucket,
            region=region,
            deployed=deployed,
            oss_hosted=binding[1].certificate if binding else None,
            cdn_status=domain.status or None,
            cname_bound=binding is not None,
            api_name=domain.name,
            edge_host=cname_target(domain.cname),
        )

    for name, (bucket, info) in bindings.items():
        if name in records or name in foreign_cdn:
            continue
        bucket_record = _bucket_domain_record(name)
        if bucket_record is not None:
            records[name] = bucket_record
            continue
        records[name] = DomainRecord(
            name=name,
            route=Route.OSS,
            bucket=bucket,
            region=region_of.get(bucket),
            # With the bound CertId (an upload's too): PreviousCertId to replace it.
            deployed=(
                dataclasses.replace(info.certificate, identifier=info.cert_identifier)
                if info.certificate is not None
                else None
            ),
            cname_bound=True,
            api_name=info.domain,
            edge_host=oss_endpoint(bucket, region_of.get(bucket)),
        )

    return Inventory(
        domains=tuple(records[name] for name in sorted(records)),
        buckets=tuple(sorted(region_of)),
    )


def _list_cnames(clients: CloudClients, bucket: BucketInfo) -> list[CnameInfo]:
    try:
        return clients.oss.list_cnames(bucket.name, bucket.region)
    except NotFoundError as error:
        if error.code != "NoSuchBucket":
            raise
        # Deleted between ListBuckets and ListCname: nothing to route.
        event(_log, "bucket vanished during inventory", bucket=bucket.name)
        return []


def _cdn_listing(clients: CloudClients) -> tuple[list[CdnDomainInfo], dict[str, DeployedCert]]:
    domains = clients.cdn.list_domains()
    needs_certs = any(d.ssl_on and oss_origin(d.sources) is not None for d in domains)
    https = clients.cdn.https_certificates() if needs_certs else {}
    return domains, https


def discover(clients: CloudClients, settings: Settings) -> Inventory:
    """List and classify every domain of the account (see the module docstring).

    Buckets are read concurrently (at most `settings.concurrency` threads, each
    call within its action's QPS).

    Raises:
        CloudError: a listing failed after retries (AuthError, ThrottledError, ...).
    """
    workers = max(1, min(settings.concurrency, MAX_WORKERS))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inventory") as pool:
        cdn_future = pool.submit(with_context(_cdn_listing), clients)
        buckets = clients.oss.list_buckets()
        list_cnames = with_context(_list_cnames)
        futures: dict[str, Future[list[CnameInfo]]] = {
            b.name: pool.submit(list_cnames, clients, b) for b in buckets
        }
        cnames = {name: future.result() for name, future in futures.items()}
        cdn_domains, https = cdn_future.result()
    inventory = classify(buckets, cnames, cdn_domains, https)
    event(
        _log,
        "inventory",
        buckets=len(buckets),
        cdn_domains=len(cdn_domains),
        domains=len(inventory.domains),
    )
    return inventory


def _merge(listed: DeployedCert | None, info: DeployedCert) -> DeployedCert:
    if listed is None:
        return info
    return dataclasses.replace(
        info,
        not_after=info.not_after or listed.not_after,
        not_before=info.not_before or listed.not_before,
        fingerprint=info.fingerprint or listed.fingerprint,
        common_name=listed.common_name or info.common_name,
        name=info.name or listed.name,
        cert_type=info.cert_type or listed.cert_type,
    )


def _certificate_info(
    clients: CloudClients, record: DomainRecord
) -> tuple[bool, DeployedCert | None]:
    """(whether CDN knows the domain, its certificate)."""
    try:
        return True, clients.cdn.certificate_info(record.api_name or record.name)
    except NotFoundError as error:
        # Deleted since the listing (or a name CDN does not know): this domain only.
        event(
            _log,
            "cdn domain not found for its certificate",
            level=logging.WARNING,
            domain=record.name,
            code=error.code,
        )
        return False, None
    except (TransientError, ThrottledError) as error:
        # Still failing after retries: the certificate stays unknown (plan skips the
        # domain as current-expiry-unknown) rather than failing the whole rollout.
        event(
            _log,
            "cdn certificate unknown: lookup failed",
            level=logging.WARNING,
            domain=record.name,
            code=error.code,
        )
        return True, None


# UNCONFIRMED (chosen): for `CertType=cas` the CertName that DescribeCdnHttpsDomainList
# reports is the CAS certificate's name, which CAS keeps unique in an account
# (UploadUserCertificate answers NameRepeat), so the name finds the CAS id without a
# DescribeDomainCertificateInfo call per domain. Cross-checked with the expiry: the
# CAS listing gives a calendar day, in a zone the docs do not state, hence the slack.
# No match, several, another type or a disagreeing expiry: ask DescribeDomainCertificateInfo.
EXPIRY_SLACK = timedelta(hours=36)


def cas_by_name(certificates: Iterable[CasSummary]) -> dict[str, tuple[CasSummary, ...]]:
    """The listed CAS certificates by name (a name listed under two ids keeps both)."""
    found: dict[str, dict[int, CasSummary]] = {}
    for summary in certificates:
        if summary.name:
            found.setdefault(summary.name, {}).setdefault(summary.cas_id, summary)
    return {name: tuple(by_id.values()) for name, by_id in found.items()}


def match_cas_certificate(
    listed: DeployedCert | None, by_name: Mapping[str, Sequence[CasSummary]]
) -> CasSummary | None:
    """The CAS certificate a CDN domain serves, from its HTTPS listing entry (pure).

    None unless the entry is `CertType=cas`, exactly one listed CAS certificate has
    its CertName, and both expiry times are known and agree within `EXPIRY_SLACK`.
    """
    if listed is None or listed.cert_type != "cas" or not listed.name:
        return None
    candidates = by_name.get(listed.name, ())
    if len(candidates) != 1:
        return None
    [summary] = candidates
    if listed.not_after is None or summary.end is None:
        return None
    if abs(listed.not_after - summary.end) > EXPIRY_SLACK:
        return None
    return summary


def with_cert_ids(
    inventory: Inventory,
    clients: CloudClients,
    domains: Iterable[str],
    *,
    cas: Iterable[CasSummary] | None = None,
    regions: Mapping[int, str] | None = None,
) -> Inventory:
    """`inventory` with the CAS id (and region) of the CDN certificate of `domains` filled in.

    With `cas` (the CAS listing, e.g. `catalog.Listing.summaries`) a certificate is
    first matched by its CertName (see `match_cas_certificate`); its region is
    `regions[cas_id]` when given (the catalog's), else `settings.cas_region`. Every
    other named CDN-routed domain with HTTPS on costs one DescribeDomainCertificateInfo
    call (with the name as CDN spells it, `DomainRecord.api_name`); other names are
    ignored. DescribeUserDomains said HTTPS is on for every one of them, so when
    DescribeDomainCertificateInfo has no certificate (no entry, or off) the two disagree
    and the certificate stays unknown (the placeholder without expiry: plan skips the
    domain), never "no certificate", whose rollback would switch HTTPS off. A domain
    the lookup does not find (NotFoundError) keeps its listed record and is logged; one
    whose lookup still fails transiently after retries (TransientError, ThrottledError)
    gets the unknown-certificate placeholder too, and is logged.

    Raises:
        CloudError: a lookup failed after retries (AuthError and the like).
    """
    wanted = {n for n in (normalize_domain(d) for d in domains) if n is not None}
    # HTTPS off (DescribeUserDomains said so): no certificate whose id could be asked.
    targets = [
        r
        for r in inventory.domains
        if r.name in wanted and r.route is Route.CDN and r.deployed is not None
    ]
    if not targets:
        return inventory
    updates: dict[str, DeployedCert] = {}
    if cas is not None:
        by_name = cas_by_name(cas)
        region_of = regions or {}
        for record in targets:
            summary = match_cas_certificate(record.deployed, by_name)
            if summary is not None and record.deployed is not None:
                updates[record.name] = dataclasses.replace(
                    record.deployed,
                    cas_id=summary.cas_id,
                    region=region_of.get(summary.cas_id) or clients.settings.cas_region,
                )
    lookups = [r for r in targets if r.name not in updates]
    vanished = 0
    if lookups:
        workers = max(1, min(len(lookups), MAX_WORKERS))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cert-ids") as pool:
            infos = pool.map(with_context(_certificate_info), [clients] * len(lookups), lookups)
            for record, (known, info) in zip(lookups, infos, strict=True):
                if not known:
                    vanished += 1
                elif info is None:
                    updates[record.name] = _unknown_cdn_cert()
                else:
                    updates[record.name] = _merge(record.deployed, info)
    event(
        _log,
        "cdn certificate ids",
        by_name=len(targets) - len(lookups),
        looked_up=len(lookups),
        not_found=vanished,
    )
    updated = [
        dataclasses.replace(record, deployed=updates[record.name])
        if record.name in updates
        else record
        for record in inventory.domains
    ]
    return dataclasses.replace(inventory, domains=tuple(updated))
