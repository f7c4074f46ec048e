"""disable-https and the emergency HTTP fallback against the emulator and its live edge.

The order of the writes is read from the emulator's own call log; what visitors get is
judged with `http.client` and `ssl` directly (`tests.tls_oracle`), never with
certpilot's probes.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from certpilot.core.settings import Settings
from certpilot.discovery.inventory import discover
from certpilot.jobs.enforce_https import fallback
from certpilot.jobs.enforce_https.cdn_steps import Pacing
from certpilot.jobs.enforce_https.disable import Action, StepOutcome, disable_https
from certpilot.jobs.enforce_https.policy import https_only_statement
from tests.e2e.cli_helpers import run_certpilot
from tests.integration.clients import make_clients
from tests.integration.policies import foreign_statements, stored_statements
from tests.integration.polling import poll
from tests.tls_oracle import handshake

pytestmark = pytest.mark.e2e

REGION = "cn-hangzhou"
BUCKET = "assets"
OSS_DOMAIN = "static.example.com"
OTHER_DOMAIN = "files.example.com"
CDN_DOMAIN = "cdn.example.com"
THEIRS = foreign_statements(BUCKET)
WRITES = {
    "oss:PutBucketPolicy",
    "oss:DeleteBucketPolicy",
    "oss:PutCname",
    "cdn:BatchSetCdnDomainConfig",
    "cdn:DeleteSpecificConfig",
    "cdn:SetCdnDomainSSLCertificate",
    "cdn:TagResources",
    "cdn:UntagResources",
}
FAST = Pacing(timeout=20.0, pause=0.05, max_pause=0.2)


def estate(*, cdn_configs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A bucket that denies plain HTTP next to someone else's two statements, two
    custom domains with certificates, and a CDN domain pulling from it."""
    return {
        "certificates": [{"name": "wild", "sans": ["*.example.com"]}],
        "buckets": [
            {
                "name": BUCKET,
                "region": REGION,
                "objects": {"index.html": "<p>hi</p>"},
                "policy": {"Version": "1", "Statement": [*THEIRS, https_only_statement(BUCKET)]},
                "cnames": [
                    {"domain": OSS_DOMAIN, "certificate": "wild"},
                    {"domain": OTHER_DOMAIN, "certificate": "wild"},
                ],
            }
        ],
        "cdn_domains": [
            {
                "name": CDN_DOMAIN,
                "origin": BUCKET,
                "certificate": "wild",
                "configs": cdn_configs
                or {
                    "https_force": {"enable": "on", "https_rewrite": "301"},
                    "HSTS": {"enabled": "on", "https_hsts_max_age": 5184000},
                },
            }
        ],
    }


def get(cloud: Any, host: str, *, tls: bool = False) -> http.client.HTTPResponse:
    """GET /index.html from the edge with Host `host`, over plain HTTP or HTTPS (SNI
    `host`, verified against the emulator's CA)."""
    address, port = (cloud.https if tls else cloud.http).rsplit(":", 1)
    conn = http.client.HTTPConnection(address, int(port), timeout=5)
    if tls:
        context = ssl.create_default_context(cafile=cloud.ca_bundle)
        raw = socket.create_connection((address, int(port)), timeout=5)
        conn.sock = context.wrap_socket(raw, server_hostname=host)
    conn.request("GET", "/index.html", headers={"Host": host})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def handshake_fails(cloud: Any, host: str) -> bool:
    try:
        handshake(cloud.https, host, cloud.ca_bundle)
    except (ssl.SSLError, OSError):
        return True
    return False


def status(cloud: Any, host: str) -> int:
    return get(cloud, host).status


def writes(cloud: Any, since: int, *, refused: bool = False) -> list[tuple[str, dict[str, str]]]:
    """The write calls after `since`, in order: the ones the cloud applied (answered
    ok), or every attempt with `refused` (ServiceBusy answers included)."""
    return [
        (c["action"], c["params"])
        for c in cloud.calls(since)
        if c["action"] in WRITES and (refused or c["outcome"] == "ok")
    ]


def last_seq(cloud: Any) -> int:
    log = cloud.calls()
    return int(log[-1]["seq"]) if log else 0


def certpilot(cloud: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return run_certpilot(cloud, *args, timeout=120)


def policy_statements(cloud: Any) -> list[Any]:
    return stored_statements(make_clients(cloud), BUCKET, REGION)


def record_of(cloud: Any, name: str) -> Any:
    clients = make_clients(cloud)
    inventory = discover(clients, Settings.from_env(cloud.certpilot_env()))
    return clients, inventory.get(name), inventory


# -- disable-https --------------------------------------------------------------------


def test_disable_oss_domain_removes_our_statement_then_the_certificate(cloud: Any) -> None:
    # given an OSS custom domain whose bucket denies plain HTTP (ours, next to theirs)
    cloud.load_estate(estate())
    assert status(cloud, OSS_DOMAIN) == 403
    since = last_seq(cloud)
    # when disable-https runs (not a terminal: no dry run)
    done = certpilot(cloud, "disable-https", "--domain", OSS_DOMAIN, "--yes")
    # then it says what it did, in order, and names the bucket's other domains
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(s["action"], s["outcome"]) for s in report["steps"]] == [
        ("remove-policy-statement", "done"),
        ("unbind-certificate", "done"),
    ]
    assert report["affected"] == [CDN_DOMAIN, OTHER_DOMAIN] and "note" in report
    # and the emulator saw our statement go before the certificate
    assert [a for a, _ in writes(cloud, since)] == ["oss:PutBucketPolicy", "oss:PutCname"]
    # and someone else's statements are all still there, ours gone
    assert policy_statements(cloud) == THEIRS
    # and the edge serves the domain over plain HTTP, and no longer over HTTPS
    poll(lambda: status(cloud, OSS_DOMAIN), lambda s: s == 200)
    poll(lambda: handshake_fails(cloud, OSS_DOMAIN), bool)
    # and a second run is already in the desired state, writing nothing
    since = last_seq(cloud)
    again = json.loads(certpilot(cloud, "disable-https", "--domain", OSS_DOMAIN).stdout)
    assert {s["outcome"] for s in again["steps"]} == {"already"}
    assert writes(cloud, since, refused=True) == []


def test_disable_when_ours_is_the_last_statement_deletes_the_policy(cloud: Any) -> None:
    data = estate()
    data["buckets"][0]["policy"] = {"Version": "1", "Statement": [https_only_statement(BUCKET)]}
    cloud.load_estate(data)
    clients, record, inventory = record_of(cloud, OSS_DOMAIN)
    since = last_seq(cloud)
    report = disable_https(clients, record, inventory, dry_run=False, pacing=FAST)
    assert report.ok
    assert [a for a, _ in writes(cloud, since)] == ["oss:DeleteBucketPolicy", "oss:PutCname"]
    assert clients.oss.get_bucket_policy(BUCKET, REGION) is None


def test_disable_cdn_domain_in_the_guides_order(cloud: Any) -> None:
    # given a CDN domain with the redirect and HSTS, fetching its origin over the
    # visitor's scheme from a bucket that denies plain HTTP
    cloud.load_estate(estate())
    assert status(cloud, CDN_DOMAIN) == 301
    since = last_seq(cloud)
    # when disable-https runs
    done = certpilot(cloud, "disable-https", "--domain", CDN_DOMAIN, "--yes")
    # then: origin over HTTPS, then the redirect, then HSTS, then SSL off
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    assert [(s["action"], s["outcome"]) for s in steps] == [
        ("origin-https", "done"),
        ("remove-redirect", "done"),
        ("remove-hsts", "done"),
        ("ssl-off", "done"),
        ("end-fallback", "already"),
    ]
    log = writes(cloud, since)
    assert [a for a, _ in log] == [
        "cdn:BatchSetCdnDomainConfig",
        "cdn:DeleteSpecificConfig",
        "cdn:DeleteSpecificConfig",
        "cdn:SetCdnDomainSSLCertificate",
    ]
    assert "forward_scheme" in log[0][1]["Functions"]
    assert log[1][1]["ConfigId"] == steps[1]["configIds"][0]
    assert log[2][1]["ConfigId"] == steps[2]["configIds"][0]
    assert log[3][1]["SSLProtocol"] == "off"
    # and plain HTTP is served (no redirect, and the bucket's 403 is not met)
    poll(lambda: status(cloud, CDN_DOMAIN), lambda s: s == 200)
    # and the bucket still denies plain HTTP to its own domains
    assert status(cloud, OSS_DOMAIN) == 403


def test_disable_dry_run_writes_nothing(cloud: Any) -> None:
    cloud.load_estate(estate())
    since = last_seq(cloud)
    done = certpilot(cloud, "disable-https", "--domain", CDN_DOMAIN, "--dry-run")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dryRun"] is True
    assert [s["outcome"] for s in report["steps"]] == [
        "planned",
        "planned",
        "planned",
        "planned",
        "already",
    ]
    assert writes(cloud, since, refused=True) == []
    assert status(cloud, CDN_DOMAIN) == 301


def test_disable_unknown_domain_is_a_usage_error(cloud: Any) -> None:
    cloud.load_estate(estate())
    done = certpilot(cloud, "disable-https", "--domain", "nowhere.example.org", "--yes")
    assert done.returncode == 2 and "nowhere.example.org" in done.stderr


def test_disable_stops_before_the_certificate_when_the_policy_cannot_change(
    cloud: Any,
) -> None:
    # given a bucket whose policy OSS refuses to take back (an injected refusal)
    cloud.load_estate(estate())
    cloud.faults(
        action="oss:PutBucketPolicy",
        error={"code": "InvalidPolicyDocument", "status": 400, "ec": "0030-00000005"},
    )
    since = last_seq(cloud)
    done = certpilot(cloud, "disable-https", "--domain", OSS_DOMAIN, "--yes")
    # then it fails, and the certificate was never touched (no HTTPS-less, HTTP-less domain)
    assert done.returncode == 1
    assert "oss:PutCname" not in [a for a, _ in writes(cloud, since, refused=True)]
    assert not handshake_fails(cloud, OSS_DOMAIN)


# -- fallback -------------------------------------------------------------------------


def test_oss_fallback_lets_http_through_and_ends_by_itself(cloud: Any) -> None:
    # given an OSS custom domain whose bucket denies plain HTTP
    cloud.load_estate(estate())
    assert status(cloud, OSS_DOMAIN) == 403
    # when an emergency fallback of two hours starts
    done = certpilot(cloud, "fallback", "--domain", OSS_DOMAIN, "--for", "2h")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    until = fallback.parse_iso(out["until"])
    assert until is not None
    assert [(s["part"], s["outcome"]) for s in out["steps"]] == [("bucket-policy", "suspended")]
    # then plain HTTP gets through, someone else's statements untouched
    poll(lambda: status(cloud, OSS_DOMAIN), lambda s: s == 200)
    assert policy_statements(cloud)[:2] == THEIRS
    # and every run reports it, with its end
    clients, record, _ = record_of(cloud, OSS_DOMAIN)
    now = datetime.now(timezone.utc)
    findings = fallback.active_fallbacks(clients, [record], now)
    assert [(f.code.value, f.domain, f.until) for f in findings] == [
        ("FALLBACK_ACTIVE", OSS_DOMAIN, until)
    ]
    # when the account's time passes the end, with nothing of certpilot running
    cloud.settings(time_offset=2 * 3600 + 60)
    # then plain HTTP is denied again by OSS itself, and nothing is reported active
    assert status(cloud, OSS_DOMAIN) == 403
    later = now + timedelta(hours=2, minutes=1)
    assert fallback.active_fallbacks(clients, [record], later) == []


def test_oss_fallback_end_restores_at_once(cloud: Any) -> None:
    cloud.load_estate(estate())
    assert certpilot(cloud, "fallback", "--domain", OSS_DOMAIN, "--for", "2h").returncode == 0
    poll(lambda: status(cloud, OSS_DOMAIN), lambda s: s == 200)
    done = certpilot(cloud, "fallback", "--domain", OSS_DOMAIN, "--end")
    assert done.returncode == 0, done.stderr
    assert [s["outcome"] for s in json.loads(done.stdout)["steps"]] == ["restored"]
    poll(lambda: status(cloud, OSS_DOMAIN), lambda s: s == 403)
    assert policy_statements(cloud) == [*THEIRS, https_only_statement(BUCKET)]


def test_fallback_on_a_bucket_that_denies_nothing_adds_nothing(cloud: Any) -> None:
    data = estate()
    data["buckets"][0]["policy"] = {"Version": "1", "Statement": THEIRS}
    cloud.load_estate(data)
    since = last_seq(cloud)
    done = certpilot(cloud, "fallback", "--domain", OSS_DOMAIN, "--for", "30m")
    assert done.returncode == 0, done.stderr
    assert [s["outcome"] for s in json.loads(done.stdout)["steps"]] == ["not-enforced"]
    assert writes(cloud, since, refused=True) == []


def test_cdn_fallback_suspends_the_redirect_and_the_next_run_restores_it(cloud: Any) -> None:
    # given a CDN domain forcing HTTPS, fetching its origin over the visitor's scheme
    # from a bucket that denies plain HTTP
    cloud.load_estate(estate())
    assert status(cloud, CDN_DOMAIN) == 301
    # when a one-hour fallback starts
    done = certpilot(cloud, "fallback", "--domain", CDN_DOMAIN, "--for", "1h")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [(s["part"], s["outcome"]) for s in out["steps"]] == [
        ("cdn-redirect", "suspended"),
        ("bucket-policy", "suspended"),
    ]
    # then plain HTTP is served through CDN (no redirect, no 403 from the origin)
    poll(lambda: status(cloud, CDN_DOMAIN), lambda s: s == 200)
    # and HSTS still goes out over HTTPS
    assert get(cloud, CDN_DOMAIN, tls=True).getheader("Strict-Transport-Security")
    clients, record, _ = record_of(cloud, CDN_DOMAIN)
    now = datetime.now(timezone.utc)
    active = fallback.active_fallbacks(clients, [record], now)
    assert [(f.code.value, f.until) for f in active] == [
        ("FALLBACK_ACTIVE", fallback.parse_iso(out["until"]))
    ]
    # when a run comes before the end, it restores nothing
    assert fallback.restore_expired(clients, now, FAST) == []
    assert status(cloud, CDN_DOMAIN) == 200
    # when the next run comes after the end
    cloud.settings(time_offset=3600 + 60)
    restored = fallback.restore_expired(clients, now + timedelta(hours=1, minutes=1), FAST)
    # then the redirect is back (same config, same rewrite code) and the record gone
    assert [(s.target, s.outcome) for s in restored] == [
        (CDN_DOMAIN, fallback.StepOutcome.RESTORED)
    ]
    poll(lambda: status(cloud, CDN_DOMAIN), lambda s: s == 301)
    assert fallback.cdn_fallbacks(clients.cdn) == {}
    assert fallback.active_fallbacks(clients, [record], now + timedelta(hours=2)) == []


def test_cdn_fallback_end_restores_the_redirect_at_once(cloud: Any) -> None:
    cloud.load_estate(
        estate(
            cdn_configs={
                "https_force": {"enable": "on", "https_rewrite": "308"},
                "forward_scheme": {"enable": "on", "scheme_origin": "https"},
            }
        )
    )
    started = certpilot(cloud, "fallback", "--domain", CDN_DOMAIN, "--for", "2h")
    # an origin fetched over HTTPS: the bucket is left as it is
    assert [s["part"] for s in json.loads(started.stdout)["steps"]] == ["cdn-redirect"]
    poll(lambda: status(cloud, CDN_DOMAIN), lambda s: s == 200)
    done = certpilot(cloud, "fallback", "--domain", CDN_DOMAIN, "--end")
    assert done.returncode == 0, done.stderr
    poll(lambda: status(cloud, CDN_DOMAIN), lambda s: s == 308)
    clients, _, _ = record_of(cloud, CDN_DOMAIN)
    assert fallback.cdn_fallbacks(clients.cdn) == {}


def test_disable_during_a_cdn_fallback_drops_its_record(cloud: Any) -> None:
    cloud.load_estate(estate())
    clients, record, inventory = record_of(cloud, CDN_DOMAIN)
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    fallback.start(clients, record, until, FAST)
    report = disable_https(clients, record, inventory, dry_run=False, pacing=FAST)
    assert report.ok
    ends = {s.action: s.outcome for s in report.steps}
    assert ends[Action.REMOVE_REDIRECT] is StepOutcome.DONE
    assert ends[Action.END_FALLBACK] is StepOutcome.DONE
    assert fallback.cdn_fallbacks(clients.cdn) == {}


# -- the enforce-https run and a CDN fallback ---------------------------------------


def test_enforce_run_keeps_a_cdn_fallback_and_the_run_after_its_end_restores_it(
    cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from certpilot.jobs.deploy_cert.engine import build_deps
    from certpilot.jobs.enforce_https.engine import enforce_https
    from certpilot.jobs.enforce_https.events import EnforceRequest, Trigger
    from tests.e2e.enforce_helpers import domain_of, invoke, use_estate

    # given a CDN domain under a one-hour fallback (origin over HTTPS)
    configs = {
        "https_force": {"enable": "on", "https_rewrite": "301"},
        "HSTS": {"enabled": "on", "https_hsts_max_age": 5184000},
        "forward_scheme": {"enable": "on", "scheme_origin": "https"},
    }
    use_estate(cloud, monkeypatch, estate(cdn_configs=configs))
    clients, record, _ = record_of(cloud, CDN_DOMAIN)
    now = datetime.now(timezone.utc)
    until = fallback.fallback_end(now, timedelta(hours=1))
    fallback.start(clients, record, until, FAST)
    poll(lambda: status(cloud, CDN_DOMAIN), lambda s: s == 200)
    # when enforce-https runs for it (a direct event)
    summary = invoke(cloud, {"domain": CDN_DOMAIN})
    # then it is left as it is, and the run says so with the fallback's end
    assert domain_of(summary, CDN_DOMAIN)["reason"] == "fallback-active"
    assert {(f["code"], f["domain"], f.get("until")) for f in summary["findings"]} >= {
        ("FALLBACK_ACTIVE", CDN_DOMAIN, fallback.iso(until))
    }
    assert status(cloud, CDN_DOMAIN) == 200
    # when the next run comes after the end (the account's time and the run's clock)
    cloud.settings(time_offset=3600 + 60)
    deps = replace(build_deps(None), clock=lambda: now + timedelta(hours=1, minutes=1))
    after = enforce_https(EnforceRequest(Trigger.DIRECT, domains=(CDN_DOMAIN,)), deps)
    # then the redirect is back, the record gone, and nothing reports a fallback
    poll(lambda: status(cloud, CDN_DOMAIN), lambda s: s == 301)
    assert fallback.cdn_fallbacks(clients.cdn) == {}
    assert "FALLBACK_ACTIVE" not in {f["code"] for f in after["findings"]}
    assert domain_of(after, CDN_DOMAIN)["reason"] == "verified"


def test_cdn_fallback_cut_short_by_an_error_leaves_a_record_the_restore_step_clears(
    cloud: Any,
) -> None:
    # given a CDN domain forcing HTTPS, and CDN refusing the redirect's switch-off (a
    # role without that permission)
    cloud.load_estate(estate())
    cloud.faults(
        action="cdn:BatchSetCdnDomainConfig",
        error={"code": "Forbidden.RAM", "status": 403},
        times=1,
    )
    # when a fallback starts, then it fails, with the end recorded first
    done = certpilot(cloud, "fallback", "--domain", CDN_DOMAIN, "--for", "1h")
    assert done.returncode == 1 and "Forbidden.RAM" in done.stderr
    clients, _, _ = record_of(cloud, CDN_DOMAIN)
    assert set(fallback.cdn_fallbacks(clients.cdn)) == {CDN_DOMAIN}
    # and the redirect is still on: nothing half-done reaches visitors
    assert status(cloud, CDN_DOMAIN) == 301
    # when the run after the recorded end comes, then the record goes, the redirect stays
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    steps = fallback.restore_expired(clients, later, FAST)
    assert [(s.target, s.outcome) for s in steps] == [(CDN_DOMAIN, fallback.StepOutcome.RESTORED)]
    assert fallback.cdn_fallbacks(clients.cdn) == {}
    assert status(cloud, CDN_DOMAIN) == 301
