"""Certificates hosted on OSS custom domains: the `CertificateConfiguration` of PutCname.

A certificate is bound by CAS id (`CertId`) or uploaded (`Certificate` + `PrivateKey`).
An upload lands in CAS as an uploaded certificate (PutCname with PEM needs
`yundun-cert:CreateSSLCertificate`), and ListCname shows it as `Type Upload` with that
CAS id. Without `Force`, `PreviousCertId` must name the bound certificate.
"""

from __future__ import annotations

import re
from typing import Any

from emulator import cas, certinfo
from emulator.core import ServiceError
from emulator.oss.errors import oss_error
from emulator.state import BoundCertificate, Cname, State
from emulator.xmlutil import child_bool, child_text

MAX_CERT_ID_LENGTH = 64  # documented (EC 0018-00000206): a CertId must be shorter

_UPLOAD_ERRORS = {
    "cert": "cert_unparsable",
    "key": "cert_unparsable",
    "mismatch": "cert_key_mismatch",
}


def _parse_cert_id(text: str) -> tuple[int, str | None]:
    if len(text) >= MAX_CERT_ID_LENGTH:
        raise oss_error("cert_id_too_long", "The certificate ID is too long.")
    match = re.fullmatch(r"(\d+)(?:-([a-z0-9-]+))?", text)
    if not match:
        raise oss_error("cert_unknown", f"The certificate {text!r} does not exist.")
    return int(match.group(1)), match.group(2)


def _same_certificate(previous: str, bound: BoundCertificate) -> bool:
    try:
        cert_id, region = _parse_cert_id(previous)
    except ServiceError:
        return False
    return cert_id == bound.cert_id and region in (None, bound.cert_region)


def _check_previous(current: BoundCertificate | None, previous: str | None) -> None:
    """Without Force, PreviousCertId must name the bound certificate (EC 0018-00000209)."""
    if current is None:
        if previous:
            raise oss_error(
                "previous_cert",
                f"PreviousCertId {previous!r} does not match: no certificate is bound.",
            )
        return
    bound_id = f"{current.cert_id}-{current.cert_region}"
    if not previous:
        raise oss_error(
            "previous_cert",
            f"A certificate ({bound_id}) is bound: give it as PreviousCertId or set Force to true.",
        )
    if not _same_certificate(previous, current):
        raise oss_error(
            "previous_cert",
            f"PreviousCertId {previous!r} does not match the bound certificate {bound_id}.",
        )


def _bound_by_cert_id(state: State, text: str, domain: str, now: float) -> BoundCertificate:
    cert_id, region = _parse_cert_id(text)
    cert = state.certificates.get(cert_id)
    if cert is None or region not in (None, cert.region):
        raise oss_error("cert_unknown", f"The certificate {text!r} does not exist.")
    if cert.cas_knows_revoked:
        raise oss_error("cert_revoked", f"The certificate {text!r} has been revoked.")
    if not certinfo.cert_covers(cert, domain):
        raise oss_error(
            "cert_not_covering",
            f"The certificate {cert.identifier} does not match the domain {domain}"
            f" (it covers {', '.join(cert.sans)}).",
        )
    return certinfo.bound_from_cas(cert, "CAS", bound_at=now)


def _bound_by_upload(
    state: State, cert_pem: str, key_pem: str, domain: str, now: float
) -> BoundCertificate:
    try:
        bundle = certinfo.parse_bundle(cert_pem, key_pem)
    except certinfo.CertificateProblem as problem:
        raise oss_error(_UPLOAD_ERRORS[problem.kind], problem.message) from None
    names = certinfo.dns_names(bundle.leaf)
    if not any(certinfo.name_covers(name, domain) for name in names):
        raise oss_error(
            "cert_not_covering",
            f"The certificate does not match the domain {domain} (it covers {', '.join(names)}).",
        )
    # The CAS copy: the name is chosen (UNCONFIRMED), unique by its id.
    stored = certinfo.make_cas_certificate(
        state, name="", cert_pem=cert_pem, key_pem=key_pem, source="upload"
    )
    stored.name = f"oss-upload-{stored.id}"
    cas.add_certificate(state, stored)
    return certinfo.bound_from_cas(stored, "Upload", bound_at=now)


def apply_certificate(state: State, cname: Cname, config: Any, now: float) -> None:
    """Validate a CertificateConfiguration and record its change (raises before any write).

    Raises ServiceError InvalidArgument with the EC of the problem (0018-00000206 ...
    -00000217, see `ERRORS`).
    """
    cert_id = child_text(config, "CertId")
    cert_pem = child_text(config, "Certificate")
    key_pem = child_text(config, "PrivateKey")
    previous = child_text(config, "PreviousCertId")
    force = child_bool(config, "Force")
    current = cname.certificate.latest()
    if child_bool(config, "DeleteCertificate"):
        # Chosen: a PreviousCertId given with DeleteCertificate must match too.
        if previous and not force:
            _check_previous(current, previous)
        if current is not None:
            cname.certificate.set(None, now, state.propagation_delay)
        return
    if not (cert_id or cert_pem or key_pem):
        return
    if key_pem and not cert_pem:
        raise oss_error("key_without_cert", "A PrivateKey was given without its Certificate.")
    if cert_pem and not key_pem:
        raise oss_error("cert_without_key", "A Certificate was given without its PrivateKey.")
    if cert_id and cert_pem:
        raise oss_error("cert_both", "Give either CertId or Certificate and PrivateKey.")
    if not force:
        _check_previous(current, previous)
    if cert_id:
        bound = _bound_by_cert_id(state, cert_id, cname.domain, now)
    else:
        assert cert_pem is not None and key_pem is not None
        bound = _bound_by_upload(state, cert_pem, key_pem, cname.domain, now)
    cname.certificate.set(bound, now, state.propagation_delay)
