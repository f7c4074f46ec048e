"""Cold-start import cost of the deploy-cert FC handler.

    python benchmarks/cold_start.py [--runs 9]

Each measurement is a fresh `python -c` process (after one warm-up, so byte code is
cached as in a compiled layer):

- `python -c pass`: the interpreter alone;
- handler: load `functions/deploy_cert/index.py` by path, as FC does, with the layer
  (`shared/python`, `/opt/python` in FC) and the function folder on `sys.path`;
- SDKs: import what a deploy actually needs (`alibabacloud_oss_v2`,
  `alibabacloud_cdn20180510.client`, `alibabacloud_cas20200407.client`,
  `cryptography.x509`).

The table gives medians of the in-process import time (perf_counter around the import)
and of the whole process's wall time, with ratios. Loading the handler must not import
any Alibaba SDK (the adapters build clients lazily): the top-level packages the handler
import pulled in (a `sys.modules` diff) are listed, and an SDK among them is flagged.

First event per handler (`cold_start_handlers.py` beside this script): for each of the three
handlers, the median time from spawning a fresh process to its first event handled,
against a warm emulator, next to the floor (a fresh process doing only the bare SDK
imports and the same API calls and TLS handshakes, with the raw SDKs, no certpilot);
with compiled byte code and without any (a copy of the layer and of the SDK packages it
loads, no `__pycache__`, PYTHONDONTWRITEBYTECODE); the peak RSS of each, and the
`memorySize` it suggests.

    python benchmarks/cold_start.py [--runs 9] [--quick] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `benchmarks.*` beside this script
LAYER = REPO / "shared" / "python"
HANDLER = REPO / "functions" / "deploy_cert" / "index.py"
SDK_MODULES = (
    "alibabacloud_oss_v2",
    "alibabacloud_cdn20180510.client",
    "alibabacloud_cas20200407.client",
    "cryptography.x509",
)
# Packages the handler must leave to the first cloud call (lazy clients, lazy parsing).
HEAVY = ("alibabacloud", "Tea", "darabonba", "cryptography", "_cffi_backend", "requests")

# Each probe times only its import and reports what it added to sys.modules. `json` is
# imported after the measurement so that it is counted when the handler needs it.
_PROBE_HEAD = """
import sys, time, importlib, importlib.util
_before = set(sys.modules)
_t0 = time.perf_counter()
"""
_PROBE_TAIL = """
_t1 = time.perf_counter()
_new = sorted(set(sys.modules) - _before)
import json
print(json.dumps({"seconds": _t1 - _t0, "modules": _new}))
"""
HANDLER_PROBE = (
    _PROBE_HEAD
    + f"""
sys.path[:0] = [{str(LAYER)!r}, {str(HANDLER.parent)!r}]
_spec = importlib.util.spec_from_file_location("index", {str(HANDLER)!r})
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
assert callable(_module.handler)
"""
    + _PROBE_TAIL
)
SDK_PROBE = (
    _PROBE_HEAD
    + f"""
for _name in {SDK_MODULES!r}:
    importlib.import_module(_name)
"""
    + _PROBE_TAIL
)


@dataclass
class Sample:
    """One fresh process: its wall time, and the probe's own report (None for `pass`)."""

    wall: float
    report: dict[str, Any] | None


def clean_env() -> dict[str, str]:
    """The environment without proxies and without PYTHONPATH (the probe sets its path)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and k != "PYTHONPATH"
    }


def run_once(code: str) -> Sample:
    """Run `python -c code` in the function's folder; parse its JSON line if any.

    Raises:
        SystemExit: the probe failed.
    """
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=HANDLER.parent,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"probe failed ({done.returncode}):\n{done.stderr[-2000:]}")
    line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return Sample(wall, json.loads(line) if line else None)


def import_tree(code: str) -> list[tuple[str, int, str | None]]:
    """`(module, cumulative us, importer)` for every import of `code` (`-X importtime`)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=HANDLER.parent,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    entries: list[tuple[int, str, int]] = []
    for line in done.stderr.splitlines():
        # "import time: self [us] | cumulative | <2 spaces a level>package", children first
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2][1:]
        depth = (len(name) - len(name.lstrip(" "))) // 2
        entries.append((depth, name.strip(), int(parts[1])))
    tree: list[tuple[str, int, str | None]] = []
    stack: list[tuple[int, str]] = []
    for depth, name, cumulative in reversed(entries):  # parents first
        while stack and stack[-1][0] >= depth:
            stack.pop()
        tree.append((name, cumulative, stack[-1][1] if stack else None))
        stack.append((depth, name))
    return tree


def costliest_dependencies(count: int = 8) -> list[tuple[str, int]]:
    """What the handler import pulls in outside certpilot, by the cost of each subtree
    imported directly by the handler or a certpilot module (cumulative us)."""
    startup = {name for name, _, _ in import_tree(_PROBE_HEAD)}
    costs = [
        (name, cumulative)
        for name, cumulative, importer in import_tree(HANDLER_PROBE)
        if name not in startup
        and not name.startswith("certpilot")
        and (importer is None or importer.startswith("certpilot"))
    ]
    return sorted(costs, key=lambda c: -c[1])[:count]


def measure(code: str, runs: int) -> list[Sample]:
    """One warm-up (byte-code caches), then `runs` fresh processes."""
    run_once(code)
    return [run_once(code) for _ in range(runs)]


def top_level(modules: list[str]) -> list[str]:
    """The distinct top-level package names of `modules`."""
    return sorted({m.split(".")[0] for m in modules})


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, columns padded to line up in a terminal too."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per row (9)")
    parser.add_argument("--quick", action="store_true", help="3 runs a row (a smoke run)")
    parser.add_argument("--json-out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 3
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    baseline = measure("pass", args.runs)
    handler = measure(HANDLER_PROBE, args.runs)
    sdks = measure(SDK_PROBE, args.runs)

    def med_wall(samples: list[Sample]) -> float:
        return statistics.median(s.wall for s in samples)

    def med_import(samples: list[Sample]) -> float:
        return statistics.median(float((s.report or {})["seconds"]) for s in samples)

    base_wall = med_wall(baseline)
    handler_import = med_import(handler)
    rows = [["python -c pass", "-", f"{base_wall * 1000:.0f}", "1.0x", "-"]]
    for name, samples in (("deploy-cert handler", handler), ("SDKs a deploy needs", sdks)):
        imported = med_import(samples)
        rows.append(
            [
                name,
                f"{imported * 1000:.0f}",
                f"{med_wall(samples) * 1000:.0f}",
                f"{med_wall(samples) / base_wall:.1f}x",
                f"{imported / handler_import:.1f}x",
            ]
        )
    import_table = table(
        ["process", "import ms", "process wall ms", "wall vs pass", "import vs handler"], rows
    )
    print(
        f"cold_start: medians of {args.runs} fresh processes each (after one warm-up), "
        f"Python {sys.version.split()[0]}"
    )
    print()
    print(import_table)

    modules = (handler[-1].report or {}).get("modules", [])
    packages = top_level(modules)
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    third_party = [p for p in packages if p not in stdlib]
    layer = sorted(m for m in modules if m == "certpilot" or m.startswith("certpilot."))
    heavy = [p for p in packages if p.startswith(HEAVY)]
    print()
    print(f"handler import pulled in {len(modules)} modules, {len(packages)} top-level packages:")
    print(f"  not stdlib: {', '.join(third_party) or '-'}")
    print(f"  stdlib: {', '.join(p for p in packages if p in stdlib) or '-'}")
    print(f"  certpilot modules: {', '.join(m.split('.', 1)[-1] for m in layer) or '-'}")
    costly = ", ".join(f"{n} {us / 1000:.1f}" for n, us in costliest_dependencies())
    print(f"  costliest dependencies (ms with their own imports, -X importtime): {costly}")
    if heavy:
        verdict = f"REGRESSION: the handler import loads {', '.join(heavy)} (should be lazy)"
    else:
        verdict = "ok: no Alibaba SDK, Tea runtime or cryptography at handler import"
    print(verdict)

    from benchmarks.cold_start_handlers import measure_handlers

    first = measure_handlers(args.runs)
    print()
    print(first.markdown)
    if args.json_out is not None:
        args.json_out.write_text(
            json.dumps(
                {
                    "name": "cold_start",
                    "title": "Cold start per handler",
                    "settings": {"runs": args.runs, **first.settings},
                    "rows": first.rows,
                    "targets": first.targets,
                    "summary_markdown": "\n\n".join(
                        [
                            first.markdown,
                            "Handler import alone (deploy-cert), against `python -c pass` and "
                            "the SDK imports a deploy needs:",
                            import_table,
                            verdict,
                        ]
                    ),
                },
                indent=2,
            )
        )
    return 1 if heavy else 0


if __name__ == "__main__":
    sys.exit(main())
