"""OSS buckets: PutBucket, DeleteBucket, ListBuckets, GetBucketInfo."""

from __future__ import annotations

import re
from typing import Any

from emulator.core import OssContext, Response, oss
from emulator.oss.addressing import ok, refuse_subresources, require_bucket, signing_region
from emulator.oss.errors import oss_error
from emulator.state import DEFAULT_REGION, Bucket
from emulator.xmlutil import child_text, iso8601, parse_xml, xml_response

STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
ACLS = ("private", "public-read", "public-read-write")

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def validate_bucket_name(name: str) -> None:
    """OSS naming rules: 3-63 chars of lower-case letters, digits and hyphens, starting
    and ending with a letter or digit. Raises ServiceError(InvalidBucketName)."""
    if not BUCKET_NAME.match(name):
        raise oss_error("bucket_name", f"The specified bucket is not valid: {name!r}.")


@oss("PutBucket", "PUT", "bucket")
def put_bucket(ctx: OssContext) -> Response:
    refuse_subresources(ctx)
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
    return ok(headers={"Location": f"/{ctx.bucket}"})


@oss("DeleteBucket", "DELETE", "bucket")
def delete_bucket(ctx: OssContext) -> Response:
    refuse_subresources(ctx)
    with ctx.state.lock:
        bucket = require_bucket(ctx)
        if bucket.objects:
            raise oss_error("bucket_not_empty", "The bucket you tried to delete is not empty.")
        del ctx.state.buckets[bucket.name]
    return ok(204)


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
        bucket = require_bucket(ctx)
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
