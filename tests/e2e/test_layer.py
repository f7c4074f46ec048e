"""The FC layer zip (`make layer`, `scripts/build_layer.py`) as Function Compute runs it.

End to end and slow-ish (one layer build, ~20 s with the wheels at hand): the zip is
built into a temporary folder, unzipped, and every handler is loaded by a CPython 3.10
(FC's `python3.10` runtime) in a new virtual environment that has nothing installed,
with only the layer's `python/` folder on its path, as FC mounts it (`/opt/python`).
The wheels come from a wheelhouse in the test environment's prefix (`.venv`),
downloaded from the package registry the first time and reused while
`shared/requirements.txt` stays the same.

Without a python3.10 on the machine (PATH, pyenv) the tests skip, saying so.
"""

from __future__ import annotations

import ast
import fcntl
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scripts.build_layer import PYC_TAG, ZIP_TIME, find_python

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "shared" / "python" / "certpilot"
FUNCTIONS = sorted(p.parent.name for p in (REPO / "functions").glob("*/index.py"))
DEV_TOOLS = {"pytest", "pytest-xdist", "hypothesis", "ruff", "mypy", "import-linter", "pip"}
# What FC's python3.10 runtime evaluates requirement markers against (the rest of the
# environment is the test process's).
FC_MARKERS = {
    "python_version": "3.10",
    "python_full_version": "3.10.13",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}

# Run by the layer's python3.10, in the function's folder (FC's /code): loads every
# handler by path, times it, hands it a malformed event; then runs every import statement
# of the runtime rooms (the lazy SDK imports of the adapters included); then reports
# where every loaded module came from.
PROBE = r"""
import importlib.util, json, sys, sysconfig, time
from types import SimpleNamespace

handlers, statements = json.loads(sys.argv[1]), json.loads(sys.argv[2])
context = SimpleNamespace(
    request_id="layer-probe", credentials=None, region="cn-hangzhou",
    function=SimpleNamespace(name="probe", handler="index.handler", timeout=60),
)
loaded = {}
for name, path in handlers.items():
    start = time.perf_counter()
    spec = importlib.util.spec_from_file_location(f"index_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seconds = time.perf_counter() - start
    answer = json.loads(module.handler(b"{not json", context))
    loaded[name] = {"seconds": seconds, "status": answer.get("status")}
start = time.perf_counter()
for statement in statements:
    exec(statement, {})
lazy_seconds = time.perf_counter() - start
stdlib = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")}
origins = {
    name: getattr(module, "__file__", None)
    for name, module in sorted(sys.modules.items())
    if getattr(module, "__file__", None)
}
import certpilot, cryptography
print(json.dumps({
    "handlers": loaded, "lazy_seconds": lazy_seconds, "origins": origins,
    "stdlib": sorted(stdlib), "certpilot": certpilot.__file__,
    "cryptography": cryptography.__file__, "version": list(sys.version_info[:2]),
    "magic": importlib.util.MAGIC_NUMBER.hex(), "path": sys.path,
}))
"""

# Run by the layer's python3.10: check-expiry's handler, report-only, on the timer event.
SWEEP = r"""
import importlib.util, json, sys
from types import SimpleNamespace

spec = importlib.util.spec_from_file_location("index", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
context = SimpleNamespace(
    request_id="layer-sweep", credentials=None, region="cn-hangzhou",
    function=SimpleNamespace(name="check-expiry", handler="index.handler", timeout=120),
)
event = {"triggerTime": "2026-12-06T02:00:00Z", "triggerName": "daily",
         "payload": json.dumps({"reportOnly": True})}
print(module.handler(json.dumps(event).encode(), context))
"""


@dataclass(frozen=True)
class Built:
    """A layer built for the tests: the zip, what the build printed, where it is
    unzipped, and the python3.10 of a clean virtual environment."""

    zip: Path
    stdout: str
    opt: Path
    python: Path


def run(argv: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def bare_env(**extra: str) -> dict[str, str]:
    """No PYTHON* variable and no certpilot setting of the test process: only `extra`."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CERTPILOT_"))}
    keep = {k: v for k, v in keep.items() if not k.startswith("ALIBABA_CLOUD_")}
    return {**keep, **extra}


def build_once(python310: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The layer zip of this test run and what the build printed: built by the first
    xdist worker that asks, under a lock, and shared with the others (a run's workers
    share the parent of their temporary folders)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out, printed = shared / "layer-build" / "layer.zip", shared / "layer-build" / "stdout"
    with open(shared / "layer-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.exists():
            out.parent.mkdir(exist_ok=True)
            done = run(
                [
                    sys.executable,
                    REPO / "scripts" / "build_layer.py",
                    "--out",
                    out,
                    "--wheelhouse",
                    Path(sys.prefix) / "layer-wheelhouse",
                    "--python",
                    python310,
                ],
                out.parent,
                os.environ.copy(),
            )
            assert done.returncode == 0, done.stderr
            printed.write_text(done.stdout, encoding="utf-8")
    return out, printed.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    python310 = find_python(None)
    if python310 is None:
        pytest.skip(
            "no CPython 3.10 on this machine (python3.10 on PATH, pyenv): FC's runtime, "
            "the one the layer's byte code is compiled for and imported by"
        )
    out, stdout = build_once(python310, tmp_path_factory)
    work = tmp_path_factory.mktemp("layer")
    opt = work / "opt"
    with zipfile.ZipFile(out) as archive:
        archive.extractall(opt)
    venv = work / "venv"
    made = run([python310, "-m", "venv", "--without-pip", venv], work, bare_env())
    assert made.returncode == 0, made.stderr
    return Built(out, stdout, opt, venv / "bin" / "python")


def layer_env(built: Built, layer: Path, **extra: str) -> dict[str, str]:
    """FC's view: only the layer on the path (PYTHONPATH=/opt/python)."""
    return bare_env(PYTHONPATH=str(layer), PYTHONNOUSERSITE="1", **extra)


def runtime_imports() -> list[str]:
    """Every absolute import statement of certpilot's runtime rooms (not the CLI), the
    ones inside functions included: what the adapters import lazily, at first call."""
    statements: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                statements.update(f"import {alias.name}" for alias in node.names)
            elif (
                isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__"
            ):
                statements.update(f"from {node.module} import {a.name}" for a in node.names)
    return sorted(statements)


def probe(built: Built, layer: Path, **extra: str) -> dict[str, Any]:
    handlers = {name: str(REPO / "functions" / name / "index.py") for name in FUNCTIONS}
    done = run(
        [built.python, "-c", PROBE, json.dumps(handlers), json.dumps(runtime_imports())],
        REPO / "functions",
        layer_env(built, layer, **extra),
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_make_layer_prints_the_zips_size_and_file_count(built: Built) -> None:
    # given the layer the build script made
    with zipfile.ZipFile(built.zip) as archive:
        count = len(archive.namelist())
    # then what it printed is the zip's size in bytes and its number of files
    numbers = re.search(r"\((\d+) bytes\), (\d+) files", built.stdout)
    assert numbers is not None, built.stdout
    assert (int(numbers[1]), int(numbers[2])) == (built.zip.stat().st_size, count)


def test_the_zip_holds_the_runtime_only_compiled_for_python310(built: Built) -> None:
    # given the entries of the zip
    with zipfile.ZipFile(built.zip) as archive:
        infos = archive.infolist()
        pycs = {i.filename: archive.read(i)[:16] for i in infos if i.filename.endswith(".pyc")}
    names = [i.filename for i in infos]
    paths = [PurePosixPath(n) for n in names]
    # then everything is under python/ (FC's /opt/python), in sorted order, one timestamp
    assert {p.parts[0] for p in paths} == {"python"}
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {ZIP_TIME}
    # and there is no test suite, stub, console script, Cython source or handler
    assert not [p for p in paths if {"tests", "test", "SelfTest", "bin"} & set(p.parts)]
    assert not [p for p in paths if p.suffix in (".pyi", ".pyx", ".pxd", ".pyo")]
    assert not [p for p in paths if p.name == "index.py" or "functions" in p.parts]
    # and no note of the build machine: pip's install records, its paths in the byte code
    assert not [p for p in paths if p.name in ("direct_url.json", "REQUESTED")]
    with zipfile.ZipFile(built.zip) as archive:
        code = archive.read(f"python/certpilot/__pycache__/handler.{PYC_TAG}.pyc")
    assert b"/opt/python/certpilot/handler.py" in code
    assert str(built.zip.parent).encode() not in code
    # and byte code only for CPython 3.10, in __pycache__, unchecked-hash (PEP 552 flags 1)
    for name, header in pycs.items():
        path = PurePosixPath(name)
        assert path.parent.name == "__pycache__" and path.suffixes[-2:] == [f".{PYC_TAG}", ".pyc"]
        assert int.from_bytes(header[4:8], "little") == 1, name
    # and every module has its byte code
    modules = [p for p in paths if p.suffix == ".py"]
    compiled = {PurePosixPath(n) for n in pycs}
    missing = [
        m for m in modules if m.parent / "__pycache__" / f"{m.stem}.{PYC_TAG}.pyc" not in compiled
    ]
    assert modules and not missing, missing[:5]
    # and certpilot is the checkout's, module for module
    layer_modules = {
        p.relative_to("python/certpilot"): n
        for p, n in zip(paths, names, strict=True)
        if p.parts[:2] == ("python", "certpilot") and p.suffix == ".py"
    }
    source = {p.relative_to(PACKAGE): p for p in PACKAGE.rglob("*.py")}
    assert set(layer_modules) == {PurePosixPath(p.as_posix()) for p in source}


def test_the_zip_holds_the_pins_and_what_they_need_nothing_else(built: Built) -> None:
    # given the distributions in the zip and what each requires (on FC's python3.10)
    requires: dict[str, list[Requirement]] = {}
    versions: dict[str, str] = {}
    with zipfile.ZipFile(built.zip) as archive:
        for name in archive.namelist():
            if name.endswith(".dist-info/METADATA"):
                meta = archive.read(name).decode("utf-8")
                dist = canonicalize_name(re.findall(r"^Name: (.+)$", meta, re.MULTILINE)[0])
                versions[dist] = re.findall(r"^Version: (.+)$", meta, re.MULTILINE)[0].strip()
                requires[dist] = [
                    Requirement(r) for r in re.findall(r"^Requires-Dist: (.+)$", meta, re.M)
                ]
    pins = [
        Requirement(line.split("#", 1)[0])
        for line in (REPO / "shared" / "requirements.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    # then every pin is there at its version
    for pin in pins:
        version = versions.get(canonicalize_name(pin.name))
        assert version is not None and version in pin.specifier, pin
    # and every other distribution is needed by a pin (no development tool, no extra)
    needed: set[str] = set()
    todo = [canonicalize_name(pin.name) for pin in pins]
    while todo:
        dist = todo.pop()
        if dist in needed:
            continue
        needed.add(dist)
        todo += [
            canonicalize_name(r.name)
            for r in requires.get(dist, [])
            if r.marker is None or r.marker.evaluate({**FC_MARKERS, "extra": ""})
        ]
    assert set(versions) == needed
    assert not {canonicalize_name(tool) for tool in DEV_TOOLS} & set(versions)


def test_every_handler_loads_and_answers_from_the_layer_alone(built: Built) -> None:
    # given a clean python3.10 environment: without the layer, nothing is importable
    bare = run(
        [built.python, "-c", "import certpilot"], REPO / "functions", bare_env(PYTHONNOUSERSITE="1")
    )
    assert bare.returncode == 1 and "ModuleNotFoundError" in bare.stderr
    layer = built.opt / "python"
    before = files_under(built.opt)
    # when each handler is loaded with only the layer on the path, handed a malformed
    # event, and every runtime import (the adapters' lazy SDK imports) is run
    result = probe(built, layer)
    # then it ran on 3.10, each handler answered with a rejection
    assert result["version"] == [3, 10]
    assert {name: h["status"] for name, h in result["handlers"].items()} == dict.fromkeys(
        FUNCTIONS, "rejected"
    )
    # and certpilot and every other module came from the layer, the handlers' folders
    # or the standard library: nothing from the test environment or the checkout
    assert Path(result["certpilot"]).is_relative_to(layer)
    assert Path(result["cryptography"]).is_relative_to(layer)
    allowed = [layer, REPO / "functions", *map(Path, result["stdlib"])]
    strays = {
        name: origin
        for name, origin in result["origins"].items()
        if not any(Path(origin).is_relative_to(root) for root in allowed)
    }
    assert strays == {}
    # and the shipped byte code was used as it is: nothing recompiled, nothing written
    assert files_under(built.opt) == before


def test_check_expiry_sweeps_the_emulator_from_the_layer(built: Built, cloud: Any) -> None:
    # given the demo estate in the emulator and check-expiry's environment pointing at it
    cloud.load_estate(json.loads((REPO / "emulator" / "estates" / "demo.json").read_text()))
    env = layer_env(
        built, built.opt / "python", **cloud.certpilot_env(), CERTPILOT_LOG_LEVEL="WARNING"
    )
    # when FC's timer fires the handler, run by python3.10 from the layer alone
    done = run(
        [built.python, "-c", SWEEP, REPO / "functions" / "check_expiry" / "index.py"],
        REPO / "functions" / "check_expiry",
        env,
    )
    # then the SDKs (OSS, CDN, CAS) listed the account over HTTP and the edge was probed
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] != "error", summary
    called = set(cloud.stats()["actions"])
    assert {a.split(":", 1)[0] for a in called} >= {"oss", "cdn", "cas"}
    findings = {row["domain"]: {f["code"] for f in row["findings"]} for row in summary["rows"]}
    assert "CERT_EXPIRED" in findings["old.example.com"]
    assert "UNTRUSTED_ROOT" in findings["internal.example.com"]
