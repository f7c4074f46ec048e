"""check-expiry's report objects through the real OSS SDK against the emulator: the
adapter's PutObject / GetObject (content type, NoSuchKey -> None, a missing bucket is an
error), and `store_report` / `load_previous` (dated objects, `latest`, read back)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from certpilot.core.errors import NotFoundError
from certpilot.core.findings import Code, make_finding
from certpilot.core.model import Location
from certpilot.jobs.check_expiry import report as rp
from certpilot.jobs.check_expiry.report import (
    CertInfo,
    DomainRow,
    Forced,
    Hsts,
    Report,
    ReportTarget,
    RunInfo,
)
from tests.integration.clients import calls, make_clients

pytestmark = pytest.mark.integration

NOW = datetime(2030, 3, 4, 5, 6, tzinfo=timezone.utc)
BUCKET, REGION = "ops-reports", "cn-shanghai"


@pytest.fixture
def estate(cloud: Any) -> Any:
    cloud.load_estate(
        {
            "buckets": [
                {"name": BUCKET, "region": REGION},
                {"name": "home-reports", "region": cloud.region},
            ]
        }
    )
    return cloud


def sample_report(run_id: str = "20300304T050600Z-req-7") -> Report:
    domain = "cdn.example.com"
    row = DomainRow(
        domain,
        Location.CDN,
        certificate=CertInfo(11, "cdn", "Example CA", NOW + timedelta(days=12)),
        https_forced=Forced.YES,
        hsts=Hsts.NO,
        findings=(
            make_finding(Code.CERT_EXPIRING, domain, "12 days left"),
            make_finding(Code.HSTS_MISSING, domain, "no HSTS"),
        ),
    )
    unjudged = rp.not_judged("late.example.com", Location.OSS, "ListCname timed out")
    run = RunInfo(run_id, NOW, NOW + timedelta(seconds=3), NOW, account="1234567890")
    return Report(run, (row, unjudged))


def test_objects_are_written_and_read_with_their_content_type(estate: Any) -> None:
    oss = make_clients(estate).oss

    body = "<p>é</p>".encode()

    for bucket, region in ((BUCKET, REGION), ("home-reports", estate.region)):
        oss.put_object(bucket, region, "a/b.html", body, "text/html; charset=utf-8")
        assert oss.get_object(bucket, region, "a/b.html") == body

    # the content type as OSS serves it, read through the SDK itself (its client signs
    # for the emulator's default region)
    import alibabacloud_oss_v2 as oss_sdk

    head = estate.oss_client().head_object(
        oss_sdk.models.HeadObjectRequest(bucket="home-reports", key="a/b.html")
    )
    assert head.content_type == "text/html; charset=utf-8"


def test_a_missing_key_reads_as_none_and_a_missing_bucket_is_an_error(estate: Any) -> None:
    oss = make_clients(estate).oss

    assert oss.get_object(BUCKET, REGION, "nothing/here.json") is None
    with pytest.raises(NotFoundError) as error:
        oss.get_object("no-such-bucket", REGION, "latest.json")
    assert error.value.code == "NoSuchBucket"
    with pytest.raises(NotFoundError):
        oss.put_object("no-such-bucket", REGION, "k", b"x", "text/plain")


def test_a_report_is_stored_by_date_and_as_latest_and_read_back(estate: Any) -> None:
    oss = make_clients(estate).oss
    target = ReportTarget.from_settings(
        make_clients_settings(
            estate, CERTPILOT_REPORT_BUCKET=BUCKET, CERTPILOT_REPORT_REGION=REGION
        )
    )
    assert target is not None
    report = sample_report()

    # before any run: no previous report
    assert rp.load_previous(oss, target.bucket, target.region, target.prefix) is None

    stored = rp.store_report(oss, target.bucket, target.region, target.prefix, report, NOW)

    day = "certpilot/reports/2030/03/04/20300304T050600Z-req-7"
    assert stored.keys == (
        f"{day}.json",
        f"{day}.html",
        f"{day}.md",
        "certpilot/reports/latest.json",
        "certpilot/reports/latest.html",
        "certpilot/reports/latest.md",
    )
    assert calls(estate, "oss:PutObject") == 6
    previous = rp.load_previous(oss, target.bucket, target.region, target.prefix)
    assert previous is not None
    assert (previous.run, previous.rows) == (report.run, report.rows)
    assert previous is not None and not previous.all_clear
    assert [(a.domain, a.code) for a in previous.alerts] == [
        ("cdn.example.com", Code.CERT_EXPIRING),
        ("cdn.example.com", Code.HSTS_MISSING),
        ("late.example.com", Code.NOT_JUDGED),
    ]
    html = oss.get_object(BUCKET, REGION, "certpilot/reports/latest.html")
    assert html is not None and html.startswith(b"<!DOCTYPE html>")
    assert oss.get_object(BUCKET, REGION, f"{day}.json") == rp.render_json(report).encode()


def test_the_next_run_replaces_latest_and_keeps_the_dated_object(estate: Any) -> None:
    oss = make_clients(estate).oss
    first, second = sample_report("run-1"), sample_report("run-2")

    rp.store_report(oss, BUCKET, REGION, "audit", first, NOW)
    rp.store_report(oss, BUCKET, REGION, "audit", second, NOW + timedelta(days=1))

    latest = rp.load_previous(oss, BUCKET, REGION, "audit")
    assert latest is not None and latest.run.run_id == "run-2"
    assert oss.get_object(BUCKET, REGION, "audit/2030/03/04/run-1.json") is not None
    assert oss.get_object(BUCKET, REGION, "audit/2030/03/05/run-2.md") is not None


def make_clients_settings(cloud: Any, **env: str) -> Any:
    """The Settings a handler would build from the emulator's environment plus `env`."""
    from certpilot.core.settings import Settings

    return Settings.from_env({**cloud.certpilot_env(), **env})
