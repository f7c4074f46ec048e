"""CERTPILOT_RENEW_DAYS: the renewal window deploy-cert's plan and diagnose-cert judge
a candidate's expiry with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from certpilot.core.findings import Code, Severity
from certpilot.core.model import DomainRecord, Inventory, Route
from certpilot.jobs.deploy_cert import plan as p
from tests.pki import build_pki, pem
from tests.unit.test_plan import DAY, NEW, NOW

REPO = Path(__file__).resolve().parents[2]
WWW = DomainRecord("www.example.com", Route.OSS, "assets", "cn-hangzhou", None)


def planned(days_left: int, renew_days: int) -> p.Plan:
    candidate = replace(NEW, not_after=NOW + days_left * DAY)
    return p.plan_certificate(candidate, Inventory((WWW,)), NOW, p.Policy(renew_days=renew_days))


def codes(plan: p.Plan) -> list[Code]:
    return [f.code for f in plan.findings]


def test_a_candidate_inside_the_renewal_window_is_deployed_with_a_warning() -> None:
    # given a candidate with 20 days left and a 30-day window
    plan = planned(days_left=20, renew_days=30)
    # then it is still deployed, and CERT_EXPIRING (a warning) says it is due soon
    assert [a.domain for a in plan.actions] == ["www.example.com"] and not plan.refused
    [finding] = [f for f in plan.findings if f.code is Code.CERT_EXPIRING]
    assert finding.severity is Severity.WARNING


@pytest.mark.parametrize(
    ("days_left", "renew_days", "expiring"),
    [(20, 30, True), (30, 30, True), (31, 30, False), (20, 10, False), (60, 90, True)],
)
def test_the_window_is_the_policys_renew_days(
    days_left: int, renew_days: int, expiring: bool
) -> None:
    assert (Code.CERT_EXPIRING in codes(planned(days_left, renew_days))) is expiring


def test_an_expired_candidate_is_refused_not_expiring() -> None:
    assert codes(planned(days_left=-1, renew_days=30)) == [Code.CERT_EXPIRED]


# ---------------------------------------------------------------- diagnose-cert


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A chain whose leaf has 60 days left at tests.pki.NOW, and its root."""
    pki = build_pki(("www.example.com",), depth=1)
    folder = tmp_path_factory.mktemp("renew")
    (folder / "chain.pem").write_bytes(pki.chain_pem())
    (folder / "root.pem").write_bytes(pem(pki.root.cert))
    return folder / "chain.pem", folder / "root.pem"


def diagnose(files: tuple[Path, Path], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    chain, root = files
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CERTPILOT_")}
    environ.update(PYTHONPATH=str(REPO / "shared" / "python"), **env)
    command = [sys.executable, "-m", "certpilot", "diagnose-cert", "--domain", "www.example.com"]
    inputs = ["--cert", str(chain), "--ca-bundle", str(root), "--now", "2025-06-01T12:00:00Z"]
    return subprocess.run(
        [*command, *inputs, *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def finding_codes(run: subprocess.CompletedProcess[str]) -> list[str]:
    return [f["code"] for f in json.loads(run.stdout)["findings"]]


@pytest.mark.parametrize(
    ("env", "args", "expiring"),
    [
        ({}, [], False),  # default window 30 days; 60 left
        ({"CERTPILOT_RENEW_DAYS": "90"}, [], True),
        ({"CERTPILOT_RENEW_DAYS": "90"}, ["--renew-days", "10"], False),  # the flag wins
    ],
)
def test_diagnose_cert_takes_its_default_window_from_the_setting(
    files: tuple[Path, Path], env: dict[str, str], args: list[str], expiring: bool
) -> None:
    run = diagnose(files, *args, **env)
    assert run.returncode == 0, run.stderr
    assert ("CERT_EXPIRING" in finding_codes(run)) is expiring


def test_diagnose_cert_refuses_a_bad_setting_as_unusable_input(files: tuple[Path, Path]) -> None:
    run = diagnose(files, CERTPILOT_RENEW_DAYS="soon")
    assert run.returncode == 2
    assert "CERTPILOT_RENEW_DAYS" in run.stderr and "Traceback" not in run.stderr
