"""Settings reach the job through the environment, as a user sets them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.test_cli import ESTATE, certpilot, issue

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("renew_days", "expiring"), [(None, False), ("100", True)])
def test_certpilot_renew_days_is_the_window_the_plan_judges_the_candidate_with(
    cloud: Any, renew_days: str | None, expiring: bool
) -> None:
    # given a renewed certificate valid for 90 days
    cloud.load_estate(ESTATE)
    new = issue(cloud, days=90)
    # when planned with the default window (30 days) or CERTPILOT_RENEW_DAYS=100
    args = ("plan", "--cert-id", str(new["certId"]), "--format", "json")
    if renew_days is None:
        run = certpilot(cloud, *args)
    else:
        run = certpilot(cloud, *args, CERTPILOT_RENEW_DAYS=renew_days)
    # then only the wider window reports it as expiring; it is planned either way
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)
    assert ("CERT_EXPIRING" in [f["code"] for f in plan["findings"]]) is expiring
    assert plan["actions"] and not plan["refused"]
