"""Cold starts: loading a handler imports no cloud SDK, no `cryptography`, no other job.

FC bills the import time of every cold start; the SDKs (and their HTTP stacks) are
imported inside the adapter methods that use them, so a rejected event never pays
for them, and `cryptography` only where a certificate is parsed. A handler loads its
own job (and deploy-cert's engine, which enforce-https and check-expiry drive), never
the modules of a job it does not run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("alibabacloud", "darabonba", "Tea", "aiohttp", "requests", "cryptography")
LOADED = """
import importlib.util, json, sys
import certpilot.jobs.deploy_cert.engine, certpilot.events
spec = importlib.util.spec_from_file_location("index", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.handler)
print(json.dumps(sorted(sys.modules)))
"""
JOBS = ("deploy_cert", "enforce_https", "check_expiry")
# What each handler's module may load besides its own job.
ALSO = {"deploy_cert": (), "enforce_https": ("deploy_cert",), "check_expiry": ("deploy_cert",)}


def _loaded(function: str) -> list[str]:
    """The modules in memory once a fresh interpreter has loaded the handler."""
    handler = REPO / "functions" / function / "index.py"
    done = subprocess.run(
        [sys.executable, "-c", LOADED, str(handler)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "shared" / "python")},
    )
    modules: list[str] = json.loads(done.stdout)
    return modules


@pytest.mark.parametrize("function", JOBS)
def test_loading_the_handler_imports_no_sdk(function: str) -> None:
    # given a fresh interpreter with only the layer on its path, as FC starts one
    # when the engine, the event parser and the handler module are loaded
    modules = _loaded(function)
    # then none of the SDKs, their HTTP stacks or cryptography is in memory yet
    assert sorted({m.split(".")[0] for m in modules if m.startswith(HEAVY)}) == []


@pytest.mark.parametrize("function", JOBS)
def test_loading_the_handler_imports_no_other_job(function: str) -> None:
    # given a fresh interpreter with only the layer on its path
    # when the handler module is loaded
    modules = _loaded(function)
    # then only its own job's modules (and the jobs it drives) are in memory
    jobs = {m.split(".")[2] for m in modules if m.startswith("certpilot.jobs.")}
    assert jobs == {function, *ALSO[function]}
