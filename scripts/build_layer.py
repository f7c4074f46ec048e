"""`make layer`: the Function Compute layer as a zip, `build/layer.zip`.

    python scripts/build_layer.py [--out build/layer.zip] [--python PATH]
                                  [--wheelhouse DIR]

The zip holds `python/` (FC mounts a layer at `/opt`, so this is `/opt/python`, on the
runtime's `sys.path`):

- `python/certpilot`: the package from `shared/python/certpilot`;
- the runtime dependencies of `shared/requirements.txt` and theirs, as binary wheels for
  FC's platform and runtime (`manylinux2014_x86_64`, CPython 3.10: `s.yaml`'s
  `python3.10`), whatever the build machine's own Python. Nothing else: no CLI-only
  extra, no development tool. pip resolves them for a local python3.10 (`--python`), so
  version markers are 3.10's; OS markers are the build machine's: build on Linux;
- byte code for CPython 3.10 beside every module (`__pycache__/*.cpython-310.pyc`),
  compiled by a python3.10 interpreter, as unchecked-hash pycs (PEP 552): the layer is
  read-only and never changes under its byte code, so the runtime loads the pyc without
  looking at the source's timestamp, which a zip cannot carry faithfully anyway.

Left out: test suites (`tests/`, `test/`, pycryptodome's `Crypto/SelfTest`), type stubs
(`*.pyi`, read by type checkers only), Cython sources (`*.pyx`, `*.pxd`: compiled in),
console scripts (`bin/`: they name the build machine's interpreter), byte code of any
other Python and every other cache, pip's `direct_url.json` and `REQUESTED` (the build
machine's paths). Kept: sources (tracebacks show lines) and `*.dist-info` (licences,
and `importlib.metadata` reads it).

Reproducible: entries in sorted order, one fixed timestamp and mode, byte code that
records no time and the path it will have in FC (`/opt/python/...`).

The wheels are downloaded once per requirements file content into the wheelhouse
(default `build/wheelhouse`), then installed from it offline.

Exit codes: 0 built (prints the zip's path, size and file count), 1 a step failed,
2 no python3.10 (name one with `--python`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "shared" / "requirements.txt"
PACKAGE = REPO / "shared" / "python" / "certpilot"
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = (3, 10)
PYC_TAG = "cpython-310"
MOUNT = "/opt/python"  # where FC mounts the layer's python/ folder
# 1980-01-01 00:00:00, the earliest time a zip entry can carry: every entry gets it.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Folders no runtime imports: test suites.
DROP_DIRS = frozenset({"tests", "test", "__pycache__", "SelfTest"})
DROP_SUFFIXES = (".pyi", ".pyx", ".pxd", ".pyc", ".pyo")
# pip's notes on how it installed a wheel: the wheel's path on the build machine.
DROP_FILES = frozenset({"direct_url.json", "REQUESTED"})


class BuildError(Exception):
    """A build step failed (the message says which)."""


@dataclass(frozen=True)
class Layer:
    """A built layer zip: where, how big, how many files."""

    path: Path
    size: int
    files: int


def target_flags() -> list[str]:
    """pip's flags for FC's platform and runtime: binary wheels only."""
    version = "".join(str(n) for n in PYTHON_VERSION)
    return [
        "--only-binary=:all:",
        "--platform",
        PLATFORM,
        "--python-version",
        version,
        "--implementation",
        "cp",
    ]


def find_python(explicit: str | None) -> Path | None:
    """A CPython 3.10 interpreter: `explicit`, else `python3.10` on PATH, else one of
    pyenv's. Each candidate is run to check its version (a pyenv shim may be on PATH
    without the version behind it)."""
    candidates: list[str] = []
    if explicit:
        candidates.append(explicit)
    else:
        on_path = shutil.which("python3.10")
        if on_path:
            candidates.append(on_path)
        pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
        found = (pyenv / "versions").glob("3.10*/bin/python3.10")
        candidates += sorted((str(p) for p in found), reverse=True)
        candidates += ["/usr/bin/python3.10", "/usr/local/bin/python3.10"]
    want = ".".join(str(n) for n in PYTHON_VERSION)
    check = "import sys; print(sys.implementation.name, '%d.%d' % sys.version_info[:2])"
    for candidate in candidates:
        try:
            done = subprocess.run(
                [candidate, "-c", check], capture_output=True, text=True, timeout=30, check=False
            )
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.split() == ["cpython", want]:
            return Path(candidate)
    return None


def _pip(python: Path | None, args: list[str], *, isolated: bool) -> None:
    # `--python`: pip resolves for that interpreter, whose version the requirement
    # markers (`async-timeout; python_version < "3.11"`) are evaluated against; pip's
    # `--python-version` only selects wheel tags.
    argv = [sys.executable, "-m", "pip", *(["--python", str(python)] if python else [])]
    argv += [*(["--isolated"] if isolated else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"pip {args[0]} failed:\n{done.stderr.strip()}")


def wheelhouse(python: Path, root: Path, requirements: Path) -> Path:
    """The wheels of `requirements` and their dependencies for FC's platform, in a folder
    of `root` named after the requirements' content: downloaded the first time only.

    Raises:
        BuildError: pip could not download them.
    """
    # The key names how the wheels were chosen: the requirements, the platform, and the
    # resolution by a python3.10 (markers), which earlier wheelhouses lacked.
    key = requirements.read_bytes() + f"{PLATFORM} markers-by-python3.10".encode()
    digest = hashlib.sha256(key).hexdigest()[:16]
    version = "".join(str(n) for n in PYTHON_VERSION)
    home = root / f"cp{version}-{PLATFORM}-{digest}"
    if home.is_dir():
        return home
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        _pip(
            python,
            ["download", "--quiet", *target_flags(), "-r", str(requirements), "-d", str(staging)],
            isolated=False,  # the user's index, proxy and certificate settings apply
        )
        staging.rename(home)  # complete or absent: a half-filled one is never used
    except OSError:  # another build finished first
        pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return home


def install(wheels: Path, site: Path) -> None:
    """Install every wheel of `wheels` (the resolved set: `wheelhouse`) into `site`,
    offline, without byte code, plus certpilot.

    Raises:
        BuildError: pip failed.
    """
    _pip(
        None,  # nothing to resolve: the wheelhouse is the resolution
        [
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--no-compile",  # pip would compile for its own Python, not FC's
            *target_flags(),
            "--target",
            str(site),
            *sorted(str(w) for w in wheels.glob("*.whl")),
        ],
        isolated=True,  # only the wheelhouse: no find-links or constraints of this machine
    )
    shutil.copytree(PACKAGE, site / "certpilot", ignore=shutil.ignore_patterns("__pycache__"))


def prune(site: Path) -> None:
    """Remove what no runtime needs: test suites, stubs, console scripts, byte code."""
    shutil.rmtree(site / "bin", ignore_errors=True)
    for folder, dirs, files in os.walk(site, topdown=True):
        keep = []
        for name in dirs:
            if name in DROP_DIRS and not name.endswith(".dist-info"):
                shutil.rmtree(Path(folder) / name)
            else:
                keep.append(name)
        dirs[:] = keep
        for name in files:
            if name.endswith(DROP_SUFFIXES) or name in DROP_FILES:
                (Path(folder) / name).unlink()


def compile_pyc(python: Path, site: Path) -> None:
    """Byte-compile every module of `site` with `python` (3.10), as it will be at
    `/opt/python`.

    Raises:
        BuildError: a module did not compile.
    """
    done = subprocess.run(
        [
            str(python),
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(site),
            "-p",
            MOUNT,
            str(site),
        ],
        capture_output=True,
        text=True,
        check=False,
        # Set constants (`x in {"a", "b"}`) are marshalled in hash order: a fixed seed
        # makes the same sources the same byte code.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if done.returncode != 0:
        raise BuildError(f"compileall failed:\n{done.stdout.strip()}\n{done.stderr.strip()}")


def write_zip(stage: Path, out: Path) -> Layer:
    """Zip every file under `stage` (paths relative to it), sorted, with one timestamp
    and mode: the same files make the same bytes."""
    paths = sorted(
        (p for p in stage.rglob("*") if p.is_file()),
        key=lambda p: PurePosixPath(p.relative_to(stage)).as_posix(),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in paths:
            info = zipfile.ZipInfo(PurePosixPath(path.relative_to(stage)).as_posix(), ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            archive.writestr(info, path.read_bytes())
    partial.replace(out)
    return Layer(out, out.stat().st_size, len(paths))


def build(out: Path, wheels_root: Path, python: Path) -> Layer:
    """Build the layer zip at `out` for `python` (a CPython 3.10), which resolves the
    requirements' markers and compiles the byte code.

    Raises:
        BuildError: a step failed.
    """
    wheels = wheelhouse(python, wheels_root, REQUIREMENTS)
    with tempfile.TemporaryDirectory(prefix="layer-") as tmp:
        stage = Path(tmp)
        site = stage / "python"
        install(wheels, site)
        prune(site)
        compile_pyc(python, site)
        return write_zip(stage, out)


def main(argv: list[str] | None = None) -> int:
    """Build the layer; print its path, size and file count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "layer.zip")
    parser.add_argument("--wheelhouse", type=Path, default=REPO / "build" / "wheelhouse")
    parser.add_argument("--python", help="the CPython 3.10 to resolve and compile for")
    args = parser.parse_args(argv)
    python = find_python(args.python)
    if python is None:
        print(
            "no CPython 3.10 found (python3.10 on PATH, pyenv): FC runs python3.10; the "
            "requirements' markers are resolved and the byte code compiled by one. "
            "Install one or pass --python PATH",
            file=sys.stderr,
        )
        return 2
    try:
        layer = build(args.out.resolve(), args.wheelhouse.resolve(), python)
    except BuildError as err:
        print(err, file=sys.stderr)
        return 1
    try:
        shown = layer.path.relative_to(Path.cwd())
    except ValueError:
        shown = layer.path
    print(f"{shown}: {layer.size / 1_000_000:.1f} MB ({layer.size} bytes), {layer.files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
