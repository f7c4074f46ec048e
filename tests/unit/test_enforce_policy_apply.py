"""Writing the HTTPS-only statement: read, merge, write, read back, and merge again
when another writer replaced the document in between (a scripted store of our
PolicyStore interface, no OSS rules re-implemented)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from certpilot.jobs.enforce_https.policy import (
    Refusal,
    fallback_until,
    find_ours,
    https_only_statement,
    parse_document,
)
from certpilot.jobs.enforce_https.policy_apply import (
    PolicyOutcome,
    ensure_https_only,
    remove_https_only_statement,
)

BUCKET = "assets"
THEIRS = {
    "Effect": "Allow",
    "Action": ["oss:GetObject"],
    "Principal": ["1"],
    "Resource": ["acs:oss:*:*:assets/p/*"],
}
OTHER = {
    "Effect": "Allow",
    "Action": ["oss:PutObject"],
    "Principal": ["2"],
    "Resource": ["acs:oss:*:*:assets/q/*"],
}


def doc(*statements: object) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


class ScriptedStore:
    """Holds one document; `after_put` runs once after each put (another writer)."""

    def __init__(
        self, document: str | None, after_put: Callable[[ScriptedStore], None] | None = None
    ) -> None:
        self.document = document
        self.after_put = after_put
        self.calls: list[str] = []

    def get_bucket_policy(self, bucket: str, region: str) -> str | None:
        self.calls.append("get")
        return self.document

    def put_bucket_policy(self, bucket: str, region: str, policy_json: str) -> None:
        self.calls.append("put")
        self.document = policy_json
        if self.after_put:
            hook, self.after_put = self.after_put, None
            hook(self)

    def delete_bucket_policy(self, bucket: str, region: str) -> None:
        self.calls.append("delete")
        self.document = None


def statements(store: ScriptedStore) -> list[object]:
    assert store.document is not None
    return list(parse_document(store.document)["Statement"])


def no_pause(_: float) -> None:
    return None


def test_given_foreign_statements_when_enforced_then_written_once_and_read_back() -> None:
    store = ScriptedStore(doc(THEIRS))
    result = ensure_https_only(store, BUCKET, "cn-hangzhou", pause=no_pause)
    assert result.outcome is PolicyOutcome.WRITTEN
    assert statements(store) == [THEIRS, https_only_statement(BUCKET)]
    assert store.calls == ["get", "put", "get"]


def test_given_ours_already_there_then_nothing_is_written() -> None:
    store = ScriptedStore(doc(THEIRS, https_only_statement(BUCKET)))
    result = ensure_https_only(store, BUCKET, "cn-hangzhou", pause=no_pause)
    assert result.outcome is PolicyOutcome.ALREADY
    assert "put" not in store.calls


def test_an_unparseable_policy_is_never_overwritten() -> None:
    store = ScriptedStore("{garbage")
    result = ensure_https_only(store, BUCKET, "cn-hangzhou", pause=no_pause)
    assert result.outcome is PolicyOutcome.REFUSED
    assert result.refusal is Refusal.UNPARSEABLE
    assert store.document == "{garbage"
    assert store.calls == ["get"]


def test_when_another_writer_replaces_the_document_then_both_statements_end_up_there() -> None:
    # given a second writer that read the old document and writes it with its own
    # statement right after our write (ours is lost by its write)
    def second_writer(store: ScriptedStore) -> None:
        store.document = doc(THEIRS, OTHER)

    store = ScriptedStore(doc(THEIRS), after_put=second_writer)
    result = ensure_https_only(store, BUCKET, "cn-hangzhou", pause=no_pause)
    assert result.outcome is PolicyOutcome.WRITTEN
    assert result.rounds == 2
    assert statements(store) == [THEIRS, OTHER, https_only_statement(BUCKET)]


def test_when_others_keep_replacing_it_then_it_gives_up_bounded() -> None:
    class Hostile(ScriptedStore):
        def put_bucket_policy(self, bucket: str, region: str, policy_json: str) -> None:
            self.calls.append("put")
            self.document = doc(THEIRS)

    store = Hostile(doc(THEIRS))
    result = ensure_https_only(store, BUCKET, "cn-hangzhou", max_rounds=3, pause=no_pause)
    assert result.outcome is PolicyOutcome.CONTENDED
    assert store.calls.count("put") == 3


def test_fallback_then_removal() -> None:
    until = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
    store = ScriptedStore(doc(THEIRS, https_only_statement(BUCKET)))
    result = ensure_https_only(store, BUCKET, "cn-hangzhou", allow_http_until=until, pause=no_pause)
    assert result.outcome is PolicyOutcome.WRITTEN
    assert fallback_until(store.document, BUCKET) == until
    # naive and aware spellings of the same instant are the same fallback
    again = ensure_https_only(
        store,
        BUCKET,
        "cn-hangzhou",
        allow_http_until=until.replace(tzinfo=None) + timedelta(microseconds=5),
        pause=no_pause,
    )
    assert again.outcome is PolicyOutcome.ALREADY
    removed = remove_https_only_statement(store, BUCKET, "cn-hangzhou", pause=no_pause)
    assert removed.outcome is PolicyOutcome.WRITTEN
    assert statements(store) == [THEIRS]
    assert not find_ours(parse_document(store.document or ""), BUCKET)


def test_removing_the_last_statement_deletes_the_policy() -> None:
    store = ScriptedStore(doc(https_only_statement(BUCKET)))
    result = remove_https_only_statement(store, BUCKET, "cn-hangzhou", pause=no_pause)
    assert result.outcome is PolicyOutcome.DELETED
    assert store.document is None
    assert remove_https_only_statement(store, BUCKET, "cn-hangzhou", pause=no_pause).outcome is (
        PolicyOutcome.ALREADY
    )
