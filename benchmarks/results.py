"""Run every benchmark and write `benchmarks/RESULTS.md` (`make bench`, `make bench-quick`).

    python benchmarks/results.py [--quick] [--output PATH] [--only NAME,...]

Each benchmark script is run in its own process with `--json-out FILE` and writes
`{"name", "title"?, "settings", "rows", "summary_markdown", "targets"?}` there
(`targets`: `[{"what", "target", "measured", "met", "gap"?}]`). A script that writes no
JSON (it predates the convention) is shown by its printed output; one that is not in
the checkout is listed as not run. RESULTS.md gets the date, the machine (CPU model,
cores, RAM, load, Python, OS), each benchmark's settings and tables, and one table of
every target against what was measured, with the gap where one is missed.

`--quick` runs every script at tiny sizes (a smoke run: the numbers mean nothing) and
writes `build/RESULTS-quick.md` unless `--output` says otherwise. Each outcome is also
kept in `build/bench/` (`build/bench-quick/`): `--only NAME,...` runs those scripts and
takes the others' last outcomes from there, each labelled with the time it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HERE = REPO / "benchmarks"


@dataclass(frozen=True)
class Script:
    """One benchmark script and its arguments, full and quick."""

    name: str
    path: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ("--quick",)
    what: str = ""
    needs: str = ""  # a file (from the checkout) the script needs, e.g. the layer zip


SCRIPTS = (
    Script(
        "emulator_throughput",
        "emulator_throughput.py",
        what="the emulator: start time and signed requests per second",
    ),
    Script("cold_start", "cold_start.py", what="cold start per handler against the floor"),
    Script(
        "rollout",
        "rollout.py",
        what="deploy-cert rollout of 1,000 domains against the bound and a sequential baseline",
    ),
    Script("enforce_scale", "enforce_scale.py", what="enforce-https at scale against its bound"),
    Script("sweep_scale", "sweep_scale.py", what="check-expiry over 10,000 domains"),
    Script(
        "layer_imports",
        "layer_imports.py",
        quick=("--runs", "1"),
        what="import times from the FC layer zip, with and without byte code",
        needs="build/layer.zip",
    ),
    Script(
        "deploy_scale",
        "deploy_scale.py",
        quick=("--sizes", "20", "--propagation-delay", "0.2", "--verify-deadline", "15"),
        what="plan and deploy-cert wall time per account size",
    ),
)


@dataclass
class Outcome:
    """What running one script gave."""

    script: Script
    ran: bool
    exit_code: int | None = None
    seconds: float = 0.0
    data: dict[str, Any] | None = None
    stdout: str = ""
    stderr: str = ""
    notes: list[str] = field(default_factory=list)
    when: str = ""  # when it ran (UTC), shown for an outcome kept from an earlier run
    loads: str = ""  # the load average when it started and when it ended

    def save(self, folder: Path) -> None:
        """Keep this outcome for a later `--only` run."""
        folder.mkdir(parents=True, exist_ok=True)
        kept = {k: v for k, v in vars(self).items() if k != "script"}
        (folder / f"{self.script.name}.json").write_text(json.dumps(kept))

    @classmethod
    def load(cls, script: Script, folder: Path) -> Outcome | None:
        """The outcome kept by an earlier run, or None."""
        try:
            kept = json.loads((folder / f"{script.name}.json").read_text())
        except (OSError, ValueError):
            return None
        outcome = cls(script, **kept)
        outcome.notes.append(f"kept from the run of {outcome.when}")
        return outcome


def clean_env() -> dict[str, str]:
    """The environment without proxies (the SDKs honour them, the emulator is local)."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def run_script(script: Script, quick: bool, workdir: Path, timeout: float) -> Outcome:
    """Run `script` with `--json-out`; its JSON, or its printed output when it wrote none."""
    path = HERE / script.path
    if not path.is_file():
        return Outcome(script, ran=False, notes=[f"not run: benchmarks/{script.path} is absent"])
    if script.needs and not (REPO / script.needs).exists():
        return Outcome(script, ran=False, notes=[f"not run: {script.needs} is absent"])
    out = workdir / f"{script.name}.json"
    argv = [sys.executable, str(path), *(script.quick if quick else script.full)]
    argv += ["--json-out", str(out)]
    print(f"results: running {' '.join(argv[1:])}", flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            argv,
            cwd=REPO,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        return Outcome(
            script,
            ran=True,
            seconds=time.perf_counter() - started,
            stdout=_text(expired.stdout),
            notes=[f"killed after {timeout:.0f} s"],
        )
    outcome = Outcome(
        script,
        ran=True,
        exit_code=done.returncode,
        seconds=time.perf_counter() - started,
        stdout=done.stdout,
        stderr=done.stderr,
    )
    if "unrecognized arguments: --json-out" in done.stderr:
        # Written before the convention: run it again as it is and keep what it prints.
        outcome.notes.append("the script takes no --json-out: its printed output")
        started = time.perf_counter()
        again = subprocess.run(
            argv[:-2],
            cwd=REPO,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        outcome.exit_code, outcome.stdout, outcome.stderr = (
            again.returncode,
            again.stdout,
            again.stderr,
        )
        outcome.seconds = time.perf_counter() - started
    if out.is_file():
        try:
            outcome.data = json.loads(out.read_text())
        except ValueError:
            outcome.notes.append("its --json-out file is not JSON")
    print(f"results: {script.name} exit {outcome.exit_code} in {outcome.seconds:.0f} s", flush=True)
    return outcome


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


# -- the machine ------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """CPU model, cores, RAM, load, Python and OS of this machine."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": ram,
        "Python": platform.python_version(),
        "OS": platform.platform(),
    }


def load() -> str:
    """The 1-, 5- and 15-minute load averages."""
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


# -- the document -----------------------------------------------------------------------


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def section(outcome: Outcome) -> str:
    """One benchmark's part of RESULTS.md."""
    script = outcome.script
    data = outcome.data or {}
    title = data.get("title") or script.what or script.name
    lines = [f"## {title}", "", f"`benchmarks/{script.path}`"]
    if not outcome.ran:
        return "\n".join([*lines, "", f"**Not run**: {'; '.join(outcome.notes)}.", ""])
    status = f"exit {outcome.exit_code}" if outcome.exit_code is not None else "no exit status"
    ran = f", ran {outcome.when}" if outcome.when else ""
    lines[-1] += f" ({status}, {outcome.seconds:.0f} s{ran})"
    lines += [f"Note: {n}." for n in outcome.notes]
    if outcome.loads:
        lines.append(f"Load average (1 / 5 / 15 min): {outcome.loads}.")
    settings = data.get("settings")
    if settings:
        lines += ["", "Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()) + "."]
    if data.get("summary_markdown"):
        lines += ["", str(data["summary_markdown"]).rstrip()]
    elif data.get("rows"):
        rows = data["rows"]
        headers = list(rows[0])
        lines += ["", md_table(headers, [[r.get(h, "") for h in headers] for r in rows])]
    else:
        printed = outcome.stdout.strip() or outcome.stderr.strip()[-3000:]
        lines += ["", "```", printed or "(no output)", "```"]
    if outcome.data is None and outcome.exit_code not in (0, None) and outcome.stderr.strip():
        lines += ["", "stderr (tail):", "", "```", outcome.stderr.strip()[-1500:], "```"]
    return "\n".join([*lines, ""])


def targets_table(outcomes: list[Outcome]) -> str:
    """Every target of every benchmark against what was measured."""
    rows = []
    for outcome in outcomes:
        for t in (outcome.data or {}).get("targets") or []:
            met = t.get("met")
            rows.append(
                [
                    outcome.script.name,
                    t.get("what", ""),
                    t.get("target", ""),
                    t.get("measured", ""),
                    "yes" if met else ("**missed**" if met is False else "-"),
                    t.get("gap", "") if met is False else "",
                ]
            )
        if not outcome.ran:
            rows.append([outcome.script.name, "-", "-", "not run", "-", ""])
        elif outcome.data is None or not (outcome.data.get("targets") or []):
            rows.append([outcome.script.name, "-", "-", "see its section", "-", ""])
    return md_table(["benchmark", "what", "target", "measured", "met", "gap"], rows)


def document(outcomes: list[Outcome], quick: bool, started: datetime, loads: list[str]) -> str:
    """RESULTS.md."""
    info = machine()
    head = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`benchmarks/results.py`); do not edit by hand."
        + (" **Quick run: tiny sizes, the numbers mean nothing.**" if quick else ""),
        "",
        f"- Generated: {started.strftime('%Y-%m-%d %H:%M UTC')} (each section says when "
        "its benchmark ran)",
        f"- Machine: {info['CPU']}, {info['cores']} cores, {info['RAM']} RAM; "
        f"{info['OS']}; Python {info['Python']}",
        f"- Load average (1 / 5 / 15 min) when generated {loads[0]}; each section gives "
        "its own. The machine is shared (2 cores, other work running beside the "
        "benchmarks): wall times, and ratios to bounds measured in the same run, are "
        "noisy.",
        "",
        "## Targets",
        "",
        targets_table(outcomes),
        "",
    ]
    return "\n".join(head + [section(o) for o in outcomes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--only", default="", help="comma-separated script names")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds a script may take (3600)"
    )
    args = parser.parse_args(argv)
    output = args.output or (
        REPO / "build" / "RESULTS-quick.md" if args.quick else HERE / "RESULTS.md"
    )
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = only - {s.name for s in SCRIPTS}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started = datetime.now(timezone.utc)
    loads = [load()]
    outcomes = []
    kept = REPO / "build" / ("bench-quick" if args.quick else "bench")
    with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
        for script in SCRIPTS:
            if only and script.name not in only:
                earlier = Outcome.load(script, kept)
                outcomes.append(
                    earlier
                    or Outcome(script, ran=False, notes=["not run in this generation (--only)"])
                )
                continue
            when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            before = load()
            outcome = run_script(script, args.quick, Path(tmp), args.timeout)
            outcome.when = when
            outcome.loads = f"{before} at its start, {load()} at its end"
            if outcome.ran:
                outcome.save(kept)
            outcomes.append(outcome)
    loads.append(load())
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document(outcomes, args.quick, started, loads))
    print(f"results: wrote {output}")
    failed = [o.script.name for o in outcomes if o.ran and o.exit_code != 0]
    if failed:
        print(f"results: non-zero exit: {', '.join(failed)} (see {output})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
