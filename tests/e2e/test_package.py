"""certpilot as a Python package: the editable install `make` does, and the wheel.

The wheel test builds `pip wheel --no-deps .` from a copy of the repository and installs
it, with its pinned dependencies, into a fresh virtual environment that knows nothing
of the checkout. The dependencies come as wheels from a wheelhouse in `.venv`, built
from the package registry (through pip's cache) the first time and reused while
`shared/requirements.txt` stays the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from tests.pki import Pki, build_pki, pem

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FIXED_NOW = "2025-06-01T12:00:00Z"
COMMANDS = ("diagnose-cert", "plan", "invoke")
# Not the source of a build: environments, caches, earlier builds.
JUNK = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


def pinned_requirements() -> list[str]:
    """shared/requirements.txt, the FC layer's pins: `name==version` lines."""
    lines = (REPO / "shared" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def wheelhouse() -> Path:
    """Wheels of the pinned dependencies and theirs, one folder per requirements file
    content in the test environment's prefix (`.venv`), built once."""
    requirements = REPO / "shared" / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    home = Path(sys.prefix) / f"wheelhouse-{digest}"
    if home.is_dir():
        return home
    staging = Path(tempfile.mkdtemp(prefix=".wheelhouse-", dir=sys.prefix))
    built = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-r", requirements, "-w", staging], REPO
    )
    assert built.returncode == 0, built.stderr
    try:
        staging.rename(home)  # complete or absent: a half-built one is never used
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return home


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without PYTHONPATH or certpilot settings."""
    env = {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("CERTPILOT_")
    }
    env.update(extra)
    return env


def run(argv: list[str | Path], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=clean_env(**extra),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A leaf-first chain for www.example.com and the root it chains to."""
    pki: Pki = build_pki(("www.example.com",), depth=1)
    folder = tmp_path_factory.mktemp("cert")
    (folder / "chain.pem").write_bytes(pki.chain_pem())
    (folder / "root.pem").write_bytes(pem(pki.root.cert))
    return folder / "chain.pem", folder / "root.pem"


def diagnose_args(certificate: tuple[Path, Path]) -> list[str | Path]:
    chain, root = certificate
    return [
        "diagnose-cert",
        "--domain",
        "www.example.com",
        "--cert",
        chain,
        "--ca-bundle",
        root,
        "--now",
        FIXED_NOW,
    ]


def test_the_package_metadata_declares_the_layer_pins_and_the_console_script() -> None:
    # given the certpilot the test environment has installed (make: editable)
    dist = metadata.distribution("certpilot")
    # then its dependencies are exactly the FC layer's pins, and `certpilot` runs the CLI
    assert sorted(dist.requires or []) == sorted(pinned_requirements())
    scripts = {e.name: e.value for e in dist.entry_points if e.group == "console_scripts"}
    assert scripts == {"certpilot": "certpilot.cli:main"}


def test_the_command_and_the_module_work_from_any_directory(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    # given a directory outside the checkout and no PYTHONPATH
    # when a user asks the command for help
    helped = run([BIN / "certpilot", "--help"], tmp_path)
    # then it lists every command with what it does, not an internal docstring
    assert helped.returncode == 0, helped.stderr
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", helped.stdout, re.MULTILINE), command
    assert "dispatch" not in helped.stdout
    # and `python -m certpilot diagnose-cert` judges a certificate
    diagnosed = run([sys.executable, "-m", "certpilot", *diagnose_args(certificate)], tmp_path)
    assert diagnosed.returncode == 0, diagnosed.stderr
    report = json.loads(diagnosed.stdout)
    assert (report["ok"], report["certificate"]["sans"]) == (True, ["www.example.com"])


def test_invoke_finds_the_checkouts_functions_from_another_directory(tmp_path: Path) -> None:
    # given an event file outside the checkout that deploy-cert rejects before any call
    event = tmp_path / "event.json"
    event.write_text("[]", encoding="utf-8")
    # when invoked from that directory (the editable install knows the checkout)
    done = run([BIN / "certpilot", "invoke", "deploy-cert", "--event", event], tmp_path)
    # then the checkout's handler ran and answered (a rejection), not "no functions"
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["status"] == "rejected"
    # and a --functions-dir that is no folder is a usage error, before anything runs
    missing = tmp_path / "no-such-folder"
    wrong = run(
        [BIN / "certpilot", "invoke", "deploy-cert", "--event", event, "--functions-dir", missing],
        tmp_path,
    )
    assert wrong.returncode == 2 and wrong.stdout == ""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel --no-deps . -w DIR` in a copy of the repository (no build residue in
    the checkout)."""
    work = tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, work / "src", ignore=JUNK)
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", ".", "-w", work / "dist"],
        work / "src",
    )
    assert built.returncode == 0, built.stderr
    [path] = (work / "dist").glob("certpilot-*.whl")
    return path


def test_the_wheel_holds_certpilot_only(wheel: Path) -> None:
    # given the built wheel
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [meta] = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = re.findall(r"^Requires-Dist: (.+)$", archive.read(meta).decode(), re.MULTILINE)
    # then it holds the certpilot package and its metadata, nothing else of the repository
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"certpilot", meta.split("/", 1)[0]}
    assert "certpilot/__init__.py" in names and "certpilot/cli/__init__.py" in names
    assert not [n for n in names if "emulator" in n or "tests/" in n or "functions/" in n]
    # and it depends on exactly the layer's pins
    assert sorted(requires) == sorted(pinned_requirements())


def test_the_wheel_runs_diagnose_cert_in_a_clean_environment(
    wheel: Path, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    # given a new virtual environment with only the wheel and its dependencies installed
    # (pip runs from the test environment: --python targets the new one; the
    # dependencies from the wheelhouse, offline)
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "-q",
            "--no-compile",
            "--disable-pip-version-check",
            "--no-index",
            "--find-links",
            wheelhouse(),
            wheel,
        ],
        tmp_path,
    )
    assert installed.returncode == 0, installed.stderr
    # when its `certpilot` judges a certificate, outside any checkout
    diagnosed = run([venv / "bin" / "certpilot", *diagnose_args(certificate)], tmp_path)
    # then it answers as the checkout's does
    assert diagnosed.returncode == 0, diagnosed.stderr
    assert json.loads(diagnosed.stdout)["ok"] is True
    # and nothing else of the repository came along
    probe = run([python, "-c", "import emulator"], tmp_path)
    assert probe.returncode == 1 and "ModuleNotFoundError" in probe.stderr
    # and invoke, which needs a checkout's handlers, says so with a usage error
    event = tmp_path / "event.json"
    event.write_text("{}", encoding="utf-8")
    invoked = run([venv / "bin" / "certpilot", "invoke", "deploy-cert", "--event", event], tmp_path)
    assert invoked.returncode == 2
    assert "--functions-dir" in invoked.stderr and "Traceback" not in invoked.stderr
