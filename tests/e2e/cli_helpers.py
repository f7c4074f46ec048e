"""Running `python -m certpilot ...` as people run it, pointed at the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from tests.e2e.fc_helpers import REPO


def run_certpilot(
    cloud: Any,
    *args: str,
    stdin: bytes | None = None,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m certpilot *args` in the repository, with the emulator's CERTPILOT_*
    settings (and no other), warnings-only logs and `env` on top; never raises on a
    non-zero exit."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CERTPILOT_")}
    environ.update(cloud.certpilot_env())
    environ.update(PYTHONPATH=str(REPO / "shared" / "python"), CERTPILOT_LOG_LEVEL="WARNING")
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "certpilot", *args],
        cwd=REPO,
        env=environ,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
