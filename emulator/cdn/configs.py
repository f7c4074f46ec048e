"""Feature configs on CDN domains: BatchSetCdnDomainConfig, DescribeCdnDomainConfigs,
DeleteSpecificConfig."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from emulator.cdn.domains import ensure_writable, lookup
from emulator.cdn.errors import invalid
from emulator.cdn.features import FEATURES, MUTEX, read_back_args, validate_feature
from emulator.cdn.formats import csv
from emulator.core import Params, RpcContext, ServiceError, rpc
from emulator.state import CdnConfig, State

MAX_BATCH_CONFIG_DOMAINS = 50


@dataclass(frozen=True)
class _FunctionRequest:
    function_name: str
    args: tuple[tuple[str, str], ...]
    config_id: int | None
    parent_id: str


def _arg_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _parse_functions(raw: str) -> list[_FunctionRequest]:
    malformed = invalid("InvalidFunctions.Malformed", "Specified Functions is malformed.")
    try:
        items = json.loads(raw)
    except ValueError:
        raise malformed from None
    if not isinstance(items, list) or not items or len(items) > 50:
        raise malformed
    requests = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("functionName"), str):
            raise malformed
        args_raw = item.get("functionArgs", [])
        if not isinstance(args_raw, list):
            raise malformed
        pairs = []
        for arg in args_raw:
            if not isinstance(arg, dict):
                raise malformed
            arg_name = arg.get("argName", arg.get("ArgName"))
            arg_value = arg.get("argValue", arg.get("ArgValue"))
            if not isinstance(arg_name, str) or arg_value is None:
                raise malformed
            pairs.append((arg_name, _arg_text(arg_value)))
        config_id = item.get("configId")
        try:
            config_id = int(config_id) if config_id not in (None, "") else None
        except (TypeError, ValueError):
            raise malformed from None
        parent = item.get("parentId")
        requests.append(
            _FunctionRequest(
                item["functionName"],
                tuple(pairs),
                config_id,
                "" if parent in (None, "") else str(parent),
            )
        )
    for req in requests:
        validate_feature(req.function_name, req.args)
    return requests


def _merge(
    state: State, current: tuple[CdnConfig, ...], requests: Sequence[_FunctionRequest]
) -> tuple[tuple[CdnConfig, ...], list[CdnConfig]]:
    """The domain's configs after `requests`, and the configs they produced (in order)."""
    configs = list(current)
    made: list[CdnConfig] = []
    for req in requests:
        rival = MUTEX.get(req.function_name)
        if rival is not None and any(c.function_name == rival for c in configs):
            raise invalid(
                "FunctionMutex",
                f"The function {req.function_name} conflicts with {rival}; "
                f"delete the {rival} config first.",
            )
        if req.parent_id not in ("", "-1") and not any(
            str(c.config_id) == req.parent_id for c in configs
        ):
            raise invalid("Function.InvalidParentId", "The specified parentId does not exist.")
        same = [c for c in configs if c.function_name == req.function_name]
        keep = next((c for c in same if c.config_id == req.config_id), None)
        if keep is not None:
            target: CdnConfig | None = keep
            config_id = keep.config_id
        else:
            target = None if FEATURES[req.function_name].multi or not same else same[0]
            config_id = state.next_config_id()
        parent = "" if req.parent_id == "-1" else req.parent_id
        config = CdnConfig(config_id, req.function_name, req.args, parent)
        if target is None:
            configs.append(config)
        else:
            configs[configs.index(target)] = config
        made.append(config)
    return tuple(configs), made


@rpc("cdn", "BatchSetCdnDomainConfig", qps=3)  # the current reference (older pages: 30)
def batch_set_cdn_domain_config(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Configure features on up to 50 domains, all or none; returns the ConfigIds."""
    names = csv(params.required("DomainNames"))
    if len(names) > MAX_BATCH_CONFIG_DOMAINS:
        raise invalid("TooManyDomains", "The count of domain is over 50.")
    raw = params.get_str("Functions")
    if raw is None:
        raise invalid("MissingParameterFunctions", "The specified value of Functions is missing.")
    requests = _parse_functions(raw)
    if len(names) * len(requests) > 50:
        raise invalid("TooManyDomains", "The number of domains multiplied by functions is over 50.")
    state = ctx.state
    with state.lock:
        now = state.now()
        domains = [lookup(state, name) for name in dict.fromkeys(names)]
        plans = []
        for domain in domains:
            ensure_writable(domain, now)
            plans.append((domain, *_merge(state, domain.configs.latest(), requests)))
        models: list[dict[str, Any]] = []
        for domain, configs, made in plans:
            domain.configs.set(configs, now, state.propagation_delay)
            domain.modified = now
            models.extend(
                {
                    "ConfigId": c.config_id,
                    "DomainName": domain.name,
                    "FunctionName": c.function_name,
                }
                for c in made
            )
    return {"DomainConfigList": {"DomainConfigModel": models}}


@rpc("cdn", "DescribeCdnDomainConfigs", qps=100)
def describe_cdn_domain_configs(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """A domain's feature configs; `configuring` until each reached the edge."""
    wanted = set(csv(params.get_str("FunctionNames")))
    config_id = params.get_str("ConfigId")
    state = ctx.state
    with state.lock:
        domain = lookup(state, params.required("DomainName"))
        now = state.now()
        live = set(domain.configs.at(now))
        configs = [
            c
            for c in domain.configs.latest()
            if (not wanted or c.function_name in wanted)
            and (config_id is None or str(c.config_id) == config_id)
        ]
    return {
        "DomainConfigs": {
            "DomainConfig": [
                {
                    "ConfigId": str(c.config_id),
                    "FunctionName": c.function_name,
                    "Status": "success" if c in live else "configuring",
                    "ParentId": c.parent_id,
                    "FunctionArgs": {
                        "FunctionArg": [
                            {"ArgName": k, "ArgValue": v}
                            for k, v in read_back_args(c.function_name, c.args)
                        ]
                    },
                }
                for c in configs
            ]
        }
    }


@rpc("cdn", "DeleteSpecificConfig", qps=30)
def delete_specific_config(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Delete configs by ConfigId (comma-separated); all must exist."""
    ids = csv(params.required("ConfigId"))
    state = ctx.state
    with state.lock:
        domain = lookup(state, params.required("DomainName"))
        now = state.now()
        ensure_writable(domain, now)
        current = domain.configs.latest()
        known = {str(c.config_id) for c in current}
        missing = [i for i in ids if i not in known]
        if missing:
            raise ServiceError(
                404,
                "InvalidConfigId.NotFound",
                f"The specified ConfigId {missing[0]} does not exist.",
            )
        remaining = tuple(c for c in current if str(c.config_id) not in ids)
        # Children pointing at a deleted rule lose the reference, as with parentId=-1.
        remaining = tuple(replace(c, parent_id="") if c.parent_id in ids else c for c in remaining)
        domain.configs.set(remaining, now, state.propagation_delay)
        domain.modified = now
    return {}
