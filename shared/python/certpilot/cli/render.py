"""Render plans and rollout results for people (text tables) and machines (JSON).

Reasons appear as their stable code strings (`Reason.wire`) beside the words
`certpilot.jobs.deploy_cert.summary` renders from their typed fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from certpilot.jobs.deploy_cert.plan import Plan
from certpilot.jobs.deploy_cert.summary import plan_dict, reason_words


def plan_json(plan: Plan) -> str:
    """The dry run as JSON (the `plan` of a dry-run summary)."""
    return to_json(plan_dict(plan))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain left-aligned text table (no trailing spaces)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    lines = [_line(headers, widths), _line(["-" * w for w in widths], widths)]
    lines.extend(_line(row, widths) for row in cells)
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    return " ".join(str(value).split())


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=False)).rstrip()


def to_json(data: Any) -> str:
    """Stable, indented JSON (sorted keys off: the dicts are ordered for reading)."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def plan_text(plan: Plan) -> str:
    """The dry run as text: the certificate, what would change, what is left alone."""
    cert = plan.cert
    head = [
        f"certificate {cert.cas_id} ({cert.identifier}) {cert.name}",
        f"  names:   {', '.join(cert.sans) or '-'}",
        f"  issuer:  {cert.issuer}",
        f"  valid:   {_cell(cert.not_before)} .. {_cell(cert.not_after)}",
        f"  decided: {plan.now.isoformat()}",
    ]
    if plan.refused:
        head.append("  REFUSED: nothing will be deployed")
    parts = ["\n".join(head)]
    if plan.findings:
        parts.append(
            "findings\n"
            + table(
                ["code", "severity", "domain", "message"],
                [(f.code.value, f.severity.value, f.domain, f.message) for f in plan.findings],
            )
        )
    rows: list[Sequence[object]] = []
    for action in plan.actions:
        previous = action.previous
        rows.append(
            (
                action.domain,
                action.route.value,
                "deploy",
                action.reason.wire,
                previous.cas_id if previous else None,
                previous.not_after if previous else None,
                reason_words(action.reason, action.route),
            )
        )
    for skip in plan.skipped:
        rows.append(
            (
                skip.domain,
                skip.route.value if skip.route else None,
                "skip",
                skip.reason.wire,
                None,
                None,
                reason_words(skip.reason, skip.route),
            )
        )
    rows.sort(key=lambda r: str(r[0]))
    if rows:
        headers = ["domain", "route", "do", "reason", "current", "current expires", "why"]
        parts.append(table(headers, rows))
    else:
        parts.append("no domain of the account is covered by this certificate")
    parts.append(f"{len(plan.actions)} to deploy, {len(plan.skipped)} left alone (dry run)")
    return "\n\n".join(parts)
