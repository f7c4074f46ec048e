"""Flow control, injected faults, stats and the admin API, driven through the real SDKs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_cas20200407 import models as cas_models
from alibabacloud_cdn20180510 import models as cdn_models
from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from darabonba.exceptions import UnretryableException
from darabonba.runtime import RuntimeOptions

from emulator.admin import dump
from tests.conftest import REPO, EmulatorError

pytestmark = pytest.mark.integration


def tea_error(call: Callable[[], Any]) -> AlibabaCloudException:
    with pytest.raises(AlibabaCloudException) as caught:
        call()
    return caught.value


def oss_error(call: Callable[[], Any]) -> Any:
    with pytest.raises(oss.exceptions.OperationError) as caught:
        call()
    return caught.value.unwrap()


def list_domains(client: Any, **params: Any) -> Any:
    return client.describe_user_domains(cdn_models.DescribeUserDomainsRequest(**params))


def poll(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# ----------------------------------------------------------------------- flow control


def test_an_action_over_its_qps_is_throttled_in_rpc_format(cloud):
    # Given DescribeUserDomains limited to 2 calls per second (bucket of one second)
    cloud.settings(qps={"cdn:DescribeUserDomains": 2})
    client = cloud.cdn_client()
    # When three calls arrive at once, then the third is refused like the cloud does
    assert list_domains(client).status_code == 200
    assert list_domains(client).status_code == 200
    refused = tea_error(lambda: list_domains(client))
    assert (refused.status_code, refused.code) == (400, "Throttling.User")
    assert "Request was denied due to user flow control." in refused.message
    # and other actions keep their own budget
    configs = cdn_models.DescribeCdnDomainConfigsRequest(domain_name="none.example.com")
    assert tea_error(lambda: client.describe_cdn_domain_configs(configs)).code != "Throttling.User"
    # and the bucket refills with time.
    poll(lambda: _succeeds(lambda: list_domains(client)))
    stats = cloud.action_stats("cdn:DescribeUserDomains")
    assert stats["throttled"] >= 1
    assert stats["calls"] == stats["throttled"] + 3


def _succeeds(call: Callable[[], Any]) -> bool:
    try:
        call()
    except AlibabaCloudException:
        return False
    return True


def test_qps_scale_applies_to_every_documented_limit(cloud):
    # DescribeUserDomains is documented at 100 QPS: a scale of 0.02 leaves 2.
    cloud.settings(qps_scale=0.02)
    client = cloud.cdn_client()
    outcomes = [_succeeds(lambda: list_domains(client)) for _ in range(4)]
    assert outcomes[:2] == [True, True]
    assert outcomes[2:] == [False, False]
    assert cloud.action_stats("cdn:DescribeUserDomains")["throttled"] == 2


def test_cas_is_throttled_at_its_documented_qps_times_the_scale(cloud):
    # Given ListUserCertificateOrder, documented at 10 QPS, scaled by 0.2 to 2 per second
    cloud.settings(qps_scale=0.2)
    client = cloud.cas_client()
    request = cas_models.ListUserCertificateOrderRequest(order_type="CERT")
    # When three calls arrive at once
    assert client.list_user_certificate_order(request).status_code == 200
    assert client.list_user_certificate_order(request).status_code == 200
    refused = tea_error(lambda: client.list_user_certificate_order(request))
    # Then the third is refused in the RPC format, while another CAS action still answers
    assert (refused.status_code, refused.code) == (400, "Throttling.User")
    upload = cas_models.UploadUserCertificateRequest(name="x", cert="not pem", key="not pem")
    assert tea_error(lambda: client.upload_user_certificate(upload)).code != "Throttling.User"
    assert cloud.action_stats("cas:ListUserCertificateOrder")["throttled"] == 1


def test_oss_throttling_answers_503_in_xml(cloud):
    cloud.settings(qps={"oss:ListBuckets": 1})
    client = cloud.oss_client(retries=1)
    client.list_buckets(oss.ListBucketsRequest())
    err = oss_error(lambda: client.list_buckets(oss.ListBucketsRequest()))
    assert (err.status_code, err.code) == (503, "MetaOperationQpsLimitExceeded")
    assert err.ec


def test_reset_restores_the_start_up_limits(cloud):
    cloud.settings(qps_scale=0.01, propagation_delay=5, qps={"cdn:X": 1})
    cloud.reset()
    settings = cloud.settings()
    assert settings["qps_scale"] == 1.0
    assert settings["qps"] == {}
    assert settings["propagation_delay"] == pytest.approx(0.3)


# ----------------------------------------------------------------------------- faults


def test_an_injected_error_fails_n_calls_then_clears(cloud):
    cloud.faults(
        action="cdn:DescribeUserDomains",
        error={"code": "ServiceBusy", "status": 403, "message": "The domain is being configured."},
        times=2,
    )
    client = cloud.cdn_client()
    for _ in range(2):
        err = tea_error(lambda: list_domains(client))
        assert (err.status_code, err.code) == (403, "ServiceBusy")
    assert list_domains(client).status_code == 200
    assert cloud.action_stats("cdn:DescribeUserDomains") == {
        "calls": 3,
        "throttled": 0,
        "errors": 2,
    }
    assert cloud.admin("GET", "faults")["faults"] == []


def test_a_fault_can_target_one_resource(cloud):
    cloud.faults(
        action="cdn:*",
        where={"DomainName": "bad.example.com"},
        error={"code": "InternalError", "status": 500},
    )
    client = cloud.cdn_client()
    good = cdn_models.DescribeCdnDomainConfigsRequest(domain_name="good.example.com")
    bad = cdn_models.DescribeCdnDomainConfigsRequest(domain_name="bad.example.com")
    assert tea_error(lambda: client.describe_cdn_domain_configs(good)).code != "InternalError"
    err = tea_error(lambda: client.describe_cdn_domain_configs(bad))
    assert (err.status_code, err.code) == (500, "InternalError")


def test_injected_errors_use_each_service_format(cloud):
    cloud.faults(
        {
            "action": "oss:ListBuckets",
            "error": {"code": "InternalError", "status": 500, "ec": "0000-00000001"},
        },
        {"action": "fc:InvokeFunction", "error": {"code": "ResourceThrottled", "status": 503}},
    )
    err = oss_error(lambda: cloud.oss_client(retries=1).list_buckets(oss.ListBucketsRequest()))
    assert (err.status_code, err.code, err.ec) == (500, "InternalError", "0000-00000001")
    fc_err = tea_error(
        lambda: cloud.fc_client().invoke_function_with_options(
            "any",
            fc_models.InvokeFunctionRequest(body=b""),
            fc_models.InvokeFunctionHeaders(),
            RuntimeOptions(),
        )
    )
    assert (fc_err.status_code, fc_err.code) == (503, "ResourceThrottled")


def test_latency_delays_the_answer(cloud):
    # Given a latency fault for one call
    cloud.faults(action="cdn:DescribeUserDomains", latency=0.3, times=1)
    client = cloud.cdn_client()
    # When the call is made, then the answer takes at least that long (a lower bound
    # only: a loaded machine may add to it, never take from it)
    started = time.monotonic()
    list_domains(client)
    assert time.monotonic() - started >= 0.3
    # and the fault is used up: it was applied once and is gone, so the next call is
    # not delayed by it
    assert cloud.admin("GET", "faults")["faults"] == []
    assert list_domains(client).status_code == 200


def test_a_dropped_connection_gets_no_answer(cloud):
    cloud.faults(action="cdn:DescribeUserDomains", drop=True, times=1)
    client = cloud.cdn_client()
    with pytest.raises(UnretryableException, match="closed connection without response"):
        list_domains(client)
    assert list_domains(client).status_code == 200
    assert cloud.action_stats("cdn:DescribeUserDomains")["errors"] == 1


def test_faults_at_a_rate_and_clearing(cloud):
    cloud.faults(action="*", error={"code": "ServiceUnavailable", "status": 503}, rate=0.0)
    assert list_domains(cloud.cdn_client()).status_code == 200
    cloud.faults(action="*", error={"code": "ServiceUnavailable", "status": 503}, rate=1.0)
    assert tea_error(lambda: list_domains(cloud.cdn_client())).code == "ServiceUnavailable"
    cloud.clear_faults()
    assert list_domains(cloud.cdn_client()).status_code == 200


def test_invalid_fault_specs_are_rejected(cloud):
    with pytest.raises(EmulatorError, match="400"):
        cloud.faults(action="cdn:X")  # neither latency, error nor drop
    with pytest.raises(EmulatorError, match="400"):
        cloud.faults(action="cdn:X", latency=1, colour="red")


# ---------------------------------------------------------------- stats, reset, state


def test_reset_isolates_tests(cloud):
    client = cloud.oss_client()
    client.put_bucket(oss.PutBucketRequest(bucket="left-behind"))
    cloud.faults(action="*", latency=0.01)
    assert "left-behind" in cloud.state()["buckets"]

    cloud.reset()

    assert cloud.state()["buckets"] == {}
    assert cloud.stats()["actions"] == {}
    assert cloud.admin("GET", "faults")["faults"] == []
    # the keys survive a reset
    assert client.list_buckets(oss.ListBucketsRequest()).status_code == 200


def _self_signed(domain: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def test_state_dump_shows_resources_but_no_private_keys(cloud):
    cert_pem, key_pem = _self_signed("dump.example.com")
    cloud.cas_client().upload_user_certificate(
        cas_models.UploadUserCertificateRequest(name="dump", cert=cert_pem, key=key_pem)
    )
    raw = cloud.admin("GET", "state")
    [certificate] = raw["certificates"].values()
    assert certificate["name"] == "dump"
    assert certificate["cert_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in str(raw)
    assert "key_pem" not in certificate


def test_unknown_admin_routes_and_settings_are_rejected(cloud):
    with pytest.raises(EmulatorError, match="404"):
        cloud.admin("GET", "nothing-here")
    with pytest.raises(EmulatorError, match="400"):
        cloud.settings(colour="red")


@pytest.mark.parametrize(
    "changes",
    [
        {"propagation_delay": "NaN"},
        {"propagation_delay": float("nan")},
        {"propagation_delay": float("inf")},
        {"propagation_delay": -1},
        {"propagation_delay": True},
        {"qps_scale": 0},
        {"qps_scale": float("inf")},
        {"burst": -2},
        {"clock_offset": float("nan")},
        {"qps": {"cdn:DescribeUserDomains": -1}},
        {"qps": {"cdn:DescribeUserDomains": float("nan")}},
        {"qps": [1]},
        {"verify_domain_ownership": "false"},
        {"security_token_expired": 1},
        # a valid change next to an invalid one is not applied either
        {"propagation_delay": 2, "qps_scale": -1},
    ],
)
def test_invalid_settings_are_refused_and_change_nothing(cloud, changes):
    # Given the start-up settings
    before = cloud.settings()
    # When an unusable value is posted, then it is a 400 naming the setting
    with pytest.raises(EmulatorError, match="400") as refused:
        cloud.settings(**changes)
    assert any(name in str(refused.value) for name in changes)
    # and no setting changed
    assert cloud.settings() == before


def test_valid_settings_round_trip(cloud):
    changed = cloud.settings(
        propagation_delay=0,
        qps_scale="2.5",
        clock_offset=-30,
        qps={"cdn:DescribeUserDomains": 0},
        verify_domain_ownership=True,
    )
    assert changed["propagation_delay"] == 0.0 and changed["qps_scale"] == 2.5
    assert changed["clock_offset"] == -30.0
    assert changed["qps"] == {"cdn:DescribeUserDomains": 0.0}
    assert changed["verify_domain_ownership"] is True
    assert cloud.settings(qps=None)["qps"] == {}


def test_an_estate_loads_through_the_admin_api(cloud):
    estate = json.loads((REPO / "emulator" / "estates" / "minimal.json").read_text())

    certificates = cloud.load_estate(estate)

    assert set(certificates) == {"wildcard-example-net", "backup-example-net"}
    state = cloud.state()
    assert "www.example.net" in state["buckets"]["site-prod"]["cnames"]
    assert "cdn.example.net" in state["cdn_domains"]
    # and the SDKs see it
    domains = list_domains(cloud.cdn_client()).body.domains.page_data
    assert [d.domain_name for d in domains] == ["cdn.example.net"]
    with pytest.raises(EmulatorError, match="400"):
        cloud.load_estate({"buckets": [{"name": "Not A Bucket"}]})


@dataclass
class _Holder:
    """A state object whose properties hold secrets under names and values alike."""

    name: str
    key_pem: str

    @property
    def label(self) -> str:
        return f"holder {self.name}"

    @property
    def access_key_secret(self) -> str:
        return "s3cr3t-by-name"

    @property
    def pem_bundle(self) -> str:
        return self.key_pem  # an innocent name, a private key inside


def test_the_state_dump_filters_properties_like_fields():
    # Given a state object with a secret field, and properties exposing secrets
    key_pem = _self_signed("dump.example.com")[1]
    holder = _Holder("h", key_pem)
    # When it is dumped for GET /_emulator/state
    dumped = dump({"h": holder}, now=0.0)
    # Then plain properties are there, and no secret is, whatever carries it
    assert dumped["h"]["name"] == "h" and dumped["h"]["label"] == "holder h"
    assert "key_pem" not in dumped["h"] and "access_key_secret" not in dumped["h"]
    assert "PRIVATE KEY" not in json.dumps(dumped)
    assert dumped["h"]["pem_bundle"].startswith("(withheld")
