"""Typed outcomes: the code strings the summary shows and the words people read are
rendered from typed values; nothing is parsed back."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from certpilot.core.findings import Code, Finding, make_finding
from certpilot.core.model import Route
from certpilot.core.outcomes import (
    Binding,
    BindingState,
    CallError,
    Note,
    NoteKind,
    Outcome,
    Reason,
    ReasonCode,
    RunStatus,
)
from certpilot.jobs.deploy_cert.apply import DomainResult
from certpilot.jobs.deploy_cert.plan import Rollback
from certpilot.jobs.deploy_cert.summary import (
    DeployReport,
    reason_facts,
    reason_words,
    render,
    result_dict,
)

WHEN = datetime(2027, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("reason", "wire"),
    [
        (
            Reason(ReasonCode.CANDIDATE_INVALID, findings=(Code.CERT_EXPIRED, Code.WEAK_KEY)),
            "candidate-invalid:CERT_EXPIRED",
        ),
        (Reason(ReasonCode.CDN_STATUS, cdn_status="offline"), "cdn-status:offline"),
        (Reason(ReasonCode.CURRENT_INVALID, finding=Code.WEAK_KEY), "current-invalid:WEAK_KEY"),
        (Reason(ReasonCode.SERVED_MISMATCH, finding=Code.NAME_MISMATCH), "served-mismatch"),
        (Reason(ReasonCode.SUPERSEDED, bound=Binding(BindingState.NONE)), "superseded"),
    ],
)
def test_the_summary_code_string_comes_from_the_code_and_its_fields(
    reason: Reason, wire: str
) -> None:
    assert reason.wire == wire == str(reason)


@pytest.mark.parametrize("code", list(ReasonCode))
def test_every_reason_code_has_words_and_facts(code: ReasonCode) -> None:
    # given a reason of each code with the fields it may carry
    reason = Reason(
        code,
        finding=Code.WEAK_KEY,
        findings=(Code.CERT_EXPIRED,),
        cdn_status="offline",
        cert_id=7,
        current_expires=WHEN,
        candidate_expires=WHEN,
        bound=Binding(BindingState.CERTIFICATE, cert="7-cn-hangzhou"),
        error=CallError("PutCname", "NoSuchCname"),
        problem="edge serves another certificate",
        waited=1.25,
    )
    # then people get a sentence and machines the typed fields, JSON-ready
    assert reason_words(reason, Route.CDN).strip()
    facts = json.loads(json.dumps(reason_facts(reason)))
    assert facts["code"] == code.value
    assert facts["error"] == {"action": "PutCname", "code": "NoSuchCname"}
    assert facts["bound"] == {"state": "certificate", "cert": "7-cn-hangzhou"}


def test_only_runs_that_did_what_they_were_asked_are_ok() -> None:
    assert {s for s in RunStatus if s.ok} == {
        RunStatus.DEPLOYED,
        RunStatus.NOTHING_TO_DO,
        RunStatus.SUPERSEDED,
    }


def test_a_rolled_back_result_renders_its_rollback_and_notes_as_fields() -> None:
    # given a domain whose write answered 500 yet applied, then did not verify
    note = Note(
        NoteKind.APPLIED_DESPITE_ERROR,
        CallError("SetCdnDomainSSLCertificate", "InternalError"),
        bound=Binding(BindingState.CERTIFICATE, cert="2001"),
    )
    result = DomainResult(
        "cdn.example.com",
        Outcome.ROLLED_BACK,
        Route.CDN,
        Reason(ReasonCode.VERIFY_FAILED, problem="timed out", waited=3.0),
        previous_cert_id=1001,
        verified=False,
        rollback=Rollback.RESTORE,
        restored_verified=True,
        notes=(note,),
    )
    # when rendered for the summary
    data = json.loads(json.dumps(result_dict(result)))
    # then the code, the typed fields and the notes are there, beside the words
    assert (data["outcome"], data["reason"], data["rollback"]) == (
        "rolled-back",
        "verify-failed",
        "restore",
    )
    assert (data["facts"]["problem"], data["facts"]["waited"]) == ("timed out", 3.0)
    assert [n["kind"] for n in data["notes"]] == ["applied-despite-error"]
    assert data["notes"][0]["bound"] == {"state": "certificate", "cert": "2001"}
    assert data["detail"]


def test_a_served_mismatch_finding_carries_both_fingerprints() -> None:
    finding = make_finding(
        Code.SERVED_MISMATCH, "d.example.com", "another one", configured="AA" * 32, served="BB" * 32
    )
    data = finding.to_dict()
    assert (data["configured"], data["served"]) == ("AA" * 32, "BB" * 32)
    assert Finding.from_dict(data) == finding
    # other findings keep their shape
    assert "configured" not in make_finding(Code.NO_BACKUP, "d.example.com", "x").to_dict()


def test_a_report_renders_the_documented_summary_shape() -> None:
    report = DeployReport(
        status=RunStatus.NOTHING_TO_DO, cert_id=9, request_id="r", event={"certId": 9}
    )
    summary = render(report)
    assert (summary["ok"], summary["status"], summary["function"]) == (
        True,
        "nothing-to-do",
        "deploy-cert",
    )
    assert summary["counts"] == {o.value: 0 for o in Outcome}
    assert (summary["results"], summary["findings"]) == ([], [])
