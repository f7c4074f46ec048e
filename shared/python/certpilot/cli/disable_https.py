"""`certpilot disable-https --domain D`: turn HTTPS off on one domain, in the safe order.

CDN: the redirect and HSTS go first, then SSL; OSS: our bucket policy statement goes
(never anyone else's), then the hosted certificate
(`certpilot.jobs.enforce_https.disable`). On a terminal it is a dry run unless `--yes`;
`--dry-run` asks for one anywhere. Prints JSON. Exit 0: done (or planned); 1: a step
did not end well (the rest were not run) or the account could not be read; 2: bad
input or configuration (an unknown domain included).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from certpilot.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE


def register(subparsers: Any) -> None:
    """Add the `disable-https` sub-command to the CLI."""
    parser = subparsers.add_parser(
        "disable-https",
        help="turn HTTPS off on a domain in the safe order (redirect and HSTS first)",
        description="Disable HTTPS on one OSS custom domain or CDN domain, safely.",
    )
    parser.add_argument("--domain", required=True, help="the domain (OSS custom or CDN)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="show the steps, change nothing")
    mode.add_argument("--yes", action="store_true", help="change the account (on a terminal too)")
    parser.set_defaults(func=run)


def dry_run_wanted(args: argparse.Namespace) -> bool:
    """A dry run when asked for, or on a terminal without `--yes`."""
    return bool(args.dry_run or (sys.stdout.isatty() and not args.yes))


def run(args: argparse.Namespace) -> int:
    """Disable and print the report; returns the exit code."""
    from certpilot.cli import render
    from certpilot.cli._domains import UnknownDomain, find_record
    from certpilot.core.errors import CloudError, ConfigError
    from certpilot.jobs.deploy_cert import engine
    from certpilot.jobs.enforce_https.disable import disable_https

    dry_run = dry_run_wanted(args)
    try:
        deps = engine.build_deps(None)
        record, inventory = find_record(deps, args.domain)
        report = disable_https(deps.clients, record, inventory, dry_run=dry_run)
    except (UnknownDomain, ConfigError) as err:
        sys.stderr.write(f"certpilot disable-https: {err}\n")
        return EXIT_USAGE
    except CloudError as err:
        sys.stderr.write(f"certpilot disable-https: {err}\n")
        return EXIT_FINDINGS
    data = report.to_dict()
    if report.affected and not dry_run:
        data["note"] = (
            "the bucket policy covers the whole bucket: these domains no longer have plain"
            " HTTP denied either"
        )
    print(render.to_json(data))
    if dry_run and sys.stdout.isatty() and not args.dry_run:
        sys.stderr.write("dry run: nothing changed; run again with --yes to disable\n")
    return EXIT_OK if report.ok else EXIT_FINDINGS
