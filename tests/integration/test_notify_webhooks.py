"""check-expiry notify against a real local HTTP receiver that answers like each robot
does, and really checks the signatures (an independent computation, written here from
the vendors' documented formulas): bodies, signatures, typed results, no leaked secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from certpilot.core import log, settings
from certpilot.core.findings import Code, Severity, make_finding
from certpilot.core.settings import Secret, Settings
from certpilot.jobs.check_expiry import notify
from certpilot.jobs.check_expiry.notify import Channel, ChannelKind, DeliveryError, DeliveryStatus

DING_SECRET = "SECdingtalk0123456789abcdefABCDEF"
FEISHU_SECRET = "feishu-secret-0123456789abcdef"
HOOK_SECRET = "hook-secret-0123456789abcdef"
TOKEN = "robot-token-0123456789abcdef"


@dataclass
class Recorded:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A robot stand-in on 127.0.0.1; `url(path)` points at it, `requests` records."""

    base: str
    requests: list[Recorded] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}{path}?access_token={TOKEN}"


def _within_an_hour(seconds: float) -> bool:
    return abs(time.time() - seconds) < 3600


def _dingtalk_answer(query: dict[str, list[str]]) -> dict[str, Any]:
    # DingTalk's check, written from its documentation: HmacSHA256 keyed with the secret
    # over "timestamp\nsecret", Base64; the query parameter is that value URL-encoded.
    [timestamp], [sign] = query.get("timestamp", [""]), query.get("sign", [""])
    if not timestamp.isdigit() or not _within_an_hour(int(timestamp) / 1000):
        return {"errcode": 310000, "errmsg": "timestamp expired"}
    mac = hmac.new(DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(), hashlib.sha256)
    if not hmac.compare_digest(base64.b64encode(mac.digest()).decode(), sign):
        return {"errcode": 310000, "errmsg": "sign not match"}
    return {"errcode": 0, "errmsg": "ok"}


def _feishu_answer(body: dict[str, Any]) -> dict[str, Any]:
    # Feishu's check: the HMAC key is "timestamp\nsecret", the message empty, Base64.
    timestamp = str(body.get("timestamp", ""))
    key = f"{timestamp}\n{FEISHU_SECRET}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    if (
        not timestamp.isdigit()
        or not _within_an_hour(int(timestamp))
        or not hmac.compare_digest(expected, str(body.get("sign", "")))
    ):
        return {"code": 19021, "msg": "sign match fail", "data": {}}
    return {"code": 0, "msg": "success", "data": {}}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recorded: list[Recorded] = []

    class Robot(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            query = parse_qs(parts.query)
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorded.append(Recorded(parts.path, query, headers, body))
            status, answer = 200, b""
            if query.get("access_token") != [TOKEN]:
                status = 404
            elif parts.path == "/dingtalk":
                answer = json.dumps(_dingtalk_answer(query)).encode()
            elif parts.path == "/wecom":
                answer = b'{"errcode":0,"errmsg":"ok"}'
            elif parts.path == "/wecom-revoked":
                answer = b'{"errcode":93000,"errmsg":"invalid webhook url"}'
            elif parts.path == "/feishu":
                answer = json.dumps(_feishu_answer(json.loads(body))).encode()
            elif parts.path == "/webhook":
                mac = hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
                given = headers.get(notify.SIGNATURE_HEADER.lower(), "")
                status = 204 if hmac.compare_digest(given, f"sha256={mac}") else 401
            elif parts.path == "/moved":
                status = 302
            else:
                status = 500
            self.send_response(status)
            if status == 302:
                port = self.server.server_address[1]  # type: ignore[index]
                self.send_header("Location", f"http://127.0.0.1:{port}/leak?access_token={TOKEN}")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST  # a followed redirect would arrive as a GET: record it too

    server = ThreadingHTTPServer(("127.0.0.1", 0), Robot)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}", recorded)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


FINDINGS = [
    make_finding(Code.CERT_EXPIRED, "a.example.com", "expired 2 days ago"),
    make_finding(Code.CERT_EXPIRING, "b.example.com", "expires in 12 days"),
    make_finding(Code.NO_BACKUP, "c.example.com", "no second CA"),
]


def _notification() -> notify.Notification:
    decided = notify.decide(FINDINGS, frozenset(), Severity.WARNING)
    assert decided is not None
    return decided


def _channel(kind: ChannelKind, url: str, secret: str | None = None) -> Channel:
    return Channel(kind, Secret(url), Secret(secret) if secret else None)


def _kinds(results: tuple[notify.ChannelResult, ...]) -> list[tuple[str, str, str | None]]:
    return [(r.channel.value, r.status.value, r.error and r.error.value) for r in results]


def test_every_robot_gets_its_message_signed_and_says_so(receiver: Receiver) -> None:
    channels = [
        _channel(ChannelKind.DINGTALK, receiver.url("/dingtalk"), DING_SECRET),
        _channel(ChannelKind.WECOM, receiver.url("/wecom")),
        _channel(ChannelKind.FEISHU, receiver.url("/feishu"), FEISHU_SECRET),
        _channel(ChannelKind.WEBHOOK, receiver.url("/webhook"), HOOK_SECRET),
    ]

    results = notify.send(_notification(), channels, timeout=5.0)

    assert _kinds(results) == [
        ("dingtalk", "sent", None),
        ("wecom", "sent", None),
        ("feishu", "sent", None),
        ("webhook", "sent", None),
    ]
    assert [r.code for r in results] == [0, 0, 0, None]
    assert results[3].http_status == 204
    ding, wecom, feishu, hook = receiver.requests
    assert ding.json()["msgtype"] == "markdown"
    assert "`a.example.com` CERT_EXPIRED" in ding.json()["markdown"]["text"]
    assert "c.example.com" not in ding.json()["markdown"]["text"]  # info: under the threshold
    assert wecom.json()["markdown"]["content"] == ding.json()["markdown"]["text"]
    assert feishu.json()["msg_type"] == "post"
    assert hook.json()["new"][0] == FINDINGS[0].to_dict()
    assert hook.headers["content-type"].startswith("application/json")
    assert hook.headers[notify.TIMESTAMP_HEADER.lower()] == str(hook.json()["sent_at"])


def test_a_bad_signature_is_refused_by_the_robot_and_reported_with_its_code(
    receiver: Receiver,
) -> None:
    channels = [
        _channel(ChannelKind.DINGTALK, receiver.url("/dingtalk"), "SECnot-the-robots-secret"),
        _channel(ChannelKind.FEISHU, receiver.url("/feishu"), "not-the-robots-secret"),
        _channel(ChannelKind.WEBHOOK, receiver.url("/webhook"), "not-the-hooks-secret"),
        _channel(ChannelKind.DINGTALK, receiver.url("/dingtalk")),  # robot wants signing
    ]

    results = notify.send(_notification(), channels, timeout=5.0)

    assert _kinds(results) == [
        ("dingtalk", "failed", "robot-error"),
        ("feishu", "failed", "robot-error"),
        ("webhook", "failed", "http-status"),
        ("dingtalk", "failed", "robot-error"),
    ]
    assert [r.code for r in results] == [310000, 19021, None, 310000]
    assert results[2].http_status == 401


def test_a_stale_timestamp_is_refused_like_a_bad_signature(receiver: Receiver) -> None:
    channel = _channel(ChannelKind.DINGTALK, receiver.url("/dingtalk"), DING_SECRET)

    [result] = notify.send(
        _notification(), [channel], timeout=5.0, clock=lambda: time.time() - 7200
    )

    assert (result.status, result.code) == (DeliveryStatus.FAILED, 310000)


def test_robot_errors_statuses_redirects_and_dead_hosts_end_as_typed_failures(
    receiver: Receiver,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/x?access_token={TOKEN}"
    channels = [
        _channel(ChannelKind.WECOM, receiver.url("/wecom-revoked")),
        _channel(ChannelKind.WEBHOOK, receiver.url("/broken")),
        _channel(ChannelKind.WEBHOOK, receiver.url("/moved")),
        _channel(ChannelKind.WEBHOOK, dead),
        _channel(ChannelKind.WEBHOOK, "ftp://127.0.0.1/x"),
    ]

    results = notify.send(_notification(), channels, timeout=5.0)

    assert _kinds(results) == [
        ("wecom", "failed", "robot-error"),
        ("webhook", "failed", "http-status"),
        ("webhook", "failed", "http-status"),  # a redirect is not followed
        ("webhook", "failed", "network"),
        ("webhook", "failed", "config"),
    ]
    assert results[0].code == 93000
    assert [r.http_status for r in results[1:3]] == [500, 302]
    assert [r.path for r in receiver.requests] == ["/wecom-revoked", "/broken", "/moved"]
    assert {"/leak"}.isdisjoint(r.path for r in receiver.requests)


def test_a_silent_robot_times_out_within_the_bound() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        started = time.monotonic()

        [result] = notify.send(_notification(), [_channel(ChannelKind.WEBHOOK, url)], timeout=0.2)

    assert (result.status, result.error) == (DeliveryStatus.FAILED, DeliveryError.TIMEOUT)
    assert time.monotonic() - started < 2.0


def test_at_most_max_messages_are_sent(receiver: Receiver) -> None:
    channels = [_channel(ChannelKind.WECOM, receiver.url("/wecom")) for _ in range(3)]

    results = notify.send(_notification(), channels, timeout=5.0, max_messages=2)

    assert _kinds(results) == [
        ("wecom", "sent", None),
        ("wecom", "sent", None),
        ("wecom", "skipped", "limit"),
    ]
    assert len(receiver.requests) == 2


def test_loopback_is_reached_directly_despite_proxy_variables(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # the discard port: nothing there

    [result] = notify.send(
        _notification(), [_channel(ChannelKind.WECOM, receiver.url("/wecom"))], timeout=5.0
    )

    assert result.status is DeliveryStatus.SENT


def test_second_sweep_sends_nothing_and_a_cleared_problem_sends_resolved(
    receiver: Receiver,
) -> None:
    env = {
        settings.WEBHOOK_URL: receiver.url("/webhook"),
        settings.WEBHOOK_SECRET: HOOK_SECRET,
    }
    config = Settings.from_env(env)

    run1 = notify.notify(FINDINGS, frozenset(), config)
    first, sent, state = run1.notification, run1.results, run1.record
    # the report embeds run1.to_dict(); the next sweep reads it back
    previous = notify.previous_alert_keys(json.dumps({"report": "...", **run1.to_dict()}))
    run2 = notify.notify(FINDINGS, previous, config)
    second, nothing, state2 = run2.notification, run2.results, run2.record
    run3 = notify.notify(FINDINGS[1:], state2, config)
    third, resolved, state3 = run3.notification, run3.results, run3.record

    assert first is not None and _kinds(sent) == [("webhook", "sent", None)]
    assert second is None and nothing == () and state2 == state
    assert third is not None and third.kind is notify.NotificationKind.RESOLVED
    assert _kinds(resolved) == [("webhook", "sent", None)]
    assert [r.json()["kind"] for r in receiver.requests] == ["alert", "resolved"]
    assert receiver.requests[1].json()["resolved"] == [
        {"domain": "a.example.com", "code": "CERT_EXPIRED"}
    ]
    assert state3 == {("b.example.com", Code.CERT_EXPIRING)}


def test_a_lost_notification_is_tried_again_next_sweep(receiver: Receiver) -> None:
    broken = Settings.from_env({settings.WECOM_WEBHOOK: receiver.url("/wecom-revoked")})
    fixed = Settings.from_env({settings.WECOM_WEBHOOK: receiver.url("/wecom")})

    run1 = notify.notify(FINDINGS, frozenset(), broken)
    run2 = notify.notify(FINDINGS, run1.record, fixed)
    failed, state = run1.results, run1.record
    again, sent, state2 = run2.notification, run2.results, run2.record

    assert _kinds(failed) == [("wecom", "failed", "robot-error")] and state == frozenset()
    assert again is not None and len(again.new) == 2 and _kinds(sent)[0][1] == "sent"
    assert len(state2) == 2


def test_urls_and_secrets_never_reach_logs_results_or_settings_echoes(
    receiver: Receiver,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/hook?access_token={TOKEN}"
    env = {
        settings.DINGTALK_WEBHOOK: receiver.url("/dingtalk"),
        settings.DINGTALK_SECRET: "SECwrong-secret-for-this-robot",
        settings.WECOM_WEBHOOK: receiver.url("/wecom"),
        settings.FEISHU_WEBHOOK: receiver.url("/feishu"),
        settings.FEISHU_SECRET: FEISHU_SECRET,
        settings.WEBHOOK_URL: dead,
        settings.WEBHOOK_SECRET: HOOK_SECRET,
    }
    out = io.StringIO()
    log.configure("DEBUG", out)
    try:
        config = Settings.from_env(env)
        logger = log.get_logger("tests.notify")
        run = notify.notify(FINDINGS, frozenset(), config)
        notification, results = run.notification, run.results
        # What a careless caller might log: the settings, the channels, the results.
        log.event(
            logger,
            "echo",
            settings=repr(config),
            channels=repr(notify.channels_from_settings(config)),
        )
        log.event(logger, "results", results=[r.to_dict() for r in results])
        logger.warning("raw %s %s", env[settings.WEBHOOK_URL], TOKEN)
    finally:
        log.unconfigure()

    assert notification is not None
    assert _kinds(results) == [
        ("dingtalk", "failed", "robot-error"),
        ("wecom", "sent", None),
        ("feishu", "sent", None),
        ("webhook", "failed", "network"),
    ]
    text = out.getvalue()
    assert text.count('"msg": "notification"') == 4
    leaks = [TOKEN, HOOK_SECRET, FEISHU_SECRET, "SECwrong-secret-for-this-robot", receiver.base]
    echoes = [
        text,
        repr(config),
        json.dumps(config.as_dict()),
        json.dumps(run.to_dict()),
        repr(results),
    ]
    for echo in echoes:
        for secret in leaks:
            assert secret not in echo
    assert config.as_dict()["webhook_secret"] == log.MASK
