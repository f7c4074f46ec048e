"""check-expiry's report as one self-contained HTML page.

Inline CSS only: no external asset, no script, no web font. On a narrow screen (a
phone) the domain table turns into one card per domain, each cell labelled by its
column (`data-label`). Every value passes `html.escape` after redaction.
"""

from __future__ import annotations

import html

from certpilot.core.findings import Finding
from certpilot.jobs.check_expiry import words
from certpilot.jobs.check_expiry.advice import what_to_do
from certpilot.jobs.check_expiry.report import DomainRow, Report, iso

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:1rem;
color:#1f2328;background:#fff;line-height:1.45}
h1{font-size:1.4rem;margin:0 0 .5rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
.headline{padding:.75rem 1rem;border-radius:.4rem;font-weight:600}
.clear{background:#dafbe1}.problems{background:#fff1c2}.unjudged{background:#ffd8d3}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
.scroll{overflow-x:auto}
th{background:#f6f8fa}
ul{margin:0;padding-left:1.1rem}
.error{color:#b42318;font-weight:600}.warning{color:#9a6700;font-weight:600}
.info{color:#0550ae}
.advice{color:#57606a}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em}
@media (max-width:700px){
 table.domains thead{display:none}
 table.domains,table.domains tbody,table.domains tr,table.domains td{display:block;width:100%;
 box-sizing:border-box}
 table.domains tr{margin-bottom:.75rem;border:1px solid #d0d7de;border-radius:.4rem}
 table.domains td{border:none;border-bottom:1px solid #eaeef2}
 table.domains td::before{content:attr(data-label);display:block;font-size:.75rem;
 color:#57606a;text-transform:uppercase}
}
"""


def _e(text: str | None, empty: str = "") -> str:
    """Redacted, then escaped for HTML text and attribute values."""
    return html.escape(words.clean(text, empty), quote=True)


def _headline_class(report: Report) -> str:
    if report.domains_not_judged:
        return "unjudged"
    return "clear" if report.all_clear else "problems"


def render_html(report: Report) -> str:
    """The report as a complete HTML document (UTF-8)."""
    run = report.run
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(words.TITLE)}: {_e(iso(run.started))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(words.TITLE)}</h1>",
        f'<p class="headline {_headline_class(report)}">{_e(words.headline(report))}</p>',
        '<table class="run"><tbody>',
    ]
    facts = (
        ("run", run.run_id),
        ("started", iso(run.started)),
        ("finished", iso(run.finished)),
        ("account", run.account or "unknown"),
        ("scope", run.scope or "the whole account"),
        ("mode", "report only" if run.report_only else "repair and report"),
        ("domains judged", f"{report.domains_judged} of {len(report.rows)}"),
        ("domains not judged", str(report.domains_not_judged)),
    )
    parts += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts]
    parts += ["</tbody></table>", "<h2>Totals</h2>", _totals(report), "<h2>Domains</h2>"]
    parts.append(_domains(report))
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _totals(report: Report) -> str:
    rows = [
        f'<tr><td class="{s.value}">{_e(words.SEVERITY[s])}</td><td>{n}</td></tr>'
        for s, n in report.by_severity.items()
    ]
    rows += [
        f"<tr><td><code>{_e(c.value)}</code></td><td>{n}</td></tr>"
        for c, n in report.by_code.items()
    ]
    return (
        '<table class="totals"><thead><tr><th>severity / code</th><th>findings</th></tr>'
        "</thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _domains(report: Report) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in words.COLUMNS)
    body = "".join(_row(row, report) for row in report.rows)
    if not report.rows:
        body = f'<tr><td colspan="{len(words.COLUMNS)}">no domains</td></tr>'
    # Between phone and desktop widths ten columns may not fit: the table scrolls.
    return (
        f'<div class="scroll"><table class="domains"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _row(row: DomainRow, report: Report) -> str:
    cert = row.certificate
    cells = (
        _e(row.domain),
        _e(words.LOCATION[row.location]),
        _e(words.certificate(cert)),
        _e(cert.issuer if cert else None, "unknown"),
        _e(words.expires(row.expires_in_days(report.run.now))),
        _e(words.FORCED[row.https_forced]),
        _e(words.HSTS[row.hsts]),
        _e(words.backup(row.backup_cas_id)),
        _findings(row.findings),
        _list([_e(words.repair(r)) for r in row.repairs]),
    )
    tds = "".join(
        f'<td data-label="{_e(label)}">{cell}</td>'
        for label, cell in zip(words.COLUMNS, cells, strict=True)
    )
    return f"<tr>{tds}</tr>"


def _findings(findings: tuple[Finding, ...]) -> str:
    items = []
    for f in findings:
        browser = f"; browser: <code>{_e(f.browser_error)}</code>" if f.browser_error else ""
        items.append(
            f'<span class="{f.severity.value}"><code>{_e(f.code.value)}</code> '
            f"({_e(words.SEVERITY[f.severity])})</span>: {_e(f.message)}{browser}"
            f'<br><span class="advice">What to do: {_e(what_to_do(f.code))}</span>'
        )
    return _list(items)


def _list(items: list[str]) -> str:
    """Already-escaped items as a list; `none` when empty."""
    if not items:
        return "none"
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"
