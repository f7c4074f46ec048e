"""Tags on CDN domains: TagResources, UntagResources, ListTagResources, DescribeTagResources.

The SDK flattens its lists into the query: `ResourceId.1`, `Tag.1.Key`, `Tag.1.Value`,
`TagKey.1`. `ResourceType` must be `DOMAIN`. Tags are kept per domain in
`State.cdn_tags` and leave with the domain (DeleteCdnDomain).

CHOSEN (the CDN reference states the list sizes only): a key is 1-128 characters and a
value at most 128, neither may start with `aliyun` or `acs:` nor contain `http://` or
`https://` (Alibaba Cloud's tag rules), a domain holds at most 20 tags; a violation is
400 `InvalidParameter`; an unknown domain is `InvalidDomain.NotFound`; QPS 100 for the
reads and 30 for the writes; ListTagResources answers 50 entries a page, sorted by
domain and key, `NextToken` the offset of the next page.
"""

from __future__ import annotations

import re
from typing import Any

from emulator.cdn.domains import lookup
from emulator.cdn.errors import invalid
from emulator.core import Params, RpcContext, rpc

MAX_RESOURCES = 50
MAX_TAGS = 20
MAX_KEY = 128
MAX_VALUE = 128
LIST_PAGE = 50
_FORBIDDEN_PREFIXES = ("aliyun", "acs:")


def _indexed(params: Params, prefix: str, suffix: str = "") -> list[str]:
    """`prefix.1<suffix>`, `prefix.2<suffix>`, ... in index order (gaps ignored)."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+){re.escape(suffix)}$")
    found = []
    for name, value in params.raw().items():
        match = pattern.match(name)
        if match:
            found.append((int(match.group(1)), value))
    return [value for _, value in sorted(found)]


def _resource_type(params: Params) -> None:
    if params.required("ResourceType") != "DOMAIN":
        raise invalid("InvalidParameter", 'The specified parameter "ResourceType" is not valid.')


def _resources(params: Params, *, required: bool) -> list[str]:
    ids = [i.strip().lower() for i in _indexed(params, "ResourceId") if i.strip()]
    if required and not ids:
        raise invalid(
            "MissingParameter",
            'The input parameter "ResourceId" that is mandatory for processing this request'
            " is not supplied.",
        )
    if len(ids) > MAX_RESOURCES:
        raise invalid("InvalidParameter", f"At most {MAX_RESOURCES} ResourceIds are allowed.")
    return ids


def _tags(params: Params) -> list[tuple[str, str]]:
    """The `Tag.N.Key` / `Tag.N.Value` pairs, by index (a missing value is "")."""
    keys: dict[int, str] = {}
    values: dict[int, str] = {}
    for name, value in params.raw().items():
        match = re.match(r"^Tag\.(\d+)\.(Key|Value)$", name)
        if match:
            (keys if match.group(2) == "Key" else values)[int(match.group(1))] = value
    if len(keys) > MAX_TAGS:
        raise invalid("InvalidParameter", f"At most {MAX_TAGS} tags are allowed.")
    return [(keys[i], values.get(i, "")) for i in sorted(keys)]


def _check_text(text: str, what: str, limit: int, *, allow_empty: bool) -> None:
    lowered = text.lower()
    if (
        (not text and not allow_empty)
        or len(text) > limit
        or lowered.startswith(_FORBIDDEN_PREFIXES)
        or "http://" in lowered
        or "https://" in lowered
    ):
        raise invalid("InvalidParameter", f'The specified tag {what} "{text}" is not valid.')


@rpc("cdn", "TagResources", qps=30)
def tag_resources(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Attach tags to up to 50 domains (a key already there gets the new value)."""
    _resource_type(params)
    ids = _resources(params, required=True)
    tags = _tags(params)
    if not tags:
        raise invalid(
            "MissingParameter",
            'The input parameter "Tag" that is mandatory for processing this request'
            " is not supplied.",
        )
    for key, value in tags:
        _check_text(key, "key", MAX_KEY, allow_empty=False)
        _check_text(value, "value", MAX_VALUE, allow_empty=True)
    state = ctx.state
    with state.lock:
        names = [lookup(state, i).name for i in ids]
        updated = {}
        for name in names:
            current = dict(state.cdn_tags.get(name, {}))
            current.update(tags)
            if len(current) > MAX_TAGS:
                raise invalid(
                    "InvalidParameter", f"A domain can hold at most {MAX_TAGS} tags: {name}."
                )
            updated[name] = current
        state.cdn_tags.update(updated)
    return {}


@rpc("cdn", "UntagResources", qps=30)
def untag_resources(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Remove tags `TagKey.N` (or all of them with `All=true`) from up to 50 domains."""
    _resource_type(params)
    ids = _resources(params, required=True)
    keys = _indexed(params, "TagKey")
    remove_all = params.get_bool("All")
    if not keys and not remove_all:
        raise invalid(
            "MissingParameter",
            'The input parameter "TagKey" that is mandatory for processing this request'
            " is not supplied.",
        )
    state = ctx.state
    with state.lock:
        names = [lookup(state, i).name for i in ids]
        for name in names:
            current = state.cdn_tags.get(name, {})
            kept = (
                {}
                if remove_all and not keys
                else {k: v for k, v in current.items() if k not in keys}
            )
            if kept:
                state.cdn_tags[name] = kept
            else:
                state.cdn_tags.pop(name, None)
    return {}


def _matches(tags: dict[str, str], wanted: list[tuple[str, str]], values_given: set[int]) -> bool:
    for index, (key, value) in enumerate(wanted):
        if key not in tags:
            return False
        if index in values_given and tags[key] != value:
            return False
    return True


def _filter(params: Params) -> tuple[list[tuple[str, str]], set[int]]:
    wanted = _tags(params)
    raw = params.raw()
    indices = sorted(int(m.group(1)) for name in raw if (m := re.match(r"^Tag\.(\d+)\.Key$", name)))
    with_value = {pos for pos, i in enumerate(indices) if f"Tag.{i}.Value" in raw}
    return wanted, with_value


@rpc("cdn", "ListTagResources", qps=100)
def list_tag_resources(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Every (domain, tag) pair, filtered by ResourceId.N and Tag.N (a tag given
    without a value matches any value); 50 a page with NextToken."""
    _resource_type(params)
    ids = set(_resources(params, required=False))
    wanted, with_value = _filter(params)
    token = params.get_str("NextToken") or "0"
    if not token.isdigit():
        raise invalid("InvalidParameter", 'The specified parameter "NextToken" is not valid.')
    start = int(token)
    state = ctx.state
    with state.lock:
        rows: list[dict[str, str]] = []
        for name in sorted(state.cdn_tags):
            if name not in state.cdn_domains or (ids and name not in ids):
                continue
            tags = state.cdn_tags[name]
            if wanted and not _matches(tags, wanted, with_value):
                continue
            shown = [k for k, _ in wanted] if wanted else sorted(tags)
            rows.extend(
                {"ResourceId": name, "ResourceType": "DOMAIN", "TagKey": k, "TagValue": tags[k]}
                for k in shown
            )
    page = rows[start : start + LIST_PAGE]
    body: dict[str, Any] = {"TagResources": {"TagResource": page}}
    if start + LIST_PAGE < len(rows):
        body["NextToken"] = str(start + LIST_PAGE)
    return body


@rpc("cdn", "DescribeTagResources", qps=100)
def describe_tag_resources(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """The tags of up to 50 domains (`TagResources[]` {ResourceId, Tag[] {Key, Value}})."""
    _resource_type(params)
    ids = _resources(params, required=True)
    wanted, with_value = _filter(params)
    state = ctx.state
    with state.lock:
        names = [lookup(state, i).name for i in ids]
        result = []
        for name in names:
            tags = state.cdn_tags.get(name, {})
            if wanted and not _matches(tags, wanted, with_value):
                continue
            result.append(
                {
                    "ResourceId": name,
                    "Tag": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
                }
            )
    return {"TagResources": result}
