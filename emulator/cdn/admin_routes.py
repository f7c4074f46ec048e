"""Admin routes of the emulated CDN (unauthenticated, under `/_emulator/cdn/`)."""

from __future__ import annotations

from emulator import admin as admin_api
from emulator.cdn.domains import DOMAIN_STATUSES, domain_status, lookup
from emulator.core import Request, Response, ServiceError, admin
from emulator.state import State


@admin("POST", "cdn/status")
def admin_set_status(state: State, request: Request) -> Response:
    """`{"domain": D, "status": S | null}`: report domain D as S (one of the SDK's
    DomainStatus values) until cleared with null; answers `{"domain", "status"}`."""
    try:
        body = admin_api.read_json_object(request, "expected a JSON object")
        name = body.get("domain")
        status = body.get("status")
        if not isinstance(name, str) or not name:
            raise ValueError('expected {"domain": "<name>", "status": "<status>" | null}')
        if status is not None and status not in DOMAIN_STATUSES:
            raise ValueError(f"status must be one of {', '.join(DOMAIN_STATUSES)} or null")
    except ValueError as err:
        return admin_api.admin_error(400, str(err))
    with state.lock:
        try:
            domain = lookup(state, name)
        except ServiceError:
            return admin_api.admin_error(404, f"no CDN domain {name}")
        domain.pinned_status = status
        reported = domain_status(domain, state.now())
    return admin_api.json_reply(200, {"domain": domain.name, "status": reported})
