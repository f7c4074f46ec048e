"""The latency profile: a read lasts at least its read latency, a write its write latency,
calls wait side by side, and the profile is off unless asked for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_cdn20180510 import models as cdn_models

from emulator import server  # noqa: F401  (registers the operations)
from emulator.core import OSS_OPERATIONS, READ_VERBS, RPC_OPERATIONS, kind_of
from emulator.latency import REALISTIC, LatencyProfile, parse_profile
from tests.conftest import EmulatorError

pytestmark = pytest.mark.integration

OFF = {"read": 0.0, "write": 0.0}


def timed(call: Callable[[], Any]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def given_a_bucket(cloud: Any, name: str = "lat-bucket") -> Any:
    client = cloud.oss_client()
    client.put_bucket(oss.PutBucketRequest(bucket=name))
    return client


def a_read(client: Any, bucket: str = "lat-bucket") -> Callable[[], Any]:
    return lambda: client.get_bucket_info(oss.GetBucketInfoRequest(bucket=bucket))


def a_write(client: Any, bucket: str = "lat-bucket") -> Callable[[], Any]:
    tagging = oss.Tagging(tag_set=oss.TagSet(tags=[oss.Tag(key="team", value="web")]))
    return lambda: client.put_bucket_tags(oss.PutBucketTagsRequest(bucket=bucket, tagging=tagging))


def test_the_profile_is_off_by_default(cloud):
    # Given an emulator started without --latency-profile, reset
    # Then its settings say no call waits
    assert cloud.settings()["latency_profile"] == OFF


def test_with_the_realistic_profile_a_read_takes_50_ms_and_a_write_150_ms(cloud):
    # Given a bucket, then the realistic profile switched on
    client = given_a_bucket(cloud)
    settings = cloud.settings(latency_profile={"read": 0.05, "write": 0.15})
    assert settings["latency_profile"] == {"read": 0.05, "write": 0.15}
    # When the SDK reads and writes (OSS), then each call lasts its class's latency at least
    assert timed(a_read(client)) >= 0.05
    assert timed(a_write(client)) >= 0.15
    # and so does an RPC read (CDN), its error answer included
    cdn = cloud.cdn_client()
    assert timed(lambda: cdn.describe_user_domains(cdn_models.DescribeUserDomainsRequest())) >= 0.05


def test_calls_wait_side_by_side_not_one_after_the_other(cloud):
    # Given writes that take 0.4 s each
    client = given_a_bucket(cloud)
    cloud.settings(latency_profile={"write": 0.4})
    write = a_write(client)
    # When eight writes are made at once
    threads = [threading.Thread(target=write) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    # Then they overlap: together they take far less than 8 x 0.4 s
    assert 0.4 <= elapsed < 1.6
    assert cloud.action_stats("oss:PutBucketTags")["calls"] == 8


def test_reset_switches_a_profile_set_at_run_time_off(cloud):
    cloud.settings(latency_profile="read=0.2,write=0.3")
    cloud.reset()
    assert cloud.settings()["latency_profile"] == OFF


def test_the_cli_flag_without_a_value_starts_the_realistic_profile(emulator_factory):
    # Given an emulator started with --latency-profile
    started = emulator_factory("--latency-profile")
    # Then its profile is reads 50 ms, writes 150 ms, and a reset keeps it
    assert started.settings()["latency_profile"] == {"read": 0.05, "write": 0.15}
    started.reset()
    assert started.settings()["latency_profile"] == {"read": 0.05, "write": 0.15}
    # and a call lasts it
    client = given_a_bucket(started, "lat-cli")
    assert timed(a_write(client, "lat-cli")) >= 0.15


@pytest.mark.parametrize(
    "value",
    [{"read": -1}, {"read": float("nan")}, {"slow": 1}, {"write": True}, [0.05], "read:1"],
)
def test_invalid_profiles_are_refused_and_change_nothing(cloud, value):
    with pytest.raises(EmulatorError, match="400"):
        cloud.settings(latency_profile=value)
    assert cloud.settings()["latency_profile"] == OFF


def test_every_action_of_the_catalog_is_a_read_or_a_write_by_its_verb():
    # Given the actions the emulator registers (OSS, CDN, CAS)
    names = [op.action for op in RPC_OPERATIONS.values()] + [op.name for op in OSS_OPERATIONS]
    kinds = {name: kind_of(name) for name in names}
    # Then only the reading verbs read
    assert all((kind == "read") == name.startswith(READ_VERBS) for name, kind in kinds.items())
    # and the writes certpilot makes are writes, its listings reads
    for write in ("SetCdnDomainSSLCertificate", "BatchSetCdnDomainConfig", "PutCname"):
        assert kinds[write] == "write"
    for read in ("DescribeUserDomains", "ListCname", "GetUserCertificateDetail", "HeadObject"):
        assert kinds[read] == "read"
    # and the registered operations carry that class
    assert {op.kind for op in RPC_OPERATIONS.values()} == {"read", "write"}


def test_profile_strings_parse():
    assert parse_profile("on") == REALISTIC == LatencyProfile(read=0.05, write=0.15)
    assert parse_profile("write=0.2") == LatencyProfile(read=0.0, write=0.2)
    assert not parse_profile("off").enabled
    with pytest.raises(ValueError):
        parse_profile("read=fast")
