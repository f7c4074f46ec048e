"""The control plane: one HTTP port answering OSS REST, CDN/CAS RPC, FC and admin calls."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from emulator import auth, cas, cdn, fc, oss  # noqa: F401  (registers operations)
from emulator.core import (
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
from emulator.state import State

MAX_BODY = 8 * 1024 * 1024


class App:
    """Dispatches parsed requests to the registered operations of each service."""

    def __init__(self, state: State) -> None:
        self.state = state

    # Hooks filled in by the admin/throttling layer: called before each operation.
    def before_operation(self, service: str, action: str, request: Request) -> None:
        return None

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/_emulator/"):
            return self.handle_admin(request)
        action = request.header("x-acs-action") or request.query.get("Action", "")
        if action:
            return self.handle_rpc(request, action)
        if request.path.startswith("/2023-03-30/"):
            return self.handle_fc(request)
        return self.handle_oss(request)

    def handle_admin(self, request: Request) -> Response:
        return json_response(404, {"Code": "NotFound", "Message": "unknown admin path"})

    def handle_fc(self, request: Request) -> Response:
        return json_response(404, {"Code": "NotFound", "Message": "no FC support yet"})

    def handle_rpc(self, request: Request, action: str) -> Response:
        version = request.header("x-acs-version") or request.query.get("Version", "")
        product = RPC_PRODUCTS.get(version)
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
            auth.verify_acs3(self.state, request)
            self.before_operation(product, action, request)
            params = dict(request.query)
            if request.body and "form-urlencoded" in request.header("content-type"):
                params.update(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
            result = operation.handler(
                RpcContext(self.state, request, product, action), Params(params)
            )
        except ServiceError as err:
            return rpc_error(request, err)
        body = {"RequestId": request.request_id, **result}
        return json_response(200, body, request_id=request.request_id)

    def handle_oss(self, request: Request) -> Response:
        try:
            parts = request.path.lstrip("/").split("/", 1)
            bucket = parts[0]
            key = parts[1] if len(parts) > 1 else ""
            scope = "service" if not bucket else ("object" if key else "bucket")
            operation = find_oss_operation(request.method, scope, request.query)
            if operation is None:
                raise ServiceError(
                    400,
                    "NotImplemented",
                    "This operation is not supported by the emulator.",
                    ec="0000-00000000",
                )
            auth.verify_oss4(self.state, request)
            self.before_operation("oss", operation.name, request)
            response = operation.handler(OssContext(self.state, request, bucket, key))
        except ServiceError as err:
            return oss_error(request, err)
        response.headers.setdefault("x-oss-request-id", request.request_id)
        return response


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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

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
        response = self.server.app.handle(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, _Handler)


class ControlPlane:
    """The control-plane HTTP server running in a background thread."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), app)
        address = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="emulator-api", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ControlPlane:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
