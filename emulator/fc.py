"""Emulated Function Compute 3.0 (API 2023-03-30): InvokeFunction, sync and async.

A function is a Python file and a handler name. Each invocation runs in a fresh worker
process (`python -c RUNNER`), as FC runs code apart from its control plane: the worker
loads the file by path, calls `handler(event: bytes, context)` with a context shaped
like FC's (request_id, credentials, function, region, account_id, logger), and writes a
JSON reply on a private file descriptor (the handler's own prints go to its log).
The emulator never imports the function's code.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from emulator.core import FC_VERSION, Request, Response, ServiceError
from emulator.state import DEFAULT_REGION, FcFunction, State

INVOKE_QPS = 1000.0  # chosen: FC limits concurrency rather than a documented API QPS
# Documented: an asynchronous invocation's payload is at most 128 KB (a sync one 32 MB,
# beyond what the emulator's server reads at all).
ASYNC_PAYLOAD_LIMIT = 128 * 1024
MAX_ASYNC_RETRIES = 8  # FC's maxAsyncRetryAttempts range is 0-8
LOG_TAIL_BYTES = 4096
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")

RUNNER = r"""
import base64, importlib.util, json, logging, os, sys, traceback
reply_fd = os.dup(1)
os.dup2(2, 1)  # the handler's prints join its log, never the reply
spec = json.load(sys.stdin)
for entry in reversed([spec["code_dir"], *spec["layers"]]):
    sys.path.insert(0, entry)

class _Obj:
    def __init__(self, **fields):
        self.__dict__.update(fields)

ctx = spec["context"]
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(asctime)s " + ctx["request_id"] + " [%(levelname)s] %(message)s")
context = _Obj(
    request_id=ctx["request_id"],
    credentials=_Obj(**ctx["credentials"]),
    function=_Obj(**ctx["function"]),
    service=_Obj(name="", log_project="", log_store="", qualifier=ctx["qualifier"], version_id=""),
    region=ctx["region"],
    account_id=ctx["account_id"],
    logger=logging.getLogger("fc"),
)
try:
    path = spec["path"]
    name = os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    result = getattr(module, spec["handler"])(base64.b64decode(spec["event"]), context)
    if isinstance(result, (bytes, bytearray)):
        body = bytes(result)
    elif isinstance(result, str):
        body = result.encode("utf-8")
    elif result is None:
        body = b""
    else:
        body = json.dumps(result).encode("utf-8")
    reply = {"ok": True, "body": base64.b64encode(body).decode("ascii")}
except BaseException as exc:
    traceback.print_exc()
    frames = traceback.format_tb(exc.__traceback__.tb_next)  # without this runner's frame
    reply = {"ok": False, "errorMessage": str(exc), "errorType": type(exc).__name__,
             "stackTrace": [line.rstrip() for line in frames]}
sys.stderr.flush()
os.write(reply_fd, json.dumps(reply).encode("utf-8"))
os.close(reply_fd)
"""


def fc_request_id() -> str:
    """An FC 3.0 style request id: `1-<hex time>-<24 hex>`."""
    return f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def fc_error(request_id: str, err: ServiceError) -> Response:
    """FC 3.0's JSON error body `{"Code", "Message", "RequestId"}`."""
    body = json.dumps({"Code": err.code, "Message": err.message, "RequestId": request_id})
    headers = {"Content-Type": "application/json", "x-fc-request-id": request_id, **err.headers}
    return Response(err.status, body.encode("utf-8"), headers)


@dataclass
class Outcome:
    """What one run of a handler produced."""

    ok: bool
    body: bytes
    error: dict[str, Any] | None
    logs: bytes
    duration_ms: int


@dataclass
class FunctionRunner:
    """Runs handlers in worker processes and remembers the ones still running."""

    python: str = sys.executable
    _running: set[subprocess.Popen[bytes]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, fn: FcFunction, event: bytes, context: Mapping[str, Any]) -> Outcome:
        """Run `fn` once in a fresh worker; never raises for the handler's own failures."""
        path = Path(fn.path)
        spec = {
            "path": str(path),
            "handler": fn.handler_name,
            "code_dir": str(path.parent),
            "layers": list(fn.layers),
            "event": base64.b64encode(event).decode("ascii"),
            "context": dict(context),
        }
        env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
        env.update(_fc_environment(fn, context))
        env.update(fn.env)
        started = time.monotonic()
        process = subprocess.Popen(
            [self.python, "-c", RUNNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(path.parent),
            env=env,
        )
        with self._lock:
            self._running.add(process)
        try:
            out, err = process.communicate(json.dumps(spec).encode("utf-8"), timeout=fn.timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            return Outcome(
                False,
                b"",
                {
                    "errorMessage": f"Function timed out after {fn.timeout_s:g} seconds",
                    "errorType": "FunctionTimeout",
                },
                err[-LOG_TAIL_BYTES:],
                int((time.monotonic() - started) * 1000),
            )
        finally:
            with self._lock:
                self._running.discard(process)
        duration = int((time.monotonic() - started) * 1000)
        try:
            reply = json.loads(out.decode("utf-8"))
        except ValueError:
            reply = {
                "ok": False,
                "errorMessage": f"worker exited with status {process.returncode}",
                "errorType": "ProcessExited",
            }
        if reply.get("ok"):
            return Outcome(True, base64.b64decode(reply["body"]), None, err, duration)
        error = {k: v for k, v in reply.items() if k != "ok"}
        return Outcome(False, b"", error, err, duration)

    def close(self) -> None:
        """Kill the workers still running (emulator shutdown)."""
        with self._lock:
            running = list(self._running)
        for process in running:
            process.kill()


def _fc_environment(fn: FcFunction, context: Mapping[str, Any]) -> dict[str, str]:
    credentials = context["credentials"]
    env = {
        "FC_FUNCTION_NAME": fn.name,
        "FC_FUNCTION_HANDLER": f"{Path(fn.path).stem}.{fn.handler_name}",
        "FC_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
        "FC_REGION": str(context["region"]),
        "FC_ACCOUNT_ID": str(context["account_id"]),
        "FC_INSTANCE_ID": secrets.token_hex(8),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": credentials["access_key_id"],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": credentials["access_key_secret"],
    }
    if credentials.get("security_token"):
        env["ALIBABA_CLOUD_SECURITY_TOKEN"] = credentials["security_token"]
    return env


def register_function(
    state: State,
    name: str,
    path: str | Path,
    *,
    handler: str = "handler",
    env: Mapping[str, str] | None = None,
    layers: list[str] | None = None,
    memory_mb: int = 512,
    timeout_s: float = 60.0,
    async_retries: int = 3,
    async_retry_delay_s: float = 0.2,
    runner: FunctionRunner | None = None,
) -> FcFunction:
    """Register (or replace) the function `name` backed by the Python file at `path`.

    `async_retries` is FC's `maxAsyncRetryAttempts` (0-8): how many times a failed
    asynchronous invocation is run again, `async_retry_delay_s` the pause before each.

    Raises:
        ValueError: if the name is not a valid FC function name, the file does not
            exist, or the retry settings are out of range.
    """
    if not _NAME.match(name):
        raise ValueError(f"invalid function name {name!r}")
    file = Path(path).resolve()
    if not file.is_file():
        raise ValueError(f"function code {str(path)!r} is not a file")
    if not handler.isidentifier():
        raise ValueError(f"invalid handler {handler!r}")
    if isinstance(async_retries, bool) or not 0 <= int(async_retries) <= MAX_ASYNC_RETRIES:
        raise ValueError(f"asyncRetries must be 0 to {MAX_ASYNC_RETRIES}, got {async_retries!r}")
    if not 0 <= float(async_retry_delay_s) <= 60:
        raise ValueError(f"asyncRetryDelay must be 0 to 60 seconds, got {async_retry_delay_s!r}")
    worker = runner or FunctionRunner()
    fn = FcFunction(
        name=name,
        handler=lambda event, context: worker.run(fn, event, context),
        path=str(file),
        handler_name=handler,
        env={str(k): str(v) for k, v in (env or {}).items()},
        layers=[str(Path(p).resolve()) for p in (layers or [])],
        memory_mb=int(memory_mb),
        timeout_s=float(timeout_s),
        async_retries=int(async_retries),
        async_retry_delay_s=float(async_retry_delay_s),
    )
    with state.lock:
        state.functions[name] = fn
    return fn


def describe_function(fn: FcFunction) -> dict[str, Any]:
    return {
        "functionName": fn.name,
        "path": fn.path,
        "handler": f"{Path(fn.path).stem}.{fn.handler_name}",
        "memorySize": fn.memory_mb,
        "timeout": fn.timeout_s,
        "layers": list(fn.layers),
        "asyncRetries": fn.async_retries,
        "asyncRetryDelay": fn.async_retry_delay_s,
        "environmentVariables": sorted(fn.env),  # names only: values may be secrets
        "invocations": len(fn.invocations),
    }


@dataclass(frozen=True)
class FcRoute:
    method: str
    pattern: re.Pattern[str]
    action: str
    qps: float


INVOKE = FcRoute(
    "POST",
    re.compile(rf"^/{FC_VERSION}/functions/(?P<name>[^/]+)/invocations/?$"),
    "InvokeFunction",
    INVOKE_QPS,
)
ASYNC_CONFIG_PATH = re.compile(rf"^/{FC_VERSION}/functions/(?P<name>[^/]+)/async-invoke-config/?$")
# QPS of the async-config calls: chosen (FC documents none).
PUT_ASYNC_CONFIG = FcRoute("PUT", ASYNC_CONFIG_PATH, "PutAsyncInvokeConfig", 100.0)
GET_ASYNC_CONFIG = FcRoute("GET", ASYNC_CONFIG_PATH, "GetAsyncInvokeConfig", 100.0)
DELETE_ASYNC_CONFIG = FcRoute("DELETE", ASYNC_CONFIG_PATH, "DeleteAsyncInvokeConfig", 100.0)
FC_ROUTES = (INVOKE, PUT_ASYNC_CONFIG, GET_ASYNC_CONFIG, DELETE_ASYNC_CONFIG)
DEFAULT_ASYNC_RETRIES = 3  # documented default of maxAsyncRetryAttempts
MAX_EVENT_AGE = 604800  # documented range of maxAsyncEventAgeInSeconds: 1 to 604800


def match_route(request: Request) -> tuple[FcRoute, dict[str, str]]:
    """The FC route of `request` and its path parameters.

    Raises:
        ServiceError: 400 `PathNotSupported` for any other FC path.
    """
    for route in FC_ROUTES:
        match = route.pattern.match(request.raw_path)
        if match and request.method == route.method:
            return route, {k: unquote(v) for k, v in match.groupdict().items()}
    raise ServiceError(
        400,
        "PathNotSupported",
        f"'{request.method}' against '{request.path}' is not supported",
    )


def invoke_function(
    state: State,
    request: Request,
    name: str,
    *,
    credentials: Mapping[str, str | None],
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> Response:
    """Answer `InvokeFunction`: run sync (200 with the result) or async (202 at once).

    A handler that raises answers 200 with `x-fc-error-type: UnhandledInvocationError`
    and FC's `{"errorMessage", "errorType", "stackTrace"}` body, as FC does. A failed
    asynchronous run (the handler raised, timed out or its worker died) is run again
    up to the function's `async_retries` times with the same request id; every
    attempt is recorded.

    Raises:
        ServiceError: 404 `FunctionNotFound`, 400 `InvalidArgument` for a bad header,
            400 `EntityTooLarge` for an asynchronous payload over 128 KB,
            404 `AliasNotFound` for a qualifier other than LATEST.
    """
    invocation_type = request.header("x-fc-invocation-type") or "Sync"
    if invocation_type not in ("Sync", "Async"):
        raise ServiceError(400, "InvalidArgument", f"invalid invocation type '{invocation_type}'")
    if invocation_type == "Async" and len(request.body) > ASYNC_PAYLOAD_LIMIT:
        # Code, status and message as FC's error table documents them; UNCONFIRMED
        # (chosen): checked before the function lookup.
        raise ServiceError(
            400,
            "EntityTooLarge",
            f"payload size exceeds maximum allowed size ({ASYNC_PAYLOAD_LIMIT} bytes)",
        )
    with state.lock:
        fn = state.functions.get(name)
    if fn is None:
        raise ServiceError(404, "FunctionNotFound", f"function '{name}' does not exist.")
    qualifier = request.query.get("qualifier") or "LATEST"
    if qualifier != "LATEST":
        raise ServiceError(
            404, "AliasNotFound", f"alias '{qualifier}' of function '{name}' does not exist"
        )
    log_type = request.header("x-fc-log-type") or "None"
    request_id = request.request_id
    attempts = 1 + (fn.async_retries if invocation_type == "Async" else 0)
    context = {
        "request_id": request_id,
        "credentials": dict(credentials),
        "function": {
            "name": name,
            "handler": f"{Path(fn.path).stem}.{fn.handler_name}" if fn.path else fn.handler_name,
            "memory": fn.memory_mb,
            "timeout": fn.timeout_s,
            "initializer": "",
        },
        "qualifier": qualifier,
        "region": DEFAULT_REGION,
        "account_id": state.account_id,
    }

    def run(attempt: int) -> Outcome:
        record: dict[str, Any] = {
            "requestId": request_id,
            "function": name,
            "qualifier": qualifier,
            "invocationType": invocation_type,
            "asyncTaskId": request.header("x-fc-async-task-id") or None,
            "attempt": attempt,
            "maxAttempts": attempts,
            "willRetry": False,
            "event": request.body[:65536].decode("utf-8", errors="replace"),
            "status": "running",
            "startedAt": time.time(),
            "finishedAt": None,
            "durationMs": None,
            "result": None,
            "error": None,
            "logs": "",
        }
        with state.lock:
            fn.invocations.append(record)
        try:
            outcome = fn.handler(request.body, context)
            if not isinstance(outcome, Outcome):  # an in-process handler registered directly
                outcome = Outcome(True, _encode_result(outcome), None, b"", 0)
        except Exception as exc:  # an in-process handler's own failure
            outcome = Outcome(
                False, b"", {"errorMessage": str(exc), "errorType": type(exc).__name__}, b"", 0
            )
        with state.lock:
            record.update(
                status="succeeded" if outcome.ok else "failed",
                willRetry=not outcome.ok and attempt < attempts,
                finishedAt=time.time(),
                durationMs=outcome.duration_ms,
                result=outcome.body.decode("utf-8", errors="replace") if outcome.ok else None,
                error=outcome.error,
                logs=outcome.logs[-LOG_TAIL_BYTES:].decode("utf-8", errors="replace"),
            )
        if on_record is not None:
            on_record(record)
        return outcome

    def run_async() -> None:
        for attempt in range(1, attempts + 1):
            if run(attempt).ok:
                return
            if attempt < attempts and fn.async_retry_delay_s > 0:
                time.sleep(fn.async_retry_delay_s)  # FC waits before retrying too

    headers = {"x-fc-request-id": request_id}
    if invocation_type == "Async":
        threading.Thread(target=run_async, name=f"fc-async-{request_id}", daemon=True).start()
        return Response(202, b"", headers)
    outcome = run(1)
    if log_type == "Tail":
        headers["x-fc-log-result"] = base64.b64encode(outcome.logs[-LOG_TAIL_BYTES:]).decode()
    if outcome.ok:
        headers["Content-Type"] = "application/octet-stream"
        return Response(200, outcome.body, headers)
    headers["Content-Type"] = "application/json"
    headers["x-fc-error-type"] = "UnhandledInvocationError"
    return Response(200, json.dumps(outcome.error).encode("utf-8"), headers)


def async_invoke_config(state: State, request: Request, route: FcRoute, name: str) -> Response:
    """Answer Put/Get/DeleteAsyncInvokeConfig for function `name` (qualifier LATEST).

    Put stores `maxAsyncRetryAttempts` (0-8; absent: 3), `maxAsyncEventAgeInSeconds`
    (1-604800), `asyncTask` and `destinationConfig` (kept, not acted on) and answers the
    config; Get answers it; Delete forgets it (back to 3 retries) and answers 204.

    Raises:
        ServiceError: 404 `FunctionNotFound`; 400 `InvalidArgument` for a value out of
            range or a body that is not a JSON object; 404 `AsyncConfigNotFound`
            (chosen code) from Get when none is set.
    """
    with state.lock:
        fn = state.functions.get(name)
    if fn is None:
        raise ServiceError(404, "FunctionNotFound", f"function '{name}' does not exist.")
    headers = {"Content-Type": "application/json", "x-fc-request-id": request.request_id}
    if route is DELETE_ASYNC_CONFIG:
        with state.lock:
            fn.async_config = None
            fn.async_retries = DEFAULT_ASYNC_RETRIES
        return Response(204, b"", {"x-fc-request-id": request.request_id})
    if route is GET_ASYNC_CONFIG:
        with state.lock:
            config = fn.async_config
        if config is None:
            raise ServiceError(
                404, "AsyncConfigNotFound", f"async invoke config of function '{name}' not found"
            )
        return Response(200, json.dumps(config).encode("utf-8"), headers)
    try:
        body = json.loads(request.body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict):
        raise ServiceError(400, "InvalidArgument", "the body must be a JSON object")
    retries = _bounded(body, "maxAsyncRetryAttempts", 0, MAX_ASYNC_RETRIES)
    age = _bounded(body, "maxAsyncEventAgeInSeconds", 1, MAX_EVENT_AGE)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with state.lock:
        created = (fn.async_config or {}).get("createdTime", now)
        config = {
            "functionArn": f"acs:fc:{DEFAULT_REGION}:{state.account_id}:functions/{name}",
            "maxAsyncRetryAttempts": DEFAULT_ASYNC_RETRIES if retries is None else retries,
            "maxAsyncEventAgeInSeconds": 86400 if age is None else age,
            "asyncTask": bool(body.get("asyncTask", False)),
            "destinationConfig": body.get("destinationConfig"),
            "createdTime": created,
            "lastModifiedTime": now,
        }
        fn.async_config = config
        fn.async_retries = config["maxAsyncRetryAttempts"]
    return Response(200, json.dumps(config).encode("utf-8"), headers)


def _bounded(body: Mapping[str, Any], field: str, low: int, high: int) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ServiceError(
            400, "InvalidArgument", f"{field} must be an integer from {low} to {high}"
        )
    return value


def _encode_result(result: Any) -> bytes:
    if isinstance(result, (bytes, bytearray)):
        return bytes(result)
    if isinstance(result, str):
        return result.encode("utf-8")
    if result is None:
        return b""
    return json.dumps(result).encode("utf-8")


def invocations(state: State, function: str | None = None) -> list[dict[str, Any]]:
    """Every recorded invocation (oldest first), optionally of one function."""
    with state.lock:
        records = [
            dict(record)
            for fn in state.functions.values()
            if function in (None, fn.name)
            for record in fn.invocations
        ]
    return sorted(records, key=lambda r: r["startedAt"])
