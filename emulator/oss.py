"""Emulated OSS: buckets, custom domains (CNAME) with certificate hosting, bucket
policies and plain objects, answered in OSS's XML wire format.

Behaviours the public sources leave open are chosen here and marked "chosen"; the
error codes and `EC` values are listed in `ERRORS` (documented ones say so).

- The signing region (OSS4 `Credential=.../<region>/oss/aliyun_v4_request`) is the
  region a request addresses: PutBucket creates the bucket there (default
  cn-hangzhou) and a bucket-level call signed for another region than the bucket's is
  refused with 403 AccessDenied, as OSS answers a request sent to the wrong endpoint.
- Bucket policies are stored, validated and propagated to the edge; the control plane
  itself does not evaluate them (it speaks plain HTTP only; the edge does).
- PutCname with `Certificate` + `PrivateKey` ("Upload") gets a fresh certificate id
  (`<id>-cn-hangzhou` in ListCname) but is not added to CAS (chosen).
- Binding an expired or not-yet-valid certificate is accepted (chosen: OSS documents
  no refusal); a revoked one is refused.
- PreviousCertId (without Force): must name the bound certificate (`<id>-<region>` or
  a bare id); a first binding may omit it; DeleteCertificate checks it only when given.
- The ownership check (`State.verify_domain_ownership`) applies to new bindings only;
  `POST /_emulator/oss/dns-txt` publishes the `_dnsauth.<domain>` TXT record.
- DeleteCname of a domain that is not bound succeeds (idempotent).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from emulator import certinfo
from emulator.core import OssContext, Request, Response, ServiceError, admin, oss
from emulator.state import (
    CAS_REGION,
    DEFAULT_REGION,
    BoundCertificate,
    Bucket,
    Cname,
    State,
    StoredObject,
)
from emulator.xmlutil import (
    child_bool,
    child_text,
    http_date,
    iso8601,
    malformed_xml,
    parse_xml,
    xml_response,
)

STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
ACLS = ("private", "public-read", "public-read-write")
MAX_POLICY_BYTES = 16 * 1024
CNAME_TOKEN_TTL = 72 * 3600  # documented: a CNAME token expires 72 hours after creation
MAX_CERT_ID_LENGTH = 64  # documented (EC 0018-00000206): a CertId must be shorter
RESERVED_SUFFIXES = ("aliyuncs.com", "aliyun.com", "aliyun-inc.com", "taobaocdn.com", "taobao.com")

# (status, code, EC). "doc" = documented code and EC; "chosen" = picked for the emulator.
ERRORS: dict[str, tuple[int, str, str]] = {
    "no_bucket": (404, "NoSuchBucket", "0015-00000101"),  # doc
    "bucket_exists": (409, "BucketAlreadyExists", "0015-00000104"),  # code doc, EC chosen
    "bucket_name": (400, "InvalidBucketName", "0015-00000001"),  # code doc, EC chosen
    "bucket_not_empty": (409, "BucketNotEmpty", "0015-00000301"),  # code doc, EC chosen
    "wrong_endpoint": (403, "AccessDenied", "0003-00001403"),  # code doc, EC chosen
    "invalid_argument": (400, "InvalidArgument", "0016-00000001"),  # EC chosen
    "no_key": (404, "NoSuchKey", "0026-00000001"),  # doc
    "bad_digest": (400, "InvalidDigest", "0016-00000202"),  # code doc, EC chosen
    "domain_invalid": (400, "InvalidArgument", "0018-00000401"),  # EC doc, code chosen
    "cname_exists": (409, "CnameAlreadyExists", "0018-00000002"),  # code doc, EC chosen
    "need_verify": (400, "NeedVerifyDomainOwnership", "0018-00000301"),  # code doc, rest chosen
    "no_token": (404, "NoSuchCnameToken", "0018-00000302"),  # chosen
    "cert_id_too_long": (400, "InvalidArgument", "0018-00000206"),  # EC doc, code chosen
    "previous_cert": (400, "InvalidArgument", "0018-00000209"),  # EC doc, code chosen
    "key_without_cert": (400, "InvalidArgument", "0018-00000210"),  # EC doc, code chosen
    "cert_without_key": (400, "InvalidArgument", "0018-00000211"),  # chosen
    "cert_unknown": (400, "InvalidArgument", "0018-00000212"),  # chosen
    "cert_not_covering": (400, "InvalidArgument", "0018-00000213"),  # chosen
    "cert_unparsable": (400, "InvalidArgument", "0018-00000214"),  # chosen
    "cert_key_mismatch": (400, "InvalidArgument", "0018-00000215"),  # chosen
    "cert_revoked": (400, "InvalidArgument", "0018-00000216"),  # chosen
    "cert_both": (400, "InvalidArgument", "0018-00000217"),  # chosen
    "policy_invalid": (400, "InvalidPolicyDocument", "0031-00000101"),  # code doc, EC chosen
    "policy_too_large": (400, "PolicyTooLarge", "0031-00000102"),  # chosen
    "no_policy": (404, "NoSuchBucketPolicy", "0031-00000001"),  # code doc, EC chosen
    "not_implemented": (400, "NotImplemented", "0000-00000000"),
}


def oss_error(kind: str, message: str) -> ServiceError:
    """The ServiceError of `ERRORS[kind]` with `message`."""
    status, code, ec = ERRORS[kind]
    return ServiceError(status, code, message, ec=ec)


# --- request helpers -------------------------------------------------------------------

_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/oss/aliyun_v4_request")


def signing_region(request: Request) -> str | None:
    """The region in the OSS4 credential scope (header or presigned query), if any."""
    match = _CREDENTIAL.search(request.header("authorization"))
    if match:
        return match.group(1)
    credential = request.query.get("x-oss-credential", "")
    parts = credential.split("/")
    if len(parts) == 5 and parts[3] == "oss":
        return parts[2]
    return None


def _require_bucket(ctx: OssContext) -> Bucket:
    bucket = ctx.state.buckets.get(ctx.bucket)
    if bucket is None:
        raise oss_error("no_bucket", "The specified bucket does not exist.")
    region = signing_region(ctx.request)
    if region and region != bucket.region:
        raise oss_error(
            "wrong_endpoint",
            "The bucket you are attempting to access must be addressed using the specified"
            f" endpoint. Please send all future requests to this endpoint:"
            f" {bucket.extranet_endpoint}.",
        )
    return bucket


# Query keys that select another (unemulated) operation on the same method and path.
_SUBRESOURCE_KEYS = (
    "acl append bucketInfo cname comp cors encryption inventory lifecycle location logging"
    " objectMeta policy policyStatus referer replication restore stat symlink tagging"
    " transferAcceleration uploadId uploads versioning versions website worm"
)
_SUBRESOURCES = frozenset(_SUBRESOURCE_KEYS.split())


def _plain(ctx: OssContext) -> None:
    """Refuse a sub-resource request that fell through to a plain operation."""
    extra = _SUBRESOURCES.intersection(ctx.request.query)
    if extra:
        raise oss_error(
            "not_implemented",
            f"The sub-resource {sorted(extra)[0]!r} is not supported by the emulator.",
        )


def _ok(status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, b"", dict(headers or {}))


# --- buckets ---------------------------------------------------------------------------

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def validate_bucket_name(name: str) -> None:
    """OSS naming rules: 3-63 chars of lower-case letters, digits and hyphens, starting
    and ending with a letter or digit. Raises ServiceError(InvalidBucketName)."""
    if not _BUCKET_NAME.match(name):
        raise oss_error("bucket_name", f"The specified bucket is not valid: {name!r}.")


@oss("PutBucket", "PUT", "bucket")
def put_bucket(ctx: OssContext) -> Response:
    _plain(ctx)
    validate_bucket_name(ctx.bucket)
    storage_class = "Standard"
    redundancy = "LRS"
    if ctx.request.body.strip():
        config = parse_xml(ctx.request.body, "CreateBucketConfiguration")
        storage_class = child_text(config, "StorageClass") or storage_class
        redundancy = child_text(config, "DataRedundancyType") or redundancy
    if storage_class not in STORAGE_CLASSES:
        raise oss_error("invalid_argument", f"Unsupported storage class {storage_class!r}.")
    if redundancy not in ("LRS", "ZRS"):
        raise oss_error("invalid_argument", f"Unsupported data redundancy type {redundancy!r}.")
    acl = ctx.request.header("x-oss-acl") or "private"
    if acl not in ACLS:
        raise oss_error("invalid_argument", f"Unsupported ACL {acl!r}.")
    region = signing_region(ctx.request) or DEFAULT_REGION
    state = ctx.state
    with state.lock:
        if ctx.bucket in state.buckets:
            raise oss_error(
                "bucket_exists",
                "The requested bucket name is not available. The bucket namespace is shared"
                " by all users of the system. Please select a different name and try again.",
            )
        state.buckets[ctx.bucket] = Bucket(
            name=ctx.bucket,
            region=region,
            created=state.now(),
            owner_id=state.account_id,
            storage_class=storage_class,
            acl=acl,
        )
    return _ok(headers={"Location": f"/{ctx.bucket}"})


@oss("DeleteBucket", "DELETE", "bucket")
def delete_bucket(ctx: OssContext) -> Response:
    _plain(ctx)
    with ctx.state.lock:
        bucket = _require_bucket(ctx)
        if bucket.objects:
            raise oss_error("bucket_not_empty", "The bucket you tried to delete is not empty.")
        del ctx.state.buckets[bucket.name]
    return _ok(204)


def _bucket_summary(bucket: Bucket) -> dict[str, Any]:
    return {
        "CreationDate": iso8601(bucket.created),
        "ExtranetEndpoint": bucket.extranet_endpoint,
        "IntranetEndpoint": f"oss-{bucket.region}-internal.aliyuncs.com",
        "Location": f"oss-{bucket.region}",
        "Name": bucket.name,
        "Region": bucket.region,
        "StorageClass": bucket.storage_class,
        "ResourceGroupId": "rg-default",
    }


@oss("ListBuckets", "GET", "service")
def list_buckets(ctx: OssContext) -> Response:
    query = ctx.request.query
    prefix = query.get("prefix", "")
    marker = query.get("marker", "")
    max_keys = _int_param(query.get("max-keys"), "max-keys", default=100, lo=1, hi=1000)
    with ctx.state.lock:
        names = sorted(
            n for n in ctx.state.buckets if n.startswith(prefix) and (not marker or n > marker)
        )
        page = [ctx.state.buckets[n] for n in names[:max_keys]]
        truncated = len(names) > max_keys
        owner = ctx.state.account_id
    return xml_response(
        200,
        "ListAllMyBucketsResult",
        {
            "Prefix": prefix,
            "Marker": marker,
            "MaxKeys": max_keys,
            "IsTruncated": truncated,
            "NextMarker": page[-1].name if truncated else None,
            "Owner": {"ID": owner, "DisplayName": owner},
            "Buckets": {"Bucket": [_bucket_summary(b) for b in page]},
        },
    )


def _int_param(raw: str | None, name: str, *, default: int, lo: int, hi: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise oss_error("invalid_argument", f"Argument {name} is not an integer.") from None
    if not lo <= value <= hi:
        raise oss_error("invalid_argument", f"Argument {name} must be between {lo} and {hi}.")
    return value


@oss("GetBucketInfo", "GET", "bucket", "bucketInfo")
def get_bucket_info(ctx: OssContext) -> Response:
    with ctx.state.lock:
        bucket = _require_bucket(ctx)
        info = {
            "AccessMonitor": "Disabled",
            "CreationDate": iso8601(bucket.created),
            "ExtranetEndpoint": bucket.extranet_endpoint,
            "IntranetEndpoint": f"oss-{bucket.region}-internal.aliyuncs.com",
            "Location": f"oss-{bucket.region}",
            "StorageClass": bucket.storage_class,
            "TransferAcceleration": "Disabled",
            "CrossRegionReplication": "Disabled",
            "DataRedundancyType": "LRS",
            "Name": bucket.name,
            "ResourceGroupId": "rg-default",
            "Comment": "",
            "BlockPublicAccess": False,
            "Owner": {"DisplayName": bucket.owner_id, "ID": bucket.owner_id},
            "AccessControlList": {"Grant": bucket.acl},
            "ServerSideEncryptionRule": {"SSEAlgorithm": "None"},
            "BucketPolicy": {"LogBucket": "", "LogPrefix": ""},
        }
    return xml_response(200, "BucketInfo", {"Bucket": info})


# --- custom domains (CNAME) -------------------------------------------------------------

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(raw: str | None) -> str:
    """A custom domain in lower-case A-label form; `*.` allowed as the first label.

    Raises ServiceError(InvalidArgument, EC 0018-00000401) for an invalid or
    Alibaba-reserved name.
    """
    domain = (raw or "").strip().rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise oss_error("domain_invalid", f"The domain name {raw!r} is invalid.") from None
    labels = domain.split(".")
    body = labels[1:] if labels and labels[0] == "*" else labels
    if (
        len(labels) < 2
        or len(domain) > 253
        or not body
        or not all(_LABEL.match(label) for label in body)
    ):
        raise oss_error("domain_invalid", f"The domain name {raw!r} is invalid.")
    if any(domain == s or domain.endswith("." + s) for s in RESERVED_SUFFIXES):
        raise oss_error(
            "domain_invalid", f"The domain name {domain!r} is reserved by Alibaba Cloud."
        )
    return domain


def _cname_element(ctx: OssContext) -> Any:
    config = parse_xml(ctx.request.body, "BucketCnameConfiguration")
    cname = config.find("Cname")
    if cname is None or not child_text(cname, "Domain"):
        raise malformed_xml("BucketCnameConfiguration/Cname/Domain is required")
    return cname


def _valid_token(state: State, bucket: str, domain: str) -> str | None:
    entry = state.cname_tokens.get((bucket, domain))
    if entry is None or entry[1] <= state.now():
        return None
    return entry[0]


def _check_ownership(state: State, bucket: str, domain: str) -> None:
    token = _valid_token(state, bucket, domain)
    if token is None or state.dns_txt.get("_dnsauth." + domain.removeprefix("*.")) != token:
        raise oss_error(
            "need_verify",
            "Please verify domain ownership by CreateCnameToken and try again.",
        )


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
    if cert.revoked:
        raise oss_error("cert_revoked", f"The certificate {text!r} has been revoked.")
    if not certinfo.cert_covers(cert, domain):
        raise oss_error(
            "cert_not_covering",
            f"The certificate {cert.identifier} does not match the domain {domain}"
            f" (it covers {', '.join(cert.sans)}).",
        )
    return certinfo.bound_from_cas(cert, "CAS", bound_at=now)


_UPLOAD_ERRORS = {
    "cert": "cert_unparsable",
    "key": "cert_unparsable",
    "mismatch": "cert_key_mismatch",
}


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
    cert_id = state.next_cert_id()
    return BoundCertificate(
        cert_type="Upload",
        cert_id=cert_id,
        cert_region=CAS_REGION,
        cert_name=f"oss-upload-{cert_id}",
        cert_pem=cert_pem,
        key_pem=key_pem,
        bound_at=now,
    )


def _apply_certificate(state: State, cname: Cname, config: Any, now: float) -> None:
    """Validate a CertificateConfiguration and record its change (raises before any write)."""
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


@oss("PutCname", "POST", "bucket", "cname", "comp=add")
def put_cname(ctx: OssContext) -> Response:
    element = _cname_element(ctx)
    domain = normalize_domain(child_text(element, "Domain"))
    state = ctx.state
    with state.lock:
        bucket = _require_bucket(ctx)
        bound = state.find_cname(domain)
        if bound is not None and bound.bucket != bucket.name:
            raise oss_error(
                "cname_exists", f"The domain {domain} is already bound to another bucket."
            )
        if bound is None and state.verify_domain_ownership:
            _check_ownership(state, bucket.name, domain)
        now = state.now()
        cname = bound or Cname(domain=domain, bucket=bucket.name, last_modified=now)
        config = element.find("CertificateConfiguration")
        if config is not None:
            _apply_certificate(state, cname, config, now)
        cname.last_modified = now
        bucket.cnames[domain] = cname
    return _ok()


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
        bucket = _require_bucket(ctx)
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
    domain = normalize_domain(child_text(_cname_element(ctx), "Domain"))
    with ctx.state.lock:
        bucket = _require_bucket(ctx)
        # Chosen: deleting a domain that is not bound succeeds (idempotent).
        bucket.cnames.pop(domain, None)
    return _ok()


def _token_response(bucket: str, domain: str, token: str, expires: float) -> Response:
    return xml_response(
        200,
        "CnameToken",
        {"Bucket": bucket, "Cname": domain, "Token": token, "ExpireTime": http_date(expires)},
    )


@oss("CreateCnameToken", "POST", "bucket", "cname", "comp=token")
def create_cname_token(ctx: OssContext) -> Response:
    domain = normalize_domain(child_text(_cname_element(ctx), "Domain"))
    state = ctx.state
    with state.lock:
        bucket = _require_bucket(ctx)
        token = _valid_token(state, bucket.name, domain)
        if token is None:
            # Documented: a still-valid token is returned again instead of a new one.
            token = secrets.token_hex(16)
            state.cname_tokens[(bucket.name, domain)] = (token, state.now() + CNAME_TOKEN_TTL)
        expires = state.cname_tokens[(bucket.name, domain)][1]
    return _token_response(bucket.name, domain, token, expires)


@oss("GetCnameToken", "GET", "bucket", "comp=token", "cname")
def get_cname_token(ctx: OssContext) -> Response:
    domain = normalize_domain(ctx.request.query.get("cname"))
    state = ctx.state
    with state.lock:
        bucket = _require_bucket(ctx)
        token = _valid_token(state, bucket.name, domain)
        if token is None:
            raise oss_error("no_token", f"No valid CNAME token exists for {domain}.")
        expires = state.cname_tokens[(bucket.name, domain)][1]
    return _token_response(bucket.name, domain, token, expires)


@admin("POST", "oss/dns-txt")
def admin_dns_txt(state: State, request: Request) -> Response:
    """`{"name": "_dnsauth.<domain>", "value": "<token>"}` publishes a DNS TXT record for
    the ownership check (`"value": null` removes it) -> `{"name", "value"}`."""
    try:
        body = json.loads(request.body.decode("utf-8") or "{}")
        name = str(body["name"]).strip().rstrip(".").lower()
        value = body.get("value")
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError):
        return _json(400, {"Code": "InvalidParameter", "Message": 'expected {"name", "value"}'})
    with state.lock:
        if value is None:
            state.dns_txt.pop(name, None)
        else:
            state.dns_txt[name] = str(value)
    return _json(200, {"name": name, "value": value})


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status, json.dumps(body).encode("utf-8"), {"Content-Type": "application/json"})


# --- bucket policy ----------------------------------------------------------------------


def _policy_invalid(message: str) -> ServiceError:
    return oss_error("policy_invalid", message)


def _strings(value: Any, field: str, index: int, *, required: bool = True) -> list[str]:
    if value is None and not required:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise _policy_invalid(
            f"Statement {index}: {field} must be a non-empty string or list of strings."
        )
    return items


_RESOURCE = re.compile(r"^acs:oss:[^:]*:[^:]*:(.+)$")


def validate_policy(body: bytes, bucket: str) -> None:
    """Check a bucket policy the way OSS does before storing it.

    Raises ServiceError: PolicyTooLarge (> 16 KB), InvalidPolicyDocument (not JSON,
    Version not the string "1", no Statement, a statement without Effect Allow|Deny,
    Action or Resource, a Resource outside the bucket, or acs:SourceIp without
    acs:SourceVpc in the same statement).
    """
    if len(body) > MAX_POLICY_BYTES:
        raise oss_error(
            "policy_too_large",
            f"The policy document is {len(body)} bytes; the limit is {MAX_POLICY_BYTES}.",
        )
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _policy_invalid("The policy document is not valid JSON.") from None
    if not isinstance(document, dict):
        raise _policy_invalid("The policy document must be a JSON object.")
    if document.get("Version") != "1":
        raise _policy_invalid('The policy Version must be the string "1".')
    statements = document.get("Statement")
    if not isinstance(statements, list) or not statements:
        raise _policy_invalid("The policy must have a non-empty Statement list.")
    for index, statement in enumerate(statements):
        _validate_statement(statement, index, bucket)


def _validate_statement(statement: Any, index: int, bucket: str) -> None:
    if not isinstance(statement, dict):
        raise _policy_invalid(f"Statement {index} must be a JSON object.")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise _policy_invalid(f'Statement {index}: Effect must be "Allow" or "Deny".')
    _strings(statement.get("Action"), "Action", index)
    _strings(statement.get("Principal"), "Principal", index, required=False)
    for resource in _strings(statement.get("Resource"), "Resource", index):
        match = _RESOURCE.match(resource)
        target = match.group(1) if match else ""
        if target != bucket and not target.startswith(bucket + "/"):
            raise _policy_invalid(
                f"Statement {index}: the resource {resource!r} is not in bucket {bucket}."
            )
    condition = statement.get("Condition")
    if condition is None:
        return
    if not isinstance(condition, dict) or not all(isinstance(v, dict) for v in condition.values()):
        raise _policy_invalid(f"Statement {index}: Condition must map operators to objects.")
    keys = {key.lower() for block in condition.values() for key in block}
    if "acs:sourceip" in keys and "acs:sourcevpc" not in keys:
        raise _policy_invalid(
            f"Statement {index}: a condition on acs:SourceIp must also state acs:SourceVpc."
        )


@oss("PutBucketPolicy", "PUT", "bucket", "policy")
def put_bucket_policy(ctx: OssContext) -> Response:
    state = ctx.state
    with state.lock:
        bucket = _require_bucket(ctx)
        validate_policy(ctx.request.body, bucket.name)
        bucket.policy.set(ctx.request.body.decode("utf-8"), state.now(), state.propagation_delay)
    return _ok()


@oss("GetBucketPolicy", "GET", "bucket", "policy")
def get_bucket_policy(ctx: OssContext) -> Response:
    with ctx.state.lock:
        policy = _require_bucket(ctx).policy.latest()
    if policy is None:
        raise oss_error("no_policy", "The bucket policy does not exist.")
    return Response(200, policy.encode("utf-8"), {"Content-Type": "application/json"})


@oss("DeleteBucketPolicy", "DELETE", "bucket", "policy")
def delete_bucket_policy(ctx: OssContext) -> Response:
    state = ctx.state
    with state.lock:
        bucket = _require_bucket(ctx)
        if bucket.policy.latest() is not None:
            bucket.policy.set(None, state.now(), state.propagation_delay)
    return _ok(204)


# --- objects ---------------------------------------------------------------------------


def _crc64_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xC96C5795D7870F42 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64 = _crc64_table()


def crc64ecma(data: bytes) -> int:
    """CRC-64/XZ (ECMA-182 reflected), the value of `x-oss-hash-crc64ecma`."""
    crc = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc = _CRC64[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def _object_headers(obj: StoredObject) -> dict[str, str]:
    return {
        "Content-Type": obj.content_type,
        "ETag": obj.etag,
        "Last-Modified": http_date(obj.last_modified),
        "x-oss-object-type": "Normal",
        "x-oss-storage-class": "Standard",
        "x-oss-hash-crc64ecma": str(crc64ecma(obj.body)),
        "Accept-Ranges": "bytes",
    }


@oss("PutObject", "PUT", "object")
def put_object(ctx: OssContext) -> Response:
    _plain(ctx)
    body = ctx.request.body
    digest = hashlib.md5(body).digest()  # noqa: S324  (OSS ETag / Content-MD5 are MD5)
    content_md5 = base64.b64encode(digest).decode("ascii")
    sent_md5 = ctx.request.header("content-md5")
    if sent_md5 and sent_md5 != content_md5:
        raise oss_error("bad_digest", "The Content-MD5 you specified is not valid.")
    state = ctx.state
    with state.lock:
        bucket = _require_bucket(ctx)
        obj = StoredObject(
            body=body,
            content_type=ctx.request.header("content-type") or "application/octet-stream",
            last_modified=state.now(),
            etag=f'"{digest.hex().upper()}"',
        )
        bucket.objects[ctx.key] = obj
    return _ok(
        headers={
            "ETag": obj.etag,
            "Content-MD5": content_md5,
            "x-oss-hash-crc64ecma": str(crc64ecma(body)),
        }
    )


def _stored(ctx: OssContext) -> StoredObject:
    with ctx.state.lock:
        obj = _require_bucket(ctx).objects.get(ctx.key)
    if obj is None:
        raise oss_error("no_key", "The specified key does not exist.")
    return obj


@oss("GetObject", "GET", "object")
def get_object(ctx: OssContext) -> Response:
    _plain(ctx)
    obj = _stored(ctx)
    return Response(200, obj.body, _object_headers(obj))


@oss("HeadObject", "HEAD", "object")
def head_object(ctx: OssContext) -> Response:
    _plain(ctx)
    obj = _stored(ctx)
    # The server writes no body for HEAD; the body sets the right Content-Length.
    return Response(200, obj.body, _object_headers(obj))


@oss("DeleteObject", "DELETE", "object")
def delete_object(ctx: OssContext) -> Response:
    _plain(ctx)
    with ctx.state.lock:
        _require_bucket(ctx).objects.pop(ctx.key, None)
    return _ok(204)
