"""The `cdn_domains` section of an estate: CDN domains with origins, configs and certificates."""

from __future__ import annotations

from typing import Any

from emulator.cdn.domains import CDN_TYPES, DOMAIN_STATUSES, SCOPES, SOURCE_TYPES, new_domain
from emulator.cdn.features import FEATURES, MUTEX, arg_choices
from emulator.estate.bindings import bound_certificate
from emulator.estate.fields import (
    EstateError,
    as_choice,
    as_domain,
    as_list,
    as_object,
    as_str,
    names,
)
from emulator.estate.plan import Plan
from emulator.state import CdnConfig, CdnDomain, State

_KEYS = {
    "name",
    "origin",
    "sources",
    "cdn_type",
    "scope",
    "status",
    "certificate",
    "edge_certificate",
    "configs",
}
# The arguments whose values an estate checks (the API checks the values of all of them).
_CHECKED_ARGS = ("enable", "enabled", "https_rewrite", "http_rewrite", "scheme_origin")


def cdn_domain(state: State, value: Any, where: str, now: float, plan: Plan) -> CdnDomain:
    """The CDN domain `value` describes, its origin a planned or existing bucket or `sources`.

    Raises EstateError naming the bad field.
    """
    item = as_object(value, where, _KEYS, required=("name",))
    name = as_domain(item["name"], f"{where}.name", wildcard=True)
    if name in state.cdn_domains or any(d.name == name for d in plan.cdn_domains):
        raise EstateError(f"{where}.name: CDN domain {name} already exists")
    if ("origin" in item) == ("sources" in item):
        raise EstateError(f"{where}: give exactly one of origin (a bucket name) or sources")
    if "origin" in item:
        sources = [_bucket_origin(state, item["origin"], f"{where}.origin", plan)]
    else:
        sources = [
            _source(s, f"{where}.sources[{i}]")
            for i, s in enumerate(as_list(item["sources"], f"{where}.sources"))
        ]
        if not sources:
            raise EstateError(f"{where}.sources: at least one source is needed")
    cdn_type = as_choice(item.get("cdn_type", "web"), f"{where}.cdn_type", CDN_TYPES)
    scope = as_choice(item.get("scope", "domestic"), f"{where}.scope", SCOPES)
    status = as_choice(item.get("status", "online"), f"{where}.status", DOMAIN_STATUSES)
    configs = _configs(state, item.get("configs", {}), f"{where}.configs")
    ssl = bound_certificate(item, where, "cas", "upload", now, plan)
    # online / offline are the domain's own settled state; any other status is pinned
    # (reported as it is, until cleared through the admin API) over an online domain.
    domain = new_domain(
        name,
        cdn_type=cdn_type,
        sources=sources,
        scope=scope,
        status="offline" if status == "offline" else "online",
        now=now,
        configs=configs,
    )
    if status not in ("online", "offline"):
        domain.pinned_status = status
    domain.ssl = ssl
    return domain


def _bucket_origin(state: State, value: Any, where: str, plan: Plan) -> dict[str, Any]:
    origin = as_str(value, where)
    bucket = state.buckets.get(origin) or next((b for b in plan.buckets if b.name == origin), None)
    if bucket is None:
        known = sorted([*state.buckets, *(b.name for b in plan.buckets)])
        raise EstateError(f"{where}: no bucket named {origin!r} (known: {names(known)})")
    return {
        "type": "oss",
        "content": bucket.bucket_domain,
        "port": 80,
        "priority": "20",
        "weight": "10",
    }


def _source(value: Any, where: str) -> dict[str, Any]:
    item = as_object(
        value,
        where,
        {"type", "content", "port", "priority", "weight"},
        required=("type", "content"),
    )
    kind = as_choice(item["type"], f"{where}.type", SOURCE_TYPES)
    content = as_str(item["content"], f"{where}.content")
    port = item.get("port", 80)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise EstateError(f"{where}.port: expected a port number, got {port!r}")
    out: dict[str, Any] = {"type": kind, "content": content, "port": port}
    for key, default in (("priority", "20"), ("weight", "10")):
        raw = item.get(key, default)
        if isinstance(raw, bool) or not str(raw).isdigit():
            raise EstateError(f"{where}.{key}: expected a number, got {raw!r}")
        out[key] = str(int(raw))
    return out


def _configs(state: State, value: Any, where: str) -> tuple[CdnConfig, ...]:
    item = as_object(value, where, None)
    out = []
    for function, raw_args in item.items():
        feature = FEATURES.get(function)
        if feature is None:
            raise EstateError(
                f"{where}: unknown CDN function {function!r} (known: {names(sorted(FEATURES))})"
            )
        other = MUTEX.get(function)
        if other is not None and other in item:
            raise EstateError(f"{where}: {function} and {other} exclude each other")
        known = set(feature.required) | set(feature.optional)
        args = as_object(raw_args, f"{where}.{function}", known)
        missing = [a for a in feature.required if a not in args]
        if missing:
            raise EstateError(f"{where}.{function}: missing argument {', '.join(missing)}")
        pairs = tuple(
            (arg, _arg_text(value, f"{where}.{function}.{arg}")) for arg, value in args.items()
        )
        for arg, text in pairs:
            choices = arg_choices(arg) if arg in _CHECKED_ARGS else None
            if choices is not None and text not in choices:
                raise EstateError(
                    f"{where}.{function}.{arg}: expected one of {names(list(choices))}, "
                    f"got {text!r}"
                )
        out.append(CdnConfig(state.next_config_id(), function, pairs))
    return tuple(out)


def _arg_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise EstateError(f"{where}: expected a string, number or boolean, got {value!r}")
