"""Import times from the FC layer zip, with and without its byte code.

    python benchmarks/layer_imports.py [--zip build/layer.zip] [--runs 5]

The zip (`make layer`) is unzipped twice: as built, and with every `__pycache__`
removed (sources only, and nothing written back: FC's /opt is read-only). A clean
python3.10 virtual environment loads each handler with only the layer's `python/` on
its path, as FC does, in a fresh process per run; then the SDK modules a first cloud
call imports (`alibabacloud_*`, `Tea`, `darabonba`, `cryptography.x509`, `requests`).
The table gives the medians in milliseconds of CPU time (the process's, not the wall
clock: steadier on a shared machine, and what an import costs where nothing else runs)
and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.build_layer import find_python  # noqa: E402

FUNCTIONS = sorted(p.parent.name for p in (REPO / "functions").glob("*/index.py"))
SDK = (
    "alibabacloud_oss_v2",
    "alibabacloud_cdn20180510.client",
    "alibabacloud_cas20200407.client",
    "alibabacloud_fc20230330.client",
    "alibabacloud_tea_openapi.utils_models",
    "Tea.exceptions",
    "darabonba.runtime",
    "cryptography.x509",
    "requests",
)
PROBE = r"""
import importlib, importlib.util, json, sys, time
start = time.process_time()
spec = importlib.util.spec_from_file_location("index", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
handler = time.process_time() - start
start = time.process_time()
for name in sys.argv[2:]:
    importlib.import_module(name)
print(json.dumps({"handler": handler, "sdk": time.process_time() - start}))
"""


def measure(python: Path, layer: Path, function: str, runs: int, *, pyc: bool) -> dict[str, float]:
    """Median seconds of loading `function`'s handler, then the SDKs, from `layer`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(layer), PYTHONNOUSERSITE="1")
    if not pyc:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    index = REPO / "functions" / function / "index.py"
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        done = subprocess.run(
            [str(python), "-c", PROBE, str(index), *SDK],
            cwd=index.parent,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(json.loads(done.stdout))
    return {key: statistics.median(s[key] for s in samples) for key in ("handler", "sdk")}


def main() -> int:
    """Print the table; 2 when no python3.10 is found."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", type=Path, default=REPO / "build" / "layer.zip")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python310 = find_python(None)
    if python310 is None:
        print("no CPython 3.10 found (python3.10 on PATH, pyenv)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="layer-bench-") as tmp:
        work = Path(tmp)
        for name in ("pyc", "source"):
            with zipfile.ZipFile(args.zip) as archive:
                archive.extractall(work / name)
        for cache in (work / "source").rglob("__pycache__"):
            shutil.rmtree(cache)
        subprocess.run([str(python310), "-m", "venv", "--without-pip", work / "venv"], check=True)
        python = work / "venv" / "bin" / "python"
        print(
            f"{'function':<15} {'what':<8} {'.pyc cpu ms':>12} {'source cpu ms':>13} {'ratio':>6}"
        )
        for function in FUNCTIONS:
            fast = measure(python, work / "pyc" / "python", function, args.runs, pyc=True)
            slow = measure(python, work / "source" / "python", function, args.runs, pyc=False)
            for key in ("handler", "sdk"):
                print(
                    f"{function:<15} {key:<8} {fast[key] * 1000:12.0f} {slow[key] * 1000:13.0f} "
                    f"{slow[key] / fast[key]:6.1f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
