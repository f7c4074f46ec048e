"""CDN (2018-05-10) adapter: domains, their certificates and their feature configs.

Listings answer for many domains per call (DescribeUserDomains 500 a page,
DescribeCdnHttpsDomainList); `certificate_info` (DescribeDomainCertificateInfo) is
the only one that carries the CAS id, and is one call per domain: use it for the
few domains about to change. Certificates are set by CAS reference (CertType=cas).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from certpilot.cloud._common import TeaAdapter, int_or_none, parse_time
from certpilot.core.certref import DEFAULT_REGION
from certpilot.core.cloudtypes import (  # the values this adapter hands out
    CdnConfig,
    CdnConfigRef,
    CdnDomainInfo,
    CdnFunction,
    Source,
)
from certpilot.core.errors import CloudError
from certpilot.core.model import DeployedCert, Location

SERVICE = "cdn"
USER_DOMAINS_PAGE = 500  # documented maximum
# DescribeCdnHttpsDomainList: maximum page size UNCONFIRMED for CDN (DCDN documents
# 500). Chosen: ask for 500; paging follows TotalCount and the server's own page
# size, so a server that clamps lower is still read completely.
HTTPS_LIST_PAGE = 500
NO_HTTPS_DOMAIN = "NoHttpsDomain"
BY_FUNC_PAGE = 50  # documented maximum
BATCH_DOMAINS = 50  # BatchSetCdnDomainConfig takes up to 50 DomainNames
TAG_RESOURCE_TYPE = "DOMAIN"  # the only ResourceType the CDN tag calls take
TAG_BATCH = 50  # TagResources / UntagResources take up to 50 ResourceIds
MAX_PAGES = 10_000

# FuncIds for DescribeCdnUserDomainsByFunc.
FUNC_HTTPS_FORCE = 44
FUNC_HSTS = 112
FUNC_FORWARD_SCHEME = 47
FUNC_HTTPS_OPTION = 78
FUNC_GZIP = 35


def feature_in_place(configs: Iterable[CdnConfig], wanted: CdnFunction) -> bool:
    """Whether feature `wanted` is configured as wanted: some config of the same
    `functionName` has every argument `wanted` sets, with the same value.

    Pure. Only the arguments the caller owns are compared: a read-back
    (DescribeCdnDomainConfigs) may carry arguments nobody sent (the service adds
    `scheme_origin_port` to `forward_scheme`, for one) or that someone else set, and
    those never make a feature look different. Values compare without surrounding
    blanks, `on`/`off` without case.
    """

    def same(a: str, b: str) -> bool:
        a, b = a.strip(), b.strip()
        return a == b or (a.lower() in ("on", "off") and a.lower() == b.lower())

    for config in configs:
        if config.function_name != wanted.name:
            continue
        if all(
            name in config.args and same(config.args[name], str(value))
            for name, value in wanted.args.items()
        ):
            return True
    return False


def _port(value: Any) -> int | None:
    return int_or_none(value)


def parse_user_domain(item: Mapping[str, Any]) -> CdnDomainInfo:
    """A `Domains.PageData[]` item of DescribeUserDomains, as wire JSON."""
    raw_sources = (item.get("Sources") or {}).get("Source") or []
    sources = tuple(
        Source(
            type=str(s.get("Type") or "").lower(),
            content=str(s.get("Content") or "").strip().lower(),
            port=_port(s.get("Port")),
            priority=int_or_none(s.get("Priority")),
        )
        for s in raw_sources
    )
    return CdnDomainInfo(
        name=str(item.get("DomainName") or "").strip().lower(),
        status=str(item.get("DomainStatus") or ""),
        ssl_on=str(item.get("SslProtocol") or "").lower() == "on",
        sources=sources,
        cname=item.get("Cname") or None,
    )


def parse_https_item(item: Mapping[str, Any]) -> DeployedCert:
    """A `CertInfos.CertInfo[]` item of DescribeCdnHttpsDomainList (no CAS id there)."""
    return DeployedCert(
        location=Location.CDN,
        cas_id=None,
        cert_type=str(item.get("CertType") or "").lower(),
        not_after=parse_time(item.get("CertExpireTime")),
        not_before=parse_time(item.get("CertStartTime")),
        common_name=item.get("CertCommonName") or None,
        name=item.get("CertName") or None,
    )


def parse_certificate_info(item: Mapping[str, Any]) -> DeployedCert | None:
    """A `CertInfos.CertInfo[]` item of DescribeDomainCertificateInfo; None if HTTPS is off."""
    if str(item.get("ServerCertificateStatus") or "").lower() == "off":
        return None
    return DeployedCert(
        location=Location.CDN,
        cas_id=int_or_none(item.get("CertId")),
        cert_type=str(item.get("CertType") or "").lower(),
        not_after=parse_time(item.get("CertExpireTime")),
        not_before=parse_time(item.get("CertStartTime")),
        common_name=item.get("CertDomainName") or None,
        name=item.get("CertName") or None,
        region=item.get("CertRegion") or DEFAULT_REGION,
    )


def _same_domain(a: str, b: str) -> bool:
    """Equal names, a wildcard spelt `*.example.org` or `.example.org` alike."""

    def key(name: str) -> str:
        return name.strip().lower().rstrip(".").removeprefix("*")

    return key(a) == key(b)


def _page_loop(
    fetch: Callable[[int], tuple[list[Any], int | None]],
) -> list[Any]:
    """Read pages 1, 2, ... until TotalCount items are read or a page comes back empty."""
    items: list[Any] = []
    for page in range(1, MAX_PAGES + 1):
        chunk, total = fetch(page)
        items.extend(chunk)
        if not chunk or total is None or len(items) >= total:
            break
    return items


class CdnAdapter(TeaAdapter):
    """CDN operations certpilot needs. All raise CloudError subclasses."""

    def list_domains(self) -> list[CdnDomainInfo]:
        """Every CDN domain of the account (DescribeUserDomains, all pages, 500 a page)."""
        from alibabacloud_cdn20180510 import models

        def fetch(page: int) -> tuple[list[Any], int | None]:
            body = self._call(
                "DescribeUserDomains",
                "describe_user_domains_with_options",
                models.DescribeUserDomainsRequest(page_number=page, page_size=USER_DOMAINS_PAGE),
            )
            data = (body.get("Domains") or {}).get("PageData") or []
            return [parse_user_domain(d) for d in data], int_or_none(body.get("TotalCount"))

        return _page_loop(fetch)

    def https_certificates(self) -> dict[str, DeployedCert]:
        """The certificate of every HTTPS-enabled domain (DescribeCdnHttpsDomainList).

        The listing carries no CAS id: `cas_id` is None (see `certificate_info`).
        """
        from alibabacloud_cdn20180510 import models

        def fetch(page: int) -> tuple[list[Any], int | None]:
            body = self._call(
                "DescribeCdnHttpsDomainList",
                "describe_cdn_https_domain_list_with_options",
                models.DescribeCdnHttpsDomainListRequest(
                    page_number=page, page_size=HTTPS_LIST_PAGE
                ),
            )
            data = (body.get("CertInfos") or {}).get("CertInfo") or []
            return list(data), int_or_none(body.get("TotalCount"))

        certificates: dict[str, DeployedCert] = {}
        try:
            items = _page_loop(fetch)
        except CloudError as error:
            # CDN answers an account without any HTTPS domain with an error, not a list.
            if error.code == NO_HTTPS_DOMAIN:
                return certificates
            raise
        for item in items:
            name = str(item.get("DomainName") or "").strip().lower()
            if name:
                certificates[name] = parse_https_item(item)
        return certificates

    def certificate_info(self, domain: str) -> DeployedCert | None:
        """The certificate of one domain with its CAS id (DescribeDomainCertificateInfo).

        None when the domain serves no certificate. Raises NotFoundError for an
        unknown domain.
        """
        from alibabacloud_cdn20180510 import models

        body = self._call(
            "DescribeDomainCertificateInfo",
            "describe_domain_certificate_info_with_options",
            models.DescribeDomainCertificateInfoRequest(domain_name=domain),
        )
        infos = (body.get("CertInfos") or {}).get("CertInfo") or []
        for item in infos:
            name = str(item.get("DomainName") or domain)
            if _same_domain(name, domain):
                return parse_certificate_info(item)
        return None

    def set_certificate(self, domain: str, cas_id: int, region: str) -> None:
        """Serve CAS certificate `cas_id` on `domain` and turn HTTPS on
        (SetCdnDomainSSLCertificate CertType=cas SSLProtocol=on)."""
        from alibabacloud_cdn20180510 import models

        self._call(
            "SetCdnDomainSSLCertificate",
            "set_cdn_domain_sslcertificate_with_options",
            models.SetCdnDomainSSLCertificateRequest(
                domain_name=domain,
                sslprotocol="on",
                cert_type="cas",
                cert_id=int(cas_id),
                cert_region=region,
            ),
        )

    def disable_certificate(self, domain: str) -> None:
        """Turn HTTPS off on `domain` (SetCdnDomainSSLCertificate SSLProtocol=off)."""
        from alibabacloud_cdn20180510 import models

        self._call(
            "SetCdnDomainSSLCertificate",
            "set_cdn_domain_sslcertificate_with_options",
            models.SetCdnDomainSSLCertificateRequest(domain_name=domain, sslprotocol="off"),
        )

    def domain_configs(self, domain: str, function_names: Iterable[str]) -> list[CdnConfig]:
        """The configured features `function_names` of `domain` (DescribeCdnDomainConfigs)."""
        from alibabacloud_cdn20180510 import models

        names = ",".join(function_names)
        body = self._call(
            "DescribeCdnDomainConfigs",
            "describe_cdn_domain_configs_with_options",
            models.DescribeCdnDomainConfigsRequest(domain_name=domain, function_names=names),
        )
        configs = []
        for item in (body.get("DomainConfigs") or {}).get("DomainConfig") or []:
            args = {
                str(a.get("ArgName")): str(
                    a.get("ArgValue") if a.get("ArgValue") is not None else ""
                )
                for a in (item.get("FunctionArgs") or {}).get("FunctionArg") or []
            }
            configs.append(
                CdnConfig(
                    config_id=str(item.get("ConfigId") or ""),
                    function_name=str(item.get("FunctionName") or ""),
                    status=str(item.get("Status") or ""),
                    args=args,
                    parent_id=str(item["ParentId"]) if item.get("ParentId") else None,
                )
            )
        return configs

    def set_configs(
        self, domains: Sequence[str], functions: Sequence[CdnFunction]
    ) -> list[CdnConfigRef]:
        """Configure `functions` on every domain (BatchSetCdnDomainConfig, 50 a call)."""
        from alibabacloud_cdn20180510 import models

        wire = json.dumps([f.to_wire() for f in functions], separators=(",", ":"))
        refs: list[CdnConfigRef] = []
        for start in range(0, len(domains), BATCH_DOMAINS):
            chunk = ",".join(domains[start : start + BATCH_DOMAINS])
            body = self._call(
                "BatchSetCdnDomainConfig",
                "batch_set_cdn_domain_config_with_options",
                models.BatchSetCdnDomainConfigRequest(domain_names=chunk, functions=wire),
            )
            for item in (body.get("DomainConfigList") or {}).get("DomainConfigModel") or []:
                refs.append(
                    CdnConfigRef(
                        domain=str(item.get("DomainName") or ""),
                        function_name=str(item.get("FunctionName") or ""),
                        config_id=str(item.get("ConfigId") or ""),
                    )
                )
        return refs

    def delete_config(self, domain: str, config_id: str | int) -> None:
        """Delete one configured feature (DeleteSpecificConfig)."""
        from alibabacloud_cdn20180510 import models

        self._call(
            "DeleteSpecificConfig",
            "delete_specific_config_with_options",
            models.DeleteSpecificConfigRequest(domain_name=domain, config_id=str(config_id)),
        )

    def domains_by_function(self, func_id: int) -> set[str]:
        """Every domain that has feature `func_id` configured (DescribeCdnUserDomainsByFunc)."""
        from alibabacloud_cdn20180510 import models

        def fetch(page: int) -> tuple[list[Any], int | None]:
            body = self._call(
                "DescribeCdnUserDomainsByFunc",
                "describe_cdn_user_domains_by_func_with_options",
                models.DescribeCdnUserDomainsByFuncRequest(
                    func_id=func_id, page_number=page, page_size=BY_FUNC_PAGE
                ),
            )
            data = (body.get("Domains") or {}).get("PageData") or []
            return list(data), int_or_none(body.get("TotalCount"))

        return {
            str(d.get("DomainName") or "").strip().lower()
            for d in _page_loop(fetch)
            if d.get("DomainName")
        }

    def tag_domains(self, domains: Sequence[str], tags: Mapping[str, str]) -> None:
        """Attach (or overwrite) `tags` on every domain (TagResources, 50 a call)."""
        from alibabacloud_cdn20180510 import models

        wire = [models.TagResourcesRequestTag(key=k, value=v) for k, v in tags.items()]
        for start in range(0, len(domains), TAG_BATCH):
            self._call(
                "TagResources",
                "tag_resources_with_options",
                models.TagResourcesRequest(
                    resource_id=list(domains[start : start + TAG_BATCH]),
                    resource_type=TAG_RESOURCE_TYPE,
                    tag=wire,
                ),
            )

    def untag_domains(self, domains: Sequence[str], keys: Sequence[str]) -> None:
        """Remove the tags `keys` from every domain (UntagResources); absent ones are fine."""
        from alibabacloud_cdn20180510 import models

        for start in range(0, len(domains), TAG_BATCH):
            self._call(
                "UntagResources",
                "untag_resources_with_options",
                models.UntagResourcesRequest(
                    resource_id=list(domains[start : start + TAG_BATCH]),
                    resource_type=TAG_RESOURCE_TYPE,
                    tag_key=list(keys),
                ),
            )

    def tagged_domains(self, key: str) -> dict[str, str]:
        """Every domain carrying tag `key`, with its value (ListTagResources, all pages)."""
        from alibabacloud_cdn20180510 import models

        found: dict[str, str] = {}
        token: str | None = None
        for _ in range(MAX_PAGES):
            body = self._call(
                "ListTagResources",
                "list_tag_resources_with_options",
                models.ListTagResourcesRequest(
                    resource_type=TAG_RESOURCE_TYPE,
                    tag=[models.ListTagResourcesRequestTag(key=key)],
                    next_token=token,
                ),
            )
            for item in (body.get("TagResources") or {}).get("TagResource") or []:
                if str(item.get("TagKey") or "") == key and item.get("ResourceId"):
                    found[str(item["ResourceId"]).strip().lower()] = str(item.get("TagValue") or "")
            token = body.get("NextToken") or None
            if not token:
                break
        return found
