"""Listing CDN domains: DescribeUserDomains, DescribeCdnDomainDetail and
DescribeCdnUserDomainsByFunc."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from emulator.cdn.domains import DOMAIN_STATUSES, domain_status, lookup, normalize_domain_name
from emulator.cdn.errors import invalid
from emulator.cdn.features import FEATURES_BY_ID
from emulator.cdn.formats import csv, iso
from emulator.core import Params, RpcContext, ServiceError, rpc
from emulator.state import CdnDomain, State

RESOURCE_GROUP_ID = "rg-acfmemulator0001"
SEARCH_TYPES = ("fuzzy_match", "pre_match", "suf_match", "full_match")
MAX_LISTED_NAMES = 50  # DomainName may list up to 50 names, comma-separated

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


def _search_matches(name: str, needles: Sequence[str], how: str) -> bool:
    if how == "full_match":
        return name in needles
    if how == "pre_match":
        return any(name.startswith(n) for n in needles)
    if how == "suf_match":
        return any(name.endswith(n) for n in needles)
    return any(n in name for n in needles)


def _exact(raw: str) -> str:
    """A listed name as the domains are stored (A-labels); as given when malformed."""
    try:
        return normalize_domain_name(raw)
    except ServiceError:
        return raw


def _needles(params: Params, how: str) -> list[str]:
    """The names DomainName lists (comma-separated, at most 50)."""
    raw = params.get_str("DomainName") or ""
    needles = [n.strip().lower() for n in raw.split(",") if n.strip()]
    if len(needles) > MAX_LISTED_NAMES:
        # CHOSEN: the code of this refusal (the limit itself is documented).
        raise invalid("InvalidParameter", "DomainName lists more than 50 domain names.")
    return [_exact(n) for n in needles] if how == "full_match" else needles


@rpc("cdn", "DescribeUserDomains", qps=100)
def describe_user_domains(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """List the account's domains, filtered and paged (PageSize 1..500).

    `DomainName` (up to 50 names, comma-separated) matches exactly unless
    `DomainSearchType` is `fuzzy_match`, `pre_match` or `suf_match` (the SDK: "if you
    specify the domain names to query but do not set DomainSearchType, the exact match
    mode is used").
    """
    number, size = page_params(params, 500)
    how = params.get_str("DomainSearchType", "full_match") or "full_match"
    if how not in SEARCH_TYPES:
        raise invalid(
            "InvalidDomainSearchType.ValueNotSupported",
            f"DomainSearchType {how} is not supported.",
        )
    needles = _needles(params, how)
    status = params.get_str("DomainStatus")
    if status is not None and status not in DOMAIN_STATUSES:
        # CHOSEN: the code of this refusal.
        raise invalid(
            "InvalidDomainStatus.ValueNotSupported", f"DomainStatus {status} is not supported."
        )
    cdn_types = csv(params.get_str("CdnType"))
    source = (params.get_str("Source") or "").lower()
    state = ctx.state
    with state.lock:
        now = state.now()
        found = [
            d
            for d in _ordered(state)
            if (not needles or _search_matches(d.name, needles, how))
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
