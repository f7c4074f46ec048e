"""Reporting CDN certificates: DescribeDomainCertificateInfo, DescribeCdnHttpsDomainList,
DescribeCdnDomainByCertificate."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from emulator import certinfo
from emulator.cdn.cert_parsing import (
    ParsedCert,
    bound_leaf,
    decode_ssl_pub,
    names_cover,
    parse_public,
)
from emulator.cdn.domains import lookup
from emulator.cdn.errors import invalid
from emulator.cdn.formats import iso, openssl_time, plain_time
from emulator.cdn.listing import page, page_params
from emulator.core import Params, RpcContext, rpc

EXPIRE_SOON = timedelta(days=30)


@rpc("cdn", "DescribeDomainCertificateInfo", qps=100)
def describe_domain_certificate_info(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """The certificate configured on one domain; `checking` until it reached the edge."""
    state = ctx.state
    with state.lock:
        domain = lookup(state, params.required("DomainName"))
        now = state.now()
        bound = domain.ssl.latest()
        status = "success" if domain.ssl.settled(now) else "checking"
    info: dict[str, Any] = {
        "DomainName": domain.name,
        "ServerCertificateStatus": "off",
        "Status": status,
        "DomainCnameStatus": "ok",
    }
    if bound is not None:
        parsed = bound_leaf(bound.cert_pem, bound.key_pem)
        info.update(
            {
                "ServerCertificateStatus": "on",
                "CertId": str(bound.cert_id) if bound.cert_id is not None else "",
                "CertName": bound.cert_name,
                "CertType": bound.cert_type,
                "CertRegion": bound.cert_region,
                "CertDomainName": parsed.common_name,
                "CertOrg": certinfo.issuer_name(parsed.leaf),
                "CertLife": parsed.life,
                "CertStartTime": iso(parsed.not_before),
                "CertExpireTime": iso(parsed.not_after),
                "CertUpdateTime": iso(bound.bound_at),
                "ServerCertificate": bound.cert_pem,
            }
        )
    return {"CertInfos": {"CertInfo": [info]}}


def _cert_status(parsed: ParsedCert, domain: str, now: float) -> str:
    moment = datetime.fromtimestamp(now, timezone.utc)
    if parsed.not_after <= moment:
        return "expired"
    if not names_cover(parsed.names, domain):
        return "mismatch"
    if parsed.not_after - moment <= EXPIRE_SOON:
        return "expire_soon"
    return "ok"


@rpc("cdn", "DescribeCdnHttpsDomainList", qps=100)
def describe_cdn_https_domain_list(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Every HTTPS domain with its certificate, paged (PageSize 1..500, CHOSEN)."""
    number, size = page_params(params, 500)
    keyword = (params.get_str("Keyword") or "").lower()
    state = ctx.state
    with state.lock:
        now = state.now()
        https = [
            (d, bound)
            for d in sorted(state.cdn_domains.values(), key=lambda d: d.name)
            if (bound := d.ssl.latest()) is not None
        ]
    if not https:
        raise invalid("NoHttpsDomain", "Your account doesn't have https domain.")
    found = [(d, b) for d, b in https if keyword in d.name or keyword in b.cert_name.lower()]
    infos = []
    for domain, bound in page(found, number, size):
        parsed = bound_leaf(bound.cert_pem, bound.key_pem)
        infos.append(
            {
                "DomainName": domain.name,
                "CertName": bound.cert_name,
                "CertCommonName": parsed.common_name,
                "CertType": bound.cert_type,
                "CertStatus": _cert_status(parsed, domain.name, now),
                "CertStartTime": plain_time(parsed.not_before),
                "CertExpireTime": plain_time(parsed.not_after),
                "CertUpdateTime": plain_time(datetime.fromtimestamp(bound.bound_at, timezone.utc)),
            }
        )
    return {"CertInfos": {"CertInfo": infos}, "TotalCount": len(found)}


@rpc("cdn", "DescribeCdnDomainByCertificate", qps=100)
def describe_cdn_domain_by_certificate(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """The account's domains that a certificate (SSLPub) covers.

    `SSLStatus=true|false` keeps only domains with HTTPS on|off. `Exact` is accepted and
    ignored (UNCONFIRMED). `DomainNames` lists the certificate's DNS names and
    `DomainList` the matching accelerated domains, as the SDK docs describe them.
    """
    parsed = parse_public(decode_ssl_pub(params.required("SSLPub")))
    ssl_status = params.get_str("SSLStatus")
    want_on = None if ssl_status is None else ssl_status.lower() == "true"
    state = ctx.state
    with state.lock:
        now = state.now()
        matched = [
            d.name
            for d in sorted(state.cdn_domains.values(), key=lambda d: d.name)
            if names_cover(parsed.names, d.name)
            and (want_on is None or (d.ssl.latest() is not None) == want_on)
        ]
    expired = parsed.not_after <= datetime.fromtimestamp(now, timezone.utc)
    info = {
        "DomainNames": ",".join(parsed.names),
        "DomainList": ",".join(matched),
        "CertSubjectCommonName": parsed.common_name,
        "CertType": parsed.key_type,
        "CertStartTime": openssl_time(parsed.not_before),
        "CertExpireTime": openssl_time(parsed.not_after),
        "CertExpired": "yes" if expired else "no",
        "CertCaIsLegacy": "no",
        "Issuer": parsed.issuer,
    }
    return {"CertInfos": {"CertInfo": [info]}}
