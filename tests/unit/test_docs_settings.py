"""The README agrees with the code: every setting documented, each read by the parts the
README's "read by" column names, no variable read that the README does not list.
(s.yaml against the code and this table: test_s_yaml.py.)"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from certpilot.core import settings

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "shared" / "python" / "certpilot"
VARIABLE = re.compile(r"`((?:CERTPILOT|ALIBABA_CLOUD)_[A-Z_]+)`")
VARIABLE_NAME = re.compile(r"(?:CERTPILOT|ALIBABA_CLOUD)_[A-Z0-9_]+")
# A "read by" reference: a module or package under certpilot/ (`jobs.deploy_cert`) or a
# folder of the repository (`functions/deploy_cert`).
REFERENCE = re.compile(r"`([a-z_]+(?:\.[a-z_]+)*|[a-z_]+(?:/[a-z_]+)+)`")


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_readme_settings_table_lists_exactly_the_variables_certpilot_reads() -> None:
    # given the README's settings table (first column of each row)
    table = _section((REPO / "README.md").read_text(encoding="utf-8"), "Settings")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in VARIABLE.findall(row.split("|")[1])}
    # then it names every variable of settings.ALL_VARIABLES, and nothing else
    assert documented == set(settings.ALL_VARIABLES)


def _rows() -> list[tuple[set[str], str]]:
    """(variables, "read by" cell) of each row of the README's settings table."""
    table = _section((REPO / "README.md").read_text(encoding="utf-8"), "Settings")
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| `")]
    return [(set(VARIABLE.findall(cells[1])), cells[4]) for cells in rows]


def _python_files(reference: str) -> list[Path]:
    """The source files a "read by" reference names (empty when it names nothing)."""
    base = REPO / reference if "/" in reference else PACKAGE.joinpath(*reference.split("."))
    if base.with_suffix(".py").is_file():
        return [base.with_suffix(".py")]
    return sorted(base.rglob("*.py")) if base.is_dir() else []


def _readers(variable: str) -> set[str]:
    """What, in code, shows that `variable` is read: the Settings field it fills (an
    attribute access `.field`), the constant naming it in `settings`, or the name itself."""
    constants = {k for k, v in vars(settings).items() if k.isupper() and v == variable}
    fields = {c.lower() for c in constants if hasattr(settings.Settings(), c.lower())}
    return constants | fields | {variable}


@cache
def _names_used(path: Path) -> frozenset[str]:
    """Attribute names, names, imported names and string constants in `path`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.alias):
            found.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
    return frozenset(found)


@pytest.mark.parametrize(
    ("variables", "read_by"),
    _rows(),
    ids=lambda v: "+".join(sorted(v)) if isinstance(v, set) else "",
)
def test_each_setting_is_read_where_the_readme_says(variables: set[str], read_by: str) -> None:
    # given a row of the settings table and the parts its "read by" column names
    references = REFERENCE.findall(read_by)
    assert references, f"no part named in {read_by!r}"
    used: dict[str, frozenset[str]] = {}
    for reference in references:
        files = _python_files(reference)
        assert files, f"{reference} names no module, package or folder"
        assert settings.__file__ not in {str(f) for f in files}, "settings itself reads nothing"
        used[reference] = frozenset().union(*(_names_used(f) for f in files))
    # then every part named reads one of the row's variables...
    for reference, names in used.items():
        assert any(_readers(v) & names for v in variables), f"{reference} reads none of them"
    # ...and every variable of the row is read by one of the parts named
    for variable in variables:
        assert any(_readers(variable) & names for names in used.values()), variable


def test_the_code_reads_no_variable_the_readme_does_not_list() -> None:
    # given every variable name spelled out in the layer or a handler
    sources = [*PACKAGE.rglob("*.py"), *(REPO / "functions").rglob("*.py")]
    spelled = {
        name for path in sources for name in _names_used(path) if VARIABLE_NAME.fullmatch(name)
    }
    # then the README lists each one
    documented = {v for variables, _ in _rows() for v in variables}
    assert spelled <= documented, spelled - documented


def test_readme_defaults_match_the_settings_defaults() -> None:
    table = _section((REPO / "README.md").read_text(encoding="utf-8"), "Settings")
    defaults = settings.Settings()
    expected = {
        settings.REGION: defaults.region,
        settings.CAS_REGION: defaults.cas_region,
        settings.RENEW_DAYS: defaults.renew_days,
        settings.VERIFY_DEADLINE: defaults.verify_deadline,
        settings.CONCURRENCY: defaults.concurrency,
        settings.LOG_LEVEL: defaults.log_level,
    }
    for name, value in expected.items():
        [row] = [line for line in table.splitlines() if line.startswith(f"| `{name}` |")]
        documented = row.split("|")[2].strip().strip("`")
        want = f"{value:g}" if isinstance(value, float) else str(value)
        assert documented == want, name
