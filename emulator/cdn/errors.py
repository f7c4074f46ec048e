"""The CDN's own error answers (RPC JSON), shared by every CDN action."""

from __future__ import annotations

from emulator.core import ServiceError


def not_found(domain: str) -> ServiceError:
    """`InvalidDomain.NotFound` 404: the domain is not in this account."""
    return ServiceError(
        404, "InvalidDomain.NotFound", f"The domain provided does not belong to you: {domain}."
    )


def busy() -> ServiceError:
    """`ServiceBusy` 403: the domain is configuring (a change is still propagating)."""
    return ServiceError(
        403, "ServiceBusy", "The specified Domain is configuring, please retry later."
    )


def invalid(code: str, message: str) -> ServiceError:
    """A 400 answer with `code` and `message`."""
    return ServiceError(400, code, message)
