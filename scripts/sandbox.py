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
import shlex
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from _estate import (
    DEMO_ESTATE,
    PROXY_VARIABLES,
    REPO,
    EstateError,
    admin,
    exports,
    issue_renewed,
    start_emulator,
    stop_emulator,
)


def prepare(info: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Issue the renewed certificate and write its deploy-cert event and public chain.

    Returns `{"certId", "event", "chain"}` (`chain` is None when the emulator's state
    does not show the PEM).
    """
    issued = issue_renewed(info["api"])
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
                process, info = start_emulator(log, args.estate, port=args.port, extra=args.extra)
            except EstateError as err:
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
            except EstateError as err:
                sys.stderr.write(f"sandbox: {err}\n")
                return 1
            finally:
                stop_emulator(process)


if __name__ == "__main__":
    sys.exit(main())
