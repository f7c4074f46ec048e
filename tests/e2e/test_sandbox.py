"""`make sandbox` (scripts/sandbox.py) as a new user meets it: start it, paste its
`export` lines into a shell, run the example commands it prints, stop it with Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Sandbox:
    process: subprocess.Popen[str]
    env: dict[str, str] = field(default_factory=dict)  # a shell after pasting the lines
    examples: list[list[str]] = field(default_factory=list)  # the `#   certpilot ...` lines

    def run(self, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        command = shutil.which(argv[0], path=self.env["PATH"])
        assert command is not None, f"{argv[0]} is not on the exported PATH"
        return subprocess.run(
            [command, *argv[1:]],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def example(self, subcommand: str) -> list[str]:
        [argv] = [a for a in self.examples if a[1] == subcommand]
        return argv


def paste(lines: list[str]) -> tuple[dict[str, str], list[list[str]]]:
    """What a shell has after the `export` / `unset` lines, and the example commands."""
    env = {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("CERTPILOT_")
    }
    examples: list[list[str]] = []
    for line in lines:
        words = shlex.split(line, comments=not line.startswith("#   certpilot "))
        if not words:
            continue
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            env[name] = value.replace("$PATH", os.environ.get("PATH", ""))
        elif words[0] == "unset":
            for name in words[1:]:
                env.pop(name, None)
        elif words[:2] == ["#", "certpilot"]:
            examples.append(words[1:])
    return env, examples


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """scripts/sandbox.py running, its banner read (up to the "Ctrl-C" line)."""
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "sandbox.py")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in iter(stdout.readline, ""):
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    banner: list[str] = []
    try:
        while not banner or "Ctrl-C" not in banner[-1]:
            banner.append(lines.get(timeout=START_TIMEOUT))
        env, examples = paste(banner)
        yield Sandbox(process, env, examples)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def test_the_sandbox_prints_a_working_environment_and_stops_on_ctrl_c(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # given the sandbox's lines pasted into a shell (no PYTHONPATH, another directory)
    env = sandbox.env
    assert {
        "CERTPILOT_ENDPOINT",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "CERTPILOT_ACCOUNT_ID",
        "CERTPILOT_EDGE_HTTPS",
        "CERTPILOT_EDGE_HTTP",
        "CERTPILOT_CA_BUNDLE",
    } <= set(env)
    assert not {k for k in env if k.lower().endswith("_proxy")}

    # when the printed plan example runs (as JSON, to read its fields)
    plan_argv = sandbox.example("plan")
    planned = sandbox.run([*plan_argv, "--format", "json"], tmp_path)
    # then it plans the renewed certificate onto demo domains and writes nothing
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert str(plan["certificate"]["certId"]) == plan_argv[plan_argv.index("--cert-id") + 1]
    assert plan["certificate"]["sans"] == ["*.example.com"]
    assert plan["actions"]

    # when the printed diagnose-cert example runs on the renewed certificate's chain
    diagnosed = sandbox.run(sandbox.example("diagnose-cert"), tmp_path)
    # then the chain is trusted through the exported CA bundle
    assert diagnosed.returncode == 0, diagnosed.stdout + diagnosed.stderr
    assert json.loads(diagnosed.stdout)["ok"] is True

    # when the printed invoke example deploys it
    invoked = sandbox.run(sandbox.example("invoke"), tmp_path)
    # then deploy-cert ran against the emulator and put it on the planned domains
    summary = json.loads(invoked.stdout)
    deployed = {r["domain"] for r in summary["results"] if r["outcome"] == "deployed"}
    assert deployed and deployed <= {a["domain"] for a in plan["actions"]}

    # when the user presses Ctrl-C
    event = Path(sandbox.example("invoke")[-1])
    sandbox.process.send_signal(signal.SIGINT)
    # then the sandbox exits 0, the emulator is gone and so are the sandbox's files
    assert sandbox.process.wait(30) == 0
    with pytest.raises(urllib.error.URLError):
        _NO_PROXY.open(f"{env['CERTPILOT_ENDPOINT']}/_emulator/info", timeout=5)
    assert not event.parent.exists()
