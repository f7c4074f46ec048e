"""check-expiry past one invocation, end to end: check-expiry registered as a function
of the emulator's FC, invoked, fans out to asynchronous invocations of itself over
disjoint scopes; the last shard merges the report and notifies once. The merged report
is compared with one unsplit sweep of the same estate: the same report and the same CAS
calls (the coordinator reads the catalog once and hands it to the shards through the
report bucket; the payloads only name the run's objects)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.fc_helpers import REPO, fc_context, fc_handler
from tests.e2e.test_check_expiry import DEMO, EXPECTED, codes_of, invoke, rows, timer

pytestmark = pytest.mark.e2e

FUNCTION = "certpilot-check-expiry"
REPORTS = "ops-reports"
PREFIX = "certpilot/reports"
SHARD_SIZE = 4
SMALL_PAYLOAD = 4 * 1024
CAS_READS = ("cas:ListUserCertificateOrder", "cas:GetUserCertificateDetail")


class Receiver:
    """A local webhook: every POST body it got."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        received = self.bodies

        class Hook(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


def register_check_expiry(cloud: Any, **env: str) -> None:
    """check-expiry as FC runs it: its handler, the layer, the environment pointing it at
    the emulator (credentials from the context), reports in `REPORTS`, no async retries."""
    base = {
        k: v
        for k, v in cloud.certpilot_env().items()
        if not k.startswith("ALIBABA_CLOUD_") and k != "CERTPILOT_ACCOUNT_ID"
    }
    cloud.register_function(
        FUNCTION,
        REPO / "functions" / "check_expiry" / "index.py",
        env={
            **base,
            "CERTPILOT_LOG_LEVEL": "WARNING",
            "CERTPILOT_REPORT_BUCKET": REPORTS,
            "CERTPILOT_SHARD_SIZE": str(SHARD_SIZE),
            **env,
        },
        layers=[REPO / "shared" / "python"],
        timeout=120,
        async_retries=0,
    )


def invoke_sync(cloud: Any, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke the registered check-expiry synchronously through FC's API (as a timer
    trigger would, but waiting for the coordinator's answer)."""
    from alibabacloud_fc20230330 import models
    from darabonba.runtime import RuntimeOptions

    response = cloud.fc_client().invoke_function_with_options(
        FUNCTION,
        models.InvokeFunctionRequest(body=json.dumps(event).encode(), qualifier="LATEST"),
        models.InvokeFunctionHeaders(x_fc_invocation_type="Sync"),
        RuntimeOptions(read_timeout=120_000),
    )
    body = response.body.read() if hasattr(response.body, "read") else response.body
    summary: dict[str, Any] = json.loads(body)
    return summary


def read_object(cloud: Any, key: str) -> bytes | None:
    import alibabacloud_oss_v2 as oss

    try:
        got = cloud.oss_client().get_object(oss.GetObjectRequest(bucket=REPORTS, key=key))
    except oss.exceptions.OperationError:
        return None
    data: bytes = got.body.read()
    return data


def keys(cloud: Any, prefix: str) -> list[str]:
    import alibabacloud_oss_v2 as oss

    result = cloud.oss_client().list_objects_v2(
        oss.ListObjectsV2Request(bucket=REPORTS, prefix=prefix, max_keys=1000)
    )
    return [str(o.key) for o in result.contents or []]


def wait_shards(cloud: Any, coordinator: str, timeout: float = 240.0) -> list[dict[str, Any]]:
    """Poll until every asynchronous check-expiry invocation has finished; their
    records (the shard invocations)."""
    deadline = time.monotonic() + timeout
    while True:
        shards = [
            r
            for r in cloud.invocations(FUNCTION)
            if r["invocationType"] == "Async" and r["requestId"] != coordinator
        ]
        if shards and all(r["status"] != "running" for r in shards):
            return shards
        if time.monotonic() > deadline:
            raise TimeoutError("shards still running")
        time.sleep(0.2)


def cas_reads(cloud: Any) -> dict[str, int]:
    """The CAS listing and detail calls made so far."""
    return {action: cloud.action_stats(action)["calls"] for action in CAS_READS}


def since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {action: after[action] - before[action] for action in after}


def private_key_header() -> str:
    # Built here: no PEM private-key header line is ever committed.
    return "-----BEGIN " + "PRIVATE" + " KEY"


def unsplit(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """One report-only sweep of the estate in one invocation (no report, no webhook):
    each domain's finding codes."""
    for name, value in {
        **cloud.certpilot_env(),
        "CERTPILOT_LOG_LEVEL": "WARNING",
        "CERTPILOT_SHARD_SIZE": "0",
    }.items():
        monkeypatch.setenv(name, value)
    summary = invoke(cloud, timer())
    assert summary["status"] == "findings", summary
    return {domain: codes_of(row) for domain, row in rows(summary).items()}


def test_a_sweep_split_into_shards_reports_what_one_unsplit_sweep_reports(
    cloud: Any, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    # given the demo estate (plus a bucket for the reports), swept once unsplit
    cloud.load_estate({**DEMO, "buckets": [*DEMO["buckets"], {"name": REPORTS}]})
    reads = cas_reads(cloud)
    whole = unsplit(cloud, monkeypatch)
    unsplit_reads = since(reads, cas_reads(cloud))
    assert set(whole) == set(EXPECTED)
    # and check-expiry registered in FC with shards of 4 domains and a webhook
    register_check_expiry(cloud, CERTPILOT_WEBHOOK_URL=receiver.url)
    before = cloud.stats()["actions"]
    reads = cas_reads(cloud)
    started = time.monotonic()
    # when the timer fires it
    summary = invoke_sync(cloud, timer())
    shards = wait_shards(cloud, summary["requestId"])
    elapsed = time.monotonic() - started
    # then the coordinator planned several shards and invoked itself once per shard,
    # asynchronously, each payload small: it names the run's objects, no records
    assert summary["status"] == "fanned-out", summary
    planned = summary["shards"]
    assert len(planned) >= 3
    assert summary["notInvoked"] == []
    assert len(shards) == len(planned)
    events = [json.loads(r["event"]) for r in shards]
    assert all(len(r["event"].encode()) < SMALL_PAYLOAD for r in shards)
    assert all("records" not in e["shard"] for e in events)
    assert sorted(e["shard"]["index"] for e in events) == list(range(len(planned)))
    assert all(e["reportOnly"] is True for e in events)
    run = f"{PREFIX}/runs/{summary['run']}"
    assert {e["shard"]["catalog"] for e in events} == {f"{run}/catalog.json"}
    # over disjoint scopes that cover the estate, each within the shard size
    tasks = {
        e["shard"]["index"]: json.loads(read_object(cloud, e["shard"]["object"]) or b"{}")
        for e in events
    }
    held = [[r["name"] for r in t["records"]] for t in tasks.values()]
    assert all(0 < len(names) <= SHARD_SIZE for names in held)
    flat = [name for names in held for name in names]
    assert len(flat) == len(set(flat))
    assert set(flat) == set(whole)
    assert [tasks[s["index"]]["scope"] for s in planned] == [s["scope"] for s in planned]
    # and every shard answered; exactly one merged the run
    answers = [json.loads(r["result"]) for r in shards]
    assert all(r["status"] == "succeeded" for r in shards), [r["error"] for r in shards]
    assert all(a["status"] == "shard" and a["error"] is None for a in answers), answers
    assert sum(1 for a in answers if a["merged"]) == 1
    assert len(keys(cloud, f"{run}/parts/")) == len(planned)
    assert read_object(cloud, f"{run}/merged") is not None
    # and the shards did not list the account again: one inventory, the coordinator's
    after = cloud.stats()["actions"]

    def delta(action: str) -> int:
        return int(after.get(action, {}).get("calls", 0) - before.get(action, {}).get("calls", 0))

    assert delta("oss:ListBuckets") == 1
    assert delta("cdn:DescribeUserDomains") == 1
    assert delta("oss:ListCname") == len(DEMO["buckets"]) + 1  # once per bucket
    # and the whole run read CAS as one unsplit sweep does: the coordinator's catalog
    fanned_reads = since(reads, cas_reads(cloud))
    listings = "cas:ListUserCertificateOrder"
    assert fanned_reads[listings] == unsplit_reads[listings]
    details = "cas:GetUserCertificateDetail"
    assert fanned_reads[details] <= unsplit_reads[details]
    assert fanned_reads[listings] > 0
    # and no object of the run holds private-key material
    header = private_key_header()
    stored = keys(cloud, f"{run}/")
    assert f"{run}/catalog.json" in stored
    assert all(header not in (read_object(cloud, key) or b"").decode() for key in stored)
    # and the merged report holds the same domains with the same codes as the unsplit sweep
    latest = json.loads(read_object(cloud, f"{PREFIX}/latest.json") or b"{}")
    assert latest["run"]["id"] == summary["run"]
    merged = {d["domain"]: {f["code"] for f in d["findings"]} for d in latest["domains"]}
    assert merged == whole
    assert latest["run"]["domainsNotJudged"] == 0
    assert latest["run"]["allClear"] is False
    # and one notification was sent, by the merge
    assert len(receiver.bodies) == 1
    assert latest["notification"] is not None
    print(
        f"fan-out: {len(planned)} shards of <= {SHARD_SIZE} domains in {elapsed:.1f} s,"
        f" CAS reads {fanned_reads} (unsplit {unsplit_reads})"
    )


def test_a_shard_never_run_leaves_its_scope_not_judged_never_an_all_clear(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the demo estate and check-expiry in FC with shards of 4 domains; the
    # coordinator runs here (FC's context names the function) without retries, and the
    # first asynchronous invocation it makes fails
    cloud.load_estate({**DEMO, "buckets": [*DEMO["buckets"], {"name": REPORTS}]})
    register_check_expiry(cloud)
    for name, value in {
        **cloud.certpilot_env(),
        "CERTPILOT_LOG_LEVEL": "WARNING",
        "CERTPILOT_REPORT_BUCKET": REPORTS,
        "CERTPILOT_SHARD_SIZE": str(SHARD_SIZE),
        "CERTPILOT_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    cloud.faults(
        {
            "action": "fc:InvokeFunction",
            "error": {"code": "ServiceUnavailable", "status": 503},
            "times": 1,
        }
    )
    # when the timer fires
    context = fc_context(cloud, FUNCTION)
    summary = json.loads(fc_handler("check_expiry")(json.dumps(timer()).encode(), context))
    shards = wait_shards(cloud, summary["requestId"])
    # then the shard never invoked is said, the others ran, and the run merged once
    assert summary["status"] == "fanned-out", summary
    assert summary["notInvoked"] == [0]
    assert len(shards) == len(summary["shards"]) - 1
    answers = [json.loads(r["result"]) for r in shards]
    assert all(a["error"] is None for a in answers), answers
    assert sum(1 for a in answers if a["merged"]) + int(summary["merged"]) == 1
    # and the merged report names that shard's domains NOT_JUDGED, every other judged
    latest = json.loads(read_object(cloud, f"{PREFIX}/latest.json") or b"{}")
    assert latest["run"]["id"] == summary["run"]
    unjudged = {
        d["domain"]
        for d in latest["domains"]
        if any(f["code"] == "NOT_JUDGED" for f in d["findings"])
    }
    plan = json.loads(read_object(cloud, f"{PREFIX}/runs/{summary['run']}/plan.json") or b"{}")
    assert unjudged == {d["domain"] for d in plan["shards"][0]["domains"]}
    assert len(unjudged) == summary["shards"][0]["domains"] > 0
    assert latest["run"]["domainsNotJudged"] == len(unjudged)
    assert latest["run"]["allClear"] is False
    assert {d["domain"] for d in latest["domains"]} == set(EXPECTED)


def test_a_run_whose_shard_died_is_closed_by_the_next_sweep_with_its_scope_not_judged(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import alibabacloud_oss_v2 as oss

    from certpilot.jobs.check_expiry.report import run_key

    # given check-expiry in FC with shards of 4 domains, and the part of shard 1 never
    # written (as when its worker dies on every attempt)
    cloud.load_estate({**DEMO, "buckets": [*DEMO["buckets"], {"name": REPORTS}]})
    register_check_expiry(cloud, CERTPILOT_RETRY_DEADLINE="5")
    for name, value in {
        **cloud.certpilot_env(),
        "CERTPILOT_LOG_LEVEL": "WARNING",
        "CERTPILOT_REPORT_BUCKET": REPORTS,
        "CERTPILOT_SHARD_SIZE": str(SHARD_SIZE),
    }.items():
        monkeypatch.setenv(name, value)
    context = fc_context(cloud, FUNCTION)
    context.function.timeout = 120
    run = context.request_id
    cloud.faults(
        {
            "action": "oss:PutObject",
            "where": {"key": f"{PREFIX}/runs/{run}/parts/00001.json"},
            "error": {"code": "InternalError", "status": 500},
            "times": 100,
        }
    )
    # when the timer fires
    first = json.loads(fc_handler("check_expiry")(json.dumps(timer()).encode(), context))
    answers = [json.loads(r["result"]) for r in wait_shards(cloud, run)]
    # then the run stays open: no shard merged it, no report claims anything
    assert first["status"] == "fanned-out", first
    assert not any(a.get("merged") for a in answers)
    assert read_object(cloud, f"{PREFIX}/latest.json") is None
    # when its deadline has passed and the next sweep runs
    plan_key = f"{PREFIX}/runs/{run}/plan.json"
    plan = json.loads(read_object(cloud, plan_key) or b"{}")
    assert plan["deadline"] is not None
    plan["deadline"] = "2000-01-01T00:00:00Z"
    cloud.oss_client().put_object(
        oss.PutObjectRequest(bucket=REPORTS, key=plan_key, body=json.dumps(plan).encode())
    )
    cloud.clear_faults()
    later = fc_context(cloud, FUNCTION)
    later.function.timeout = 120
    second = json.loads(fc_handler("check_expiry")(json.dumps(timer()).encode(), later))
    wait_shards(cloud, later.request_id)
    # then it closed the stale run: shard 1's domains NOT_JUDGED, every other judged
    assert second["closedRuns"] == [run]
    started = datetime.fromisoformat(plan["started"].replace("Z", "+00:00"))
    closed = json.loads(read_object(cloud, run_key(PREFIX, run, started) + ".json") or b"{}")
    assert closed["run"]["id"] == run
    unjudged = {
        d["domain"]
        for d in closed["domains"]
        if any(f["code"] == "NOT_JUDGED" for f in d["findings"])
    }
    assert unjudged == {d["domain"] for d in plan["shards"][1]["domains"]}
    assert closed["run"]["allClear"] is False
    assert {d["domain"] for d in closed["domains"]} == set(EXPECTED)
    # and the next sweep's own run merged as usual, with nothing left unjudged
    latest = json.loads(read_object(cloud, f"{PREFIX}/latest.json") or b"{}")
    assert latest["run"]["id"] == second["run"]
    assert latest["run"]["domainsNotJudged"] == 0


@pytest.mark.parametrize("unreadable", ["shards/00001.json", "catalog.json"])
def test_a_shard_that_cannot_read_its_object_or_the_catalog_leaves_its_scope_not_judged(
    cloud: Any, monkeypatch: pytest.MonkeyPatch, receiver: Receiver, unreadable: str
) -> None:
    # given check-expiry in FC with shards of 4 domains, and one run object that no
    # shard can read (every GetObject of it fails)
    cloud.load_estate({**DEMO, "buckets": [*DEMO["buckets"], {"name": REPORTS}]})
    register_check_expiry(cloud, CERTPILOT_RETRY_DEADLINE="2", CERTPILOT_WEBHOOK_URL=receiver.url)
    for name, value in {
        **cloud.certpilot_env(),
        "CERTPILOT_LOG_LEVEL": "WARNING",
        "CERTPILOT_REPORT_BUCKET": REPORTS,
        "CERTPILOT_SHARD_SIZE": str(SHARD_SIZE),
    }.items():
        monkeypatch.setenv(name, value)
    context = fc_context(cloud, FUNCTION)
    run = context.request_id
    cloud.faults(
        {
            "action": "oss:GetObject",
            "where": {"key": f"{PREFIX}/runs/{run}/{unreadable}"},
            "error": {"code": "InternalError", "status": 500},
            "times": 1000,
        }
    )
    # when the timer fires
    summary = json.loads(fc_handler("check_expiry")(json.dumps(timer()).encode(), context))
    answers = [json.loads(r["result"]) for r in wait_shards(cloud, run)]
    # then the run still merged once and notified once
    assert summary["status"] == "fanned-out", summary
    assert sum(1 for a in answers if a["merged"]) == 1
    assert len(receiver.bodies) == 1
    # and the domains of the shards that could not read are NOT_JUDGED, every other judged
    plan = json.loads(read_object(cloud, f"{PREFIX}/runs/{run}/plan.json") or b"{}")
    blind = [1] if unreadable.startswith("shards/") else [s["index"] for s in plan["shards"]]
    assert sorted(a["shard"] for a in answers if a["error"] is not None) == blind
    latest = json.loads(read_object(cloud, f"{PREFIX}/latest.json") or b"{}")
    assert latest["run"]["id"] == run
    unjudged = {
        d["domain"]
        for d in latest["domains"]
        if any(f["code"] == "NOT_JUDGED" for f in d["findings"])
    }
    assert unjudged == {d["domain"] for i in blind for d in plan["shards"][i]["domains"]}
    assert latest["run"]["allClear"] is False
    assert {d["domain"] for d in latest["domains"]} == set(EXPECTED)
