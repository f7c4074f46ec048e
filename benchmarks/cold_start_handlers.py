"""Cold start per handler: a fresh process's first event, against the bare-SDK floor.

Used by `cold_start.py` (`measure_handlers`). One emulator (documented QPS, no latency
profile) holds a small estate: bucket `site-prod` (HTTPS-only) with the OSS custom
domain www.example.net, and the CDN domain cdn.example.net (HTTPS forced, HSTS, origin
over HTTPS), each with its own certificate. The events are representative cheap ones:

- deploy-cert `{"certId": <cdn.example.net's certificate>}`: one covered domain, already
  current (every run after the warm-up finds its binding in place);
- enforce-https `{"domain": "cdn.example.net"}`: already enforced;
- check-expiry `{"reportOnly": true, "scope": "cdn.example.net"}`: report-only, one domain.

A handler run is `python -c <runner>`: load `functions/<f>/index.py` by path with the
layer on PYTHONPATH (as FC does), hand it the event and an FC-like context, and report
the wall-clock time the handler returned; the time counted is from spawning the process
to then. After a warm-up run, the emulator's call log (`GET /_emulator/calls`) and edge
handshake log of one measured run give what the event needs: the floor is a fresh
process that imports only the SDKs of those services and makes the same calls (same
actions, same identifying parameters) with the raw SDK clients and the same TLS
handshakes with the stdlib, nothing else (no plain HTTP GET: the edge does not log them,
so the floor is if anything lower than the real one).

"compiled" runs the checkout as it is (byte code cached after the warm-up, as in the
layer `make layer` builds); "source only" runs a copy of the layer and of every
site-packages package the handler loaded, without `__pycache__`, with
PYTHONDONTWRITEBYTECODE=1: every module of ours and of the SDKs compiled at each start.
Peak RSS is each process's own (`os.wait4`). The suggested `memorySize` is the largest
peak times 2 (headroom for bigger accounts, the sweep aside), rounded up to 64 MB, at
least 128 MB; check-expiry's own at scale is the sweep benchmark's peak RSS.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.deploy_scale import Emulator, clean_env, table

REPO = Path(__file__).resolve().parents[1]
LAYER = REPO / "shared" / "python"
TARGET = 1.15
CDN_DOMAIN = "cdn.example.net"

ESTATE: dict[str, Any] = {
    "description": "cold_start: one OSS custom domain, one CDN domain, both healthy",
    "certificates": [
        {"name": "www-example-net", "sans": ["www.example.net"], "ca": "one", "days": 200},
        {"name": "cdn-example-net", "sans": [CDN_DOMAIN], "ca": "one", "days": 200},
        {"name": "backup-example-net", "sans": ["*.example.net"], "ca": "two", "days": 300},
    ],
    "buckets": [
        {
            "name": "site-prod",
            "region": "cn-hangzhou",
            "https_only": True,
            "objects": {"index.html": "<p>site</p>"},
            "cnames": [{"domain": "www.example.net", "certificate": "www-example-net"}],
        }
    ],
    "cdn_domains": [
        {
            "name": CDN_DOMAIN,
            "origin": "site-prod",
            "certificate": "cdn-example-net",
            "configs": {
                "https_force": {"enable": "on", "https_rewrite": "301"},
                "HSTS": {"enabled": "on", "https_hsts_max_age": 5184000},
                "forward_scheme": {"enable": "on", "scheme_origin": "https"},
            },
        }
    ],
}

RUNNER = """
import time, sys, os, json, importlib.util
from types import SimpleNamespace
path, name, event_path = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, os.path.dirname(path))
spec = importlib.util.spec_from_file_location("index", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
context = SimpleNamespace(
    request_id="cold-start",
    credentials=SimpleNamespace(
        access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
        access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
        security_token=None,
    ),
    function=SimpleNamespace(name=name, handler="index.handler", memory=512, timeout=300),
    region="cn-hangzhou",
)
with open(event_path, "rb") as f:
    event = f.read()
result = module.handler(event, context)
done = time.time()
text = result.decode() if isinstance(result, bytes) else result
summary = json.loads(text)
files = {n: getattr(m, "__file__", None) or "" for n, m in list(sys.modules.items())}
tops = sorted({n.split(".")[0] for n, f in files.items() if "site-packages" in f})
status = summary.get("status")
print(json.dumps({"done": done, "ok": summary.get("ok"), "status": status, "site": tops}))
"""

# The floor: bare SDK imports, then the same calls and handshakes. The plan (argv[1]) is
# {"calls": [[action, params], ...], "handshakes": [host, ...]}.
FLOOR = """
import time, sys, os, json
plan = json.loads(sys.argv[1])
services = {a.split(":")[0] for a, _ in plan["calls"]}
key = os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"]
secret = os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
api = os.environ["CERTPILOT_ENDPOINT"]
tea = {}
if services & {"cdn", "cas"}:
    from alibabacloud_tea_openapi import utils_models
    from darabonba.runtime import RuntimeOptions
    runtime = RuntimeOptions(autoretry=False, max_attempts=1)
    def config():
        return utils_models.Config(
            access_key_id=key, access_key_secret=secret, region_id="cn-hangzhou",
            endpoint=api.split("://")[1], protocol="http",
        )
if "cdn" in services:
    from alibabacloud_cdn20180510.client import Client as CdnClient
    from alibabacloud_cdn20180510 import models as cdn_models
    tea["cdn"] = (CdnClient(config()), cdn_models)
if "cas" in services:
    from alibabacloud_cas20200407.client import Client as CasClient
    from alibabacloud_cas20200407 import models as cas_models
    tea["cas"] = (CasClient(config()), cas_models)
if "oss" in services:
    import alibabacloud_oss_v2 as oss
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(key, secret)
    cfg.region = "cn-hangzhou"
    cfg.endpoint = api
    cfg.use_path_style = True
    oss_client = oss.Client(cfg)
FIELDS = {"DomainName": "domain_name", "FunctionNames": "function_names", "CertId": "cert_id",
          "ResourceType": "resource_type"}
def snake(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
for action, params in plan["calls"]:
    service, name = action.split(":")
    if service in tea:
        client, models = tea[service]
        fields = {FIELDS[k]: v for k, v in params.items() if k in FIELDS}
        if "cert_id" in fields:
            fields["cert_id"] = int(fields["cert_id"])
        if name == "ListUserCertificateOrder":
            fields["order_type"] = "CERT"
        if name == "GetUserCertificateDetail":
            fields["cert_filter"] = True
        request = getattr(models, name + "Request")(**fields)
        try:
            getattr(client, snake(name) + "_with_options")(request, runtime)
        except Exception as err:
            if "NotFound" not in type(err).__name__ + str(getattr(err, "code", "")):
                raise
    elif service == "oss":
        bucket = params.get("bucket")
        try:
            if name == "ListBuckets":
                oss_client.list_buckets(oss.models.ListBucketsRequest())
            else:
                request = getattr(oss.models, name + "Request")(bucket=bucket)
                getattr(oss_client, snake(name))(request)
        except oss.exceptions.OperationError as err:
            if "NoSuch" not in str(err):
                raise
    else:
        raise SystemExit("floor: no raw call for " + action)
if plan["handshakes"]:
    import socket, ssl
    context = ssl.create_default_context(cafile=os.environ["CERTPILOT_CA_BUNDLE"])
    context.check_hostname = False
    host, _, port = os.environ["CERTPILOT_EDGE_HTTPS"].rpartition(":")
    for name in plan["handshakes"]:
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=name) as tls:
                tls.getpeercert(binary_form=True)
print(json.dumps({"done": time.time()}))
"""


@dataclass
class Sample:
    """One fresh process: seconds from spawn to the event handled, its peak RSS."""

    seconds: float
    rss_mb: float
    report: dict[str, Any]


def spawn(argv: list[str], env: dict[str, str], cwd: Path) -> Sample:
    """Run `argv`; the time from spawn to the wall-clock `done` it prints, its peak RSS.

    Raises:
        SystemExit: the process failed.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.time()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace")
        if process.returncode != 0:
            tail = err.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"{argv[:3]} failed ({process.returncode}):\n{tail}")
    report = json.loads(text.strip().splitlines()[-1])
    return Sample(float(report["done"]) - started, usage.ru_maxrss / 1024, report)


@dataclass
class Handler:
    """One function and its cheap event."""

    name: str
    folder: str
    event: dict[str, Any]
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    site: list[str] = field(default_factory=list)
    status: str = ""


@dataclass
class Result:
    """What `measure_handlers` hands `cold_start.py`."""

    rows: list[dict[str, Any]]
    targets: list[dict[str, Any]]
    settings: dict[str, Any]
    markdown: str


def _env(emulator: Emulator, layer: Path, *, bytecode: bool) -> dict[str, str]:
    env = {
        **{k: v for k, v in clean_env().items() if k != "PYTHONPATH"},
        **emulator.certpilot_env(),
        "PYTHONPATH": str(layer),
        "CERTPILOT_LOG_LEVEL": "WARNING",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _plan(emulator: Emulator, since: int, handshakes_before: int) -> dict[str, Any]:
    calls = emulator.admin("GET", f"calls?since={since}")["calls"]
    shakes = emulator.admin("GET", "edge/handshakes")
    listed = shakes if isinstance(shakes, list) else shakes.get("handshakes", [])
    return {
        "calls": [
            [c["action"], c.get("params") or {}]
            for c in calls
            if not c["action"].startswith("pki:")  # a CA's OCSP/CRL, not the cloud API
        ],
        "handshakes": [h["host"] for h in listed[handshakes_before:]],
        "pki": sum(1 for c in calls if c["action"].startswith("pki:")),
    }


def _last_seq(emulator: Emulator) -> int:
    calls = emulator.admin("GET", "calls")["calls"]
    return int(calls[-1]["seq"]) if calls else 0


def _handshake_count(emulator: Emulator) -> int:
    shakes = emulator.admin("GET", "edge/handshakes")
    return len(shakes if isinstance(shakes, list) else shakes.get("handshakes", []))


def _source_copy(tmp: Path, packages: list[str]) -> Path:
    """A layer without byte code: certpilot and the site-packages packages listed."""
    layer = tmp / "layer"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(LAYER / "certpilot", layer / "certpilot", ignore=ignore)
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    for name in packages:
        if (site / name).is_dir():
            shutil.copytree(site / name, layer / name, ignore=ignore)
        elif (site / f"{name}.py").is_file():
            shutil.copy2(site / f"{name}.py", layer / f"{name}.py")
    shutil.copytree(REPO / "functions", tmp / "functions", ignore=ignore)
    return layer


def recommend_memory(peak_mb: float) -> int:
    """FC memorySize (MB) for a handler whose peak RSS is `peak_mb` (module docstring)."""
    return max(128, 64 * math.ceil(peak_mb * 2 / 64))


def measure_handlers(runs: int) -> Result:
    """Cold starts of the three handlers (module docstring)."""
    emulator = Emulator("--qps-scale", "1")
    handlers: list[Handler] = []
    try:
        loaded = emulator.admin("POST", "estate", ESTATE)
        cdn_cert = int(loaded["certificates"]["cdn-example-net"])
        handlers = [
            Handler("deploy-cert", "deploy_cert", {"certId": cdn_cert}),
            Handler("enforce-https", "enforce_https", {"domain": CDN_DOMAIN}),
            Handler("check-expiry", "check_expiry", {"reportOnly": True, "scope": CDN_DOMAIN}),
        ]
        with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp_name:
            tmp = Path(tmp_name)
            for h in handlers:
                event_file = tmp / f"{h.folder}.json"
                event_file.write_text(json.dumps(h.event))
                index = REPO / "functions" / h.folder / "index.py"
                argv = [sys.executable, "-c", RUNNER, str(index), h.name, str(event_file)]
                env = _env(emulator, LAYER, bytecode=True)
                spawn(argv, env, index.parent)  # warm-up: byte code, the first deploy
                since, shakes = _last_seq(emulator), _handshake_count(emulator)
                first = spawn(argv, env, index.parent)
                h.plan = _plan(emulator, since, shakes)
                h.site = list(first.report.get("site", []))
                h.status = str(first.report.get("status") or first.report.get("ok"))
                h.samples["compiled"] = [first] + [
                    spawn(argv, env, index.parent) for _ in range(runs - 1)
                ]
                floor_argv = [sys.executable, "-c", FLOOR, json.dumps(h.plan)]
                spawn(floor_argv, env, tmp)  # warm-up
                h.samples["floor compiled"] = [spawn(floor_argv, env, tmp) for _ in range(runs)]
            packages = sorted({p for h in handlers for p in h.site})
            layer = _source_copy(tmp / "source", packages)
            for h in handlers:
                event_file = tmp / f"{h.folder}.json"
                index = tmp / "source" / "functions" / h.folder / "index.py"
                argv = [sys.executable, "-c", RUNNER, str(index), h.name, str(event_file)]
                env = _env(emulator, layer, bytecode=False)
                h.samples["source only"] = [spawn(argv, env, index.parent) for _ in range(runs)]
                floor_argv = [sys.executable, "-c", FLOOR, json.dumps(h.plan)]
                h.samples["floor source only"] = [spawn(floor_argv, env, tmp) for _ in range(runs)]
    finally:
        emulator.stop()
    return _result(handlers, runs)


def _median(samples: list[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def _result(handlers: list[Handler], runs: int) -> Result:
    rows: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    for h in handlers:
        for mode in ("compiled", "source only"):
            ours, floor = h.samples[mode], h.samples[f"floor {mode}"]
            ratio = _median(ours) / _median(floor)
            peak = max(s.rss_mb for s in ours)
            calls: dict[str, int] = {}
            for action, _ in h.plan["calls"]:
                calls[action] = calls.get(action, 0) + 1
            rows.append(
                {
                    "handler": h.name,
                    "byte code": mode,
                    "first event ms": round(_median(ours) * 1000),
                    "floor ms": round(_median(floor) * 1000),
                    "ratio": round(ratio, 2),
                    "peak RSS MB": round(peak, 1),
                    "floor RSS MB": round(max(s.rss_mb for s in floor), 1),
                    "memorySize MB": recommend_memory(peak),
                    "calls": sum(calls.values()),
                    "handshakes": len(h.plan["handshakes"]),
                    "status": h.status,
                }
            )
            if mode == "compiled":
                targets.append(
                    {
                        "what": f"{h.name} first event",
                        "target": f"<= {TARGET}x floor",
                        "measured": f"{ratio:.2f}x",
                        "met": ratio <= TARGET,
                        "gap": f"{ratio / TARGET - 1:+.0%} over the target "
                        f"({(_median(ours) - TARGET * _median(floor)) * 1000:.0f} ms)",
                    }
                )
    headers = list(rows[0]) if rows else []
    calls_text = "; ".join(
        f"{h.name}: "
        + ", ".join(
            f"{a} x{n}"
            for a, n in sorted(
                {
                    a: sum(1 for b, _ in h.plan["calls"] if b == a) for a, _ in h.plan["calls"]
                }.items()
            )
        )
        + (f", CA (OCSP/CRL) x{h.plan['pki']}" if h.plan.get("pki") else "")
        for h in handlers
    )
    markdown = "\n".join(
        [
            f"Medians of {runs} fresh processes a row, from spawn to the handler's return "
            "(floor: to its last call), against a warm emulator (documented QPS, no latency "
            "profile).",
            "",
            table(headers, [[str(r[k]) for k in headers] for r in rows]),
            "",
            f"What each event needs (the floor replays it; CA requests are not replayed): "
            f"{calls_text}. memorySize: twice the peak RSS, rounded up to 64 MB (>= 128).",
        ]
    )
    return Result(
        rows=rows,
        targets=targets,
        settings={"events": {h.name: h.event for h in handlers}, "python": sys.version.split()[0]},
        markdown=markdown,
    )
