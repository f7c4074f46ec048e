"""The handler frame every function uses: parse at the edge, run the job, answer JSON.

A tiny fake job stands in for deploy-cert: what the frame does is the same for every
function (request id in every log line, rejections and errors answered, not raised,
and no secret in the answer or the log).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from certpilot import handler as frame
from certpilot.core import log
from certpilot.core.errors import CloudError, ConfigError, MalformedEvent
from certpilot.core.outcomes import RunStatus

SECRET = "AccessKeySecret=abcDEF123456789xyzSECRET"
CONTEXT = SimpleNamespace(request_id="req-42", account_id="1234")


class Job:
    """Accepts `{"n": <int>}` events; `n` says how the run ends."""

    def __init__(self) -> None:
        self.seen: list[frame.Invocation] = []

    def parse(self, event: Any, invocation: frame.Invocation) -> int:
        data = json.loads(event)
        if not isinstance(data.get("n"), int):
            raise MalformedEvent("n must be a number")
        return int(data["n"])

    def run(self, n: int, invocation: frame.Invocation) -> Mapping[str, Any]:
        self.seen.append(invocation)
        log.event(log.get_logger("jobs.fake"), "fake job ran", n=n)
        if n == 1:
            raise ConfigError("CERTPILOT_SOMETHING is not usable")
        if n == 2:
            raise CloudError("cdn", "SetCdnDomainSSLCertificate", "ServiceBusy", 403)
        if n == 3:
            raise RuntimeError(f"SDK said: {SECRET}")
        return {"ok": True, "status": "done", "n": n}


@pytest.fixture
def job(monkeypatch: pytest.MonkeyPatch) -> Iterator[Job]:
    for name in ("CERTPILOT_ACCOUNT_ID", "CERTPILOT_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    yield Job()
    log.unconfigure()
    log.set_request_id(None)


def call(job: Job, event: bytes, context: Any = CONTEXT) -> dict[str, Any]:
    handler = frame.function("fake-job", parse=job.parse, run=job.run)
    answer: dict[str, Any] = json.loads(handler(event, context))
    return answer


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]


def test_a_successful_run_is_answered_as_the_job_returned_it(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an event the job accepts, when the handler is invoked
    answer = call(job, b'{"n": 7}')
    # then the answer is the job's summary, and the job saw the settings and request id
    assert answer == {"ok": True, "status": "done", "n": 7}
    [invocation] = job.seen
    assert (invocation.function, invocation.request_id) == ("fake-job", "req-42")
    # and every log line of the invocation carries the request id
    lines = log_lines(capsys)
    assert [line["msg"] for line in lines] == ["fake job ran"]
    assert {line.get("request_id") for line in lines} == {"req-42"}


def test_the_account_comes_from_the_settings_else_the_context(
    job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    call(job, b'{"n": 0}')
    monkeypatch.setenv("CERTPILOT_ACCOUNT_ID", "5678")
    call(job, b'{"n": 0}')
    assert [i.account_id for i in job.seen] == ["1234", "5678"]


def test_an_event_the_job_does_not_accept_is_rejected_not_raised(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    # when the event is not what the job takes
    answer = call(job, b'{"n": "x"}')
    # then the answer says rejected with the error's type, and the job never ran
    assert (answer["ok"], answer["status"]) == (False, RunStatus.REJECTED.value)
    assert (answer["function"], answer["requestId"]) == ("fake-job", "req-42")
    assert answer["error"]["type"] == "MalformedEvent"
    assert job.seen == []
    [line] = log_lines(capsys)
    assert (line["level"], line["error"], line["request_id"]) == (
        "WARNING",
        "MalformedEvent",
        "req-42",
    )


@pytest.mark.parametrize(
    ("n", "error_type", "code"),
    [(1, "ConfigError", None), (2, "CloudError", "ServiceBusy")],
)
def test_a_certpilot_error_of_the_job_is_an_error_summary(
    job: Job, n: int, error_type: str, code: str | None
) -> None:
    answer = call(job, json.dumps({"n": n}).encode())
    assert (answer["ok"], answer["status"]) == (False, RunStatus.ERROR.value)
    assert answer["error"]["type"] == error_type
    assert answer["error"].get("code") == code


def test_an_unexpected_error_is_answered_without_its_text_and_logged_redacted(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a job that fails with an error whose text quotes a secret
    answer = call(job, b'{"n": 3}')
    # then the answer names only the error's type
    assert (answer["status"], answer["error"]["type"]) == ("error", "RuntimeError")
    assert "abcDEF123456789xyz" not in json.dumps(answer)
    # and the log line says it failed, with the request id and without the secret
    output = capsys.readouterr().err
    assert "abcDEF123456789xyz" not in output
    failed = [json.loads(line) for line in output.splitlines() if "invocation failed" in line]
    assert [line["request_id"] for line in failed] == ["req-42"]


def test_bad_settings_are_an_error_summary_before_the_event_is_read(
    job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTPILOT_LOG_LEVEL", "LOUD")
    answer = call(job, b"not even json")
    assert (answer["status"], answer["error"]["type"]) == ("error", "ConfigError")
    assert job.seen == []
