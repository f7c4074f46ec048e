"""Write a bucket's HTTPS-only statement (or take it out) without losing anyone's.

PutBucketPolicy replaces the whole document and OSS offers no conditional write, so
every change is: read, merge (`policy`), write, read back. The read-back must show our
statement in the wanted form and every statement of the document the merge started
from. When it does not (another writer replaced the document between our read and our
write, e.g. a second enforce-https run for another domain of the same bucket), the
change is merged again into what is there now and written again, a bounded number of
rounds with a short jittered pause, so two runs converge on a document holding both.

Limit (inherent to the API): a statement someone writes after our read and before our
write, and that we never saw, cannot be preserved by us; the read-write window is kept
to one round trip.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from certpilot.jobs.enforce_https.policy import (
    ChangeKind,
    OurStatement,
    PolicyChange,
    Refusal,
    fallback_until,
    find_ours,
    merge_https_only,
    normalise_instant,
    parse_document,
    remove_https_only,
    statements_kept,
)

MAX_ROUNDS = 5


class PolicyStore(Protocol):
    """The bucket policy calls enforce-https needs (`certpilot.cloud.oss.OssAdapter`)."""

    def get_bucket_policy(self, bucket: str, region: str) -> str | None: ...

    def put_bucket_policy(self, bucket: str, region: str, policy_json: str) -> None: ...

    def delete_bucket_policy(self, bucket: str, region: str) -> None: ...


class PolicyOutcome(str, enum.Enum):
    """What happened to one bucket's policy."""

    WRITTEN = "written"  # written and read back as intended
    ALREADY = "already"  # already in the desired state: nothing written
    DELETED = "deleted"  # ours was the last statement: the policy was deleted
    REFUSED = "refused"  # the document cannot take the change: left as it was
    CONTENDED = "contended"  # other writers kept replacing it: gave up after MAX_ROUNDS


@dataclass(frozen=True)
class PolicyResult:
    """The outcome for one bucket, with the refusal when there is one."""

    bucket: str
    outcome: PolicyOutcome
    rounds: int
    refusal: Refusal | None = None
    detail: str = ""


def _done(
    after: str | None,
    base: str | None,
    bucket: str,
    change: PolicyChange,
    want_ours: bool,
    until: datetime | None,
) -> bool:
    if not statements_kept(base, after, bucket):
        return False
    if change.kind is ChangeKind.DELETE:
        return after is None
    if after is None:
        return not want_ours
    try:
        present = find_ours(parse_document(after), bucket)
    except ValueError:
        return False
    if not want_ours:
        return not present
    return bool(present) and fallback_until(after, bucket) == until


def _converge(
    store: PolicyStore,
    bucket: str,
    region: str,
    decide: Callable[[str | None], PolicyChange],
    *,
    want_ours: bool,
    until: datetime | None,
    max_rounds: int,
    pause: Callable[[float], None],
) -> PolicyResult:
    wrote = False
    for round_no in range(1, max_rounds + 1):
        base = store.get_bucket_policy(bucket, region)
        change = decide(base)
        if change.kind is ChangeKind.REFUSED:
            return PolicyResult(
                bucket, PolicyOutcome.REFUSED, round_no, change.refusal, change.detail
            )
        if change.kind is ChangeKind.UNCHANGED:
            outcome = PolicyOutcome.WRITTEN if wrote else PolicyOutcome.ALREADY
            return PolicyResult(bucket, outcome, round_no)
        if change.kind is ChangeKind.DELETE:
            store.delete_bucket_policy(bucket, region)
        else:
            store.put_bucket_policy(bucket, region, change.document or "")
        wrote = True
        after = store.get_bucket_policy(bucket, region)
        if _done(after, base, bucket, change, want_ours, until):
            outcome = (
                PolicyOutcome.DELETED if change.kind is ChangeKind.DELETE else PolicyOutcome.WRITTEN
            )
            return PolicyResult(bucket, outcome, round_no)
        # Someone replaced the document meanwhile: merge again into what is there now.
        pause(random.uniform(0.05, 0.25) * round_no)  # noqa: S311 - jitter, not crypto
    return PolicyResult(bucket, PolicyOutcome.CONTENDED, max_rounds)


def ensure_https_only(
    store: PolicyStore,
    bucket: str,
    region: str,
    *,
    allow_http_until: datetime | None = None,
    max_rounds: int = MAX_ROUNDS,
    pause: Callable[[float], None] = time.sleep,
) -> PolicyResult:
    """Make `bucket`'s policy deny plain HTTP (from `allow_http_until` when given).

    Raises:
        CloudError: a read or write failed (nothing is assumed about the write; the
            next run reads the document again).
    """
    return _converge(
        store,
        bucket,
        region,
        lambda current: merge_https_only(current, bucket, allow_http_until=allow_http_until),
        want_ours=True,
        until=normalise_instant(allow_http_until),
        max_rounds=max_rounds,
        pause=pause,
    )


def remove_https_only_statement(
    store: PolicyStore,
    bucket: str,
    region: str,
    *,
    max_rounds: int = MAX_ROUNDS,
    pause: Callable[[float], None] = time.sleep,
) -> PolicyResult:
    """Take our statement out of `bucket`'s policy, never anyone else's.

    Raises:
        CloudError: a read or write failed.
    """
    return _converge(
        store,
        bucket,
        region,
        lambda current: remove_https_only(current, bucket),
        want_ours=False,
        until=None,
        max_rounds=max_rounds,
        pause=pause,
    )


def set_fallback(
    store: PolicyStore,
    bucket: str,
    region: str,
    *,
    allow_http_until: datetime | None,
    max_rounds: int = MAX_ROUNDS,
    pause: Callable[[float], None] = time.sleep,
) -> PolicyResult:
    """Start (`allow_http_until` set) or end (None) the emergency fallback of a bucket
    whose policy already holds our HTTPS-only statement.

    Unlike `ensure_https_only`, a bucket without our statement is left as it is
    (`ALREADY`): a fallback never adds an HTTPS-only statement that the guard did not
    decide on, which would lock the bucket against plain HTTP once the fallback ends.

    Raises:
        CloudError: a read or write failed.
    """
    until = normalise_instant(allow_http_until)

    def decide(current: str | None) -> PolicyChange:
        if current is None or not current.strip():
            return PolicyChange(ChangeKind.UNCHANGED)  # no policy: nothing of ours
        try:
            ours = find_ours(parse_document(current), bucket)
        except ValueError:
            ours = [OurStatement(-1, None)]  # let the merge refuse it with its reason
        if not ours:
            return PolicyChange(ChangeKind.UNCHANGED)
        return merge_https_only(current, bucket, allow_http_until=until)

    return _converge(
        store,
        bucket,
        region,
        decide,
        want_ours=True,
        until=until,
        max_rounds=max_rounds,
        pause=pause,
    )
