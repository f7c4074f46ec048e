"""Faults that fire after the handler (`"after": true`): the write is applied, yet the
client sees an error or a dropped connection, as when the cloud applies a change and
its answer is lost. Driven through the real SDKs against the emulator process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_cdn20180510 import models as cdn_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from darabonba.exceptions import UnretryableException

from tests.conftest import Emulator, EmulatorError

pytestmark = pytest.mark.integration

ESTATE: dict[str, Any] = {
    "settings": {"propagation_delay": 0},
    "certificates": [{"name": "old", "sans": ["*.example.com"], "days": 20}],
    "buckets": [{"name": "assets", "cnames": [{"domain": "static.example.com"}]}],
    "cdn_domains": [{"name": "cdn.example.com", "origin": "assets", "certificate": "old"}],
}


@pytest.fixture
def account(cloud: Emulator) -> Emulator:
    cloud.load_estate(ESTATE)
    return cloud


def issue(cloud: Emulator, *sans: str) -> dict[str, Any]:
    """A certificate from the emulator's CA, in CAS: `{"certId", "identifier", ...}`."""
    issued: dict[str, Any] = cloud.admin("POST", "cas/issue", {"sans": list(sans)})
    return issued


def put_cname(cloud: Emulator, domain: str, cert_id: str | None = None) -> Any:
    """PutCname on bucket `assets`, without the OSS SDK's own retries."""
    config = oss.CertificateConfiguration(cert_id=cert_id) if cert_id else None
    return cloud.oss_client(retries=1).put_cname(
        oss.PutCnameRequest(
            bucket="assets",
            bucket_cname_configuration=oss.BucketCnameConfiguration(
                cname=oss.Cname(domain=domain, certificate_configuration=config)
            ),
        )
    )


def oss_error(call: Callable[[], Any]) -> Any:
    with pytest.raises(oss.exceptions.OperationError) as caught:
        call()
    return caught.value.unwrap()


def oss_bound(cloud: Emulator, domain: str) -> int | None:
    cname = cloud.state()["buckets"]["assets"]["cnames"].get(domain)
    assert cname is not None, f"{domain} is not bound to bucket assets"
    return cname["certificate"]["cert_id"] if cname["certificate"] else None


def set_cdn_certificate(cloud: Emulator, domain: str, cert_id: int) -> None:
    cloud.cdn_client().set_cdn_domain_sslcertificate(
        cdn_models.SetCdnDomainSSLCertificateRequest(
            domain_name=domain, sslprotocol="on", cert_type="cas", cert_id=cert_id
        )
    )


def cdn_bound(cloud: Emulator, domain: str) -> str:
    """The CertId that DescribeDomainCertificateInfo reports for `domain`."""
    info = cloud.cdn_client().describe_domain_certificate_info(
        cdn_models.DescribeDomainCertificateInfoRequest(domain_name=domain)
    )
    cert_id: str = info.body.cert_infos.cert_info[0].cert_id
    return cert_id


def test_a_write_is_applied_and_then_answered_with_the_injected_error(account: Emulator) -> None:
    # given PutCname fails once with a 500, after OSS has applied it
    [fault] = account.faults(
        action="oss:PutCname", error={"code": "InternalError", "status": 500}, after=True, times=1
    )
    assert fault["after"] is True
    new = issue(account, "*.example.com")
    # when a certificate is bound to a custom domain
    err = oss_error(lambda: put_cname(account, "static.example.com", new["identifier"]))
    # then the client gets the error in OSS's format...
    assert (err.status_code, err.code) == (500, "InternalError")
    # ...yet the binding is in place, and the call counts as an error
    assert oss_bound(account, "static.example.com") == new["certId"]
    assert account.action_stats("oss:PutCname") == {"calls": 1, "throttled": 0, "errors": 1}
    # and once used up the fault is gone: a retry meets the binding it made itself
    assert account.admin("GET", "faults")["faults"] == []
    retry = oss_error(lambda: put_cname(account, "static.example.com", new["identifier"]))
    assert (retry.code, retry.ec) == ("InvalidArgument", "0018-00000209")  # PreviousCertId


def test_a_write_is_applied_and_then_its_connection_dropped(account: Emulator) -> None:
    # given SetCdnDomainSSLCertificate loses every answer after CDN applied it
    account.faults(action="cdn:SetCdnDomainSSLCertificate", drop=True, after=True)
    new = issue(account, "*.example.com")
    # when a certificate is set on the CDN domain
    with pytest.raises(UnretryableException, match="closed connection without response"):
        set_cdn_certificate(account, "cdn.example.com", new["certId"])
    # then the control plane holds it all the same, and the call counts as an error
    assert cdn_bound(account, "cdn.example.com") == str(new["certId"])
    stats = account.action_stats("cdn:SetCdnDomainSSLCertificate")
    assert (stats["calls"], stats["errors"]) == (1, 1)


def test_an_after_fault_spares_a_call_whose_handler_fails(account: Emulator) -> None:
    # given PutCname answers 503 once, after applying a change
    account.faults(
        action="oss:PutCname", error={"code": "ServiceUnavailable", "status": 503}, after=True
    )
    # when a call fails by itself (a domain Alibaba reserves): it gets its own error
    refused = oss_error(lambda: put_cname(account, "x.aliyuncs.com"))
    assert refused.code == "InvalidArgument"
    # and the fault has not been used
    [fault] = account.admin("GET", "faults")["faults"]
    assert fault["applied"] == 0
    # while the next call that succeeds (a new domain, proven ours) gets the fault, with
    # its change applied
    account.verify_domain("assets", "docs.example.com")
    assert oss_error(lambda: put_cname(account, "docs.example.com")).code == "ServiceUnavailable"
    assert oss_bound(account, "docs.example.com") is None  # bound, without certificate
    assert account.admin("GET", "faults")["faults"][0]["applied"] == 1


def test_oss_cname_faults_can_target_one_domain(account: Emulator) -> None:
    # given a fault on PutCname for one custom domain only (by its PutCname body)
    account.faults(
        action="oss:PutCname",
        where={"domain": "static.example.com"},
        error={"code": "InternalError", "status": 500},
        after=True,
    )
    new = issue(account, "*.example.com")
    # when two domains are bound: the other one (new, so proven ours first) is answered
    # normally
    account.verify_domain("assets", "img.example.com")
    put_cname(account, "img.example.com", new["identifier"])
    # and the targeted one (however it is spelt) fails after being applied
    err = oss_error(lambda: put_cname(account, "Static.Example.com.", new["identifier"]))
    assert err.code == "InternalError"
    assert oss_bound(account, "static.example.com") == new["certId"]
    assert oss_bound(account, "img.example.com") == new["certId"]


def test_a_domain_condition_also_works_before_the_handler(account: Emulator) -> None:
    # given a fault before the handler, for an IDN given in its Unicode form
    account.faults(
        action="oss:PutCname",
        where={"domain": "xn--fa-hia.example.com"},
        error={"code": "InternalError", "status": 500},
    )
    # when that domain is bound, then nothing changes
    assert oss_error(lambda: put_cname(account, "faß.example.com")).code == "InternalError"
    assert "xn--fa-hia.example.com" not in account.state()["buckets"]["assets"]["cnames"]


def test_after_faults_follow_rate_and_times(account: Emulator) -> None:
    client = account.cdn_client()
    request = cdn_models.DescribeUserDomainsRequest()
    # given an after fault at rate 0, then the call is answered normally
    account.faults(action="cdn:*", error="InternalError", after=True, rate=0.0)
    assert client.describe_user_domains(request).status_code == 200
    # given one that fires twice, then two calls fail and the third is answered
    account.clear_faults()
    account.faults(action="cdn:DescribeUserDomains", error="InternalError", after=True, times=2)
    for _ in range(2):
        with pytest.raises(AlibabaCloudException) as caught:
            client.describe_user_domains(request)
        assert (caught.value.status_code, caught.value.code) == (500, "InternalError")
    assert client.describe_user_domains(request).status_code == 200
    assert account.action_stats("cdn:DescribeUserDomains")["errors"] == 2


@pytest.mark.parametrize(
    "spec",
    [
        {"after": "yes", "error": "InternalError"},
        {"after": True, "times": 0, "error": "InternalError"},
        {"latency": -1},
        {"latency": "NaN"},
        {"after": True},  # neither latency, error nor drop
    ],
)
def test_invalid_after_faults_are_rejected(cloud: Emulator, spec: dict[str, Any]) -> None:
    with pytest.raises(EmulatorError, match="400"):
        cloud.faults(action="oss:PutCname", **spec)
    assert cloud.admin("GET", "faults")["faults"] == []
