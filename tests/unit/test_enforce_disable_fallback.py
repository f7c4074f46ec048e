"""The pure parts of disable-https and the fallback: durations, the origin scheme rule,
whom removing a bucket's statement affects, the fallback end on findings, the
fallback-only policy change, and the pacing of CDN steps (a fake clock, no sleeps)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from certpilot.core.cloudtypes import CdnConfig, CdnFunction
from certpilot.core.errors import BusyError, CloudError
from certpilot.core.findings import Code, Finding, make_finding
from certpilot.core.model import DomainRecord, Inventory, Route
from certpilot.jobs.enforce_https import fallback
from certpilot.jobs.enforce_https.cdn_steps import Pacing, retry_busy, wait_until
from certpilot.jobs.enforce_https.disable import bucket_neighbours
from certpilot.jobs.enforce_https.policy import fallback_until, https_only_statement
from certpilot.jobs.enforce_https.policy_apply import PolicyOutcome, set_fallback

BUCKET = "assets"
THEIRS = {
    "Effect": "Allow",
    "Action": ["oss:GetObject"],
    "Principal": ["1"],
    "Resource": ["acs:oss:*:*:assets/p/*"],
}
UNTIL = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


class Store:
    def __init__(self, document: str | None) -> None:
        self.document = document
        self.puts = 0

    def get_bucket_policy(self, bucket: str, region: str) -> str | None:
        return self.document

    def put_bucket_policy(self, bucket: str, region: str, policy_json: str) -> None:
        self.puts += 1
        self.document = policy_json

    def delete_bucket_policy(self, bucket: str, region: str) -> None:
        self.document = None


def doc(*statements: object) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), (" 7D ", 7 * 86400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert fallback.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "2", "h", "0h", "-1h", "8d", "2 hours", "1.5h"])
def test_durations_refused(text: str) -> None:
    with pytest.raises(ValueError):
        fallback.parse_duration(text)


def config(name: str, **args: str) -> CdnConfig:
    return CdnConfig(config_id="1", function_name=name, status="success", args=args)


@pytest.mark.parametrize(
    ("configs", "over_http"),
    [
        ([], True),
        ([config("forward_scheme", enable="off", scheme_origin="https")], True),
        ([config("forward_scheme", enable="on", scheme_origin="follow")], True),
        ([config("forward_scheme", enable="on", scheme_origin="http")], True),
        ([config("forward_scheme", enable="on")], True),
        ([config("forward_scheme", enable="on", scheme_origin="https")], False),
        ([config("gzip", enable="on")], True),
    ],
)
def test_origin_scheme_for_plain_http_visitors(configs: list[CdnConfig], over_http: bool) -> None:
    assert fallback.origin_over_http(configs) is over_http


def test_bucket_neighbours_are_the_other_domains_reaching_the_bucket() -> None:
    def rec(name: str, route: Route, bucket: str | None) -> DomainRecord:
        return DomainRecord(name, route, bucket, "cn-hangzhou", None)

    me = rec("a.example.com", Route.OSS, BUCKET)
    inventory = Inventory(
        (
            me,
            rec("b.example.com", Route.OSS, BUCKET),
            rec("cdn.example.com", Route.CDN, BUCKET),
            rec("c.example.com", Route.OSS, "other"),
            rec(f"{BUCKET}.oss-cn-hangzhou.aliyuncs.com", Route.BUCKET_DOMAIN, BUCKET),
        )
    )
    assert bucket_neighbours(inventory, me) == ("b.example.com", "cdn.example.com")


def test_fallback_finding_carries_its_end_both_ways() -> None:
    finding = make_finding(Code.FALLBACK_ACTIVE, "a.example.com", "suspended", until=UNTIL)
    data = finding.to_dict()
    assert data["until"] == "2030-01-01T12:00:00Z"
    assert Finding.from_dict(data) == finding
    assert "until" not in make_finding(Code.HTTP_NOT_FORCED, "a.example.com", "x").to_dict()


def test_redirect_switch_keeps_the_config_id() -> None:
    wire = CdnFunction("https_force", {"enable": "off"}, config_id="5000001").to_wire()
    assert wire["configId"] == 5000001
    assert "configId" not in CdnFunction("gzip", {"enable": "on"}).to_wire()


def test_set_fallback_changes_only_our_statement_and_ends_it() -> None:
    # given a bucket with theirs and ours
    store = Store(doc(THEIRS, https_only_statement(BUCKET)))
    # when a fallback starts, then ends
    started = set_fallback(store, BUCKET, "r", allow_http_until=UNTIL)
    during = store.document
    ended = set_fallback(store, BUCKET, "r", allow_http_until=None)
    # then theirs stays first and unchanged, ours carries the end, then no end again
    assert started.outcome is PolicyOutcome.WRITTEN and ended.outcome is PolicyOutcome.WRITTEN
    assert fallback_until(during, BUCKET) == UNTIL
    assert json.loads(store.document or "")["Statement"] == [THEIRS, https_only_statement(BUCKET)]
    # and repeating the start is already in the desired state
    set_fallback(store, BUCKET, "r", allow_http_until=UNTIL)
    puts = store.puts
    assert set_fallback(store, BUCKET, "r", allow_http_until=UNTIL).outcome is PolicyOutcome.ALREADY
    assert store.puts == puts


@pytest.mark.parametrize("document", [None, doc(THEIRS)])
def test_set_fallback_never_adds_our_statement(document: str | None) -> None:
    store = Store(document)
    result = set_fallback(store, BUCKET, "r", allow_http_until=UNTIL)
    assert result.outcome is PolicyOutcome.ALREADY
    assert store.document == document and store.puts == 0


def test_set_fallback_refuses_an_unparseable_policy() -> None:
    store = Store('{"Version": "1", "Statement": [}')
    result = set_fallback(store, BUCKET, "r", allow_http_until=UNTIL)
    assert result.outcome is PolicyOutcome.REFUSED and store.puts == 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def busy() -> BusyError:
    return BusyError("cdn", "X", "ServiceBusy", 403)


def test_busy_writes_are_sent_again_until_accepted() -> None:
    # given a write refused as busy three times, never applied meanwhile
    clock = Clock()
    pacing = Pacing(timeout=30, clock=clock, sleep=clock.sleep)
    answers: list[CloudError | None] = [busy(), busy(), busy(), None]
    sent: list[int] = []

    def call() -> None:
        sent.append(1)
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    # when it is retried, then it went out four times with growing pauses
    retry_busy(call, pacing, domain="a.example.com", done=lambda: False)
    assert len(sent) == 4
    assert clock.slept == sorted(clock.slept) and len(clock.slept) == 3


def test_a_busy_answer_to_a_write_already_applied_is_not_sent_again() -> None:
    clock = Clock()
    pacing = Pacing(timeout=30, clock=clock, sleep=clock.sleep)
    sent: list[int] = []

    def call() -> None:
        sent.append(1)
        raise busy()

    retry_busy(call, pacing, domain="a.example.com", done=lambda: True)
    assert sent == [1] and clock.slept == []


def test_busy_past_the_time_and_other_errors_surface() -> None:
    clock = Clock()
    pacing = Pacing(timeout=1, clock=clock, sleep=clock.sleep)

    def always_busy() -> None:
        raise busy()

    with pytest.raises(BusyError):
        retry_busy(always_busy, pacing, domain="a", done=lambda: False)
    assert sum(clock.slept) <= 1

    def denied() -> None:
        raise CloudError("cdn", "X", "Forbidden", 403)

    clock.slept.clear()
    with pytest.raises(CloudError):
        retry_busy(denied, pacing, domain="a", done=lambda: False)
    assert clock.slept == []


def test_wait_until_polls_within_its_time() -> None:
    clock = Clock()
    pacing = Pacing(timeout=3, pause=0.5, max_pause=1, clock=clock, sleep=clock.sleep)
    seen = iter([False, False, True])
    assert wait_until(lambda: next(seen), pacing) is True
    assert wait_until(lambda: False, pacing) is False
    assert clock.now <= 3 + 3


@pytest.mark.parametrize(
    ("tty", "argv", "dry"),
    [
        (True, [], True),  # a person at a terminal: dry run unless --yes
        (True, ["--yes"], False),
        (False, [], False),  # a script or a pipe: does what it is told
        (False, ["--dry-run"], True),
        (True, ["--dry-run"], True),
    ],
)
def test_disable_is_a_dry_run_on_a_terminal_unless_yes(
    monkeypatch: pytest.MonkeyPatch, tty: bool, argv: list[str], dry: bool
) -> None:
    import sys

    from certpilot.cli import build_parser
    from certpilot.cli.disable_https import dry_run_wanted

    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    args = build_parser().parse_args(["disable-https", "--domain", "a.example.com", *argv])
    assert dry_run_wanted(args) is dry


def test_disable_refuses_both_yes_and_dry_run() -> None:
    from certpilot.cli import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["disable-https", "--domain", "a", "--yes", "--dry-run"])
    assert exited.value.code == 2
