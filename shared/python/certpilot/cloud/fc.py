"""Function Compute 3.0 (API 2023-03-30) adapter: invoke a function, sync or async.

FC 3.0 has no services; `aliyun-fc2` speaks the 2016-08-15 API that Alibaba marks
"not recommended", so certpilot uses `alibabacloud_fc20230330`.
"""

from __future__ import annotations

import json
from typing import Any

from certpilot.cloud._common import TeaAdapter
from certpilot.core.errors import CloudError

SERVICE = "fc"
ACTION = "InvokeFunction"
# Documented: FC refuses an asynchronous payload over 128 KB (400 `EntityTooLarge`).
ASYNC_PAYLOAD_LIMIT = 128 * 1024
# A synchronous invocation answers when the function returns: up to its timeout (FC's
# maximum is 86,400 s; s.yaml sets 600-900 s), not within the read timeout of an API call.
SYNC_WAIT_DEFAULT = 900.0


class FunctionError(CloudError):
    """The function ran and raised (`x-fc-error-type`); the call itself succeeded."""


class PayloadTooLarge(CloudError):
    """The payload exceeds what FC accepts for this kind of invocation; never sent."""


def _read(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    data = body.read()
    return data if isinstance(data, bytes) else str(data).encode("utf-8")


class FcAdapter(TeaAdapter):
    """Function Compute operations certpilot needs. All raise CloudError subclasses."""

    def invoke(
        self,
        function_name: str,
        payload: bytes,
        *,
        asynchronous: bool,
        qualifier: str = "LATEST",
        sync_wait: float = SYNC_WAIT_DEFAULT,
    ) -> bytes | None:
        """Invoke `function_name` with `payload`; its reply bytes, or None when asynchronous.

        A synchronous call waits up to `sync_wait` seconds for the function's reply (the
        API's read timeout would cut a run short and the retry would run it again).

        An asynchronous call may be retried on a 5xx or a dropped connection, and FC
        itself runs a failed asynchronous invocation again (3 retries by default), so
        the function can run several times: certpilot's handlers are idempotent.

        Raises:
            PayloadTooLarge: an asynchronous payload over 128 KB (checked before sending).
            FunctionError: the function raised (synchronous calls).
            CloudError: the call failed (NotFoundError for an unknown function).
        """
        import copy
        import io

        if asynchronous and len(payload) > ASYNC_PAYLOAD_LIMIT:
            raise PayloadTooLarge(
                SERVICE,
                ACTION,
                "EntityTooLarge",
                message=f"an asynchronous payload is at most {ASYNC_PAYLOAD_LIMIT} bytes,"
                f" this one is {len(payload)}: not sent",
            )

        from alibabacloud_fc20230330 import models

        client = self._client()
        runtime = self._runtime()
        if not asynchronous:
            runtime = copy.copy(runtime)
            runtime.read_timeout = int(sync_wait * 1000)
        headers = models.InvokeFunctionHeaders(
            x_fc_invocation_type="Async" if asynchronous else "Sync"
        )

        def call() -> Any:
            request = models.InvokeFunctionRequest(body=io.BytesIO(payload), qualifier=qualifier)
            return client.invoke_function_with_options(function_name, request, headers, runtime)

        response = self._caller.call(ACTION, call)
        response_headers = {k.lower(): v for k, v in (response.headers or {}).items()}
        body = _read(response.body)
        error_type = response_headers.get("x-fc-error-type")
        if error_type:
            message = ""
            try:
                detail = json.loads(body.decode("utf-8") or "{}")
                message = f"{detail.get('errorType', '')}: {detail.get('errorMessage', '')}"
            except (ValueError, UnicodeDecodeError, AttributeError):
                message = "the function failed"
            raise FunctionError(
                SERVICE,
                ACTION,
                error_type,
                response.status_code,
                response_headers.get("x-fc-request-id"),
                message,
            )
        if asynchronous:
            return None
        return body
