"""What the adapters share: the guarded call (rate limit, error translation, retry),
the base of the Tea SDK adapters, SDK exception translation by error code, and
lenient time parsing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from certpilot.cloud.ratelimit import RateLimiter
from certpilot.cloud.retry import Retrier
from certpilot.core.errors import AuthError, CloudError, TransientError, cloud_error
from certpilot.core.log import event, get_logger

T = TypeVar("T")
Translator = Callable[[BaseException, str, str], "CloudError | None"]

_log = get_logger("adapters")


class Caller:
    """Runs one SDK call of a service: waits for a QPS token, translates SDK errors into
    CloudErrors by code, and retries what is retryable (each attempt takes a token)."""

    def __init__(
        self, service: str, limiter: RateLimiter, retrier: Retrier, translate: Translator
    ) -> None:
        self.service = service
        self._limiter = limiter
        self._retrier = retrier
        self._translate = translate

    def call(self, action: str, fn: Callable[[], T]) -> T:
        """Return `fn()` (one SDK request of `action`).

        Raises:
            CloudError: the translated SDK error, after retries where retryable.
        """

        def attempt() -> T:
            self._limiter.acquire(self.service, action)
            started = time.monotonic()
            try:
                result = fn()
            except CloudError:
                raise
            except Exception as exc:
                error = self._translate(exc, self.service, action)
                if error is None:
                    raise
                # `from None`: SDK exceptions can hold request snapshots and headers.
                raise error from None
            event(
                _log,
                "cloud call",
                level=logging.DEBUG,
                service=self.service,
                action=action,
                ms=round((time.monotonic() - started) * 1000, 1),
            )
            return result

        return self._retrier.call(attempt)


class TeaAdapter:
    """Base of the adapters over a Tea SDK client (CDN, CAS, FC): `client()` and
    `runtime()` give the client and its runtime options, `caller` guards every call."""

    def __init__(
        self, client: Callable[[], Any], caller: Caller, runtime: Callable[[], Any]
    ) -> None:
        self._client = client
        self._caller = caller
        self._runtime = runtime

    def _call(self, action: str, method: str, request: Any) -> dict[str, Any]:
        """`client.<method>(request, runtime)` through the caller, as `action`; the
        response body as a dict ({} without one).

        Raises:
            CloudError: the translated SDK error, after retries where retryable.
        """
        client = self._client()
        runtime = self._runtime()
        response = self._caller.call(action, lambda: getattr(client, method)(request, runtime))
        body = response.body
        result: dict[str, Any] = body.to_map() if body is not None else {}
        return result


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return None if text in ("", "None", "null") else text


def translate_tea(exc: BaseException, service: str, action: str) -> CloudError | None:
    """Translate a Tea/Darabonba SDK exception (CDN, CAS, FC) into a CloudError.

    ThrottlingException (a response with `x-acs-retry-after`) is throttling whatever
    its code; other responses are classified by code; no response at all (connection
    refused, timeout) is transient. Returns None for exceptions that are not the
    SDK's (programming errors propagate unchanged).
    """
    from Tea.exceptions import TeaException, UnretryableException

    if isinstance(exc, UnretryableException):
        inner = getattr(exc, "inner_exception", None)
        kind = type(inner).__name__ if inner is not None else "Unknown"
        what = "ConnectionError" if kind == "RetryError" else "ResponseError"
        return TransientError(service, action, what, None, None, f"{kind}: {inner}")
    if not isinstance(exc, TeaException):
        return None
    data = exc.data if isinstance(getattr(exc, "data", None), dict) else {}
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    try:
        status = int(status) if status is not None else None
    except (TypeError, ValueError):
        status = None
    code = _clean(getattr(exc, "code", None)) or _clean(data.get("Code") or data.get("code"))
    request_id = _clean(getattr(exc, "request_id", None)) or _clean(
        data.get("RequestId") or data.get("requestId")
    )
    message = _clean(data.get("Message") or data.get("message")) or _clean(
        getattr(exc, "message", None)
    )
    if code == "InvalidCredentials" and status is None:
        return AuthError(service, action, code, None, None, "no credentials configured")
    retry_after_ms = getattr(exc, "retry_after", None)
    if type(exc).__name__ == "ThrottlingException":
        from certpilot.core.errors import ThrottledError

        return ThrottledError(
            service,
            action,
            code or "Throttling",
            status,
            request_id,
            message or "",
            retry_after=retry_after_ms / 1000.0 if retry_after_ms else None,
        )
    return cloud_error(service, action, code, status, request_id, message or "")


def translate_oss(exc: BaseException, service: str, action: str) -> CloudError | None:
    """Translate an OSS v2 SDK exception into a CloudError (by the OSS error code).

    Returns None for exceptions that are not the SDK's.
    """
    from alibabacloud_oss_v2 import exceptions as oss_exc

    if not isinstance(exc, oss_exc.BaseError):
        return None
    inner: BaseException = exc
    if isinstance(exc, oss_exc.OperationError):
        inner = exc.unwrap() or exc
    if isinstance(inner, oss_exc.ServiceError):
        return cloud_error(
            service,
            action,
            _clean(inner.code),
            int(inner.status_code) if inner.status_code else None,
            _clean(inner.request_id),
            _clean(inner.message) or "",
            ec=_clean(inner.ec),
        )
    if isinstance(inner, oss_exc.CredentialsBaseError):
        return AuthError(service, action, "InvalidCredentials", None, None, "no usable credentials")
    if isinstance(inner, oss_exc.RequestError):
        return TransientError(service, action, "ConnectionError", None, None, str(inner))
    if isinstance(inner, oss_exc.ResponseError):
        return TransientError(service, action, "ResponseError", None, None, str(inner))
    if isinstance(inner, oss_exc.BaseError | ValueError | SyntaxError):
        # Bad request parameters (caught before sending) or an unreadable answer.
        return CloudError(service, action, "ClientError", None, None, str(inner))
    return TransientError(service, action, "ResponseError", None, None, type(inner).__name__)


def parse_time(value: Any) -> datetime | None:
    """Parse a cloud timestamp into an aware UTC datetime; None when absent or unreadable.

    Accepts epoch seconds or milliseconds (number or digits), ISO 8601 (`Z`, offsets,
    `YYYY-MM-DD HH:MM:SS`, date only) and RFC 1123 (`Wed, 15 Sep 2021 02:35:06 GMT`).
    Times without a zone are read as UTC (chosen: the CDN listings give none).
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        number = float(value)
        if number > 1e11:  # milliseconds
            number /= 1000.0
        return datetime.fromtimestamp(number, tz=timezone.utc)
    text = str(value).strip()
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def normalize_fingerprint(value: Any) -> str | None:
    """Upper hex without colons, as `model.DeployedCert.fingerprint` wants it."""
    text = _clean(value)
    if text is None:
        return None
    return text.replace(":", "").replace(" ", "").upper()


def int_or_none(value: Any) -> int | None:
    """An int from an int or a digit string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = _clean(value)
    if text is not None and text.strip().isdigit():
        return int(text)
    return None
