"""check-expiry's notifications: decide what changed since the last report, tell the robots.

Deciding is pure: `decide(findings, previous_keys, min_severity)` compares the findings
at or above `min_severity` with the alert state of the previous report and returns a
`Notification` (new problems, problems still open, problems resolved) or None when
nothing changed. An unchanged problem is never alerted twice; a problem that clears gets
a "resolved" line; a domain the sweep could not judge keeps its previous alerts (neither
resolved nor new: never a false all-clear).

Alert state, as the report embeds it (top-level key `alerts`; `ALERT_STATE_VERSION`):

    {"alerts_version": 1, "alerts": [{"domain": "www.example.com", "code": "CERT_EXPIRED"}]}

sorted by domain then code. `alert_state(keys)` writes it, `previous_alert_keys(report)`
reads it back (an unreadable or missing state reads as empty: everything open is then
alerted again, a repeated alert rather than a missed one). Which keys to record is
`keys_to_record(...)`: the open keys, unless a notification was due and no channel
delivered it, in which case the previous keys, so that the next sweep tries again.

Sending: one message per configured channel per run (at most `max_messages`), rendered
from the typed fields at the edge: Markdown for DingTalk and WeCom, a `post` for Feishu,
compact JSON for the generic webhook. Signing where a secret is set: DingTalk (timestamp
in ms and `sign` in the query), Feishu (timestamp in s and `sign` in the body), the
generic webhook (`X-Certpilot-Signature: sha256=<hex HMAC-SHA256 of the body>`, the
timestamp in the body and in `X-Certpilot-Timestamp`). `send()` never raises: each
channel ends as a typed `ChannelResult`. Webhook URLs and secrets never reach a log
line, a result or an exception message.

The sweep calls `notify(findings, previous_keys, settings, not_judged=...)`, which does
all of the above and returns a `NotifyRun`; its `to_dict()` (the alert state plus the
deliveries) is what the report embeds at its top level.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from certpilot.core.findings import Code, Finding, Severity
from certpilot.core.log import event, get_logger
from certpilot.core.net import opener_for
from certpilot.core.settings import Secret, Settings

_log = get_logger(__name__)

ALERT_STATE_VERSION = 1
# One message per channel per run; this bounds the run even if more channels appear.
MAX_MESSAGES_PER_RUN = 8
# Lines listed per section (new, resolved); the rest are counted, the report has them all.
MAX_LINES = 20
# WeCom takes at most 4096 bytes of markdown; DingTalk and Feishu allow more, but a
# chat message longer than this is not read anyway.
MAX_TEXT_BYTES = 4000
MAX_ANSWER_BYTES = 64 * 1024
SIGNATURE_HEADER = "X-Certpilot-Signature"
TIMESTAMP_HEADER = "X-Certpilot-Timestamp"

AlertKey = tuple[str, Code]
"""What an alert is about: (domain, finding code). Stable across runs."""

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


def at_least(severity: Severity, minimum: Severity) -> bool:
    """Whether `severity` is `minimum` or worse."""
    return _RANK[severity] >= _RANK[minimum]


# --- deciding --------------------------------------------------------------------------


class NotificationKind(str, enum.Enum):
    """What a message is about: new problems (perhaps with some resolved), or only
    resolutions."""

    ALERT = "alert"
    RESOLVED = "resolved"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Notification:
    """What changed since the previous report, at or above `min_severity`.

    `new`: problems not alerted before (worst first); `still_open`: alerted before and
    still there (counted in messages, not repeated); `resolved`: alerted before, gone now.
    """

    new: tuple[Finding, ...]
    still_open: tuple[Finding, ...]
    resolved: tuple[AlertKey, ...]
    min_severity: Severity

    @property
    def kind(self) -> NotificationKind:
        """ALERT when there is anything new, RESOLVED otherwise."""
        return NotificationKind.ALERT if self.new else NotificationKind.RESOLVED

    @property
    def all_clear(self) -> bool:
        """True when nothing at or above the threshold remains open."""
        return not self.new and not self.still_open


def alert_key(finding: Finding) -> AlertKey:
    """The stable key of `finding`'s alert: (domain, code)."""
    return (finding.domain, finding.code)


def _alerting(findings: Iterable[Finding], min_severity: Severity) -> dict[AlertKey, Finding]:
    """The findings at or above the threshold, one per key (the worst one wins)."""
    chosen: dict[AlertKey, Finding] = {}
    for finding in findings:
        if not at_least(finding.severity, min_severity):
            continue
        key = alert_key(finding)
        if key not in chosen or _RANK[finding.severity] > _RANK[chosen[key].severity]:
            chosen[key] = finding
    return chosen


def _order(finding: Finding) -> tuple[int, str, str]:
    return (-_RANK[finding.severity], finding.domain, finding.code.value)


def open_keys(
    findings: Iterable[Finding],
    previous_keys: Collection[AlertKey],
    min_severity: Severity,
    *,
    not_judged: Collection[str] = (),
) -> frozenset[AlertKey]:
    """The alerts open after this sweep: the findings at or above the threshold, plus the
    previous alerts of domains the sweep could not judge (carried over unchanged)."""
    carried = {key for key in previous_keys if key[0] in not_judged}
    return frozenset(_alerting(findings, min_severity)) | carried


def decide(
    findings: Sequence[Finding],
    previous_keys: Collection[AlertKey],
    min_severity: Severity,
    *,
    not_judged: Collection[str] = (),
) -> Notification | None:
    """What to tell people about this sweep's `findings`, given the previous report's
    alert keys; None when nothing changed (no new problem, none resolved).

    A previous alert counts as resolved only when its domain was judged this time and no
    finding of any severity carries its key (one that merely dropped below the threshold
    is not "resolved"). Pure: no I/O, no clock.
    """
    current = _alerting(findings, min_severity)
    previous = frozenset(previous_keys)
    present = {alert_key(f) for f in findings}
    new = sorted((f for k, f in current.items() if k not in previous), key=_order)
    still = sorted((f for k, f in current.items() if k in previous), key=_order)
    resolved = sorted(
        (k for k in previous if k not in present and k[0] not in not_judged),
        key=lambda k: (k[0], k[1].value),
    )
    if not new and not resolved:
        return None
    return Notification(tuple(new), tuple(still), tuple(resolved), min_severity)


# --- the alert state the report embeds -------------------------------------------------


def alert_state(keys: Iterable[AlertKey]) -> dict[str, Any]:
    """The JSON-ready alert state for the report (see the module docstring)."""
    ordered = sorted(set(keys), key=lambda k: (k[0], k[1].value))
    return {
        "alerts_version": ALERT_STATE_VERSION,
        "alerts": [{"domain": domain, "code": code.value} for domain, code in ordered],
    }


def previous_alert_keys(report: Mapping[str, Any] | str | bytes | None) -> frozenset[AlertKey]:
    """The alert keys of a previous report (its parsed JSON, or the JSON text).

    Tolerant by design: a missing, unparseable or foreign state reads as empty, and
    entries with an unknown code or no domain are skipped. Never raises.
    """
    if report is None:
        return frozenset()
    if isinstance(report, str | bytes):
        try:
            report = json.loads(report)
        except ValueError:
            return frozenset()
    if not isinstance(report, Mapping):
        return frozenset()
    entries = report.get("alerts")
    if not isinstance(entries, list):
        return frozenset()
    keys: set[AlertKey] = set()
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        domain, code = entry.get("domain"), entry.get("code")
        if not isinstance(domain, str) or not domain or not isinstance(code, str):
            continue
        try:
            keys.add((domain, Code(code)))
        except ValueError:
            continue  # a code this version does not know
    return frozenset(keys)


def keys_to_record(
    previous_keys: Collection[AlertKey],
    current_open: Collection[AlertKey],
    notification: Notification | None,
    results: Sequence[ChannelResult],
) -> frozenset[AlertKey]:
    """The alert keys this run's report should embed.

    The open keys, except when a notification was due, channels are configured, and
    none delivered it: then the previous keys, so that the next sweep decides (and
    sends) the same change again instead of losing it.
    """
    undelivered = (
        notification is not None
        and bool(results)
        and not any(r.status is DeliveryStatus.SENT for r in results)
    )
    return frozenset(previous_keys) if undelivered else frozenset(current_open)


# --- rendering (typed fields to text, at the edge) --------------------------------------

_MARK = {Severity.ERROR: "🔴", Severity.WARNING: "🟠", Severity.INFO: "🔵"}


def title(notification: Notification) -> str:
    """One line: what changed, in counts."""
    parts = []
    if notification.new:
        parts.append(f"{len(notification.new)} new")
    if notification.resolved:
        parts.append(f"{len(notification.resolved)} resolved")
    if notification.still_open:
        parts.append(f"{len(notification.still_open)} still open")
    elif notification.all_clear:
        parts.append("all clear")
    return "certpilot: " + ", ".join(parts)


def _finding_line(finding: Finding, *, markdown: bool) -> str:
    domain = f"`{finding.domain}`" if markdown else finding.domain
    line = f"{_MARK[finding.severity]} {domain} {finding.code.value} ({finding.severity.value})"
    if finding.message:
        line += f": {finding.message}"
    if finding.browser_error:
        line += f"; visitors see {finding.browser_error}"
    return line


def _resolved_line(key: AlertKey, *, markdown: bool) -> str:
    domain = f"`{key[0]}`" if markdown else key[0]
    return f"✅ {domain} {key[1].value} resolved"


def _bounded(lines: list[str], total: int) -> list[str]:
    if total > len(lines):
        lines.append(f"... and {total - len(lines)} more (see the report)")
    return lines


def render_lines(notification: Notification, *, markdown: bool) -> list[str]:
    """The body, one line per item, sections for new and resolved, still-open counted."""
    bullet = "- " if markdown else ""
    out: list[str] = []
    if notification.new:
        out.append(f"**New ({len(notification.new)})**" if markdown else "New:")
        shown = [bullet + _finding_line(f, markdown=markdown) for f in notification.new]
        out += _bounded(shown[:MAX_LINES], len(shown))
    if notification.resolved:
        count = len(notification.resolved)
        out.append(f"**Resolved ({count})**" if markdown else "Resolved:")
        shown = [bullet + _resolved_line(k, markdown=markdown) for k in notification.resolved]
        out += _bounded(shown[:MAX_LINES], len(shown))
    if notification.still_open:
        out.append(
            f"Still open, already alerted: {len(notification.still_open)} "
            f"(severity {notification.min_severity.value} or worse)"
        )
    elif notification.all_clear:
        out.append(f"Nothing at severity {notification.min_severity.value} or worse is open.")
    return out


def render_markdown(notification: Notification) -> str:
    """Markdown for DingTalk and WeCom, within `MAX_TEXT_BYTES`."""
    text = "\n".join([f"### {title(notification)}", *render_lines(notification, markdown=True)])
    return _truncate(text)


def _truncate(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 4].decode("utf-8", errors="ignore") + "\n..."


def render_json(notification: Notification, *, sent_at: int) -> dict[str, Any]:
    """The generic webhook's body: typed fields, no prose beyond the findings' messages."""
    return {
        "source": "certpilot",
        "version": ALERT_STATE_VERSION,
        "kind": notification.kind.value,
        "sent_at": sent_at,
        "min_severity": notification.min_severity.value,
        "all_clear": notification.all_clear,
        "new": [f.to_dict() for f in notification.new],
        "resolved": [{"domain": d, "code": c.value} for d, c in notification.resolved],
        "still_open": [{"domain": f.domain, "code": f.code.value} for f in notification.still_open],
    }


# --- signatures ------------------------------------------------------------------------


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's custom-robot signature, URL-encoded for the query string:
    `urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")))`."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu / Lark's custom-bot signature: `base64(HMAC-SHA256(key=f"{timestamp}\\n
    {secret}", msg=b""))` (the key is the string to sign; the message is empty)."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def webhook_signature(secret: str, body: bytes) -> str:
    """The generic webhook's `X-Certpilot-Signature` value: `sha256=<hex HMAC of body>`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


# --- channels --------------------------------------------------------------------------


class ChannelKind(str, enum.Enum):
    """Where a message goes."""

    DINGTALK = "dingtalk"
    WECOM = "wecom"
    FEISHU = "feishu"
    WEBHOOK = "webhook"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Channel:
    """One configured destination. `url` and `secret` stay `Secret`s until the request."""

    kind: ChannelKind
    url: Secret
    secret: Secret | None = None


def channels_from_settings(settings: Settings) -> tuple[Channel, ...]:
    """The channels whose webhook is configured, in a fixed order."""
    configured = (
        (ChannelKind.DINGTALK, settings.dingtalk_webhook, settings.dingtalk_secret),
        (ChannelKind.WECOM, settings.wecom_webhook, None),
        (ChannelKind.FEISHU, settings.feishu_webhook, settings.feishu_secret),
        (ChannelKind.WEBHOOK, settings.webhook_url, settings.webhook_secret),
    )
    return tuple(Channel(kind, url, secret) for kind, url, secret in configured if url)


@dataclass(frozen=True)
class OutboundRequest:
    """A rendered request: full URL (with any signature), JSON body, headers."""

    url: str
    body: bytes
    headers: Mapping[str, str]

    def __repr__(self) -> str:  # the URL carries the robot's token
        return f"OutboundRequest(url=[REDACTED], {len(self.body)} bytes)"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_request(channel: Channel, notification: Notification, *, now: float) -> OutboundRequest:
    """The request `channel` takes for `notification`, signed with the time `now` (s)."""
    url = channel.url.reveal()
    secret = channel.secret.reveal() if channel.secret else None
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if channel.kind is ChannelKind.DINGTALK:
        body = _dumps(
            {
                "msgtype": "markdown",
                "markdown": {"title": title(notification), "text": render_markdown(notification)},
            }
        )
        if secret:
            ms = int(now * 1000)
            separator = "&" if urllib.parse.urlsplit(url).query else "?"
            url = f"{url}{separator}timestamp={ms}&sign={dingtalk_sign(secret, ms)}"
    elif channel.kind is ChannelKind.WECOM:
        body = _dumps(
            {"msgtype": "markdown", "markdown": {"content": render_markdown(notification)}}
        )
    elif channel.kind is ChannelKind.FEISHU:
        lines = [title(notification), *render_lines(notification, markdown=False)]
        paragraphs = [[{"tag": "text", "text": line}] for line in lines[1:]]
        message: dict[str, Any] = {
            "msg_type": "post",
            "content": {"post": {"zh_cn": {"title": lines[0], "content": paragraphs}}},
        }
        if secret:
            seconds = int(now)
            message = {"timestamp": str(seconds), "sign": feishu_sign(secret, seconds), **message}
        body = _dumps(message)
    else:
        body = _dumps(render_json(notification, sent_at=int(now)))
        headers[TIMESTAMP_HEADER] = str(int(now))
        if secret:
            headers[SIGNATURE_HEADER] = webhook_signature(secret, body)
    return OutboundRequest(url, body, headers)


# --- sending ---------------------------------------------------------------------------


class DeliveryStatus(str, enum.Enum):
    """How one channel ended."""

    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # over the per-run message limit

    def __str__(self) -> str:
        return self.value


class DeliveryError(str, enum.Enum):
    """Why a channel failed (or was skipped)."""

    ROBOT_ERROR = "robot-error"  # the robot answered with a non-zero error code
    HTTP_STATUS = "http-status"  # a non-2xx answer
    BAD_ANSWER = "bad-answer"  # the robot's answer was not the JSON it documents
    TIMEOUT = "timeout"
    NETWORK = "network"  # connection refused, DNS, TLS, ...
    LIMIT = "limit"  # over `max_messages`
    CONFIG = "config"  # a URL that is not http(s)
    INTERNAL = "internal"  # a bug of ours; the sweep goes on

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ChannelResult:
    """One channel's outcome. `code`: the robot's `errcode` / `code` when it gave one;
    `http_status`: the HTTP status when there was an answer. Never holds the URL."""

    channel: ChannelKind
    status: DeliveryStatus
    error: DeliveryError | None = None
    code: int | None = None
    http_status: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the report and the summary."""
        return {
            "channel": self.channel.value,
            "status": self.status.value,
            "error": None if self.error is None else self.error.value,
            "code": self.code,
            "httpStatus": self.http_status,
        }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A robot never redirects; following one would carry its token to another host.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(host: str) -> urllib.request.OpenerDirector:
    """Loopback directly; anything else through the environment's proxies (NO_PROXY
    honoured by urllib)."""
    return opener_for(host, _NoRedirect)


def _post(request: OutboundRequest, timeout: float) -> tuple[int, bytes]:
    """POST the request; (status, answer bytes), for 2xx and error statuses alike.

    Raises:
        OSError: connection, TLS or timeout errors (urllib's URLError is one).
        ValueError: a URL that is not http(s).
    """
    parts = urllib.parse.urlsplit(request.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    outgoing = urllib.request.Request(  # noqa: S310 - http(s) checked above
        request.url, data=request.body, headers=dict(request.headers), method="POST"
    )
    try:
        with _opener(parts.hostname).open(outgoing, timeout=timeout) as answer:
            return answer.status, answer.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as failure:
        with failure:
            return failure.code, failure.read(MAX_ANSWER_BYTES)


def judge_answer(kind: ChannelKind, status: int, answer: bytes) -> ChannelResult:
    """Read a robot's answer: DingTalk and WeCom `errcode` 0, Feishu `code` 0 (older
    robots: `StatusCode` 0), the generic webhook any 2xx. A non-2xx answer fails with
    HTTP_STATUS, and keeps the robot's code when its body names one."""
    code = None if kind is ChannelKind.WEBHOOK else _robot_code(kind, answer)
    if not 200 <= status < 300:
        return ChannelResult(kind, DeliveryStatus.FAILED, DeliveryError.HTTP_STATUS, code, status)
    if kind is ChannelKind.WEBHOOK:
        return ChannelResult(kind, DeliveryStatus.SENT, http_status=status)
    if code is None:
        return ChannelResult(kind, DeliveryStatus.FAILED, DeliveryError.BAD_ANSWER, None, status)
    if code != 0:
        return ChannelResult(kind, DeliveryStatus.FAILED, DeliveryError.ROBOT_ERROR, code, status)
    return ChannelResult(kind, DeliveryStatus.SENT, code=0, http_status=status)


def _robot_code(kind: ChannelKind, answer: bytes) -> int | None:
    """The integer error code of a robot's JSON answer, or None when it has none."""
    try:
        data = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    names = ("code", "StatusCode") if kind is ChannelKind.FEISHU else ("errcode",)
    for name in names:
        code = data.get(name)
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return None


def _deliver(
    channel: Channel, notification: Notification, *, timeout: float, now: float
) -> ChannelResult:
    try:
        request = build_request(channel, notification, now=now)
        status, answer = _post(request, timeout)
    except TimeoutError:
        return ChannelResult(channel.kind, DeliveryStatus.FAILED, DeliveryError.TIMEOUT)
    except urllib.error.URLError as failure:
        timed_out = isinstance(failure.reason, TimeoutError)
        error = DeliveryError.TIMEOUT if timed_out else DeliveryError.NETWORK
        return ChannelResult(channel.kind, DeliveryStatus.FAILED, error)
    except OSError:
        return ChannelResult(channel.kind, DeliveryStatus.FAILED, DeliveryError.NETWORK)
    except ValueError:
        return ChannelResult(channel.kind, DeliveryStatus.FAILED, DeliveryError.CONFIG)
    except Exception as failure:  # a notification never ends the sweep
        # The type only: a message could quote the request.
        event(_log, "notification bug", level=logging.ERROR, error=type(failure).__name__)
        return ChannelResult(channel.kind, DeliveryStatus.FAILED, DeliveryError.INTERNAL)
    return judge_answer(channel.kind, status, answer)


def send(
    notification: Notification,
    channels: Sequence[Channel],
    *,
    timeout: float,
    max_messages: int = MAX_MESSAGES_PER_RUN,
    clock: Callable[[], float] = time.time,
) -> tuple[ChannelResult, ...]:
    """Send `notification` to each channel (one message each, at most `max_messages`
    in all) and return one result per channel, in order. Never raises.

    Each request waits at most `timeout` seconds. Logs one line per channel with the
    typed result only (never the URL, the secret or the robot's words).
    """
    results: list[ChannelResult] = []
    for index, channel in enumerate(channels):
        if index >= max_messages:
            result = ChannelResult(channel.kind, DeliveryStatus.SKIPPED, DeliveryError.LIMIT)
        else:
            result = _deliver(channel, notification, timeout=timeout, now=clock())
        level = logging.INFO if result.status is DeliveryStatus.SENT else logging.WARNING
        event(_log, "notification", level=level, kind=notification.kind.value, **result.to_dict())
        results.append(result)
    return tuple(results)


@dataclass(frozen=True)
class NotifyRun:
    """What `notify` did: the notification (None when nothing changed), one result per
    channel, and the alert keys the report embeds (`keys_to_record`)."""

    notification: Notification | None
    results: tuple[ChannelResult, ...]
    record: frozenset[AlertKey]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the report: the alert state plus what was sent where."""
        kind = None if self.notification is None else self.notification.kind.value
        return {
            **alert_state(self.record),
            "notification": kind,
            "deliveries": [r.to_dict() for r in self.results],
        }


def notify(
    findings: Sequence[Finding],
    previous_keys: Collection[AlertKey],
    settings: Settings,
    *,
    not_judged: Collection[str] = (),
    clock: Callable[[], float] = time.time,
) -> NotifyRun:
    """Decide, then send to the configured channels (threshold
    `settings.notify_min_severity`, each request bounded by `settings.read_timeout`).
    Never raises."""
    minimum = settings.notify_min_severity
    notification = decide(findings, previous_keys, minimum, not_judged=not_judged)
    current = open_keys(findings, previous_keys, minimum, not_judged=not_judged)
    results: tuple[ChannelResult, ...] = ()
    if notification is not None:
        channels = channels_from_settings(settings)
        results = send(notification, channels, timeout=settings.read_timeout, clock=clock)
    record = keys_to_record(previous_keys, current, notification, results)
    return NotifyRun(notification, results, record)
