"""Emulated OSS: buckets, custom domains (CNAME) with certificate hosting, bucket
policies and plain objects, answered in OSS's XML wire format.

Importing this package registers every operation; its modules:

- `buckets`: PutBucket, DeleteBucket, ListBuckets, GetBucketInfo
- `cnames`: PutCname, ListCname, DeleteCname; `cname_certificates`: the certificate a
  PutCname binds; `domain_names`: custom domain checks; `ownership`: the ownership check;
  `cname_tokens`: CreateCnameToken, GetCnameToken, `POST /_emulator/oss/dns-txt`
- `bucket_policy`: Put/Get/DeleteBucketPolicy; `bucket_tags`: Put/Get/DeleteBucketTags;
  `objects`: Put/Get/Head/DeleteObject (`x-oss-forbid-overwrite` honoured);
  `object_listing`: ListObjectsV2
- `errors`: the `ERRORS` table; `addressing`: signing region, addressed bucket,
  refused sub-resources

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

# Registration order decides between equally specific operations (emulator.core.oss):
# buckets, custom domains, policies, objects, as the operations were always registered.
# isort: off
from emulator.oss import (  # noqa: F401
    bucket_policy,
    bucket_tags,
    buckets,
    cname_tokens,
    cnames,
    object_listing,
    objects,
)

# isort: on
from emulator.oss.addressing import signing_region
from emulator.oss.bucket_policy import (
    MAX_POLICY_BYTES,
    delete_bucket_policy,
    get_bucket_policy,
    put_bucket_policy,
    validate_policy,
)
from emulator.oss.buckets import (
    ACLS,
    STORAGE_CLASSES,
    delete_bucket,
    get_bucket_info,
    list_buckets,
    put_bucket,
    validate_bucket_name,
)
from emulator.oss.cname_certificates import MAX_CERT_ID_LENGTH
from emulator.oss.cname_tokens import admin_dns_txt, create_cname_token, get_cname_token
from emulator.oss.cnames import delete_cname, list_cname, put_cname
from emulator.oss.domain_names import RESERVED_SUFFIXES, normalize_domain
from emulator.oss.errors import ERRORS, oss_error
from emulator.oss.objects import crc64ecma, delete_object, get_object, head_object, put_object
from emulator.oss.ownership import CNAME_TOKEN_TTL

__all__ = [
    "ACLS",
    "CNAME_TOKEN_TTL",
    "ERRORS",
    "MAX_CERT_ID_LENGTH",
    "MAX_POLICY_BYTES",
    "RESERVED_SUFFIXES",
    "STORAGE_CLASSES",
    "admin_dns_txt",
    "crc64ecma",
    "create_cname_token",
    "delete_bucket",
    "delete_bucket_policy",
    "delete_cname",
    "delete_object",
    "get_bucket_info",
    "get_bucket_policy",
    "get_cname_token",
    "get_object",
    "head_object",
    "list_buckets",
    "list_cname",
    "normalize_domain",
    "oss_error",
    "put_bucket",
    "put_bucket_policy",
    "put_cname",
    "put_object",
    "signing_region",
    "validate_bucket_name",
    "validate_policy",
]
