"""What every emulated service shares: requests, errors, and the operation registries.

Service modules (`oss`, `cdn`, `cas`, `fc`) register their operations with the
decorators below; `server` dispatches to them. An operation raises `ServiceError`
(or a subclass) for any failure, which the server renders in the service's own
wire format (OSS XML with `EC`; RPC JSON with `Code`, `Message`, `RequestId`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.state import State

CDN_VERSION = "2018-05-10"
CAS_VERSION = "2020-04-07"
FC_VERSION = "2023-03-30"
RPC_PRODUCTS = {CDN_VERSION: "cdn", CAS_VERSION: "cas"}


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


@dataclass
class Request:
    """An HTTP request as received by the control plane."""

    method: str
    path: str  # percent-decoded path, without the query string
    raw_path: str  # the path exactly as sent (for signature checks)
    query: dict[str, str]  # percent-decoded; a key given without value maps to ""
    raw_query: str
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes
    request_id: str = field(default_factory=new_request_id)
    # The operation's parameters once it was recognised and authenticated (call log).
    params: Mapping[str, str] = field(default_factory=dict)
    # "read" or "write" once the operation is known (the latency profile's class).
    kind: str | None = None

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ServiceError(Exception):
    """A failure answered in the service's wire format.

    `ec` is the OSS error-detail code (`x-oss-ec`); RPC services ignore it.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        ec: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.ec = ec
        self.headers = dict(headers or {})


class Params:
    """The parameters of an RPC call (query string, or form body)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def raw(self) -> dict[str, str]:
        return dict(self._values)

    def get_str(
        self, name: str, default: str | None = None, *, required: bool = False
    ) -> str | None:
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise ServiceError(
                    400,
                    "MissingParameter",
                    f'The input parameter "{name}" that is mandatory for processing this request'
                    " is not supplied.",
                )
            return default
        return value

    def required(self, name: str) -> str:
        value = self.get_str(name, required=True)
        assert value is not None
        return value

    def get_int(
        self, name: str, default: int | None = None, *, lo: int | None = None, hi: int | None = None
    ) -> int | None:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise ServiceError(
                400, "InvalidParameter", f'The specified parameter "{name}" is not valid.'
            ) from None
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise ServiceError(
                400, "InvalidParameter", f'The specified parameter "{name}" is out of range.'
            )
        return number

    def get_bool(self, name: str, default: bool = False) -> bool:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        return value.lower() == "true"


@dataclass
class RpcContext:
    state: State
    request: Request
    product: str
    action: str


@dataclass
class OssContext:
    state: State
    request: Request
    bucket: str  # "" for service-level operations (ListBuckets)
    key: str  # object key, "" for bucket-level operations


RpcHandler = Callable[[RpcContext, Params], dict[str, Any]]
OssHandler = Callable[[OssContext], Response]


# The verbs of the catalog's actions that only read: every other action (Add, Batch,
# Create, Delete, Put, Set, Start, Stop, Tag, Untag, Upload, ...) changes something.
READ_VERBS = ("Describe", "Get", "Head", "List")


def kind_of(action: str) -> str:
    """The action's class for the latency profile: "read" when its name starts with a
    reading verb (`READ_VERBS`), else "write"."""
    return "read" if action.startswith(READ_VERBS) else "write"


@dataclass(frozen=True)
class RpcOperation:
    product: str
    action: str
    qps: float
    handler: RpcHandler

    @property
    def kind(self) -> str:
        """The action's class, "read" or "write" (`kind_of` its name)."""
        return kind_of(self.action)


@dataclass(frozen=True)
class OssOperation:
    name: str
    method: str
    scope: str  # "service" | "bucket" | "object"
    subresources: frozenset[str]  # selecting query keys: {"cname", "comp=add"}
    qps: float
    handler: OssHandler

    @property
    def kind(self) -> str:
        """The operation's class, "read" or "write" (`kind_of` its name)."""
        return kind_of(self.name)

    def matches(self, method: str, scope: str, query: Mapping[str, str]) -> bool:
        if method != self.method or scope != self.scope:
            return False
        for sub in self.subresources:
            key, _, value = sub.partition("=")
            if key not in query or (value and query[key] != value):
                return False
        return True


RPC_OPERATIONS: dict[tuple[str, str], RpcOperation] = {}
OSS_OPERATIONS: list[OssOperation] = []


def rpc(product: str, action: str, *, qps: float) -> Callable[[RpcHandler], RpcHandler]:
    """Register an RPC action of `product` ("cdn" | "cas") with its documented QPS limit."""

    def register(fn: RpcHandler) -> RpcHandler:
        RPC_OPERATIONS[(product, action)] = RpcOperation(product, action, qps, fn)
        return fn

    return register


def oss(
    name: str, method: str, scope: str, *subresources: str, qps: float = 1000.0
) -> Callable[[OssHandler], OssHandler]:
    """Register an OSS operation selected by method, scope and sub-resource query keys.

    More specific registrations (more sub-resources) win over less specific ones.
    """

    def register(fn: OssHandler) -> OssHandler:
        OSS_OPERATIONS.append(OssOperation(name, method, scope, frozenset(subresources), qps, fn))
        OSS_OPERATIONS.sort(key=lambda op: -len(op.subresources))
        return fn

    return register


def find_oss_operation(method: str, scope: str, query: Mapping[str, str]) -> OssOperation | None:
    for op in OSS_OPERATIONS:
        if op.matches(method, scope, query):
            return op
    return None


AdminHandler = Callable[[State, Request], Response]
ADMIN_ROUTES: dict[tuple[str, str], AdminHandler] = {}


def admin(method: str, path: str) -> Callable[[AdminHandler], AdminHandler]:
    """Register an unauthenticated admin endpoint under `/_emulator/` (e.g. "cas/revoke")."""

    def register(fn: AdminHandler) -> AdminHandler:
        ADMIN_ROUTES[(method, "/_emulator/" + path.lstrip("/"))] = fn
        return fn

    return register
