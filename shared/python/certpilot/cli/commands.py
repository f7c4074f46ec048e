"""One module per CLI sub-command; each exposes `register(subparsers)`.

A registered sub-command sets `func` on its parser: `func(args) -> int` (the exit code).
"""

from __future__ import annotations

# Module names under certpilot.cli, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "diagnose_cert",
    "plan",
    "sweep",
    "invoke",
    "disable_https",
    "fallback",
    "ram_policy",
)
