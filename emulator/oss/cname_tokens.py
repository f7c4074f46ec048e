"""CNAME tokens: CreateCnameToken, GetCnameToken, and the `_dnsauth` TXT record that
publishes one (`POST /_emulator/oss/dns-txt`, playing the customer's DNS)."""

from __future__ import annotations

import json
import secrets

from emulator.admin import json_reply
from emulator.core import OssContext, Request, Response, admin, oss
from emulator.oss.addressing import require_bucket
from emulator.oss.domain_names import body_domain, normalize_domain
from emulator.oss.errors import oss_error
from emulator.oss.ownership import CNAME_TOKEN_TTL, valid_token
from emulator.state import State
from emulator.xmlutil import http_date, xml_response


def _token_response(bucket: str, domain: str, token: str, expires: float) -> Response:
    return xml_response(
        200,
        "CnameToken",
        {"Bucket": bucket, "Cname": domain, "Token": token, "ExpireTime": http_date(expires)},
    )


@oss("CreateCnameToken", "POST", "bucket", "cname", "comp=token")
def create_cname_token(ctx: OssContext) -> Response:
    domain = body_domain(ctx)
    state = ctx.state
    with state.lock:
        bucket = require_bucket(ctx)
        token = valid_token(state, bucket.name, domain)
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
        bucket = require_bucket(ctx)
        token = valid_token(state, bucket.name, domain)
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
        return json_reply(
            400, {"Code": "InvalidParameter", "Message": 'expected {"name", "value"}'}
        )
    with state.lock:
        if value is None:
            state.dns_txt.pop(name, None)
        else:
            state.dns_txt[name] = str(value)
    return json_reply(200, {"name": name, "value": value})
