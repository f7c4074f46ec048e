"""Listing CDN domains: DescribeUserDomains, DescribeCdnDomainDetail and
DescribeCdnUserDomainsByFunc."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from emulator.cdn.domains import domain_status, lookup
from emulator.cdn.errors import invalid
from emulator.cdn.features import FEATURES_BY_ID
from emulator.cdn.formats import csv, iso
from emulator.core import Params, RpcContext, rpc
from emulator.state import CdnDomain, State

RESOURCE_GROUP_ID = "rg-acfmemulator0001"
SEARCH_TYPES = ("fuzzy_match", "pre_match", "suf_match", "full_match")

T = TypeVar("T")


def page_params(params: Params, max_size: int) -> tuple[int, int]:
    """PageNumber (default 1) and PageSize (1..`max_size`, default 20); raises InvalidParameter."""
    size = params.get_int("PageSize", 20, lo=1, hi=max_size) or 20
    number = params.get_int("PageNumber", 1, lo=1, hi=100_000) or 1
    return number, size


def page(items: Sequence[T], number: int, size: int) -> Sequence[T]:
    """Page `number` (from 1) of `items`, `size` a page."""
    start = (number - 1) * size
    return items[start : start + size]


def _sources(domain: CdnDomain, *, detail: bool = False) -> list[dict[str, Any]]:
    out = []
    for src in domain.sources:
        # Estates may give sources without the optional fields: API defaults apply.
        item: dict[str, Any] = {
            "Type": src.get("type", "oss"),
            "Content": src.get("content", ""),
            "Port": int(src.get("port", 80)),
            "Priority": str(src.get("priority", "20")),
            "Weight": str(src.get("weight", "10")),
        }
        if detail:
            item["Enabled"] = "online"
        out.append(item)
    return out


def _page_data(domain: CdnDomain, now: float, *, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "DomainName": domain.name,
        "Cname": domain.cname,
        "CdnType": domain.cdn_type,
        "DomainStatus": domain_status(domain, now),
        "SslProtocol": "on" if domain.ssl.latest() is not None else "off",
        "GmtCreated": iso(domain.created),
        "GmtModified": iso(domain.modified or domain.created),
        "Description": "",
        "ResourceGroupId": RESOURCE_GROUP_ID,
        "Sources": {"Source": _sources(domain)},
    }
    if full:
        data["Coverage"] = domain.scope
        data["Sandbox"] = "normal"
    return data


def _domains_page(
    found: Sequence[CdnDomain], number: int, size: int, now: float, *, full: bool
) -> dict[str, Any]:
    return {
        "Domains": {"PageData": [_page_data(d, now, full=full) for d in page(found, number, size)]},
        "TotalCount": len(found),
        "PageNumber": number,
        "PageSize": size,
    }


def _ordered(state: State) -> list[CdnDomain]:
    return sorted(state.cdn_domains.values(), key=lambda d: (d.created, d.name))


def _search_matches(name: str, needle: str, how: str) -> bool:
    if how == "full_match":
        return name == needle
    if how == "pre_match":
        return name.startswith(needle)
    if how == "suf_match":
        return name.endswith(needle)
    return needle in name


@rpc("cdn", "DescribeUserDomains", qps=100)
def describe_user_domains(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """List the account's domains, filtered and paged (PageSize 1..500)."""
    number, size = page_params(params, 500)
    needle = (params.get_str("DomainName") or "").strip().lower()
    how = params.get_str("DomainSearchType", "fuzzy_match") or "fuzzy_match"
    if how not in SEARCH_TYPES:
        raise invalid(
            "InvalidDomainSearchType.ValueNotSupported",
            f"DomainSearchType {how} is not supported.",
        )
    status = params.get_str("DomainStatus")
    cdn_types = csv(params.get_str("CdnType"))
    source = (params.get_str("Source") or "").lower()
    state = ctx.state
    with state.lock:
        now = state.now()
        found = [
            d
            for d in _ordered(state)
            if (not needle or _search_matches(d.name, needle, how))
            and (not cdn_types or d.cdn_type in cdn_types)
            and (not status or domain_status(d, now) == status)
            and (not source or any(source in s["content"].lower() for s in d.sources))
        ]
        return _domains_page(found, number, size, now, full=True)


@rpc("cdn", "DescribeCdnDomainDetail", qps=30)
def describe_cdn_domain_detail(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """The basic configuration of one domain (`GetDomainDetailModel`)."""
    state = ctx.state
    with state.lock:
        domain = lookup(state, params.required("DomainName"))
        now = state.now()
        https = domain.ssl.latest() is not None
        model = {
            "DomainName": domain.name,
            "Cname": domain.cname,
            "HttpsCname": domain.cname if https else "",
            "CdnType": domain.cdn_type,
            "DomainStatus": domain_status(domain, now),
            "Scope": domain.scope,
            "ServerCertificateStatus": "on" if https else "off",
            "GmtCreated": iso(domain.created),
            "GmtModified": iso(domain.modified or domain.created),
            "Description": "",
            "ResourceGroupId": RESOURCE_GROUP_ID,
            "SourceModels": {"SourceModel": _sources(domain, detail=True)},
        }
    return {"GetDomainDetailModel": model}


@rpc("cdn", "DescribeCdnUserDomainsByFunc", qps=100)
def describe_cdn_user_domains_by_func(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """The domains on which a feature (by FuncId) is configured, even switched off."""
    func_id = params.get_int("FuncId")
    if func_id is None:
        params.required("FuncId")
    number, size = page_params(params, 50)
    name = FEATURES_BY_ID.get(func_id or -1)
    state = ctx.state
    with state.lock:
        now = state.now()
        found = [
            d
            for d in _ordered(state)
            if name is not None and any(c.function_name == name for c in d.configs.latest())
        ]
        return _domains_page(found, number, size, now, full=False)
