"""enforce-https: a domain was bound to a bucket or added to CDN -> secure it, force HTTPS.

FC 3.0 handler (`index.handler`). The event is bytes: an OSS ActionTrail `PutCname`
event, a CDN ActionTrail `AddCdnDomain` event, the legacy CDN trigger's
`CdnDomainAdded` / `CdnDomainStarted`, or a direct `{"domain": ...}` / `{"bucket": ...}`
payload (README, "enforce-https"). Returns a JSON summary; rejections and errors are
answered, not raised (`certpilot.handler`). All logic lives in the certpilot layer.
"""

from __future__ import annotations

from typing import Any

from certpilot import handler as frame
from certpilot.jobs.enforce_https import engine

_enforce_https = frame.function("enforce-https", parse=engine.parse_event, run=engine.run)


def handler(event: bytes, context: Any) -> str:
    """FC's entry point: the summary of `engine.enforce_https` as JSON text (never raises)."""
    return _enforce_https(event, context)
