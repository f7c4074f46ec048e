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
