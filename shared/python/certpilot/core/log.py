"""Structured JSON-lines logging with a request id, and redaction of secrets.

Every line is one JSON object: `ts`, `level`, `logger`, `msg`, `request_id` (when one
is bound) and the fields given as `extra={"fields": {...}}` or through `event()`.
Everything written passes through `redact()`: private keys in PEM, anything that
looks like an AccessKey secret, STS token or signature, and every value registered
with `register_secret()` (credentials register themselves) are masked.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

ROOT = "certpilot"
MASK = "[REDACTED]"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "certpilot_request_id", default=None
)

_PEM_KEY = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
# key=value / "key": "value" / key: value, for names that carry secrets.
_SECRET_FIELD = re.compile(
    r"""(?ix)
    (?P<key>["']?
      (?:access_?key_?secret|accesskeysecret|secret_?access_?key|client_?secret|secret
        |security_?token|securitytoken|sts_?token|x-acs-security-token|x-oss-security-token
        |password|passwd|private_?key|privatekey|ssl_?pri|sslpri|signature|authorization)
    ["']?\s*[=:]\s*["']?)
    (?!(?:OSS4|ACS3)-HMAC-SHA256\b|\[REDACTED\])  # already handled by _AUTH_HEADER
    (?P<value>[^\s"',;&}]+)
    """
)
# The credential part of OSS4/ACS3 Authorization headers: keep the scheme, mask the rest.
_AUTH_HEADER = re.compile(
    r"(?i)\b((?:OSS4|ACS3)-HMAC-SHA256)\s+[^\s\"']+(?:[, ]+\S+=[^\s\"']+)*"
    r"|\b(OSS) [A-Za-z0-9]+:[A-Za-z0-9+/=]+"
)
# STS tokens (CAIS...) and long base64 runs with mixed case and digits.
_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_partial: dict[str, str] = {}


def register_secret(value: str | None, *, keep_prefix: int = 0) -> None:
    """Mask `value` wherever it appears in redacted text from now on.

    `keep_prefix` keeps that many leading characters visible (for AccessKey ids,
    which identify but do not authenticate). Short values (< 6 chars) are ignored:
    masking them would mangle ordinary text.
    """
    if not value or len(value) < 6:
        return
    with _secrets_lock:
        if keep_prefix:
            _partial[value] = value[:keep_prefix] + "****"
        else:
            _secrets.add(value)


@contextlib.contextmanager
def isolated_secrets() -> Iterator[None]:
    """Secrets registered inside the block are forgotten when it ends; those registered
    before stay masked throughout. For tests: one test's secrets must not change how
    another's text is redacted."""
    with _secrets_lock:
        exact, partial = set(_secrets), dict(_partial)
    try:
        yield
    finally:
        with _secrets_lock:
            _secrets.clear()
            _secrets.update(exact)
            _partial.clear()
            _partial.update(partial)


def _looks_secret(token: str) -> bool:
    if token.startswith("CAIS"):
        return True
    return (
        any(c.islower() for c in token)
        and any(c.isupper() for c in token)
        and any(c.isdigit() for c in token)
    )


def redact(text: str) -> str:
    """Return `text` with secrets masked (see the module docstring)."""
    if not text:
        return text
    with _secrets_lock:
        exact = sorted(_secrets, key=len, reverse=True)
        partial = dict(_partial)
    for value in exact:
        if value in text:
            text = text.replace(value, MASK)
    for value, shown in partial.items():
        if value in text:
            text = text.replace(value, shown)
    text = _PEM_KEY.sub(f"{MASK} PRIVATE KEY", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1) or m.group(2)} {MASK}", text)
    text = _SECRET_FIELD.sub(lambda m: m.group("key") + MASK, text)
    return _LONG_TOKEN.sub(lambda m: MASK if _looks_secret(m.group(0)) else m.group(0), text)


def redact_value(value: Any) -> Any:
    """Redact every string inside `value` (dicts, lists and tuples recursively)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def current_request_id() -> str | None:
    """The request id bound to this context (thread / task), if any."""
    return _request_id.get()


@contextlib.contextmanager
def bound_request_id(request_id: str | None) -> Iterator[None]:
    """Bind `request_id` to every log line written inside the `with` block."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def with_context(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn` run in (a copy of) the caller's context: worker threads keep the request id."""
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.copy().run(fn, *args, **kwargs)

    return run


def set_request_id(request_id: str | None) -> None:
    """Bind `request_id` for the rest of this context (a handler's invocation)."""
    _request_id.set(request_id)


class JsonFormatter(logging.Formatter):
    """Formats a record as one redacted JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or _request_id.get()
        if request_id:
            payload["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                if key not in payload:
                    payload[str(key)] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            # Type and message only: tracebacks can quote locals such as request bodies.
            payload["error"] = {"type": type(exc).__name__, "message": str(exc)}
        return json.dumps(redact_value(payload), ensure_ascii=False, default=str)


_configure_lock = threading.Lock()
_handler: logging.Handler | None = None


def configure(level: str = "INFO", stream: IO[str] | None = None) -> logging.Logger:
    """Send every `certpilot.*` logger to `stream` (default stderr) as JSON lines.

    Idempotent: calling again replaces the handler (e.g. a new level or stream).
    """
    global _handler
    logger = logging.getLogger(ROOT)
    with _configure_lock:
        if _handler is not None:
            logger.removeHandler(_handler)
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(level.upper())
        logger.propagate = False
        _handler = handler
    return logger


def unconfigure() -> None:
    """Undo `configure()`: records propagate to the root logger again (tests use this)."""
    global _handler
    logger = logging.getLogger(ROOT)
    with _configure_lock:
        if _handler is not None:
            logger.removeHandler(_handler)
            _handler = None
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


def get_logger(name: str) -> logging.Logger:
    """A logger under the `certpilot` hierarchy (`name` may be a module's `__name__`)."""
    if name == ROOT or name.startswith(ROOT + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{ROOT}.{name}")


def event(logger: logging.Logger, msg: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log `msg` with structured `fields` (redacted like everything else)."""
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"fields": fields})
