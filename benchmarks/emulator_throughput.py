"""Emulator benchmark: start time and signed requests per second.

    python benchmarks/emulator_throughput.py [--starts 5] [--clients 2] [--seconds 3] [--check]

Start time is the median, over several `python -m emulator --port 0` runs, of the time
from spawning the process to its JSON ready line. Throughput is measured with several
client processes, each on one keep-alive connection, sending correctly signed
requests (CDN DescribeUserDomains with ACS3-HMAC-SHA256, OSS ListCname with
OSS4-HMAC-SHA256, alternating) to an emulator started with a huge `--qps-scale`, so
flow control never interferes. The signers here are small and independent of the
emulator's own code (it must not check itself). Targets: start < 2 s, >= 500 req/s.
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


def _client(info: dict[str, Any], seconds: float, results: Any) -> None:
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


def measure_throughput(info: dict[str, Any], clients: int, seconds: float) -> tuple[float, int]:
    """Signed requests per second over `clients` processes, and the count of failures."""
    host = info["api"].split("://", 1)[1]
    hostname, port = host.rsplit(":", 1)
    setup = http.client.HTTPConnection(hostname, int(port), timeout=10)
    setup.request("PUT", f"/{BUCKET}/", headers=oss4_headers(info, "PUT", BUCKET, ""))
    setup.getresponse().read()
    setup.close()

    results: Any = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_client, args=(info, seconds, results))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="start-time samples")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--seconds", type=float, default=3.0, help="load duration")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    start_times = measure_start(args.starts)
    start_median = statistics.median(start_times)
    process, info, _ = start_emulator("--qps-scale", "1000000")
    try:
        rps, failed = measure_throughput(info, args.clients, args.seconds)
    finally:
        stop(process)

    print(
        f"start time: median {start_median:.3f} s over {args.starts} runs "
        f"(min {min(start_times):.3f}, max {max(start_times):.3f}; target < {START_TARGET_S} s)"
    )
    print(
        f"throughput: {rps:.0f} signed requests/s with {args.clients} keep-alive clients "
        f"for {args.seconds:g} s, {failed} failed (target >= {RPS_TARGET:.0f})"
    )
    summary = {
        "start_median_s": round(start_median, 3),
        "requests_per_s": round(rps),
        "failed": failed,
        "clients": args.clients,
    }
    print(json.dumps(summary))
    missed = start_median >= START_TARGET_S or rps < RPS_TARGET or failed
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
