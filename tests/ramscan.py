"""Derive, from the code, the RAM actions the three FC functions need.

Two static passes, no cloud and no emulator:

1. Adapters (`certpilot.cloud.*`): every method of an adapter class is scanned for the
   SDK client methods it names (`client.put_cname(...)`, `self._call(..., "describe_
   user_domains_with_options", ...)`, `client.invoke_function_with_options(...)`).
   Each SDK method is resolved to its API action by reading the SDK's own source: Tea
   clients pass `action='SetCdnDomainSSLCertificate'`, the OSS v2 operations pass
   `op_name='PutCname'`. The label certpilot passes to its caller is not trusted.
   Calls to `self._helper(...)` are followed inside the class.
2. Reach: the modules the functions' `index.py` import (transitively, lazy imports
   inside functions included) are scanned for the adapter methods they name
   (`clients.oss.put_object`, `store.put_bucket_policy`, ...). Only those methods'
   actions count: an adapter method no function reaches (one only a CLI command
   uses) needs no grant in the functions' role.

Name matching over-approximates (any `.invoke` reached counts as `FcAdapter.invoke`),
which can only widen the derived set, never hide an action the code calls.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "shared" / "python"
FUNCTIONS_DIR = ROOT / "functions"
CLOUD_PACKAGE = "certpilot.cloud"

# The RAM code of each certpilot service (the adapters' SERVICE constant). CAS is
# "SSL Certificates Service" to RAM: RamCode `yundun-cert`.
RAM_NAMESPACE = {"oss": "oss", "cdn": "cdn", "cas": "yundun-cert", "fc": "fc"}

# API operations whose RAM action is named differently (the API reference of each).
# OSS GetBucketTags: "The permission of oss:GetBucketTagging is required".
# OSS ListObjectsV2: "oss:ListObjects" (the API reference's permission for both list APIs).
RAM_ACTION_NAMES = {
    ("oss", "GetBucketTags"): "GetBucketTagging",
    ("oss", "ListObjectsV2"): "ListObjects",
}

# Actions RAM checks on the caller beyond the API's own, per the API reference.
# OSS PutCname: "if a certificate is attached, these three permissions are required".
ASSOCIATED_ACTIONS: Mapping[str, frozenset[str]] = {
    "oss:PutCname": frozenset(
        {
            "yundun-cert:DescribeSSLCertificatePrivateKey",
            "yundun-cert:DescribeSSLCertificatePublicKeyDetail",
            "yundun-cert:CreateSSLCertificate",
        }
    ),
}

_ACTION = re.compile(r"\baction\s*=\s*'(\w+)'")
_OP_NAME = re.compile(r"\bop_name\s*=\s*'(\w+)'")
_WITH_OPTIONS = re.compile(r"\bself\.(\w+_with_options)\(")
_OPERATION = re.compile(r"\boperations\.(\w+)\(")


@functools.cache
def _parse(source: str) -> ast.Module:
    # Parsed once per text: the derivation runs several times per session, unchanged
    # modules and all.
    return ast.parse(source)


# -- SDK: client method -> API action --------------------------------------------------


def sdk_client(package: str) -> type:
    """The client class of an SDK package (`alibabacloud_cdn20180510` -> its Client)."""
    module = importlib.import_module(f"{package}.client")
    client: type = module.Client
    return client


@functools.cache
def sdk_action(client: type, method: str) -> str | None:
    """The API action `client.<method>` sends, read from the SDK's source; None for a
    name that is not an API method of the client."""
    target = getattr(client, method, None)
    if target is None or method.startswith("_") or not callable(target):
        return None
    try:
        source = inspect.getsource(target)
    except (OSError, TypeError):
        return None
    for pattern in (_ACTION, _OP_NAME):
        found = pattern.search(source)
        if found:
            return found.group(1)
    delegate = _WITH_OPTIONS.search(source)
    if delegate:
        return sdk_action(client, delegate.group(1))
    operation = _OPERATION.search(source)
    if operation:
        operations = importlib.import_module(client.__module__.rsplit(".", 1)[0] + ".operations")
        function = getattr(operations, operation.group(1), None)
        if function is not None:
            found = _OP_NAME.search(inspect.getsource(function))
            return found.group(1) if found else None
    return None


def ram_action(service: str, api: str) -> str:
    """The RAM action of API `api` of certpilot service `service` (`oss`, `cas`, ...)."""
    namespace = RAM_NAMESPACE[service]
    return f"{namespace}:{RAM_ACTION_NAMES.get((service, api), api)}"


# -- pass 1: adapter methods -> actions ------------------------------------------------


def _names(node: ast.AST) -> set[str]:
    """Attribute names and string constants under `node`, bare string statements
    (docstrings) left out."""
    docstrings = {
        id(stmt.value)
        for stmt in ast.walk(node)
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
    }
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute):
            found.add(sub.attr)
        elif (
            isinstance(sub, ast.Constant)
            and isinstance(sub.value, str)
            and id(sub) not in docstrings
        ):
            found.add(sub.value)
    return found


def _self_calls(node: ast.AST) -> set[str]:
    return {
        sub.func.attr
        for sub in ast.walk(node)
        if isinstance(sub, ast.Call)
        and isinstance(sub.func, ast.Attribute)
        and isinstance(sub.func.value, ast.Name)
        and sub.func.value.id == "self"
    }


def _sdk_packages(tree: ast.Module) -> set[str]:
    packages: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            packages.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            packages.update(alias.name.split(".")[0] for alias in node.names)
    return {p for p in packages if p.startswith("alibabacloud_")}


def _service(tree: ast.Module) -> str | None:
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "SERVICE" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            return str(node.value.value)
    return None


def _closure(
    name: str,
    defs: Mapping[str, ast.AST],
    direct: Mapping[str, set[str]],
    seen: frozenset[str] = frozenset(),
) -> set[str]:
    """The actions of method `name` and of the `self.<method>` calls it makes."""
    result = set(direct[name])
    for callee in _self_calls(defs[name]) & defs.keys():
        if callee not in seen:
            result |= _closure(callee, defs, direct, seen | {name})
    return result


@dataclass(frozen=True)
class AdapterScan:
    """What one adapter module's classes call: public method -> RAM actions."""

    module: str
    methods: Mapping[str, frozenset[str]]


def scan_adapter(module: str, source: str) -> AdapterScan | None:
    """The actions each public method of the adapter classes in `source` sends; None
    for a module that calls no SDK (no `SERVICE`, no SDK import)."""
    tree = _parse(source)
    service = _service(tree)
    packages = _sdk_packages(tree)
    if service is None or not packages:
        return None
    clients = [sdk_client(p) for p in sorted(packages)]
    methods: dict[str, frozenset[str]] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        defs = {
            f.name: f for f in cls.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        direct: dict[str, set[str]] = {}
        for name, node in defs.items():
            actions = set()
            for word in _names(node):
                for client in clients:
                    api = sdk_action(client, word)
                    if api is not None:
                        actions.add(ram_action(service, api))
            direct[name] = actions

        for name in defs:
            if not name.startswith("_"):
                methods[name] = frozenset(_closure(name, defs, direct))
    return AdapterScan(module, methods)


# -- pass 2: what the functions reach --------------------------------------------------


def package_sources(base: Path = PACKAGE_DIR) -> dict[str, str]:
    """Every module of the certpilot package: dotted name -> source."""
    sources = {}
    for path in sorted((base / "certpilot").rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources


def function_sources(base: Path = FUNCTIONS_DIR) -> dict[str, str]:
    """The functions' entry modules: `functions/<name>/index.py` -> source."""
    return {
        f"functions.{p.parent.name}.index": p.read_text(encoding="utf-8")
        for p in sorted(base.glob("*/index.py"))
    }


@functools.cache
def _attributes(source: str) -> frozenset[str]:
    return frozenset(n.attr for n in ast.walk(_parse(source)) if isinstance(n, ast.Attribute))


@functools.cache
def _imported(module: str, source: str) -> frozenset[str]:
    """Every dotted name `source` imports, with each of its parents."""
    found: set[str] = set()
    for node in ast.walk(_parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: -node.level]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    closed: set[str] = set()
    for name in found:
        parts = name.split(".")
        closed.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(closed)


def reached_modules(sources: Mapping[str, str], roots: Mapping[str, str]) -> set[str]:
    """The modules of `sources` that the `roots` import, transitively."""
    texts = {**sources, **roots}
    todo = list(roots)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend((_imported(name, texts[name]) & sources.keys()) - seen)
    return seen & set(sources)


@dataclass(frozen=True)
class Derivation:
    """The derived grant: each reached adapter method with its actions, and the set."""

    reached: Mapping[str, frozenset[str]]  # "certpilot.cloud.oss.list_cnames" -> actions
    adapters: tuple[AdapterScan, ...]

    @property
    def actions(self) -> frozenset[str]:
        """Every action a reached adapter method sends, plus the associated ones."""
        called = frozenset().union(*self.reached.values()) if self.reached else frozenset()
        extra = frozenset().union(*(ASSOCIATED_ACTIONS.get(a, frozenset()) for a in called))
        return called | extra


def derive(
    sources: Mapping[str, str] | None = None, roots: Mapping[str, str] | None = None
) -> Derivation:
    """Derive the actions the functions call (module docstring) from `sources` (the
    certpilot package by default) and `roots` (the functions' index.py)."""
    sources = package_sources() if sources is None else sources
    roots = function_sources() if roots is None else roots
    adapters = tuple(
        scan
        for name, text in sorted(sources.items())
        if name.startswith(CLOUD_PACKAGE + ".")
        for scan in [scan_adapter(name, text)]
        if scan is not None
    )
    adapter_modules = {a.module for a in adapters}
    used: set[str] = set()
    for name in reached_modules(sources, roots) - adapter_modules:
        used |= _attributes(sources[name])
    reached = {
        f"{a.module}.{method}": actions
        for a in adapters
        for method, actions in a.methods.items()
        if method in used and actions
    }
    return Derivation(reached, adapters)


# -- what the deployment needs ------------------------------------------------------

# FC delivers an asynchronous invocation's outcome to its destination as the function's
# role (fc3 `asyncInvokeConfig.destinationConfig`): the action each kind of destination
# ARN needs.
DESTINATION_ACTIONS = (
    (re.compile(r"acs:mns:[^:]*:[^:]*:/queues/"), "mns:SendMessage"),
    (re.compile(r"acs:mns:[^:]*:[^:]*:/topics/"), "mns:PublishMessage"),
    (re.compile(r"acs:fc:"), "fc:InvokeFunction"),
    (re.compile(r"acs:eventbridge:"), "eventbridge:PutEvents"),
)


def destinations(spec: Mapping[str, Any]) -> dict[str, str]:
    """Every asynchronous-invocation destination of an s.yaml: `<resource>.<onFailure|
    onSuccess>` -> the destination ARN as written."""
    found = {}
    for name, resource in (spec.get("resources") or {}).items():
        config = ((resource.get("props") or {}).get("asyncInvokeConfig") or {}).get(
            "destinationConfig"
        ) or {}
        for when, target in config.items():
            if isinstance(target, Mapping) and target.get("destination"):
                found[f"{name}.{when}"] = str(target["destination"])
    return found


def deployment_actions(spec: Mapping[str, Any]) -> frozenset[str]:
    """The actions the functions' role needs for the destinations `spec` configures.

    Raises:
        ValueError: a destination of a kind this table does not know.
    """
    actions = set()
    for where, arn in destinations(spec).items():
        kinds = [action for pattern, action in DESTINATION_ACTIONS if pattern.match(arn)]
        if not kinds:
            raise ValueError(f"{where}: no action known for destination {arn}")
        actions.update(kinds)
    return frozenset(actions)


# -- the policy ------------------------------------------------------------------------


def policy_actions(policy: Mapping[str, object]) -> frozenset[str]:
    """Every action an Allow statement of `policy` grants."""
    found: set[str] = set()
    statements = policy.get("Statement")
    assert isinstance(statements, list)
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action")
        found.update([actions] if isinstance(actions, str) else actions)
    return frozenset(found)


def disagreement(policy: frozenset[str], code: frozenset[str]) -> str:
    """'' when equal; otherwise what the policy lacks and what it grants beyond `code`
    (the actions the code and the deployment need)."""
    missing, extra = sorted(code - policy), sorted(policy - code)
    parts = []
    if missing:
        parts.append("needed, not granted: " + ", ".join(missing))
    if extra:
        parts.append("granted, not needed: " + ", ".join(extra))
    return "; ".join(parts)
