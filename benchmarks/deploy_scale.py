"""certpilot at scale: plan and deploy-cert wall time, API calls and memory per account size.

    python benchmarks/deploy_scale.py [--sizes 100,1000,2000] [--budget 240]
        [--propagation-delay 60] [--verify-deadline 120] [--concurrency N]

The defaults are realistic: CDN takes about a minute to bring a change to its edge
(the emulator's edge then serves old and new side by side, node by node, and a domain
answers ServiceBusy until the change has reached every node), and certpilot runs with
its own verification deadline. `--propagation-delay 0.2 --verify-deadline 15 --budget
90` measures certpilot's own overhead instead.

For each size N one emulator (at the documented QPS limits: `--qps-scale 1`) is reset
and loaded with an estate built here: N domains under example.com, half OSS custom
domains bound to 8 buckets in cn-hangzhou and cn-shanghai, half CDN domains with
those buckets as OSS origins. Nine in ten carry an expiring `*.example.com` (20 days
left, CA One), one in ten has no certificate. CAS then issues a new `*.example.com`
and certpilot runs as a user would, in its own process:

- `python -m certpilot plan --cert-id ID` (dry run: inventory + catalog + plan);
- `python -m certpilot invoke deploy-cert --event FILE` with `{"certId": ID}`.

Each run reports wall time, peak RSS (`os.wait4` of that process), the emulator's
per-action call and throttle counts (`/_emulator/stats` deltas), and for the deploy
the outcome counts and a lower bound from the documented QPS: every domain needs one
certificate write, write actions of different services proceed in parallel, and the
last write still has to reach the edge, so
`bound = max(N_cdn / 30 (SetCdnDomainSSLCertificate), N_oss / 1000 (PutCname)) + delay`.

A run that exceeds the budget is killed; a size whose predicted time (linear in N from
the previous size) exceeds the budget is skipped, with a note, rather than left to hang.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAYER = REPO / "shared" / "python"
DEFAULT_SIZES = (100, 1000, 2000)
BUCKETS = (
    ("bench-hz-0", "cn-hangzhou"),
    ("bench-hz-1", "cn-hangzhou"),
    ("bench-hz-2", "cn-hangzhou"),
    ("bench-hz-3", "cn-hangzhou"),
    ("bench-sh-0", "cn-shanghai"),
    ("bench-sh-1", "cn-shanghai"),
    ("bench-sh-2", "cn-shanghai"),
    ("bench-sh-3", "cn-shanghai"),
)
OLD_CERT = "wildcard-example-com-expiring"
NO_CERT_EVERY = 10  # one domain in ten has no certificate yet (OSS Force=true path)

# Documented per-account QPS (shared/reference/alibaba-cloud.md). OSS documents none
# per operation; the emulator enforces a chosen 1000 (emulator/README.md, "OSS").
DOCUMENTED_QPS: dict[str, float] = {
    "cdn:DescribeUserDomains": 100,
    "cdn:DescribeCdnHttpsDomainList": 100,
    "cdn:DescribeDomainCertificateInfo": 100,
    "cdn:SetCdnDomainSSLCertificate": 30,
    "cdn:DescribeCdnDomainDetail": 30,
    "cas:ListUserCertificateOrder": 10,
    "cas:GetUserCertificateDetail": 100,
}
OSS_QPS = 1000.0
CDN_WRITE = "cdn:SetCdnDomainSSLCertificate"
OSS_WRITE = "oss:PutCname"


def qps_of(action: str) -> tuple[float, bool]:
    """(QPS, documented?) of an emulator action key like `cdn:DescribeUserDomains`."""
    if action in DOCUMENTED_QPS:
        return DOCUMENTED_QPS[action], True
    return (OSS_QPS, False) if action.startswith("oss:") else (float("nan"), False)


# -- the emulator ---------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """This process's environment without proxy variables (the Tea SDKs honour them)."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


class Emulator:
    """A `python -m emulator` process and its admin API."""

    def __init__(self, *args: str) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "emulator", "--port", "0", "--watch-stdin", *args],
            cwd=REPO,
            env=clean_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip():
            self.process.wait()
            self.log.seek(0)
            raise SystemExit("emulator did not start:\n" + self.log.read().decode(errors="replace"))
        self.info: dict[str, Any] = json.loads(line)
        self.api: str = self.info["api"]
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call `/_emulator/<path>` and return its JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.api}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with self._opener.open(request, timeout=120) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, dict[str, int]]:
        """Per-action counters: `{"cdn:X": {"calls", "throttled", "errors"}}`."""
        actions: dict[str, dict[str, int]] = self.admin("GET", "stats")["actions"]
        return actions

    def certpilot_env(self) -> dict[str, str]:
        """What points certpilot (CLI and handlers) at this emulator."""
        info = self.info
        return {
            "PYTHONPATH": str(LAYER),
            "CERTPILOT_ENDPOINT": info["api"],
            "ALIBABA_CLOUD_ACCESS_KEY_ID": info["access_key_id"],
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": info["access_key_secret"],
            "CERTPILOT_ACCOUNT_ID": info["account_id"],
            "CERTPILOT_EDGE_HTTPS": info["https"],
            "CERTPILOT_EDGE_HTTP": info["http"],
            "CERTPILOT_CA_BUNDLE": info["ca_bundle"],
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def stats_delta(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """`after - before`, per action and counter; actions with no new call left out."""
    delta = {}
    for action, counters in after.items():
        old = before.get(action, {})
        diff = {k: v - old.get(k, 0) for k, v in counters.items()}
        if diff.get("calls", 0):
            delta[action] = diff
    return delta


# -- the estate -----------------------------------------------------------------------


def domain_split(size: int) -> tuple[int, int]:
    """(OSS custom domains, CDN domains) for an account of `size` domains."""
    n_cdn = size // 2
    return size - n_cdn, n_cdn


def build_estate(size: int, propagation_delay: float) -> dict[str, Any]:
    """An estate of `size` domains (see the module docstring); one certificate recipe."""
    n_oss, n_cdn = domain_split(size)
    cnames: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in BUCKETS}
    for i in range(n_oss):
        bucket = BUCKETS[i % len(BUCKETS)][0]
        cert = None if i % NO_CERT_EVERY == NO_CERT_EVERY - 1 else OLD_CERT
        cnames[bucket].append({"domain": f"oss{i:05d}.example.com", "certificate": cert})
    cdn_domains = [
        {
            "name": f"cdn{i:05d}.example.com",
            "origin": BUCKETS[i % len(BUCKETS)][0],
            "certificate": None if i % NO_CERT_EVERY == NO_CERT_EVERY - 1 else OLD_CERT,
        }
        for i in range(n_cdn)
    ]
    return estate_document(
        f"deploy_scale benchmark: {n_oss} OSS custom domains, {n_cdn} CDN domains",
        propagation_delay,
        BUCKETS,
        cnames,
        cdn_domains,
        index="<p>bench</p>",
    )


def estate_document(
    description: str,
    propagation_delay: float,
    buckets: Sequence[tuple[str, str]],
    cnames: dict[str, list[dict[str, Any]]],
    cdn_domains: list[dict[str, Any]],
    *,
    index: str,
) -> dict[str, Any]:
    """The emulator estate of a benchmark account: the old `*.example.com` certificate
    (20 days left), `buckets` (name, region) with their `cnames`, and `cdn_domains`."""
    return {
        "description": description,
        "settings": {"propagation_delay": propagation_delay, "verify_domain_ownership": False},
        "certificates": [
            {
                "name": OLD_CERT,
                "sans": ["*.example.com"],
                "ca": "one",
                "not_before": "-345d",
                "not_after": "+20d",
            }
        ],
        "buckets": [
            {
                "name": name,
                "region": region,
                "objects": {"index.html": index},
                "cnames": cnames[name],
            }
            for name, region in buckets
        ],
        "cdn_domains": cdn_domains,
    }


# -- measured runs --------------------------------------------------------------------


@dataclass
class Run:
    """One measured certpilot process."""

    seconds: float
    exit_code: int | None
    timed_out: bool
    maxrss_mb: float
    cpu_seconds: float
    stdout: str
    stderr_tail: str
    calls: dict[str, dict[str, int]] = field(default_factory=dict)


def invoke_measured(
    emulator: Emulator,
    job: str,
    event: dict[str, Any],
    workdir: Path,
    env: dict[str, str],
    timeout: float,
    stderr_copy: Path | None = None,
) -> tuple[Run, dict[str, Any]]:
    """`certpilot invoke <job>` with `event`, as FC runs a handler, measured: the run
    with the emulator's calls it made, and its JSON summary ({} when it printed none)."""
    event_file = workdir / f"{job}.json"
    event_file.write_text(json.dumps(event))
    before = emulator.stats()
    run = run_measured(
        [sys.executable, "-m", "certpilot", "invoke", job, "--event", str(event_file)],
        env,
        timeout,
        stderr_copy,
    )
    run.calls = stats_delta(before, emulator.stats())
    try:
        summary = json.loads(run.stdout) if run.stdout.strip() else {}
    except ValueError:
        summary = {}
    return run, summary


def run_measured(
    argv: list[str], env: dict[str, str], timeout: float, stderr_copy: Path | None = None
) -> Run:
    """Run `argv` to completion (killed after `timeout` s); wall time and its own peak RSS.
    `stderr_copy`: where to keep the whole of its stderr (its logs)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err)
        reaped: dict[str, Any] = {}

        def reap() -> None:
            # wait4 gives this child's own rusage (RUSAGE_CHILDREN would mix in others).
            reaped["status"] = os.wait4(process.pid, 0)
            reaped["end"] = time.perf_counter()

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        waiter.join(timeout)
        timed_out = waiter.is_alive()
        if timed_out:
            process.kill()
            waiter.join()
        _, status, usage = reaped["status"]
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        if stderr_copy is not None:
            stderr_copy.write_text(stderr)
        return Run(
            seconds=reaped["end"] - started,
            exit_code=None if timed_out else process.returncode,
            timed_out=timed_out,
            maxrss_mb=usage.ru_maxrss / 1024,  # Linux: KiB
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            stdout=out.read().decode(errors="replace"),
            stderr_tail=stderr[-2000:],
        )


@dataclass
class SizeResult:
    """Everything measured for one account size."""

    size: int
    n_oss: int
    n_cdn: int
    load_seconds: float
    plan: Run
    deploy: Run
    summary: dict[str, Any]
    propagation_delay: float

    @property
    def bound(self) -> float:
        """Lower bound on the deploy's wall time implied by the documented QPS."""
        return max(self.n_cdn / DOCUMENTED_QPS[CDN_WRITE], self.n_oss / OSS_QPS) + (
            self.propagation_delay
        )

    def domain_seconds(self) -> list[float]:
        """Per-domain apply time (its write to its verdict) of the domains acted on."""
        return [
            float(r.get("seconds") or 0.0)
            for r in self.summary.get("results", [])
            if r.get("outcome") in ("deployed", "failed", "rolled-back")
        ]


def measure_size(
    emulator: Emulator, size: int, args: argparse.Namespace, workdir: Path
) -> SizeResult:
    """Load an account of `size` domains, issue the new certificate, plan it, deploy it."""
    n_oss, n_cdn = domain_split(size)
    emulator.admin("POST", "reset")
    started = time.perf_counter()
    emulator.admin("POST", "estate", build_estate(size, args.propagation_delay))
    load_seconds = time.perf_counter() - started
    issued = emulator.admin(
        "POST",
        "cas/issue",
        {"sans": ["*.example.com"], "days": 365, "name": f"wildcard-example-com-new-{size}"},
    )
    cert_id = int(issued["certId"])

    env = {
        **clean_env(),
        **emulator.certpilot_env(),
        "CERTPILOT_VERIFY_DEADLINE": str(args.verify_deadline),
        "CERTPILOT_LOG_LEVEL": args.log_level,
    }
    env.pop("CERTPILOT_CONCURRENCY", None)  # the default, as deployed, unless asked
    if args.concurrency:
        env["CERTPILOT_CONCURRENCY"] = str(args.concurrency)
    env.pop("CERTPILOT_DRY_RUN", None)
    python = [sys.executable, "-m", "certpilot"]

    before = emulator.stats()
    plan = run_measured(
        [*python, "plan", "--cert-id", str(cert_id), "--format", "json"], env, args.budget
    )
    after = emulator.stats()
    plan.calls = stats_delta(before, after)

    event_file = workdir / f"deploy-{size}.json"
    event_file.write_text(json.dumps({"certId": cert_id}))
    before = emulator.stats()
    deploy = run_measured(
        [*python, "invoke", "deploy-cert", "--event", str(event_file)], env, args.budget
    )
    deploy.calls = stats_delta(before, emulator.stats())
    try:
        summary = json.loads(deploy.stdout) if deploy.stdout.strip() else {}
    except ValueError:
        summary = {}
    return SizeResult(
        size, n_oss, n_cdn, load_seconds, plan, deploy, summary, args.propagation_delay
    )


# -- reporting ------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, columns padded to line up in a terminal too."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def totals(calls: dict[str, dict[str, int]]) -> tuple[int, int]:
    """(calls, throttled) summed over actions."""
    return (
        sum(c.get("calls", 0) for c in calls.values()),
        sum(c.get("throttled", 0) for c in calls.values()),
    )


def run_status(run: Run) -> str:
    if run.timed_out:
        return "TIMEOUT"
    return "ok" if run.exit_code == 0 else f"exit {run.exit_code}"


def summary_table(results: list[SizeResult]) -> str:
    rows = []
    for r in results:
        counts = r.summary.get("counts", {})
        plan_calls, plan_thr = totals(r.plan.calls)
        deploy_calls, deploy_thr = totals(r.deploy.calls)
        per_domain = r.domain_seconds()
        rows.append(
            [
                str(r.size),
                f"{r.n_oss}/{r.n_cdn}",
                f"{r.plan.seconds:.1f}"
                + ("" if r.plan.exit_code == 0 else f" ({run_status(r.plan)})"),
                f"{plan_calls}/{plan_thr}",
                f"{r.plan.maxrss_mb:.0f}",
                f"{r.deploy.seconds:.1f}"
                + ("" if r.deploy.exit_code == 0 else f" ({run_status(r.deploy)})"),
                str(r.summary.get("status", "-")),
                "/".join(
                    str(counts.get(k, 0))
                    for k in ("deployed", "already-current", "skipped", "failed", "rolled-back")
                ),
                f"{deploy_calls}/{deploy_thr}",
                f"{r.deploy.maxrss_mb:.0f}",
                f"{r.deploy.cpu_seconds:.1f}",
                f"{statistics.median(per_domain):.2f}" if per_domain else "-",
                f"{r.bound:.1f}",
                f"{r.deploy.seconds / r.bound:.1f}x",
            ]
        )
    headers = [
        "domains",
        "oss/cdn",
        "plan s",
        "plan calls/thr",
        "plan RSS MB",
        "deploy s",
        "status",
        "dep/cur/skip/fail/rb",
        "deploy calls/thr",
        "deploy RSS MB",
        "deploy CPU s",
        "median s/domain",
        "QPS bound s",
        "actual/bound",
    ]
    return table(headers, rows)


def calls_table(results: list[SizeResult]) -> str:
    rows = []
    for r in results:
        for phase, run in (("plan", r.plan), ("deploy", r.deploy)):
            for action in sorted(run.calls):
                c = run.calls[action]
                qps, documented = qps_of(action)
                rows.append(
                    [
                        str(r.size),
                        phase,
                        action,
                        str(c.get("calls", 0)),
                        str(c.get("throttled", 0)),
                        str(c.get("errors", 0)),
                        f"{qps:g}" + ("" if documented else "*"),
                        f"{c.get('calls', 0) / qps:.2f}",
                    ]
                )
    headers = ["domains", "phase", "action", "calls", "throttled", "errors", "QPS", "calls/QPS s"]
    return table(headers, rows)


# -- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="comma-separated account sizes (default %(default)s)",
    )
    parser.add_argument(
        "--budget", type=float, default=240.0, help="seconds a run may take (default %(default)s)"
    )
    parser.add_argument(
        "--propagation-delay",
        type=float,
        default=60.0,
        help="seconds a change takes to reach every edge node (default %(default)s: CDN)",
    )
    parser.add_argument(
        "--verify-deadline",
        type=float,
        default=120.0,
        help="CERTPILOT_VERIFY_DEADLINE (default %(default)s, certpilot's own)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="CERTPILOT_CONCURRENCY (default: unset)"
    )
    parser.add_argument("--log-level", default="INFO", help="CERTPILOT_LOG_LEVEL (FC default)")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error("--sizes takes comma-separated integers")
    if not args.sizes or min(args.sizes) < 2:
        parser.error("--sizes must name sizes of at least 2 domains")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"deploy_scale: sizes {args.sizes}, emulator at qps-scale 1 (documented limits), "
        f"propagation delay {args.propagation_delay}s, CERTPILOT_VERIFY_DEADLINE="
        f"{args.verify_deadline}, CERTPILOT_CONCURRENCY {args.concurrency or 'default'}, "
        f"budget {args.budget:.0f}s a run",
        flush=True,
    )
    emulator = Emulator("--qps-scale", "1", "--propagation-delay", str(args.propagation_delay))
    results: list[SizeResult] = []
    notes: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="deploy-scale-") as tmp:
            previous: SizeResult | None = None
            for size in args.sizes:
                if previous is not None:
                    took = max(previous.plan.seconds, previous.deploy.seconds)
                    predicted = took * size / previous.size
                    if previous.plan.timed_out or previous.deploy.timed_out:
                        notes.append(f"{size}: skipped, {previous.size} hit the budget")
                        continue
                    if predicted > args.budget:
                        notes.append(
                            f"{size}: skipped, predicted {predicted:.0f}s from {previous.size} "
                            f"({took:.1f}s) > budget {args.budget:.0f}s"
                        )
                        continue
                result = measure_size(emulator, size, args, Path(tmp))
                results.append(result)
                previous = result
                print(
                    f"  {size} domains: estate {result.load_seconds:.1f}s, "
                    f"plan {result.plan.seconds:.1f}s ({run_status(result.plan)}), "
                    f"deploy {result.deploy.seconds:.1f}s ({run_status(result.deploy)})",
                    flush=True,
                )
                for name, run in (("plan", result.plan), ("deploy", result.deploy)):
                    if run.exit_code != 0 and (run.timed_out or not result.summary):
                        notes.append(f"{size} {name} stderr tail: {run.stderr_tail[-600:]}")
    finally:
        emulator.stop()

    print()
    print(summary_table(results))
    print()
    print(calls_table(results))
    print()
    print(
        "plan/deploy calls/thr: emulator API calls / of them throttled; RSS: peak of the "
        "certpilot process; CPU: its user + system seconds; dep/cur/skip/fail/rb: "
        "deployed / already-current / skipped / "
        "failed / rolled-back; median s/domain: from a domain's write to its verdict "
        "(all writes go out before any verification); "
        f"QPS bound: max(N_cdn/{DOCUMENTED_QPS[CDN_WRITE]:g}, N_oss/{OSS_QPS:g}) + "
        "propagation delay; * not documented (the emulator's chosen limit)."
    )
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
