"""OSS custom domains (CNAME): PutCname (with certificate hosting), ListCname, DeleteCname.

The ownership check (`State.verify_domain_ownership`, on by default as OSS makes it
mandatory) applies to new bindings only; deleting a domain that is not bound to the
bucket answers `404 NoSuchCname`.
"""

from __future__ import annotations

from typing import Any

from emulator import certinfo
from emulator.core import OssContext, Response, oss
from emulator.oss.addressing import ok, require_bucket
from emulator.oss.cname_certificates import apply_certificate
from emulator.oss.domain_names import body_domain, cname_element, normalize_domain
from emulator.oss.errors import oss_error
from emulator.oss.ownership import check_ownership
from emulator.state import BoundCertificate, Cname
from emulator.xmlutil import child_text, http_date, iso8601, xml_response


@oss("PutCname", "POST", "bucket", "cname", "comp=add")
def put_cname(ctx: OssContext) -> Response:
    element = cname_element(ctx)
    domain = normalize_domain(child_text(element, "Domain"))
    state = ctx.state
    with state.lock:
        bucket = require_bucket(ctx)
        bound = state.find_cname(domain)
        if bound is not None and bound.bucket != bucket.name:
            raise oss_error(
                "cname_exists", f"The domain {domain} is already bound to another bucket."
            )
        if bound is None and state.verify_domain_ownership:
            check_ownership(state, bucket.name, domain)
        now = state.now()
        cname = bound or Cname(domain=domain, bucket=bucket.name, last_modified=now)
        config = element.find("CertificateConfiguration")
        if config is not None:
            apply_certificate(state, cname, config, now)
        cname.last_modified = now
        bucket.cnames[domain] = cname
    return ok()


def _certificate_entry(bound: BoundCertificate) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Type": bound.cert_type,
        "CertId": f"{bound.cert_id}-{bound.cert_region}",
        "Status": "Enabled",
        "CreationDate": http_date(bound.bound_at),
    }
    try:
        summary = certinfo.summarize(bound.cert_pem, bound.key_pem)
    except certinfo.CertificateProblem:
        return entry
    entry["Fingerprint"] = certinfo.colon_hex(summary.sha1)
    entry["ValidStartDate"] = http_date(summary.not_before)
    entry["ValidEndDate"] = http_date(summary.not_after)
    return entry


@oss("ListCname", "GET", "bucket", "cname")
def list_cname(ctx: OssContext) -> Response:
    with ctx.state.lock:
        bucket = require_bucket(ctx)
        cnames = []
        for domain in sorted(bucket.cnames):
            cname = bucket.cnames[domain]
            bound = cname.certificate.latest()
            cnames.append(
                {
                    "Domain": domain,
                    "LastModified": iso8601(cname.last_modified),
                    "Status": cname.status,
                    "IsWildCard": True if domain.startswith("*.") else None,
                    "Certificate": _certificate_entry(bound) if bound else None,
                }
            )
        owner = bucket.owner_id
    return xml_response(
        200, "ListCnameResult", {"Bucket": bucket.name, "Owner": owner, "Cname": cnames}
    )


@oss("DeleteCname", "POST", "bucket", "cname", "comp=delete")
def delete_cname(ctx: OssContext) -> Response:
    domain = body_domain(ctx)
    with ctx.state.lock:
        bucket = require_bucket(ctx)
        if bucket.cnames.pop(domain, None) is None:
            raise oss_error("no_cname", f"The domain {domain} is not bound to this bucket.")
    return ok()
