"""`make sandbox`: the emulator with the demo estate, for trying certpilot by hand.

Starts `python -m emulator --estate emulator/estates/demo.json`, issues a renewed
`*.example.com` certificate in its CAS (something to plan and deploy), writes a
deploy-cert event and that certificate's public chain to a temporary folder, and
prints the `export ...` lines that point `certpilot` at the emulator, then example
commands. It keeps running until Ctrl-C (SIGINT) or SIGTERM, then stops the emulator
and removes the folder. Exit status 0 after a stop, 1 when the emulator fails.

Usage: python scripts/sandbox.py [--port N] [--estate FILE] [-- EMULATOR-ARGS...]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

REPO = Path(__file__).resolve().parents[1]
DEMO_ESTATE = REPO / "emulator" / "estates" / "demo.json"
READY_TIMEOUT = 30.0
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


class SandboxError(RuntimeError):
    """The emulator did not start, or an admin call failed."""


def start_emulator(
    estate: Path, port: int, extra: Sequence[str], log: TextIO
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start the emulator (its log to `log`) and return it with its ready line.

    It gets its own session, so a Ctrl-C reaches the sandbox, which stops it in order;
    `--watch-stdin` ends it too should the sandbox die without stopping it.

    Raises:
        SandboxError: it exited or printed no ready line within READY_TIMEOUT.
    """
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    argv = [sys.executable, "-m", "emulator", "--port", str(port), "--estate", str(estate)]
    process = subprocess.Popen(
        [*argv, "--watch-stdin", *extra],
        cwd=REPO,
        env=env,
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
        raise SandboxError("the emulator did not start; see its log")
    return process, json.loads(lines[0])


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
        SandboxError: the API is not the emulator's local http:// URL, or the call failed.
    """
    if not api.startswith("http://"):
        raise SandboxError(f"unexpected emulator API URL {api!r}")
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
    except OSError as err:
        raise SandboxError(f"emulator admin {method} {path}: {err}") from None


def exports(info: dict[str, Any]) -> dict[str, str]:
    """The environment that points certpilot at the emulator described by `info`
    (its ready line): README "Settings" names."""
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


def prepare(info: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Issue the renewed certificate and write its deploy-cert event and public chain.

    Returns `{"certId", "event", "chain"}` (`chain` is None when the emulator's state
    does not show the PEM).
    """
    issued = admin(info["api"], "POST", "cas/issue", RENEWED)
    event = folder / "deploy-cert.json"
    event.write_text(json.dumps({"certId": issued["identifier"]}) + "\n", encoding="utf-8")
    certificates = admin(info["api"], "GET", "state").get("certificates") or {}
    pem = (certificates.get(str(issued["certId"])) or {}).get("cert_pem")
    chain: Path | None = None
    if isinstance(pem, str) and "PRIVATE KEY" not in pem:
        chain = folder / "wildcard-example-com-renewed.pem"
        chain.write_text(pem, encoding="utf-8")
    return {"certId": issued["certId"], "event": event, "chain": chain}


def banner(env: dict[str, str], prepared: dict[str, Any], log: Path) -> str:
    """What the sandbox prints: paste-able shell lines (exports, comments)."""
    q = shlex.quote
    lines = [
        "# certpilot sandbox: the emulator (OSS, CDN, CAS, FC and a live HTTPS edge) with",
        f"# {DEMO_ESTATE.relative_to(REPO)}. Paste these lines into another shell:",
        f'export PATH={q(str(Path(sys.executable).parent))}:"$PATH"',
        f"unset {' '.join(PROXY_VARIABLES)}",
        *(f"export {name}={q(value)}" for name, value in env.items()),
        f"# Then try (a renewed *.example.com is in CAS as certificate {prepared['certId']}):",
        f"#   certpilot plan --cert-id {prepared['certId']}",
        f"#   certpilot invoke deploy-cert --event {q(str(prepared['event']))}",
    ]
    if prepared["chain"] is not None:
        chain = q(str(prepared["chain"]))
        lines.append(f"#   certpilot diagnose-cert --domain www.example.com --cert {chain}")
    lines += [
        f"# The emulator's log: {log}. Ctrl-C stops the sandbox.",
    ]
    return "\n".join(lines)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until interrupted; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="control-plane port (0: any free)")
    parser.add_argument("--estate", type=Path, default=DEMO_ESTATE, help="estate file to load")
    parser.add_argument("extra", nargs="*", help="further emulator options, after --")
    args = parser.parse_args(argv)
    # Both explicitly: a shell starting us in the background would have SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="certpilot-sandbox-") as tmp:
        folder = Path(tmp)
        log_path = folder / "emulator.log"
        with log_path.open("w", encoding="utf-8") as log:
            try:
                process, info = start_emulator(args.estate, args.port, args.extra, log)
            except SandboxError as err:
                sys.stderr.write(f"sandbox: {err}:\n{log_path.read_text(errors='replace')}")
                return 1
            try:
                prepared = prepare(info, folder)
                print(banner(exports(info), prepared, log_path), flush=True)
                process.wait()
                sys.stderr.write(f"sandbox: the emulator stopped ({process.returncode})\n")
                return 1
            except KeyboardInterrupt:
                print("\n# sandbox stopped", flush=True)
                return 0
            except SandboxError as err:
                sys.stderr.write(f"sandbox: {err}\n")
                return 1
            finally:
                stop_emulator(process)


if __name__ == "__main__":
    sys.exit(main())
