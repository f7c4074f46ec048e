"""The run's deadline comes from FC's context: its timeout minus a margin."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from certpilot.jobs.deploy_cert.engine import RUN_MARGIN, run_deadline


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (SimpleNamespace(function=SimpleNamespace(timeout=600)), 1000 + 600 - RUN_MARGIN),
        (SimpleNamespace(function=SimpleNamespace(timeout=20)), 1000 + 20 - 5),  # a quarter
        (SimpleNamespace(function=SimpleNamespace(name="deploy-cert")), None),  # local runs
        (SimpleNamespace(function=SimpleNamespace(timeout=0)), None),
        (SimpleNamespace(function=SimpleNamespace(timeout="600")), None),
        (None, None),
    ],
)
def test_run_deadline_from_the_fc_context(context: Any, expected: float | None) -> None:
    assert run_deadline(context, 1000.0) == expected
