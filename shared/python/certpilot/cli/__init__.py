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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage plus a message and exits 2; keep it to one line.
        sys.stderr.write(f"certpilot: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered sub-command."""
    parser = _Parser(prog="certpilot", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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
