"""The finding vocabulary (certpilot.core.findings) that every module reports in."""

from __future__ import annotations

import json

import pytest

from certpilot.core.findings import (
    Code,
    Finding,
    Severity,
    count_by_severity,
    has_errors,
    make_finding,
)

DESIGN_CODES = {
    # code: browser error of DESIGN §6 (None where it names none or says "varies")
    "NO_CERTIFICATE": "ERR_SSL_PROTOCOL_ERROR",
    "WRONG_LOCATION": "ERR_SSL_PROTOCOL_ERROR",
    "CERT_EXPIRED": "NET::ERR_CERT_DATE_INVALID",
    "CERT_NOT_YET_VALID": "NET::ERR_CERT_DATE_INVALID",
    "CERT_EXPIRING": None,
    "NAME_MISMATCH": "NET::ERR_CERT_COMMON_NAME_INVALID",
    "WILDCARD_LEVEL": "NET::ERR_CERT_COMMON_NAME_INVALID",
    "CHAIN_INCOMPLETE": "NET::ERR_CERT_AUTHORITY_INVALID",
    "CHAIN_ORDER": None,
    "UNTRUSTED_ROOT": "NET::ERR_CERT_AUTHORITY_INVALID",
    "KEY_MISMATCH": None,
    "NOT_PEM": None,
    "WEAK_KEY": "NET::ERR_CERT_WEAK_KEY",
    "WEAK_SIGNATURE": "NET::ERR_CERT_WEAK_SIGNATURE_ALGORITHM",
    "HTTP_NOT_FORCED": None,
    "HSTS_MISSING": None,
    "NO_BACKUP": None,
    "SERVED_MISMATCH": None,
}


@pytest.mark.parametrize("name", sorted(DESIGN_CODES))
def test_every_design_code_exists_with_its_browser_error(name: str) -> None:
    code = Code(name)
    assert code.value == name and str(code) == name
    assert code.browser_error == DESIGN_CODES[name]
    assert isinstance(code.severity, Severity) and code.meaning


@pytest.mark.parametrize(
    ("code", "severity"),
    [
        (Code.CERT_EXPIRED, Severity.ERROR),
        (Code.NAME_MISMATCH, Severity.ERROR),
        (Code.CHAIN_INCOMPLETE, Severity.ERROR),
        (Code.CERT_EXPIRING, Severity.WARNING),
        (Code.CHAIN_ORDER, Severity.WARNING),
        (Code.NOT_PEM, Severity.WARNING),
        (Code.NO_BACKUP, Severity.INFO),
    ],
    ids=lambda v: str(v),
)
def test_default_severities(code: Code, severity: Severity) -> None:
    assert make_finding(code, "www.example.com", "x").severity is severity


def test_finding_round_trips_through_json() -> None:
    finding = make_finding(Code.WILDCARD_LEVEL, "a.b.example.com", "one\nlevel   off")
    data = json.loads(json.dumps(finding.to_dict()))
    assert data == {
        "code": "WILDCARD_LEVEL",
        "severity": "error",
        "domain": "a.b.example.com",
        "message": "one level off",
        "browser_error": "NET::ERR_CERT_COMMON_NAME_INVALID",
    }
    assert Finding.from_dict(data) == finding


def test_severity_override_and_counts() -> None:
    findings = [
        make_finding(Code.CERT_EXPIRING, "a.example.com", "soon"),
        make_finding(Code.NO_BACKUP, "a.example.com", "single CA"),
    ]
    assert not has_errors(findings)
    findings.append(make_finding(Code.HSTS_MISSING, "a.example.com", "x", severity=Severity.ERROR))
    assert has_errors(findings)
    assert count_by_severity(findings) == {Severity.ERROR: 1, Severity.WARNING: 1, Severity.INFO: 1}
    assert not has_errors([])


def test_finding_is_frozen() -> None:
    finding = make_finding(Code.NOT_PEM, "a.example.com", "der")
    with pytest.raises(AttributeError):
        finding.code = Code.CERT_EXPIRED  # type: ignore[misc]
