"""deploy-cert: a certificate was issued or renewed -> put it everywhere it belongs.

FC 3.0 handler (`index.handler`). The event is bytes: a certpilot CloudEvent
(`certpilot.certificate.issued`), a CAS ActionTrail API-call event, or a direct
`{"certId": ...}` payload (README, "deploy-cert events"). Returns a JSON summary;
rejections and errors are answered, not raised (`certpilot.handler`). All logic
lives in the certpilot layer.
"""

from __future__ import annotations

from typing import Any

from certpilot import handler as frame
from certpilot.jobs.deploy_cert import engine

_deploy_cert = frame.function("deploy-cert", parse=engine.parse_event, run=engine.run)


def handler(event: bytes, context: Any) -> str:
    """FC's entry point: the summary of `engine.deploy_cert` as JSON text (never raises)."""
    return _deploy_cert(event, context)
