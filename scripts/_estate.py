"""What `make demo` (scripts/demo.py) and `make sandbox` (scripts/sandbox.py) share: the
emulator started with an estate (the demo one by default), the environment that points
certpilot at it, its admin API, and the renewed `*.example.com` certificate both issue.

`start_emulator` runs `python -m emulator --port N --estate FILE --watch-stdin` in its own
session (a Ctrl-C reaches the script, which stops the emulator in order; `--watch-stdin`
ends it too should the script die without stopping it) and returns its ready line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
DEMO_ESTATE = REPO / "emulator" / "estates" / "demo.json"
READY_TIMEOUT = 30.0
# What a renewal pipeline would have CAS issue for the demo estate's expiring wildcard.
RENEWED = {"sans": ["*.example.com"], "days": 90, "name": "wildcard-example-com-renewed"}
# The Tea SDKs would send even 127.0.0.1 traffic through a configured proxy.
PROXY_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
)
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EstateError(RuntimeError):
    """The emulator did not start, or an admin call failed."""


def without_proxies(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without the proxy variables (PROXY_VARIABLES)."""
    return {k: v for k, v in env.items() if k not in PROXY_VARIABLES}


def start_emulator(
    log: IO[Any],
    estate: Path = DEMO_ESTATE,
    *,
    port: int = 0,
    extra: Sequence[str] = (),
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start the emulator with `estate` (its log to `log`) and return it with its ready
    line (emulator/README.md, "The ready line").

    Raises:
        EstateError: it exited or printed no ready line within READY_TIMEOUT.
    """
    argv = [sys.executable, "-m", "emulator", "--port", str(port), "--estate", str(estate)]
    process = subprocess.Popen(
        [*argv, "--watch-stdin", *extra],
        cwd=REPO,
        env=without_proxies(os.environ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    stdout = process.stdout
    assert stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(READY_TIMEOUT)
    if not lines or not lines[0].strip():
        stop_emulator(process)
        raise EstateError("the emulator did not start; see its log")
    info: dict[str, Any] = json.loads(lines[0])
    return process, info


def stop_emulator(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the emulator and wait for it (SIGKILL after 10 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdin is not None:
        process.stdin.close()


def admin(api: str, method: str, path: str, body: Any = None) -> Any:
    """Call the emulator's admin API (`/_emulator/<path>`) and return its JSON answer.

    Raises:
        EstateError: the API is not the emulator's local http:// URL, or the call failed.
    """
    if not api.startswith("http://"):
        raise EstateError(f"unexpected emulator API URL {api!r}")
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 (http:// checked above)
        f"{api}/_emulator/{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with _NO_PROXY.open(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        raise EstateError(f"emulator admin {method} {path}: {err.code}") from None
    except OSError as err:
        raise EstateError(f"emulator admin {method} {path}: {err}") from None


def exports(info: Mapping[str, Any]) -> dict[str, str]:
    """The environment that points certpilot at the emulator described by `info` (its
    ready line): README "Settings" names."""
    env = {
        "CERTPILOT_ENDPOINT": info["api"],
        "ALIBABA_CLOUD_ACCESS_KEY_ID": info["access_key_id"],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": info["access_key_secret"],
        "CERTPILOT_ACCOUNT_ID": info["account_id"],
        "CERTPILOT_EDGE_HTTPS": info["https"],
        "CERTPILOT_EDGE_HTTP": info["http"],
        "CERTPILOT_CA_BUNDLE": info["ca_bundle"],
        # The emulator's propagation is short: a failed verification need not wait 120 s.
        "CERTPILOT_VERIFY_DEADLINE": "15",
    }
    if info.get("security_token"):
        env["ALIBABA_CLOUD_SECURITY_TOKEN"] = info["security_token"]
    if info.get("region"):
        env["CERTPILOT_REGION"] = info["region"]
    if info.get("cas_region"):
        env["CERTPILOT_CAS_REGION"] = info["cas_region"]
    return env


def issue_renewed(api: str) -> dict[str, Any]:
    """Have the emulator's CAS issue RENEWED (as a renewal pipeline would); returns its
    answer (`certId`, `identifier`, `name`, `notAfter`, ...).

    Raises:
        EstateError: the admin call failed.
    """
    issued: dict[str, Any] = admin(api, "POST", "cas/issue", RENEWED)
    return issued
