"""The start contract of `python -m emulator`: one JSON ready line, quick start, a
working control plane and edge, and a clean exit on SIGTERM."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

READY_KEYS = {
    "api",
    "https",
    "http",
    "ca_bundle",
    "access_key_id",
    "access_key_secret",
    "account_id",
    "region",
}


def test_ready_line_contract_and_clean_exit():
    # Given a fresh emulator on any free port
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--qps-scale", "2"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        elapsed = time.monotonic() - started
        # Then it prints one JSON line with the documented keys, in under 2 seconds
        info = json.loads(line)
        assert set(info) >= READY_KEYS
        assert elapsed < 2.0
        assert info["api"].startswith("http://127.0.0.1:")
        assert not info["api"].endswith(":0")
        # and the control plane answers
        with urllib.request.urlopen(f"{info['api']}/_emulator/settings") as answer:
            assert json.loads(answer.read())["qps_scale"] == 2.0
        # and the edge listens on both ports, and the CA bundle loads as a trust store
        ca_bundle = Path(info["ca_bundle"])
        assert "BEGIN CERTIFICATE" in ca_bundle.read_text()
        for address in (info["https"], info["http"]):
            host, port = address.rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=5).close()
        ssl.create_default_context(cafile=str(ca_bundle))
    finally:
        # When it is asked to stop
        process.terminate()
        _, errors = process.communicate(timeout=10)
    # Then it exits cleanly and removes its temporary directory
    assert process.returncode == 0, errors.decode()
    assert not ca_bundle.exists()
    assert b"Traceback" not in errors


def test_bad_arguments_fail_fast():
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--qps-scale", "0"],
        cwd=REPO,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert b"--qps-scale" in result.stderr
