"""The bucket policy merge of enforce-https: table-driven cases and properties.

Given a bucket's current policy document, merging our HTTPS-only statement keeps
every other statement, is idempotent, stays within OSS's limits or refuses, and never
overwrites a document it cannot parse.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certpilot.jobs.enforce_https.policy import (
    MAX_DOCUMENT_BYTES,
    MAX_FIELD_BYTES,
    ChangeKind,
    Refusal,
    fallback_until,
    find_ours,
    https_only_statement,
    merge_https_only,
    parse_document,
    remove_https_only,
    render,
    statements_kept,
)

BUCKET = "assets"
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc)

THEIRS = {
    "Effect": "Allow",
    "Action": ["oss:GetObject"],
    "Principal": ["1234567890"],
    "Resource": [f"acs:oss:*:*:{BUCKET}/public/*"],
}
THEIRS_WITH_IP = {
    "Effect": "Deny",
    "Action": ["oss:PutObject"],
    "Principal": ["*"],
    "Resource": [f"acs:oss:*:*:{BUCKET}/*"],
    "Condition": {"NotIpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}},
}


def doc(*statements: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements), **extra})


def statements_of(text: str | None) -> list[Any]:
    assert text is not None
    return list(parse_document(text)["Statement"])


def ours(false: Any = "false", **changes: Any) -> dict[str, Any]:
    statement = https_only_statement(BUCKET)
    statement["Condition"] = {"Bool": {"acs:SecureTransport": false}}
    statement.update(changes)
    return statement


def test_given_no_policy_when_merged_then_the_document_holds_only_our_statement() -> None:
    change = merge_https_only(None, BUCKET)
    assert change.kind is ChangeKind.WRITE
    assert statements_of(change.document) == [https_only_statement(BUCKET)]
    assert parse_document(change.document or "")["Version"] == "1"


def test_given_foreign_statements_when_merged_then_they_are_kept_in_order_and_ours_appended() -> (
    None
):
    current = doc(THEIRS, THEIRS_WITH_IP)
    change = merge_https_only(current, BUCKET)
    assert change.kind is ChangeKind.WRITE
    assert statements_of(change.document) == [THEIRS, THEIRS_WITH_IP, https_only_statement(BUCKET)]
    assert statements_kept(current, change.document, BUCKET)


def test_other_top_level_fields_are_kept() -> None:
    current = json.dumps({"Version": "1", "Statement": [THEIRS], "Comment": "ops team"})
    change = merge_https_only(current, BUCKET)
    assert parse_document(change.document or "")["Comment"] == "ops team"


@pytest.mark.parametrize(
    "statement",
    [
        ours("false"),
        ours(False),
        ours(["false"]),
        ours([False]),
        ours("FALSE"),
        ours(Resource=[f"acs:oss:*:*:{BUCKET}", f"acs:oss:*:*:{BUCKET}/*", "acs:oss:*:*:x"]),
        ours(Action="oss:*", Principal="*"),
        ours(Action=["*"]),
        {
            "effect": "Deny",
            "action": ["oss:*"],
            "principal": ["*"],
            "resource": [f"acs:oss:*:*:{BUCKET}", f"acs:oss:*:*:{BUCKET}/*"],
            "condition": {"bool": {"ACS:SecureTransport": "false"}},
        },
    ],
    ids=[
        "string",
        "boolean",
        "list",
        "list-of-boolean",
        "upper-case",
        "extra-resources",
        "scalars",
        "star-action",
        "lower-case-keys",
    ],
)
def test_an_equivalent_statement_already_there_means_no_change(statement: dict[str, Any]) -> None:
    change = merge_https_only(doc(THEIRS, statement), BUCKET)
    assert change.kind is ChangeKind.UNCHANGED
    assert not change.writes


@pytest.mark.parametrize(
    "statement",
    [
        ours("true"),
        ours(Effect="Allow"),
        ours(Action=["oss:GetObject"]),
        ours(Principal=["1234"]),
        ours(Resource=[f"acs:oss:*:*:{BUCKET}/*"]),
        ours(Resource=["acs:oss:*:*:other", "acs:oss:*:*:other/*"]),
        {
            **ours(),
            "Condition": {
                "Bool": {"acs:SecureTransport": "false"},
                "NotIpAddress": {"acs:SourceIp": ["10.0.0.0/8"]},
            },
        },
        {**ours(), "NotAction": ["oss:GetObject"]},
    ],
    ids=[
        "true",
        "allow",
        "one-action",
        "one-principal",
        "objects-only",
        "other-bucket",
        "narrowed-by-ip",
        "not-action",
    ],
)
def test_a_statement_that_only_looks_like_ours_is_kept_and_ours_added(
    statement: dict[str, Any],
) -> None:
    current = doc(statement)
    change = merge_https_only(current, BUCKET)
    assert change.kind is ChangeKind.WRITE
    assert statements_of(change.document) == [statement, https_only_statement(BUCKET)]


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("{not json", Refusal.UNPARSEABLE),
        ('{"Version": "1", "Statement": [], "Statement": []}', Refusal.UNPARSEABLE),
        ("[1, 2]", Refusal.UNPARSEABLE),
        ('{"Version": "2", "Statement": []}', Refusal.INVALID),
        ('{"Version": 1, "Statement": []}', Refusal.INVALID),
        ('{"Version": "1", "Statement": {"Effect": "Deny"}}', Refusal.INVALID),
        ('{"Version": "1", "Statement": ["x"]}', Refusal.INVALID),
        ('{"Version": "1"}', Refusal.INVALID),
    ],
    ids=[
        "not-json",
        "duplicate-key",
        "not-object",
        "version-2",
        "version-number",
        "statement-object",
        "statement-string",
        "no-statement",
    ],
)
def test_a_document_we_cannot_read_is_never_overwritten(text: str, refusal: Refusal) -> None:
    change = merge_https_only(text, BUCKET)
    assert change.kind is ChangeKind.REFUSED
    assert change.refusal is refusal
    assert change.document is None
    assert remove_https_only(text, BUCKET).kind is ChangeKind.REFUSED


def test_a_near_limit_policy_is_refused_when_ours_would_not_fit() -> None:
    # given a policy a few hundred bytes under 16 KB
    filler: list[dict[str, Any]] = []
    while len(render({"Version": "1", "Statement": filler}).encode()) < MAX_DOCUMENT_BYTES - 150:
        filler.append({**THEIRS, "Resource": [f"acs:oss:*:*:{BUCKET}/p{len(filler):05d}/*"]})
    current = render({"Version": "1", "Statement": filler})
    assert len(current.encode()) <= MAX_DOCUMENT_BYTES
    # when merged, then the result would exceed 16 KB: refused, nothing to write
    change = merge_https_only(current, BUCKET)
    assert change.kind is ChangeKind.REFUSED
    assert change.refusal is Refusal.TOO_LARGE
    assert change.size > MAX_DOCUMENT_BYTES


def test_a_field_over_the_limit_is_refused() -> None:
    current = doc({**THEIRS, "Resource": [f"acs:oss:*:*:{BUCKET}/" + "a" * MAX_FIELD_BYTES]})
    change = merge_https_only(current, BUCKET)
    assert change.refusal is Refusal.FIELD_TOO_LONG


def test_removal_takes_only_ours_and_deletes_the_policy_when_ours_was_the_last() -> None:
    assert remove_https_only(None, BUCKET).kind is ChangeKind.UNCHANGED
    assert remove_https_only(doc(THEIRS), BUCKET).kind is ChangeKind.UNCHANGED
    mixed = remove_https_only(doc(THEIRS, ours(False), THEIRS_WITH_IP), BUCKET)
    assert mixed.kind is ChangeKind.WRITE
    assert statements_of(mixed.document) == [THEIRS, THEIRS_WITH_IP]
    assert remove_https_only(doc(ours()), BUCKET).kind is ChangeKind.DELETE


def test_fallback_adds_a_time_condition_and_plain_merge_ends_it() -> None:
    until = NOW + timedelta(hours=2)
    # given our statement in place, when a fallback is asked for
    enforced = merge_https_only(doc(THEIRS), BUCKET).document
    fallback = merge_https_only(enforced, BUCKET, allow_http_until=until)
    # then ours carries DateGreaterThan on acs:CurrentTime, in place, and is still ours
    assert fallback.kind is ChangeKind.WRITE
    statement = statements_of(fallback.document)[1]
    assert statement["Condition"]["DateGreaterThan"] == {
        "acs:CurrentTime": ["2026-12-06T12:00:00Z"]
    }
    assert fallback_until(fallback.document, BUCKET) == until
    assert merge_https_only(fallback.document, BUCKET, allow_http_until=until).kind is (
        ChangeKind.UNCHANGED
    )
    # when the fallback is ended early, then the plain statement is back
    ended = merge_https_only(fallback.document, BUCKET)
    assert statements_of(ended.document) == [THEIRS, https_only_statement(BUCKET)]
    assert fallback_until(ended.document, BUCKET) is None
    # and removal also takes a statement in its fallback form
    assert remove_https_only(fallback.document, BUCKET).kind is ChangeKind.WRITE


def test_duplicates_of_ours_collapse_to_one() -> None:
    change = merge_https_only(doc(ours(), THEIRS, ours(False)), BUCKET, allow_http_until=NOW)
    assert [s.index for s in find_ours(parse_document(change.document or ""), BUCKET)] == [0]
    assert statements_of(change.document)[1] == THEIRS


def test_statements_kept_detects_a_lost_foreign_statement() -> None:
    before = doc(THEIRS, THEIRS_WITH_IP)
    assert not statements_kept(before, doc(THEIRS, ours()), BUCKET)
    assert statements_kept(before, doc(THEIRS_WITH_IP, THEIRS, ours()), BUCKET)
    assert not statements_kept(before, "{broken", BUCKET)


# -- properties ------------------------------------------------------------------------

_text = st.text(st.characters(min_codepoint=32, max_codepoint=0x24F), min_size=1, max_size=12)
_bucket_resources = st.lists(
    st.sampled_from(
        [f"acs:oss:*:*:{BUCKET}", f"acs:oss:*:*:{BUCKET}/*", "acs:oss:*:*:other/*"]
    ).map(str)
    | _text.map(lambda s: f"acs:oss:*:*:{BUCKET}/{s}"),
    min_size=1,
    max_size=3,
)
_conditions = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "Bool": st.fixed_dictionaries(
                {"acs:SecureTransport": st.sampled_from(["false", False, ["false"], "true"])}
            )
        }
    ),
    st.fixed_dictionaries(
        {"IpAddress": st.fixed_dictionaries({"acs:SourceIp": st.just(["192.0.2.0/24"])})}
    ),
)


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": draw(st.sampled_from(["Allow", "Deny"])),
        "Action": draw(
            st.lists(
                st.sampled_from(["oss:*", "oss:GetObject", "oss:PutObject"]), min_size=1, max_size=2
            )
        ),
        "Principal": draw(st.lists(st.sampled_from(["*", "1234567890"]), min_size=1, max_size=2)),
        "Resource": draw(_bucket_resources),
    }
    condition = draw(_conditions)
    if condition is not None:
        statement["Condition"] = condition
    return statement


policies = st.lists(statements(), max_size=8).map(lambda items: doc(*items)) | st.none()


@settings(max_examples=200, deadline=None)
@given(current=policies)
def test_property_no_statement_lost_idempotent_within_limits(current: str | None) -> None:
    change = merge_https_only(current, BUCKET)
    if change.kind is ChangeKind.UNCHANGED:
        assert find_ours(parse_document(current or ""), BUCKET)
        return
    assert change.kind is ChangeKind.WRITE
    written = change.document
    assert written is not None
    # no statement lost
    assert statements_kept(current, written, BUCKET)
    # exactly one of ours, and merging again changes nothing
    assert len(find_ours(parse_document(written), BUCKET)) == 1
    assert merge_https_only(written, BUCKET).kind is ChangeKind.UNCHANGED
    # within OSS's limits
    assert len(written.encode()) <= MAX_DOCUMENT_BYTES
    # removing ours gives back exactly the statements that were not ours
    foreign = [
        s for s in statements_of(current or doc()) if not find_ours({"Statement": [s]}, BUCKET)
    ]
    removed = remove_https_only(written, BUCKET)
    if removed.kind is ChangeKind.DELETE:
        assert foreign == []
    else:
        assert statements_of(removed.document) == foreign


@settings(max_examples=50, deadline=None)
@given(size=st.integers(min_value=MAX_DOCUMENT_BYTES - 600, max_value=MAX_DOCUMENT_BYTES))
def test_property_near_the_limit_written_or_refused_never_over(size: int) -> None:
    filler: list[dict[str, Any]] = []
    while len(doc(*filler).encode()) < size - 120:
        filler.append({**THEIRS, "Resource": [f"acs:oss:*:*:{BUCKET}/{len(filler):06d}/*"]})
    change = merge_https_only(doc(*filler), BUCKET)
    if change.kind is ChangeKind.WRITE:
        assert len((change.document or "").encode()) <= MAX_DOCUMENT_BYTES
    else:
        assert change.refusal is Refusal.TOO_LARGE
