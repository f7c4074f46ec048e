"""`certpilot fallback --domain D --for 2h`: the emergency HTTP fallback of one domain.

Plain HTTP is allowed for a while and comes back to HTTPS by itself: the bucket's
HTTPS-only statement gains an end time that OSS evaluates; a CDN domain's redirect is
switched off with its end recorded in a tag, and the next enforce-https or
check-expiry run switches it back on (`certpilot.jobs.enforce_https.fallback`).
`--end` ends it at once; `--restore-expired` runs the restore step for every CDN
domain whose fallback has ended. Prints JSON. Exit 0: done; 1: a step did not end
well, or the account could not be read; 2: bad input or configuration.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from certpilot.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE


def register(subparsers: Any) -> None:
    """Add the `fallback` sub-command to the CLI."""
    parser = subparsers.add_parser(
        "fallback",
        help="emergency: allow plain HTTP on a domain for a while (ends by itself)",
        description="Start or end the emergency HTTP fallback of one domain.",
    )
    parser.add_argument("--domain", help="the domain (OSS custom or CDN)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--for", dest="duration", help="how long: 90s, 30m, 2h, 1d (at most 7d)")
    what.add_argument("--end", action="store_true", help="end the domain's fallback now")
    what.add_argument(
        "--restore-expired",
        action="store_true",
        help="switch CDN redirects back on where a fallback has ended (what each run does)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start, end or restore, and print the steps; returns the exit code."""
    from datetime import datetime, timezone

    from certpilot.cli import render
    from certpilot.cli._domains import UnknownDomain, find_record
    from certpilot.core.errors import CloudError, ConfigError
    from certpilot.jobs.deploy_cert import engine
    from certpilot.jobs.enforce_https import fallback

    now = datetime.now(timezone.utc)
    try:
        duration = fallback.parse_duration(args.duration) if args.duration else None
        if not args.restore_expired and not args.domain:
            raise UnknownDomain("--domain is required with --for and --end")
        deps = engine.build_deps(None)
        data: dict[str, Any] = {"now": fallback.iso(now)}
        if args.restore_expired:
            steps = fallback.restore_expired(deps.clients, now)
        else:
            record, _ = find_record(deps, args.domain)
            data["domain"] = record.name
            if duration is not None:
                until = fallback.fallback_end(now, duration)
                data["until"] = fallback.iso(until)
                steps = fallback.start(deps.clients, record, until)
            else:
                steps = fallback.end(deps.clients, record)
    except (ValueError, ConfigError) as err:
        sys.stderr.write(f"certpilot fallback: {err}\n")
        return EXIT_USAGE
    except CloudError as err:
        sys.stderr.write(f"certpilot fallback: {err}\n")
        return EXIT_FINDINGS
    ok = all(step.outcome.ok for step in steps)
    data.update(ok=ok, steps=[step.to_dict() for step in steps])
    print(render.to_json(data))
    return EXIT_OK if ok else EXIT_FINDINGS
