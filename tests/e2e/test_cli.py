"""`python -m certpilot plan` and `invoke` as people run them, against the emulator."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli_helpers import run_certpilot

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"

ESTATE: dict[str, Any] = {
    "certificates": [{"name": "old", "sans": ["*.example.com"], "days": 10}],
    "buckets": [
        {
            "name": "assets",
            "cnames": [
                {"domain": "static.example.com", "certificate": "old"},
                {"domain": "example.com"},
            ],
        }
    ],
    "cdn_domains": [{"name": "cdn.example.com", "origin": "assets", "certificate": "old"}],
}


@pytest.fixture
def account(cloud: Any) -> Any:
    cloud.load_estate(ESTATE)
    return cloud


def certpilot(
    cloud: Any, *args: str, stdin: bytes | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return run_certpilot(cloud, *args, stdin=stdin, env={"CERTPILOT_VERIFY_DEADLINE": "5", **env})


def issue(cloud: Any, **recipe: Any) -> dict[str, Any]:
    body = {"sans": ["*.example.com"], "name": f"cli-{uuid.uuid4().hex[:8]}", "days": 90}
    result: dict[str, Any] = cloud.admin("POST", "cas/issue", {**body, **recipe})
    return result


def test_plan_prints_the_dry_run_as_json_and_writes_nothing(account: Any) -> None:
    # given a renewed wildcard in CAS
    new = issue(account)
    # when planned as JSON
    run = certpilot(account, "plan", "--cert-id", str(new["certId"]), "--format", "json")
    # then the plan names the targets and the left-alone domains, and nothing changed
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)
    assert plan["certificate"]["certId"] == new["certId"]
    assert {a["domain"] for a in plan["actions"]} == {"static.example.com", "cdn.example.com"}
    assert {(s["domain"], s["reason"]) for s in plan["skipped"]} == {("example.com", "not-covered")}
    assert account.action_stats("oss:PutCname")["calls"] == 0
    assert account.action_stats("cdn:SetCdnDomainSSLCertificate")["calls"] == 0


def test_plan_text_table(account: Any) -> None:
    new = issue(account)
    run = certpilot(account, "plan", "--cert-id", new["identifier"])
    assert run.returncode == 0, run.stderr
    assert "static.example.com" in run.stdout and "deploy" in run.stdout
    assert "(dry run)" in run.stdout


def test_plan_of_a_refused_or_unknown_certificate_exits_1(account: Any) -> None:
    bad = issue(account, chain="leaf-only")
    refused = certpilot(account, "plan", "--cert-id", str(bad["certId"]))
    assert refused.returncode == 1
    assert "REFUSED" in refused.stdout and "CHAIN_INCOMPLETE" in refused.stdout
    unknown = certpilot(account, "plan", "--cert-id", "99999999")
    assert unknown.returncode == 1 and "no certificate 99999999" in unknown.stderr
    junk = certpilot(account, "plan", "--cert-id", "abc")
    assert junk.returncode == 2


def test_invoke_deploy_cert_with_an_event_file(account: Any, tmp_path: Path) -> None:
    # given a certificate-issued CloudEvent in a file, as the README documents it
    new = issue(account)
    event = json.loads((EVENTS / "deploy-cert.cloudevent.json").read_text())
    event["aliyunaccountid"] = account.account_id
    event["data"]["certId"] = new["identifier"]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    # when invoked locally
    run = certpilot(account, "invoke", "deploy-cert", "--event", str(path))
    # then the handler's JSON summary is printed and the exit code says ok
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert summary["status"] == "deployed" and summary["requestId"]
    assert summary["counts"]["deployed"] == 2
    assert account.access_key_secret not in run.stdout + run.stderr


def test_invoke_reads_the_event_from_stdin(account: Any) -> None:
    new = issue(account)
    payload = json.dumps({"certId": new["certId"], "dryRun": True}).encode()
    run = certpilot(account, "invoke", "deploy-cert", "--event", "-", stdin=payload)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["status"] == "dry-run"


def test_invoke_with_a_rejected_event_exits_1_with_the_error(account: Any) -> None:
    run = certpilot(account, "invoke", "deploy-cert", "--event", "-", stdin=b"{oops")
    assert run.returncode == 1
    assert json.loads(run.stdout)["error"]["type"] == "MalformedEvent"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("invoke", "nope", "--event", "x.json"), "unknown function"),
        (("invoke", "deploy-cert", "--event", "/nonexistent/e.json"), "cannot read"),
    ],
)
def test_invoke_usage_errors_exit_2(account: Any, args: tuple[str, ...], message: str) -> None:
    run = certpilot(account, *args)
    assert run.returncode == 2
    assert message in run.stderr


def test_invoke_of_a_function_not_written_yet_exits_2(account: Any, tmp_path: Path) -> None:
    # enforce-https and check-expiry are later issues: a missing index.py is a usage error
    (tmp_path / "deploy_cert").mkdir()
    run = certpilot(
        account,
        "invoke",
        "check-expiry",
        "--event",
        str(EVENTS / "deploy-cert.direct.json"),
        "--functions-dir",
        str(tmp_path),
    )
    assert run.returncode == 2
    assert "not implemented" in run.stderr


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ('{"ok": true, "status": "deployed"}', 0),
        ('{"status": "deployed"}', 1),  # no "ok": not a success
        ('{"ok": "yes"}', 1),
        ('{"ok": false}', 1),
        ("[]", 1),
        ("done", 1),
    ],
)
def test_invoke_exits_0_only_for_a_result_that_says_ok_true(
    account: Any, tmp_path: Path, answer: str, code: int
) -> None:
    # given a handler that answers `answer`
    (tmp_path / "deploy_cert").mkdir()
    (tmp_path / "deploy_cert" / "index.py").write_text(
        f"def handler(event, context):\n    return {answer!r}\n"
    )
    # when invoked, then only an explicit "ok": true exits 0; the answer is printed as is
    run = certpilot(
        account,
        "invoke",
        "deploy-cert",
        "--event",
        str(EVENTS / "deploy-cert.direct.json"),
        "--functions-dir",
        str(tmp_path),
    )
    assert run.returncode == code, run.stderr
    assert run.stdout.strip() == answer
