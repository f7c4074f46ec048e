"""JSON-lines logging and redaction: no secret reaches a log line or an error message."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from certpilot.cloud.credentials import Credentials
from certpilot.core import log
from certpilot.core.errors import cloud_error
from tests import pki


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    log.configure("DEBUG", out)
    yield out
    log.unconfigure()


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_private_keys_in_pem_are_masked() -> None:
    key = pki.key_bytes(pki.make_key("ec256")).decode()

    text = log.redact(f"uploading with key {key} done")

    assert "PRIVATE KEY" in text  # says what was there...
    for marker in pki.key_markers(pki.make_key("ec256")):
        if marker != b"PRIVATE KEY":
            assert marker.decode() not in text  # ...but not the key
    assert text.endswith("done")


@pytest.mark.parametrize(
    "text",
    [
        "AccessKeySecret=abcDEF123456789xyz",
        '{"access_key_secret": "abcDEF123456789xyz"}',
        "SecurityToken=abcDEF123456789xyz&Version=1",
        "x-acs-security-token: abcDEF123456789xyz",
        "password: abcDEF123456789xyz",
        "Signature=abcDEF123456789xyz",
    ],
)
def test_secret_fields_are_masked(text: str) -> None:
    assert "abcDEF123456789xyz" not in log.redact(text)


def test_authorization_headers_keep_only_their_scheme() -> None:
    header = (
        "Authorization: OSS4-HMAC-SHA256 Credential=LTAI5tX/20250101/cn-hangzhou/oss/"
        "aliyun_v4_request,Signature=0123456789abcdef0123456789abcdef"
    )

    text = log.redact(header)

    assert "OSS4-HMAC-SHA256" in text and "0123456789abcdef" not in text
    assert log.redact("OSS bucket assets-prod") == "OSS bucket assets-prod"


def test_sts_tokens_and_registered_secrets_are_masked() -> None:
    token = "CAIS" + "q" * 60
    creds = Credentials("LTAI5tRegistered0001", "registered-secret-value", token, "env")

    text = log.redact(
        f"key {creds.access_key_id} secret {creds.access_key_secret} token {creds.security_token}"
    )

    assert "registered-secret-value" not in text and token not in text
    assert "LTAI****" in text and "LTAI5tRegistered0001" not in text


def test_ordinary_text_is_left_alone() -> None:
    text = "cdn:SetCdnDomainSSLCertificate on www.example.com with 10000001-cn-hangzhou"
    fingerprint = "AB" * 32

    assert log.redact(text) == text
    assert log.redact(fingerprint) == fingerprint


def test_error_messages_are_redacted() -> None:
    error = cloud_error(
        "cdn", "X", "InvalidParameter", 400, "R", "bad SSLPri=abcDEF123456789xyz given"
    )

    assert "abcDEF123456789xyz" not in str(error) and "abcDEF123456789xyz" not in error.message


def test_lines_are_json_with_request_id_and_fields(stream: io.StringIO) -> None:
    logger = log.get_logger("unit")

    with log.bound_request_id("req-42"):
        log.event(
            logger, "deployed", domain="www.example.com", secret="Signature=abcDEF123456789xyz"
        )
    with log.bound_request_id(None):  # whatever an earlier test bound
        logger.info("plain")

    first, second = lines(stream)
    assert first["msg"] == "deployed" and first["request_id"] == "req-42"
    assert first["domain"] == "www.example.com" and first["logger"] == "certpilot.unit"
    assert "abcDEF123456789xyz" not in json.dumps(first)
    assert "request_id" not in second and second["level"] == "INFO"


def test_exceptions_are_logged_as_type_and_redacted_message(stream: io.StringIO) -> None:
    logger = log.get_logger("unit")
    try:
        raise RuntimeError("failed with AccessKeySecret=abcDEF123456789xyz")
    except RuntimeError:
        logger.exception("boom")

    [line] = lines(stream)
    assert line["error"] == {
        "type": "RuntimeError",
        "message": "failed with AccessKeySecret=[REDACTED]",
    }


def test_worker_threads_keep_the_request_id() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def request_id(_: int) -> str | None:
        return log.current_request_id()

    with log.bound_request_id("req-7"), ThreadPoolExecutor(2) as pool:
        seen = list(pool.map(log.with_context(request_id), range(3)))

    assert seen == ["req-7"] * 3


def test_secrets_registered_in_an_isolated_block_are_forgotten_after_it() -> None:
    with log.isolated_secrets():  # this test's own secrets stay in it too
        # given a secret registered before the block (e.g. by a session-wide client)
        log.register_secret("kept-secret-value-1")
        # when another is registered inside an isolated block (one test)
        with log.isolated_secrets():
            log.register_secret("scoped-secret-value-2")
            inside = log.redact("kept-secret-value-1 scoped-secret-value-2")
        after = log.redact("kept-secret-value-1 scoped-secret-value-2")
        # then both are masked inside, and only the earlier one after
        assert inside == f"{log.MASK} {log.MASK}"
        assert after == f"{log.MASK} scoped-secret-value-2"
    assert log.redact("kept-secret-value-1") == "kept-secret-value-1"
