"""CDN domains: names, origins, status, and the actions that add, stop, start and delete them."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from emulator.cdn.errors import busy, invalid, not_found
from emulator.core import Params, RpcContext, ServiceError, rpc
from emulator.idn import IdnError, to_a_label
from emulator.propagation import Propagating
from emulator.state import CdnConfig, CdnDomain, State

CNAME_SUFFIX = "w.kunlunca.com"
CDN_TYPES = ("web", "download", "video")
SCOPES = ("domestic", "overseas", "global")
SOURCE_TYPES = ("ipaddr", "domain", "oss", "fc_domain")
MAX_SOURCES = 20
# Every DomainStatus the SDK documents (DescribeUserDomains `DomainStatus`).
DOMAIN_STATUSES = (
    "online",
    "offline",
    "configuring",
    "configure_failed",
    "checking",
    "check_failed",
    "stopping",
    "deleting",
)
# CHOSEN: a write to a domain in one of these states answers ServiceBusy (a change of
# the domain itself is on its way); the edge keeps serving what it served before.
BUSY_STATUSES = frozenset({"configuring", "stopping", "deleting"})
# CHOSEN: the states in which the edge serves the domain's last configuration.
SERVING_STATUSES = frozenset({"online", "configuring", "configure_failed"})

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def normalize_domain_name(raw: str) -> str:
    """The canonical (lower-case A-label, UTS 46 / IDNA 2008) form of a CDN domain name.

    A leading "." or "*." marks a wildcard domain and is kept as given.
    Raises ServiceError `InvalidDomainName.Malformed` when the name is not a host name.
    """
    name = raw.strip().rstrip(".")
    prefix = ""
    for marker in ("*.", "."):
        if name.startswith(marker):
            prefix, name = marker, name[len(marker) :]
            break
    try:
        labels = to_a_label(name).split(".")
    except IdnError:
        labels = []
    if (
        len(labels) < 2
        or len(name) > 253
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise invalid("InvalidDomainName.Malformed", "Specified DomainName is malformed.")
    return prefix + ".".join(labels)


def new_domain(
    name: str,
    *,
    cdn_type: str,
    sources: list[dict[str, Any]],
    scope: str,
    status: str,
    now: float,
    configs: tuple[CdnConfig, ...] = (),
) -> CdnDomain:
    """A CDN domain created at `now` with its CNAME (`all.<parent>` for a wildcard)."""
    cname_host = "all" + name.lstrip("*") if name.startswith((".", "*.")) else name
    return CdnDomain(
        name=name,
        cdn_type=cdn_type,
        sources=sources,
        cname=f"{cname_host}.{CNAME_SUFFIX}",
        created=now,
        scope=scope,
        status=Propagating(status),
        configs=Propagating(configs),
        modified=now,
    )


def lookup(state: State, raw: str) -> CdnDomain:
    """The account's domain named `raw`; raises InvalidDomain.NotFound."""
    try:
        key = normalize_domain_name(raw)
    except ServiceError:
        key = raw.strip().lower()
    domain = state.cdn_domains.get(key)
    if domain is None:
        raise not_found(raw)
    return domain


def _in_flight(value: Propagating[Any], now: float) -> bool:
    """A write still on its way to the edge (an estate's never-settling
    `edge_certificate` models a stuck edge, not a change in flight)."""
    return not value.settled(now) and value.due() != float("inf")


def domain_status(domain: CdnDomain, now: float) -> str:
    """DomainStatus as the control plane reports it at `now`.

    A status pinned through the estate or the admin API wins; else a pending
    add/start/stop shows as `configuring` / `stopping`, and a certificate or feature
    write still propagating as `configuring`, then the domain's own status again.
    """
    if domain.pinned_status is not None:
        return domain.pinned_status
    target = domain.status.latest()
    if not domain.status.settled(now):
        return "stopping" if target == "offline" else "configuring"
    if _in_flight(domain.ssl, now) or _in_flight(domain.configs, now):
        return "configuring"
    return target


def serves(domain: CdnDomain, now: float, *, node: int | None = None, nodes: int = 1) -> bool:
    """Whether the edge (node `node` of `nodes`) serves the domain at `now`."""
    if domain.pinned_status is not None:
        return domain.pinned_status in SERVING_STATUSES
    return domain.status.at(now, node=node, nodes=nodes) == "online"


def ensure_writable(domain: CdnDomain, now: float) -> None:
    """Raise ServiceBusy while the domain is `configuring` (its add/start/stop, or an
    earlier certificate or feature write, is still propagating), `stopping` or
    `deleting`: the documented "domain is configuring, please retry later"."""
    if domain_status(domain, now) in BUSY_STATUSES:
        raise busy()


def _parse_sources(raw: str) -> list[dict[str, Any]]:
    malformed = invalid("InvalidSources.Malformed", "Specified Sources is malformed.")
    try:
        items = json.loads(raw)
    except ValueError:
        raise malformed from None
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items or len(items) > MAX_SOURCES:
        raise malformed
    sources = []
    for item in items:
        if not isinstance(item, dict):
            raise malformed
        kind = str(item.get("type", ""))
        content = str(item.get("content", "")).strip()
        try:
            port = int(item.get("port", 80))
            priority = str(int(item.get("priority", 20)))
            weight = str(int(item.get("weight", 10)))
        except (TypeError, ValueError):
            raise malformed from None
        if kind not in SOURCE_TYPES or not content or not 0 < port < 65536:
            raise malformed
        if kind == "ipaddr":
            try:
                ipaddress.ip_address(content)
            except ValueError:
                raise malformed from None
        else:
            try:
                normalize_domain_name(content)
            except ServiceError:
                raise malformed from None
        sources.append(
            {"type": kind, "content": content, "port": port, "priority": priority, "weight": weight}
        )
    return sources


@rpc("cdn", "AddCdnDomain", qps=30)
def add_cdn_domain(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Add an accelerated domain: `configuring` until the propagation delay has passed."""
    name = normalize_domain_name(params.required("DomainName"))
    cdn_type = params.required("CdnType")
    if cdn_type not in CDN_TYPES:
        raise invalid("InvalidCdnType.ValueNotSupported", f"CdnType {cdn_type} is not supported.")
    scope = params.get_str("Scope", "domestic") or "domestic"
    if scope not in SCOPES:
        raise invalid("InvalidScope.ValueNotSupported", f"Scope {scope} is not supported.")
    sources = _parse_sources(params.required("Sources"))
    state = ctx.state
    with state.lock:
        if name in state.cdn_domains:
            raise invalid("DomainAlreadyExist", "This domain name is exist already.")
        now = state.now()
        domain = new_domain(
            name, cdn_type=cdn_type, sources=sources, scope=scope, status="configuring", now=now
        )
        domain.status.set("online", now, state.propagation_delay)
        state.cdn_domains[name] = domain
    return {}


def _set_status(ctx: RpcContext, params: Params, target: str) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        domain = lookup(state, params.required("DomainName"))
        now = state.now()
        ensure_writable(domain, now)
        if domain.status.latest() != target:
            domain.status.set(target, now, state.propagation_delay)
            domain.modified = now
    return {}


@rpc("cdn", "StopCdnDomain", qps=30)  # QPS not in the reference table: chosen
def stop_cdn_domain(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Take a domain offline (the edge stops serving it after the delay)."""
    return _set_status(ctx, params, "offline")


@rpc("cdn", "StartCdnDomain", qps=30)  # QPS not in the reference table: chosen
def start_cdn_domain(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Bring a stopped domain back online."""
    return _set_status(ctx, params, "online")


@rpc("cdn", "DeleteCdnDomain", qps=10)  # QPS not in the reference table: chosen
def delete_cdn_domain(ctx: RpcContext, params: Params) -> dict[str, Any]:
    """Remove a domain and everything configured on it."""
    state = ctx.state
    with state.lock:
        domain = lookup(state, params.required("DomainName"))
        ensure_writable(domain, state.now())
        del state.cdn_domains[domain.name]
        state.cdn_tags.pop(domain.name, None)
    return {}
