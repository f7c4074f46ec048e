"""The frame every `functions/*/index.py` handler uses (DESIGN §2.4: thin handlers).

`function(name, parse=..., run=...)` returns an FC 3.0 handler `handler(event, context)`
that binds the request id to every log line, configures structured (JSON, redacted)
logging, reads the settings, parses the event at the edge (`parse`), runs the job
(`run`) and answers with its JSON summary. What goes wrong is answered, not raised, so
FC does not retry it:

- an event the job does not accept (`EventError`): `status: "rejected"`;
- unusable settings or credentials, an account that cannot be read, any other
  certpilot error: `status: "error"` with the error's type and message (certpilot's
  messages carry no secret; a cloud error adds its code, service and action);
- anything else (a bug, an untranslated SDK error whose text may quote request data):
  `status: "error"` with the type only; the details go to the redacted log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from certpilot.core import log
from certpilot.core.errors import CertpilotError, CloudError, EventError
from certpilot.core.outcomes import RunStatus
from certpilot.core.settings import Settings

Request = TypeVar("Request")
Handler = Callable[[Any, Any], str]


@dataclass(frozen=True)
class Invocation:
    """One invocation as the job sees it: the FC context, its request id, the settings."""

    function: str
    context: Any
    request_id: str | None
    settings: Settings

    @property
    def account_id(self) -> str | None:
        """The account whose events are accepted: `CERTPILOT_ACCOUNT_ID`, else the FC
        context's `account_id`."""
        return self.settings.account_id or getattr(self.context, "account_id", None)


Parse = Callable[[Any, Invocation], Request]
Run = Callable[[Request, Invocation], Mapping[str, Any]]


@dataclass(frozen=True)
class Frame(Generic[Request]):
    """A function's handler: `parse` the event, `run` the job, answer JSON text."""

    name: str
    parse: Parse[Request]
    run: Run[Request]

    def __call__(self, event: Any, context: Any) -> str:
        """FC's entry point: see the module docstring. Never raises."""
        request_id = getattr(context, "request_id", None)
        log.set_request_id(request_id)
        log.configure()  # JSON lines from the first one, even when the settings are bad
        logger = log.get_logger(f"functions.{self.name}")
        try:
            settings = Settings.from_env()
            log.configure(settings.log_level)
            invocation = Invocation(self.name, context, request_id, settings)
            request = self.parse(event, invocation)
            summary: Mapping[str, Any] = self.run(request, invocation)
        except CertpilotError as err:
            level = logging.WARNING if isinstance(err, EventError) else logging.ERROR
            log.event(
                logger,
                "invocation rejected" if isinstance(err, EventError) else "invocation failed",
                level=level,
                error=type(err).__name__,
                reason=str(err),
            )
            summary = error_summary(self.name, err, request_id)
        except Exception as err:
            # A bug, or an SDK error nobody translated: its text may quote request data,
            # so it goes only to the (redacted) log, never into the answer.
            logger.exception("invocation failed")
            summary = error_summary(self.name, err, request_id)
        return json.dumps(summary, ensure_ascii=False, default=str)


def function(name: str, *, parse: Parse[Request], run: Run[Request]) -> Frame[Request]:
    """The handler of function `name`: `parse(event, invocation)` turns the event into
    the job's request (raises an `EventError` to reject it), `run(request, invocation)`
    returns the JSON-ready summary."""
    return Frame(name, parse, run)


def error_summary(function: str, error: BaseException, request_id: str | None) -> dict[str, Any]:
    """The JSON answer for an invocation that could not run (rejected event, bad
    configuration, unreadable account, a bug). Carries no payload echo and no secret."""
    status = RunStatus.REJECTED if isinstance(error, EventError) else RunStatus.ERROR
    detail: dict[str, Any] = {"type": type(error).__name__, "message": log.redact(str(error))}
    if isinstance(error, CloudError):
        detail.update(code=error.code, service=error.service, action=error.action)
    elif not isinstance(error, CertpilotError):
        detail["message"] = "internal error (see the function log)"
    return {
        "function": function,
        "requestId": request_id,
        "ok": False,
        "status": status.value,
        "error": detail,
    }
