"""The start contract of `python -m emulator`: one JSON ready line, quick start, a
working control plane and edge, and a clean exit on SIGTERM."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from emulator.__main__ import parse_args
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
    # Given a fresh emulator on any free port (how quickly it starts is measured by
    # `make bench`, benchmarks/emulator_throughput.py: median of 5 starts, target < 2 s;
    # a wall-clock bound here would fail on a loaded machine)
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--qps-scale", "2"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        # Then it prints one JSON line with the documented keys
        info = json.loads(line)
        assert set(info) >= READY_KEYS
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


ANY_INTERFACE = "0.0.0.0"  # noqa: S104  (what the emulator must refuse)


@pytest.mark.parametrize("host", [ANY_INTERFACE, "::", "192.0.2.10", "example.com", ""])
def test_a_non_loopback_host_is_refused_without_allow_remote(host, capsys):
    # Given a listen address others could reach (the admin API hands out the secret and
    # runs any file as a function), when the emulator is started without --allow-remote
    with pytest.raises(SystemExit) as stopped:
        parse_args(["--host", host])
    # then it refuses before listening, saying why and how to override
    assert stopped.value.code == 2
    assert "--allow-remote" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts_need_no_flag(host, capsys):
    assert parse_args(["--host", host]).host == host
    assert capsys.readouterr().err == ""


def test_allow_remote_listens_anywhere_with_a_warning(capsys):
    args = parse_args(["--host", ANY_INTERFACE, "--allow-remote"])
    assert (args.host, args.allow_remote) == (ANY_INTERFACE, True)
    warning = capsys.readouterr().err
    assert "WARNING" in warning and "secret" in warning


def test_the_process_refuses_a_remote_host():
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--port", "0", "--host", ANY_INTERFACE],
        cwd=REPO,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2 and not result.stdout
    assert b"--allow-remote" in result.stderr


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
