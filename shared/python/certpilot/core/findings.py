"""The finding vocabulary of the whole project (DESIGN §6).

A finding is one problem with one domain: a stable code that users alert on, a
severity, a one-line message and, where a visitor would see one, the browser error.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone


class Severity(str, enum.Enum):
    """How bad a finding is: `error` breaks HTTPS (or a deploy), `warning` needs
    attention, `info` is worth knowing."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    def __str__(self) -> str:
        return self.value


class Code(str, enum.Enum):
    """Stable finding codes. The values never change: users alert on them."""

    NO_CERTIFICATE = "NO_CERTIFICATE"
    WRONG_LOCATION = "WRONG_LOCATION"
    CERT_EXPIRED = "CERT_EXPIRED"
    CERT_NOT_YET_VALID = "CERT_NOT_YET_VALID"
    CERT_EXPIRING = "CERT_EXPIRING"
    NAME_MISMATCH = "NAME_MISMATCH"
    WILDCARD_LEVEL = "WILDCARD_LEVEL"
    CHAIN_INCOMPLETE = "CHAIN_INCOMPLETE"
    CHAIN_ORDER = "CHAIN_ORDER"
    UNTRUSTED_ROOT = "UNTRUSTED_ROOT"
    KEY_MISMATCH = "KEY_MISMATCH"
    NOT_PEM = "NOT_PEM"
    WEAK_KEY = "WEAK_KEY"
    WEAK_SIGNATURE = "WEAK_SIGNATURE"
    HTTP_NOT_FORCED = "HTTP_NOT_FORCED"
    HSTS_MISSING = "HSTS_MISSING"
    NO_BACKUP = "NO_BACKUP"
    SERVED_MISMATCH = "SERVED_MISMATCH"
    # Not in DESIGN §6: CAS reports revoked certificates and §5 fails over on them;
    # `certpilot.jobs.deploy_cert.plan` refuses them under this code.
    CERT_REVOKED = "CERT_REVOKED"
    # enforce-https and the sweep (DESIGN §6).
    FALLBACK_ACTIVE = "FALLBACK_ACTIVE"
    ENFORCEMENT_BLOCKED = "ENFORCEMENT_BLOCKED"
    POLICY_UNMERGEABLE = "POLICY_UNMERGEABLE"
    NOT_JUDGED = "NOT_JUDGED"

    def __str__(self) -> str:
        return self.value

    @property
    def severity(self) -> Severity:
        """The default severity of this code."""
        return _CODE_INFO[self].severity

    @property
    def browser_error(self) -> str | None:
        """The error a browser shows a visitor, or None when there is none."""
        return _CODE_INFO[self].browser_error

    @property
    def meaning(self) -> str:
        """One line saying what the code means."""
        return _CODE_INFO[self].meaning


@dataclass(frozen=True)
class _CodeInfo:
    severity: Severity
    browser_error: str | None
    meaning: str


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO
_PROTOCOL = "ERR_SSL_PROTOCOL_ERROR"
_DATE = "NET::ERR_CERT_DATE_INVALID"
_NAME = "NET::ERR_CERT_COMMON_NAME_INVALID"
_AUTHORITY = "NET::ERR_CERT_AUTHORITY_INVALID"

# Severity choices that §6 leaves open:
# - CHAIN_ORDER and NOT_PEM are warnings: the certificate itself is sound and certpilot
#   can repair both (reorder, convert), though uploading the file as given would fail.
# - WEAK_KEY / WEAK_SIGNATURE are errors: Chrome rejects RSA < 2048 and SHA-1 outright;
#   §6 says "varies", we name Chrome's error.
# - NO_BACKUP is info: nothing is broken, only the failover plan is missing.
_CODE_INFO: Mapping[Code, _CodeInfo] = {
    Code.NO_CERTIFICATE: _CodeInfo(_E, _PROTOCOL, "HTTPS not configured where the traffic goes"),
    Code.WRONG_LOCATION: _CodeInfo(
        _E, _PROTOCOL, "certificate on OSS but traffic goes through CDN"
    ),
    Code.CERT_EXPIRED: _CodeInfo(_E, _DATE, "past notAfter"),
    Code.CERT_NOT_YET_VALID: _CodeInfo(_E, _DATE, "before notBefore"),
    Code.CERT_EXPIRING: _CodeInfo(_W, None, "inside the renewal window"),
    Code.NAME_MISMATCH: _CodeInfo(_E, _NAME, "domain not covered by the SANs"),
    Code.WILDCARD_LEVEL: _CodeInfo(_E, _NAME, "a wildcard one level off"),
    Code.CHAIN_INCOMPLETE: _CodeInfo(_E, _AUTHORITY, "intermediate missing"),
    Code.CHAIN_ORDER: _CodeInfo(_W, None, "chain not leaf-first"),
    Code.UNTRUSTED_ROOT: _CodeInfo(_E, _AUTHORITY, "chain ends at an unknown CA"),
    Code.KEY_MISMATCH: _CodeInfo(_E, None, "private key is not the certificate's"),
    Code.NOT_PEM: _CodeInfo(_W, None, "DER / PKCS#7 / PKCS#12 given; convertible"),
    Code.WEAK_KEY: _CodeInfo(_E, "NET::ERR_CERT_WEAK_KEY", "RSA < 2048 or EC < 256 bits"),
    Code.WEAK_SIGNATURE: _CodeInfo(
        _E, "NET::ERR_CERT_WEAK_SIGNATURE_ALGORITHM", "signed with SHA-1 or MD5"
    ),
    Code.HTTP_NOT_FORCED: _CodeInfo(_W, None, "plain HTTP still served"),
    Code.HSTS_MISSING: _CodeInfo(_W, None, "CDN domain without HSTS"),
    Code.NO_BACKUP: _CodeInfo(_I, None, "no valid certificate from a second CA"),
    Code.SERVED_MISMATCH: _CodeInfo(
        _E, None, "the edge serves another certificate than configured"
    ),
    Code.CERT_REVOKED: _CodeInfo(_E, "NET::ERR_CERT_REVOKED", "revoked by its CA"),
    Code.FALLBACK_ACTIVE: _CodeInfo(
        _W, None, "an emergency HTTP fallback is in force, until the time it names"
    ),
    Code.ENFORCEMENT_BLOCKED: _CodeInfo(
        _W,
        None,
        "HTTPS not forced because a domain or CDN origin of the bucket still needs HTTP",
    ),
    Code.POLICY_UNMERGEABLE: _CodeInfo(
        _E, None, "the bucket policy cannot take our statement: left as it was"
    ),
    Code.NOT_JUDGED: _CodeInfo(_W, None, "could not be judged (errors, time): never an all-clear"),
}

if set(_CODE_INFO) != set(Code):  # pragma: no cover - guards edits of the table above
    raise RuntimeError("every finding code needs a severity and a browser error")


@dataclass(frozen=True)
class Finding:
    """One problem with one domain."""

    code: Code
    severity: Severity
    domain: str
    message: str
    browser_error: str | None = None
    # SERVED_MISMATCH: the SHA-256 (upper hex) of the configured certificate (None when
    # only the service's own fingerprint is known) and of the one the edge serves.
    configured: str | None = None
    served: str | None = None
    # FALLBACK_ACTIVE: when the emergency HTTP fallback ends (UTC).
    until: datetime | None = None

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready form: code, severity, domain, message, browser_error, and
        `configured` / `served` / `until` (ISO 8601 UTC) when the finding carries them."""
        data = {
            "code": self.code.value,
            "severity": self.severity.value,
            "domain": self.domain,
            "message": self.message,
            "browser_error": self.browser_error,
        }
        if self.code is Code.SERVED_MISMATCH or self.configured or self.served:
            data.update(configured=self.configured, served=self.served)
        if self.until is not None:
            data["until"] = _iso(self.until)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Finding:
        """Inverse of `to_dict`. Raises ValueError/KeyError for an unknown code or severity."""
        code = Code(str(data["code"]))
        severity = Severity(str(data.get("severity", code.severity.value)))
        browser = data.get("browser_error", code.browser_error)
        return cls(
            code=code,
            severity=severity,
            domain=str(data["domain"]),
            message=str(data.get("message", "")),
            browser_error=None if browser is None else str(browser),
            configured=_text_or_none(data.get("configured")),
            served=_text_or_none(data.get("served")),
            until=_instant_or_none(data.get("until")),
        )


def _iso(instant: datetime) -> str:
    aware = instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant_or_none(value: object) -> datetime | None:
    if value is None:
        return None
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def make_finding(
    code: Code,
    domain: str,
    message: str,
    *,
    severity: Severity | None = None,
    configured: str | None = None,
    served: str | None = None,
    until: datetime | None = None,
) -> Finding:
    """Build a finding with the code's default severity and browser error.

    The message is collapsed to one line. `severity` overrides the default; use it
    sparingly, since users alert on code plus severity.
    """
    return Finding(
        code=code,
        severity=severity if severity is not None else code.severity,
        domain=domain,
        message=" ".join(message.split()),
        browser_error=code.browser_error,
        configured=configured,
        served=served,
        until=until,
    )


def has_errors(findings: Iterable[Finding]) -> bool:
    """True when any finding has severity `error`."""
    return any(f.severity is Severity.ERROR for f in findings)


def count_by_severity(findings: Iterable[Finding]) -> dict[Severity, int]:
    """How many findings of each severity (every severity present, zero or not)."""
    counts = dict.fromkeys(Severity, 0)
    for finding in findings:
        counts[finding.severity] += 1
    return counts
