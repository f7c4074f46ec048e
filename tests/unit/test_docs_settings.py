"""The README and s.yaml agree with the code: every setting documented, every variable
the deployment sets is one certpilot reads, and the handler s.yaml names exists."""

from __future__ import annotations

import re
from pathlib import Path

from certpilot.core import settings

REPO = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"`((?:CERTPILOT|ALIBABA_CLOUD)_[A-Z_]+)`")


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


def _yaml_block(text: str, key: str) -> dict[str, str]:
    """`KEY: value` lines indented under `key:` (enough YAML for s.yaml's flat maps)."""
    lines = text.splitlines()
    [start] = [i for i, line in enumerate(lines) if line.strip() == f"{key}:"]
    indent = len(lines[start]) - len(lines[start].lstrip())
    block: dict[str, str] = {}
    for line in lines[start + 1 :]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if len(line) - len(line.lstrip()) <= indent:
            break
        name, _, value = line.strip().partition(":")
        block[name] = value.strip().strip("\"'")
    return block


def test_s_yaml_sets_only_known_variables_and_points_at_the_handler() -> None:
    text = (REPO / "s.yaml").read_text(encoding="utf-8")
    # the function's environment: only variables certpilot reads, valid values
    environment = _yaml_block(text, "environment")
    assert environment and set(environment) <= set(settings.ALL_VARIABLES)
    literal = {k: v for k, v in environment.items() if not v.startswith("${")}
    settings.Settings.from_env(literal)  # raises ConfigError for a bad value
    # the handler: code folder + `module.function` exist
    code = re.search(r"^\s+code:\s*(\S+)\s*$", text, re.MULTILINE)
    handler = re.search(r"^\s+handler:\s*(\S+)\s*$", text, re.MULTILINE)
    assert code is not None and handler is not None
    module, function = handler.group(1).split(".")
    source = (REPO / code.group(1) / f"{module}.py").read_text(encoding="utf-8")
    assert re.search(rf"^def {function}\(event", source, re.MULTILINE)
    # the runtime matches what `make layer` builds for
    assert "runtime: python3.10" in text
    assert "--python-version 3.10" in (REPO / "Makefile").read_text(encoding="utf-8")
