"""Function Compute 3.0 InvokeFunction through `alibabacloud_fc20230330`: handlers run
in their own process with an FC-shaped context, sync and async."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_tea_openapi.exceptions import ClientException
from darabonba.runtime import RuntimeOptions

pytestmark = pytest.mark.integration

HANDLER = textwrap.dedent(
    """
    import json, os, sys

    def handler(event, context):
        print("handling", context.request_id)
        request = json.loads(event or b"{}")
        if request.get("fail"):
            raise ValueError("asked to fail")
        return json.dumps({
            "event": request,
            "event_type": type(event).__name__,
            "request_id": context.request_id,
            "credentials": [context.credentials.access_key_id,
                            bool(context.credentials.access_key_secret)],
            "function": [context.function.name, context.function.memory],
            "region": context.region,
            "account_id": context.account_id,
            "greeting": os.environ.get("GREETING"),
            "emulator_importable": "emulator" in sys.modules,
        })
    """
)


@pytest.fixture
def echo(cloud, tmp_path: Path) -> str:
    code = tmp_path / "index.py"
    code.write_text(HANDLER)
    cloud.register_function("echo", code, env={"GREETING": "hello"})
    return "echo"


def invoke(
    client: Any, name: str, body: bytes, *, invocation_type: str | None = None, log: bool = False
) -> Any:
    return client.invoke_function_with_options(
        name,
        fc_models.InvokeFunctionRequest(body=body, qualifier="LATEST"),
        fc_models.InvokeFunctionHeaders(
            x_fc_invocation_type=invocation_type, x_fc_log_type="Tail" if log else None
        ),
        RuntimeOptions(),
    )


def test_sync_invoke_returns_the_handler_result(cloud, echo):
    response = invoke(cloud.fc_client(), echo, b'{"certId": 42}', log=True)

    assert response.status_code == 200
    result = json.loads(response.body.read())
    request_id = response.headers["x-fc-request-id"]
    assert result == {
        "event": {"certId": 42},
        "event_type": "bytes",
        "request_id": request_id,
        "credentials": [cloud.access_key_id, True],
        "function": ["echo", 512],
        "region": cloud.region,
        "account_id": cloud.account_id,
        "greeting": "hello",
        "emulator_importable": False,
    }
    assert (
        f"handling {request_id}" in base64.b64decode(response.headers["x-fc-log-result"]).decode()
    )
    [record] = cloud.invocations("echo")
    assert (record["requestId"], record["status"]) == (request_id, "succeeded")


def test_async_invoke_answers_202_and_runs_in_the_background(cloud, echo):
    response = invoke(cloud.fc_client(), echo, b'{"n": 1}', invocation_type="Async")

    assert response.status_code == 202
    record = cloud.wait_invocation(response.headers["x-fc-request-id"])
    assert record["status"] == "succeeded"
    assert record["invocationType"] == "Async"
    assert json.loads(record["result"])["event"] == {"n": 1}


def test_a_failing_handler_reports_an_unhandled_invocation_error(cloud, echo):
    response = invoke(cloud.fc_client(), echo, b'{"fail": true}')

    assert response.status_code == 200
    assert response.headers["x-fc-error-type"] == "UnhandledInvocationError"
    error = json.loads(response.body.read())
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "asked to fail")
    assert cloud.invocations("echo")[0]["status"] == "failed"


def test_an_unknown_function_is_not_found(cloud):
    with pytest.raises(ClientException) as caught:
        invoke(cloud.fc_client(), "missing", b"{}")
    assert (caught.value.status_code, caught.value.code) == (404, "FunctionNotFound")
    assert caught.value.data["RequestId"].startswith("1-")
    assert cloud.action_stats("fc:InvokeFunction")["errors"] == 1


def test_functions_registered_at_start_survive_a_reset(emulator_factory, tmp_path_factory):
    code = tmp_path_factory.mktemp("fn") / "index.py"
    code.write_text("def main(event, context):\n    return b'started:' + event\n")
    started = emulator_factory("--function", f"boot={code}:main")
    started.reset()

    response = invoke(started.fc_client(), "boot", b"ok")
    assert response.body.read() == b"started:ok"


def test_invalid_registrations_are_rejected(cloud, tmp_path):
    from tests.conftest import EmulatorError

    with pytest.raises(EmulatorError, match="400"):
        cloud.register_function("ghost", tmp_path / "absent.py")
    with pytest.raises(EmulatorError, match="400"):
        cloud.register_function("bad name!", tmp_path / "absent.py")
    code = tmp_path / "index.py"
    code.write_text("def handler(event, context):\n    return event\n")
    for retries in (-1, 9, "many"):
        with pytest.raises(EmulatorError, match="400"):
            cloud.register_function("retries", code, async_retries=retries)


FLAKY = textwrap.dedent(
    """
    import os

    def handler(event, context):
        # One line per attempt, so the test sees every run and the id each one got.
        with open(os.environ["ATTEMPTS_FILE"], "a") as log:
            log.write(context.request_id + "\\n")
        with open(os.environ["ATTEMPTS_FILE"]) as log:
            attempts = len(log.read().splitlines())
        if attempts <= int(os.environ["FAILURES"]):
            raise RuntimeError(f"attempt {attempts} fails")
        return f"done on attempt {attempts}"
    """
)


def flaky(cloud: Any, tmp_path: Path, *, failures: int, **registration: Any) -> Path:
    """Register `flaky`, whose first `failures` runs raise; returns its attempts file."""
    code = tmp_path / "flaky.py"
    code.write_text(FLAKY)
    attempts = tmp_path / "attempts.txt"
    cloud.register_function(
        "flaky",
        code,
        env={"ATTEMPTS_FILE": str(attempts), "FAILURES": str(failures)},
        async_retry_delay=0,
        **registration,
    )
    return attempts


def test_an_async_payload_over_128_kb_is_refused_and_nothing_runs(cloud, echo):
    # given an asynchronous payload of 200 KB (FC's async limit is 128 KB)
    client = cloud.fc_client()

    # when it is invoked asynchronously
    with pytest.raises(ClientException) as caught:
        invoke(client, echo, b"x" * (200 * 1024), invocation_type="Async")

    # then FC refuses it as documented, and the function never ran
    assert (caught.value.status_code, caught.value.code) == (400, "EntityTooLarge")
    assert caught.value.data["RequestId"].startswith("1-")
    assert cloud.invocations("echo") == []
    # while exactly 128 KB is accepted, and 200 KB still runs synchronously
    exactly = b'{"p": "' + b"a" * (128 * 1024 - 9) + b'"}'
    at_limit = invoke(client, echo, exactly, invocation_type="Async")
    assert cloud.wait_invocation(at_limit.headers["x-fc-request-id"])["status"] == "succeeded"
    assert invoke(client, "echo", b'{"big": "' + b"y" * (200 * 1024) + b'"}').status_code == 200


def test_a_failed_async_invocation_is_retried_three_times_with_the_same_request_id(cloud, tmp_path):
    # given a function that always fails, with FC's default retry setting
    attempts_file = flaky(cloud, tmp_path, failures=99)

    # when it is invoked asynchronously
    response = invoke(cloud.fc_client(), "flaky", b"{}", invocation_type="Async")
    request_id = response.headers["x-fc-request-id"]
    last = cloud.wait_invocation(request_id)

    # then it ran once and was retried 3 times, every run with the same request id
    assert attempts_file.read_text().splitlines() == [request_id] * 4
    records = cloud.invocations("flaky")
    assert [(r["requestId"], r["attempt"], r["status"]) for r in records] == [
        (request_id, n, "failed") for n in (1, 2, 3, 4)
    ]
    assert [r["willRetry"] for r in records] == [True, True, True, False]
    assert {r["maxAttempts"] for r in records} == {4}
    assert (last["attempt"], last["error"]["errorType"]) == (4, "RuntimeError")


def test_retries_stop_at_the_first_success_and_follow_the_function_setting(cloud, tmp_path):
    # given a function that fails once, then succeeds
    attempts_file = flaky(cloud, tmp_path, failures=1, async_retries=1)

    # when it is invoked asynchronously
    response = invoke(cloud.fc_client(), "flaky", b"{}", invocation_type="Async")
    last = cloud.wait_invocation(response.headers["x-fc-request-id"])

    # then the retry succeeded and nothing ran after it
    assert (last["attempt"], last["status"]) == (2, "succeeded")
    assert last["result"] == "done on attempt 2"
    assert len(attempts_file.read_text().splitlines()) == 2
    assert [r["status"] for r in cloud.invocations("flaky")] == ["failed", "succeeded"]


def test_no_retries_when_configured_off_and_never_for_sync_calls(cloud, tmp_path):
    # given a function that always fails and may not be retried
    flaky(cloud, tmp_path, failures=99, async_retries=0)
    client = cloud.fc_client()

    # when it is invoked asynchronously, then synchronously
    queued = invoke(client, "flaky", b"{}", invocation_type="Async")
    last = cloud.wait_invocation(queued.headers["x-fc-request-id"])
    sync = invoke(client, "flaky", b"{}")

    # then each ran exactly once
    assert (last["attempt"], last["maxAttempts"], last["willRetry"]) == (1, 1, False)
    assert sync.headers["x-fc-error-type"] == "UnhandledInvocationError"
    assert [r["attempt"] for r in cloud.invocations("flaky")] == [1, 1]


def test_the_retry_count_is_set_through_fc_s_own_async_invoke_config_api(cloud, tmp_path):
    # given a function that always fails, and FC's async config put through the SDK
    flaky(cloud, tmp_path, failures=99)
    client = cloud.fc_client()
    put = client.put_async_invoke_config_with_options(
        "flaky",
        fc_models.PutAsyncInvokeConfigRequest(
            body=fc_models.PutAsyncInvokeConfigInput(max_async_retry_attempts=1)
        ),
        {},
        RuntimeOptions(),
    )
    assert put.body.max_async_retry_attempts == 1
    got = client.get_async_invoke_config_with_options(
        "flaky", fc_models.GetAsyncInvokeConfigRequest(), {}, RuntimeOptions()
    )
    assert got.body.max_async_retry_attempts == 1
    assert got.body.function_arn.endswith(":functions/flaky")

    # when it is invoked asynchronously
    queued = invoke(client, "flaky", b"{}", invocation_type="Async")
    last = cloud.wait_invocation(queued.headers["x-fc-request-id"])

    # then it ran twice: once, and the one retry configured
    assert (last["attempt"], last["maxAttempts"], last["willRetry"]) == (2, 2, False)
    # and an out-of-range setting is refused, a deleted config is gone (3 retries again)
    with pytest.raises(ClientException) as refused:
        client.put_async_invoke_config_with_options(
            "flaky",
            fc_models.PutAsyncInvokeConfigRequest(
                body=fc_models.PutAsyncInvokeConfigInput(max_async_retry_attempts=9)
            ),
            {},
            RuntimeOptions(),
        )
    assert (refused.value.status_code, refused.value.code) == (400, "InvalidArgument")
    client.delete_async_invoke_config_with_options(
        "flaky", fc_models.DeleteAsyncInvokeConfigRequest(), {}, RuntimeOptions()
    )
    with pytest.raises(ClientException) as missing:
        client.get_async_invoke_config_with_options(
            "flaky", fc_models.GetAsyncInvokeConfigRequest(), {}, RuntimeOptions()
        )
    assert (missing.value.status_code, missing.value.code) == (404, "AsyncConfigNotFound")
    assert cloud.admin("GET", "functions")["functions"][0]["asyncRetries"] == 3
