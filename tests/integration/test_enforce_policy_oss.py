"""enforce-https's bucket policy writes through the real OSS SDK against the emulator:
every statement kept, ours once, duplicates change nothing, concurrent runs converge,
and plain HTTP to the bucket is really refused by the edge afterwards."""

from __future__ import annotations

import json
import threading
from typing import Any

from certpilot.jobs.enforce_https.policy import https_only_statement
from certpilot.jobs.enforce_https.policy_apply import (
    PolicyOutcome,
    ensure_https_only,
    remove_https_only_statement,
)
from tests.integration.clients import calls, make_clients
from tests.integration.policies import foreign_statements, stored_statements

REGION = "cn-hangzhou"
BUCKET = "media"
THEIRS = foreign_statements(BUCKET)


def statements(clients: Any) -> list[Any]:
    return stored_statements(clients, BUCKET, REGION)


def test_foreign_statements_kept_ours_added_once_and_duplicates_change_nothing(cloud: Any) -> None:
    # given a bucket whose policy already holds two statements written by someone else
    cloud.load_estate({"buckets": [{"name": BUCKET, "region": REGION}]})
    clients = make_clients(cloud)
    clients.oss.put_bucket_policy(BUCKET, REGION, json.dumps({"Version": "1", "Statement": THEIRS}))
    # when enforced, then twice more (duplicate events)
    first = ensure_https_only(clients.oss, BUCKET, REGION)
    puts = calls(cloud, "oss:PutBucketPolicy")
    second = ensure_https_only(clients.oss, BUCKET, REGION)
    third = ensure_https_only(clients.oss, BUCKET, REGION)
    # then theirs are all there, ours once, and the duplicates wrote nothing
    assert first.outcome is PolicyOutcome.WRITTEN
    assert (second.outcome, third.outcome) == (PolicyOutcome.ALREADY, PolicyOutcome.ALREADY)
    assert calls(cloud, "oss:PutBucketPolicy") == puts
    assert statements(clients) == [*THEIRS, https_only_statement(BUCKET)]


def test_no_policy_then_ours_alone_and_removal_deletes_it(cloud: Any) -> None:
    cloud.load_estate({"buckets": [{"name": BUCKET, "region": REGION}]})
    clients = make_clients(cloud)
    assert ensure_https_only(clients.oss, BUCKET, REGION).outcome is PolicyOutcome.WRITTEN
    assert statements(clients) == [https_only_statement(BUCKET)]
    removed = remove_https_only_statement(clients.oss, BUCKET, REGION)
    assert removed.outcome is PolicyOutcome.DELETED
    assert clients.oss.get_bucket_policy(BUCKET, REGION) is None


def test_concurrent_runs_on_one_bucket_keep_every_statement(cloud: Any) -> None:
    # given a bucket with two foreign statements (two domains of it bound in the same
    # minute: one enforce-https run each, and a duplicate delivery of each event)
    cloud.load_estate({"buckets": [{"name": BUCKET, "region": REGION}]})
    clients = make_clients(cloud)
    clients.oss.put_bucket_policy(BUCKET, REGION, json.dumps({"Version": "1", "Statement": THEIRS}))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(ensure_https_only(clients.oss, BUCKET, REGION))
        except BaseException as err:  # reported by the assertion below
            errors.append(err)

    # when four runs work on it at once
    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # then every statement is there, ours once, and every run says so
    assert errors == []
    assert {r.outcome for r in results} <= {PolicyOutcome.WRITTEN, PolicyOutcome.ALREADY}
    assert len(results) == 4
    assert statements(clients) == [*THEIRS, https_only_statement(BUCKET)]
