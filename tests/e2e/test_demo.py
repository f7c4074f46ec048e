"""`make demo` runs offline, end to end, well under a minute (README's first promise)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_demo_rolls_a_renewal_out_offline_in_under_a_minute() -> None:
    # given a shell whose proxy would swallow any outside traffic, and no PYTHONPATH
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    started = time.monotonic()
    # when the demo script runs (what `make demo` runs)
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # then it succeeds quickly, shows the rollout and the finding about the FAQ case
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 60
    assert "== rollout: deployed" in done.stdout
    assert "WRONG_LOCATION  video.example.com" in done.stdout
    assert "SERVED_MISMATCH  download.example.com" in done.stdout
    assert "Traceback" not in done.stderr
    assert "PRIVATE KEY" not in done.stdout + done.stderr
