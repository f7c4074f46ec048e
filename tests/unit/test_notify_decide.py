"""check-expiry notify: what changed since the previous report (pure), and the alert state
the report embeds."""

from __future__ import annotations

import json
from collections.abc import Collection

import pytest

from certpilot.core.findings import Code, Finding, Severity, make_finding
from certpilot.jobs.check_expiry import notify
from certpilot.jobs.check_expiry.notify import (
    AlertKey,
    ChannelKind,
    ChannelResult,
    DeliveryError,
    DeliveryStatus,
    Notification,
    NotificationKind,
)

# A fixed set of findings, one letter each.
A = make_finding(Code.CERT_EXPIRED, "a.example.com", "expired 2 days ago")  # error
B = make_finding(Code.CERT_EXPIRING, "b.example.com", "expires in 12 days")  # warning
C = make_finding(Code.NO_BACKUP, "c.example.com", "no second CA")  # info
D = make_finding(Code.HSTS_MISSING, "b.example.com", "no HSTS header")  # warning
E = make_finding(Code.NAME_MISMATCH, "e.example.com", "not in the SANs")  # error
F = {"A": A, "B": B, "C": C, "D": D, "E": E}


def key(letter: str) -> AlertKey:
    return notify.alert_key(F[letter])


def keys(letters: str) -> frozenset[AlertKey]:
    return frozenset(key(letter) for letter in letters)


W, ERR, INFO = Severity.WARNING, Severity.ERROR, Severity.INFO

# (id, findings now, alerted before, threshold, not judged, new, still open, resolved)
# `None` as `new` means: no notification at all.
CASES: list[tuple[str, str, str, Severity, Collection[str], str | None, str, str]] = [
    ("first-run", "ABC", "", W, (), "AB", "", ""),
    ("unchanged", "ABC", "AB", W, (), None, "", ""),
    ("one-resolved", "BC", "AB", W, (), "", "B", "A"),
    ("all-clear", "C", "AB", W, (), "", "", "AB"),
    ("new-beside-open", "ABD", "AB", W, (), "D", "AB", ""),
    ("new-and-resolved", "BE", "AB", W, (), "E", "B", "A"),
    ("errors-only", "ABC", "", ERR, (), "A", "", ""),
    ("info-too", "C", "", INFO, (), "C", "", ""),
    # B is still there, only below the threshold now: not "resolved".
    ("dropped-below-threshold", "AB", "AB", ERR, (), None, "", ""),
    # a.example.com could not be judged: its alert stays open, neither resolved nor new.
    ("not-judged-keeps-alert", "", "AB", W, ("a.example.com",), "", "", "B"),
    ("not-judged-only", "", "A", W, ("a.example.com",), None, "", ""),
    ("nothing-ever", "", "", W, (), None, "", ""),
]


@pytest.mark.parametrize(
    ("now", "before", "minimum", "not_judged", "new", "still", "resolved"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(
    now: str,
    before: str,
    minimum: Severity,
    not_judged: Collection[str],
    new: str | None,
    still: str,
    resolved: str,
) -> None:
    findings = [F[letter] for letter in now]

    decided = notify.decide(findings, keys(before), minimum, not_judged=not_judged)

    if new is None:
        assert decided is None
        return
    assert decided is not None
    assert {notify.alert_key(f) for f in decided.new} == keys(new)
    assert {notify.alert_key(f) for f in decided.still_open} == keys(still)
    assert set(decided.resolved) == keys(resolved)
    assert decided.kind is (NotificationKind.ALERT if new else NotificationKind.RESOLVED)
    assert decided.all_clear == (not new and not still)


def test_new_problems_come_worst_first_and_duplicates_keep_the_worst() -> None:
    softer = Finding(Code.CERT_EXPIRED, Severity.WARNING, "a.example.com", "softer copy")

    decided = notify.decide([B, softer, A, E], frozenset(), W)

    assert decided is not None
    assert [f.code for f in decided.new] == [Code.CERT_EXPIRED, Code.NAME_MISMATCH, B.code]
    assert decided.new[0] is A  # the error, not the warning copy


@pytest.mark.parametrize(
    ("before", "now", "not_judged", "expected"),
    [
        ("AB", "BD", (), "BD"),
        ("AB", "", ("a.example.com",), "A"),
        ("", "ABC", (), "AB"),  # C is info: under the threshold
    ],
)
def test_open_keys(before: str, now: str, not_judged: Collection[str], expected: str) -> None:
    opened = notify.open_keys([F[x] for x in now], keys(before), W, not_judged=not_judged)

    assert opened == keys(expected)


def test_alert_state_round_trips_through_json() -> None:
    state = notify.alert_state(keys("ABD"))

    text = json.dumps({"generated": "2026-12-06T00:00:00Z", **state})

    assert state["alerts_version"] == notify.ALERT_STATE_VERSION
    assert state["alerts"] == [
        {"domain": "a.example.com", "code": "CERT_EXPIRED"},
        {"domain": "b.example.com", "code": "CERT_EXPIRING"},
        {"domain": "b.example.com", "code": "HSTS_MISSING"},
    ]
    assert notify.previous_alert_keys(text) == keys("ABD")
    assert notify.previous_alert_keys(text.encode()) == keys("ABD")
    assert notify.previous_alert_keys(json.loads(text)) == keys("ABD")


@pytest.mark.parametrize(
    "report",
    [
        None,
        "",
        "not json",
        b"[1, 2]",
        {"alerts": "nope"},
        {"alerts": [1, None, {"domain": 3, "code": "CERT_EXPIRED"}, {"code": "CERT_EXPIRED"}]},
        {"alerts": [{"domain": "x.example.com", "code": "CODE_FROM_THE_FUTURE"}]},
    ],
)
def test_an_unreadable_previous_state_reads_as_empty(report: object) -> None:
    assert notify.previous_alert_keys(report) == frozenset()  # type: ignore[arg-type]


def _result(status: DeliveryStatus) -> ChannelResult:
    error = None if status is DeliveryStatus.SENT else DeliveryError.NETWORK
    return ChannelResult(ChannelKind.WEBHOOK, status, error)


SENT, FAILED = _result(DeliveryStatus.SENT), _result(DeliveryStatus.FAILED)
SOME = Notification((B,), (), (), W)


@pytest.mark.parametrize(
    ("notification", "results", "recorded"),
    [
        (None, (), "BD"),  # nothing to say: the open keys
        (SOME, (SENT,), "BD"),  # delivered
        (SOME, (FAILED, SENT), "BD"),  # delivered somewhere
        (SOME, (FAILED,), "A"),  # lost everywhere: keep the old state, say it again next run
        (SOME, (), "BD"),  # no channel configured: nothing to retry
    ],
)
def test_keys_to_record(
    notification: Notification | None, results: tuple[ChannelResult, ...], recorded: str
) -> None:
    assert notify.keys_to_record(keys("A"), keys("BD"), notification, results) == keys(recorded)


def test_markdown_lists_new_and_resolved_and_counts_the_still_open() -> None:
    decided = notify.decide([A, B, E], keys("BC"), W)
    assert decided is not None

    text = notify.render_markdown(decided)

    assert text.startswith("### certpilot: 2 new, 1 resolved, 1 still open\n")
    assert "`a.example.com` CERT_EXPIRED (error): expired 2 days ago" in text
    assert "visitors see NET::ERR_CERT_DATE_INVALID" in text
    assert "`c.example.com` NO_BACKUP resolved" in text
    assert "b.example.com" not in text  # still open: counted, not repeated
    assert "Still open, already alerted: 1" in text


def test_all_clear_says_so() -> None:
    decided = notify.decide([], keys("A"), W)
    assert decided is not None

    assert notify.title(decided) == "certpilot: 1 resolved, all clear"
    assert "Nothing at severity warning or worse is open." in notify.render_markdown(decided)


def test_long_lists_are_cut_and_counted_within_the_byte_limit() -> None:
    many = [
        make_finding(Code.CERT_EXPIRED, f"host{i:03d}.example.com", "x" * 300) for i in range(60)
    ]
    decided = notify.decide(many, frozenset(), W)
    assert decided is not None

    text = notify.render_markdown(decided)

    assert len(text.encode("utf-8")) <= notify.MAX_TEXT_BYTES
    lines = notify.render_lines(decided, markdown=True)
    assert lines[-1] == f"... and {60 - notify.MAX_LINES} more (see the report)"
