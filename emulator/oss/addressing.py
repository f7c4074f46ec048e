"""What an OSS request addresses (its signing region, its bucket, sub-resources), and the
empty answer of a successful write."""

from __future__ import annotations

import re
from collections.abc import Mapping

from emulator.core import OssContext, Request, Response
from emulator.oss.errors import oss_error
from emulator.state import Bucket

_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/oss/aliyun_v4_request")

# Query keys that select another (unemulated) operation on the same method and path.
_SUBRESOURCE_KEYS = (
    "acl append bucketInfo cname comp cors encryption inventory lifecycle location logging"
    " objectMeta policy policyStatus referer replication restore stat symlink tagging"
    " transferAcceleration uploadId uploads versioning versions website worm"
)
_SUBRESOURCES = frozenset(_SUBRESOURCE_KEYS.split())


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


def require_bucket(ctx: OssContext) -> Bucket:
    """The addressed bucket (call with the state lock held).

    Raises NoSuchBucket, or AccessDenied when the request is signed for another region.
    """
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


def refuse_subresources(ctx: OssContext) -> None:
    """Refuse a sub-resource request that fell through to a plain operation (NotImplemented)."""
    extra = _SUBRESOURCES.intersection(ctx.request.query)
    if extra:
        raise oss_error(
            "not_implemented",
            f"The sub-resource {sorted(extra)[0]!r} is not supported by the emulator.",
        )


def ok(status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """An answer without a body."""
    return Response(status, b"", dict(headers or {}))
