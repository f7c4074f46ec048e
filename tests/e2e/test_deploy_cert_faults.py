"""deploy-cert end to end when writes are applied but their answers are lost, and when two
runs race on one domain: the handler, the real SDKs, the emulator and its live TLS edge.

The emulator's `"after": true` faults apply a write and then fail or drop its answer,
as a cloud does when a response is lost on the way back. certpilot must settle such a
write by re-reading the binding, verify it like any other, roll it back when it does
not verify, and never roll a domain back onto an older certificate because another
run changed it meanwhile.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest

from tests.e2e.deploy_helpers import (
    OLD,
    bound,
    cloudevent,
    invoke,
    issue,
    result_of,
    served,
    served_by_every_node,
    sha256_of,
    use_estate,
)
from tests.integration.polling import poll

pytestmark = pytest.mark.e2e

OSS_DOMAIN = "static.example.com"
CDN_DOMAIN = "cdn.example.com"
SET_SSL = "cdn:SetCdnDomainSSLCertificate"


def expiring(*, oss: bool = False, cdn: bool = False) -> dict[str, Any]:
    """An estate with the OSS custom domain and/or the CDN domain on the expiring
    certificate `old`."""
    cnames = [{"domain": OSS_DOMAIN, "certificate": "old"}] if oss else []
    return {
        "certificates": [OLD],
        "buckets": [{"name": "assets", "cnames": cnames}],
        "cdn_domains": (
            [{"name": CDN_DOMAIN, "origin": "assets", "certificate": "old"}] if cdn else []
        ),
    }


def test_a_put_cname_applied_then_answered_500_is_verified_not_failed(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an OSS custom domain on an expiring certificate, and OSS applying the next
    # PutCname but answering it 500 (its answer lost)
    use_estate(cloud, monkeypatch, expiring(oss=True))
    cloud.faults(
        action="oss:PutCname",
        where={"domain": OSS_DOMAIN},
        error={"code": "InternalError", "status": 500},
        after=True,
        times=1,
    )
    new = issue(cloud, ["*.example.com"], days=90)
    # when the renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then the retry meets its own binding (PreviousCertId no longer matches), the
    # binding is re-read, and the domain is verified and reported deployed
    result = result_of(summary, OSS_DOMAIN)
    assert (result["outcome"], result["verified"]) == ("deployed", True), result
    assert (summary["ok"], summary["status"]) == (True, "deployed")
    put = cloud.action_stats("oss:PutCname")
    assert put["calls"] >= 2 and put["errors"] >= 1
    assert bound(cloud)[OSS_DOMAIN] == new["certId"]
    assert served(cloud, OSS_DOMAIN) == new["sha256"]


def test_a_cdn_write_applied_then_dropped_every_time_is_verified_not_failed(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CDN domain on an expiring certificate, and CDN applying every
    # SetCdnDomainSSLCertificate but never answering it
    use_estate(cloud, monkeypatch, expiring(cdn=True))
    cloud.faults(action=SET_SSL, where={"DomainName": CDN_DOMAIN}, drop=True, after=True)
    new = issue(cloud, ["*.example.com"], days=90)
    # when the renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then every attempt looks failed, yet the binding shows ours: verified, deployed
    result = result_of(summary, CDN_DOMAIN)
    assert (result["outcome"], result["verified"]) == ("deployed", True), result
    assert (summary["ok"], summary["status"]) == (True, "deployed")
    writes = cloud.action_stats(SET_SSL)
    assert writes["calls"] >= 2 and writes["errors"] == writes["calls"]
    assert bound(cloud)[CDN_DOMAIN] == new["certId"]
    assert served(cloud, CDN_DOMAIN) == new["sha256"]


def test_a_cdn_write_applied_then_dropped_that_does_not_verify_is_rolled_back(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CDN domain whose every certificate write is applied then dropped, behind
    # an edge slower than the verification deadline (2 s against 0.5 s; longer than the
    # adapter's own 3 attempts at the ServiceBusy its dropped, applied attempt causes)
    ids = use_estate(cloud, monkeypatch, expiring(cdn=True), verify_deadline=0.5)
    monkeypatch.setenv("CERTPILOT_MAX_ATTEMPTS", "3")
    old_sha256 = sha256_of(cloud, ids["old"])
    assert served(cloud, CDN_DOMAIN) == old_sha256
    cloud.faults(action=SET_SSL, where={"DomainName": CDN_DOMAIN}, drop=True, after=True)
    cloud.settings(propagation_delay=2.0)
    new = issue(cloud, ["*.example.com"], days=90)
    # when the renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then the write, settled by a re-read, fails verification and is rolled back to the
    # previous certificate (the rollback write dropped too, and settled the same way);
    # the retry of a dropped write meets ServiceBusy (the dropped attempt was applied and
    # the domain is configuring): the re-read shows ours, so it is not sent again
    result = result_of(summary, CDN_DOMAIN)
    assert (result["outcome"], result["verified"]) == ("rolled-back", False), result
    assert result["previousCertId"] == ids["old"]
    assert {"kind": "applied-despite-error", "code": "ServiceBusy"} in [
        {"kind": n["kind"], "code": n["error"]["code"]} for n in result["notes"]
    ], result
    assert (summary["ok"], summary["status"]) == (False, "failed")
    assert bound(cloud)[CDN_DOMAIN] == ids["old"]
    poll(lambda: served_by_every_node(cloud, CDN_DOMAIN), lambda sha: sha == old_sha256)
    # the deploy and the rollback were each tried until the retries ran out
    writes = cloud.action_stats(SET_SSL)
    assert writes["calls"] >= 2 and writes["errors"] == writes["calls"]


def test_two_runs_racing_on_one_cdn_domain_never_leave_the_oldest_certificate(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CDN domain on an expiring certificate, and two renewals of it in CAS
    from certpilot.cloud.cdn import CdnAdapter

    ids = use_estate(cloud, monkeypatch, expiring(cdn=True), verify_deadline=3.0)
    first = issue(cloud, ["*.example.com"], days=90)
    second = issue(cloud, ["*.example.com"], days=120)
    # and both runs planned against the old certificate before either writes (their
    # first certificate writes wait for each other; later writes, rollbacks, go on)
    both_planned = threading.Barrier(2, timeout=30)
    write_number = itertools.count()
    original = CdnAdapter.set_certificate

    def racing(self: Any, domain: str, cas_id: int, region: str) -> None:
        if next(write_number) < 2:
            both_planned.wait()
        original(self, domain, cas_id, region)

    monkeypatch.setattr(CdnAdapter, "set_certificate", racing)
    # when both deploy-cert invocations run at once
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(invoke, cloud, cloudevent(cloud, c["certId"])) for c in (first, second)]
        summaries = [run.result(timeout=120) for run in runs]
    # then at least one is deployed; the other is deployed too (its certificate was
    # replaced after it verified) or left alone as superseded, never rolled back
    results = [result_of(summary, CDN_DOMAIN) for summary in summaries]
    ends = sorted(
        "superseded" if r["outcome"] == "skipped" and r["reason"] == "superseded" else r["outcome"]
        for r in results
    )
    assert ends in (["deployed", "deployed"], ["deployed", "superseded"]), results
    # and neither run counts as failed: a superseded run says so in its status
    statuses = sorted(summary["status"] for summary in summaries)
    assert statuses == ends and all(summary["ok"] for summary in summaries), summaries
    # and the domain ends on one of the two new certificates, never the oldest, and
    # the edge serves what the control plane says
    final = bound(cloud)[CDN_DOMAIN]
    assert final in (first["certId"], second["certId"]), (final, ids["old"])
    assert served(cloud, CDN_DOMAIN) == (first if final == first["certId"] else second)["sha256"]


DESCRIBE_CERT = "cdn:DescribeDomainCertificateInfo"


def test_a_cdn_rollback_goes_ahead_when_the_binding_cannot_be_re_read(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CDN domain on an expiring certificate behind an edge slower than the
    # verification deadline, and a DescribeDomainCertificateInfo that always fails
    ids = use_estate(cloud, monkeypatch, expiring(cdn=True), verify_deadline=0.5)
    old_sha256 = sha256_of(cloud, ids["old"])
    cloud.settings(propagation_delay=1.5)
    new = issue(cloud, ["*.example.com"], days=90)
    cloud.faults(action=DESCRIBE_CERT, error={"code": "InternalError", "status": 500})
    # when the renewal is rolled out and does not verify
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then it is rolled back all the same, saying the binding was unknown
    result = result_of(summary, CDN_DOMAIN)
    assert (result["outcome"], result["verified"]) == ("rolled-back", False), result
    assert [n["kind"] for n in result["notes"]] == ["binding-unknown"]
    assert result["notes"][0]["error"] == {
        "action": "DescribeDomainCertificateInfo",
        "code": "InternalError",
    }
    assert bound(cloud)[CDN_DOMAIN] == ids["old"]
    poll(lambda: served_by_every_node(cloud, CDN_DOMAIN), lambda sha: sha == old_sha256)
    # the write and the restore went through; the restore after ServiceBusy answers
    # while our write was still propagating
    writes = cloud.action_stats(SET_SSL)
    assert writes["calls"] - writes["errors"] == 2


def test_a_cdn_write_applied_then_failing_with_an_unreadable_binding_is_verified(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CDN domain whose every certificate write is applied then answered 500,
    # and a DescribeDomainCertificateInfo that always fails
    use_estate(cloud, monkeypatch, expiring(cdn=True))
    new = issue(cloud, ["*.example.com"], days=90)
    cloud.faults(action=SET_SSL, error={"code": "InternalError", "status": 500}, after=True)
    cloud.faults(action=DESCRIBE_CERT, error={"code": "InternalError", "status": 500})
    # when the renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then the write counts as written, is verified at the edge and reported deployed
    result = result_of(summary, CDN_DOMAIN)
    assert (result["outcome"], result["verified"]) == ("deployed", True), result
    assert [n["kind"] for n in result["notes"]] == ["outcome-unknown"]
    assert (summary["ok"], summary["status"]) == (True, "deployed")
    assert bound(cloud)[CDN_DOMAIN] == new["certId"]
    assert served(cloud, CDN_DOMAIN) == new["sha256"]


def test_a_retry_after_a_run_killed_before_verifying_reports_the_edge_mismatch(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CDN domain on which a previous run bound the new certificate and ended
    # (killed at FC's timeout) before verifying it, behind an edge that has not caught up
    from certpilot.jobs.deploy_cert.engine import Deps

    use_estate(cloud, monkeypatch, expiring(cdn=True), verify_deadline=1.0)
    cloud.settings(propagation_delay=3600)
    new = issue(cloud, ["*.example.com"], days=90)
    unverified = Deps.apply_options
    with monkeypatch.context() as patched:
        patched.setattr(Deps, "apply_options", lambda self: replace(unverified(self), verify=False))
        invoke(cloud, cloudevent(cloud, new["certId"]))
    assert bound(cloud)[CDN_DOMAIN] == new["certId"]
    assert served(cloud, CDN_DOMAIN) != new["sha256"]
    # when FC retries the event
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then the domain is already current, but the run says the edge does not serve it
    result = result_of(summary, CDN_DOMAIN)
    assert result["outcome"] == "already-current", result
    assert (summary["ok"], summary["status"]) == (False, "partial")
    [finding] = [f for f in summary["findings"] if f["code"] == "SERVED_MISMATCH"]
    assert finding["domain"] == CDN_DOMAIN
    assert cloud.action_stats(SET_SSL)["calls"] == 1  # nothing written again


def test_an_already_current_domain_the_edge_serves_is_a_quiet_success(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a renewal deployed and verified
    use_estate(cloud, monkeypatch, expiring(cdn=True))
    new = issue(cloud, ["*.example.com"], days=90)
    assert invoke(cloud, cloudevent(cloud, new["certId"]))["status"] == "deployed"
    # when the same event comes again
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then nothing is to do, and no finding is raised
    assert (summary["ok"], summary["status"]) == (True, "nothing-to-do")
    assert summary["findings"] == []


def test_a_domain_unbound_while_its_write_is_on_the_way_is_failed_never_rebound(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two OSS custom domains on an expiring certificate, and the PutCname of one
    # held up on its way to OSS
    other = "files.example.com"
    estate = expiring(oss=True)
    estate["buckets"][0]["cnames"].append({"domain": other, "certificate": "old"})
    use_estate(cloud, monkeypatch, estate)
    cloud.faults(action="oss:PutCname", where={"domain": OSS_DOMAIN}, latency=1.5, times=1)
    new = issue(cloud, ["*.example.com"], days=90)

    # when the renewal runs, and the owner removes that domain from its bucket meanwhile
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(invoke, cloud, cloudevent(cloud, new["certId"]))
        for _ in itertools.count():  # the held-up write has arrived once its fault is taken
            if not cloud.admin("GET", "faults")["faults"] or running.done():
                break
            threading.Event().wait(0.02)
        cloud.oss_client().delete_cname(
            oss.DeleteCnameRequest(
                bucket="assets",
                bucket_cname_configuration=oss.BucketCnameConfiguration(
                    cname=oss.Cname(domain=OSS_DOMAIN)
                ),
            )
        )
        summary = running.result(timeout=120)

    # then OSS refuses to bind a domain that is no longer bound (ownership unproven):
    # certpilot reports it failed with that code and does not bring the binding back
    result = result_of(summary, OSS_DOMAIN)
    assert (result["outcome"], result["errorCode"]) == ("failed", "NeedVerifyDomainOwnership")
    assert OSS_DOMAIN not in bound(cloud)
    # while the other domain is deployed
    assert result_of(summary, other)["outcome"] == "deployed"
    assert bound(cloud)[other] == new["certId"]
