"""Cold starts: loading a handler (deploy-cert, enforce-https) imports no cloud SDK.

FC bills the import time of every cold start; the SDKs (and their HTTP stacks) are
imported inside the adapter methods that use them, so a rejected event never pays
for them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("alibabacloud", "darabonba", "Tea", "aiohttp", "requests", "cryptography")
LOADED = """
import importlib.util, sys
import certpilot.jobs.deploy_cert.engine, certpilot.events
spec = importlib.util.spec_from_file_location("index", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.handler)
heavy = tuple(sys.argv[2:])
print(sorted({m.split(".")[0] for m in sys.modules if m.startswith(heavy)}))
"""


@pytest.mark.parametrize("function", ["deploy_cert", "enforce_https"])
def test_loading_the_handler_imports_no_sdk(function: str) -> None:
    # given a fresh interpreter with only the layer on its path, as FC starts one
    handler = REPO / "functions" / function / "index.py"
    # when the engine, the event parser and the handler module are loaded
    done = subprocess.run(
        [sys.executable, "-c", LOADED, str(handler), *HEAVY],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "shared" / "python")},
    )
    # then none of the SDKs or their HTTP stacks is in memory yet
    assert done.stdout.strip() == "[]", done.stdout
