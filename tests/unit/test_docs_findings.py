"""The README's finding-code table agrees with the code: every code of
`certpilot.core.findings.Code` has one row, with its severity and, where a visitor sees
one, its browser error; and every code has advice for the reports."""

from __future__ import annotations

import re
from pathlib import Path

from certpilot.core.findings import Code
from certpilot.jobs.check_expiry.advice import WHAT_TO_DO

REPO = Path(__file__).resolve().parents[2]
CODE_CELL = re.compile(r"^`([A-Z_]+)`$")


def _rows() -> dict[str, list[str]]:
    """The table of the README's "Finding codes" section: code -> its cells."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Finding codes\n")
    end = text.find("\n## ", start + 1)
    rows: dict[str, list[str]] = {}
    for line in text[start:end].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = CODE_CELL.match(cells[0]) if line.startswith("| `") else None
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} has two rows"
            rows[match.group(1)] = cells
    return rows


def test_every_finding_code_has_exactly_one_row() -> None:
    # given the README's finding codes table
    rows = _rows()
    # then it lists each code certpilot can report, and no other
    assert set(rows) == {code.value for code in Code}


def test_each_row_gives_the_codes_severity_and_browser_error() -> None:
    rows = _rows()
    for code in Code:
        _, severity, visitor_sees, _what_to_do = rows[code.value]
        # then the severity is the code's own...
        assert severity == code.severity.value, code
        # ...and the browser error is named exactly when the code has one
        if code.browser_error is not None:
            assert f"`{code.browser_error}`" in visitor_sees, code
        else:
            assert "ERR_" not in visitor_sees, code


def test_the_reports_have_advice_for_every_code_the_readme_lists() -> None:
    # given the codes the README lists, then check-expiry's reports advise on each
    assert {Code(name) for name in _rows()} <= set(WHAT_TO_DO)
