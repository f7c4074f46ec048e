"""The `certificates` section of an estate: certificates issued from the test PKI by recipe."""

from __future__ import annotations

import math
from typing import Any

from cryptography import x509

from emulator.certinfo import make_cas_certificate
from emulator.core import ServiceError
from emulator.estate.fields import (
    EstateError,
    as_bool,
    as_choice,
    as_list,
    as_object,
    as_str,
    as_time,
)
from emulator.estate.plan import Plan, PlannedCert
from emulator.pki import CA_NAMES, CHAIN_SHAPES, KEY_TYPES, SIGNATURE_HASHES, PkiError, TestPki
from emulator.state import State

_KEYS = {
    "name",
    "sans",
    "common_name",
    "ca",
    "days",
    "not_before",
    "not_after",
    "key_type",
    "signature_hash",
    "chain",
    "source",
    "revoked",
    "cas",
    "order",
}


def certificate(
    state: State, pki: TestPki, value: Any, where: str, now: float, plan: Plan
) -> PlannedCert:
    """Issue the certificate `value` describes (and its CAS record unless `cas: false`).

    Raises EstateError naming the bad field, or when the PKI or CAS refuses the recipe.
    """
    item = as_object(value, where, _KEYS, required=("name", "sans"))
    name = as_str(item["name"], f"{where}.name")
    if len(name) > 64:
        raise EstateError(f"{where}.name: at most 64 characters (CAS limit), got {len(name)}")
    if name in plan.certs:
        raise EstateError(f"{where}.name: duplicate certificate name {name!r}")
    sans = [
        as_str(s, f"{where}.sans[{i}]")
        for i, s in enumerate(as_list(item["sans"], f"{where}.sans"))
    ]
    if not sans:
        raise EstateError(f"{where}.sans: at least one name is needed")
    ca = as_choice(item.get("ca", "one"), f"{where}.ca", CA_NAMES)
    key_type = as_choice(item.get("key_type", "ec"), f"{where}.key_type", KEY_TYPES)
    chain = as_choice(item.get("chain", "complete"), f"{where}.chain", CHAIN_SHAPES)
    signature_hash = as_choice(
        item.get("signature_hash", "sha256"), f"{where}.signature_hash", SIGNATURE_HASHES
    )
    source = as_choice(item.get("source", "upload"), f"{where}.source", ("upload", "issued"))
    in_cas = as_bool(item.get("cas", True), f"{where}.cas")
    revoked = as_bool(item.get("revoked", False), f"{where}.revoked")
    order = as_choice(item.get("order", ""), f"{where}.order", ("", "BUY", "CPACK"))
    if order and (not in_cas or source != "issued"):
        raise EstateError(f"{where}.order: only a certificate CAS issued (source issued) has one")
    if "days" in item and "not_after" in item:
        raise EstateError(f"{where}: give either days or not_after, not both")
    days = item.get("days", 90)
    if (
        isinstance(days, bool)
        or not isinstance(days, (int, float))
        or not math.isfinite(days)
        or days <= 0
    ):
        raise EstateError(f"{where}.days: expected a finite positive number of days, got {days!r}")
    not_before = (
        as_time(item["not_before"], f"{where}.not_before", now) if "not_before" in item else None
    )
    not_after = (
        as_time(item["not_after"], f"{where}.not_after", now) if "not_after" in item else None
    )
    common = item.get("common_name")
    try:
        chain_pem, key_pem = pki.issue(
            sans,
            ca=ca,
            not_before=not_before,
            not_after=not_after,
            days=days,
            key_type=key_type,
            chain=chain,
            signature_hash=signature_hash,
            common_name=as_str(common, f"{where}.common_name") if common is not None else None,
        )
    except PkiError as err:
        raise EstateError(f"{where}: {err}") from None
    cas = None
    if in_cas:
        try:
            cas = make_cas_certificate(
                state, name=name, cert_pem=chain_pem, key_pem=key_pem, source=source
            )
        except ServiceError as err:
            raise EstateError(f"{where}: CAS refuses it: {err.code}: {err.message}") from None
        cas.revoked = revoked
        cas.created_ms = int(now * 1000)
        if order:
            cas.order_type = order
            cas.order_id = state.next_order_id()
    if revoked:
        # Revoked by its CA: the PKI's OCSP responder and CRL say so from now on.
        leaf = x509.load_pem_x509_certificates(chain_pem.encode())
        for cert in leaf:
            authority = pki.issuer_of(cert)
            if authority is not None and authority in CA_NAMES:
                pki.revoke(authority, cert.serial_number)
                break
    return PlannedCert(name, chain_pem, key_pem, cas)
