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

from emulator.estate import DEMO_ESTATE
from tests.conftest import REPO
from tests.integration.test_emulator_edge import client_context, fetch

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


def test_an_estate_file_given_at_start_is_loaded_and_served(emulator_factory, tmp_path):
    # Given an emulator started with the demo estate file
    demo = emulator_factory("--estate", str(DEMO_ESTATE))

    # Then the account holds its resources at once
    state = demo.state()
    assert {"assets-prod", "media-prod"} <= set(state["buckets"])
    assert "www.example.com" in state["cdn_domains"]
    assert len(state["certificates"]) >= 10
    # and the edge serves its healthy domain over HTTPS verified by the ready line's CA
    assert demo.https and demo.ca_bundle
    port = int(demo.https.rsplit(":", 1)[1])
    reply = fetch(port, "www.example.com", tls=client_context(Path(demo.ca_bundle)))
    assert reply.status == 200
    assert reply.headers["strict-transport-security"].startswith("max-age=5184000")
    # and the estate's certificate files sit next to the CA bundle
    assert (Path(demo.ca_bundle).parent / "estate-files" / "vendor" / "vendor.der").is_file()

    # Given an estate file with a mistake, the emulator refuses to start, naming the field
    broken = json.loads(DEMO_ESTATE.read_text())
    broken["buckets"][0]["cnames"][0]["certificate"] = "no-such-certificate"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--port", "0", "--estate", str(path)],
        cwd=REPO,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode != 0 and not result.stdout
    assert b"buckets[0].cnames[0].certificate" in result.stderr
