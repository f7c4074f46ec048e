"""The control plane: one HTTP port answering OSS REST, CDN/CAS RPC, FC and admin calls.

Every service call goes through the same steps: find the operation, check the
signature (`auth`), apply injected faults (`faults`), take a flow-control token
(`throttle`), run the handler, apply the faults that fire after a successful handler
(`"after": true`), count the outcome (`admin.Stats`), and let the call last the latency
profile's minimum for its class (`latency`; off by default). Errors are answered
in the service's own wire format. FC is recognised by its path before RPC: the FC 3.0
SDK also sends `x-acs-action` / `x-acs-version` headers.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from emulator import admin as admin_api
from emulator import auth, cas, cdn, fc, oss, revocation  # noqa: F401  (registers operations)
from emulator.core import (
    ADMIN_ROUTES,
    FC_VERSION,
    RPC_OPERATIONS,
    RPC_PRODUCTS,
    OssContext,
    Params,
    Request,
    Response,
    RpcContext,
    ServiceError,
    find_oss_operation,
)
from emulator.faults import DropConnection, Effect
from emulator.oss.domain_names import request_domain
from emulator.state import State

MAX_BODY = 8 * 1024 * 1024
_FC_PREFIX = f"/{FC_VERSION}/"


class Throttled(ServiceError):
    """A call refused by flow control (counted apart from other errors)."""


# The header the API gateway adds to a flow-control refusal: milliseconds to wait
# (`alibabacloud_tea_openapi` reads it and raises ThrottlingException with `retry_after`).
RETRY_AFTER_HEADER = "x-acs-retry-after"


def throttled_error(flavor: str, wait: float = 0.0) -> Throttled:
    """The flow-control refusal of each service (see emulator/README.md "Chosen behaviours").

    RPC answers carry `x-acs-retry-after` (milliseconds until the action's bucket
    holds a token again, at least 1): UNCONFIRMED (chosen) that the gateway sends it
    on every `Throttling.User`; the SDK reads it whenever it is there.
    """
    if flavor == "oss":
        return Throttled(
            503,
            "MetaOperationQpsLimitExceeded",
            "Qps limit for the meta operation is exceeded.",
            ec="0004-00000302",
        )
    if flavor == "fc":
        return Throttled(429, "ResourceExhausted", "Rate exceeded.")
    headers = {RETRY_AFTER_HEADER: str(max(1, math.ceil(wait * 1000)))}
    return Throttled(
        400, "Throttling.User", "Request was denied due to user flow control.", headers=headers
    )


class App:
    """Dispatches parsed requests to the registered operations of each service."""

    def __init__(self, state: State, platform: admin_api.Platform | None = None) -> None:
        self.state = state
        self.platform = platform or admin_api.platform_of(state)

    def before_operation(
        self,
        key: str,
        qps: float,
        request: Request,
        params: Mapping[str, str],
        flavor: str,
    ) -> None:
        """Injected faults, then flow control, for an authenticated call of `key`.

        Raises:
            DropConnection: when a fault drops the connection.
            ServiceError: an injected error, or `Throttled`.
        """
        request.params = params
        _inflict(key, self.platform.faults.take(key, params))
        throttle = self.platform.throttle
        if not throttle.allow(key, qps):
            raise throttled_error(flavor, throttle.wait_time(key))

    def after_operation(self, key: str, params: Mapping[str, str]) -> None:
        """Faults marked `after` for a call of `key` whose handler succeeded: its change
        stays applied, but the client gets the fault's error, or no answer at all.

        Raises:
            DropConnection: when a fault drops the connection.
            ServiceError: the injected error.
        """
        _inflict(key, self.platform.faults.take(key, params, after=True))

    def handle(self, request: Request) -> Response:
        """Answer one request.

        Raises:
            DropConnection: when an injected fault says to drop the connection.
        """
        if request.path.startswith("/_emulator/"):
            return self.handle_admin(request)
        if request.path.startswith(revocation.PREFIX):
            return self.handle_pki(request)
        started = time.monotonic()
        try:
            if request.path.startswith(_FC_PREFIX):
                key, response, outcome = self.handle_fc(request)
            else:
                action = request.header("x-acs-action") or request.query.get("Action", "")
                if action:
                    key, response, outcome = self.handle_rpc(request, action)
                else:
                    key, response, outcome = self.handle_oss(request)
        except DropConnection as drop:
            self.platform.stats.record(drop.action, "error", request.params)
            self.platform.latency.hold(request.kind, started)
            raise
        self.platform.stats.record(key, outcome, request.params)
        # The latency profile (emulator.latency): in this request's thread, no lock held.
        self.platform.latency.hold(request.kind, started)
        return response

    def handle_admin(self, request: Request) -> Response:
        route = ADMIN_ROUTES.get((request.method, request.path.rstrip("/")))
        if route is None:
            return admin_api.admin_error(404, f"no admin route {request.method} {request.path}")
        try:
            return route(self.state, request)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            return admin_api.admin_error(500, f"{type(exc).__name__}: {exc}")

    def handle_pki(self, request: Request) -> Response:
        """The test PKI's OCSP responders and CRLs (unauthenticated, like a real CA's):
        faults and stats apply under `pki:OCSP` / `pki:CRL`, no flow control.

        Raises:
            DropConnection: when an injected fault says to drop the connection.
        """
        key = revocation.action_of(request)
        try:
            _inflict(key, self.platform.faults.take(key, dict(request.query)))
            response = revocation.handle(self.platform.pki, request)
            outcome = "ok"
        except DropConnection as drop:
            self.platform.stats.record(drop.action, "error")
            raise
        except ServiceError as err:
            # A CA's HTTP server, not an API: a bare status with a text body.
            response = Response(err.status, err.message.encode(), {"Content-Type": "text/plain"})
            outcome = "error"
        self.platform.stats.record(key, outcome)
        return response

    def handle_fc(self, request: Request) -> tuple[str, Response, str]:
        request.request_id = fc.fc_request_id()
        key = "fc:unknown"
        try:
            route, path_params = fc.match_route(request)
            key = f"fc:{route.action}"
            self.platform.auth.verify_acs3(request, "fc")
            params = {**request.query, "function": path_params.get("name", "")}
            self.before_operation(key, route.qps, request, params, "fc")
            if route is not fc.INVOKE:
                response = fc.async_invoke_config(self.state, request, route, path_params["name"])
            else:
                response = fc.invoke_function(
                    self.state,
                    request,
                    path_params["name"],
                    credentials={
                        "access_key_id": self.state.access_key_id,
                        "access_key_secret": self.state.access_key_secret,
                        "security_token": self.state.security_token,
                    },
                )
            if response.status < 400:
                self.after_operation(key, params)
        except ServiceError as err:
            return key, fc.fc_error(request.request_id, err), _outcome(err)
        except DropConnection:
            raise
        except Exception:
            return key, fc.fc_error(request.request_id, _internal_error()), "error"
        return key, response, "ok"

    def handle_rpc(self, request: Request, action: str) -> tuple[str, Response, str]:
        version = request.header("x-acs-version") or request.query.get("Version", "")
        product = RPC_PRODUCTS.get(version)
        key = f"{product or 'rpc'}:{action}"
        try:
            if product is None:
                raise ServiceError(
                    404, "InvalidVersion", "Specified parameter Version is not valid."
                )
            operation = RPC_OPERATIONS.get((product, action))
            if operation is None:
                raise ServiceError(
                    404,
                    "InvalidAction.NotFound",
                    "Specified api is not found, please check your url and method.",
                )
            request.kind = operation.kind
            self.platform.auth.verify_acs3(request, "rpc")
            params = dict(request.query)
            if request.body and "form-urlencoded" in request.header("content-type"):
                params.update(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
            self.before_operation(key, operation.qps, request, params, "rpc")
            result = operation.handler(
                RpcContext(self.state, request, product, action), Params(params)
            )
            self.after_operation(key, params)
        except ServiceError as err:
            return key, rpc_error(request, err), _outcome(err)
        except DropConnection:
            raise
        except Exception:
            return key, rpc_error(request, _internal_error()), "error"
        body = {"RequestId": request.request_id, **result}
        return key, json_response(200, body, request_id=request.request_id), "ok"

    def handle_oss(self, request: Request) -> tuple[str, Response, str]:
        key = "oss:unknown"
        try:
            bucket, _, object_key = request.path.lstrip("/").partition("/")
            scope = "service" if not bucket else ("object" if object_key else "bucket")
            self.platform.auth.verify_oss4(request)
            operation = find_oss_operation(request.method, scope, request.query)
            if operation is None:
                raise ServiceError(
                    400,
                    "NotImplemented",
                    "This operation is not supported by the emulator.",
                    ec="0000-00000000",
                )
            key = f"oss:{operation.name}"
            request.kind = operation.kind
            params = {**request.query, "bucket": bucket, "key": object_key}
            if "Cname" in operation.name:
                params["domain"] = request_domain(request) or ""
            self.before_operation(key, operation.qps, request, params, "oss")
            response = operation.handler(OssContext(self.state, request, bucket, object_key))
            if response.status < 400:
                self.after_operation(key, params)
        except ServiceError as err:
            return key, oss_error(request, err), _outcome(err)
        except DropConnection:
            raise
        except Exception:
            return key, oss_error(request, _internal_error()), "error"
        response.headers.setdefault("x-oss-request-id", request.request_id)
        return key, response, "ok" if response.status < 400 else "error"


def _inflict(key: str, effect: Effect | None) -> None:
    """Sleep the faults' latency, then drop the connection or raise their error."""
    if effect is None:
        return
    if effect.latency:
        time.sleep(effect.latency)
    if effect.drop:
        raise DropConnection(key)
    if effect.error is not None:
        raise effect.error


def _outcome(err: ServiceError) -> str:
    return "throttled" if isinstance(err, Throttled) else "error"


def _internal_error() -> ServiceError:
    # An emulator bug: show it to whoever runs the emulator, answer like the cloud would.
    traceback.print_exc(file=sys.stderr)
    return ServiceError(
        500, "InternalError", "The request processing has failed due to some unknown error."
    )


def json_response(status: int, body: dict[str, Any], *, request_id: str = "") -> Response:
    headers = {"Content-Type": "application/json;charset=utf-8"}
    if request_id:
        headers["x-acs-request-id"] = request_id
    return Response(status, json.dumps(body).encode("utf-8"), headers)


def rpc_error(request: Request, err: ServiceError) -> Response:
    body = {
        "RequestId": request.request_id,
        "HostId": request.header("host"),
        "Code": err.code,
        "Message": err.message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}",
    }
    response = json_response(err.status, body, request_id=request.request_id)
    response.headers.update(err.headers)
    return response


def oss_error(request: Request, err: ServiceError) -> Response:
    ec = err.ec or "0000-00000000"
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
        f"<Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message>"
        f"<RequestId>{request.request_id}</RequestId><HostId>{escape(request.header('host'))}</HostId>"
        f"<EC>{escape(ec)}</EC></Error>"
    )
    headers = {
        "Content-Type": "application/xml",
        "x-oss-request-id": request.request_id,
        "x-oss-ec": ec,
    }
    headers.update(err.headers)
    return Response(err.status, xml.encode("utf-8"), headers)


def parse_request(method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
    split = urlsplit(target)
    query = dict(parse_qsl(split.query, keep_blank_values=True))
    return Request(method, unquote(split.path), split.path, query, split.query, headers, body)


_REASONS = {status.value: status.phrase for status in HTTPStatus}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in one write; without this, Nagle plus delayed ACKs
        # would stall every keep-alive response by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # quiet: tests and benchmarks read stdout

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = parse_request(self.command, self.path, headers, body)
        try:
            response = self.server.app.handle(request)
        except DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        head = [
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}",
            "Server: AliyunEmulator",
            f"Date: {formatdate(usegmt=True)}",
        ]
        head.extend(f"{name}: {value}" for name, value in response.headers.items())
        head.append(f"Content-Length: {len(response.body)}")
        if self.close_connection:
            head.append("Connection: close")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            payload += response.body
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, _Handler)


class ControlPlane:
    """The control-plane HTTP server running in a background thread."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), app)
        address = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        # A short poll interval keeps shutdown (and so the emulator's exit) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="emulator-api",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ControlPlane:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a loop that never started
            self._server.shutdown()
        self._server.server_close()
