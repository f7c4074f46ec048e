"""check-expiry's report as Markdown: the headline, the run, totals, a table row per
domain, then each finding with the browser error and what to do.

Every value is escaped: HTML in a domain or a message stays text, and a `|` cannot
break the table.
"""

from __future__ import annotations

import html
import re

from certpilot.jobs.check_expiry import words
from certpilot.jobs.check_expiry.advice import what_to_do
from certpilot.jobs.check_expiry.report import Report, iso

# Inline emphasis, links, code and table cells; `<`, `>` and `&` are HTML-escaped first.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _md(text: str | None, empty: str = "") -> str:
    """Redacted, HTML-escaped, Markdown punctuation backslashed, on one line."""
    value = " ".join(words.clean(text, empty).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(value, quote=False))


def render_markdown(report: Report) -> str:
    """The report as a Markdown document."""
    run = report.run
    now = run.now
    lines = [
        f"# {words.TITLE}",
        "",
        f"**{_md(words.headline(report))}**",
        "",
        "| run | |",
        "|---|---|",
        f"| id | {_md(run.run_id)} |",
        f"| started | {_md(iso(run.started))} |",
        f"| finished | {_md(iso(run.finished))} |",
        f"| account | {_md(run.account, 'unknown')} |",
        f"| scope | {_md(run.scope, 'the whole account')} |",
        f"| mode | {'report only' if run.report_only else 'repair and report'} |",
        f"| domains judged | {report.domains_judged} of {len(report.rows)} |",
        f"| domains not judged | {report.domains_not_judged} |",
        "",
        "## Totals",
        "",
        "| severity | findings |",
        "|---|---|",
        *(f"| {words.SEVERITY[s]} | {n} |" for s, n in report.by_severity.items()),
        "",
    ]
    if report.by_code:
        lines += ["| code | findings |", "|---|---|"]
        lines += [f"| `{c.value}` | {n} |" for c, n in report.by_code.items()]
        lines.append("")
    lines += [
        "## Domains",
        "",
        "| " + " | ".join(words.COLUMNS) + " |",
        "|" + "---|" * len(words.COLUMNS),
    ]
    for row in report.rows:
        cert = row.certificate
        cells = (
            _md(row.domain),
            words.LOCATION[row.location],
            _md(words.certificate(cert)),
            _md(cert.issuer if cert else None, "unknown"),
            words.expires(row.expires_in_days(now)),
            words.FORCED[row.https_forced],
            words.HSTS[row.hsts],
            words.backup(row.backup_cas_id),
            ", ".join(f"`{f.code.value}`" for f in row.findings) or "none",
            "; ".join(_md(words.repair(r)) for r in row.repairs) or "none",
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    with_findings = [row for row in report.rows if row.findings]
    if with_findings:
        lines += ["## Findings and what to do", ""]
    for row in with_findings:
        lines += [f"### {_md(row.domain)}", ""]
        for f in row.findings:
            browser = f" Browsers show {_md(f.browser_error)}." if f.browser_error else ""
            lines.append(
                f"- **`{f.code.value}`** ({words.SEVERITY[f.severity]}): "
                f"{_md(f.message.rstrip('.'))}.{browser} What to do: {_md(what_to_do(f.code))}"
            )
        lines.append("")
    return "\n".join(lines)
