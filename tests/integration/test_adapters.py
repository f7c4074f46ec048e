"""The cloud adapters against the emulator, through the real SDKs.

Errors are mapped by code (unknown resources -> NotFoundError, bad keys -> AuthError,
a stale PreviousCertId -> ConflictError), retries absorb what is retryable and stop at
what is not, and no error message carries a credential.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from certpilot.cloud.cdn import FUNC_HTTPS_FORCE, CdnFunction
from certpilot.cloud.clients import CloudClients
from certpilot.cloud.fc import FunctionError, PayloadTooLarge
from certpilot.core.errors import (
    AuthError,
    ConflictError,
    DomainNotVerified,
    NotFoundError,
    ThrottledError,
    TransientError,
)
from certpilot.core.model import Location
from tests import pki
from tests.integration.clients import calls, make_clients
from tests.integration.polling import poll

pytestmark = pytest.mark.integration

ESTATE: dict[str, Any] = {
    "certificates": [
        {"name": "wild-one", "sans": ["*.example.com"], "ca": "one", "days": 90},
        {"name": "wild-two", "sans": ["*.example.com"], "ca": "two", "days": 120},
        {"name": "other", "sans": ["other.example.org"], "ca": "one", "days": 90},
    ],
    "buckets": [
        {
            "name": "site-hz",
            "region": "cn-hangzhou",
            "cnames": [{"domain": "www.example.com", "certificate": "wild-one"}],
        },
        {"name": "site-sh", "region": "cn-shanghai", "cnames": [{"domain": "sh.example.com"}]},
    ],
    "cdn_domains": [
        {"name": "cdn.example.com", "origin": "site-hz"},
        {"name": "img.example.com", "origin": "site-hz"},
    ],
}


def cas_ids(clients: CloudClients) -> dict[str, int]:
    return {c.name: c.cas_id for c in clients.cas.list_certificates()}


@pytest.fixture
def estate(cloud: Any) -> Any:
    cloud.load_estate(ESTATE)
    return cloud


# --------------------------------------------------------------------------- OSS


def test_oss_lists_buckets_of_every_region_and_their_cnames(estate: Any) -> None:
    clients = make_clients(estate)

    buckets = clients.oss.list_buckets()
    sh = clients.oss.list_cnames("site-sh", "cn-shanghai")
    hz = clients.oss.list_cnames("site-hz", "cn-hangzhou")

    assert {(b.name, b.region) for b in buckets} == {
        ("site-hz", "cn-hangzhou"),
        ("site-sh", "cn-shanghai"),
    }
    assert [(c.domain, c.certificate) for c in sh] == [("sh.example.com", None)]
    [www] = hz
    assert www.certificate is not None and www.certificate.location is Location.OSS
    assert www.certificate.cas_id == cas_ids(clients)["wild-one"]
    assert www.cert_identifier == f"{www.certificate.cas_id}-cn-hangzhou"
    assert www.certificate.not_after is not None and www.certificate.fingerprint


def test_oss_bucket_listing_follows_every_page(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given five buckets and a page size of two
    from certpilot.cloud import oss

    cloud.load_estate({"buckets": [{"name": f"bucket-{n}"} for n in range(5)]})
    monkeypatch.setattr(oss, "LIST_BUCKETS_PAGE", 2)

    # When the buckets are listed
    buckets = make_clients(cloud).oss.list_buckets()

    # Then all of them came, over three ListBuckets pages (2 + 2 + 1)
    assert sorted(b.name for b in buckets) == [f"bucket-{n}" for n in range(5)]
    assert calls(cloud, "oss:ListBuckets") == 3


def test_oss_bind_checks_the_previous_certificate(estate: Any) -> None:
    # Given www.example.com hosting wild-one on OSS
    clients = make_clients(estate)
    ids = cas_ids(clients)
    [www] = clients.oss.list_cnames("site-hz", "cn-hangzhou")
    one, two = f"{ids['wild-one']}-cn-hangzhou", f"{ids['wild-two']}-cn-hangzhou"

    # When binding wild-two while naming a stale previous certificate
    with pytest.raises(ConflictError) as stale:
        clients.oss.bind_certificate("site-hz", "cn-hangzhou", "www.example.com", two, two, False)

    # Then it is a conflict (EC 0018-00000209), and naming the bound one works
    assert stale.value.ec == "0018-00000209"
    assert www.cert_identifier == one
    clients.oss.bind_certificate("site-hz", "cn-hangzhou", "www.example.com", two, one, False)
    [after] = clients.oss.list_cnames("site-hz", "cn-hangzhou")
    assert after.cert_identifier == two

    # And unbinding with the current id removes the hosted certificate
    clients.oss.unbind_certificate("site-hz", "cn-hangzhou", "www.example.com", two)
    [gone] = clients.oss.list_cnames("site-hz", "cn-hangzhou")
    assert gone.certificate is None and gone.cert_identifier is None


def test_oss_never_recreates_a_binding_removed_meanwhile(estate: Any) -> None:
    # Given www.example.com found bound, then removed from its bucket by someone else
    import alibabacloud_oss_v2 as oss

    clients = make_clients(estate)
    [www] = clients.oss.list_cnames("site-hz", "cn-hangzhou")
    estate.oss_client().delete_cname(
        oss.DeleteCnameRequest(
            bucket="site-hz",
            bucket_cname_configuration=oss.BucketCnameConfiguration(
                cname=oss.Cname(domain="www.example.com")
            ),
        )
    )
    two = f"{cas_ids(clients)['wild-two']}-cn-hangzhou"

    # When certpilot binds a certificate to it, or unbinds the one it saw
    with pytest.raises(DomainNotVerified) as bind:
        clients.oss.bind_certificate(
            "site-hz", "cn-hangzhou", "www.example.com", two, www.cert_identifier
        )
    with pytest.raises(DomainNotVerified):
        clients.oss.unbind_certificate(
            "site-hz", "cn-hangzhou", "www.example.com", www.cert_identifier
        )

    # Then OSS refuses (not bound, not proven ours): a not-found, never retried, and the
    # binding stays gone
    assert (bind.value.code, bind.value.status) == ("NeedVerifyDomainOwnership", 400)
    assert isinstance(bind.value, NotFoundError)
    assert calls(estate, "oss:PutCname") == 2
    assert clients.oss.list_cnames("site-hz", "cn-hangzhou") == []


def test_oss_bucket_policy_round_trip(estate: Any) -> None:
    clients = make_clients(estate)
    policy = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": ["oss:*"],
                "Principal": ["*"],
                "Resource": ["acs:oss:*:*:site-sh", "acs:oss:*:*:site-sh/*"],
                "Condition": {"Bool": {"acs:SecureTransport": ["false"]}},
            }
        ],
    }

    assert clients.oss.get_bucket_policy("site-sh", "cn-shanghai") is None
    clients.oss.put_bucket_policy("site-sh", "cn-shanghai", json.dumps(policy))
    stored = clients.oss.get_bucket_policy("site-sh", "cn-shanghai")

    assert stored is not None and json.loads(stored) == policy
    with pytest.raises(NotFoundError) as missing:
        clients.oss.get_bucket_policy("no-such-bucket", "cn-hangzhou")
    assert missing.value.code == "NoSuchBucket"


def test_oss_bad_secret_is_an_auth_error_at_once(estate: Any) -> None:
    # Given a wrong AccessKey secret
    secret = "WrongSecretValue0123456789abcdefXYZ"
    clients = make_clients(estate, ALIBABA_CLOUD_ACCESS_KEY_SECRET=secret)

    # When listing buckets
    with pytest.raises(AuthError) as failure:
        clients.oss.list_buckets()

    # Then one request was made (neither the SDK nor certpilot retried it) and the
    # error names the code, never the secret
    assert failure.value.code == "SignatureDoesNotMatch"
    assert estate.stats()["totals"]["calls"] == 1
    assert secret not in str(failure.value)
    assert estate.access_key_secret not in str(failure.value)


# --------------------------------------------------------------------------- CDN


def settled(clients: Any, domain: str) -> None:
    """Wait until `domain` is online again: a write to a configuring domain is ServiceBusy."""
    poll(
        lambda: {d.name: d.status for d in clients.cdn.list_domains()}[domain],
        lambda status: status == "online",
    )


def test_cdn_certificate_lifecycle(estate: Any) -> None:
    # Given a CDN domain without HTTPS
    clients = make_clients(estate)
    cas_id = cas_ids(clients)["wild-one"]
    assert clients.cdn.certificate_info("cdn.example.com") is None

    # When a CAS certificate is set on it
    clients.cdn.set_certificate("cdn.example.com", cas_id, "cn-hangzhou")

    # Then the domain reports it with its CAS id, and the HTTPS listing has it too
    info = clients.cdn.certificate_info("cdn.example.com")
    assert info is not None and info.cas_id == cas_id and info.location is Location.CDN
    assert info.region == "cn-hangzhou" and info.cert_type == "cas"
    listed = clients.cdn.https_certificates()
    assert set(listed) == {"cdn.example.com"}
    assert listed["cdn.example.com"].not_after == info.not_after
    domains = {d.name: d for d in clients.cdn.list_domains()}
    assert domains["cdn.example.com"].ssl_on and not domains["img.example.com"].ssl_on
    assert domains["img.example.com"].sources[0].type == "oss"

    # And, once the change has propagated, disabling turns HTTPS off
    settled(clients, "cdn.example.com")
    clients.cdn.disable_certificate("cdn.example.com")
    assert clients.cdn.certificate_info("cdn.example.com") is None
    assert clients.cdn.https_certificates() == {}  # NoHttpsDomain means an empty list


def test_cdn_unknown_domain_is_not_found(estate: Any) -> None:
    clients = make_clients(estate)

    with pytest.raises(NotFoundError) as failure:
        clients.cdn.certificate_info("nope.example.com")

    assert failure.value.code == "InvalidDomain.NotFound"
    assert failure.value.status == 404 and failure.value.request_id
    assert calls(estate, "cdn:DescribeDomainCertificateInfo") == 1


def test_cdn_feature_configs(estate: Any) -> None:
    clients = make_clients(estate)
    force = CdnFunction("https_force", {"enable": "on", "https_rewrite": "301"})

    refs = clients.cdn.set_configs(["cdn.example.com", "img.example.com"], [force])
    configs = clients.cdn.domain_configs("cdn.example.com", ["https_force"])

    assert {(r.domain, r.function_name) for r in refs} == {
        ("cdn.example.com", "https_force"),
        ("img.example.com", "https_force"),
    }
    [config] = configs
    assert config.arg("enable") == "on" and config.arg("https_rewrite") == "301"
    assert clients.cdn.domains_by_function(FUNC_HTTPS_FORCE) == {
        "cdn.example.com",
        "img.example.com",
    }
    settled(clients, "cdn.example.com")
    clients.cdn.delete_config("cdn.example.com", config.config_id)
    assert clients.cdn.domain_configs("cdn.example.com", ["https_force"]) == []


def test_probe_http_sees_the_edge_redirect_once_https_is_forced(estate: Any) -> None:
    # Given a CDN domain served over plain HTTP by the emulator's edge
    from certpilot.probe.tls import probe_http
    from tests.integration.polling import poll

    clients = make_clients(estate)
    before = probe_http("img.example.com", edge=estate.http, timeout=3)
    assert before.status not in (301, 308) and before.location is None

    # When HTTPS is forced with a 301
    force = CdnFunction("https_force", {"enable": "on", "https_rewrite": "301"})
    clients.cdn.set_configs(["img.example.com"], [force])

    # Then the probe reports the redirect without following it (once it has propagated)
    after = poll(
        lambda: probe_http("img.example.com", edge=estate.http, path="/a?b=1", timeout=3),
        lambda r: r.status == 301,
    )
    assert after.location == "https://img.example.com/a?b=1"


def test_cdn_throttling_with_retry_after_is_absorbed(estate: Any) -> None:
    # Given a throttled answer carrying x-acs-retry-after (a ThrottlingException in the SDK)
    clients = make_clients(estate)
    estate.faults(
        action="cdn:DescribeUserDomains",
        error={"code": "Throttling.User", "status": 400, "headers": {"x-acs-retry-after": "20"}},
        times=1,
    )

    domains = clients.cdn.list_domains()

    assert len(domains) == 2
    assert calls(estate, "cdn:DescribeUserDomains") == 2


def test_persistent_5xx_gives_up_after_the_attempt_budget(estate: Any) -> None:
    clients = make_clients(estate, max_attempts=3)
    estate.faults(action="cdn:DescribeUserDomains", error={"code": "InternalError", "status": 500})

    with pytest.raises(TransientError) as failure:
        clients.cdn.list_domains()

    assert failure.value.code == "InternalError" and failure.value.retryable
    assert calls(estate, "cdn:DescribeUserDomains") == 3


def test_persistent_throttling_surfaces_as_throttled(estate: Any) -> None:
    clients = make_clients(estate, max_attempts=2)
    estate.faults(
        action="cas:ListUserCertificateOrder", error={"code": "Throttling", "status": 400}
    )

    with pytest.raises(ThrottledError):
        clients.cas.list_certificates()

    assert calls(estate, "cas:ListUserCertificateOrder") == 2


def test_dropped_connections_are_retried(estate: Any) -> None:
    clients = make_clients(estate)
    estate.faults(action="cdn:DescribeUserDomains", drop=True, times=1)

    assert len(clients.cdn.list_domains()) == 2
    assert calls(estate, "cdn:DescribeUserDomains") == 2


def test_tea_bad_key_is_an_auth_error(estate: Any) -> None:
    clients = make_clients(estate, ALIBABA_CLOUD_ACCESS_KEY_ID="LTAI5tUnknownKey0000")

    with pytest.raises(AuthError) as failure:
        clients.cdn.list_domains()

    assert failure.value.code == "InvalidAccessKeyId.NotFound"
    assert estate.stats()["totals"]["calls"] == 1
    assert "LTAI5tUnknownKey0000" not in str(failure.value)


# --------------------------------------------------------------------------- CAS


def test_cas_upload_list_and_detail_without_keys(cloud: Any) -> None:
    # Given a certificate uploaded to CAS
    clients = make_clients(cloud)
    issued = pki.build_pki(("up.example.com", "*.up.example.com"), base=pki.real_now())
    cert_pem = issued.chain_pem().decode()
    key_pem = pki.key_bytes(issued.leaf.key).decode()
    cas_id = upload(cloud, "uploaded-one", cert_pem, key_pem)

    # When it is listed and read in detail
    [summary] = clients.cas.list_certificates()
    detail = clients.cas.get_certificate(cas_id)

    # Then the listing and the detail describe it, and the chain is leaf first
    assert summary.cas_id == cas_id and summary.upload
    assert set(summary.sans) == {"up.example.com", "*.up.example.com"}
    assert detail.identifier == f"{cas_id}-cn-hangzhou"
    assert detail.not_after is not None and detail.not_after == issued.leaf.cert.not_valid_after_utc
    assert detail.sha256 and len(detail.sha256) == 64
    assert detail.chain is not None
    assert [e.common_name for e in detail.chain] == [
        "up.example.com",
        "certpilot Test Intermediate 1",
    ]
    assert detail.cert_pem is None  # CertFilter=true: no PEM
    assert not any(hasattr(detail, field) for field in ("cert", "key", "key_pem"))


def upload(cloud: Any, name: str, cert_pem: str, key_pem: str) -> int:
    """UploadUserCertificate through the real CAS SDK (certpilot itself never uploads)."""
    from alibabacloud_cas20200407 import models
    from alibabacloud_tea_util.models import RuntimeOptions

    request = models.UploadUserCertificateRequest(name=name, cert=cert_pem, key=key_pem)
    response = cloud.cas_client().upload_user_certificate_with_options(request, RuntimeOptions())
    cert_id: int = response.body.cert_id
    return cert_id


def test_cas_detail_with_pem_keeps_the_chain_and_drops_the_key(cloud: Any) -> None:
    # Given a certificate uploaded to CAS with its key
    clients = make_clients(cloud)
    issued = pki.build_pki(("pem.example.com",), base=pki.real_now())
    key_pem = pki.key_bytes(issued.leaf.key).decode()
    cas_id = upload(cloud, "with-pem", issued.chain_pem().decode(), key_pem)

    # When the adapter reads it with its PEM (CertFilter=false: CAS sends the key too)
    detail = clients.cas.get_certificate(cas_id, with_pem=True)

    # Then the PEM chain is the one CAS holds, and the key is in no field of the result
    assert detail.cert_pem == issued.chain_pem().decode()
    assert "PRIVATE KEY" not in repr(asdict(detail))
    assert key_pem.splitlines()[1] not in repr(asdict(detail))
    assert calls(cloud, "cas:GetUserCertificateDetail") == 1


def test_cas_unknown_certificate_is_not_found(cloud: Any) -> None:
    clients = make_clients(cloud)

    with pytest.raises(NotFoundError) as failure:
        clients.cas.get_certificate(424242)

    assert failure.value.code == "NotFound" and failure.value.service == "cas"


# --------------------------------------------------------------------------- FC

HANDLER = """
import json

def handler(event, context):
    data = json.loads(event)
    if data.get("fail"):
        raise RuntimeError("asked to fail")
    return {"echo": data, "request_id": context.request_id}
"""


def test_fc_invoke_sync_async_and_failures(cloud: Any, tmp_path: Path) -> None:
    code = tmp_path / "echo.py"
    code.write_text(HANDLER)
    cloud.register_function("echo", code)
    clients = make_clients(cloud)

    reply = clients.fc.invoke("echo", b'{"x": 1}', asynchronous=False)
    queued = clients.fc.invoke("echo", b'{"x": 2}', asynchronous=True)

    assert reply is not None and json.loads(reply)["echo"] == {"x": 1}
    assert queued is None
    with pytest.raises(FunctionError) as failed:
        clients.fc.invoke("echo", b'{"fail": true}', asynchronous=False)
    assert failed.value.code == "UnhandledInvocationError" and "asked to fail" in str(failed.value)
    with pytest.raises(NotFoundError) as missing:
        clients.fc.invoke("nope", b"{}", asynchronous=False)
    assert missing.value.code == "FunctionNotFound"


SLOW_HANDLER = """
import json
import time

def handler(event, context):
    time.sleep(json.loads(event)["sleep"])
    return {"request_id": context.request_id}
"""


def test_fc_sync_invoke_waits_for_a_run_longer_than_the_read_timeout(
    cloud: Any, tmp_path: Path
) -> None:
    # given a function that takes longer than certpilot's API read timeout
    code = tmp_path / "slow.py"
    code.write_text(SLOW_HANDLER)
    cloud.register_function("slow", code)
    clients = make_clients(cloud, CERTPILOT_READ_TIMEOUT="0.5")
    invocations_before = cloud.action_stats("fc:InvokeFunction")["calls"]
    # when it is invoked synchronously
    reply = clients.fc.invoke("slow", b'{"sleep": 1.5}', asynchronous=False)
    # then the reply is the function's, and the function ran once (no retry on a read
    # timeout that would have run it a second time)
    assert reply is not None and json.loads(reply)["request_id"]
    assert cloud.action_stats("fc:InvokeFunction")["calls"] - invocations_before == 1


def test_fc_refuses_an_async_payload_over_128_kb_before_sending(cloud: Any, tmp_path: Path) -> None:
    # given a registered function
    code = tmp_path / "echo.py"
    code.write_text(HANDLER)
    cloud.register_function("echo", code)
    clients = make_clients(cloud)

    # when certpilot would invoke it asynchronously with 200 KB
    with pytest.raises(PayloadTooLarge) as refused:
        clients.fc.invoke("echo", b"x" * (200 * 1024), asynchronous=True)

    # then it is refused by code, and no call reached FC
    assert (refused.value.code, refused.value.status) == ("EntityTooLarge", None)
    assert cloud.action_stats("fc:InvokeFunction")["calls"] == 0
    # while exactly 128 KB is sent (and FC accepts it)
    assert clients.fc.invoke("echo", b"1" * (128 * 1024), asynchronous=True) is None
    assert cloud.action_stats("fc:InvokeFunction") == {"calls": 1, "throttled": 0, "errors": 0}


# --------------------------------------------------------------------------- proxies


def test_endpoint_override_clears_proxy_variables(
    estate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given proxy variables pointing at a port where nothing listens
    for name in ("HTTP_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")

    # When clients are built for the emulator endpoint
    clients = make_clients(estate)

    # Then the variables are gone and the Tea and OSS clients reach the emulator
    assert "HTTP_PROXY" not in os.environ and "https_proxy" not in os.environ
    assert len(clients.cdn.list_domains()) == 2
    assert len(clients.oss.list_buckets()) == 2
