"""What every end-to-end test of a handler shares: loading a function's `index.py` as
FC loads it, and the context FC hands it (a request id, the account's credentials)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from certpilot.cli.invoke import load_handler

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def fc_handler(directory: str) -> Callable[[bytes, Any], Any]:
    """The entry point of `functions/<directory>/index.py`, loaded from its file as FC
    loads it (once per test process)."""
    loaded: Callable[[bytes, Any], Any] = load_handler(
        REPO / "functions" / directory / "index.py", directory
    )
    return loaded


def fc_context(cloud: Any, function_name: str) -> SimpleNamespace:
    """The context FC hands function `function_name`: a fresh request id and the
    emulator account's credentials."""
    return SimpleNamespace(
        request_id=str(uuid.uuid4()),
        credentials=SimpleNamespace(
            access_key_id=cloud.access_key_id,
            access_key_secret=cloud.access_key_secret,
            security_token=cloud.security_token,
        ),
        function=SimpleNamespace(name=function_name, handler="index.handler"),
        region="cn-hangzhou",
    )


def register_deploy_cert(cloud: Any, name: str = "certpilot-deploy-cert") -> None:
    """Register deploy-cert in the emulator's FC as FC would run it: its handler, the
    layer, the environment that points it at the emulator (credentials come from the
    context, not the environment), no async retries."""
    env = {
        k: v
        for k, v in cloud.certpilot_env().items()
        if not k.startswith("ALIBABA_CLOUD_") and k != "CERTPILOT_ACCOUNT_ID"
    }
    cloud.register_function(
        name,
        REPO / "functions" / "deploy_cert" / "index.py",
        env={**env, "CERTPILOT_VERIFY_DEADLINE": "8", "CERTPILOT_LOG_LEVEL": "WARNING"},
        layers=[REPO / "shared" / "python"],
        async_retries=0,
    )
