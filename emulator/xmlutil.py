"""OSS wire helpers: parse request XML, render response XML, format OSS timestamps.

Responses are built from plain Python values so that handlers read like the documented
response shape:

    xml_response(200, "CnameToken", {"Bucket": "b", "Cname": "a.example.com", ...})

A dict renders its keys as child elements in order; a list repeats its parent tag once
per item; `None` omits the element; booleans render as `true` / `false`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

from emulator.core import Response, ServiceError

XML_CONTENT_TYPE = "application/xml"


def malformed_xml(detail: str = "") -> ServiceError:
    """The OSS error for a body that is not the XML document the operation expects."""
    message = (
        "The XML you provided was not well-formed or did not validate against our published schema."
    )
    if detail:
        message = f"{message} ({detail})"
    # EC chosen: the OSS documentation does not list one for MalformedXML in our sources.
    return ServiceError(400, "MalformedXML", message, ec="0016-00000701")


def parse_xml(body: bytes, root: str) -> ET.Element:
    """Parse a request body whose root element must be `root`.

    Raises ServiceError(400, MalformedXML) for an empty body, bad XML or another root.
    """
    if not body.strip():
        raise malformed_xml("empty body")
    try:
        # Local emulator input only; expat refuses external entities and bounds expansion.
        element = ET.fromstring(body)  # noqa: S314
    except ET.ParseError as err:
        raise malformed_xml(str(err)) from None
    if element.tag != root:
        raise malformed_xml(f"expected root element {root}, got {element.tag}")
    return element


def child_text(element: ET.Element | None, path: str) -> str | None:
    """Text of the sub-element at `path` (stripped), or None when it is absent."""
    if element is None:
        return None
    found = element.find(path)
    if found is None:
        return None
    return (found.text or "").strip()


def child_bool(element: ET.Element | None, path: str) -> bool:
    """A `true`/`false` sub-element; absent or anything else but `true` is False."""
    return (child_text(element, path) or "").lower() == "true"


def _scalar(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _append(parent: ET.Element, tag: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        element = ET.SubElement(parent, tag)
        for key, child in value.items():
            _append(element, key, child)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _append(parent, tag, item)
    else:
        ET.SubElement(parent, tag).text = _scalar(value)


def render_xml(root: str, content: Mapping[str, Any]) -> bytes:
    """Serialize `content` under a `root` element as a UTF-8 XML document."""
    element = ET.Element(root)
    for key, value in content.items():
        _append(element, key, value)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="utf-8")


def xml_response(
    status: int,
    root: str,
    content: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An OSS response whose body is the XML document `root` with `content`."""
    merged = {"Content-Type": XML_CONTENT_TYPE}
    merged.update(headers or {})
    return Response(status, render_xml(root, content), merged)


def iso8601(timestamp: float) -> str:
    """OSS ISO 8601 time with milliseconds, e.g. `2021-09-15T02:35:07.000Z`."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def http_date(moment: float | datetime) -> str:
    """RFC 1123 time as OSS writes it, e.g. `Wed, 15 Sep 2021 02:35:06 GMT`."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    return format_datetime(moment.astimezone(timezone.utc), usegmt=True)
