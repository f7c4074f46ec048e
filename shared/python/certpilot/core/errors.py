"""The one error tree of certpilot.

Cloud failures are classified by the service's error CODE (and the HTTP status only
where the code says nothing), never by message text. Messages are redacted: no
error raised here carries a secret.

    CertpilotError
      CloudError(service, action, code, status, request_id, message)
        ThrottledError   Throttling*, *QpsLimitExceeded, FlowControlError, 429
          BusyError      ServiceBusy: busy, e.g. configuring while a change propagates
        TransientError   5xx, timeouts, dropped connections                   (retryable)
        NotFoundError    *.NotFound, NoSuch*, FunctionNotFound, HTTP 404
          DomainNotVerified  NeedVerifyDomainOwnership (OSS: the binding is not there)
        AuthError        bad AccessKey / signature / token, access denied, HTTP 401
        ConflictError    *AlreadyExist*, PreviousCertId mismatch, HTTP 409
      EventError -> MalformedEvent, UnsupportedEvent, ForeignAccount, ForeignRegion
      ConfigError
      CertificateError (also a ValueError)     certpilot.certs.errors: unusable input
      InvalidHostname (also a ValueError)      certpilot.core.names: not a DNS hostname

Light on purpose: `certpilot.core.names` and `certpilot.certs.errors` import it, so it
imports nothing of certpilot at module level (redaction is loaded on first use).
"""

from __future__ import annotations

from typing import ClassVar


class CertpilotError(Exception):
    """Base of every error certpilot raises on purpose."""


class ConfigError(CertpilotError):
    """The configuration (environment, settings, credentials) cannot be used."""


class EventError(CertpilotError):
    """An incoming event cannot be handled."""


class MalformedEvent(EventError):
    """The event is not valid JSON or lacks the fields its type requires."""


class UnsupportedEvent(EventError):
    """The event is well formed but of a type this handler does not act on."""


class ForeignAccount(EventError):
    """The event comes from another account than `CERTPILOT_ACCOUNT_ID`."""


class ForeignRegion(EventError):
    """The event names a certificate in another CAS region than `CERTPILOT_CAS_REGION`."""


class CloudError(CertpilotError):
    """A cloud API call failed.

    Attributes: `service` (oss | cdn | cas | fc), `action` (the API name), `code`
    (the service's error code, or a certpilot code such as `ConnectionError`),
    `status` (HTTP status, None when no response came), `request_id`, `message`
    (redacted).
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        service: str,
        action: str,
        code: str,
        status: int | None = None,
        request_id: str | None = None,
        message: str = "",
        *,
        retry_after: float | None = None,
        ec: str | None = None,
    ) -> None:
        from certpilot.core.log import redact

        self.service = service
        self.action = action
        self.code = code
        self.status = status
        self.request_id = request_id
        self.message = redact(message or "")[:500]
        self.retry_after = retry_after  # seconds the service asked us to wait, if it did
        self.ec = ec  # OSS error-detail code (`EC`, e.g. 0018-00000209), when given
        detail = f"HTTP {status}" if status is not None else "no response"
        if ec:
            detail += f", EC {ec}"
        if request_id:
            detail += f", request {request_id}"
        text = f"{service}:{action} failed with {code} ({detail})"
        if self.message:
            text += f": {self.message}"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild,
            (
                type(self),
                self.service,
                self.action,
                self.code,
                self.status,
                self.request_id,
                self.message,
                self.retry_after,
                self.ec,
            ),
        )


def _rebuild(
    cls: type[CloudError],
    service: str,
    action: str,
    code: str,
    status: int | None,
    request_id: str | None,
    message: str,
    retry_after: float | None,
    ec: str | None,
) -> CloudError:
    return cls(service, action, code, status, request_id, message, retry_after=retry_after, ec=ec)


class ThrottledError(CloudError):
    """The service refused the call for flow control; retry after a pause."""

    retryable = True


class BusyError(ThrottledError):
    """The resource is busy with an earlier change (CDN `ServiceBusy`: "the domain is
    configuring, please retry later"): retry once that change has propagated, which
    may take far longer than flow control (about a minute on CDN). The adapters retry
    it like throttling (a short backoff: the same code also means an overloaded
    service); a write that must wait out a propagation retries it further within its
    own budget (deploy-cert's apply does)."""


class TransientError(CloudError):
    """A server-side or network failure that may succeed when retried."""

    retryable = True


class NotFoundError(CloudError):
    """The resource (bucket, domain, certificate, function...) does not exist."""


class DomainNotVerified(NotFoundError):
    """OSS refused a PutCname because the domain is not bound to the bucket and its
    ownership is not proven (`NeedVerifyDomainOwnership`). certpilot only writes to
    domains it found bound, so this means the binding was removed meanwhile: certpilot
    never creates one (that takes the owner's DNS token)."""


class AuthError(CloudError):
    """The credentials were rejected or lack a permission. Never retried."""


class ConflictError(CloudError):
    """The call conflicts with the resource's current state."""


# Exact codes, then prefixes/suffixes, per class; checked in this order.
_AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "InvalidAccessKeySecret",
        "SignatureDoesNotMatch",
        "SignatureNotMatch",
        "IncompleteSignature",
        "InvalidSecurityToken",
        "SecurityTokenExpired",
        "InvalidCredentials",
        "AccessDenied",
        "AccessForbidden",
        "NoPermission",
        "Unauthorized",
        "UserDisable",
        "MissingSecurityToken",
    }
)
_AUTH_CODES_LOWER = frozenset(c.lower() for c in _AUTH_CODES)
_AUTH_PREFIXES = (
    "InvalidAccessKeyId.",
    "InvalidSecurityToken.",
    "SignatureDoesNotMatch",
    "Forbidden",
    "AccessDenied",
    "NoPermission",
    "InvalidAuthorization",
)
_BUSY_CODES = frozenset({"ServiceBusy"})
_THROTTLE_CODES = frozenset(
    {
        "FlowControlError",
        "QpsLimitExceeded",
        "TooManyRequests",
        "SlowDown",
        "RequestLimitExceeded",
        "ResourceExhausted",
    }
)
_THROTTLE_PREFIXES = ("Throttling", "ServiceBusy", "Throttled")
_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableTemporary",
        "ServiceTimeout",
        "RequestTimeout",
        "UnknownError",
        "ConnectionError",
        "ReadTimeout",
        "ResponseError",
        "Timeout",
    }
)
_NOT_FOUND_CODES = frozenset(
    {"NotFound", "FunctionNotFound", "NoSuchBucket", "NoSuchCname", "NoSuchKey"}
)
_NOT_FOUND_SUFFIXES = ("NotFound", "NotExist", "NotExists")
_CONFLICT_CODES = frozenset(
    {
        "CnameAlreadyExists",
        "BucketAlreadyExists",
        "DomainAlreadyExist",
        "DomainAlreadyExists",
        "Conflict",
        "OperationConflict",
        "ConcurrentUpdate",
        "PreviousCertIdMismatch",
        "CertIdMismatch",
        "NameRepeat",
    }
)


# OSS answers several distinct failures with the same `InvalidArgument` code and tells
# them apart by EC: those that mean "the state changed under you" are conflicts.
_OSS_CONFLICT_ECS = frozenset({"0018-00000209"})  # PreviousCertId is not the bound cert


def error_class(code: str | None, status: int | None, ec: str | None = None) -> type[CloudError]:
    """The CloudError subclass for a service error `code` (HTTP `status` as tie-break).

    Pure: decided by the code first (auth before not-found, because
    `InvalidAccessKeyId.NotFound` is an auth failure), the OSS `ec` detail code where
    OSS reuses a code, then by the status for codes this table does not know.
    """
    code = code or ""
    if ec and ec in _OSS_CONFLICT_ECS:
        return ConflictError
    if code == "NeedVerifyDomainOwnership":
        return DomainNotVerified
    if code.lower() in _AUTH_CODES_LOWER or code.startswith(_AUTH_PREFIXES):
        return AuthError
    if code in _BUSY_CODES:
        return BusyError
    if (
        code in _THROTTLE_CODES
        or code.startswith(_THROTTLE_PREFIXES)
        or code.endswith("QpsLimitExceeded")
    ):
        return ThrottledError
    if code in _TRANSIENT_CODES:
        return TransientError
    if code in _NOT_FOUND_CODES or code.endswith(_NOT_FOUND_SUFFIXES) or code.startswith("NoSuch"):
        return NotFoundError
    if (
        code in _CONFLICT_CODES
        or code.endswith(("AlreadyExists", "AlreadyExist", ".Conflict"))
        or ".AlreadyExist" in code
    ):
        return ConflictError
    if status is None:
        return CloudError
    if status == 429:
        return ThrottledError
    if status >= 500:
        return TransientError
    if status == 401:
        return AuthError
    if status == 404 and not code:
        return NotFoundError
    if status == 409 and not code:
        return ConflictError
    return CloudError


def cloud_error(
    service: str,
    action: str,
    code: str | None,
    status: int | None = None,
    request_id: str | None = None,
    message: str = "",
    *,
    retry_after: float | None = None,
    ec: str | None = None,
) -> CloudError:
    """Build the right CloudError subclass for a service error (see `error_class`)."""
    cls = error_class(code, status, ec)
    if not code:
        code = f"HTTP{status}" if status is not None else "Unknown"
    return cls(
        service,
        action,
        code,
        status,
        request_id,
        message,
        retry_after=retry_after,
        ec=ec,
    )
