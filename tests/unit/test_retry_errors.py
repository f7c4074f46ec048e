"""Errors classified by code (never message), and SDK exceptions translated (no I/O)."""

from __future__ import annotations

import pickle

import pytest

from certpilot.cloud._common import parse_time, translate_oss, translate_tea
from certpilot.core.errors import (
    AuthError,
    BusyError,
    CloudError,
    ConflictError,
    DomainNotVerified,
    NotFoundError,
    ThrottledError,
    TransientError,
    cloud_error,
    error_class,
)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("Throttling.User", 400, ThrottledError),
        ("Throttling", 400, ThrottledError),
        ("Throttling.Api", 429, ThrottledError),
        ("FlowControlError", 400, ThrottledError),
        ("ServiceBusy", 403, BusyError),
        ("MetaOperationQpsLimitExceeded", 503, ThrottledError),
        ("ResourceExhausted", 429, ThrottledError),
        ("InternalError", 500, TransientError),
        ("ServiceUnavailable", 503, TransientError),
        ("SomethingNew", 502, TransientError),
        ("InvalidDomain.NotFound", 404, NotFoundError),
        ("NoSuchBucket", 404, NotFoundError),
        ("NoSuchBucketPolicy", 404, NotFoundError),
        ("NoSuchCname", 404, NotFoundError),
        ("NeedVerifyDomainOwnership", 400, DomainNotVerified),
        ("EntityTooLarge", 400, CloudError),
        ("InvalidPolicyDocument", 400, CloudError),
        ("NotFound", 400, NotFoundError),
        ("FunctionNotFound", 404, NotFoundError),
        ("InvalidConfigId.NotFound", 404, NotFoundError),
        ("InvalidAccessKeyId.NotFound", 404, AuthError),  # auth wins over not-found
        ("InvalidAccessKeyId", 403, AuthError),
        ("InvalidAccessKeyID", 403, AuthError),
        ("SignatureDoesNotMatch", 403, AuthError),
        ("SignatureNotMatch", 403, AuthError),
        ("InvalidSecurityToken.Expired", 400, AuthError),
        ("Forbidden.RAM", 403, AuthError),
        ("AccessDenied", 403, AuthError),
        ("CnameAlreadyExists", 409, ConflictError),
        ("Domain.AlreadyExist", 400, ConflictError),
        ("NameRepeat", 400, ConflictError),
        ("IllegalOperation", 403, CloudError),
        ("Certificate.MissMatch", 400, CloudError),
        ("InvalidParameter", 400, CloudError),
        ("", 429, ThrottledError),
        ("", 401, AuthError),
        ("", 404, NotFoundError),
        ("", 409, ConflictError),
    ],
)
def test_classification_by_code(code: str, status: int, expected: type[CloudError]) -> None:
    assert error_class(code, status) is expected


def test_oss_reuses_invalid_argument_and_the_ec_decides() -> None:
    stale = cloud_error("oss", "PutCname", "InvalidArgument", 400, "R", "m", ec="0018-00000209")
    other = cloud_error("oss", "PutCname", "InvalidArgument", 400, "R", "m", ec="0018-00000213")

    assert type(stale) is ConflictError and stale.ec == "0018-00000209"
    assert type(other) is CloudError


def test_an_unverified_domain_is_a_binding_that_is_not_there_and_never_retried() -> None:
    error = cloud_error("oss", "PutCname", "NeedVerifyDomainOwnership", 400, "R", "m")

    assert isinstance(error, NotFoundError) and not error.retryable


def test_message_text_never_decides_the_class() -> None:
    error = cloud_error("cdn", "X", "InvalidParameter", 400, "R", "Throttling: not found, denied")

    assert type(error) is CloudError


def test_cloud_errors_survive_pickling_with_their_fields() -> None:
    error = cloud_error("cdn", "X", "Throttling.User", 400, "REQ", "slow down", retry_after=2.0)

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own object)

    assert type(copy) is ThrottledError
    assert (copy.code, copy.status, copy.request_id, copy.retry_after) == (
        "Throttling.User",
        400,
        "REQ",
        2.0,
    )


def test_tea_exceptions_are_translated() -> None:
    from alibabacloud_tea_openapi import exceptions as tea

    client = tea.ClientException(
        status_code=404,
        code="InvalidDomain.NotFound",
        message="code: 404, The domain provided does not belong to you request id: R1",
        request_id="R1",
        data={
            "Code": "InvalidDomain.NotFound",
            "Message": "The domain provided does not belong to you",
        },
    )
    throttled = tea.ThrottlingException(
        status_code=400, code="Throttling.User", request_id="R2", retry_after=1500, data={}
    )
    server = tea.ServerException(status_code=500, code="InternalError", request_id="R3", data={})

    not_found = translate_tea(client, "cdn", "DescribeDomainCertificateInfo")
    slow = translate_tea(throttled, "cdn", "DescribeUserDomains")
    broken = translate_tea(server, "cas", "GetUserCertificateDetail")

    assert isinstance(not_found, NotFoundError) and not_found.request_id == "R1"
    assert not_found.message == "The domain provided does not belong to you"
    assert isinstance(slow, ThrottledError) and slow.retry_after == pytest.approx(1.5)
    assert isinstance(broken, TransientError) and broken.service == "cas"
    assert translate_tea(ValueError("ours"), "cdn", "X") is None


def test_tea_connection_failures_are_transient() -> None:
    from darabonba.exceptions import RetryError
    from darabonba.policy.retry import RetryPolicyContext
    from Tea.exceptions import UnretryableException

    context = RetryPolicyContext(retries_attempted=1, exception=RetryError("refused"))
    wrapped = UnretryableException(context.http_request, context.exception)

    error = translate_tea(wrapped, "cdn", "DescribeUserDomains")

    assert isinstance(error, TransientError) and error.code == "ConnectionError"
    assert error.status is None


def test_oss_exceptions_are_translated() -> None:
    from alibabacloud_oss_v2 import exceptions as oss

    service = oss.ServiceError(
        status_code=403,
        code="SignatureDoesNotMatch",
        message="The request signature we calculated does not match",
        request_id="R4",
        ec="0002-00000040",
        timestamp="",
        request_target="GET /",
    )
    wrapped = oss.OperationError(name="ListBuckets", error=service)
    refused = oss.OperationError(name="ListCname", error=oss.RequestError(error=OSError("refused")))

    auth = translate_oss(wrapped, "oss", "ListBuckets")
    network = translate_oss(refused, "oss", "ListCname")

    assert isinstance(auth, AuthError) and (auth.ec, auth.request_id) == ("0002-00000040", "R4")
    assert isinstance(network, TransientError) and network.code == "ConnectionError"
    assert translate_oss(KeyError("ours"), "oss", "X") is None


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00"),
        ("2024-05-01T18:00:00+08:00", "2024-05-01T10:00:00+00:00"),
        ("2024-05-01 10:00:00", "2024-05-01T10:00:00+00:00"),
        ("Wed, 01 May 2024 10:00:00 GMT", "2024-05-01T10:00:00+00:00"),
        (1714557600000, "2024-05-01T10:00:00+00:00"),
        ("1714557600", "2024-05-01T10:00:00+00:00"),
        ("2024-05-01", "2024-05-01T00:00:00+00:00"),
    ],
)
def test_cloud_timestamps_parse_to_aware_utc(raw: object, iso: str) -> None:
    parsed = parse_time(raw)

    assert parsed is not None and parsed.isoformat() == iso


@pytest.mark.parametrize("raw", [None, "", "soon"])
def test_absent_or_unreadable_timestamps_are_none(raw: object) -> None:
    assert parse_time(raw) is None


def test_sdk_errors_carrying_credentials_leave_them_out_of_messages_and_summaries() -> None:
    # given credentials read the way certpilot reads them (which registers them)...
    from alibabacloud_tea_openapi import exceptions as tea
    from darabonba.exceptions import RetryError
    from Tea.exceptions import UnretryableException

    from certpilot.cloud.credentials import Credentials
    from certpilot.handler import error_summary

    secret, token = "sdk-data-secret-0123456789", "CAIS" + "Tok3n" * 12
    Credentials("LTAI5tSdkData00001", secret, token, "fc-context")
    # ...and SDK exceptions whose message, data and wrapped errors quote them
    refused = tea.ClientException(
        status_code=400,
        code="SignatureDoesNotMatch",
        message=f"signature mismatch, key secret {secret}",
        request_id="R9",
        data={"Message": f"string to sign had SecurityToken={token} and {secret}"},
    )
    dropped = UnretryableException(
        None, RetryError(f"GET http://cdn/?SecurityToken={token}&Signature=abc refused")
    )
    # when they are translated and turned into the handler's answer
    errors = [translate_tea(refused, "cdn", "X"), translate_tea(dropped, "cdn", "Y")]
    # then neither the secret nor the token survives anywhere
    for error in errors:
        assert error is not None
        text = f"{error} {error.message} {error_summary('deploy-cert', error, 'req-1')}"
        assert secret not in text and token not in text
    assert isinstance(errors[0], AuthError) and errors[0].code == "SignatureDoesNotMatch"
