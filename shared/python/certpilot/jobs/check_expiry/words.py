"""The words for people that the Markdown and HTML reports share, rendered from the
report's typed values. Nothing reads these words back."""

from __future__ import annotations

from certpilot.core.findings import Severity
from certpilot.core.log import redact
from certpilot.core.model import Location
from certpilot.jobs.check_expiry.report import (
    CertInfo,
    Forced,
    Hsts,
    Repair,
    RepairKind,
    RepairStatus,
    Report,
)

TITLE = "certpilot check-expiry report"

LOCATION = {Location.OSS: "OSS", Location.CDN: "CDN"}
FORCED = {Forced.YES: "yes", Forced.NO: "no", Forced.UNKNOWN: "unknown"}
HSTS = {Hsts.YES: "yes", Hsts.NO: "no", Hsts.NOT_APPLICABLE: "n.a.", Hsts.UNKNOWN: "unknown"}
REPAIR_KIND = {
    RepairKind.DEPLOY_INVOKED: "deploy-cert invoked to roll out a newer certificate",
    RepairKind.FAILED_OVER: "failed over to the backup certificate",
    RepairKind.ENFORCEMENT_RESTORED: "HTTPS enforcement restored",
}
REPAIR_STATUS = {
    RepairStatus.PENDING: "pending (the next sweep confirms it)",
    RepairStatus.CONFIRMED: "confirmed",
    RepairStatus.FAILED: "failed",
}
SEVERITY = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "info"}
COLUMNS = (
    "domain",
    "location",
    "certificate",
    "issuer",
    "expires",
    "HTTPS forced",
    "HSTS",
    "backup",
    "findings",
    "repairs",
)


def clean(text: str | None, empty: str = "") -> str:
    """`text` with anything that looks like a secret masked (a key pasted into a name or
    a message must not reach a report); `empty` for None or ""."""
    return redact(text) if text else empty


def headline(report: Report) -> str:
    """One sentence: all clear, or what is wrong; never all clear with unjudged domains."""
    counts = report.by_severity
    errors = plural(counts[Severity.ERROR], "error")
    warnings = plural(counts[Severity.WARNING], "warning")
    total = len(report.rows)
    if report.domains_not_judged:
        return (
            f"Not all clear: {report.domains_not_judged} of {plural(total, 'domain')} "
            f"could not be judged; {errors} and {warnings} on the rest."
        )
    if report.all_clear:
        return f"All clear: {plural(total, 'domain')} judged, no errors or warnings."
    return f"{errors} and {warnings} on {plural(total, 'domain')}."


def plural(count: int, noun: str) -> str:
    """`1 domain`, `2 domains`, `0 domains`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def certificate(cert: CertInfo | None) -> str:
    """`CAS <id> <name>`, or `none`."""
    if cert is None:
        return "none"
    parts = [f"CAS {cert.cas_id}" if cert.cas_id is not None else "not in CAS"]
    if cert.name:
        parts.append(clean(cert.name))
    return " ".join(parts)


def expires(days: int | None) -> str:
    """`in 12 days`, `today`, `expired 3 days ago`, `unknown`."""
    if days is None:
        return "unknown"
    if days > 0:
        return f"in {plural(days, 'day')}"
    if days == 0:
        return "today"
    return f"expired {plural(-days, 'day')} ago"


def backup(cas_id: int | None) -> str:
    """`CAS <id>` or `none`."""
    return "none" if cas_id is None else f"CAS {cas_id}"


def repair(item: Repair) -> str:
    """What was done and how it ended, in one line."""
    text = REPAIR_KIND[item.kind]
    if item.cas_id is not None:
        text += f" (CAS {item.cas_id})"
    if item.fixes:
        text += " for " + ", ".join(c.value for c in item.fixes)
    text += ": " + REPAIR_STATUS[item.status]
    if item.error_code:
        text += f" ({clean(item.error_code)})"
    return text
