"""`make demo`: a certificate renewal rolled out end to end, on a laptop, offline.

1. starts the emulator (`python -m emulator --port 0 --estate emulator/estates/demo.json`);
2. prints every domain and the certificate its live edge serves;
3. issues a renewed `*.example.com` certificate in the emulator's CAS;
4. sends a `certpilot.certificate.issued` CloudEvent through the deploy-cert handler
   exactly as Function Compute would (`python -m certpilot invoke deploy-cert`);
5. prints the rollout, then the domains again, and stops the emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "shared" / "python"))

from certpilot.cli.render import table  # noqa: E402
from certpilot.core.model import Inventory, Route  # noqa: E402
from certpilot.discovery import inventory as inventory_module  # noqa: E402
from certpilot.jobs.deploy_cert.engine import build_deps  # noqa: E402
from certpilot.probe.tls import probe_https  # noqa: E402

ESTATE = REPO / "emulator" / "estates" / "demo.json"
READY_TIMEOUT = 30.0
WHERE = {
    Route.OSS: "OSS (certificate hosting)",
    Route.CDN: "CDN",
    Route.BUCKET_DOMAIN: "bucket domain",
}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def say(text: str = "") -> None:
    print(text, flush=True)


def start_emulator(env: dict[str, str], log: Any) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start the emulator (its log to `log`) and return it with its ready line."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--port",
            "0",
            "--estate",
            str(ESTATE),
            "--watch-stdin",
        ],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    stdout = process.stdout
    assert stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(READY_TIMEOUT)
    if not lines or not lines[0].strip():
        process.kill()
        process.wait()
        log.seek(0)
        raise SystemExit(
            f"demo: the emulator did not start:\n{log.read().decode(errors='replace')}"
        )
    return process, json.loads(lines[0])


def stop_emulator(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()  # --watch-stdin: our lifeline
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.wait(10)


def admin(api: str, path: str, body: Any) -> Any:
    if not api.startswith("http://"):
        raise ValueError(f"unexpected emulator API URL {api!r}")
    request = urllib.request.Request(  # noqa: S310 (http:// checked above)
        f"{api}/_emulator/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with _NO_PROXY.open(request, timeout=30) as response:
        return json.loads(response.read())


def discover() -> Inventory:
    deps = build_deps(None)
    return inventory_module.discover(deps.clients, deps.settings)


def served_table(inventory: Inventory, edge: str, ca_bundle: str) -> str:
    """The domains and what the live edge serves for each."""
    now = datetime.now(timezone.utc)
    rows: list[tuple[object, ...]] = []
    for record in inventory.domains:
        if record.route is Route.BUCKET_DOMAIN or record.name.startswith("*."):
            continue
        served = probe_https(record.name, edge=edge, ca_bundle=ca_bundle, timeout=3)
        if served.fingerprint is None:
            rows.append((record.name, WHERE[record.route], "-", "-", served.error or "no HTTPS"))
            continue
        days = (served.not_after - now).days if served.not_after else None
        state = "ok" if served.ok else (served.error or "name mismatch")
        if served.ok and served.not_after and served.not_after <= now:
            state = "expired"
        rows.append(
            (
                record.name,
                WHERE[record.route],
                served.issuer,
                f"{days} days" if days is not None else "-",
                state,
            )
        )
    return table(["domain", "certificate lives on", "issuer", "expires in", "served"], rows)


def rollout_table(summary: dict[str, Any]) -> str:
    rows = [
        (r["domain"], r["route"], r["outcome"], r["reason"], r.get("detail") or "")
        for r in summary.get("results", [])
    ]
    return table(["domain", "route", "outcome", "reason", "why"], rows)


def main() -> int:
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    say("certpilot demo: a renewed *.example.com certificate, rolled out end to end")
    say("starting the emulator (OSS, CDN, CAS, FC and a live HTTPS edge) ...")
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    process, info = start_emulator(env, log)
    try:
        env.update(
            {
                "PYTHONPATH": str(REPO / "shared" / "python"),
                "CERTPILOT_ENDPOINT": info["api"],
                "ALIBABA_CLOUD_ACCESS_KEY_ID": info["access_key_id"],
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": info["access_key_secret"],
                "CERTPILOT_ACCOUNT_ID": info["account_id"],
                "CERTPILOT_EDGE_HTTPS": info["https"],
                "CERTPILOT_EDGE_HTTP": info["http"],
                "CERTPILOT_CA_BUNDLE": info["ca_bundle"],
                "CERTPILOT_VERIFY_DEADLINE": "15",
                "CERTPILOT_LOG_LEVEL": "WARNING",
            }
        )
        os.environ.clear()
        os.environ.update(env)

        say("\n== the domains, as their live edge serves them now ==")
        say(served_table(discover(), info["https"], info["ca_bundle"]))

        issued = admin(
            info["api"],
            "cas/issue",
            {"sans": ["*.example.com"], "days": 90, "name": "wildcard-example-com-renewed"},
        )
        say(
            f"\n== CAS issued certificate {issued['certId']} ({issued['name']}) "
            f"for *.example.com, valid until {issued['notAfter'][:10]} =="
        )
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "certpilot.demo",
            "type": "certpilot.certificate.issued",
            "time": datetime.now(timezone.utc).isoformat(),
            "aliyunaccountid": info["account_id"],
            "aliyunregionid": info.get("region", "cn-hangzhou"),
            "data": {"certId": issued["identifier"]},
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(event, handle)
            event_file = handle.name
        say("sending the certpilot.certificate.issued event through deploy-cert:")
        say(f"  python -m certpilot invoke deploy-cert --event {event_file}")
        run = subprocess.run(
            [sys.executable, "-m", "certpilot", "invoke", "deploy-cert", "--event", event_file],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        Path(event_file).unlink(missing_ok=True)
        try:
            summary = json.loads(run.stdout)
        except ValueError:
            sys.stderr.write(run.stdout + run.stderr)
            return 1
        counts = ", ".join(f"{n} {k}" for k, n in summary.get("counts", {}).items() if n)
        say(f"\n== rollout: {summary.get('status')} ({counts}) ==")
        say(rollout_table(summary))
        findings = summary.get("findings") or []
        if findings:
            say("\nfindings:")
            for finding in findings:
                say(f"  {finding['code']}  {finding['domain']}: {finding['message']}")

        say("\n== the domains again, from the live edge ==")
        say(served_table(discover(), info["https"], info["ca_bundle"]))
        say(f"\ndone in {time.monotonic() - started:.1f} s")
        return 0 if run.returncode in (0, 1) else run.returncode
    finally:
        stop_emulator(process)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
