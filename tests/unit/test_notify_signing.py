"""check-expiry notify: the robots' signatures, checked against computations written here
from each vendor's documented formula, and the request each channel is sent."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from certpilot.core.findings import Code, Severity, make_finding
from certpilot.core.settings import Secret
from certpilot.jobs.check_expiry import notify
from certpilot.jobs.check_expiry.notify import Channel, ChannelKind, ChannelResult

NOW = 1_765_000_000.25  # seconds
SECRET = "SEC0123456789abcdef0123456789abcdef"


def _notification() -> notify.Notification:
    findings = [make_finding(Code.CERT_EXPIRED, "a.example.com", "expired")]
    decided = notify.decide(findings, frozenset(), Severity.WARNING)
    assert decided is not None
    return decided


def test_dingtalk_sign_is_the_documented_formula() -> None:
    # DingTalk: string_to_sign = timestamp + "\n" + secret; HmacSHA256 keyed with the
    # secret; Base64; then URL-encoded (UTF-8).
    timestamp = 1577262236757
    string_to_sign = str(timestamp) + "\n" + SECRET
    mac = hmac.new(SECRET.encode(), string_to_sign.encode(), hashlib.sha256).digest()
    expected = "".join(
        c if c.isalnum() else f"%{ord(c):02X}" for c in base64.b64encode(mac).decode()
    )

    assert notify.dingtalk_sign(SECRET, timestamp) == expected


def test_dingtalk_sign_fixed_vector() -> None:
    # DingTalk's page gives no vector; this one is the test vector of an independent
    # implementation (the `dingding` Rust crate, docs.rs), for secret "secret".
    assert (
        notify.dingtalk_sign("secret", 1700000000000)
        == "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
    )


def test_feishu_sign_keys_the_hmac_with_the_string_to_sign() -> None:
    # Feishu / Lark: string_to_sign = timestamp + "\n" + secret is the HMAC *key*; the
    # message is empty; Base64 (not URL-encoded: it travels in the JSON body).
    timestamp = 1599360473
    key = f"{timestamp}\n{SECRET}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()

    assert notify.feishu_sign(SECRET, timestamp) == expected
    assert notify.feishu_sign(SECRET, timestamp) != notify.dingtalk_sign(SECRET, timestamp)


def test_webhook_signature_is_hex_hmac_of_the_body() -> None:
    body = b'{"kind":"alert"}'

    signature = notify.webhook_signature(SECRET, body)

    assert signature == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def _channel(kind: ChannelKind, url: str, secret: str | None = SECRET) -> Channel:
    return Channel(kind, Secret(url), Secret(secret) if secret else None)


def test_dingtalk_request_is_markdown_with_timestamp_and_sign_in_the_query() -> None:
    channel = _channel(ChannelKind.DINGTALK, "https://oapi.dingtalk.com/robot/send?access_token=T")

    request = notify.build_request(channel, _notification(), now=NOW)

    query = parse_qs(urlsplit(request.url).query)
    assert query["access_token"] == ["T"]
    assert query["timestamp"] == [str(int(NOW * 1000))]
    # parse_qs decodes once: what DingTalk decodes is base64(HMAC) itself.
    assert query["sign"] == [unquote(notify.dingtalk_sign(SECRET, int(NOW * 1000)))]
    body = json.loads(request.body)
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "certpilot: 1 new"
    assert "`a.example.com` CERT_EXPIRED" in body["markdown"]["text"]


def test_unsigned_dingtalk_url_is_left_as_configured() -> None:
    url = "https://oapi.dingtalk.com/robot/send?access_token=T"

    request = notify.build_request(
        _channel(ChannelKind.DINGTALK, url, None), _notification(), now=NOW
    )

    assert request.url == url


def test_wecom_request_is_markdown() -> None:
    channel = _channel(ChannelKind.WECOM, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K")

    body = json.loads(notify.build_request(channel, _notification(), now=NOW).body)

    assert body["msgtype"] == "markdown"
    assert body["markdown"]["content"].startswith("### certpilot: 1 new")


def test_feishu_request_is_a_signed_post() -> None:
    channel = _channel(ChannelKind.FEISHU, "https://open.feishu.cn/open-apis/bot/v2/hook/H")

    body = json.loads(notify.build_request(channel, _notification(), now=NOW).body)

    assert body["timestamp"] == str(int(NOW))
    assert body["sign"] == notify.feishu_sign(SECRET, int(NOW))
    assert body["msg_type"] == "post"
    post = body["content"]["post"]["zh_cn"]
    assert post["title"] == "certpilot: 1 new"
    assert all(p[0]["tag"] == "text" for p in post["content"])


def test_generic_webhook_request_is_compact_signed_json() -> None:
    channel = _channel(ChannelKind.WEBHOOK, "https://hooks.example.com/certpilot")

    request = notify.build_request(channel, _notification(), now=NOW)

    assert b" " not in request.body.replace(b"expired", b"")  # compact separators
    body = json.loads(request.body)
    assert body["kind"] == "alert" and body["sent_at"] == int(NOW)
    assert body["new"][0]["code"] == "CERT_EXPIRED"
    assert request.headers[notify.TIMESTAMP_HEADER] == str(int(NOW))
    expected = notify.webhook_signature(SECRET, request.body)
    assert request.headers[notify.SIGNATURE_HEADER] == expected
    assert "hooks.example.com" not in repr(request)


@pytest.mark.parametrize(
    ("kind", "status", "answer", "expected"),
    [
        (ChannelKind.DINGTALK, 200, b'{"errcode":0,"errmsg":"ok"}', ("sent", None, 0)),
        (ChannelKind.DINGTALK, 200, b'{"errcode":310000}', ("failed", "robot-error", 310000)),
        (ChannelKind.WECOM, 200, b'{"errcode":93000}', ("failed", "robot-error", 93000)),
        (ChannelKind.FEISHU, 200, b'{"code":0,"msg":"success"}', ("sent", None, 0)),
        (ChannelKind.FEISHU, 200, b'{"StatusCode":0}', ("sent", None, 0)),
        (ChannelKind.FEISHU, 200, b'{"code":19021}', ("failed", "robot-error", 19021)),
        (ChannelKind.FEISHU, 200, b"<html>", ("failed", "bad-answer", None)),
        (ChannelKind.WECOM, 200, b'{"errcode":"0"}', ("failed", "bad-answer", None)),
        (ChannelKind.WEBHOOK, 204, b"", ("sent", None, None)),
        (ChannelKind.WEBHOOK, 500, b"", ("failed", "http-status", None)),
        (ChannelKind.DINGTALK, 404, b"", ("failed", "http-status", None)),
        (
            ChannelKind.FEISHU,
            400,
            b'{"code":9499,"msg":"Bad Request"}',
            ("failed", "http-status", 9499),
        ),
    ],
)
def test_judge_answer(kind: ChannelKind, status: int, answer: bytes, expected: tuple) -> None:
    result: ChannelResult = notify.judge_answer(kind, status, answer)

    assert (result.status.value, result.error and result.error.value, result.code) == expected
    assert result.http_status == status
