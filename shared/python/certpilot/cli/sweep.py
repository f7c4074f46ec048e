"""`certpilot sweep`: check-expiry's sweep from a shell, against the configured account.

Judges every domain (or those of `--scope`, a bucket or domain glob) and prints the
report as a table, or as check-expiry's report in JSON, Markdown or HTML (`--format`),
to stdout or `--output FILE`; the CLI neither stores the report nor notifies.
A progress line goes to stderr while a terminal is attached, never when piped. Unless
`--report-only`, it repairs what CAS can repair (deploy-cert invoked through FC,
`CERTPILOT_DEPLOY_FUNCTION`), as the function does. Exit 0: every domain judged and
no error finding; 1: an error finding remains, a domain could not be judged, or the
account could not be read; 2: bad input or configuration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from certpilot.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from certpilot.jobs.check_expiry.sweep import SweepResult

FORMATS = ("table", "json", "markdown", "html")


def register(subparsers: Any) -> None:
    """Add the `sweep` sub-command to the CLI."""
    parser = subparsers.add_parser(
        "sweep",
        help="judge every domain of the account: expiry, names, chain, location, HTTPS forced",
        description="Run check-expiry's sweep against the configured account and print the"
        " report; unless --report-only, invoke deploy-cert (through Function Compute) for"
        " what CAS can repair.",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="judge and report only: no repair, no write",
    )
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--output", type=Path, default=None, metavar="FILE")
    parser.add_argument(
        "--scope", default=None, metavar="PATTERN", help="a bucket or domain glob, e.g. '*.cdn.*'"
    )
    parser.set_defaults(func=run)


class _Progress:
    """`done/total domain` on one rewritten stderr line (a terminal only)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.width = 0

    def __call__(self, done: int, total: int, domain: str) -> None:
        bar = "#" * (20 * done // max(total, 1))
        text = f"sweeping [{bar:<20}] {done}/{total} {domain}"[:78]
        self.stream.write("\r" + text.ljust(self.width))
        self.width = len(text)
        self.stream.flush()

    def close(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    """Sweep and print; returns the exit code."""
    from certpilot.core.errors import CloudError, ConfigError, EventError
    from certpilot.jobs.check_expiry import sweep
    from certpilot.jobs.deploy_cert.engine import build_deps

    try:
        options = sweep.parse_options(
            {
                "reportOnly": bool(args.report_only),
                **({"scope": args.scope} if args.scope is not None else {}),
            }
        )
        deps = build_deps(None)
    except (EventError, ConfigError) as err:
        sys.stderr.write(f"certpilot sweep: {err}\n")
        return EXIT_USAGE
    progress = _Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        result = sweep.sweep(options, deps, progress=progress)
    except CloudError as err:
        sys.stderr.write(f"certpilot sweep: cannot read the account: {err}\n")
        return EXIT_FINDINGS
    finally:
        if progress is not None:
            progress.close()
    text = render(result, args.format)
    if args.output is not None:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as err:
            sys.stderr.write(f"certpilot sweep: cannot write {args.output}: {err.strerror}\n")
            return EXIT_USAGE
    else:
        sys.stdout.write(text)
    return EXIT_FINDINGS if result.has_errors or result.not_judged else EXIT_OK


# -- rendering (words at the edge) ---------------------------------------------------------

_COLUMNS = ("domain", "location", "certificate", "issuer", "expires", "https", "hsts", "backup")


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _cells(row: dict[str, Any]) -> list[str]:
    cert = row["certificate"] or {}
    days = row["expiresInDays"]
    return [
        row["domain"],
        row["location"].upper(),
        str(cert.get("name") or cert.get("casId") or "-"),
        row["issuer"] or "-",
        "-" if days is None else f"{days} d",
        _yes(row["httpsForced"]),
        _yes(row["hsts"]),
        str(row["backup"] or "-"),
    ]


def _codes(row: dict[str, Any]) -> str:
    return ", ".join(f["code"] for f in row["findings"]) or "ok"


def _headline(summary: dict[str, Any]) -> str:
    sev = summary["totals"]["bySeverity"]
    parts = [
        f"{summary['domains']} domains",
        f"{sev['error']} errors, {sev['warning']} warnings, {sev['info']} info",
        "report-only" if summary["reportOnly"] else f"{len(summary['repairs'])} repairs invoked",
    ]
    if summary["notJudged"]:
        parts.append(f"NOT JUDGED: {', '.join(summary['notJudged'])}")
    elif summary["allClear"]:
        parts.append("all clear")
    return "; ".join(parts)


def render(result: SweepResult, fmt: str) -> str:
    """The report as text in `fmt` (one of FORMATS): JSON, Markdown and HTML are the
    report's own renderers (`jobs.check_expiry.report`), the table is this terminal's."""
    import uuid

    from certpilot.jobs.check_expiry.report import render_json
    from certpilot.jobs.check_expiry.run import to_report
    from certpilot.jobs.check_expiry.sweep import render as summary_of

    if fmt in ("json", "markdown", "html"):
        report = to_report(result, run_id=f"cli-{uuid.uuid4()}", finished=result.now)
        if fmt == "json":
            return render_json(report) + "\n"
        if fmt == "markdown":
            from certpilot.jobs.check_expiry.render_markdown import render_markdown

            return render_markdown(report)
        from certpilot.jobs.check_expiry.render_html import render_html

        return render_html(report)
    return render_table(summary_of(result))


def render_table(summary: dict[str, Any]) -> str:
    """The terminal's table of a sweep summary (check-expiry's JSON summary, as the
    handler returns it): a row per domain with its finding codes, then the headline."""
    rows = summary["rows"]
    table = [[*_COLUMNS, "findings"]] + [[*_cells(r), _codes(r)] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    out = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + "  " + line[-1]
        for line in table
    ]
    return "\n".join([*out, "", _headline(summary)]) + "\n"
