"""The layering contracts (pyproject.toml `[tool.importlinter]`) hold for the code, and
they are real: a copy of the code with one forbidden import breaks exactly that one."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """Run the project's contracts (all, or the ids given) on the packages under `root`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # `root` first on sys.path: its certpilot wins over the editable install's.
    env["PYTHONPATH"] = str(root)
    selected = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache", *selected],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def code_copy(tmp_path: Path) -> Path:
    """The layer and the emulator, copied side by side (as root packages)."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "shared" / "python" / "certpilot", tmp_path / "certpilot", ignore=ignore)
    shutil.copytree(REPO / "emulator", tmp_path / "emulator", ignore=ignore)
    return tmp_path


def test_the_code_keeps_every_contract() -> None:
    # given the repository as it is; when every contract is checked
    run = lint_imports(REPO)
    # then none is broken
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(
    ("module", "source", "contract", "edge"),
    [
        # a core module that imports an SDK
        (
            "certpilot/core/_leak.py",
            "import alibabacloud_oss_v2\n",
            "core",
            "certpilot.core._leak -> alibabacloud_oss_v2",
        ),
        # a certs module that reaches for a cloud adapter
        (
            "certpilot/certs/_leak.py",
            "from certpilot.cloud import cas\n",
            "certs",
            "certpilot.certs._leak -> certpilot.cloud.cas",
        ),
        # a job that imports the Tea runtime directly
        (
            "certpilot/jobs/deploy_cert/_leak.py",
            "from Tea.exceptions import TeaException\n",
            "sdk-in-cloud-only",
            "certpilot.jobs.deploy_cert._leak -> Tea",
        ),
        # the emulator borrowing certpilot's certificate checks
        (
            "emulator/_leak.py",
            "from certpilot.certs import validate\n",
            "independence",
            "emulator._leak -> certpilot.certs.validate",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    code_copy: Path, module: str, source: str, contract: str, edge: str
) -> None:
    # given a copy of the code whose contracts hold
    assert lint_imports(code_copy, contract).returncode == 0
    # when one module gains a forbidden import
    (code_copy / module).write_text(f"from __future__ import annotations\n\n{source}")
    # then that contract is broken, naming the import
    run = lint_imports(code_copy, contract)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 broken" in run.stdout
    assert edge in run.stdout


def test_the_handlers_never_import_the_emulator() -> None:
    # given every module of functions/ (scripts, not a package: outside import-linter)
    imported: set[str] = set()
    for path in (REPO / "functions").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module)
    # then certpilot is what they build on, and the emulator is nowhere
    assert any(name.startswith("certpilot") for name in imported)
    assert not [name for name in imported if name.split(".")[0] == "emulator"]
