"""Emulator benchmark: start time and signed requests per second, latency profile off and on.

    python benchmarks/emulator_throughput.py [--starts 5] [--clients 2] [--seconds 3]
        [--connections 32] [--quick] [--json-out PATH] [--check]

Start time is the median, over several `python -m emulator --port 0` runs, of the time
from spawning the process to its JSON ready line. Throughput is measured with several
client processes, each on one keep-alive connection, sending correctly signed
requests (CDN DescribeUserDomains with ACS3-HMAC-SHA256, OSS ListCname with
OSS4-HMAC-SHA256, alternating) to an emulator started with a huge `--qps-scale`, so
flow control never interferes. The signers here are small and independent of the
emulator's own code (it must not check itself). Targets: start < 2 s, >= 500 req/s.

Then the same with the realistic latency profile on (`--latency-profile`: both calls
are reads, 50 ms each): one connection can then make at most 20 calls a second, so
each client process keeps `--connections` keep-alive connections busy (one thread
each), and the rate is shown against that ideal (connections / 50 ms): a rate near it
means the emulator waits side by side and is not the bottleneck of a benchmark.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
START_TARGET_S = 2.0
RPS_TARGET = 500.0
BUCKET = "bench-bucket"
READ_LATENCY = 0.05  # the realistic profile's read latency (both measured calls read)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def start_emulator(*args: str) -> tuple[subprocess.Popen[bytes], dict[str, Any], float]:
    """Spawn an emulator; returns the process, its ready line and the seconds it took."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env=_env(),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    if not line:
        process.wait()
        raise SystemExit("the emulator exited before its ready line")
    return process, json.loads(line), elapsed


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


def measure_start(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        process, _, elapsed = start_emulator()
        stop(process)
        times.append(elapsed)
    return times


# -- light signers (mirroring the SDKs' canonical requests) ------------------------------


def acs3_headers(info: dict[str, Any], host: str, action: str, version: str) -> dict[str, str]:
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
    }
    names = sorted(headers)
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(f"{n}:{headers[n]}\n" for n in names),
            ";".join(names),
            headers["x-acs-content-sha256"],
        ]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(
        info["access_key_secret"].encode(), to_sign.encode(), hashlib.sha256
    ).hexdigest()
    headers["Authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={info['access_key_id']},"
        f"SignedHeaders={';'.join(names)},Signature={signature}"
    )
    return headers


def oss4_headers(info: dict[str, Any], method: str, bucket: str, query: str) -> dict[str, str]:
    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    date = stamp[:8]
    region = info["region"]
    headers = {"x-oss-date": stamp, "x-oss-content-sha256": "UNSIGNED-PAYLOAD"}
    canonical = "\n".join(
        [
            method,
            quote(f"/{bucket}/", safe="/"),
            query,
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            "",
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = f"{date}/{region}/oss/aliyun_v4_request"
    to_sign = "\n".join(
        ["OSS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("aliyun_v4" + info["access_key_secret"]).encode()
    for part in (date, region, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"OSS4-HMAC-SHA256 Credential={info['access_key_id']}/{scope},Signature={signature}"
    )
    return headers


def _client(info: dict[str, Any], seconds: float, results: Any, connections: int = 1) -> None:
    """One client process: `connections` keep-alive connections, one thread each."""
    if connections <= 1:
        _connection(info, seconds, results)
        return
    import queue
    import threading

    local: queue.Queue[tuple[int, int]] = queue.Queue()
    threads = [
        threading.Thread(target=_connection, args=(info, seconds, local))
        for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = [local.get() for _ in threads]
    results.put((sum(c[0] for c in counts), sum(c[1] for c in counts)))


def _connection(info: dict[str, Any], seconds: float, results: Any) -> None:
    host = info["api"].split("://", 1)[1]
    hostname, port = host.rsplit(":", 1)
    connection = http.client.HTTPConnection(hostname, int(port), timeout=10)
    ok = failed = 0
    deadline = time.perf_counter() + seconds
    turn = 0
    while time.perf_counter() < deadline:
        turn += 1
        if turn % 2:
            headers = acs3_headers(info, host, "DescribeUserDomains", "2018-05-10")
            connection.request("POST", "/", headers=headers)
        else:
            headers = oss4_headers(info, "GET", BUCKET, "cname")
            connection.request("GET", f"/{BUCKET}/?cname", headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            ok += 1
        else:
            failed += 1
    connection.close()
    results.put((ok, failed))


def measure_throughput(
    info: dict[str, Any], clients: int, seconds: float, connections: int = 1
) -> tuple[float, int]:
    """Signed requests per second over `clients` processes of `connections` connections
    each, and the count of failures."""
    host = info["api"].split("://", 1)[1]
    hostname, port = host.rsplit(":", 1)
    setup = http.client.HTTPConnection(hostname, int(port), timeout=10)
    setup.request("PUT", f"/{BUCKET}/", headers=oss4_headers(info, "PUT", BUCKET, ""))
    setup.getresponse().read()
    setup.close()

    results: Any = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_client, args=(info, seconds, results, connections))
        for _ in range(clients)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    totals = [results.get(timeout=seconds + 30) for _ in workers]
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    ok = sum(t[0] for t in totals)
    failed = sum(t[1] for t in totals)
    return ok / min(elapsed, seconds + 0.5), failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="start-time samples")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--seconds", type=float, default=3.0, help="load duration")
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help="keep-alive connections per client process with the latency profile on",
    )
    parser.add_argument("--quick", action="store_true", help="3 starts, 1.5 s of load")
    parser.add_argument("--json-out", type=Path, help="write the section as JSON here")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.starts, args.seconds = min(args.starts, 3), min(args.seconds, 1.5)

    start_times = measure_start(args.starts)
    start_median = statistics.median(start_times)
    process, info, _ = start_emulator("--qps-scale", "1000000")
    try:
        rps, failed = measure_throughput(info, args.clients, args.seconds)
    finally:
        stop(process)
    process, info, _ = start_emulator(
        "--qps-scale", "1000000", "--latency-profile", f"read={READ_LATENCY},write=0.15"
    )
    try:
        rps_on, failed_on = measure_throughput(
            info, args.clients, args.seconds, connections=args.connections
        )
    finally:
        stop(process)
    open_connections = args.clients * args.connections
    ideal_on = open_connections / READ_LATENCY

    print(
        f"start time: median {start_median:.3f} s over {args.starts} runs "
        f"(min {min(start_times):.3f}, max {max(start_times):.3f}; target < {START_TARGET_S} s)"
    )
    rows = [
        {
            "latency_profile": "off",
            "clients": args.clients,
            "connections": args.clients,
            "requests_per_s": round(rps),
            "ideal_per_s": None,
            "failed": failed,
        },
        {
            "latency_profile": f"read {READ_LATENCY * 1000:.0f} ms, write 150 ms",
            "clients": args.clients,
            "connections": open_connections,
            "requests_per_s": round(rps_on),
            "ideal_per_s": round(ideal_on),
            "failed": failed_on,
        },
    ]
    rendered = _table(
        ["latency profile", "connections", "requests/s", "ideal requests/s", "failed"],
        [
            [
                str(r["latency_profile"]),
                str(r["connections"]),
                str(r["requests_per_s"]),
                "-" if r["ideal_per_s"] is None else f"{r['ideal_per_s']} (connections / 50 ms)",
                str(r["failed"]),
            ]
            for r in rows
        ],
    )
    summary_md = "\n".join(
        [
            f"Emulator start: median {start_median:.3f} s over {args.starts} runs "
            f"(target < {START_TARGET_S:g} s). Signed requests (CDN DescribeUserDomains, "
            f"OSS ListCname alternating) from {args.clients} client processes for "
            f"{args.seconds:g} s, target >= {RPS_TARGET:.0f}/s with the profile off:",
            "",
            rendered,
        ]
    )
    print(summary_md)
    summary = {
        "start_median_s": round(start_median, 3),
        "requests_per_s": round(rps),
        "requests_per_s_latency_on": round(rps_on),
        "ideal_per_s_latency_on": round(ideal_on),
        "failed": failed + failed_on,
        "clients": args.clients,
    }
    print(json.dumps(summary))
    if args.json_out:
        settings = {
            "starts": args.starts,
            "clients": args.clients,
            "seconds": args.seconds,
            "connections_per_client_latency_on": args.connections,
            "qps_scale": 1000000,
            "start_median_s": round(start_median, 3),
        }
        args.json_out.write_text(
            json.dumps(
                {
                    "name": "emulator_throughput",
                    "settings": settings,
                    "rows": rows,
                    "summary_markdown": summary_md,
                },
                indent=2,
            )
            + "\n"
        )
    missed = start_median >= START_TARGET_S or rps < RPS_TARGET or failed or failed_on
    return 1 if args.check and missed else 0


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
