"""The OSS calls check-expiry's fan-out relies on, through the real OSS SDK against the
emulator: ListObjectsV2 (prefix, paging, delimiter, URL encoding) and PutObject with
`x-oss-forbid-overwrite` (one writer wins, the object is kept)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.integration.clients import make_clients

pytestmark = pytest.mark.integration

BUCKET, REGION = "ops-reports", "cn-shanghai"
HOME = "home-reports"  # in the region the SDK's own test client signs for


@pytest.fixture
def estate(cloud: Any) -> Any:
    cloud.load_estate(
        {
            "buckets": [
                {"name": BUCKET, "region": REGION},
                {"name": HOME, "region": cloud.region},
            ]
        }
    )
    return cloud


def test_keys_are_listed_by_prefix_in_order_across_pages(estate: Any) -> None:
    # given 1,001 parts of one run, objects of another run and a report
    oss = make_clients(estate).oss
    run = "reports/runs/1-abc"
    names = [f"{run}/parts/{n:05d}.json" for n in range(1001)]
    for key in [*reversed(names), "reports/runs/1-abd/parts/00000.json", "reports/latest.json"]:
        oss.put_object(BUCKET, REGION, key, b"{}", "application/json")
    # when the run's parts are listed (pages of 1000)
    listed = oss.list_keys(BUCKET, REGION, f"{run}/parts/")
    # then exactly those keys come back, in order
    assert listed == names
    assert oss.list_keys(BUCKET, REGION, "nothing/") == []
    calls = estate.action_stats("oss:ListObjectsV2")["calls"]
    assert calls >= 2


def test_a_delimiter_rolls_keys_up_and_odd_keys_survive_url_encoding(estate: Any) -> None:
    import alibabacloud_oss_v2 as oss_sdk

    # given keys with spaces, non-ASCII and several "folders"
    oss = make_clients(estate).oss
    for key in ("r/a b/1.json", "r/a b/2.json", "r/é.json", "r/z/3.json"):
        oss.put_object(HOME, estate.region, key, b"x", "text/plain")
    # when listed through the SDK (encoding-type=url) with a delimiter, one key a page
    client = estate.oss_client()
    seen: list[str] = []
    token = None
    while True:
        page = client.list_objects_v2(
            oss_sdk.ListObjectsV2Request(
                bucket=HOME, prefix="r/", delimiter="/", max_keys=1, continuation_token=token
            )
        )
        seen += [str(c.prefix) for c in page.common_prefixes or []]
        seen += [str(o.key) for o in page.contents or []]
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    # then each folder shows once, each key once, decoded
    assert seen == ["r/a b/", "r/z/", "r/é.json"]  # UTF-8 byte order


def test_a_forbid_overwrite_write_keeps_the_first_object(estate: Any) -> None:
    # given no marker yet
    oss = make_clients(estate).oss
    # when two writers create the same key with forbid-overwrite
    assert oss.create_object(BUCKET, REGION, "runs/1/merged", b"first", "text/plain") is True
    assert oss.create_object(BUCKET, REGION, "runs/1/merged", b"second", "text/plain") is False
    # then the first one is kept; a plain PutObject still replaces
    assert oss.get_object(BUCKET, REGION, "runs/1/merged") == b"first"
    oss.put_object(BUCKET, REGION, "runs/1/merged", b"third", "text/plain")
    assert oss.get_object(BUCKET, REGION, "runs/1/merged") == b"third"


def test_of_many_concurrent_creators_exactly_one_wins(estate: Any) -> None:
    # given eight shards that all saw every part at once
    oss = make_clients(estate).oss
    won: list[bool] = []
    lock = threading.Lock()

    def claim(n: int) -> None:
        result = oss.create_object(BUCKET, REGION, "runs/2/merged", str(n).encode(), "text/plain")
        with lock:
            won.append(result)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then exactly one claim was written
    assert sorted(won) == [False] * 7 + [True]
