"""deploy-cert: a certificate was issued or renewed -> put it everywhere it belongs.

FC 3.0 handler (`index.handler`). The event is bytes: a certpilot CloudEvent
(`certpilot.certificate.issued`), a CAS ActionTrail API-call event, or a direct
`{"certId": ...}` payload (README, "deploy-cert events"). Returns a JSON summary.
All logic lives in the certpilot layer.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from certpilot.core import log
from certpilot.core.errors import CertpilotError, EventError
from certpilot.core.settings import Settings
from certpilot.events import parse_deploy_event
from certpilot.jobs.deploy_cert import engine

FUNCTION = "deploy-cert"
_log = log.get_logger("deploy_cert")


def handler(event: bytes, context: Any) -> str:
    """Parse the event, run `engine.deploy_cert`, return the summary as JSON text.

    A rejected event (malformed, unsupported, foreign account) or unusable
    configuration returns `{"ok": false, "status": "rejected" | "error", "error": ...}`
    and changes nothing; it is not raised, so FC does not retry it. An unexpected
    exception is logged (redacted) and answered as `status: "error"` the same way.
    """
    request_id = getattr(context, "request_id", None)
    log.set_request_id(request_id)
    log.configure()  # JSON lines from the first one, even when the settings are bad
    try:
        settings = Settings.from_env()
        log.configure(settings.log_level)
        account = settings.account_id or getattr(context, "account_id", None)
        request = parse_deploy_event(event, account_id=account)
        deps = engine.build_deps(context, settings=settings)
        summary = engine.deploy_cert(request, deps)
    except CertpilotError as err:
        level = logging.WARNING if isinstance(err, EventError) else logging.ERROR
        log.event(
            _log, "invocation rejected", level=level, error=type(err).__name__, reason=str(err)
        )
        summary = engine.error_summary(FUNCTION, err, request_id)
    except Exception as err:
        # A bug, or an SDK error nobody translated: its text may quote request data, so
        # it goes only to the (redacted) log, never into the answer or FC's error report.
        _log.exception("invocation failed")
        summary = engine.error_summary(FUNCTION, err, request_id)
    return json.dumps(summary, ensure_ascii=False)
