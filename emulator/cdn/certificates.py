"""Putting certificates on CDN domains: SetCdnDomainSSLCertificate and its batch form."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from emulator.cdn.cert_parsing import names_cover, parse_upload
from emulator.cdn.domains import ensure_writable, lookup
from emulator.cdn.errors import invalid
from emulator.cdn.formats import csv
from emulator.core import Params, RpcContext, rpc
from emulator.state import BoundCertificate, CdnDomain, State

CERT_REGIONS = ("cn-hangzhou", "ap-southeast-1")
MAX_BATCH_CERT_DOMAINS = 10


def _resolve_certificate(
    state: State, params: Params, domains: Sequence[CdnDomain], now: float
) -> BoundCertificate:
    """The certificate a Set*Certificate call asks for, validated against `domains`."""
    cert_id_raw = params.get_str("CertId")
    cert_type = params.get_str("CertType") or ("cas" if cert_id_raw else "upload")
    if cert_type not in ("cas", "upload"):
        raise invalid(
            "InvalidCertType.ValueNotSupported", f"CertType {cert_type} is not supported."
        )
    region = params.get_str("CertRegion") or params.get_str("Region") or "cn-hangzhou"
    if region not in CERT_REGIONS:
        raise invalid("Abs.CertRegion.ValueNotSupported", "CertRegion is not supported.")
    cert_name = params.get_str("CertName") or ""
    if len(cert_name) > 128:
        raise invalid(
            "InvalidCertName.TooLong", "The length of the certificate name cannot exceed 128."
        )
    moment = datetime.fromtimestamp(now, timezone.utc)
    if cert_type == "cas":
        cert_id = params.get_int("CertId")
        if cert_id is None:
            raise invalid("CertId.MissingParameter", "The CertId parameter is required.")
        cas = state.certificates.get(cert_id)
        if cas is None or cas.region != region:
            raise invalid("Certificate.NotFind", "The certificate does not exist.")
        if cas.cas_knows_revoked:
            raise invalid("Certificate.StatusError", "The status of the certificate is invalid.")
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
        raise invalid("SSLPub.MissingParameter", "The SSLPub parameter is required.")
    pri = params.get_str("SSLPri")
    if pri is None:
        raise invalid("SSLPri.MissingParameter", "The SSLPri parameter is required.")
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
        raise invalid("Certificate.Expired", "The certificate has expired.")
    for domain in domains:
        if not names_cover(names, domain.name):
            raise invalid(
                "Certificate.MissMatch",
                f"The certificate does not match the domain: {domain.name}.",
            )


def _apply_ssl(ctx: RpcContext, params: Params, names: Sequence[str]) -> None:
    protocol = params.required("SSLProtocol")
    if protocol not in ("on", "off"):
        raise invalid(
            "InvalidSSLProtocol.ValueNotSupported", "The specified SSLProtocol is invalid."
        )
    state = ctx.state
    with state.lock:
        now = state.now()
        domains = [lookup(state, name) for name in names]
        for domain in domains:
            ensure_writable(domain, now)
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
    names = csv(params.required("DomainName"))
    if len(names) > MAX_BATCH_CERT_DOMAINS:
        raise invalid("TooManyDomains", "The count of domain is over 10.")
    _apply_ssl(ctx, params, names)
    return {}
