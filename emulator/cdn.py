"""Emulated Alibaba Cloud CDN 2018-05-10 RPC actions (registered with emulator.core).

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

import base64
import binascii
import functools
import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from emulator import certinfo
from emulator.core import Params, RpcContext, ServiceError, rpc
from emulator.propagation import Propagating
from emulator.state import BoundCertificate, CdnConfig, CdnDomain, State

CNAME_SUFFIX = "w.kunlunca.com"
RESOURCE_GROUP_ID = "rg-acfmemulator0001"
CDN_TYPES = ("web", "download", "video")
SCOPES = ("domestic", "overseas", "global")
SOURCE_TYPES = ("ipaddr", "domain", "oss", "fc_domain")
CERT_REGIONS = ("cn-hangzhou", "ap-southeast-1")
SEARCH_TYPES = ("fuzzy_match", "pre_match", "suf_match", "full_match")
MAX_BATCH_CERT_DOMAINS = 10
MAX_BATCH_CONFIG_DOMAINS = 50
EXPIRE_SOON = timedelta(days=30)

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ISO = "%Y-%m-%dT%H:%M:%SZ"


# --------------------------------------------------------------------------- errors


def _not_found(domain: str) -> ServiceError:
    return ServiceError(
        404, "InvalidDomain.NotFound", f"The domain provided does not belong to you: {domain}."
    )


def _busy() -> ServiceError:
    return ServiceError(
        403, "ServiceBusy", "The specified Domain is configuring, please retry later."
    )


def _invalid(code: str, message: str) -> ServiceError:
    return ServiceError(400, code, message)


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class Feature:
    """A configurable CDN feature (`functionName`) and the arguments it accepts."""

    func_id: int | None
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    multi: bool = False  # several configs of this feature may coexist on one domain


FEATURES: dict[str, Feature] = {
    "https_force": Feature(44, ("enable",), ("https_rewrite",)),
    "http_force": Feature(45, ("enable",), ("http_rewrite",)),
    "HSTS": Feature(112, ("enabled", "https_hsts_max_age"), ("https_hsts_include_subdomains",)),
    "https_option": Feature(78, (), ("http2", "ocsp_stapling")),
    "https_tls_version": Feature(
        110, (), ("tls10", "tls11", "tls12", "tls13", "ciphersuitegroup", "ciphersuite")
    ),
    "gzip": Feature(35, ("enable",)),
    "brotli": Feature(97, ("enable",)),
    "forward_scheme": Feature(47, ("enable",), ("scheme_origin", "scheme_origin_port")),
    "set_req_host_header": Feature(18, ("domain_name",)),
    "https_origin_sni": Feature(114, ("enabled", "https_origin_sni")),
    "ipv6": Feature(194, ("switch",), ("region",)),
    "referer_white_list_set": Feature(
        1, ("refer_domain_allow_list",), ("allow_empty", "redirect_url", "disable_ast")
    ),
    "referer_black_list_set": Feature(
        5, ("refer_domain_deny_list",), ("allow_empty", "redirect_url", "disable_ast")
    ),
    "set_resp_header": Feature(
        None,
        ("key", "value"),
        ("header_operation_type", "duplicate", "header_source", "header_destination", "match_all"),
        multi=True,
    ),
}
FEATURES_BY_ID = {f.func_id: name for name, f in FEATURES.items() if f.func_id is not None}
MUTEX = {
    "https_force": "http_force",
    "http_force": "https_force",
    "referer_white_list_set": "referer_black_list_set",
    "referer_black_list_set": "referer_white_list_set",
}
_ON_OFF_ARGS = {
    "enable",
    "enabled",
    "http2",
    "ocsp_stapling",
    "tls10",
    "tls11",
    "tls12",
    "tls13",
    "https_hsts_include_subdomains",
    "switch",
    "allow_empty",
    "disable_ast",
}
_CHOICES = {
    "https_rewrite": ("301", "308"),
    "http_rewrite": ("301", "308"),
    "scheme_origin": ("http", "https", "follow"),
    "ciphersuitegroup": ("all", "strict", "custom"),
}


# --------------------------------------------------------------------------- helpers


def _iso(ts: float | datetime) -> str:
    moment = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, timezone.utc)
    return moment.astimezone(timezone.utc).strftime(_ISO)


def _plain_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _openssl_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%b %d %H:%M:%S %Y GMT")


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def normalize_domain_name(raw: str) -> str:
    """The canonical (lower-case A-label) form of a CDN domain name.

    A leading "." or "*." marks a wildcard domain and is kept as given.
    Raises ServiceError `InvalidDomainName.Malformed` when the name is not a host name.
    """
    name = raw.strip().rstrip(".")
    prefix = ""
    for marker in ("*.", "."):
        if name.startswith(marker):
            prefix, name = marker, name[len(marker) :]
            break
    try:
        labels = [label.encode("idna").decode("ascii").lower() for label in name.split(".")]
    except UnicodeError:
        labels = []
    if (
        len(labels) < 2
        or len(name) > 253
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise _invalid("InvalidDomainName.Malformed", "Specified DomainName is malformed.")
    return prefix + ".".join(labels)


def names_cover(names: Iterable[str], domain: str) -> bool:
    """True when one of the certificate names covers `domain` (RFC 6125, one-label `*`).

    A wildcard CDN domain (".example.com" / "*.example.com") is covered only by the
    same wildcard name.
    """
    host = "*" + domain if domain.startswith(".") else domain
    return any(certinfo.name_covers(name, host) for name in names)


@dataclass(frozen=True)
class ParsedCert:
    """The facts about a certificate that the CDN reports (the leaf of a chain)."""

    leaf: x509.Certificate
    names: tuple[str, ...]  # DNS SANs, or the CN when there are none
    common_name: str
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, leaf: x509.Certificate) -> ParsedCert:
        return cls(
            leaf=leaf,
            names=tuple(certinfo.dns_names(leaf)),
            common_name=certinfo.common_name(leaf),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
        )

    @property
    def issuer(self) -> str:
        """The issuer DN the way DescribeCdnDomainByCertificate prints it (`C=.., O=..`)."""
        return ", ".join(
            f"{attr.rfc4514_attribute_name}={attr.value!s}"
            for rdn in self.leaf.issuer.rdns
            for attr in rdn
        )

    @property
    def key_type(self) -> str:
        """RSA | ECDSA | DSA, the CertType of DescribeCdnDomainByCertificate."""
        key = self.leaf.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            return "RSA"
        if isinstance(key, ec.EllipticCurvePublicKey):
            return "ECDSA"
        if isinstance(key, dsa.DSAPublicKey):
            return "DSA"
        return type(key).__name__

    @property
    def life(self) -> str:
        """CertLife: "3 months", "1 years"."""
        months = max(1, round((self.not_after - self.not_before).days / 30.4))
        if months >= 12 and months % 12 == 0:
            return f"{months // 12} years"
        return f"{months} months"


def _certificates(pem: str) -> tuple[x509.Certificate, ...]:
    """The certificates of an SSLPub; raises InvalidSSLPub / Certificate.FormatError."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise _invalid("InvalidSSLPub", "The specified SSLPub is invalid.")
    try:
        return certinfo.parse_certificates(pem)
    except certinfo.CertificateProblem:
        raise _invalid(
            "Certificate.FormatError", "The format of the certificate is invalid."
        ) from None


def parse_public(pem: str) -> ParsedCert:
    """The leaf of a chain given without its key: the first non-CA certificate."""
    chain = _certificates(pem)
    for cert in chain:
        try:
            if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                return ParsedCert.of(cert)
        except x509.ExtensionNotFound:
            return ParsedCert.of(cert)
    return ParsedCert.of(chain[0])


def parse_upload(cert_pem: str, key_pem: str) -> ParsedCert:
    """The leaf (the certificate the key belongs to) of an uploaded chain.

    Raises InvalidSSLPub, Certificate.FormatError, InvalidSSLPri or Certificate.MissMatch.
    """
    _certificates(cert_pem)
    try:
        return ParsedCert.of(certinfo.parse_bundle(cert_pem, key_pem).leaf)
    except certinfo.CertificateProblem as problem:
        if problem.kind == "key":
            raise _invalid("InvalidSSLPri", "The specified SSLPri is invalid.") from None
        raise _invalid(
            "Certificate.MissMatch", "The SSLPri does not match the certificate."
        ) from None


@functools.lru_cache(maxsize=2048)
def bound_leaf(cert_pem: str, key_pem: str) -> ParsedCert:
    """The leaf of a bound (already validated) certificate; cached, lists read many."""
    try:
        return parse_upload(cert_pem, key_pem)
    except ServiceError:
        return parse_public(cert_pem)


def _decode_ssl_pub(raw: str) -> str:
    """SSLPub as DescribeCdnDomainByCertificate takes it: PEM, or base64 of the PEM."""
    text = unquote(raw) if "%" in raw else raw
    if "-----BEGIN" in text:
        return text
    try:
        return base64.b64decode(text.strip(), validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid("InvalidSSLPub", "The specified SSLPub is invalid.") from None


# --------------------------------------------------------------------------- domain views


def _lookup(state: State, raw: str) -> CdnDomain:
    try:
        key = normalize_domain_name(raw)
    except ServiceError:
        key = raw.strip().lower()
    domain = state.cdn_domains.get(key)
    if domain is None:
        raise _not_found(raw)
    return domain


def domain_status(domain: CdnDomain, now: float) -> str:
    """DomainStatus as the control plane reports it at `now`."""
    target = domain.status.latest()
    if not domain.status.settled(now):
        return "stopping" if target == "offline" else "configuring"
    if target == "online" and not (domain.ssl.settled(now) and domain.configs.settled(now)):
        return "configuring"
    return target


def _ensure_writable(domain: CdnDomain, now: float) -> None:
    # CHOSEN: only a pending status change (add/start/stop) blocks writes.
    if not domain.status.settled(now):
        raise _busy()


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


def _page_data(domain: CdnDomain, now: float, *, full: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "DomainName": domain.name,
        "Cname": domain.cname,
        "CdnType": domain.cdn_type,
        "DomainStatus": domain_status(domain, now),
        "SslProtocol": "on" if domain.ssl.latest() is not None else "off",
        "GmtCreated": _iso(domain.created),
        "GmtModified": _iso(domain.modified or domain.created),
        "Description": "",
        "ResourceGroupId": RESOURCE_GROUP_ID,
        "Sources": {"Source": _sources(domain)},
    }
    if full:
        data["Coverage"] = domain.scope
        data["Sandbox"] = "normal"
    return data


def _page(items: Sequence[CdnDomain], number: int, size: int) -> Sequence[CdnDomain]:
    start = (number - 1) * size
    return items[start : start + size]


# --------------------------------------------------------------------------- domains


def _parse_sources(raw: str) -> list[dict[str, Any]]:
    malformed = _invalid("InvalidSources.Malformed", "Specified Sources is malformed.")
    try:
        items = json.loads(raw)
    except ValueError:
        raise malformed from None
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items or len(items) > 20:
        raise malformed
    sources = []
    for item in items:
        if not isinstance(item, dict):
            raise malformed
        kind = str(item.get("type", ""))
        content = str(item.get("content", "")).strip()
        try:
            port = int(item.get("port", 80))
            priority = str(int(item.get("priority", 20)))
            weight = str(int(item.get("weight", 10)))
        except (TypeError, ValueError):
            raise malformed from None
        if kind not in SOURCE_TYPES or not content or not 0 < port < 65536:
            raise malformed
        if kind == "ipaddr":
            try:
                ipaddress.ip_address(content)
            except ValueError:
                raise malformed from None
        else:
            try:
                normalize_domain_name(content)
            except ServiceError:
                raise malformed from None
        sources.append(
            {"type": kind, "content": content, "port": port, "priority": priority, "weight": weight}
        )
    return sources


@rpc("cdn", "AddCdnDomain", qps=30)
def add_cdn_domain(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Add an accelerated domain: `configuring` until the propagation delay has passed."""
    name = normalize_domain_name(params.required("DomainName"))
    cdn_type = params.required("CdnType")
    if cdn_type not in CDN_TYPES:
        raise _invalid("InvalidCdnType.ValueNotSupported", f"CdnType {cdn_type} is not supported.")
    scope = params.get_str("Scope", "domestic") or "domestic"
    if scope not in SCOPES:
        raise _invalid("InvalidScope.ValueNotSupported", f"Scope {scope} is not supported.")
    sources = _parse_sources(params.required("Sources"))
    state = ctx.state
    with state.lock:
        if name in state.cdn_domains:
            raise _invalid("DomainAlreadyExist", "This domain name is exist already.")
        now = state.now()
        cname_host = "all" + name.lstrip("*") if name.startswith((".", "*.")) else name
        domain = CdnDomain(
            name=name,
            cdn_type=cdn_type,
            sources=sources,
            cname=f"{cname_host}.{CNAME_SUFFIX}",
            created=now,
            scope=scope,
            status=Propagating("configuring"),
            modified=now,
        )
        domain.status.set("online", now, state.propagation_delay)
        state.cdn_domains[name] = domain
    return {}


def _set_status(ctx: RpcContext, params: Params, target: str) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        domain = _lookup(state, params.required("DomainName"))
        now = state.now()
        _ensure_writable(domain, now)
        if domain.status.latest() != target:
            domain.status.set(target, now, state.propagation_delay)
            domain.modified = now
    return {}


@rpc("cdn", "StopCdnDomain", qps=30)  # QPS not in the reference table: chosen
def stop_cdn_domain(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Take a domain offline (the edge stops serving it after the delay)."""
    return _set_status(ctx, params, "offline")


@rpc("cdn", "StartCdnDomain", qps=30)  # QPS not in the reference table: chosen
def start_cdn_domain(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Bring a stopped domain back online."""
    return _set_status(ctx, params, "online")


@rpc("cdn", "DeleteCdnDomain", qps=10)  # QPS not in the reference table: chosen
def delete_cdn_domain(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Remove a domain and everything configured on it."""
    state = ctx.state
    with state.lock:
        domain = _lookup(state, params.required("DomainName"))
        _ensure_writable(domain, state.now())
        del state.cdn_domains[domain.name]
    return {}


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
    size = params.get_int("PageSize", 20, lo=1, hi=500) or 20
    number = params.get_int("PageNumber", 1, lo=1, hi=100_000) or 1
    needle = (params.get_str("DomainName") or "").strip().lower()
    how = params.get_str("DomainSearchType", "fuzzy_match") or "fuzzy_match"
    if how not in SEARCH_TYPES:
        raise _invalid(
            "InvalidDomainSearchType.ValueNotSupported",
            f"DomainSearchType {how} is not supported.",
        )
    status = params.get_str("DomainStatus")
    cdn_types = _csv(params.get_str("CdnType"))
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
        page = [_page_data(d, now) for d in _page(found, number, size)]
    return {
        "Domains": {"PageData": page},
        "TotalCount": len(found),
        "PageNumber": number,
        "PageSize": size,
    }


def _ordered(state: State) -> list[CdnDomain]:
    return sorted(state.cdn_domains.values(), key=lambda d: (d.created, d.name))


@rpc("cdn", "DescribeCdnDomainDetail", qps=30)
def describe_cdn_domain_detail(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """The basic configuration of one domain (`GetDomainDetailModel`)."""
    state = ctx.state
    with state.lock:
        domain = _lookup(state, params.required("DomainName"))
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
            "GmtCreated": _iso(domain.created),
            "GmtModified": _iso(domain.modified or domain.created),
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
    size = params.get_int("PageSize", 20, lo=1, hi=50) or 20
    number = params.get_int("PageNumber", 1, lo=1, hi=100_000) or 1
    name = FEATURES_BY_ID.get(func_id or -1)
    state = ctx.state
    with state.lock:
        now = state.now()
        found = [
            d
            for d in _ordered(state)
            if name is not None and any(c.function_name == name for c in d.configs.latest())
        ]
        page = [_page_data(d, now, full=False) for d in _page(found, number, size)]
    return {
        "Domains": {"PageData": page},
        "TotalCount": len(found),
        "PageNumber": number,
        "PageSize": size,
    }


# --------------------------------------------------------------------------- certificates


@rpc("cdn", "DescribeDomainCertificateInfo", qps=100)
def describe_domain_certificate_info(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """The certificate configured on one domain; `checking` until it reached the edge."""
    state = ctx.state
    with state.lock:
        domain = _lookup(state, params.required("DomainName"))
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
                "CertStartTime": _iso(parsed.not_before),
                "CertExpireTime": _iso(parsed.not_after),
                "CertUpdateTime": _iso(bound.bound_at),
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
    size = params.get_int("PageSize", 20, lo=1, hi=500) or 20
    number = params.get_int("PageNumber", 1, lo=1, hi=100_000) or 1
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
        raise _invalid("NoHttpsDomain", "Your account doesn't have https domain.")
    found = [(d, b) for d, b in https if keyword in d.name or keyword in b.cert_name.lower()]
    start = (number - 1) * size
    infos = []
    for domain, bound in found[start : start + size]:
        parsed = bound_leaf(bound.cert_pem, bound.key_pem)
        infos.append(
            {
                "DomainName": domain.name,
                "CertName": bound.cert_name,
                "CertCommonName": parsed.common_name,
                "CertType": bound.cert_type,
                "CertStatus": _cert_status(parsed, domain.name, now),
                "CertStartTime": _plain_time(parsed.not_before),
                "CertExpireTime": _plain_time(parsed.not_after),
                "CertUpdateTime": _plain_time(datetime.fromtimestamp(bound.bound_at, timezone.utc)),
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
    parsed = parse_public(_decode_ssl_pub(params.required("SSLPub")))
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
        "CertStartTime": _openssl_time(parsed.not_before),
        "CertExpireTime": _openssl_time(parsed.not_after),
        "CertExpired": "yes" if expired else "no",
        "CertCaIsLegacy": "no",
        "Issuer": parsed.issuer,
    }
    return {"CertInfos": {"CertInfo": [info]}}


def _resolve_certificate(
    state: State, params: Params, domains: Sequence[CdnDomain], now: float
) -> BoundCertificate:
    """The certificate a Set*Certificate call asks for, validated against `domains`."""
    cert_id_raw = params.get_str("CertId")
    cert_type = params.get_str("CertType") or ("cas" if cert_id_raw else "upload")
    if cert_type not in ("cas", "upload"):
        raise _invalid(
            "InvalidCertType.ValueNotSupported", f"CertType {cert_type} is not supported."
        )
    region = params.get_str("CertRegion") or params.get_str("Region") or "cn-hangzhou"
    if region not in CERT_REGIONS:
        raise _invalid("Abs.CertRegion.ValueNotSupported", "CertRegion is not supported.")
    cert_name = params.get_str("CertName") or ""
    if len(cert_name) > 128:
        raise _invalid(
            "InvalidCertName.TooLong", "The length of the certificate name cannot exceed 128."
        )
    moment = datetime.fromtimestamp(now, timezone.utc)
    if cert_type == "cas":
        cert_id = params.get_int("CertId")
        if cert_id is None:
            raise _invalid("CertId.MissingParameter", "The CertId parameter is required.")
        cas = state.certificates.get(cert_id)
        if cas is None or cas.region != region:
            raise _invalid("Certificate.NotFind", "The certificate does not exist.")
        if cas.revoked:
            raise _invalid("Certificate.StatusError", "The status of the certificate is invalid.")
        _check_fits(cas.sans, cas.not_after, domains, moment)
        return BoundCertificate(
            cert_type="cas",
            cert_id=cas.id,
            cert_region=region,
            cert_name=cert_name or cas.name,
            cert_pem=cas.cert_pem,
            key_pem=cas.key_pem,
            bound_at=now,
        )
    pub = params.get_str("SSLPub")
    if pub is None:
        raise _invalid("SSLPub.MissingParameter", "The SSLPub parameter is required.")
    pri = params.get_str("SSLPri")
    if pri is None:
        raise _invalid("SSLPri.MissingParameter", "The SSLPri parameter is required.")
    parsed = parse_upload(pub, pri)
    _check_fits(parsed.names, parsed.not_after, domains, moment)
    return BoundCertificate(
        cert_type="upload",
        cert_id=None,
        cert_region=region,
        cert_name=cert_name or f"{parsed.common_name}-{moment:%Y%m%d%H%M%S}",
        cert_pem=pub,
        key_pem=pri,
        bound_at=now,
    )


def _check_fits(
    names: Sequence[str], not_after: datetime, domains: Sequence[CdnDomain], moment: datetime
) -> None:
    if not_after <= moment:
        raise _invalid("Certificate.Expired", "The certificate has expired.")
    for domain in domains:
        if not names_cover(names, domain.name):
            raise _invalid(
                "Certificate.MissMatch",
                f"The certificate does not match the domain: {domain.name}.",
            )


def _apply_ssl(ctx: RpcContext, params: Params, names: Sequence[str]) -> None:
    protocol = params.required("SSLProtocol")
    if protocol not in ("on", "off"):
        raise _invalid(
            "InvalidSSLProtocol.ValueNotSupported", "The specified SSLProtocol is invalid."
        )
    state = ctx.state
    with state.lock:
        now = state.now()
        domains = [_lookup(state, name) for name in names]
        for domain in domains:
            _ensure_writable(domain, now)
        bound = _resolve_certificate(state, params, domains, now) if protocol == "on" else None
        for domain in domains:
            domain.ssl.set(bound, now, state.propagation_delay)
            domain.modified = now


@rpc("cdn", "SetCdnDomainSSLCertificate", qps=30)
def set_cdn_domain_ssl_certificate(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Turn HTTPS on with a CAS (CertId) or uploaded (SSLPub/SSLPri) certificate, or off."""
    _apply_ssl(ctx, params, [params.required("DomainName")])
    return {}


@rpc("cdn", "BatchSetCdnDomainServerCertificate", qps=10)
def batch_set_cdn_domain_server_certificate(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """SetCdnDomainSSLCertificate for up to 10 comma-separated domains, all or none.

    Not in the current SDK: callers use the generic `call_api`.
    """
    names = _csv(params.required("DomainName"))
    if len(names) > MAX_BATCH_CERT_DOMAINS:
        raise _invalid("TooManyDomains", "The count of domain is over 10.")
    _apply_ssl(ctx, params, names)
    return {}


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class _FunctionRequest:
    function_name: str
    args: tuple[tuple[str, str], ...]
    config_id: int | None
    parent_id: str


def _arg_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _parse_functions(raw: str) -> list[_FunctionRequest]:
    malformed = _invalid("InvalidFunctions.Malformed", "Specified Functions is malformed.")
    try:
        items = json.loads(raw)
    except ValueError:
        raise malformed from None
    if not isinstance(items, list) or not items or len(items) > 50:
        raise malformed
    requests = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("functionName"), str):
            raise malformed
        args_raw = item.get("functionArgs", [])
        if not isinstance(args_raw, list):
            raise malformed
        pairs = []
        for arg in args_raw:
            if not isinstance(arg, dict):
                raise malformed
            arg_name = arg.get("argName", arg.get("ArgName"))
            arg_value = arg.get("argValue", arg.get("ArgValue"))
            if not isinstance(arg_name, str) or arg_value is None:
                raise malformed
            pairs.append((arg_name, _arg_text(arg_value)))
        config_id = item.get("configId")
        try:
            config_id = int(config_id) if config_id not in (None, "") else None
        except (TypeError, ValueError):
            raise malformed from None
        parent = item.get("parentId")
        requests.append(
            _FunctionRequest(
                item["functionName"],
                tuple(pairs),
                config_id,
                "" if parent in (None, "") else str(parent),
            )
        )
    for req in requests:
        _validate_feature(req)
    return requests


def _validate_feature(req: _FunctionRequest) -> None:
    feature = FEATURES.get(req.function_name)
    if feature is None:
        raise _invalid(
            "InvalidFunctionName.ValueNotSupported",
            f"FunctionName {req.function_name} is not supported.",
        )
    given = dict(req.args)
    allowed = set(feature.required) | set(feature.optional)
    for name in given:
        if name not in allowed:
            raise _invalid("InvalidArgName.ValueNotSupported", f"ArgName {name} is not supported.")
    for name in feature.required:
        if given.get(name, "") == "":
            raise _invalid(
                f"MissingParameter{name}", f"The specified value of ArgName[{name}] is missing."
            )
    for name, value in given.items():
        if not _arg_ok(name, value, given):
            raise _invalid(
                "InvalidArgValue.Malformed", f"The specified ArgValue [{name}] is invalid."
            )


def _port_ok(text: str) -> bool:
    return text.isdigit() and 0 < int(text) < 65536


def _arg_ok(name: str, value: str, given: dict[str, str]) -> bool:
    if name in _ON_OFF_ARGS:
        return value in ("on", "off")
    if name in _CHOICES:
        return value in _CHOICES[name]
    if name == "https_hsts_max_age":
        return value.isdigit() and int(value) <= 2**31
    if name == "scheme_origin_port":
        if given.get("scheme_origin", "follow") == "follow":
            parts = value.split(":")
            return len(parts) == 2 and all(_port_ok(p) for p in parts)
        return _port_ok(value)
    return True


def _merge(
    state: State, current: tuple[CdnConfig, ...], requests: Sequence[_FunctionRequest]
) -> tuple[tuple[CdnConfig, ...], list[CdnConfig]]:
    """The domain's configs after `requests`, and the configs they produced (in order)."""
    configs = list(current)
    made: list[CdnConfig] = []
    for req in requests:
        rival = MUTEX.get(req.function_name)
        if rival is not None and any(c.function_name == rival for c in configs):
            raise _invalid(
                "FunctionMutex",
                f"The function {req.function_name} conflicts with {rival}; "
                f"delete the {rival} config first.",
            )
        if req.parent_id not in ("", "-1") and not any(
            str(c.config_id) == req.parent_id for c in configs
        ):
            raise _invalid("Function.InvalidParentId", "The specified parentId does not exist.")
        same = [c for c in configs if c.function_name == req.function_name]
        keep = next((c for c in same if c.config_id == req.config_id), None)
        if keep is not None:
            target: CdnConfig | None = keep
            config_id = keep.config_id
        else:
            target = None if FEATURES[req.function_name].multi or not same else same[0]
            config_id = state.next_config_id()
        parent = "" if req.parent_id == "-1" else req.parent_id
        config = CdnConfig(config_id, req.function_name, req.args, parent)
        if target is None:
            configs.append(config)
        else:
            configs[configs.index(target)] = config
        made.append(config)
    return tuple(configs), made


@rpc("cdn", "BatchSetCdnDomainConfig", qps=30)
def batch_set_cdn_domain_config(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Configure features on up to 50 domains, all or none; returns the ConfigIds."""
    names = _csv(params.required("DomainNames"))
    if len(names) > MAX_BATCH_CONFIG_DOMAINS:
        raise _invalid("TooManyDomains", "The count of domain is over 50.")
    raw = params.get_str("Functions")
    if raw is None:
        raise _invalid("MissingParameterFunctions", "The specified value of Functions is missing.")
    requests = _parse_functions(raw)
    if len(names) * len(requests) > 50:
        raise _invalid(
            "TooManyDomains", "The number of domains multiplied by functions is over 50."
        )
    state = ctx.state
    with state.lock:
        now = state.now()
        domains = [_lookup(state, name) for name in dict.fromkeys(names)]
        plans = []
        for domain in domains:
            _ensure_writable(domain, now)
            plans.append((domain, *_merge(state, domain.configs.latest(), requests)))
        models: list[dict[str, Any]] = []
        for domain, configs, made in plans:
            domain.configs.set(configs, now, state.propagation_delay)
            domain.modified = now
            models.extend(
                {
                    "ConfigId": c.config_id,
                    "DomainName": domain.name,
                    "FunctionName": c.function_name,
                }
                for c in made
            )
    return {"DomainConfigList": {"DomainConfigModel": models}}


@rpc("cdn", "DescribeCdnDomainConfigs", qps=100)
def describe_cdn_domain_configs(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """A domain's feature configs; `configuring` until each reached the edge."""
    wanted = set(_csv(params.get_str("FunctionNames")))
    config_id = params.get_str("ConfigId")
    state = ctx.state
    with state.lock:
        domain = _lookup(state, params.required("DomainName"))
        now = state.now()
        live = set(domain.configs.at(now))
        configs = [
            c
            for c in domain.configs.latest()
            if (not wanted or c.function_name in wanted)
            and (config_id is None or str(c.config_id) == config_id)
        ]
    return {
        "DomainConfigs": {
            "DomainConfig": [
                {
                    "ConfigId": str(c.config_id),
                    "FunctionName": c.function_name,
                    "Status": "success" if c in live else "configuring",
                    "ParentId": c.parent_id,
                    "FunctionArgs": {
                        "FunctionArg": [{"ArgName": k, "ArgValue": v} for k, v in c.args]
                    },
                }
                for c in configs
            ]
        }
    }


@rpc("cdn", "DeleteSpecificConfig", qps=30)
def delete_specific_config(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Delete configs by ConfigId (comma-separated); all must exist."""
    ids = _csv(params.required("ConfigId"))
    state = ctx.state
    with state.lock:
        domain = _lookup(state, params.required("DomainName"))
        now = state.now()
        _ensure_writable(domain, now)
        current = domain.configs.latest()
        known = {str(c.config_id) for c in current}
        missing = [i for i in ids if i not in known]
        if missing:
            raise ServiceError(
                404,
                "InvalidConfigId.NotFound",
                f"The specified ConfigId {missing[0]} does not exist.",
            )
        remaining = tuple(c for c in current if str(c.config_id) not in ids)
        # Children pointing at a deleted rule lose the reference, as with parentId=-1.
        remaining = tuple(replace(c, parent_id="") if c.parent_id in ids else c for c in remaining)
        domain.configs.set(remaining, now, state.propagation_delay)
        domain.modified = now
    return {}
