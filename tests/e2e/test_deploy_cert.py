"""deploy-cert end to end: the handler, the real SDKs, the emulator and its live TLS edge.

Each test loads an estate, issues a certificate in the emulator's CAS the way a CA
would, invokes `functions/deploy_cert/index.py` exactly as FC does (event bytes, a
context with credentials and a request id), then checks the control plane and what
the edge serves.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from tests.e2e.deploy_helpers import (
    EVENTS,
    OLD,
    REPO,
    bound,
    cloudevent,
    edge_view,
    handler,
    invoke,
    issue,
    outcomes,
    served,
    served_by_every_node,
    sha256_of,
    use_estate,
    writes,
)
from tests.integration.polling import poll

pytestmark = pytest.mark.e2e

ESTATE: dict[str, Any] = {
    "certificates": [
        {"name": "wildcard-old", "sans": ["*.example.com"], "not_before": "-70d", "days": 90},
        {"name": "later", "sans": ["later.example.com"], "days": 300},
        {"name": "apex", "sans": ["example.com"], "days": 60},
        {"name": "other", "sans": ["www.example.org"], "days": 30},
    ],
    "buckets": [
        {
            "name": "assets",
            "cnames": [
                {"domain": "static.example.com", "certificate": "wildcard-old"},
                {"domain": "docs.example.com"},
                {"domain": "later.example.com", "certificate": "later"},
                {"domain": "example.com", "certificate": "apex"},
                {"domain": "a.b.example.com"},
                {"domain": "www.example.org", "certificate": "other"},
                {"domain": "assets.oss-cn-hangzhou.aliyuncs.com"},
            ],
        },
        {
            "name": "media",
            "region": "cn-shanghai",
            "cnames": [{"domain": "media.example.com", "certificate": "wildcard-old"}],
        },
    ],
    "cdn_domains": [
        {"name": "cdn.example.com", "origin": "assets", "certificate": "wildcard-old"},
        {"name": "img.example.com", "origin": "media"},
    ],
}
TARGETS = ("static.example.com", "docs.example.com", "media.example.com")
CDN_TARGETS = ("cdn.example.com", "img.example.com")
UNTOUCHED = ("later.example.com", "example.com", "a.b.example.com", "www.example.org")


@pytest.fixture
def account(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator with the estate loaded and certpilot's environment pointed at it."""
    use_estate(cloud, monkeypatch, ESTATE)
    return cloud


def test_wildcard_lands_on_every_covered_domain_and_nowhere_else(account: Any) -> None:
    # given an estate under example.com and a renewed *.example.com certificate in CAS
    before = bound(account)
    new = issue(account, ["*.example.com"], days=90)
    # when the certificate-issued event reaches deploy-cert
    summary = invoke(account, cloudevent(account, new["identifier"]))
    # then every covered OSS custom domain and CDN domain gets it, verified
    assert summary["ok"] is True and summary["status"] == "deployed"
    result = outcomes(summary)
    for domain in (*TARGETS, *CDN_TARGETS):
        assert result[domain][0] == "deployed", result[domain]
        assert bound(account)[domain] == new["certId"]
        # and a verifying TLS client (Python's ssl, not certpilot's probe) accepts it
        view = edge_view(account, domain)
        assert (view.sha256, view.verified) == (new["sha256"], True), view
    # a first binding (docs.example.com had none) goes through too
    assert result["docs.example.com"] == ("deployed", "no-certificate")
    # by CAS reference: OSS CertId, CDN CertType=cas with the certificate's region
    state = account.state()
    assert state["buckets"]["assets"]["cnames"]["docs.example.com"]["certificate"]["cert_type"] == (
        "CAS"
    )
    for domain in CDN_TARGETS:
        ssl = state["cdn_domains"][domain]["ssl"]
        assert (ssl["cert_type"], ssl["cert_region"]) == ("cas", "cn-hangzhou")
    # and leaves alone the apex, two levels down, other names, the later-expiring one
    # and the bucket domain
    assert result["later.example.com"] == ("skipped", "current-expires-later")
    assert result["example.com"][0] == result["a.b.example.com"][0] == "skipped"
    assert "www.example.org" not in result
    after = bound(account)
    for domain in (*UNTOUCHED, "assets.oss-cn-hangzhou.aliyuncs.com"):
        assert after[domain] == before[domain]
    assert summary["counts"]["deployed"] == 5
    assert account.action_stats("oss:PutCname")["calls"] == 3
    assert account.action_stats("cdn:SetCdnDomainSSLCertificate")["calls"] == 2


def test_duplicate_event_is_a_no_op(account: Any) -> None:
    # given a certificate already rolled out by a first delivery of its event
    new = issue(account, ["*.example.com"], days=90)
    event = cloudevent(account, new["certId"])
    assert invoke(account, event)["status"] == "deployed"
    calls = writes(account)
    # when EventBridge delivers the same event again
    again = invoke(account, event)
    # then nothing is written and every target reports already-current
    assert again["ok"] is True and again["status"] == "nothing-to-do"
    result = outcomes(again)
    for domain in (*TARGETS, *CDN_TARGETS):
        assert result[domain][0] == "already-current"
    assert writes(account) == calls


@pytest.mark.parametrize(
    ("recipe", "code"),
    [
        ({"notBefore": "2020-01-01T00:00:00Z", "notAfter": "2020-04-01T00:00:00Z"}, "CERT_EXPIRED"),
        ({"chain": "leaf-only", "days": 90}, "CHAIN_INCOMPLETE"),
    ],
)
def test_unusable_certificate_is_refused_and_nothing_changes(
    account: Any, recipe: dict[str, Any], code: str
) -> None:
    # given a certificate that browsers would reject
    before = bound(account)
    bad = issue(account, ["*.example.com"], **recipe)
    # when its event arrives
    summary = invoke(account, cloudevent(account, bad["certId"]))
    # then it is refused with its finding, and no domain changes
    assert summary["ok"] is False and summary["status"] == "refused"
    assert code in [f["code"] for f in summary["findings"]]
    assert {r["outcome"] for r in summary["results"]} == {"skipped"}
    assert outcomes(summary)["static.example.com"][1] == f"candidate-invalid:{code}"
    assert writes(account) == 0
    assert bound(account) == before


def test_revoked_certificate_is_refused(account: Any) -> None:
    new = issue(account, ["*.example.com"], days=90)
    account.admin("POST", "cas/revoke", {"certId": new["certId"]})
    summary = invoke(account, cloudevent(account, new["certId"]))
    assert summary["status"] == "refused"
    assert "CERT_REVOKED" in [f["code"] for f in summary["findings"]]
    assert writes(account) == 0


def test_unknown_certificate_is_reported_not_found(account: Any) -> None:
    summary = invoke(account, cloudevent(account, 99999999))
    assert (summary["ok"], summary["status"]) == (False, "not-found")
    assert writes(account) == 0


def test_throttling_and_transient_errors_are_absorbed(account: Any) -> None:
    # given the cloud throttles and fails transiently on the deploy calls
    account.faults(
        {"action": "oss:PutCname", "error": {"code": "InternalError", "status": 500}, "times": 2},
        {
            "action": "cdn:SetCdnDomainSSLCertificate",
            "error": {"code": "Throttling.User", "status": 400},
            "times": 2,
        },
        {
            "action": "cdn:DescribeUserDomains",
            "error": {"code": "ServiceUnavailable", "status": 503},
            "times": 1,
        },
    )
    new = issue(account, ["*.example.com"], days=90)
    # when the event is handled
    summary = invoke(account, cloudevent(account, new["certId"]))
    # then the retries absorb every fault: no domain failed
    assert summary["status"] == "deployed", summary["results"]
    assert summary["counts"]["failed"] == 0
    assert account.action_stats("oss:PutCname")["errors"] >= 2
    set_ssl = account.action_stats("cdn:SetCdnDomainSSLCertificate")
    assert set_ssl["errors"] + set_ssl["throttled"] >= 2
    for domain in (*TARGETS, *CDN_TARGETS):
        assert bound(account)[domain] == new["certId"]


def test_one_failing_domain_does_not_stop_the_others(account: Any) -> None:
    # given CDN refuses the certificate for one domain, for good
    account.faults(
        action="cdn:SetCdnDomainSSLCertificate",
        where={"DomainName": "img.example.com"},
        error={"code": "Certificate.MissMatch", "status": 400},
    )
    new = issue(account, ["*.example.com"], days=90)
    # when the event is handled
    summary = invoke(account, cloudevent(account, new["certId"]))
    # then that domain fails with the cloud's code and every other one is deployed
    result = {r["domain"]: r for r in summary["results"]}
    assert result["img.example.com"]["outcome"] == "failed"
    assert result["img.example.com"]["errorCode"] == "Certificate.MissMatch"
    for domain in (*TARGETS, "cdn.example.com"):
        assert result[domain]["outcome"] == "deployed"
    assert (summary["ok"], summary["status"]) == (False, "partial")
    assert bound(account)["img.example.com"] is None


def test_verification_failure_rolls_the_domain_back(
    account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the edge takes longer to pick up changes than the verification deadline
    monkeypatch.setenv("CERTPILOT_VERIFY_DEADLINE", "0.3")
    before = bound(account)
    old_static = served(account, "static.example.com")
    old_cdn = served_by_every_node(account, "cdn.example.com")
    account.settings(propagation_delay=1.0)
    new = issue(account, ["*.example.com"], days=90)
    # when the event is handled
    summary = invoke(account, cloudevent(account, new["certId"]))
    # then each domain is rolled back to what it had (or to nothing), with the reason
    result = {r["domain"]: r for r in summary["results"]}
    for domain in (*TARGETS, *CDN_TARGETS):
        assert result[domain]["outcome"] == "rolled-back", result[domain]
        assert result[domain]["reason"] == "verify-failed"
        assert result[domain]["facts"]["problem"]  # what the edge was seen serving
        assert result[domain]["verified"] is False
    assert result["static.example.com"]["rollback"] == "restore"
    assert result["static.example.com"]["previousCertId"] == before["static.example.com"]
    assert result["docs.example.com"]["rollback"] == "remove"
    assert (summary["ok"], summary["status"]) == (False, "failed")
    assert bound(account) == before
    poll(lambda: served(account, "static.example.com"), lambda sha: sha == old_static)
    # and the edge was probed again after the rollback: OSS serves the restored state
    for domain in TARGETS:
        assert result[domain]["restoredVerified"] is True, result[domain]
    # while CDN refused the rollback as busy (ServiceBusy) until our write had reached
    # every edge node: it was rolled back then; its restore is one more propagation
    # away, so whether the short watch saw it depends on timing, and the reason says
    refused = account.action_stats("cdn:SetCdnDomainSSLCertificate")
    assert refused["errors"] >= len(CDN_TARGETS)
    assert refused["calls"] - refused["errors"] == 2 * len(CDN_TARGETS)
    for domain in CDN_TARGETS:
        assert result[domain]["restoredVerified"] in (True, False), result[domain]
    # and every CDN edge node serves the previous certificate again
    poll(
        lambda: served_by_every_node(account, "cdn.example.com"),
        lambda sha: sha == old_cdn,
        timeout=10,
    )


def test_other_event_shapes_are_accepted(account: Any) -> None:
    new = issue(account, ["*.example.com"], days=90)
    trail = json.loads((EVENTS / "deploy-cert.actiontrail.json").read_text())
    trail["aliyunaccountid"] = trail["data"]["userIdentity"]["accountId"] = account.account_id
    trail["data"]["responseElements"]["CertId"] = new["certId"]
    assert invoke(account, json.dumps(trail).encode())["status"] == "deployed"
    direct = json.dumps({"certId": new["certId"]}).encode()
    assert invoke(account, direct)["status"] == "nothing-to-do"


def test_dry_run_payload_plans_without_writing(account: Any) -> None:
    new = issue(account, ["*.example.com"], days=90)
    summary = invoke(account, json.dumps({"certId": new["certId"], "dryRun": True}).encode())
    assert summary["status"] == "dry-run"
    assert {a["domain"] for a in summary["plan"]["actions"]} == {*TARGETS, *CDN_TARGETS}
    assert writes(account) == 0


def _foreign(cloud: Any, cert_id: int) -> bytes:
    return cloudevent(cloud, cert_id, aliyunaccountid="9999999999999999")


def _actiontrail_in_singapore(cloud: Any, cert_id: int) -> bytes:
    trail = json.loads((EVENTS / "deploy-cert.actiontrail.json").read_text())
    trail["aliyunaccountid"] = trail["data"]["userIdentity"]["accountId"] = cloud.account_id
    trail["data"]["responseElements"]["CertId"] = cert_id
    trail["data"]["acsRegion"] = "ap-southeast-1"
    return json.dumps(trail).encode()


@pytest.mark.parametrize(
    ("make_event", "error"),
    [
        (lambda cloud, cert_id: b"{not json", "MalformedEvent"),
        (lambda cloud, cert_id: b'{"certId": "x"}', "MalformedEvent"),
        (lambda cloud, cert_id: b" " * (256 * 1024 + 1), "MalformedEvent"),
        (lambda cloud, cert_id: cloudevent(cloud, cert_id, type="x.y"), "UnsupportedEvent"),
        (_foreign, "ForeignAccount"),
        (lambda cloud, cert_id: cloudevent(cloud, f"{cert_id}-ap-southeast-1"), "ForeignRegion"),
        (_actiontrail_in_singapore, "ForeignRegion"),
    ],
)
def test_rejected_events_change_nothing(
    account: Any, make_event: Callable[[Any, int], bytes], error: str
) -> None:
    # given a certificate that could be deployed
    new = issue(account, ["*.example.com"], days=90)
    before = bound(account)
    # when a malformed, unsupported or foreign event arrives
    summary = invoke(account, make_event(account, new["certId"]))
    # then it is rejected with a clear error and nothing is read or written
    assert summary["ok"] is False and summary["status"] == "rejected"
    assert summary["error"]["type"] == error
    assert summary["error"]["message"]
    assert writes(account) == 0
    assert account.action_stats("oss:ListBuckets")["calls"] == 0
    assert bound(account) == before


def test_certificate_covering_a_bucket_domain_never_touches_it(account: Any) -> None:
    new = issue(account, ["*.oss-cn-hangzhou.aliyuncs.com"], days=90)
    summary = invoke(account, cloudevent(account, new["certId"]))
    assert outcomes(summary)["assets.oss-cn-hangzhou.aliyuncs.com"] == (
        "skipped",
        "bucket-domain",
    )
    assert writes(account) == 0


def test_oss_hosted_certificate_behind_cdn_is_reported_as_the_wrong_location(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CDN domain whose bucket also hosts a certificate for it on OSS (FAQ case)
    ids = use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [OLD],
            "buckets": [
                {
                    "name": "assets",
                    "cnames": [{"domain": "video.example.com", "certificate": "old"}],
                }
            ],
            "cdn_domains": [{"name": "video.example.com", "origin": "assets"}],
        },
    )
    new = issue(cloud, ["*.example.com"], days=90)
    # when the renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then it goes to CDN, where the traffic goes, and the OSS copy is reported
    assert outcomes(summary)["video.example.com"][0] == "deployed"
    assert [r["route"] for r in summary["results"]] == ["cdn"]
    [wrong] = [f for f in summary["findings"] if f["code"] == "WRONG_LOCATION"]
    assert wrong["domain"] == "video.example.com"
    state = cloud.state()
    assert state["cdn_domains"]["video.example.com"]["ssl"]["cert_id"] == new["certId"]
    oss_cert = state["buckets"]["assets"]["cnames"]["video.example.com"]["certificate"]
    assert oss_cert["cert_id"] == ids["old"]  # reported, not touched


def test_summary_and_logs_carry_no_secret(account: Any, capsys: pytest.CaptureFixture[str]) -> None:
    new = issue(account, ["*.example.com"], days=90)
    summary = invoke(account, cloudevent(account, new["certId"]))
    captured = capsys.readouterr()
    text = json.dumps(summary) + captured.out + captured.err
    assert account.access_key_secret not in text
    assert "PRIVATE KEY" not in text


def test_rejected_credentials_leak_neither_secret_nor_token(
    account: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given FC hands the function STS credentials that the cloud refuses
    monkeypatch.setenv("CERTPILOT_LOG_LEVEL", "DEBUG")
    secret, token = "Wr0ngStsSecretValue0123456789", "CAIS" + "St5Token" * 10
    context = SimpleNamespace(
        request_id=str(uuid.uuid4()),
        credentials=SimpleNamespace(
            access_key_id=account.access_key_id, access_key_secret=secret, security_token=token
        ),
    )
    new = issue(account, ["*.example.com"], days=90)
    # when the event is handled
    summary = json.loads(handler()(cloudevent(account, new["certId"]), context))
    # then the invocation fails with the cloud's auth code, changing nothing...
    assert (summary["ok"], summary["status"]) == (False, "error")
    assert summary["error"]["type"] == "AuthError" and summary["error"]["code"]
    assert writes(account) == 0
    # ...and neither the secret nor the token is in the answer or any log line
    captured = capsys.readouterr()
    text = json.dumps(summary) + captured.out + captured.err
    assert captured.err  # the DEBUG log did write lines
    assert secret not in text and token not in text
    assert account.access_key_secret not in text


def test_an_unexpected_error_is_answered_and_logged_without_its_secrets(
    account: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a bug deep in the engine whose message quotes a credential
    from certpilot.jobs.deploy_cert import engine

    def broken(*_: Any) -> dict[str, Any]:
        raise RuntimeError(f"boom with {account.access_key_secret}")

    monkeypatch.setattr(engine, "deploy_cert", broken)
    # when an event is handled
    summary = invoke(account, cloudevent(account, 10000001))
    # then the handler answers with an error (not a raised exception or traceback)...
    assert (summary["ok"], summary["status"]) == (False, "error")
    assert summary["error"] == {
        "type": "RuntimeError",
        "message": "internal error (see the function log)",
    }
    # ...and its JSON log line names the error, with the secret masked
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    [failed] = [line for line in lines if line["msg"] == "invocation failed"]
    assert failed["error"]["type"] == "RuntimeError" and failed["request_id"]
    assert account.access_key_secret not in json.dumps(lines)


def test_current_certificate_browsers_reject_is_replaced_even_if_it_lasts_longer(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given domains whose certificates outlast the renewal but that browsers reject
    use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [
                {"name": "weak", "sans": ["legacy.example.com"], "key_type": "rsa1024"},
                {"name": "sha1", "sans": ["sha1.example.com"], "signature_hash": "sha1"},
                {"name": "fine", "sans": ["fine.example.com"], "days": 300},
            ],
            "buckets": [
                {
                    "name": "assets",
                    "cnames": [
                        {"domain": "legacy.example.com", "certificate": "weak"},
                        {"domain": "sha1.example.com", "certificate": "sha1"},
                        {"domain": "fine.example.com", "certificate": "fine"},
                    ],
                }
            ],
        },
        verify_deadline=None,
    )
    new = issue(cloud, ["*.example.com"], days=30)
    # when the shorter-lived renewal arrives
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then the live probe's verdict makes the broken ones replaceable; the sound one stays
    assert outcomes(summary) == {
        "fine.example.com": ("skipped", "current-expires-later"),
        "legacy.example.com": ("deployed", "current-invalid:WEAK_KEY"),
        "sha1.example.com": ("deployed", "current-invalid:WEAK_SIGNATURE"),
    }


def test_deploy_cert_runs_in_function_compute(account: Any) -> None:
    # given deploy-cert deployed to (emulated) FC 3.0 with the layer, and without
    # CERTPILOT_ACCOUNT_ID: the FC context's account and STS credentials are used
    env = {
        k: v
        for k, v in account.certpilot_env().items()
        if not k.startswith("ALIBABA_CLOUD_") and k != "CERTPILOT_ACCOUNT_ID"
    }
    account.register_function(
        "certpilot-deploy-cert",
        REPO / "functions" / "deploy_cert" / "index.py",
        env={**env, "CERTPILOT_VERIFY_DEADLINE": "5", "CERTPILOT_LOG_LEVEL": "WARNING"},
        layers=[REPO / "shared" / "python"],
    )
    new = issue(account, ["*.example.com"], days=90)
    # when EventBridge would deliver the certificate-issued event (invoked through FC)
    from certpilot.cloud.clients import CloudClients
    from certpilot.cloud.credentials import from_env
    from certpilot.core.settings import Settings

    settings = Settings.from_env()
    credentials = from_env()
    assert credentials is not None
    fc = CloudClients.from_settings(settings, credentials).fc
    reply = fc.invoke(
        "certpilot-deploy-cert", cloudevent(account, new["identifier"]), asynchronous=False
    )
    # then the function rolled the certificate out
    assert reply is not None
    summary = json.loads(reply)
    assert summary["status"] == "deployed", summary
    assert summary["requestId"]
    for domain in (*TARGETS, *CDN_TARGETS):
        assert bound(account)[domain] == new["certId"]


def test_deploy_reads_only_the_certificates_that_matter(account: Any) -> None:
    # given an account whose CAS also holds 40 certificates for unrelated names
    for n in range(40):
        account.admin("POST", "cas/issue", {"sans": [f"site{n}.example.net"], "name": f"u{n}"})
    new = issue(account, ["*.example.com"], days=90)
    details_before = account.action_stats("cas:GetUserCertificateDetail")["calls"]
    # when the certificate-issued event reaches deploy-cert
    summary = invoke(account, cloudevent(account, new["certId"]))
    # then it is rolled out, and CAS was asked for details only of the new certificate
    # and of those covering the same domains (the old wildcard), not of all 44
    assert summary["status"] == "deployed"
    details = account.action_stats("cas:GetUserCertificateDetail")["calls"] - details_before
    assert details <= 4, details


def test_only_the_candidate_is_read_with_its_pem_and_its_key_goes_nowhere(
    account: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a spy on the real CAS SDK that records what certpilot asks and what CAS answers
    from alibabacloud_cas20200407.client import Client

    asked: list[tuple[int, object]] = []
    answered: list[dict[str, Any]] = []
    original = Client.get_user_certificate_detail_with_options

    def spy(self: Any, request: Any, runtime: Any) -> Any:
        asked.append((request.cert_id, request.cert_filter))
        response = original(self, request, runtime)
        answered.append(response.body.to_map())
        return response

    monkeypatch.setattr(Client, "get_user_certificate_detail_with_options", spy)
    new = issue(account, ["*.example.com"], days=90)
    # when a renewal is rolled out (the pre-write check reads the candidate's PEM chain)
    summary = invoke(account, cloudevent(account, new["certId"]))
    assert summary["status"] == "deployed"
    # then only the candidate was asked for with CertFilter=false (CAS has no call that
    # returns the PEM without the key), every other certificate with CertFilter=true
    unfiltered = [cert_id for cert_id, flag in asked if flag is not True]
    assert unfiltered == [new["certId"]]
    filtered = [body for body in answered if "Key" not in body]
    assert all("Cert" not in body for body in filtered)
    # and the key CAS sent with it appears in no summary and no log line
    [key] = [body["Key"] for body in answered if "Key" in body]
    key_body = key.split("-----")[2].strip().splitlines()[0]
    output = capsys.readouterr()
    for text in (json.dumps(summary), output.out, output.err):
        assert key_body not in text and "PRIVATE KEY" not in text


def _scale_estate(n_oss: int, n_cdn: int, *, propagation: float) -> dict[str, Any]:
    """n_oss OSS custom domains and n_cdn CDN domains, all on an expiring wildcard."""
    return {
        "settings": {"propagation_delay": propagation},
        "certificates": [
            {"name": "wild-old", "sans": ["*.example.com"], "not_before": "-70d", "days": 90},
            {"name": "wild-pem", "sans": ["*.example.com"], "days": 30, "cas": False},
        ],
        "buckets": [
            {
                "name": "assets",
                "cnames": [
                    {"domain": f"oss{i:02d}.example.com", "certificate": "wild-old"}
                    for i in range(n_oss)
                ],
            }
        ],
        "cdn_domains": [
            {"name": f"cdn{i:02d}.example.com", "origin": "assets", "certificate": "wild-old"}
            for i in range(n_cdn)
        ],
    }


def test_writes_all_go_out_before_verification_starts(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 40 domains (20 OSS, 20 CDN) behind an edge that takes 1.0 s to serve a change
    from certpilot.cloud.cdn import CdnAdapter
    from certpilot.cloud.oss import OssAdapter
    from certpilot.probe import tls as probe

    use_estate(cloud, monkeypatch, _scale_estate(20, 20, propagation=1.0), verify_deadline=30)
    # and a record of every certificate write and every probe, in order
    record: list[tuple[str, str]] = []
    live_probe = probe.probe_https
    set_certificate, bind_certificate = CdnAdapter.set_certificate, OssAdapter.bind_certificate

    def probed(domain: str, **options: Any) -> Any:
        record.append(("probe", domain))
        return live_probe(domain, **options)

    def cdn_write(self: Any, domain: str, *args: Any) -> None:
        set_certificate(self, domain, *args)
        record.append(("write", domain))

    def oss_write(self: Any, bucket: str, region: str, domain: str, *args: Any) -> None:
        bind_certificate(self, bucket, region, domain, *args)
        record.append(("write", domain))

    monkeypatch.setattr(probe, "probe_https", probed)
    monkeypatch.setattr(CdnAdapter, "set_certificate", cdn_write)
    monkeypatch.setattr(OssAdapter, "bind_certificate", oss_write)
    new = issue(cloud, ["*.example.com"], days=90)
    # when the renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then every domain is deployed and verified...
    assert summary["status"] == "deployed", summary["results"]
    assert summary["counts"]["deployed"] == 40
    # ...every write was accepted before the first verification probe (a worker that
    # waited for its own domain would probe between writes: 40 x 1.0 s / 8 workers)...
    kinds = [kind for kind, _ in record]
    assert kinds.count("write") == 40
    assert "write" not in kinds[kinds.index("probe") :]
    # ...and verifying took a few rounds of one probe per pending domain, not one
    # wait per domain: no domain was probed more than a 1 s propagation takes (at most
    # 6 rounds, each of up to 3 consecutive handshakes: CERTPILOT_VERIFY_CONSECUTIVE)
    probes = [domain for kind, domain in record if kind == "probe"]
    assert max(probes.count(d) for d in set(probes)) <= 6 * 3


def test_cdn_certificates_bound_by_cas_reference_need_no_per_domain_lookup(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 20 CDN domains bound by CAS reference and one bound by PEM (not in CAS)
    estate = _scale_estate(0, 20, propagation=0.0)
    estate["cdn_domains"].append(
        {"name": "pem.example.com", "origin": "assets", "certificate": "wild-pem"}
    )
    use_estate(cloud, monkeypatch, estate)
    new = issue(cloud, ["*.example.com"], days=90)
    # when the renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then the CAS ids came from the CAS listing by certificate name: only the PEM-bound
    # domain cost a DescribeDomainCertificateInfo call (and, valid but not restorable,
    # it is left alone)
    assert summary["status"] == "deployed" and summary["counts"]["deployed"] == 20
    assert outcomes(summary)["pem.example.com"] == ("skipped", "previous-unknown")
    assert cloud.action_stats("cdn:DescribeDomainCertificateInfo")["calls"] == 1
    # and the same event again finds every CAS-bound domain already current, with no
    # lookup but the PEM-bound domain's
    again = invoke(cloud, cloudevent(cloud, new["certId"]))
    assert again["status"] == "nothing-to-do"
    assert again["counts"]["already-current"] == 20
    assert cloud.action_stats("cdn:DescribeDomainCertificateInfo")["calls"] == 2


@pytest.mark.parametrize(
    ("estate", "expected", "mismatched"),
    [
        pytest.param(
            # the CDN domains *.example.com and www.example.com on a wildcard
            {
                "certificates": [{"name": "long", "sans": ["*.example.com"], "days": 300}],
                "buckets": [{"name": "assets"}],
                "cdn_domains": [
                    {"name": "*.example.com", "origin": "assets", "certificate": "long"},
                    {"name": "www.example.com", "origin": "assets", "certificate": "long"},
                ],
            },
            # neither is replaced: the wildcard domain counts as covered by the wildcard
            {
                "*.example.com": ("skipped", "current-expires-later"),
                "www.example.com": ("skipped", "current-expires-later"),
            },
            [],
            id="wildcard-cdn-domain",
        ),
        pytest.param(
            # www.example.com, while its edge still serves another certificate that does
            # not cover it (a stale edge)
            {
                "certificates": [
                    {"name": "long", "sans": ["www.example.com"], "days": 300},
                    {"name": "other", "sans": ["other.example.net"], "days": 300},
                ],
                "buckets": [{"name": "assets"}],
                "cdn_domains": [
                    {
                        "name": "www.example.com",
                        "origin": "assets",
                        "certificate": "long",
                        "edge_certificate": "other",
                    }
                ],
            },
            # the domain keeps its certificate (the edge's is not blamed on it), and the
            # mismatch is reported
            {"www.example.com": ("skipped", "served-mismatch")},
            ["www.example.com"],
            id="edge-serving-another-certificate",
        ),
    ],
)
def test_cdn_domains_keep_a_longer_lived_certificate(
    cloud: Any,
    monkeypatch: pytest.MonkeyPatch,
    estate: dict[str, Any],
    expected: dict[str, tuple[str, str]],
    mismatched: list[str],
) -> None:
    # given CDN domains configured with the certificate "long", good for 300 days
    ids = use_estate(cloud, monkeypatch, estate)
    new = issue(cloud, ["*.example.com"], days=90)
    # when a shorter-lived wildcard is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then no domain is replaced or written, and only a served mismatch is reported
    assert outcomes(summary) == expected
    assert (summary["ok"], summary["status"]) == (True, "nothing-to-do")
    found = [f for f in summary["findings"] if f["code"] == "SERVED_MISMATCH"]
    assert [f["domain"] for f in found] == mismatched
    for f in found:
        configured = sha256_of(cloud, ids["long"]).replace(":", "").upper()
        assert f["configured"] == configured != f["served"]
        [result] = [r for r in summary["results"] if r["domain"] == f["domain"]]
        assert result["facts"]["finding"] == "NAME_MISMATCH"
    assert writes(cloud) == 0
    for domain in expected:
        assert bound(cloud)[domain] == ids["long"]


def test_paused_cdn_domain_is_left_alone_and_says_so(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an offline (paused) CDN domain next to an online one, both due for renewal
    ids = use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [OLD],
            "buckets": [{"name": "assets"}],
            "cdn_domains": [
                {
                    "name": "paused.example.com",
                    "origin": "assets",
                    "certificate": "old",
                    "status": "offline",
                },
                {"name": "www.example.com", "origin": "assets", "certificate": "old"},
            ],
        },
    )
    new = issue(cloud, ["*.example.com"], days=300)
    # when the renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then the online domain gets it, and the paused one is skipped saying it is paused
    # (not written and rolled back: it serves nothing that could verify)
    result = {r["domain"]: r for r in summary["results"]}
    assert (result["paused.example.com"]["outcome"], result["paused.example.com"]["reason"]) == (
        "skipped",
        "cdn-status:offline",
    )
    assert result["paused.example.com"]["facts"]["cdnStatus"] == "offline"
    assert result["www.example.com"]["outcome"] == "deployed"
    assert (summary["ok"], summary["status"]) == (True, "deployed")
    assert bound(cloud)["paused.example.com"] == ids["old"]
    assert cloud.action_stats("cdn:SetCdnDomainSSLCertificate")["calls"] == 1


def test_certificates_outside_cas_are_replaced_only_once_invalid(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given OSS and CDN domains with uploaded certificates (not held in CAS): valid ones
    # and expired ones
    uploaded = {"sans": ["*.example.com"], "cas": False}
    use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [
                {"name": "up-valid", "days": 20, **uploaded},
                {"name": "up-expired", "not_before": "-100d", "not_after": "-1d", **uploaded},
            ],
            "buckets": [
                {
                    "name": "assets",
                    "cnames": [
                        # bound by PEM (OSS `Type=Upload`), chaining to the emulator's root
                        {"domain": "oss-valid.example.com", "certificate": "up-valid"},
                        {"domain": "oss-expired.example.com", "certificate": "up-expired"},
                    ],
                }
            ],
            "cdn_domains": [
                {"name": "cdn-valid.example.com", "origin": "assets", "certificate": "up-valid"},
                {
                    "name": "cdn-expired.example.com",
                    "origin": "assets",
                    "certificate": "up-expired",
                },
            ],
        },
    )
    before = bound(cloud)
    new = issue(cloud, ["*.example.com"], days=90)
    # when a renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then the valid uploads stay (a failed verification could not restore them) and
    # the expired ones are replaced (the OSS one by its own CertId as PreviousCertId)
    assert outcomes(summary) == {
        "cdn-expired.example.com": ("deployed", "current-invalid:CERT_EXPIRED"),
        "cdn-valid.example.com": ("skipped", "previous-unknown"),
        "oss-expired.example.com": ("deployed", "current-invalid:CERT_EXPIRED"),
        "oss-valid.example.com": ("skipped", "previous-unknown"),
    }
    after = bound(cloud)
    assert after["oss-expired.example.com"] == after["cdn-expired.example.com"] == new["certId"]
    for domain in ("oss-valid.example.com", "cdn-valid.example.com"):
        assert after[domain] == before[domain]


def test_a_binding_made_meanwhile_is_not_overwritten(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an OSS custom domain without a certificate...
    from certpilot.cloud.oss import OssAdapter

    ids = use_estate(
        cloud,
        monkeypatch,
        {
            "certificates": [{"name": "theirs", "sans": ["docs.example.com"], "days": 60}],
            "buckets": [{"name": "assets", "cnames": [{"domain": "docs.example.com"}]}],
        },
    )
    theirs = f"{ids['theirs']}-cn-hangzhou"
    # ...to which someone else binds a certificate after certpilot's inventory, just
    # before certpilot's own write
    original = OssAdapter.bind_certificate
    raced: list[str] = []

    def racing(self: Any, bucket: str, region: str, domain: str, *args: Any) -> None:
        if not raced:
            raced.append(domain)
            original(self, bucket, region, domain, theirs, None, True)
        original(self, bucket, region, domain, *args)

    monkeypatch.setattr(OssAdapter, "bind_certificate", racing)
    new = issue(cloud, ["*.example.com"], days=90)
    # when the renewal is rolled out
    summary = invoke(cloud, cloudevent(cloud, new["certId"]))
    # then certpilot's first binding (no Force, no PreviousCertId) fails as a conflict
    # and the other binding stays
    assert raced == ["docs.example.com"]
    [result] = summary["results"]
    assert result["outcome"] == "failed"
    assert bound(cloud)["docs.example.com"] == ids["theirs"]
