"""Certificates bound to custom domains and CDN domains in an estate, by certificate name."""

from __future__ import annotations

from typing import Any

from emulator.certinfo import bound_from_cas
from emulator.estate.fields import EstateError, as_str, names
from emulator.estate.plan import Plan, PlannedCert
from emulator.propagation import Propagating
from emulator.state import CAS_REGION, BoundCertificate


def cert_ref(value: Any, where: str, plan: Plan) -> PlannedCert:
    """The estate certificate named by `value`; raises EstateError for an unknown name."""
    name = as_str(value, where)
    cert = plan.certs.get(name)
    if cert is None:
        raise EstateError(
            f"{where}: no certificate named {name!r} (known: {names(list(plan.certs))})"
        )
    return cert


def _binding(
    value: Any, where: str, cas_type: str, upload_type: str, now: float, plan: Plan
) -> BoundCertificate | None:
    if value is None:
        return None
    cert = cert_ref(value, where, plan)
    if cert.cas is not None:
        return bound_from_cas(cert.cas, cas_type, bound_at=now)
    if upload_type == "Upload" and plan.next_upload_id is not None:
        # An OSS upload gets its own id, as PutCname with PEM gives one (ListCname shows it).
        upload_id = plan.next_upload_id()
        return BoundCertificate(
            cert_type=upload_type,
            cert_id=upload_id,
            cert_region=CAS_REGION,
            cert_name=f"oss-upload-{upload_id}",
            cert_pem=cert.chain_pem,
            key_pem=cert.key_pem,
            bound_at=now,
        )
    return BoundCertificate(
        cert_type=upload_type,
        cert_id=None,
        cert_region="",
        cert_name=cert.name,
        cert_pem=cert.chain_pem,
        key_pem=cert.key_pem,
        bound_at=now,
    )


def bound_certificate(
    item: dict[str, Any],
    where: str,
    cas_type: str,
    upload_type: str,
    now: float,
    plan: Plan,
) -> Propagating[BoundCertificate | None]:
    """The binding `item["certificate"]` configures, or (with `edge_certificate`) one the
    edge never reaches. Raises EstateError for an unknown certificate name.

    An `edge_certificate` keeps the edge serving that certificate (null: none) while
    the control plane reports the configured one: the write is due at +infinity, so
    only the next write to the domain settles it (SERVED_MISMATCH).
    """
    configured = _binding(
        item.get("certificate"), f"{where}.certificate", cas_type, upload_type, now, plan
    )
    if "edge_certificate" not in item:
        return Propagating(configured)
    served = _binding(
        item["edge_certificate"], f"{where}.edge_certificate", cas_type, upload_type, now, plan
    )
    value: Propagating[BoundCertificate | None] = Propagating(served)
    value.set(configured, now, float("inf"))
    return value
