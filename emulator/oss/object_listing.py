"""ListObjectsV2 (`GET /?list-type=2`): a bucket's objects by key, paged.

Answered as OSS documents it: keys in lexicographic (UTF-8 byte) order, `prefix`,
`delimiter` (keys sharing the part up to the next delimiter rolled up into
`CommonPrefixes`), `start-after`, `max-keys` (default 100, at most 1000),
`continuation-token` / `NextContinuationToken`, `KeyCount`, and `encoding-type=url`
(Key, Prefix, StartAfter, Delimiter and the tokens URL-encoded). Chosen: the
continuation token is the last key returned, base64-encoded (OSS's is opaque too).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import quote

from emulator.core import OssContext, Response, oss
from emulator.oss.addressing import require_bucket
from emulator.oss.buckets import _int_param
from emulator.oss.errors import oss_error
from emulator.xmlutil import iso8601, xml_response


def _token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def _after_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise oss_error("invalid_argument", "The continuation token is not valid.") from None


@oss("ListObjectsV2", "GET", "bucket", "list-type=2", qps=1000.0)
def list_objects_v2(ctx: OssContext) -> Response:
    query = ctx.request.query
    prefix = query.get("prefix", "")
    delimiter = query.get("delimiter", "")
    start_after = query.get("start-after", "")
    token = query.get("continuation-token", "")
    encoding = query.get("encoding-type", "")
    if encoding not in ("", "url"):
        raise oss_error("invalid_argument", "The encoding-type must be url.")
    max_keys = _int_param(query.get("max-keys"), "max-keys", default=100, lo=1, hi=1000)
    after = _after_token(token) if token else start_after
    with ctx.state.lock:
        bucket = require_bucket(ctx)
        keys = sorted(bucket.objects, key=lambda k: k.encode("utf-8"))
        objects = dict(bucket.objects)
    contents: list[dict[str, Any]] = []
    prefixes: list[str] = []
    last = ""
    truncated = False
    for key in keys:
        if not key.startswith(prefix) or (after and key.encode() <= after.encode()):
            continue
        rolled = None
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                rolled = key[: cut + len(delimiter)]
        if rolled is not None and prefixes and prefixes[-1] == rolled:
            continue
        if len(contents) + len(prefixes) >= max_keys:
            truncated = True
            break
        if rolled is not None:
            prefixes.append(rolled)
            # The next page starts after every key under this prefix.
            last = rolled + "\U0010ffff"
            continue
        obj = objects[key]
        contents.append(
            {
                "Key": key,
                "LastModified": iso8601(obj.last_modified),
                "ETag": obj.etag,
                "Type": "Normal",
                "Size": len(obj.body),
                "StorageClass": "Standard",
            }
        )
        last = key

    def enc(text: str) -> str:
        return quote(text, safe="") if encoding == "url" else text

    for item in contents:
        item["Key"] = enc(item["Key"])
    body: dict[str, Any] = {
        "Name": bucket.name,
        "Prefix": enc(prefix),
        "MaxKeys": max_keys,
        "Delimiter": enc(delimiter) if delimiter else None,
        "StartAfter": enc(start_after) if start_after else None,
        "ContinuationToken": token or None,
        "EncodingType": encoding or None,
        "IsTruncated": truncated,
        "NextContinuationToken": _token(last) if truncated else None,
        "KeyCount": len(contents) + len(prefixes),
        "Contents": contents,
        "CommonPrefixes": [{"Prefix": enc(p)} for p in prefixes],
    }
    return xml_response(200, "ListBucketResult", body)
