"""The emulator authenticates like the cloud: OSS4-HMAC-SHA256 and ACS3-HMAC-SHA256
signatures from the real SDKs, the AccessKey pair, the STS token and the 15-minute
clock window, each refused in the calling service's own error format."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_cas20200407 import models as cas_models
from alibabacloud_cdn20180510 import models as cdn_models
from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from darabonba.runtime import ExtendsParameters, RuntimeOptions

pytestmark = pytest.mark.integration


def tea_error(call: Callable[[], Any]) -> tuple[int, str]:
    """(HTTP status, error code) of a Tea SDK call that must fail."""
    with pytest.raises(AlibabaCloudException) as caught:
        call()
    return caught.value.status_code, caught.value.code


def oss_error(call: Callable[[], Any]) -> tuple[int, str, str]:
    """(HTTP status, error code, EC) of an OSS SDK call that must fail."""
    with pytest.raises(oss.exceptions.OperationError) as caught:
        call()
    err = caught.value.unwrap()
    assert isinstance(err, oss.exceptions.ServiceError)
    return err.status_code, err.code, err.ec


def list_domains(client: Any) -> Any:
    return client.describe_user_domains(cdn_models.DescribeUserDomainsRequest())


def list_certificates(client: Any) -> Any:
    return client.list_user_certificate_order(
        cas_models.ListUserCertificateOrderRequest(order_type="CERT")
    )


def invoke_missing(client: Any) -> Any:
    return client.invoke_function_with_options(
        "no-such-function",
        fc_models.InvokeFunctionRequest(body=b"{}"),
        fc_models.InvokeFunctionHeaders(),
        RuntimeOptions(),
    )


def test_every_sdk_signature_is_accepted(cloud):
    # Given the emulator's AccessKey pair, when each real SDK signs a call,
    # then the signature checks pass and the operations answer.
    assert cloud.oss_client().list_buckets(oss.ListBucketsRequest()).status_code == 200
    assert list_domains(cloud.cdn_client()).status_code == 200
    orders = cloud.cas_client().list_user_certificate_order(
        cas_models.ListUserCertificateOrderRequest(order_type="CERT")
    )
    assert orders.status_code == 200
    # FC gets past authentication to the function lookup.
    assert tea_error(lambda: invoke_missing(cloud.fc_client())) == (404, "FunctionNotFound")


def test_oss_object_keys_with_reserved_characters_are_signed_correctly(cloud):
    client = cloud.oss_client()
    client.put_bucket(oss.PutBucketRequest(bucket="signing-keys"))
    key = "dir with space/a+b~c%d=é.txt"
    client.put_object(oss.PutObjectRequest(bucket="signing-keys", key=key, body=b"x"))
    got = client.get_object(oss.GetObjectRequest(bucket="signing-keys", key=key))
    assert got.body.read() == b"x"


@pytest.mark.parametrize(
    ("credentials", "oss_expected", "cdn_expected", "fc_expected"),
    [
        pytest.param(
            {"access_key_secret": "not-the-secret"},
            (403, "SignatureDoesNotMatch", "0002-00000201"),
            (400, "SignatureDoesNotMatch"),
            (403, "SignatureNotMatch"),
            id="wrong-secret",
        ),
        pytest.param(
            {"access_key_id": "LTAI5tUnknownKey9999"},
            (403, "InvalidAccessKeyId", "0002-00000902"),
            (404, "InvalidAccessKeyId.NotFound"),
            (403, "InvalidAccessKeyID"),
            id="unknown-key",
        ),
    ],
)
def test_bad_credentials_are_refused_in_each_service_format(
    cloud, credentials, oss_expected, cdn_expected, fc_expected
):
    oss_client = cloud.oss_client(retries=1, **credentials)
    assert oss_error(lambda: oss_client.list_buckets(oss.ListBucketsRequest())) == oss_expected
    assert tea_error(lambda: list_domains(cloud.cdn_client(**credentials))) == cdn_expected
    # CAS shares the RPC error format with CDN.
    assert tea_error(lambda: list_certificates(cloud.cas_client(**credentials))) == cdn_expected
    assert tea_error(lambda: invoke_missing(cloud.fc_client(**credentials))) == fc_expected
    # Refused calls never reach the operation, but they are counted as errors.
    assert cloud.action_stats("cdn:DescribeUserDomains")["errors"] == 1


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(14 * 60, True), (-14 * 60, True), (16 * 60, False), (-16 * 60, False)],
)
def test_requests_signed_outside_the_15_minute_window_are_refused(cloud, offset, accepted):
    # Given a server clock `offset` seconds away from the client's
    cloud.settings(clock_offset=offset)
    oss_client = cloud.oss_client(retries=1)
    if accepted:
        assert list_domains(cloud.cdn_client()).status_code == 200
        assert oss_client.list_buckets(oss.ListBucketsRequest()).status_code == 200
        return
    assert tea_error(lambda: list_domains(cloud.cdn_client())) == (400, "InvalidTimeStamp.Expired")
    assert tea_error(lambda: list_certificates(cloud.cas_client())) == (
        400,
        "InvalidTimeStamp.Expired",
    )
    assert oss_error(lambda: oss_client.list_buckets(oss.ListBucketsRequest())) == (
        403,
        "RequestTimeTooSkewed",
        "0002-00000504",
    )
    assert tea_error(lambda: invoke_missing(cloud.fc_client()))[1] == "RequestTimeTooSkewed"


def test_a_replayed_signature_nonce_is_refused(cloud):
    client = cloud.cdn_client()
    fixed = RuntimeOptions(
        extends_parameters=ExtendsParameters(headers={"x-acs-signature-nonce": "nonce-1"})
    )
    request = cdn_models.DescribeUserDomainsRequest()
    assert client.describe_user_domains_with_options(request, fixed).status_code == 200
    replay = tea_error(lambda: client.describe_user_domains_with_options(request, fixed))
    assert replay == (400, "SignatureNonceUsed")


def test_unsigned_requests_are_refused(cloud):
    def status_and_body(url: str, method: str = "GET") -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method)) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    status, body = status_and_body(f"{cloud.api}/")
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body
    status, body = status_and_body(
        f"{cloud.api}/?Action=DescribeUserDomains&Version=2018-05-10", "POST"
    )
    assert (status, json.loads(body)["Code"]) == (400, "IncompleteSignature")


def signed_query_call(cloud: Any, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST / with the action and version only in the query, signed ACS3-HMAC-SHA256 by a
    small signer of this test's own (no `x-acs-action` / `x-acs-version` headers)."""
    host = cloud.endpoint
    headers = {
        "host": host,
        "x-acs-date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
    }
    encoded = "&".join(
        f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(query.items())
    )
    names = sorted(headers)
    canonical = "\n".join(
        [
            "POST",
            "/",
            encoded,
            "".join(f"{n}:{headers[n]}\n" for n in names),
            ";".join(names),
            headers["x-acs-content-sha256"],
        ]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(
        cloud.access_key_secret.encode(), to_sign.encode(), hashlib.sha256
    ).hexdigest()
    headers["Authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={cloud.access_key_id},"
        f"SignedHeaders={';'.join(names)},Signature={signature}"
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f"{cloud.api}/?{encoded}", data=b"", headers=headers, method="POST"
    )
    try:
        with opener.open(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize(
    ("query", "status", "expected"),
    [
        ({"Action": "DescribeUserDomains", "Version": "2018-05-10"}, 200, "Domains"),
        (
            {"Action": "ListUserCertificateOrder", "Version": "2020-04-07", "OrderType": "CERT"},
            200,
            "CertificateOrderList",
        ),
        ({"Action": "DescribeUserDomains", "Version": "2017-01-01"}, 404, "InvalidVersion"),
        ({"Action": "NoSuchAction", "Version": "2018-05-10"}, 404, "InvalidAction.NotFound"),
    ],
    ids=["cdn", "cas", "unknown-version", "unknown-action"],
)
def test_rpc_action_and_version_may_come_from_the_query(cloud, query, status, expected):
    # Given a correctly signed call that names its action and version only in the query,
    # then it is dispatched by them (or refused in the RPC format when they are unknown).
    answer_status, body = signed_query_call(cloud, query)
    assert answer_status == status and body["RequestId"]
    assert (expected in body) if status == 200 else (body["Code"] == expected)


@pytest.fixture(scope="module")
def sts(emulator_factory):
    """An emulator whose AccessKey pair is temporary: every call must carry the token."""
    return emulator_factory(
        "--access-key-id", "STS.NTemporaryKey01", "--security-token", "token-one"
    )


@pytest.mark.parametrize(
    ("token", "oss_expected", "cdn_expected"),
    [
        pytest.param(
            None,
            (403, "InvalidSecurityToken", "0002-00000006"),
            (400, "MissingSecurityToken"),
            id="missing",
        ),
        pytest.param(
            "token-two",
            (403, "InvalidSecurityToken", "0002-00000008"),
            (400, "InvalidSecurityToken.MismatchWithAccessKey"),
            id="mismatch",
        ),
    ],
)
def test_temporary_credentials_need_their_security_token(sts, token, oss_expected, cdn_expected):
    oss_client = sts.oss_client(retries=1, security_token=token)
    assert oss_error(lambda: oss_client.list_buckets(oss.ListBucketsRequest())) == oss_expected
    assert tea_error(lambda: list_domains(sts.cdn_client(security_token=token))) == cdn_expected
    assert tea_error(lambda: invoke_missing(sts.fc_client(security_token=token)))[1] == (
        "InvalidSecurityToken"
    )


def test_the_right_token_is_accepted_until_it_expires(sts):
    sts.reset()
    assert list_domains(sts.cdn_client()).status_code == 200
    assert sts.oss_client().list_buckets(oss.ListBucketsRequest()).status_code == 200

    sts.settings(security_token_expired=True)
    assert tea_error(lambda: list_domains(sts.cdn_client())) == (
        400,
        "InvalidSecurityToken.Expired",
    )
    oss_client = sts.oss_client(retries=1)
    assert oss_error(lambda: oss_client.list_buckets(oss.ListBucketsRequest()))[1] == (
        "SecurityTokenExpired"
    )
    sts.reset()  # expiry is a setting: reset restores a valid token
    assert list_domains(sts.cdn_client()).status_code == 200
