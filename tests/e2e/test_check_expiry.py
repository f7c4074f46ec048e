"""check-expiry end to end against the emulator's demo estate: the handler as FC calls
it, the emulator's call counts and state read back, the edge judged by an oracle that
is not certpilot's probe (`tests.tls_oracle`)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from certpilot.cli.invoke import load_handler
from tests import tls_oracle
from tests.e2e.deploy_helpers import bound
from tests.e2e.fc_helpers import register_deploy_cert

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DEMO = json.loads((REPO / "emulator" / "estates" / "demo.json").read_text())

# What the demo estate is built to show, per domain (its notes): each must be reported.
EXPECTED = {
    "static.example.com": {"CERT_EXPIRING"},
    "files.example.com": {"CERT_EXPIRING", "NO_BACKUP"},
    "example.com": {"WILDCARD_LEVEL", "CERT_EXPIRING"},
    "a.b.example.com": {"WILDCARD_LEVEL", "NO_BACKUP"},
    "docs.example.com": {"NO_CERTIFICATE"},
    "old.example.com": {"CERT_EXPIRED"},
    "future.example.com": {"CERT_NOT_YET_VALID"},
    "shop.example.com": {"NAME_MISMATCH"},
    "partial.example.com": {"CHAIN_INCOMPLETE"},
    "order.example.com": {"CHAIN_ORDER"},
    "internal.example.com": {"UNTRUSTED_ROOT"},
    "legacy.example.com": {"WEAK_KEY"},
    "sha1.example.com": {"WEAK_SIGNATURE"},
    "video.example.com": {"WRONG_LOCATION"},
    "media.example.com": {"HTTP_NOT_FORCED", "CERT_EXPIRING", "NO_BACKUP"},
    "cdn.example.com": {"CERT_EXPIRING"},
    "www.example.com": set(),
    "img.example.com": {"HTTP_NOT_FORCED", "HSTS_MISSING", "NO_BACKUP", "CERT_EXPIRING"},
    "download.example.com": {"SERVED_MISMATCH"},
}
# DESIGN §6 codes the demo estate contains (KEY_MISMATCH and NOT_PEM only as files, for
# diagnose-cert; CERT_REVOKED as a certificate CAS holds that its CA revoked).
ESTATE_CODES = set().union(*EXPECTED.values()) | {"CERT_REVOKED"}
READ_PREFIXES = ("List", "Describe", "Get")
REPORTS = "ops-reports"


@functools.cache
def handler() -> Callable[[bytes, Any], Any]:
    """check-expiry's entry point, loaded from its file as FC loads it."""
    loaded: Callable[[bytes, Any], Any] = load_handler(
        REPO / "functions" / "check_expiry" / "index.py", "check_expiry"
    )
    return loaded


def invoke(cloud: Any, event: dict[str, Any] | bytes) -> dict[str, Any]:
    """Call the handler as FC does: bytes in, JSON text out."""
    data = event if isinstance(event, bytes) else json.dumps(event).encode()
    context = SimpleNamespace(
        request_id=str(uuid.uuid4()),
        credentials=SimpleNamespace(
            access_key_id=cloud.access_key_id,
            access_key_secret=cloud.access_key_secret,
            security_token=cloud.security_token,
        ),
        function=SimpleNamespace(name="check-expiry", handler="index.handler", timeout=120),
        region="cn-hangzhou",
    )
    summary: dict[str, Any] = json.loads(handler()(data, context))
    return summary


def demo(
    cloud: Any, monkeypatch: pytest.MonkeyPatch, *, reports: bool = False, **env: str
) -> dict[str, int]:
    """Point certpilot at the emulator and load the demo estate (`reports`: plus a bucket
    for the reports, `CERTPILOT_REPORT_BUCKET`)."""
    extra = {"CERTPILOT_REPORT_BUCKET": REPORTS} if reports else {}
    for name, value in {
        **cloud.certpilot_env(),
        "CERTPILOT_LOG_LEVEL": "WARNING",
        **extra,
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    estate = {**DEMO, "buckets": [*DEMO["buckets"], {"name": REPORTS}]} if reports else DEMO
    ids: dict[str, int] = cloud.load_estate(estate)
    return ids


def deploy_calls(cloud: Any) -> int:
    """How many times deploy-cert was invoked (the emulator's FC call log)."""
    return len(cloud.invocations("certpilot-deploy-cert"))


def timer(payload: str = '{"reportOnly": true}') -> dict[str, Any]:
    return {"triggerTime": "2026-12-06T02:00:00Z", "triggerName": "daily", "payload": payload}


def rows(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["domain"]: row for row in summary["rows"]}


def codes_of(row: dict[str, Any]) -> set[str]:
    return {f["code"] for f in row["findings"]}


def test_first_sweep_reports_every_code_of_the_demo_estate_and_changes_nothing(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the demo estate, and the account as it was before the sweep
    demo(cloud, monkeypatch)
    before = cloud.state()
    # when the daily timer fires
    summary = invoke(cloud, timer())
    # then every domain is judged and shows what the estate was built to show
    assert summary["ok"] is True, summary
    assert summary["reportOnly"] is True
    assert summary["repairs"] == []
    assert summary["status"] == "findings"
    assert summary["allClear"] is False
    assert summary["notJudged"] == []
    found = rows(summary)
    assert set(found) == set(EXPECTED)
    for domain, expected in EXPECTED.items():
        assert expected <= codes_of(found[domain]), (domain, found[domain]["findings"])
    assert codes_of(found["www.example.com"]) == set()
    # and the whole estate's codes are reported, nothing the estate does not contain
    reported = {code for code in summary["totals"]["byCode"]}
    assert reported == ESTATE_CODES
    # and report-only means reads only: no write reached the cloud, the state is the same
    actions = cloud.stats()["actions"]
    # (pki:OCSP / pki:CRL are the test CA's revocation answers, not cloud calls)
    cloud_calls = [a for a in actions if a.split(":", 1)[0] in ("oss", "cdn", "cas", "fc")]
    assert "oss:ListCname" in cloud_calls
    writes = [a for a in cloud_calls if not a.split(":", 1)[1].startswith(READ_PREFIXES)]
    assert writes == []
    assert cloud.state() == before


def test_fewest_calls_one_listing_per_kind_and_one_policy_read_per_bucket(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo(cloud, monkeypatch)
    invoke(cloud, timer())
    calls = {a: c["calls"] for a, c in cloud.stats()["actions"].items()}
    assert calls["oss:ListBuckets"] == 1
    assert calls["oss:ListCname"] == 2  # one per bucket, not per domain
    assert calls["cdn:DescribeUserDomains"] == 1
    assert calls["cdn:DescribeCdnHttpsDomainList"] == 1
    assert calls["oss:GetBucketPolicy"] == 2
    # the CDN certificates' CAS ids come from the CAS listing, by name
    assert calls.get("cdn:DescribeDomainCertificateInfo", 0) == 0
    assert calls.get("cdn:DescribeCdnDomainConfigs", 0) == 0


def test_what_the_sweep_says_of_the_edge_is_what_a_client_sees(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo(cloud, monkeypatch)
    found = rows(invoke(cloud, timer()))
    edge, bundle = cloud.https, cloud.ca_bundle
    # the served fingerprint of SERVED_MISMATCH is what the edge serves
    mismatch = next(
        f for f in found["download.example.com"]["findings"] if f["code"] == "SERVED_MISMATCH"
    )
    assert tls_oracle.handshake(edge, "download.example.com", bundle).sha256 == mismatch["served"]
    assert mismatch["configured"] != mismatch["served"]
    # a clean row is a certificate a verifying client accepts; rejected ones are not
    assert tls_oracle.handshake(edge, "www.example.com", bundle).verified
    for domain in ("legacy.example.com", "sha1.example.com", "internal.example.com"):
        assert not tls_oracle.handshake(edge, domain, bundle).verified, domain


def test_scope_by_bucket_and_by_domain_glob(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    demo(cloud, monkeypatch)
    by_bucket = invoke(cloud, timer(json.dumps({"scope": "media-prod", "reportOnly": True})))
    # img.example.com is a CDN domain whose origin is the bucket
    assert set(rows(by_bucket)) == {"media.example.com", "img.example.com"}
    by_domain = invoke(cloud, {"scope": "www.*", "reportOnly": True})
    assert set(rows(by_domain)) == {"www.example.com"}
    assert by_domain["scope"] == "www.*"


@pytest.mark.parametrize(
    "event",
    [
        {"reportOnly": "yes"},
        {"scope": ""},
        {"scope": 7},
        {"bogus": 1},
        timer("not json"),
        timer(json.dumps({"scope": "a b"})),
        timer(json.dumps(["list"])),
        {"triggerTime": "t", "triggerName": "daily", "payload": "", "extra": 1},
        b"[1, 2]",
        b"\xff",
    ],
)
def test_bad_options_are_rejected_clearly_before_any_call(
    cloud: Any, monkeypatch: pytest.MonkeyPatch, event: Any
) -> None:
    for name, value in cloud.certpilot_env().items():
        monkeypatch.setenv(name, value)
    summary = invoke(cloud, event)
    assert summary["ok"] is False
    assert summary["status"] == "rejected"
    assert summary["error"]["message"]
    assert cloud.stats()["actions"] == {}


def test_faults_end_with_not_judged_domains_never_a_false_all_clear(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the demo estate, with calls failing while the sweep runs: one bucket's
    # policy read keeps failing, one certificate's CAS detail keeps failing, the CDN
    # HTTPS listing is throttled twice (then answers) and the bucket listing dropped once
    ids = demo(cloud, monkeypatch, CERTPILOT_MAX_ATTEMPTS="2", CERTPILOT_RETRY_DEADLINE="3")
    cloud.faults(
        {
            "action": "oss:GetBucketPolicy",
            "where": {"bucket": "media-prod"},
            "error": {"code": "InternalError", "status": 500},
        },
        {
            "action": "cas:GetUserCertificateDetail",
            "where": {"CertId": str(ids["partial-example-com"])},
            "error": {"code": "ServiceUnavailable", "status": 503},
        },
        {
            "action": "cdn:DescribeCdnHttpsDomainList",
            "error": {"code": "Throttling.User", "status": 400},
            "times": 1,
        },
        {"action": "oss:ListCname", "drop": True, "times": 1},
    )
    # when the sweep runs
    summary = invoke(cloud, timer())
    # then the affected domains are NOT_JUDGED, named, and the sweep is not clear
    assert summary["ok"] is True, summary
    assert summary["status"] == "incomplete"
    assert summary["allClear"] is False
    assert set(summary["notJudged"]) == {"media.example.com", "partial.example.com"}
    found = rows(summary)
    for domain in summary["notJudged"]:
        assert found[domain]["judged"] is False
        assert "NOT_JUDGED" in codes_of(found[domain])
    # and every other domain is judged as without faults
    assert found["www.example.com"]["judged"] is True
    assert EXPECTED["img.example.com"] <= codes_of(found["img.example.com"])


def test_a_listing_that_keeps_failing_is_an_error_not_a_report(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo(cloud, monkeypatch, CERTPILOT_MAX_ATTEMPTS="2", CERTPILOT_RETRY_DEADLINE="2")
    cloud.faults(action="cdn:DescribeUserDomains", error={"code": "InternalError", "status": 500})
    summary = invoke(cloud, timer())
    assert summary["ok"] is False
    assert summary["status"] == "error"
    assert "allClear" not in summary


def test_cli_sweep_writes_the_report_and_says_errors_remain(
    cloud: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    demo(cloud, monkeypatch)
    env = {**os.environ, **cloud.certpilot_env(), "CERTPILOT_LOG_LEVEL": "WARNING"}
    report = tmp_path / "sweep.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "certpilot",
            "sweep",
            "--report-only",
            "--format",
            "json",
            "--output",
            str(report),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert "sweeping [" not in done.stderr  # no progress bar when not on a terminal
    stored = json.loads(report.read_text())
    assert {d["domain"] for d in stored["domains"]} == set(EXPECTED)
    assert stored["run"]["reportOnly"] is True
    page = subprocess.run(
        [
            sys.executable,
            "-m",
            "certpilot",
            "sweep",
            "--report-only",
            "--format",
            "html",
            "--scope",
            "www.*",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert page.returncode == 0, page.stderr
    assert "<table" in page.stdout and "www.example.com" in page.stdout
    assert "PRIVATE KEY" not in page.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "certpilot", "sweep", "--scope", "a b"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2


def test_repairs_invoke_deploy_cert_once_per_certificate_and_the_edge_follows(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the demo estate and deploy-cert as an FC function (its handler and the layer),
    # and a bucket for the reports
    ids = demo(cloud, monkeypatch, reports=True)
    register_deploy_cert(cloud)
    # when the timer fires without reportOnly
    summary = invoke(cloud, timer(""))
    # then deploy-cert is invoked asynchronously, once per certificate, never with the
    # certificate its CA revoked
    assert summary["reportOnly"] is False
    repairs = summary["repairs"]
    invoked = [r["casId"] for r in repairs]
    assert len(invoked) == len(set(invoked)) > 0
    assert ids["wildcard-example-com-revoked"] not in invoked
    assert all(r["status"] == "pending" for r in repairs)
    by_domain = {d: r["casId"] for r in repairs for d in r["domains"]}
    assert by_domain["static.example.com"] == ids["backup-ca-two"]  # expires last
    assert by_domain["old.example.com"] == ids["wildcard-example-com"]  # expired: replaced
    assert by_domain["example.com"] == ids["www-apex-example-com"]  # the apex fits
    assert "files.example.com" not in by_domain  # nothing better in CAS
    assert rows(summary)["static.example.com"]["repairs"][0]["casId"] == ids["backup-ca-two"]
    records = cloud.invocations("certpilot-deploy-cert")
    assert len(records) == len(repairs)
    for record in records:
        cloud.wait_invocation(record["requestId"], timeout=90)
    # and the control plane binds each repaired domain to the certificate rolled out
    # (two rollouts cover the apex: either may land last), the others untouched
    now_bound = bound(cloud)
    assert now_bound["old.example.com"] == ids["wildcard-example-com"]
    assert now_bound["static.example.com"] == ids["backup-ca-two"]
    assert now_bound["example.com"] in {r["casId"] for r in repairs}
    assert now_bound["files.example.com"] == ids["wildcard-example-com"]
    # and the edge serves the repaired domains' new certificates, verified by a client
    edge, bundle = cloud.https, cloud.ca_bundle
    assert tls_oracle.handshake(edge, "old.example.com", bundle).verified
    assert tls_oracle.handshake(edge, "example.com", bundle).verified
    # when the next sweep runs, repairing too
    second = invoke(cloud, timer(""))
    after = rows(second)
    # then nothing CAS can repair is left: no rollout; enforcement is restored only
    # where it waited for the certificate the first sweep rolled out (HTTPS first)
    assert second["reportOnly"] is False
    assert second["repairs"] == []
    deployed = {
        result["domain"]
        for record in cloud.invocations("certpilot-deploy-cert")
        for result in json.loads(record["result"] or "{}").get("results", [])
        if result["outcome"] == "deployed"
    }
    assert {d for r in second["restored"] for d in r["domains"]} <= deployed
    assert all(r["status"] == "confirmed" for r in second["restored"])
    assert deploy_calls(cloud) == len(records)
    # and the next sweep confirms what landed
    settled = {(s["domain"], s["casId"]): s["status"] for s in second["settledRepairs"]}
    assert settled[("old.example.com", ids["wildcard-example-com"])] == "confirmed"
    # (two rollouts cover the apex and may land in either order: fixed is what counts)
    assert settled[("example.com", ids["www-apex-example-com"])] == "confirmed"
    assert "CERT_EXPIRED" not in codes_of(after["old.example.com"])
    assert "WILDCARD_LEVEL" not in codes_of(after["example.com"])
    assert "CERT_EXPIRING" not in codes_of(after["static.example.com"])


def test_report_stored_and_a_change_notified_once_signed(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import hmac
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import alibabacloud_oss_v2 as oss

    secret = "hook-secret-0123456789abcdef"
    received: list[tuple[dict[str, str], bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        # given the demo estate plus a bucket for reports, and a signed generic webhook
        for name, value in {
            **cloud.certpilot_env(),
            "CERTPILOT_LOG_LEVEL": "WARNING",
            "CERTPILOT_REPORT_BUCKET": "ops-reports",
            "CERTPILOT_WEBHOOK_URL": f"http://127.0.0.1:{server.server_address[1]}/hook",
            "CERTPILOT_WEBHOOK_SECRET": secret,
        }.items():
            monkeypatch.setenv(name, value)
        cloud.load_estate({**DEMO, "buckets": [*DEMO["buckets"], {"name": "ops-reports"}]})
        # when the sweep runs twice
        first = invoke(cloud, timer())
        second = invoke(cloud, timer())
    finally:
        server.shutdown()
        server.server_close()
    # then each run stored its report, dated and as `latest`
    assert first["report"]["stored"] is True, first["report"]
    assert "certpilot/reports/latest.json" in first["report"]["keys"]
    client = cloud.oss_client()

    def read(key: str) -> bytes:
        got = client.get_object(oss.GetObjectRequest(bucket="ops-reports", key=key))
        data: bytes = got.body.read()
        return data

    latest = json.loads(read("certpilot/reports/latest.json"))
    assert latest["run"]["id"] == second["requestId"]
    assert {d["domain"] for d in latest["domains"]} == set(EXPECTED)
    page = read("certpilot/reports/latest.html").decode()
    assert "<table" in page and "PRIVATE KEY" not in page
    # and the webhook got one signed message about the first run's problems, none after
    assert len(received) == 1
    headers, body = received[0]
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-certpilot-signature"] == f"sha256={mac}"
    assert first["notify"]["notification"] is not None
    assert second["notify"]["notification"] is None
    assert second["notify"]["alerts"] == first["notify"]["alerts"]


def test_an_emergency_fallback_is_reported_until_it_ends(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the demo estate, with an emergency HTTP fallback started for a CDN domain
    demo(cloud, monkeypatch)
    env = {**os.environ, **cloud.certpilot_env(), "CERTPILOT_LOG_LEVEL": "WARNING"}
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "certpilot",
            "fallback",
            "--domain",
            "cdn.example.com",
            "--for",
            "2h",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    # when the sweep runs
    found = rows(invoke(cloud, timer()))
    # then the domain says so, with the end, rather than HTTP_NOT_FORCED
    codes = codes_of(found["cdn.example.com"])
    assert "FALLBACK_ACTIVE" in codes
    assert "HTTP_NOT_FORCED" not in codes
    [finding] = [f for f in found["cdn.example.com"]["findings"] if f["code"] == "FALLBACK_ACTIVE"]
    assert finding["until"]
