"""One error tree: every error certpilot raises on purpose is a CertpilotError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from certpilot.certs import CertificateError, EmptyInput, load_bundle
from certpilot.core.errors import CertpilotError
from certpilot.core.names import InvalidHostname, normalize_hostname

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("error", [CertificateError, InvalidHostname])
def test_input_errors_are_in_the_tree_and_still_value_errors(error: type[Exception]) -> None:
    assert issubclass(error, CertpilotError)
    assert issubclass(error, ValueError)


def test_raised_input_errors_are_caught_as_certpilot_errors() -> None:
    # given bad certificate input and a bad hostname
    # when each is used, then one `except CertpilotError` catches both
    with pytest.raises(CertpilotError) as hostname:
        normalize_hostname("not a host")
    assert isinstance(hostname.value, InvalidHostname)
    with pytest.raises(CertpilotError) as certificate:
        load_bundle(b"   ")
    assert isinstance(certificate.value, EmptyInput)


def test_importing_names_stays_light() -> None:
    # given a fresh interpreter, when `certpilot.core.names` is imported, then neither the
    # logging module of certpilot nor any heavy library comes with it
    code = (
        "import sys; import certpilot.core.names\n"
        "print(sorted(m for m in sys.modules if m.startswith("
        "('certpilot.', 'cryptography', 'idna', 'alibabacloud', 'Tea'))))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(REPO / "shared" / "python")},
        capture_output=True,
        text=True,
        check=True,
    )
    expected = "['certpilot.core', 'certpilot.core.errors', 'certpilot.core.names']"
    assert run.stdout.strip() == expected
