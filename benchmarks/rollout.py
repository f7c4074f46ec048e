"""Rollout: one wildcard certificate renewed on 1,000 domains, certpilot against the
one-domain-at-a-time loop of existing deploy tools, on the same emulator in the same run.

    python benchmarks/rollout.py [--quick] [--domains 1000] [--propagation-delay 60]
        [--edge-nodes 32] [--wait-sample 2] [--json-out PATH]

The emulator runs at the documented QPS limits (`--qps-scale 1`), with the realistic
latency profile (reads 50 ms, writes 150 ms: `--latency-profile`) and a CDN edge of
`--edge-nodes` nodes, picked at random per connection, that a change reaches node by
node within the propagation delay (about a minute; OSS custom domains switch at once
after it). The account: N domains under example.com, half OSS custom domains across 20
buckets (cn-hangzhou and cn-shanghai), half CDN domains with those buckets as origins,
every one serving an expiring `*.example.com`. CAS then holds its renewal.

Three rollouts of that renewal, each on a freshly loaded account:

1. certpilot: `python -m certpilot invoke deploy-cert --event {"certId": ID}` (the FC
   handler, as FC runs it), which writes, then verifies every domain at the edge.
2. Sequential, waiting for nothing: one domain after the other, one call each with the
   real SDKs (OSS PutCname with the certificate's CertId and Force; CDN
   SetCdnDomainSSLCertificate), no pacing, no batching, the SDKs' own retries. Its time
   until every domain is served is its last answer plus one propagation delay.
3. Sequential, waiting for each domain in turn: the same call, then handshakes with the
   edge until it serves the new certificate on 3 consecutive connections (the criterion
   certpilot verifies with), then the next domain. A full run takes N x (propagation +
   write): it is measured on a sample (`--wait-sample` domains of each kind) and
   extrapolated to N, as stated in the output.

The bound is what the API limits allow for the calls certpilot actually made: one read
round trip before anything can be written, the busiest action's calls at its QPS limit
(`max(calls / qps)` over the actions: the writes of different actions proceed in
parallel, reads overlap them), the last write's latency, then its propagation:
`bound = read latency + max_a(calls_a / qps_a) + write latency + propagation delay`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import ssl
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.deploy_scale import (
    OLD_CERT,
    Emulator,
    Run,
    clean_env,
    estate_document,
    invoke_measured,
    stats_delta,
    table,
    totals,
)

REGIONS = ("cn-hangzhou", "cn-shanghai")
N_BUCKETS = 20
READ_LATENCY = 0.05
WRITE_LATENCY = 0.15
CDN_WRITE = "cdn:SetCdnDomainSSLCertificate"
OSS_WRITE = "oss:PutCname"
CONSECUTIVE = 3  # certpilot's CERTPILOT_VERIFY_CONSECUTIVE default, used by the waiting loop


def emulator_qps() -> dict[str, float]:
    """The QPS limit the emulator enforces per action key (its catalog, `--qps-scale 1`)."""
    from emulator import server  # noqa: F401  (registers the operations)
    from emulator.core import OSS_OPERATIONS, RPC_OPERATIONS

    limits = {f"{op.product}:{op.action}": op.qps for op in RPC_OPERATIONS.values()}
    limits.update({f"oss:{op.name}": op.qps for op in OSS_OPERATIONS})
    return limits


# -- the account ----------------------------------------------------------------------


def buckets() -> list[tuple[str, str]]:
    return [(f"roll-{i:02d}", REGIONS[i % len(REGIONS)]) for i in range(N_BUCKETS)]


def build_estate(size: int, propagation_delay: float) -> dict[str, Any]:
    """N domains, half OSS custom domains over 20 buckets, half CDN; all on the old cert."""
    n_cdn = size // 2
    n_oss = size - n_cdn
    names = buckets()
    cnames: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in names}
    for i in range(n_oss):
        cnames[names[i % N_BUCKETS][0]].append(
            {"domain": f"oss{i:05d}.example.com", "certificate": OLD_CERT}
        )
    cdn_domains = [
        {
            "name": f"cdn{i:05d}.example.com",
            "origin": names[i % N_BUCKETS][0],
            "certificate": OLD_CERT,
        }
        for i in range(n_cdn)
    ]
    return estate_document(
        f"rollout benchmark: {n_oss} OSS custom domains, {n_cdn} CDN domains",
        propagation_delay,
        names,
        cnames,
        cdn_domains,
        index="<p>rollout</p>",
    )


@dataclass
class Account:
    """A freshly loaded account and the renewal CAS holds for it."""

    cert_id: int
    identifier: str
    region: str
    fingerprint: str  # SHA-256 of the renewal's leaf, lower hex
    oss_domains: list[tuple[str, str, str]]  # (domain, bucket, region)
    cdn_domains: list[str]


def load_account(emulator: Emulator, args: argparse.Namespace, tag: str) -> Account:
    """Reset the emulator, set the edge, load the estate and issue the renewal."""
    emulator.admin("POST", "reset")
    emulator.admin(
        "POST", "settings", {"edge_nodes": args.edge_nodes, "edge_node_selection": "random"}
    )
    estate = build_estate(args.domains, args.propagation_delay)
    emulator.admin("POST", "estate", estate)
    issued = emulator.admin(
        "POST",
        "cas/issue",
        {"sans": ["*.example.com"], "days": 365, "name": f"wildcard-example-com-{tag}"},
    )
    cert_id = int(issued["certId"])
    identifier = str(issued["identifier"])
    region = identifier.split("-", 1)[1]
    state = emulator.admin("GET", "state")
    fingerprint = _fingerprint_of(state, cert_id)
    oss_domains = [
        (c["domain"], b["name"], b["region"]) for b in estate["buckets"] for c in b["cnames"]
    ]
    cdn_domains = [d["name"] for d in estate["cdn_domains"]]
    return Account(cert_id, identifier, region, fingerprint, oss_domains, cdn_domains)


def _fingerprint_of(state: Any, cert_id: int) -> str:
    """The SHA-256 (lower hex) of CAS certificate `cert_id`'s leaf, from the state dump."""
    for cert in _walk(state):
        if cert.get("id") == cert_id and isinstance(cert.get("sha256"), str):
            return str(cert["sha256"]).replace(":", "").lower()
    raise SystemExit(f"certificate {cert_id} not in the emulator's state dump")


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


# -- certpilot ------------------------------------------------------------------------


def run_certpilot(
    emulator: Emulator, account: Account, args: argparse.Namespace, workdir: Path
) -> tuple[Run, dict[str, Any]]:
    """deploy-cert as FC runs its handler; returns the run and the handler's summary."""
    env = {
        **clean_env(),
        **emulator.certpilot_env(),
        "CERTPILOT_VERIFY_DEADLINE": str(args.verify_deadline),
        "CERTPILOT_LOG_LEVEL": "INFO",
    }
    for name in ("CERTPILOT_CONCURRENCY", "CERTPILOT_DRY_RUN"):
        env.pop(name, None)
    return invoke_measured(
        emulator,
        "deploy-cert",
        {"certId": account.cert_id},
        workdir,
        env,
        args.budget,
        args.log_out,
    )


# -- the sequential baseline ----------------------------------------------------------


class Sdk:
    """The real SDK clients a deploy tool builds, pointed at the emulator."""

    def __init__(self, emulator: Emulator) -> None:
        import alibabacloud_oss_v2 as oss
        from alibabacloud_cdn20180510.client import Client as CdnClient
        from alibabacloud_tea_openapi import utils_models

        info = emulator.info
        self._oss_clients: dict[str, Any] = {}
        self._info = info
        self._oss = oss
        config = utils_models.Config(
            access_key_id=info["access_key_id"],
            access_key_secret=info["access_key_secret"],
            endpoint=info["api"].split("://", 1)[1],
            protocol="http",
            region_id=info["region"],
        )
        self.cdn = CdnClient(config)

    def oss_client(self, region: str) -> Any:
        client = self._oss_clients.get(region)
        if client is None:
            oss = self._oss
            config = oss.config.load_default()
            config.credentials_provider = oss.credentials.StaticCredentialsProvider(
                self._info["access_key_id"], self._info["access_key_secret"]
            )
            config.region = region
            config.endpoint = self._info["api"]
            client = self._oss_clients[region] = oss.Client(config)
        return client

    def put_cname(self, domain: str, bucket: str, region: str, identifier: str) -> None:
        """PutCname with the certificate, forced: what a deploy tool sends per domain."""
        oss = self._oss
        request = oss.PutCnameRequest(
            bucket=bucket,
            bucket_cname_configuration=oss.BucketCnameConfiguration(
                cname=oss.Cname(
                    domain=domain,
                    certificate_configuration=oss.CertificateConfiguration(
                        cert_id=identifier, force=True
                    ),
                )
            ),
        )
        self.oss_client(region).put_cname(request)

    def set_cdn_certificate(self, domain: str, cert_id: int, region: str) -> None:
        from alibabacloud_cdn20180510 import models

        self.cdn.set_cdn_domain_sslcertificate(
            models.SetCdnDomainSSLCertificateRequest(
                domain_name=domain,
                sslprotocol="on",
                cert_type="cas",
                cert_id=cert_id,
                cert_region=region,
            )
        )


@dataclass
class Baseline:
    """One sequential pass: per-domain write times, failures and the emulator's counts."""

    seconds: float = 0.0
    domains: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # error code -> domains
    per_domain: dict[str, list[float]] = field(default_factory=dict)  # kind -> seconds
    calls: dict[str, dict[str, int]] = field(default_factory=dict)


def _error_code(exc: Exception) -> str:
    code = getattr(exc, "code", None) or getattr(getattr(exc, "unwrap", None), "__name__", "")
    if hasattr(exc, "unwrap"):
        inner = exc.unwrap()
        code = getattr(inner, "code", None) or type(inner).__name__
    return str(code or type(exc).__name__)


def sequential(
    emulator: Emulator,
    account: Account,
    *,
    oss_domains: list[tuple[str, str, str]],
    cdn_domains: list[str],
    wait: bool,
    args: argparse.Namespace,
) -> Baseline:
    """Deploy one domain after the other (OSS and CDN alternating, as a list of domains
    comes); with `wait`, watch the edge until it serves the new certificate first."""
    sdk = Sdk(emulator)
    edge_host, _, edge_port = str(emulator.info["https"]).rpartition(":")
    ca_bundle = str(emulator.info["ca_bundle"])
    order: list[tuple[str, Any]] = []
    for i in range(max(len(oss_domains), len(cdn_domains))):
        if i < len(oss_domains):
            order.append(("oss", oss_domains[i]))
        if i < len(cdn_domains):
            order.append(("cdn", cdn_domains[i]))
    result = Baseline(per_domain={"oss": [], "cdn": []})
    before = emulator.stats()
    started = time.perf_counter()
    for kind, target in order:
        began = time.perf_counter()
        domain = target[0] if kind == "oss" else target
        try:
            if kind == "oss":
                sdk.put_cname(target[0], target[1], target[2], account.identifier)
            else:
                sdk.set_cdn_certificate(target, account.cert_id, account.region)
        except Exception as exc:  # a deploy tool logs it and goes on
            code = _error_code(exc)
            result.failures[code] = result.failures.get(code, 0) + 1
        else:
            if wait:
                _wait_served(domain, edge_host, int(edge_port), ca_bundle, account, args)
        result.per_domain[kind].append(time.perf_counter() - began)
        result.domains += 1
    result.seconds = time.perf_counter() - started
    result.calls = stats_delta(before, emulator.stats())
    return result


def _wait_served(
    domain: str,
    host: str,
    port: int,
    ca_bundle: str,
    account: Account,
    args: argparse.Namespace,
) -> None:
    """Handshake every 0.5 s until CONSECUTIVE connections in a row serve the renewal."""
    context = ssl.create_default_context(cafile=ca_bundle)
    deadline = time.monotonic() + args.propagation_delay * 2 + 30
    streak = 0
    while streak < CONSECUTIVE and time.monotonic() < deadline:
        try:
            with (
                socket.create_connection((host, port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=domain) as tls,
            ):
                der = tls.getpeercert(binary_form=True) or b""
            served = hashlib.sha256(der).hexdigest() == account.fingerprint
        except (OSError, ssl.SSLError):
            served = False
        streak = streak + 1 if served else 0
        if streak < CONSECUTIVE and not served:
            time.sleep(0.5)


# -- the bound and the report ---------------------------------------------------------


def bound_of(calls: dict[str, dict[str, int]], qps: dict[str, float], delay: float) -> float:
    """read latency + max over actions of (accepted calls / QPS) + write latency + delay."""
    busiest = max(
        ((c["calls"] - c.get("throttled", 0)) / qps[a] for a, c in calls.items() if a in qps),
        default=0.0,
    )
    return READ_LATENCY + busiest + WRITE_LATENCY + delay


def target(what: str, wanted: str, measured: str, met: bool, gap: str = "") -> dict[str, Any]:
    """One row of RESULTS.md's targets table (the shared convention)."""
    return {"what": what, "target": wanted, "measured": measured, "met": met, "gap": gap}


def write_json(
    path: Path,
    name: str,
    settings: dict[str, Any],
    rows: list[Any],
    md: str,
    targets: list[dict[str, Any]] | None = None,
) -> None:
    """The benchmark's section for benchmarks/RESULTS.md (the shared convention)."""
    section: dict[str, Any] = {
        "name": name,
        "settings": settings,
        "rows": rows,
        "summary_markdown": md,
    }
    if targets:
        section["targets"] = targets
    path.write_text(json.dumps(section, indent=2) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 domains, 10 s propagation")
    parser.add_argument("--domains", type=int, default=None, help="account size (1000)")
    parser.add_argument("--propagation-delay", type=float, default=None, help="seconds (60)")
    parser.add_argument("--edge-nodes", type=int, default=32, help="CDN edge nodes (32)")
    parser.add_argument(
        "--wait-sample",
        type=int,
        default=None,
        help="domains of each kind the waiting loop is measured on (1)",
    )
    parser.add_argument(
        "--verify-deadline", type=float, default=None, help="CERTPILOT_VERIFY_DEADLINE"
    )
    parser.add_argument("--budget", type=float, default=600.0, help="seconds certpilot may take")
    parser.add_argument("--json-out", type=Path, help="write the section as JSON here")
    parser.add_argument("--log-out", type=Path, help="write deploy-cert's logs here")
    args = parser.parse_args(argv)
    args.domains = args.domains or (100 if args.quick else 1000)
    if args.propagation_delay is None:
        args.propagation_delay = 10.0 if args.quick else 60.0
    if args.wait_sample is None:
        args.wait_sample = 1
    if args.verify_deadline is None:
        args.verify_deadline = args.propagation_delay * 2 + 60
    if args.domains < 2 or args.wait_sample < 1:
        parser.error("--domains must be >= 2 and --wait-sample >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    qps = emulator_qps()
    settings = {
        "domains": args.domains,
        "oss_custom_domains": args.domains - args.domains // 2,
        "cdn_domains": args.domains // 2,
        "buckets": N_BUCKETS,
        "qps_scale": 1,
        "latency_profile": {"read": READ_LATENCY, "write": WRITE_LATENCY},
        "propagation_delay_s": args.propagation_delay,
        "edge_nodes": args.edge_nodes,
        "edge_node_selection": "random",
        "verify_deadline_s": args.verify_deadline,
        "wait_sample_per_kind": args.wait_sample,
    }
    print(f"rollout: {json.dumps(settings)}", flush=True)
    emulator = Emulator(
        "--qps-scale",
        "1",
        "--latency-profile",
        f"read={READ_LATENCY},write={WRITE_LATENCY}",
        "--propagation-delay",
        str(args.propagation_delay),
    )
    try:
        with tempfile.TemporaryDirectory(prefix="rollout-") as tmp:
            account = load_account(emulator, args, "certpilot")
            run, summary = run_certpilot(emulator, account, args, Path(tmp))
            print(f"  certpilot: {run.seconds:.1f}s, status {summary.get('status')}", flush=True)
            if run.exit_code != 0 and not summary:
                print(run.stderr_tail[-1500:], file=sys.stderr)

            account = load_account(emulator, args, "nowait")
            nowait = sequential(
                emulator,
                account,
                oss_domains=account.oss_domains,
                cdn_domains=account.cdn_domains,
                wait=False,
                args=args,
            )
            print(f"  sequential, no wait: {nowait.seconds:.1f}s", flush=True)

            account = load_account(emulator, args, "wait")
            waiting = sequential(
                emulator,
                account,
                oss_domains=account.oss_domains[: args.wait_sample],
                cdn_domains=account.cdn_domains[: args.wait_sample],
                wait=True,
                args=args,
            )
            print(f"  sequential, waiting (sample): {waiting.seconds:.1f}s", flush=True)
    finally:
        emulator.stop()

    n_oss, n_cdn = settings["oss_custom_domains"], settings["cdn_domains"]
    bound = bound_of(run.calls, qps, args.propagation_delay)
    nowait_served = nowait.seconds + args.propagation_delay
    wait_oss = statistics.mean(waiting.per_domain["oss"])
    wait_cdn = statistics.mean(waiting.per_domain["cdn"])
    wait_full = wait_oss * n_oss + wait_cdn * n_cdn
    counts = summary.get("counts", {})
    calls_total, throttled = totals(run.calls)
    nowait_calls, nowait_throttled = totals(nowait.calls)
    rows = [
        {
            "approach": "certpilot deploy-cert",
            "wall_s": round(run.seconds, 2),
            "until_served_s": round(run.seconds, 2),
            "calls": calls_total,
            "throttled": throttled,
            "failed_domains": counts.get("failed", 0) + counts.get("rolled-back", 0),
            "verified": "yes (edge handshakes)",
            "note": f"status {summary.get('status', run.exit_code)}; deployed "
            f"{counts.get('deployed', 0)}/{args.domains}",
        },
        {
            "approach": "sequential, waiting for nothing",
            "wall_s": round(nowait.seconds, 2),
            "until_served_s": round(nowait_served, 2),
            "calls": nowait_calls,
            "throttled": nowait_throttled,
            "failed_domains": sum(nowait.failures.values()),
            "verified": "no",
            "note": "served = last answer + propagation delay",
        },
        {
            "approach": "sequential, waiting for each domain",
            "wall_s": round(wait_full, 1),
            "until_served_s": round(wait_full, 1),
            "calls": args.domains,
            "throttled": totals(waiting.calls)[1],
            "failed_domains": sum(waiting.failures.values()),
            "verified": "yes (edge handshakes)",
            "note": f"extrapolated from {waiting.domains} domains measured "
            f"(OSS {wait_oss:.1f} s, CDN {wait_cdn:.1f} s each)",
        },
    ]
    headers = ["approach", "wall s", "until served s", "calls", "throttled", "failed", "verified"]
    main_table = table(
        headers,
        [
            [
                str(r["approach"]),
                f"{r['wall_s']:.1f}",
                f"{r['until_served_s']:.1f}",
                str(r["calls"]),
                str(r["throttled"]),
                str(r["failed_domains"]),
                str(r["verified"]),
            ]
            for r in rows
        ],
    )
    action_rows = []
    for label, calls in (("certpilot", run.calls), ("sequential, no wait", nowait.calls)):
        for action in sorted(calls):
            c = calls[action]
            action_rows.append(
                [
                    label,
                    action,
                    str(c["calls"]),
                    str(c.get("throttled", 0)),
                    str(c.get("errors", 0)),
                    f"{qps.get(action, float('nan')):g}",
                    f"{(c['calls'] - c.get('throttled', 0)) / qps.get(action, float('inf')):.2f}",
                ]
            )
    calls_table = table(
        ["run", "action", "calls", "throttled", "errors", "QPS", "calls/QPS s"], action_rows
    )
    ratio_bound = run.seconds / bound
    ratio_nowait = nowait_served / run.seconds
    ratio_wait = wait_full / run.seconds
    verdict = [
        f"- bound: {bound:.1f} s = read {READ_LATENCY} s + busiest action's calls / QPS "
        f"+ write {WRITE_LATENCY} s + propagation {args.propagation_delay:g} s",
        f"- certpilot / bound: {ratio_bound:.2f}x (target <= 1.15x)",
        f"- sequential (no wait, until served) / certpilot: {ratio_nowait:.1f}x; "
        f"sequential (waiting per domain, extrapolated) / certpilot: {ratio_wait:.0f}x "
        "(target >= 10x)",
        f"- throttled: certpilot {throttled}, sequential {nowait_throttled} (target 0)",
    ]
    summary_md = "\n".join(
        [
            f"Rollout of one `*.example.com` renewal to {args.domains} domains ({n_oss} OSS "
            f"custom domains over {N_BUCKETS} buckets, {n_cdn} CDN); emulator at the "
            f"documented QPS, latency read {READ_LATENCY * 1000:.0f} ms / write "
            f"{WRITE_LATENCY * 1000:.0f} ms, propagation {args.propagation_delay:g} s over "
            f"{args.edge_nodes} random-picked edge nodes.",
            "",
            main_table,
            "",
            *verdict,
            "",
            calls_table,
        ]
    )
    print()
    print(summary_md)
    if args.json_out:
        settings["bound_s"] = round(bound, 2)
        settings["ratios"] = {
            "certpilot_to_bound": round(ratio_bound, 3),
            "sequential_nowait_to_certpilot": round(ratio_nowait, 2),
            "sequential_wait_to_certpilot": round(ratio_wait, 1),
        }
        targets = [
            target(
                "wall time",
                "<= 1.15x bound",
                f"{ratio_bound:.2f}x ({run.seconds:.1f} s vs {bound:.1f} s)",
                ratio_bound <= 1.15,
                f"{run.seconds - 1.15 * bound:.1f} s over",
            ),
            target(
                "vs sequential, waiting per domain",
                ">= 10x faster",
                f"{ratio_wait:.0f}x",
                ratio_wait >= 10,
            ),
            target(
                "vs sequential, waiting for nothing (until served)",
                ">= 10x faster",
                f"{ratio_nowait:.1f}x",
                ratio_nowait >= 10,
                "that loop's own floor is calls x write latency + propagation",
            ),
            target("throttled", "0", str(throttled), throttled == 0),
        ]
        write_json(args.json_out, "rollout", settings, rows, summary_md, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
