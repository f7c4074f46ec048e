"""OSS bucket tagging: PutBucketTags, GetBucketTags, DeleteBucketTags.

Documented rules (OSS API reference, PutBucketTags): at most 20 tags a bucket; a key
of 1-64 bytes that does not start with `aliyun`, `acs:`, `http://` or `https://`
(case-insensitive), a value of at most 128 bytes; PutBucketTags replaces the whole set;
GetBucketTags of an untagged bucket answers an empty `TagSet`; DeleteBucketTags removes
every tag (deleting named keys only is not emulated: the SDK cannot send it).
"""

from __future__ import annotations

from emulator.core import OssContext, Response, oss
from emulator.oss.addressing import ok, require_bucket
from emulator.oss.errors import oss_error
from emulator.xmlutil import child_text, parse_xml, xml_response

MAX_TAGS = 20
MAX_KEY_BYTES = 64
MAX_VALUE_BYTES = 128
_RESERVED_PREFIXES = ("aliyun", "acs:", "http://", "https://")


def _check(key: str, value: str) -> None:
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise oss_error("invalid_tag", f"The tag key {key[:80]!r} must be 1-64 bytes.")
    if key.lower().startswith(_RESERVED_PREFIXES):
        raise oss_error("invalid_tag", f"The tag key {key[:80]!r} uses a reserved prefix.")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise oss_error("invalid_tag", f"The value of tag {key[:80]!r} exceeds 128 bytes.")


@oss("PutBucketTags", "PUT", "bucket", "tagging")
def put_bucket_tags(ctx: OssContext) -> Response:
    """Replace the bucket's tag set with the body's `Tagging/TagSet/Tag[]`."""
    root = parse_xml(ctx.request.body, "Tagging")
    tags: dict[str, str] = {}
    for tag in root.findall("TagSet/Tag"):
        key, value = child_text(tag, "Key") or "", child_text(tag, "Value") or ""
        _check(key, value)
        if key in tags:
            raise oss_error("invalid_tag", f"The tag key {key[:80]!r} is given twice.")
        tags[key] = value
    if len(tags) > MAX_TAGS:
        raise oss_error("invalid_tag", f"A bucket takes at most {MAX_TAGS} tags.")
    with ctx.state.lock:
        require_bucket(ctx).tags = tags
    return ok()


@oss("GetBucketTags", "GET", "bucket", "tagging")
def get_bucket_tags(ctx: OssContext) -> Response:
    """The bucket's tags (an empty TagSet when it has none)."""
    with ctx.state.lock:
        tags = dict(require_bucket(ctx).tags)
    return xml_response(
        200,
        "Tagging",
        {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}},
    )


@oss("DeleteBucketTags", "DELETE", "bucket", "tagging")
def delete_bucket_tags(ctx: OssContext) -> Response:
    """Remove every tag of the bucket."""
    with ctx.state.lock:
        require_bucket(ctx).tags = {}
    return ok(204)
