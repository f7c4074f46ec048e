"""CAS (SSL Certificates Service, 2020-04-07) adapter.

Certificates are deployed by reference (`CertId` for CDN, `CertIdentifier` for OSS);
certpilot never keeps a private key. Catalog reads call GetUserCertificateDetail with
`CertFilter=true`, which omits Cert and Key. The pre-write check of a candidate needs
its public PEM chain (`Cert`) to verify signatures, and CAS has no call that returns
`Cert` without `Key` (CertFilter is all or nothing; GetCertificateDetail and the
listings carry no PEM). So `get_certificate(..., with_pem=True)` asks with
`CertFilter=false` for that one certificate and drops `Key` (and the SM2 keys) from the
answer here, before anything else sees it: no dataclass holds it, nothing logs it.
The revocation check of the candidate asks its CA about that same PEM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from certpilot.cloud._common import (
    Caller,
    TeaAdapter,
    int_or_none,
    normalize_fingerprint,
    parse_time,
)
from certpilot.core.certref import CertRef
from certpilot.core.cloudtypes import CasDetail, CasOrder, CasSummary, ChainEntry

SERVICE = "cas"
# ShowSize: documented default 50, maximum not documented; 50 is safe (chosen).
LIST_PAGE = 50
MAX_PAGES = 10_000


def split_sans(value: Any) -> tuple[str, ...]:
    """`Sans` is a comma-separated string (sometimes a list): split, trim, drop empties."""
    if value is None:
        return ()
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(p.strip() for p in (str(x) for x in parts) if p.strip())


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() == "true"


def parse_summary(item: Mapping[str, Any]) -> CasSummary | None:
    """A `CertificateOrderList[]` item; None for order rows without a certificate id."""
    cas_id = int_or_none(item.get("CertificateId"))
    if cas_id is None:
        return None
    return CasSummary(
        cas_id=cas_id,
        name=str(item.get("Name") or ""),
        common_name=str(item.get("CommonName") or ""),
        sans=split_sans(item.get("Sans")),
        issuer=str(item.get("Issuer") or ""),
        start=parse_time(item.get("StartDate")) or parse_time(item.get("CertStartTime")),
        end=parse_time(item.get("EndDate")) or parse_time(item.get("CertEndTime")),
        expired=_bool(item.get("Expired")),
        upload=_bool(item.get("Upload")),
        status=str(item.get("Status") or ""),
        fingerprint=normalize_fingerprint(item.get("Fingerprint")),
        sha256=normalize_fingerprint(item.get("Sha2")),
    )


# Fields of GetUserCertificateDetail with CertFilter=false that hold private keys.
SECRET_FIELDS = ("Key", "EncryptPrivateKey", "SignPrivateKey")


def parse_detail(body: Mapping[str, Any], cas_id: int, region: str) -> CasDetail:
    """The body of GetUserCertificateDetail; `Cert` becomes `cert_pem`, key fields are
    never read."""
    raw_chain = body.get("CertChain")
    chain = (
        None
        if not raw_chain
        else tuple(
            ChainEntry(
                common_name=str(c.get("CommonName") or ""),
                issuer_common_name=str(c.get("IssuerCommonName") or ""),
                not_before=parse_time(c.get("NotBefore")),
                not_after=parse_time(c.get("NotAfter")),
            )
            for c in raw_chain
        )
    )
    identifier = str(body.get("CertIdentifier") or "") or CertRef(cas_id, region).identifier
    return CasDetail(
        cas_id=int_or_none(body.get("Id")) or cas_id,
        identifier=identifier,
        name=str(body.get("Name") or ""),
        common_name=str(body.get("Common") or ""),
        sans=split_sans(body.get("Sans")),
        issuer=str(body.get("Issuer") or ""),
        not_before=parse_time(body.get("NotBefore")) or parse_time(body.get("StartDate")),
        not_after=parse_time(body.get("NotAfter")) or parse_time(body.get("EndDate")),
        expired=_bool(body.get("Expired")),
        fingerprint=normalize_fingerprint(body.get("Fingerprint")),
        sha256=normalize_fingerprint(body.get("CertSha2") or body.get("Sha2")),
        algorithm=body.get("Algorithm") or None,
        chain=chain,
        cert_pem=str(body.get("Cert") or "") or None,
        order_id=int_or_none(body.get("OrderId")),
        instance_id=str(body.get("InstanceId") or "") or None,
    )


def parse_order(item: Mapping[str, Any]) -> CasOrder:
    """A CPACK / BUY `CertificateOrderList[]` item."""
    return CasOrder(
        order_id=int_or_none(item.get("OrderId")),
        instance_id=str(item.get("InstanceId") or "") or None,
        status=str(item.get("Status") or "").upper(),
        domain=str(item.get("Domain") or item.get("CommonName") or ""),
        end=parse_time(item.get("CertEndTime")) or parse_time(item.get("EndDate")),
    )


class CasAdapter(TeaAdapter):
    """CAS operations certpilot needs. All raise CloudError subclasses."""

    def __init__(
        self, client: Callable[[], Any], caller: Caller, runtime: Callable[[], Any], region: str
    ) -> None:
        super().__init__(client, caller, runtime)
        self._region = region

    def _list_rows(self, order_type: str, status: str | None) -> list[Mapping[str, Any]]:
        """Every `CertificateOrderList[]` row of ListUserCertificateOrder, all pages."""
        from alibabacloud_cas20200407 import models

        found: list[Mapping[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            body = self._call(
                "ListUserCertificateOrder",
                "list_user_certificate_order_with_options",
                models.ListUserCertificateOrderRequest(
                    order_type=order_type, status=status, current_page=page, show_size=LIST_PAGE
                ),
            )
            rows = body.get("CertificateOrderList") or []
            found.extend(rows)
            total = int_or_none(body.get("TotalCount"))
            if not rows or total is None or len(found) >= total:
                break
        return found

    def list_certificates(self, status: str | None = None) -> list[CasSummary]:
        """Certificates held by CAS (ListUserCertificateOrder OrderType=CERT, all pages).

        Without `status` CAS lists the usable ones (ISSUED and WILLEXPIRED); pass
        `status="EXPIRED"` for the expired ones. These rows say nothing of revocation.
        """
        rows = self._list_rows("CERT", status)
        return [s for s in (parse_summary(row) for row in rows) if s is not None]

    def list_orders(self, status: str | None = None) -> list[CasOrder]:
        """Purchased certificates' orders (OrderType BUY, then CPACK; all pages), e.g.
        `status="REVOKED"`: the only revocation CAS itself reports."""
        return [
            parse_order(row) for kind in ("BUY", "CPACK") for row in self._list_rows(kind, status)
        ]

    def get_certificate(self, cas_id: int, *, with_pem: bool = False) -> CasDetail:
        """One certificate's details, without its key.

        By default WITHOUT its PEM either (CertFilter=true). `with_pem=True` also returns
        the public PEM chain (`cert_pem`): CAS then sends the key too (CertFilter=false,
        see the module docstring), which is dropped here at once.
        Raises NotFoundError for an unknown id (by the service's code).
        """
        from alibabacloud_cas20200407 import models

        body = self._call(
            "GetUserCertificateDetail",
            "get_user_certificate_detail_with_options",
            models.GetUserCertificateDetailRequest(cert_id=int(cas_id), cert_filter=not with_pem),
        )
        for secret in SECRET_FIELDS:
            body.pop(secret, None)
        if not with_pem:
            body.pop("Cert", None)
        return parse_detail(body, int(cas_id), self._region)
