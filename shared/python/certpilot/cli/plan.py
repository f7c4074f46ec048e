"""`certpilot plan --cert-id N`: the dry run of deploy-cert (discover, catalog, plan).

Reads the account and prints where the certificate would go and why the other
covered domains are left alone; changes nothing. Exit 0: a plan was made; 1: the
certificate is refused or not in CAS, or the account could not be read; 2: bad input
or configuration.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from certpilot.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE


def register(subparsers: Any) -> None:
    """Add the `plan` sub-command to the CLI."""
    parser = subparsers.add_parser(
        "plan",
        help="dry run: where a CAS certificate would be deployed, and why not elsewhere",
        description="Plan the rollout of a CAS certificate without changing anything.",
    )
    parser.add_argument(
        "--cert-id", required=True, help="CAS certificate id (123) or identifier (123-cn-hangzhou)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plan and print; returns the exit code."""
    from certpilot.cli import render as report
    from certpilot.core.errors import CloudError, ConfigError, EventError
    from certpilot.events import parse_cert_id
    from certpilot.jobs.deploy_cert import engine

    try:
        cas_id, region = parse_cert_id(args.cert_id.strip(), field="--cert-id")
        deps = engine.build_deps(None)
        plan, _, _ = engine.discover_and_plan(cas_id, deps, region=region)
    except (EventError, ConfigError) as err:
        sys.stderr.write(f"certpilot plan: {err}\n")
        return EXIT_USAGE
    except CloudError as err:
        sys.stderr.write(f"certpilot plan: cannot read the account: {err}\n")
        return EXIT_FINDINGS
    if plan is None:
        sys.stderr.write(f"certpilot plan: CAS holds no certificate {cas_id}\n")
        return EXIT_FINDINGS
    if args.format == "json":
        print(report.plan_json(plan))
    else:
        print(report.plan_text(plan))
    return EXIT_FINDINGS if plan.refused else EXIT_OK
