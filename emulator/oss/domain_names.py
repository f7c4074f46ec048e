"""Custom domain names of OSS CNAME calls: their checks and where a request carries them."""

from __future__ import annotations

import re
from typing import Any

from emulator.core import OssContext, Request, ServiceError
from emulator.idn import IdnError, to_a_label
from emulator.oss.errors import oss_error
from emulator.xmlutil import child_text, malformed_xml, parse_xml

RESERVED_SUFFIXES = ("aliyuncs.com", "aliyun.com", "aliyun-inc.com", "taobaocdn.com", "taobao.com")

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(raw: str | None) -> str:
    """A custom domain in lower-case A-label form (UTS 46 / IDNA 2008); `*.` allowed as
    the first label.

    Raises ServiceError(InvalidArgument, EC 0018-00000401) for an invalid or
    Alibaba-reserved name.
    """
    try:
        domain = to_a_label(raw or "")
    except IdnError:
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


def cname_element(ctx: OssContext) -> Any:
    """The `Cname` element of a `BucketCnameConfiguration` body; raises MalformedXML."""
    config = parse_xml(ctx.request.body, "BucketCnameConfiguration")
    cname = config.find("Cname")
    if cname is None or not child_text(cname, "Domain"):
        raise malformed_xml("BucketCnameConfiguration/Cname/Domain is required")
    return cname


def body_domain(ctx: OssContext) -> str:
    """The normalized `Cname/Domain` of the request body."""
    return normalize_domain(child_text(cname_element(ctx), "Domain"))


def request_domain(request: Request) -> str | None:
    """The custom domain a CNAME call names (query `cname=D`, else the body's
    `Cname/Domain`), normalized when valid; None when it names none. Never raises: the
    fault matcher (`where: {"domain": ...}`) reads it before the handler checks it."""
    raw = request.query.get("cname") or None
    if raw is None:
        try:
            raw = child_text(parse_xml(request.body, "BucketCnameConfiguration"), "Cname/Domain")
        except ServiceError:
            return None
    if not raw:
        return None
    try:
        return normalize_domain(raw)
    except ServiceError:
        return raw.strip().lower()
