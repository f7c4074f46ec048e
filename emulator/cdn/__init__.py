"""Emulated Alibaba Cloud CDN 2018-05-10 RPC actions (registered with emulator.core).

Importing this package registers every action; its modules:

- `domains`: names, origins, status; AddCdnDomain, Stop/Start/DeleteCdnDomain
- `listing`: DescribeUserDomains, DescribeCdnDomainDetail, DescribeCdnUserDomainsByFunc
- `certificates`: SetCdnDomainSSLCertificate, BatchSetCdnDomainServerCertificate
- `certificate_info`: DescribeDomainCertificateInfo, DescribeCdnHttpsDomainList,
  DescribeCdnDomainByCertificate
- `configs`: BatchSetCdnDomainConfig, DescribeCdnDomainConfigs, DeleteSpecificConfig
- `tags`: TagResources, UntagResources, ListTagResources, DescribeTagResources
- `features`: the `FEATURES` table and argument checks; `cert_parsing`: SSLPub / SSLPri
  and name coverage; `errors`, `formats`: shared answers and wire formats

Responses carry exactly the field names, nesting and JSON types that the models of
`alibabacloud_cdn20180510` parse (`Domains.PageData[]`, `Port` a number, `Priority`
a string, `ConfigId` a number in BatchSetCdnDomainConfig and a string in
DescribeCdnDomainConfigs, ...). Certificates and feature configs reach the edge after
`State.propagation_delay` through `CdnDomain.ssl` / `CdnDomain.configs`; the control
plane reports a domain as `configuring` (and its config or certificate as
`configuring` / `checking`) until then.

Behaviours the public docs leave open are marked CHOSEN:

- CHOSEN: a write to a domain whose own status change (AddCdnDomain, Start, Stop) has not
  settled yet answers `ServiceBusy` 403 (the docs ask callers to wait for `online`);
  certificate and config changes in flight do not block further writes.
- CHOSEN: `https_force` vs `http_force` (and `referer_white_list_set` vs
  `referer_black_list_set`) answer `FunctionMutex` 400 while the other one exists.
- CHOSEN: re-setting a single-instance feature without its `configId` replaces it under a
  new ConfigId; passing the existing `configId` keeps it.
- CHOSEN: DescribeCdnHttpsDomainList PageSize 1..500 (as its DCDN sibling); times there are
  `YYYY-MM-DD HH:MM:SS` in UTC; `expire_soon` means within 30 days.
- CHOSEN: an unknown ConfigId in DeleteSpecificConfig is `InvalidConfigId.NotFound` 404.
- CHOSEN: a certificate uploaded through SetCdnDomainSSLCertificate (CertType=upload) is
  not copied into CAS.
"""

from __future__ import annotations

from emulator.cdn import admin_routes  # noqa: F401  (registers the admin routes)
from emulator.cdn.cert_parsing import (
    ParsedCert,
    bound_leaf,
    names_cover,
    parse_public,
    parse_upload,
)
from emulator.cdn.certificate_info import (
    EXPIRE_SOON,
    describe_cdn_domain_by_certificate,
    describe_cdn_https_domain_list,
    describe_domain_certificate_info,
)
from emulator.cdn.certificates import (
    CERT_REGIONS,
    MAX_BATCH_CERT_DOMAINS,
    batch_set_cdn_domain_server_certificate,
    set_cdn_domain_ssl_certificate,
)
from emulator.cdn.configs import (
    MAX_BATCH_CONFIG_DOMAINS,
    batch_set_cdn_domain_config,
    delete_specific_config,
    describe_cdn_domain_configs,
)
from emulator.cdn.domains import (
    CDN_TYPES,
    CNAME_SUFFIX,
    DOMAIN_STATUSES,
    SCOPES,
    SOURCE_TYPES,
    add_cdn_domain,
    delete_cdn_domain,
    domain_status,
    new_domain,
    normalize_domain_name,
    start_cdn_domain,
    stop_cdn_domain,
)
from emulator.cdn.features import FEATURES, FEATURES_BY_ID, MUTEX, Feature
from emulator.cdn.listing import (
    RESOURCE_GROUP_ID,
    SEARCH_TYPES,
    describe_cdn_domain_detail,
    describe_cdn_user_domains_by_func,
    describe_user_domains,
)
from emulator.cdn.tags import (
    describe_tag_resources,
    list_tag_resources,
    tag_resources,
    untag_resources,
)

__all__ = [
    "CDN_TYPES",
    "CERT_REGIONS",
    "CNAME_SUFFIX",
    "DOMAIN_STATUSES",
    "EXPIRE_SOON",
    "FEATURES",
    "FEATURES_BY_ID",
    "MAX_BATCH_CERT_DOMAINS",
    "MAX_BATCH_CONFIG_DOMAINS",
    "MUTEX",
    "RESOURCE_GROUP_ID",
    "SCOPES",
    "SEARCH_TYPES",
    "SOURCE_TYPES",
    "Feature",
    "ParsedCert",
    "add_cdn_domain",
    "batch_set_cdn_domain_config",
    "batch_set_cdn_domain_server_certificate",
    "bound_leaf",
    "delete_cdn_domain",
    "delete_specific_config",
    "describe_cdn_domain_by_certificate",
    "describe_cdn_domain_configs",
    "describe_cdn_domain_detail",
    "describe_cdn_https_domain_list",
    "describe_cdn_user_domains_by_func",
    "describe_domain_certificate_info",
    "describe_tag_resources",
    "describe_user_domains",
    "domain_status",
    "list_tag_resources",
    "names_cover",
    "new_domain",
    "normalize_domain_name",
    "parse_public",
    "parse_upload",
    "set_cdn_domain_ssl_certificate",
    "start_cdn_domain",
    "stop_cdn_domain",
    "tag_resources",
    "untag_resources",
]
