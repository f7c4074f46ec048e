"""The emulator's own platform (auth, flow control, faults, stats, FC runner) and its
admin API under `/_emulator/` (unauthenticated, JSON in and out).

Routes: GET stats | GET/POST/DELETE faults | POST reset | GET state | GET/POST settings |
POST estate | GET/POST/DELETE functions | GET invocations | GET info. Other modules add
their own routes with `@admin` (core).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from emulator import fc
from emulator.auth import Authenticator, AuthSettings
from emulator.core import Request, Response, admin
from emulator.edge_nodes import Fleet
from emulator.faults import Faults
from emulator.latency import OFF, Latency, LatencyProfile, profile_from_json
from emulator.propagation import Propagating
from emulator.state import CAS_REGIONS, State
from emulator.throttle import Throttle, ThrottleSettings

# Names (fields, properties) never dumped: any name containing one of these.
_SECRET_FIELDS = ("key_pem", "private_key", "secret", "security_token", "password")
_PRIVATE_KEY_PEM = "PRIVATE KEY-----"
_WITHHELD = "(withheld: holds a private key)"


# Request parameters the ordered call log keeps (identifying ones only: never a key,
# a certificate body or a signature).
LOGGED_PARAMS = frozenset(
    {
        "DomainName",
        "DomainNames",
        "FunctionNames",
        "Functions",
        "ConfigId",
        "SSLProtocol",
        "CertType",
        "CertId",
        "ResourceType",
        "bucket",
        "key",
        "domain",
        "function",
    }
)
CALL_LOG_SIZE = 10_000


class Stats:
    """Calls, throttled calls and errors per action key ("cdn:DescribeUserDomains"), and
    the ordered log of the last `CALL_LOG_SIZE` calls (`GET /_emulator/calls`)."""

    def __init__(self) -> None:
        self._actions: dict[str, dict[str, int]] = {}
        self._calls: collections.deque[dict[str, Any]] = collections.deque(maxlen=CALL_LOG_SIZE)
        self._seq = 0
        self._lock = threading.Lock()

    def record(self, action: str, outcome: str, params: Mapping[str, str] | None = None) -> None:
        """Count one call; `outcome` is "ok", "error" or "throttled". `params` (the
        request's parameters) go to the call log, `LOGGED_PARAMS` only."""
        logged = {
            k: v
            for k, v in (params or {}).items()
            if k in LOGGED_PARAMS or k.startswith("ResourceId.")
        }
        with self._lock:
            self._seq += 1
            self._calls.append(
                {"seq": self._seq, "action": action, "outcome": outcome, "params": logged}
            )
            counts = self._actions.get(action)
            if counts is None:
                counts = self._actions[action] = {"calls": 0, "throttled": 0, "errors": 0}
            counts["calls"] += 1
            if outcome == "throttled":
                counts["throttled"] += 1
            elif outcome == "error":
                counts["errors"] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            actions = {k: dict(v) for k, v in sorted(self._actions.items())}
        totals = {
            name: sum(counts[name] for counts in actions.values())
            for name in ("calls", "throttled", "errors")
        }
        return {"actions": actions, "totals": totals}

    def calls(self, since: int = 0, action: str | None = None) -> list[dict[str, Any]]:
        """The logged calls after sequence number `since`, oldest first."""
        with self._lock:
            return [
                dict(c)
                for c in self._calls
                if c["seq"] > since and (action is None or c["action"] == action)
            ]

    def clear(self) -> None:
        with self._lock:
            self._actions.clear()
            self._calls.clear()


@dataclass
class Defaults:
    """Start-up settings that `POST /_emulator/reset` restores."""

    propagation_delay: float = 0.3
    qps_scale: float = 1.0
    burst: float = 1.0
    functions: list[dict[str, Any]] = field(default_factory=list)
    cas_region: str = "cn-hangzhou"
    latency_profile: LatencyProfile = OFF


class Platform:
    """Everything around the services that one emulated account needs."""

    def __init__(self, state: State, defaults: Defaults | None = None) -> None:
        self.state = state
        self.defaults = defaults or Defaults(
            propagation_delay=state.propagation_delay, cas_region=state.cas_region
        )
        self.auth = Authenticator(state, AuthSettings())
        self.throttle = Throttle(
            ThrottleSettings(qps_scale=self.defaults.qps_scale, burst=self.defaults.burst)
        )
        self.faults = Faults()
        self.latency = Latency(self.defaults.latency_profile)
        self.stats = Stats()
        self.fleet = Fleet()  # the CDN edge's nodes (emulator.edge_nodes)
        self.runner = fc.FunctionRunner()
        self.pki: Any = None
        self.info: dict[str, Any] = {}
        _PLATFORMS[state] = self

    def register_function(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Register an FC function from `{"name", "path", "handler", "env", "layers",
        "memory", "timeout", "asyncRetries", "asyncRetryDelay"}`.

        Raises:
            ValueError: when the spec is incomplete, the code file is missing or a
                value is out of range.
        """
        unknown = set(spec) - _FUNCTION_FIELDS
        if unknown:
            raise ValueError(f"unknown function fields: {sorted(unknown)}")
        if not spec.get("name") or not spec.get("path"):
            raise ValueError("a function needs a name and a path")
        fn = fc.register_function(
            self.state,
            str(spec["name"]),
            str(spec["path"]),
            handler=str(spec.get("handler") or "handler"),
            env=dict(spec.get("env") or {}),
            layers=list(spec.get("layers") or []),
            memory_mb=int(spec.get("memory", 512)),
            timeout_s=float(spec.get("timeout", 60.0)),
            async_retries=spec.get("asyncRetries", 3),
            async_retry_delay_s=float(spec.get("asyncRetryDelay", 0.2)),
            runner=self.runner,
        )
        return fc.describe_function(fn)

    def apply_settings(self, settings: Mapping[str, Any]) -> None:
        """Change run-time settings (see `settings()` for the names); all or nothing.

        Raises:
            ValueError: on an unknown name or an invalid value (not a number, NaN,
                infinite, negative where it must not be, a boolean that is not one).
        """
        unknown = set(settings) - _SETTINGS
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        # Every value is checked before any is applied.
        delay = _setting_number(settings, "propagation_delay", minimum=0.0)
        qps_scale = _setting_number(settings, "qps_scale", minimum=0.0, positive=True)
        burst = _setting_number(settings, "burst", minimum=0.0, positive=True)
        clock_offset = _setting_number(settings, "clock_offset")  # negative: a slow clock
        time_offset = _setting_number(settings, "time_offset")  # the account's time moves on
        overrides = _qps_overrides(settings.get("qps")) if "qps" in settings else None
        token_expired = _setting_bool(settings, "security_token_expired")
        verify_ownership = _setting_bool(settings, "verify_domain_ownership")
        edge_nodes = _edge_nodes(settings)
        edge_selection = _edge_selection(settings)
        cas_region = settings.get("cas_region")
        if cas_region is not None and cas_region not in CAS_REGIONS:
            raise ValueError(f"cas_region must be one of {', '.join(CAS_REGIONS)}")
        latency = (
            profile_from_json(settings["latency_profile"])
            if "latency_profile" in settings
            else None
        )
        if delay is not None:
            with self.state.lock:
                self.state.propagation_delay = delay
        if qps_scale is not None or burst is not None or overrides is not None:
            self.throttle.configure(qps_scale=qps_scale, burst=burst, overrides=overrides)
        if clock_offset is not None:
            self.auth.settings.clock_offset = clock_offset
        if time_offset is not None:
            with self.state.lock:
                self.state.time_offset = time_offset
        if token_expired is not None:
            self.auth.settings.security_token_expired = token_expired
        if verify_ownership is not None:
            with self.state.lock:
                self.state.verify_domain_ownership = verify_ownership
        if edge_nodes is not None or edge_selection is not None:
            self.fleet.configure(nodes=edge_nodes, selection=edge_selection)
        if cas_region is not None:
            # The account's site; certificates already held keep the region they had.
            with self.state.lock:
                self.state.cas_region = cas_region
        if latency is not None:
            self.latency.configure(latency)

    def settings(self) -> dict[str, Any]:
        throttle = self.throttle.settings
        return {
            "propagation_delay": self.state.propagation_delay,
            "qps_scale": throttle.qps_scale,
            "burst": throttle.burst,
            "qps": dict(throttle.overrides),
            "clock_offset": self.auth.settings.clock_offset,
            "time_offset": self.state.time_offset,
            "security_token_expired": self.auth.settings.security_token_expired,
            "verify_domain_ownership": self.state.verify_domain_ownership,
            "edge_nodes": self.fleet.nodes,
            "edge_node_selection": self.fleet.selection,
            "cas_region": self.state.cas_region,
            "latency_profile": self.latency.profile.as_dict(),
        }

    def reset(self) -> None:
        """Empty the account, clear faults, stats and settings; keep keys and the functions
        registered at start-up."""
        self.state.reset()
        self.faults.clear()
        self.stats.clear()
        self.auth.settings = AuthSettings()
        self.auth.nonces.clear()
        self.fleet.reset()
        self.latency.configure(self.defaults.latency_profile)
        self.throttle.configure(
            qps_scale=self.defaults.qps_scale, burst=self.defaults.burst, overrides={}
        )
        with self.state.lock:
            self.state.propagation_delay = self.defaults.propagation_delay
            self.state.cas_region = self.defaults.cas_region
            self.state.time_offset = 0.0
        if self.pki is not None:
            self.pki.forget_revocations()
        for spec in self.defaults.functions:
            self.register_function(spec)

    def close(self) -> None:
        self.runner.close()


_FUNCTION_FIELDS = frozenset(
    {
        "name",
        "path",
        "handler",
        "env",
        "layers",
        "memory",
        "timeout",
        "asyncRetries",
        "asyncRetryDelay",
    }
)

_PLATFORMS: weakref.WeakKeyDictionary[State, Platform] = weakref.WeakKeyDictionary()


def platform_of(state: State) -> Platform:
    """The platform serving `state` (created on first use)."""
    found = _PLATFORMS.get(state)
    return found if found is not None else Platform(state)


_SETTINGS = frozenset(
    {
        "propagation_delay",
        "qps_scale",
        "burst",
        "qps",
        "clock_offset",
        "time_offset",
        "security_token_expired",
        "verify_domain_ownership",
        "edge_nodes",
        "edge_node_selection",
        "cas_region",
        "latency_profile",
    }
)


def _edge_nodes(settings: Mapping[str, Any]) -> int | None:
    value = settings.get("edge_nodes")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        raise ValueError("edge_nodes must be an integer between 1 and 64")
    return value


def _edge_selection(settings: Mapping[str, Any]) -> str | None:
    value = settings.get("edge_node_selection")
    if value is None:
        return None
    if value not in ("round_robin", "random"):
        raise ValueError("edge_node_selection must be round_robin or random")
    return str(value)


def _finite(value: Any, what: str) -> float:
    """`value` as a finite float (a JSON number, or a numeric string).

    Raises:
        ValueError: for booleans, non-numbers, NaN and infinities.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def _setting_number(
    settings: Mapping[str, Any],
    name: str,
    *,
    minimum: float | None = None,
    positive: bool = False,
) -> float | None:
    """The finite number setting `name` (None when absent), at least `minimum`, above 0
    with `positive`.

    Raises:
        ValueError: for an invalid value.
    """
    if name not in settings:
        return None
    number = _finite(settings[name], name)
    if positive and number <= 0:
        raise ValueError(f"{name} must be positive, got {settings[name]!r}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {settings[name]!r}")
    return number


def _setting_bool(settings: Mapping[str, Any], name: str) -> bool | None:
    """The boolean setting `name` (None when absent). Raises ValueError if not a boolean."""
    if name not in settings:
        return None
    value = settings[name]
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def _qps_overrides(value: Any) -> dict[str, float]:
    """`{"cdn:Action": qps >= 0}` (null: none).

    Raises:
        ValueError: when it is not an object of finite numbers >= 0.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f'qps must be an object like {{"cdn:Action": 10}}, got {value!r}')
    overrides = {}
    for action, qps in value.items():
        number = _finite(qps, f"qps[{action!r}]")
        if number < 0:
            raise ValueError(f"qps[{action!r}] must be >= 0, got {qps!r}")
        overrides[str(action)] = number
    return overrides


def json_reply(status: int, body: Any) -> Response:
    """A JSON admin response."""
    return Response(
        status,
        json.dumps(body, default=str).encode("utf-8"),
        {"Content-Type": "application/json"},
    )


def admin_error(status: int, message: str) -> Response:
    code = {400: "InvalidRequest", 404: "NotFound"}.get(status, "Error")
    return json_reply(status, {"Code": code, "Message": message})


def read_json(request: Request) -> Any:
    """The request's JSON body (`{}` when empty).

    Raises:
        ValueError: when the body is not JSON.
    """
    if not request.body.strip():
        return {}
    return json.loads(request.body.decode("utf-8"))


def read_json_object(request: Request, refusal: str) -> dict[str, Any]:
    """The request's JSON body, which must be an object (`{}` when empty).

    Raises:
        ValueError: when the body is not JSON, or `refusal` when it is not an object.
    """
    body = read_json(request)
    if not isinstance(body, dict):
        raise ValueError(refusal)
    return body


def _secret_name(name: str) -> bool:
    return any(s in name.lower() for s in _SECRET_FIELDS)


def dump(value: Any, now: float) -> Any:
    """A JSON-ready copy of state objects, without private keys or secrets.

    Dataclass fields and `@property` values go through the same name filter
    (`_SECRET_FIELDS`); any text that holds a PEM private key is withheld whatever its
    name, so a field or property added later cannot leak one.
    """
    if isinstance(value, Propagating):
        return dump(value.latest(), now)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        names = [f.name for f in dataclasses.fields(value)]
        names += [n for n, a in vars(type(value)).items() if isinstance(a, property)]
        for name in names:
            if _secret_name(name):
                continue
            item = getattr(value, name)
            if not callable(item):
                out[name] = dump(item, now)
        return out
    if isinstance(value, dict):
        return {
            "|".join(map(str, k)) if isinstance(k, tuple) else str(k): dump(v, now)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [dump(v, now) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(dump(v, now) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return {"size": len(value)}
    if isinstance(value, str) and _PRIVATE_KEY_PEM in value:
        return _WITHHELD
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def state_snapshot(state: State) -> dict[str, Any]:
    """Buckets (with CNAMEs, policy, object sizes), CDN domains, certificates, tokens,
    DNS TXT records and functions, as JSON; private keys are left out."""
    with state.lock:
        now = state.now()
        return {
            "account_id": state.account_id,
            "propagation_delay": state.propagation_delay,
            "buckets": dump(state.buckets, now),
            "cdn_domains": dump(state.cdn_domains, now),
            "certificates": dump(state.certificates, now),
            "cname_tokens": dump(state.cname_tokens, now),
            "dns_txt": dump(state.dns_txt, now),
            "functions": {n: fc.describe_function(f) for n, f in state.functions.items()},
        }


@admin("GET", "stats")
def get_stats(state: State, request: Request) -> Response:
    return json_reply(200, platform_of(state).stats.snapshot())


@admin("POST", "faults")
def post_faults(state: State, request: Request) -> Response:
    try:
        body = read_json(request)
        specs = body.get("faults", [body]) if isinstance(body, dict) else body
        added = [platform_of(state).faults.add(spec).describe() for spec in specs]
    except (ValueError, TypeError, AttributeError) as exc:
        return admin_error(400, str(exc))
    return json_reply(200, {"faults": added})


@admin("GET", "faults")
def get_faults(state: State, request: Request) -> Response:
    return json_reply(200, {"faults": platform_of(state).faults.list()})


@admin("DELETE", "faults")
def delete_faults(state: State, request: Request) -> Response:
    faults = platform_of(state).faults
    fault_id = request.query.get("id")
    if fault_id:
        if not fault_id.isdigit() or not faults.remove(int(fault_id)):
            return admin_error(404, f"no fault {fault_id}")
    else:
        faults.clear()
    return json_reply(200, {"faults": faults.list()})


@admin("POST", "reset")
def post_reset(state: State, request: Request) -> Response:
    platform_of(state).reset()
    return json_reply(200, {"reset": True})


@admin("GET", "state")
def get_state(state: State, request: Request) -> Response:
    return json_reply(200, state_snapshot(state))


@admin("GET", "settings")
def get_settings(state: State, request: Request) -> Response:
    return json_reply(200, platform_of(state).settings())


@admin("POST", "settings")
def post_settings(state: State, request: Request) -> Response:
    platform = platform_of(state)
    try:
        platform.apply_settings(read_json_object(request, "settings must be a JSON object"))
    except (ValueError, TypeError) as exc:
        return admin_error(400, str(exc))
    return json_reply(200, platform.settings())


@admin("POST", "estate")
def post_estate(state: State, request: Request) -> Response:
    from emulator.estate import load_estate  # the edge helper's module; loaded on demand

    platform = platform_of(state)
    try:
        body = read_json_object(request, "an estate is a JSON object")
        certificates = load_estate(state, platform.pki, body)
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        # EstateError names the field; the others are gaps in its checks, still the
        # document's fault rather than the emulator's.
        return admin_error(400, f"{type(exc).__name__}: {exc}")
    return json_reply(200, {"loaded": True, "certificates": certificates})


@admin("POST", "functions")
def post_functions(state: State, request: Request) -> Response:
    try:
        body = read_json_object(request, "a function is a JSON object")
        described = platform_of(state).register_function(body)
    except (ValueError, TypeError) as exc:
        return admin_error(400, str(exc))
    return json_reply(200, described)


@admin("GET", "functions")
def get_functions(state: State, request: Request) -> Response:
    with state.lock:
        functions = [fc.describe_function(f) for f in state.functions.values()]
    return json_reply(200, {"functions": functions})


@admin("DELETE", "functions")
def delete_functions(state: State, request: Request) -> Response:
    name = request.query.get("name", "")
    with state.lock:
        removed = state.functions.pop(name, None)
    if removed is None:
        return admin_error(404, f"no function {name!r}")
    return json_reply(200, {"deleted": name})


@admin("GET", "invocations")
def get_invocations(state: State, request: Request) -> Response:
    records = fc.invocations(state, request.query.get("function") or None)
    request_id = request.query.get("request_id")
    if request_id:
        records = [r for r in records if r["requestId"] == request_id]
    return json_reply(200, {"invocations": records})


@admin("GET", "edge/handshakes")
def get_edge_handshakes(state: State, request: Request) -> Response:
    host = request.query.get("host") or None
    return json_reply(200, {"handshakes": platform_of(state).fleet.handshakes(host)})


@admin("GET", "calls")
def get_calls(state: State, request: Request) -> Response:
    since = request.query.get("since", "0")
    if not since.isdigit():
        return admin_error(400, "since must be a sequence number")
    action = request.query.get("action") or None
    return json_reply(200, {"calls": platform_of(state).stats.calls(int(since), action)})


@admin("GET", "info")
def get_info(state: State, request: Request) -> Response:
    return json_reply(200, platform_of(state).info)


def function_spec_from_cli(value: str) -> dict[str, Any]:
    """`NAME=PATH[:HANDLER]` (from `--function`) as a registration spec.

    Raises:
        ValueError: when the value has no `=`.
    """
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--function expects NAME=PATH, got {value!r}")
    handler = "handler"
    file, colon, maybe_handler = path.rpartition(":")
    if colon and maybe_handler.isidentifier() and file.endswith(".py"):
        path, handler = file, maybe_handler
    return {"name": name, "path": str(Path(path).resolve()), "handler": handler}
