"""Emulated SSL Certificates Service (CAS 2020-04-07): the user's certificate list.

RPC actions answer in CAS's JSON shapes; `/_emulator/cas/issue` and
`/_emulator/cas/revoke` let tests and the demo simulate a CA issuing, renewing or
revoking a certificate. Behaviours not settled by the public docs are marked "chosen":

- Error codes: `NameRepeat`, `NotFound`, `ParseCertificateFailed`, `MissingParameter`
  and `InvalidParameter` (all HTTP 400) are CAS's documented codes;
  `ParsePrivateKeyFailed` and `CertificateKeyMismatch` are chosen.
- `Cert` in GetUserCertificateDetail is the stored PEM chain exactly as uploaded or
  issued (leaf first for a well-formed upload, followed by its intermediates);
  `CertChain[]` describes the same certificates in the same order.
- `StartDate` / `EndDate` are calendar dates in China Standard Time (UTC+8); the
  exact instants are `NotBefore` / `NotAfter` (ms).
- ListUserCertificateOrder: OrderType defaults to CPACK (documented). CERT / UPLOAD list
  certificates by their dates only: ISSUED, WILLEXPIRED (`notAfter` within 30 days),
  EXPIRED; without Status ISSUED and WILLEXPIRED (documented). Their rows carry no
  `Status` (the SDK documents it for CPACK / BUY rows only) and no revocation state:
  CAS does not learn that a CA revoked a certificate. A CERT / UPLOAD listing with an
  order-only Status (REVOKED, PAYED, ...) lists nothing (chosen). CPACK / BUY list the
  orders of purchased certificates (`/_emulator/cas/issue` with `order`), without
  `CertificateId` (documented for CERT / UPLOAD rows only) but with `OrderId` and
  `InstanceId`, which GetUserCertificateDetail of the certificate also reports (the
  link, chosen); their `Status` is REVOKED once the certificate is revoked, else
  ISSUED / WILLEXPIRED / EXPIRED; without Status every order. Newest first; ShowSize
  1-1000 (upper bound chosen).
- `InstanceId` / `ResourceId` are `cas-upload-<id>` or `cas-ivauto-<id>` (chosen).
- Deleting a certificate that is bound to OSS or CDN succeeds (chosen); the bindings
  keep their own copy.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from emulator import admin as admin_api
from emulator import certinfo
from emulator import pki as pki_module
from emulator.core import Params, Request, Response, RpcContext, ServiceError, admin, rpc
from emulator.state import CasCertificate, State

WILL_EXPIRE_SECONDS = 30 * 86400
MAX_NAME_LENGTH = 64
CERT_STATUSES = ("ISSUED", "WILLEXPIRED", "EXPIRED")
ORDER_STATUSES = ("PAYED", "CHECKING", "CHECKED_FAIL", "NOTACTIVATED", "REVOKED")
ORDER_TYPES = ("CPACK", "BUY", "UPLOAD", "CERT")
REVOCATION_REASONS = {flag.value: flag for flag in x509.ReasonFlags}


def certificate_status(cert: CasCertificate, now: float) -> str:
    """ISSUED, WILLEXPIRED (notAfter within 30 days) or EXPIRED at `now` (dates only)."""
    remaining = cert.not_after.timestamp() - now
    if remaining <= 0:
        return "EXPIRED"
    if remaining <= WILL_EXPIRE_SECONDS:
        return "WILLEXPIRED"
    return "ISSUED"


def order_status(cert: CasCertificate, now: float) -> str:
    """The Status of a purchased certificate's order: REVOKED, else by its dates."""
    return "REVOKED" if cert.revoked else certificate_status(cert, now)


def instance_id(cert: CasCertificate) -> str:
    if cert.order_type:
        return f"cas-{cert.order_type.lower()}-{cert.order_id}"
    return f"cas-{'upload' if cert.source == 'upload' else 'ivauto'}-{cert.id}"


def add_certificate(state: State, cert: CasCertificate) -> None:
    """Insert `cert` into CAS; raises ServiceError(NameRepeat) for a name in use.

    Call with `state.lock` held.
    """
    if any(c.name == cert.name for c in state.certificates.values()):
        raise ServiceError(400, "NameRepeat", f"The certificate name {cert.name!r} is in use.")
    state.certificates[cert.id] = cert


def revoke(
    state: State,
    cert_id: int | None = None,
    *,
    serial: int | None = None,
    fingerprint: str | None = None,
    reason: x509.ReasonFlags | None = None,
) -> list[CasCertificate]:
    """Revoke a certificate as its CA would: by CAS id, serial number or fingerprint
    (SHA-256 or SHA-1 hex of the leaf). The test PKI's OCSP and CRL answer revoked from
    then on; the CAS copies of that certificate are marked (only a purchased one's
    order shows it). Returns the CAS certificates concerned (maybe none, for a serial
    the PKI issued outside CAS).

    Raises KeyError when nothing is known by that id, serial or fingerprint.
    """
    pki = _pki(state)
    wanted = (fingerprint or "").replace(":", "").upper()
    with state.lock:
        if cert_id is not None:
            matches = [state.certificates[cert_id]]  # KeyError: unknown id
        else:
            matches = [
                c
                for c in state.certificates.values()
                if (serial is not None and int(c.serial, 16) == serial)
                or (wanted and wanted in (c.sha256, c.fingerprint_sha1))
            ]
        leaves = [_leaf(c.cert_pem, c.key_pem) for c in matches]
        if serial is not None and not matches:
            authority = pki.find_serial(serial)
            if authority is None:
                raise KeyError(serial)
            pki.revoke(authority, serial, reason)
        elif not matches:
            raise KeyError(fingerprint)
        for cert, leaf in zip(matches, leaves, strict=True):
            authority = pki.issuer_of(leaf)
            if authority is not None:
                pki.revoke(authority, leaf.serial_number, reason)
            cert.revoked = True
        return matches


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _date(moment: datetime) -> str:
    return moment.astimezone(certinfo.CAS_DATE_TZ).strftime("%Y-%m-%d")


@functools.lru_cache(maxsize=512)
def _chain(cert_pem: str) -> tuple[x509.Certificate, ...]:
    return certinfo.parse_certificates(cert_pem)


@functools.lru_cache(maxsize=512)
def _leaf(cert_pem: str, key_pem: str) -> x509.Certificate:
    return certinfo.parse_bundle(cert_pem, key_pem).leaf


def _subject(cert: CasCertificate) -> dict[str, str]:
    leaf = _leaf(cert.cert_pem, cert.key_pem)
    return {
        "OrgName": certinfo.subject_field(leaf, NameOID.ORGANIZATION_NAME),
        "Country": certinfo.subject_field(leaf, NameOID.COUNTRY_NAME),
        "Province": certinfo.subject_field(leaf, NameOID.STATE_OR_PROVINCE_NAME),
        "City": certinfo.subject_field(leaf, NameOID.LOCALITY_NAME),
    }


# --- RPC actions -----------------------------------------------------------------------


@rpc("cas", "UploadUserCertificate", qps=100)
def upload_user_certificate(ctx: RpcContext, params: Params) -> dict[str, Any]:
    name = params.required("Name")
    if len(name) > MAX_NAME_LENGTH:
        raise ServiceError(
            400, "InvalidParameter", f"The certificate name exceeds {MAX_NAME_LENGTH} characters."
        )
    if "SignCert" in params or "EncryptCert" in params:
        raise ServiceError(
            400, "InvalidParameter", "SM2 (ShangMi) certificates are not supported here."
        )
    cert_pem = params.required("Cert")
    key_pem = params.required("Key")
    state = ctx.state
    with state.lock:
        if any(c.name == name for c in state.certificates.values()):
            raise ServiceError(400, "NameRepeat", f"The certificate name {name!r} is in use.")
        cert = certinfo.make_cas_certificate(
            state, name=name, cert_pem=cert_pem, key_pem=key_pem, source="upload"
        )
        add_certificate(state, cert)
    return {"CertId": cert.id, "ResourceId": instance_id(cert)}


def _order_item(cert: CasCertificate, now: float) -> dict[str, Any]:
    """A CERT / UPLOAD row: the certificate, without any Status (see the module notes)."""
    return {
        "CertificateId": cert.id,
        "Name": cert.name,
        "CommonName": cert.common_name,
        "Sans": ",".join(cert.sans),
        "StartDate": _date(cert.not_before),
        "EndDate": _date(cert.not_after),
        "Expired": cert.not_after.timestamp() <= now,
        "Upload": cert.source == "upload",
        "Issuer": cert.issuer,
        "Fingerprint": cert.fingerprint_sha1,
        "Sha2": cert.sha256,
        "SerialNo": cert.serial,
        "InstanceId": instance_id(cert),
        "ResourceGroupId": "rg-default",
        **_subject(cert),
    }


def _purchase_item(cert: CasCertificate, now: float) -> dict[str, Any]:
    """A CPACK / BUY row: the order of a purchased certificate (no CertificateId)."""
    wildcards = sum(1 for name in cert.sans if name.startswith("*."))
    domain_type = (
        ("WILDCARD" if wildcards else "ONE")
        if len(cert.sans) <= 1
        else ("M_WILDCARD" if wildcards == len(cert.sans) else "MIX" if wildcards else "MULTIPLE")
    )
    return {
        "OrderId": cert.order_id,
        "AliyunOrderId": cert.order_id,
        "InstanceId": instance_id(cert),
        "SourceType": cert.order_type.lower(),
        "Status": order_status(cert, now),
        "Domain": cert.common_name,
        "DomainCount": len(cert.sans) - wildcards,
        "WildDomainCount": wildcards,
        "DomainType": domain_type,
        "CertType": "DV",
        "Algorithm": certinfo.key_algorithm(_leaf(cert.cert_pem, cert.key_pem)),
        "CertStartTime": _ms(cert.not_before),
        "CertEndTime": _ms(cert.not_after),
        "BuyDate": cert.created_ms,
        "ProductCode": "emulator-dv",
        "ProductName": "Emulator DV",
        "RootBrand": cert.issuer,
        "PartnerOrderId": f"emu-{cert.order_id}",
        "TrusteeStatus": "unTrustee",
    }


def _matches_keyword(cert: CasCertificate, keyword: str) -> bool:
    keyword = keyword.lower()
    haystack = [cert.name, cert.common_name, *cert.sans, str(cert.id), instance_id(cert)]
    return any(keyword in text.lower() for text in haystack)


@rpc("cas", "ListUserCertificateOrder", qps=10)
def list_user_certificate_order(ctx: RpcContext, params: Params) -> dict[str, Any]:
    order_type = (params.get_str("OrderType") or "CPACK").upper()
    if order_type not in ORDER_TYPES:
        raise ServiceError(400, "InvalidParameter", f"Unknown OrderType {order_type!r}.")
    status = (params.get_str("Status") or "").upper()
    if status and status not in CERT_STATUSES + ORDER_STATUSES:
        raise ServiceError(400, "InvalidParameter", f"Unknown Status {status!r}.")
    page = params.get_int("CurrentPage", 1, lo=1)
    size = params.get_int("ShowSize", 50, lo=1, hi=1000)
    assert page is not None and size is not None
    keyword = params.get_str("Keyword") or ""
    state = ctx.state
    with state.lock:
        now = state.now()
        newest_first = sorted(state.certificates.values(), key=lambda c: -c.id)
        if order_type in ("CERT", "UPLOAD"):
            # Dates only: an order-only Status (REVOKED, PAYED, ...) matches nothing.
            wanted = (status,) if status else ("ISSUED", "WILLEXPIRED")
            selected = [
                cert
                for cert in newest_first
                if (order_type == "CERT" or cert.source == "upload")
                and certificate_status(cert, now) in wanted
                and (not keyword or _matches_keyword(cert, keyword))
            ]
            render = _order_item
        else:
            selected = [
                cert
                for cert in newest_first
                if cert.order_type == order_type
                and (not status or order_status(cert, now) == status)
                and (not keyword or _matches_keyword(cert, keyword))
            ]
            render = _purchase_item
        window = selected[(page - 1) * size : page * size]
        items = [render(cert, now) for cert in window]
    return {
        "CertificateOrderList": items,
        "TotalCount": len(selected),
        "CurrentPage": page,
        "ShowSize": size,
    }


def _require_cert(state: State, params: Params) -> CasCertificate:
    raw = params.required("CertId")
    try:
        cert_id = int(raw)
    except ValueError:
        raise ServiceError(
            400, "InvalidParameter", 'The specified parameter "CertId" is not valid.'
        ) from None
    cert = state.certificates.get(cert_id)
    if cert is None:
        raise ServiceError(400, "NotFound", f"The certificate {cert_id} does not exist.")
    return cert


def _chain_entry(cert: x509.Certificate, now: float) -> dict[str, Any]:
    not_after = cert.not_valid_after_utc
    return {
        "CommonName": certinfo.common_name(cert),
        "IssuerCommonName": certinfo.issuer_common_name(cert),
        "NotBefore": _ms(cert.not_valid_before_utc),
        "NotAfter": _ms(not_after),
        "RemainDay": max(0, math.floor((not_after.timestamp() - now) / 86400)),
    }


@rpc("cas", "GetUserCertificateDetail", qps=100)
def get_user_certificate_detail(ctx: RpcContext, params: Params) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        cert = _require_cert(state, params)
        now = state.now()
    leaf = _leaf(cert.cert_pem, cert.key_pem)
    detail: dict[str, Any] = {
        "Id": cert.id,
        "Name": cert.name,
        "Common": cert.common_name,
        "Sans": ",".join(cert.sans),
        "NotBefore": _ms(cert.not_before),
        "NotAfter": _ms(cert.not_after),
        "StartDate": _date(cert.not_before),
        "EndDate": _date(cert.not_after),
        "Expired": cert.not_after.timestamp() <= now,
        "Issuer": cert.issuer,
        "Fingerprint": cert.fingerprint_sha1,
        "Sha2": cert.sha256,
        "SerialNo": cert.serial,
        "Algorithm": certinfo.key_algorithm(leaf),
        "BuyInAliyun": cert.source == "issued",
        "CertIdentifier": cert.identifier,
        "InstanceId": instance_id(cert),
        **({"OrderId": cert.order_id} if cert.order_id is not None else {}),
        "ResourceGroupId": "rg-default",
        "CertChain": [_chain_entry(c, now) for c in _chain(cert.cert_pem)],
        "Tags": [],
        **_subject(cert),
    }
    if not params.get_bool("CertFilter"):
        detail["Cert"] = cert.cert_pem
        detail["Key"] = cert.key_pem
    return detail


@rpc("cas", "DeleteUserCertificate", qps=10)
def delete_user_certificate(ctx: RpcContext, params: Params) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        cert = _require_cert(state, params)
        del state.certificates[cert.id]
    return {}


# --- admin: simulate the CA side ----------------------------------------------------------


def _admin_error(status: int, code: str, message: str) -> Response:
    return admin_api.json_reply(status, {"Code": code, "Message": message})


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        raise ValueError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _pki(state: State) -> pki_module.TestPki:
    """The PKI of the platform serving `state` (the one whose root is `ca_bundle`)."""
    platform = admin_api.platform_of(state)
    with state.lock:
        if platform.pki is None:
            # No PKI was made for this emulator: a throwaway one still lets callers issue.
            platform.pki = pki_module.TestPki.create(Path(tempfile.mkdtemp(prefix="emulator-pki-")))
        pki: pki_module.TestPki = platform.pki
        return pki


def _when(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field} must be an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def issue(
    state: State,
    sans: list[str],
    *,
    name: str | None = None,
    order: str = "",
    **recipe: Any,
) -> CasCertificate:
    """Issue a certificate with the emulator's PKI and add it to CAS as "issued".

    `order` "BUY" / "CPACK": a purchased certificate, also listed as such an order.
    `recipe` goes to `TestPki.issue` (ca, days, not_before, not_after, key_type, chain,
    ...). Raises pki.PkiError (a ValueError) for a bad recipe or order type,
    ServiceError(NameRepeat) for a name in use.
    """
    if order and order not in ORDER_TYPES[:2]:
        raise pki_module.PkiError(f"order must be BUY or CPACK, got {order!r}")
    cert_pem, key_pem = _pki(state).issue(sans, **recipe)
    with state.lock:
        cert = certinfo.make_cas_certificate(
            state, name=name or "", cert_pem=cert_pem, key_pem=key_pem, source="issued"
        )
        if not name:
            cert.name = f"cert-{cert.id}"
        if order:
            cert.order_type = order
            cert.order_id = state.next_order_id()
        add_certificate(state, cert)
    return cert


@admin("POST", "cas/issue")
def admin_issue(state: State, request: Request) -> Response:
    """`{"sans": [...], "ca": "one"|"two"|"untrusted", "days": 90, "name": ...,
    "notBefore": ISO, "notAfter": ISO, "keyType": "ec"|"rsa", "chain": ...}` ->
    `{"certId", "identifier", "name", "notAfter"}`; `"order": "BUY"|"CPACK"` makes it a
    purchased certificate (also listed as an order)."""
    try:
        body = _json_body(request)
        sans = body.get("sans")
        if not isinstance(sans, list) or not sans or not all(isinstance(s, str) for s in sans):
            raise ValueError("sans must be a non-empty list of names")
        recipe: dict[str, Any] = {
            "ca": str(body.get("ca", "one")),
            "days": float(body.get("days", 90)),
            "not_before": _when(body.get("notBefore"), "notBefore"),
            "not_after": _when(body.get("notAfter"), "notAfter"),
            "key_type": str(body.get("keyType", "ec")),
            "chain": str(body.get("chain", "complete")),
            "order": str(body.get("order") or "").upper(),
        }
        name = body.get("name")
        cert = issue(state, sans, name=str(name) if name else None, **recipe)
    except (ValueError, TypeError) as err:  # PkiError is a ValueError
        return _admin_error(400, "InvalidParameter", str(err))
    except ServiceError as err:
        return _admin_error(409 if err.code == "NameRepeat" else err.status, err.code, err.message)
    return admin_api.json_reply(
        200,
        {
            "certId": cert.id,
            "identifier": cert.identifier,
            "name": cert.name,
            "notAfter": cert.not_after.isoformat(),
        },
    )


@admin("POST", "cas/revoke")
def admin_revoke(state: State, request: Request) -> Response:
    """`{"certId": N}` or `{"serial": "<hex>"}` or `{"fingerprint": "<SHA-256|SHA-1 hex>"}`,
    optional `"reason"` (RFC 5280 name, e.g. "keyCompromise") -> `{"revoked": true,
    "certIds": [...], "serial": "<hex>"}`; 404 when nothing matches."""
    try:
        body = _json_body(request)
        cert_id = int(body["certId"]) if body.get("certId") is not None else None
        serial = int(str(body["serial"]).replace(":", ""), 16) if body.get("serial") else None
        fingerprint = str(body["fingerprint"]) if body.get("fingerprint") else None
        if cert_id is None and serial is None and fingerprint is None:
            raise ValueError("no selector")
        raw_reason = body.get("reason")
        reason = REVOCATION_REASONS[str(raw_reason)] if raw_reason else None
    except (ValueError, TypeError, KeyError):
        return _admin_error(
            400,
            "InvalidParameter",
            'expected {"certId": <integer>} or {"serial": "<hex>"} or {"fingerprint": "<hex>"},'
            f' optional "reason" one of {", ".join(REVOCATION_REASONS)}',
        )
    try:
        revoked = revoke(state, cert_id, serial=serial, fingerprint=fingerprint, reason=reason)
    except KeyError:
        return _admin_error(404, "NotFound", "No certificate matches.")
    serials = sorted({c.serial for c in revoked}) or [format(serial or 0, "x")]
    return admin_api.json_reply(
        200,
        {
            "revoked": True,
            "certId": revoked[0].id if revoked else None,
            "certIds": [c.id for c in revoked],
            "serial": serials[0],
        },
    )
