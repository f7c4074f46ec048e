"""Plain OSS objects: PutObject, GetObject, HeadObject, DeleteObject (with CRC-64 and MD5).

PutObject honours `x-oss-forbid-overwrite: true` as OSS documents it: when an object of
that key exists the write is refused with 409 `FileAlreadyExists` and the object is
kept (the check and the write are one step under the state lock, as OSS makes them
atomic).
"""

from __future__ import annotations

import base64
import hashlib

from emulator.core import OssContext, Response, oss
from emulator.oss.addressing import ok, refuse_subresources, require_bucket
from emulator.oss.errors import oss_error
from emulator.state import StoredObject
from emulator.xmlutil import http_date


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


@oss("PutObject", "PUT", "object")
def put_object(ctx: OssContext) -> Response:
    refuse_subresources(ctx)
    body = ctx.request.body
    digest = hashlib.md5(body).digest()  # noqa: S324  (OSS ETag / Content-MD5 are MD5)
    content_md5 = base64.b64encode(digest).decode("ascii")
    sent_md5 = ctx.request.header("content-md5")
    if sent_md5 and sent_md5 != content_md5:
        raise oss_error("bad_digest", "The Content-MD5 you specified is not valid.")
    forbid = ctx.request.header("x-oss-forbid-overwrite").strip().lower() == "true"
    state = ctx.state
    with state.lock:
        bucket = require_bucket(ctx)
        if forbid and ctx.key in bucket.objects:
            raise oss_error("object_exists", "The object you specified already exists.")
        obj = StoredObject(
            body=body,
            content_type=ctx.request.header("content-type") or "application/octet-stream",
            last_modified=state.now(),
            etag=f'"{digest.hex().upper()}"',
        )
        bucket.objects[ctx.key] = obj
    return ok(
        headers={
            "ETag": obj.etag,
            "Content-MD5": content_md5,
            "x-oss-hash-crc64ecma": str(crc64ecma(body)),
        }
    )


def _stored_object(ctx: OssContext) -> Response:
    """The addressed object with its headers; raises NoSuchKey."""
    refuse_subresources(ctx)
    with ctx.state.lock:
        obj = require_bucket(ctx).objects.get(ctx.key)
    if obj is None:
        raise oss_error("no_key", "The specified key does not exist.")
    headers = {
        "Content-Type": obj.content_type,
        "ETag": obj.etag,
        "Last-Modified": http_date(obj.last_modified),
        "x-oss-object-type": "Normal",
        "x-oss-storage-class": "Standard",
        "x-oss-hash-crc64ecma": str(crc64ecma(obj.body)),
        "Accept-Ranges": "bytes",
    }
    return Response(200, obj.body, headers)


@oss("GetObject", "GET", "object")
def get_object(ctx: OssContext) -> Response:
    return _stored_object(ctx)


@oss("HeadObject", "HEAD", "object")
def head_object(ctx: OssContext) -> Response:
    # The server writes no body for HEAD; the body sets the right Content-Length.
    return _stored_object(ctx)


@oss("DeleteObject", "DELETE", "object")
def delete_object(ctx: OssContext) -> Response:
    refuse_subresources(ctx)
    with ctx.state.lock:
        require_bucket(ctx).objects.pop(ctx.key, None)
    return ok(204)
