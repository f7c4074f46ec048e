"""check-expiry: on a timer, sweep every domain and report what is wrong (DESIGN §6).

FC 3.0 handler (`index.handler`). The event is bytes: the FC timer event
(`{"triggerTime", "triggerName", "payload": "<JSON text>"}`, options in the payload) or
a direct invocation carrying the options themselves: `reportOnly` (boolean) and `scope`
(a bucket or domain glob) (README, "check-expiry"). Returns a JSON summary; rejections
and errors are answered, not raised (`certpilot.handler`). All logic lives in the
certpilot layer.
"""

from __future__ import annotations

from typing import Any

from certpilot import handler as frame
from certpilot.jobs.check_expiry import sweep

_check_expiry = frame.function("check-expiry", parse=sweep.parse_event, run=sweep.run)


def handler(event: bytes, context: Any) -> str:
    """FC's entry point: the summary of `sweep.sweep` as JSON text (never raises)."""
    return _check_expiry(event, context)
