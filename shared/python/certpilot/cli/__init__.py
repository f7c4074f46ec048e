"""Argument parsing and dispatch for `python -m certpilot`.

Exit codes shared by every sub-command: 0 success, 1 the command ran and found an
error (for instance an error finding), 2 the input could not be used.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from certpilot.cli.commands import COMMAND_MODULES

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

# What `certpilot --help` tells a user (the sub-commands list themselves below it).
DESCRIPTION = """\
HTTPS on autopilot for Alibaba Cloud OSS custom domains and CDN domains.

certpilot puts CAS certificates where each domain's traffic is served (OSS
certificate hosting or CDN), verifies them with a live TLS handshake and rolls
back what does not take. In the cloud it runs as Function Compute functions;
these commands run the same code from a shell."""

EPILOG = """\
Run `certpilot COMMAND --help` for a command's options. Settings are environment
variables (CERTPILOT_*, ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET; see the README's
"Settings"). Exit status: 0 success, 1 the command ran and found an error,
2 the input or the configuration could not be used."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage plus a message and exits 2; keep it to one line.
        sys.stderr.write(f"certpilot: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered sub-command."""
    from certpilot import __version__

    parser = _Parser(
        prog="certpilot",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"certpilot {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser, title="commands"
    )
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"certpilot.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code
