"""The `buckets` section of an estate: buckets with objects, a policy and custom domains."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from typing import Any

from emulator.estate.bindings import bound_certificate
from emulator.estate.fields import (
    EstateError,
    as_bool,
    as_choice,
    as_domain,
    as_list,
    as_object,
    as_str,
)
from emulator.estate.plan import Plan
from emulator.oss.buckets import ACLS, BUCKET_NAME
from emulator.policy import PolicyError, https_only_policy, parse_policy
from emulator.propagation import Propagating
from emulator.state import DEFAULT_REGION, Bucket, Cname, State, StoredObject

STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive")

_REGION = re.compile(r"^[a-z]{2,}(?:-[a-z0-9]+)+$")


def bucket(state: State, value: Any, where: str, now: float, plan: Plan, taken: set[str]) -> Bucket:
    """The bucket `value` describes; `taken` collects the custom domains bound so far.

    Raises EstateError naming the bad field.
    """
    item = as_object(
        value,
        where,
        {"name", "region", "acl", "storage_class", "objects", "policy", "https_only", "cnames"},
        required=("name",),
    )
    name = as_str(item["name"], f"{where}.name")
    if not BUCKET_NAME.match(name) or "--" in name:
        raise EstateError(
            f"{where}.name: {name!r} is not a valid bucket name (3-63 characters: lower-case "
            "letters, digits and single hyphens, starting and ending with a letter or digit)"
        )
    if name in state.buckets or any(b.name == name for b in plan.buckets):
        raise EstateError(f"{where}.name: bucket {name!r} already exists")
    region = as_str(item.get("region", DEFAULT_REGION), f"{where}.region")
    if not _REGION.match(region):
        raise EstateError(f"{where}.region: {region!r} is not a region id like 'cn-hangzhou'")
    acl = as_choice(item.get("acl", "private"), f"{where}.acl", ACLS)
    storage_class = as_choice(
        item.get("storage_class", "Standard"), f"{where}.storage_class", STORAGE_CLASSES
    )
    made = Bucket(name, region, now, state.account_id, storage_class=storage_class, acl=acl)
    for key, text in as_object(item.get("objects", {}), f"{where}.objects", None).items():
        if not key or key.startswith("/"):
            raise EstateError(f"{where}.objects: invalid object key {key!r}")
        body = as_str(text, f"{where}.objects[{key!r}]", allow_empty=True).encode("utf-8")
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        digest = hashlib.md5(body, usedforsecurity=False).hexdigest().upper()
        made.objects[key] = StoredObject(body, content_type, now, f'"{digest}"')
    made.policy = Propagating(_policy(item, where, name))
    for index, entry in enumerate(as_list(item.get("cnames", []), f"{where}.cnames")):
        cname = _cname(entry, f"{where}.cnames[{index}]", name, now, plan, taken)
        made.cnames[cname.domain] = cname
    return made


def _policy(item: dict[str, Any], where: str, bucket_name: str) -> str | None:
    if "policy" in item and "https_only" in item:
        raise EstateError(f"{where}: give either policy or https_only, not both")
    if as_bool(item.get("https_only", False), f"{where}.https_only"):
        return https_only_policy(bucket_name)
    if "policy" not in item:
        return None
    raw = item["policy"]
    policy = raw if isinstance(raw, str) else json.dumps(raw)
    try:
        parse_policy(policy)
    except PolicyError as err:
        raise EstateError(f"{where}.policy: {err}") from None
    return policy


def _cname(value: Any, where: str, bucket: str, now: float, plan: Plan, taken: set[str]) -> Cname:
    item = as_object(
        value, where, {"domain", "certificate", "edge_certificate", "status"}, required=("domain",)
    )
    domain = as_domain(item["domain"], f"{where}.domain", wildcard=False)
    if domain in taken:
        raise EstateError(f"{where}.domain: {domain} is already bound to a bucket")
    taken.add(domain)
    status = as_choice(item.get("status", "Enabled"), f"{where}.status", ("Enabled", "Disabled"))
    certificate = bound_certificate(item, where, "CAS", "Upload", now, plan)
    return Cname(domain, bucket, status=status, last_modified=now, certificate=certificate)
