"""check-expiry's report: a typed, read-only model of one sweep, its JSON form, and where
it is stored.

The model never holds key material: a certificate is its CAS id, name, issuer and
`notAfter`, nothing more; every text is redacted again when rendered. Days left are
computed from `notAfter` and the run's `now` (no clock reads). A domain that could not
be judged carries a `NOT_JUDGED` finding, and a report with any such domain is never
an all-clear.

JSON (`report_to_dict` / `render_json`; stable keys, `schema` changes when they do):

    schema    "certpilot.check-expiry.report/1"
    run       id, function ("check-expiry"), started, finished, now (ISO 8601 UTC, `Z`),
              account, scope (null: the whole account), reportOnly, domains,
              domainsJudged, domainsNotJudged, allClear
    totals    bySeverity {error, warning, info: count}, byCode {CODE: count, codes found
              only, in DESIGN §6 order}, repairs {PENDING/CONFIRMED/FAILED status: count}
    alerts_version, alerts, notification, deliveries
              the notifier's alert state (`notify.NotifyRun.to_dict()`, its keys as it
              names them): `alerts` [{domain, code}], sorted, is what the next run
              compares with. Without a notify run: every error or warning finding,
              `notification` null, `deliveries` []
    domains   one object per domain, sorted by name:
              domain, location ("oss" | "cdn"), bucket,
              certificate {casId, name, issuer, notAfter, expiresInDays} or null,
              httpsForced ("yes" | "no" | "unknown"),
              hsts ("yes" | "no" | "not-applicable" (OSS) | "unknown"),
              backupCasId (a valid certificate from another CA, or null),
              findings [{code, severity, message, browserError, whatToDo}],
              repairs [{kind, status, casId, fixes [codes], requestId, errorCode}]

Objects (`store_report`): `<prefix>/YYYY/MM/DD/<run id>.json|.html|.md` for each run,
then `<prefix>/latest.json|.html|.md`; `load_previous` reads `latest.json` back.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from certpilot.core.findings import Code, Finding, Severity, make_finding
from certpilot.core.log import redact
from certpilot.core.model import Location
from certpilot.core.settings import Settings
from certpilot.jobs.check_expiry.advice import what_to_do
from certpilot.jobs.check_expiry.notify import ALERT_STATE_VERSION, AlertKey, NotifyRun

FUNCTION = "check-expiry"
SCHEMA = "certpilot.check-expiry.report/1"
_DAY = timedelta(days=1)


class Forced(str, enum.Enum):
    """Whether plain HTTP is refused (OSS: the bucket policy's deny; CDN: the 301)."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"  # not read (an error, report-only without the probe, ...)

    def __str__(self) -> str:
        return self.value


class Hsts(str, enum.Enum):
    """Whether the CDN domain sends HSTS; OSS custom domains have no such setting."""

    YES = "yes"
    NO = "no"
    NOT_APPLICABLE = "not-applicable"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


class RepairKind(str, enum.Enum):
    """What the sweep did to a domain."""

    DEPLOY_INVOKED = "deploy-invoked"  # deploy-cert invoked (async) with a newer CAS cert
    FAILED_OVER = "failed-over"  # the primary became unusable: the backup from another CA
    ENFORCEMENT_RESTORED = "enforcement-restored"  # policy statement / redirect / HSTS

    def __str__(self) -> str:
        return self.value


class RepairStatus(str, enum.Enum):
    """How far a repair is known to have got; the next sweep confirms a pending one."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    @property
    def settled(self) -> bool:
        """True once the outcome is known."""
        return self is not RepairStatus.PENDING


@dataclass(frozen=True)
class CertInfo:
    """The certificate a domain has, as the report shows it (never its key)."""

    cas_id: int | None
    name: str | None
    issuer: str | None
    not_after: datetime | None

    def expires_in_days(self, now: datetime) -> int | None:
        """Whole days from `now` to `notAfter`, rounded down (negative once expired);
        None when `notAfter` is unknown."""
        return expires_in_days(self.not_after, now)


@dataclass(frozen=True)
class Repair:
    """One repair of one domain and its outcome so far."""

    kind: RepairKind
    status: RepairStatus
    cas_id: int | None = None  # the certificate rolled out or failed over to
    fixes: tuple[Code, ...] = ()  # the findings it answers
    request_id: str | None = None  # the FC invocation that carries it, if any
    error_code: str | None = None  # for FAILED: the cloud error code, when there was one


@dataclass(frozen=True)
class DomainRow:
    """One domain of the report. An OSS custom domain's HSTS is always `NOT_APPLICABLE`
    (an unset `UNKNOWN` becomes it).

    Raises ValueError when a finding belongs to another domain, or an OSS domain claims
    HSTS yes or no (OSS has no such setting).
    """

    domain: str
    location: Location
    certificate: CertInfo | None = None
    https_forced: Forced = Forced.UNKNOWN
    hsts: Hsts = Hsts.UNKNOWN
    backup_cas_id: int | None = None
    findings: tuple[Finding, ...] = ()
    repairs: tuple[Repair, ...] = ()
    bucket: str | None = None

    def __post_init__(self) -> None:
        if self.location is Location.OSS and self.hsts is not Hsts.NOT_APPLICABLE:
            if self.hsts is not Hsts.UNKNOWN:
                raise ValueError(f"{self.domain}: OSS custom domains have no HSTS setting")
            object.__setattr__(self, "hsts", Hsts.NOT_APPLICABLE)
        strangers = {f.domain for f in self.findings} - {self.domain}
        if strangers:
            raise ValueError(f"{self.domain}: findings of {sorted(strangers)} in its row")

    @property
    def judged(self) -> bool:
        """False when the sweep could not judge this domain (a `NOT_JUDGED` finding)."""
        return all(f.code is not Code.NOT_JUDGED for f in self.findings)

    def expires_in_days(self, now: datetime) -> int | None:
        """Days left on the certificate at `now`; None without one or its `notAfter`."""
        return self.certificate.expires_in_days(now) if self.certificate else None


def not_judged(
    domain: str, location: Location, message: str, *, bucket: str | None = None
) -> DomainRow:
    """The row of a domain the sweep could not judge: everything unknown, `NOT_JUDGED`."""
    finding = make_finding(Code.NOT_JUDGED, domain, message)
    return DomainRow(domain, location, findings=(finding,), bucket=bucket)


@dataclass(frozen=True)
class RunInfo:
    """One sweep: when, where, and how far it was allowed to go."""

    run_id: str
    started: datetime
    finished: datetime
    now: datetime  # the instant every domain was judged at (days left count from it)
    account: str | None = None
    scope: str | None = None  # a bucket or domain pattern; None: the whole account
    report_only: bool = False


@dataclass(frozen=True)
class Alert:
    """An error or warning finding, as the notifier compares runs: domain and code."""

    domain: str
    code: Code


@dataclass(frozen=True)
class Report:
    """What one sweep found and did. Rows are kept sorted by domain.

    `notified`: what the notifier did this run (its alert keys are the ones recorded);
    `recorded_alerts`: the alert keys a stored report recorded (set when read back).
    Without either, the alerts are the error and warning findings.
    """

    run: RunInfo
    rows: tuple[DomainRow, ...] = field(default=())
    notified: NotifyRun | None = None
    recorded_alerts: frozenset[AlertKey] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "rows", tuple(sorted(self.rows, key=lambda r: (r.domain, r.location.value)))
        )

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of every domain."""
        return tuple(f for row in self.rows for f in row.findings)

    @property
    def repairs(self) -> tuple[Repair, ...]:
        """Every repair of every domain."""
        return tuple(r for row in self.rows for r in row.repairs)

    @property
    def domains_judged(self) -> int:
        """How many domains the sweep judged."""
        return sum(1 for row in self.rows if row.judged)

    @property
    def domains_not_judged(self) -> int:
        """How many domains the sweep could not judge."""
        return len(self.rows) - self.domains_judged

    @property
    def by_severity(self) -> dict[Severity, int]:
        """Findings per severity, every severity present (zero or not)."""
        counts = dict.fromkeys(Severity, 0)
        for finding in self.findings:
            counts[finding.severity] += 1
        return counts

    @property
    def by_code(self) -> dict[Code, int]:
        """Findings per code, only codes found, in the order of `Code`."""
        counts = dict.fromkeys(Code, 0)
        for finding in self.findings:
            counts[finding.code] += 1
        return {code: n for code, n in counts.items() if n}

    @property
    def repairs_by_status(self) -> dict[RepairStatus, int]:
        """Repairs per status, every status present."""
        counts = dict.fromkeys(RepairStatus, 0)
        for repair in self.repairs:
            counts[repair.status] += 1
        return counts

    @property
    def problems(self) -> frozenset[AlertKey]:
        """Every (domain, code) with an error or warning finding."""
        return frozenset(
            (f.domain, f.code)
            for f in self.findings
            if f.severity in (Severity.ERROR, Severity.WARNING)
        )

    @property
    def alert_keys(self) -> frozenset[AlertKey]:
        """The alert keys this report records: the notifier's, else those read back,
        else `problems`. The next run's notifier compares with these."""
        if self.notified is not None:
            return self.notified.record
        if self.recorded_alerts is not None:
            return self.recorded_alerts
        return self.problems

    @property
    def alerts(self) -> tuple[Alert, ...]:
        """`alert_keys`, sorted by domain then code."""
        ordered = sorted(self.alert_keys, key=lambda a: (a[0], a[1].value))
        return tuple(Alert(d, c) for d, c in ordered)

    @property
    def all_clear(self) -> bool:
        """True only when every domain was judged and none has an error or warning."""
        return self.domains_not_judged == 0 and not self.problems


def expires_in_days(not_after: datetime | None, now: datetime) -> int | None:
    """Whole days from `now` to `not_after`, rounded down: 0 on the last day, -1 on the
    first day after expiry; None when `not_after` is None."""
    if not_after is None:
        return None
    return math.floor((not_after - now) / _DAY)


# --------------------------------------------------------------------------- JSON


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`; None stays None."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.isoformat().replace("+00:00", "Z")


def _text(value: str | None) -> str | None:
    # Every text leaves through here: a key pasted into a name or a message is masked.
    return None if value is None else redact(value)


def report_to_dict(report: Report) -> dict[str, Any]:
    """The report's JSON form (keys in the module docstring)."""
    run = report.run
    return {
        "schema": SCHEMA,
        "run": {
            "id": _text(run.run_id),
            "function": FUNCTION,
            "started": iso(run.started),
            "finished": iso(run.finished),
            "now": iso(run.now),
            "account": _text(run.account),
            "scope": _text(run.scope),
            "reportOnly": run.report_only,
            "domains": len(report.rows),
            "domainsJudged": report.domains_judged,
            "domainsNotJudged": report.domains_not_judged,
            "allClear": report.all_clear,
        },
        "totals": {
            "bySeverity": {s.value: n for s, n in report.by_severity.items()},
            "byCode": {c.value: n for c, n in report.by_code.items()},
            "repairs": {s.value: n for s, n in report.repairs_by_status.items()},
        },
        **_alert_state(report),
        "domains": [_row(row, run.now) for row in report.rows],
    }


def _alert_state(report: Report) -> dict[str, Any]:
    notified = report.notified.to_dict() if report.notified is not None else {}
    return {
        "alerts_version": ALERT_STATE_VERSION,
        "alerts": [{"domain": _text(a.domain), "code": a.code.value} for a in report.alerts],
        "notification": notified.get("notification"),
        "deliveries": notified.get("deliveries", []),
    }


def _row(row: DomainRow, now: datetime) -> dict[str, Any]:
    cert = row.certificate
    return {
        "domain": _text(row.domain),
        "location": row.location.value,
        "bucket": _text(row.bucket),
        "certificate": None
        if cert is None
        else {
            "casId": cert.cas_id,
            "name": _text(cert.name),
            "issuer": _text(cert.issuer),
            "notAfter": iso(cert.not_after),
            "expiresInDays": cert.expires_in_days(now),
        },
        "httpsForced": row.https_forced.value,
        "hsts": row.hsts.value,
        "backupCasId": row.backup_cas_id,
        "findings": [
            {
                "code": f.code.value,
                "severity": f.severity.value,
                "message": _text(f.message),
                "browserError": f.browser_error,
                "whatToDo": what_to_do(f.code),
            }
            for f in row.findings
        ],
        "repairs": [
            {
                "kind": r.kind.value,
                "status": r.status.value,
                "casId": r.cas_id,
                "fixes": [c.value for c in r.fixes],
                "requestId": _text(r.request_id),
                "errorCode": _text(r.error_code),
            }
            for r in row.repairs
        ],
    }


def render_json(report: Report) -> str:
    """The report as JSON text (indented, keys in a stable order)."""
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False) + "\n"


def report_from_dict(data: Mapping[str, Any]) -> Report:
    """Inverse of `report_to_dict`: the run, the rows and the recorded alert keys (what
    `whatToDo` and the totals say is recomputed; the deliveries are not read back).

    Raises:
        ValueError: not a report of this schema, or a value no enum knows (KeyError and
            TypeError are turned into ValueError too).
    """
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not a report of schema {SCHEMA}")
    try:
        run = data["run"]
        info = RunInfo(
            run_id=str(run["id"]),
            started=_time(run["started"]),
            finished=_time(run["finished"]),
            now=_time(run["now"]),
            account=run.get("account"),
            scope=run.get("scope"),
            report_only=bool(run.get("reportOnly", False)),
        )
        rows = tuple(_row_from(d) for d in data.get("domains", ()))
        recorded = frozenset((str(a["domain"]), Code(a["code"])) for a in data.get("alerts", ()))
        return Report(info, rows, recorded_alerts=recorded)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"malformed report: {error!r}") from None


def _time(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _row_from(data: Mapping[str, Any]) -> DomainRow:
    cert = data.get("certificate")
    domain = str(data["domain"])
    return DomainRow(
        domain=domain,
        location=Location(data["location"]),
        bucket=data.get("bucket"),
        certificate=None
        if cert is None
        else CertInfo(
            cas_id=cert.get("casId"),
            name=cert.get("name"),
            issuer=cert.get("issuer"),
            not_after=None if cert.get("notAfter") is None else _time(cert["notAfter"]),
        ),
        https_forced=Forced(data.get("httpsForced", Forced.UNKNOWN.value)),
        hsts=Hsts(data.get("hsts", Hsts.UNKNOWN.value)),
        backup_cas_id=data.get("backupCasId"),
        findings=tuple(
            Finding(
                code=Code(f["code"]),
                severity=Severity(f["severity"]),
                domain=domain,
                message=str(f.get("message", "")),
                browser_error=f.get("browserError"),
            )
            for f in data.get("findings", ())
        ),
        repairs=tuple(
            Repair(
                kind=RepairKind(r["kind"]),
                status=RepairStatus(r["status"]),
                cas_id=r.get("casId"),
                fixes=tuple(Code(c) for c in r.get("fixes", ())),
                request_id=r.get("requestId"),
                error_code=r.get("errorCode"),
            )
            for r in data.get("repairs", ())
        ),
    )


def log_fields(report: Report) -> dict[str, Any]:
    """The report in a few fields, for the function's structured log line."""
    return {
        "runId": report.run.run_id,
        "domains": len(report.rows),
        "domainsJudged": report.domains_judged,
        "domainsNotJudged": report.domains_not_judged,
        "allClear": report.all_clear,
        "bySeverity": {s.value: n for s, n in report.by_severity.items()},
        "byCode": {c.value: n for c, n in report.by_code.items()},
        "repairs": {s.value: n for s, n in report.repairs_by_status.items()},
    }


# --------------------------------------------------------------------------- storage


class ObjectStore(Protocol):
    """What storing a report needs of OSS (`certpilot.cloud.oss.OssAdapter` has it)."""

    def put_object(
        self, bucket: str, region: str, key: str, body: bytes, content_type: str
    ) -> None:
        """Write one object."""

    def get_object(self, bucket: str, region: str, key: str) -> bytes | None:
        """Read one object; None when there is no such key."""


@dataclass(frozen=True)
class ReportTarget:
    """Where reports go: bucket, its region, key prefix (no leading/trailing slash)."""

    bucket: str
    region: str
    prefix: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportTarget | None:
        """The target `CERTPILOT_REPORT_*` name; None when no report bucket is set."""
        if settings.report_bucket is None:
            return None
        return cls(
            bucket=settings.report_bucket,
            region=settings.report_region or settings.region,
            prefix=settings.report_prefix.strip("/"),
        )


@dataclass(frozen=True)
class StoredReport:
    """The keys one `store_report` wrote, dated objects first."""

    keys: tuple[str, ...]


JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
MARKDOWN_TYPE = "text/markdown; charset=utf-8"
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def run_key(prefix: str, run_id: str, now: datetime) -> str:
    """`<prefix>/YYYY/MM/DD/<run id>` (no extension), dated in UTC; characters of the
    run id that do not belong in a key become `-`."""
    day = now.astimezone(timezone.utc) if now.tzinfo else now
    safe = _UNSAFE_KEY_CHARS.sub("-", run_id).strip("-.") or "run"
    return "/".join(p for p in (prefix.strip("/"), day.strftime("%Y/%m/%d"), safe) if p)


def store_report(
    oss: ObjectStore, bucket: str, region: str, prefix: str, report: Report, now: datetime
) -> StoredReport:
    """Write the report as JSON, HTML and Markdown: this run's dated objects first,
    then the `latest` ones (so `latest` never names a run whose objects are missing).

    Raises:
        CloudError: a write failed (what was written before it stays).
    """
    # The renderers import this module's model; importing them at the top would be a cycle.
    from certpilot.jobs.check_expiry.render_html import render_html
    from certpilot.jobs.check_expiry.render_markdown import render_markdown

    bodies = (
        (".json", render_json(report), JSON_TYPE),
        (".html", render_html(report), HTML_TYPE),
        (".md", render_markdown(report), MARKDOWN_TYPE),
    )
    base = run_key(prefix, report.run.run_id, now)
    latest = "/".join(p for p in (prefix.strip("/"), "latest") if p)
    written: list[str] = []
    for stem in (base, latest):
        for suffix, text, content_type in bodies:
            key = stem + suffix
            oss.put_object(bucket, region, key, text.encode("utf-8"), content_type)
            written.append(key)
    return StoredReport(tuple(written))


def load_previous(oss: ObjectStore, bucket: str, region: str, prefix: str) -> Report | None:
    """The last stored report (`<prefix>/latest.json`), or None when there is none.

    Raises:
        CloudError: the read failed (a missing bucket included).
        ValueError: the object is not a report this version can read.
    """
    key = "/".join(p for p in (prefix.strip("/"), "latest.json") if p)
    body = oss.get_object(bucket, region, key)
    if body is None:
        return None
    return report_from_dict(json.loads(body.decode("utf-8")))


def row_to_dict(row: DomainRow, now: datetime) -> dict[str, Any]:
    """One row in the report's JSON form (as under `domains`)."""
    return _row(row, now)


def row_from_dict(data: Mapping[str, Any]) -> DomainRow:
    """Inverse of `row_to_dict`. Raises ValueError, KeyError or TypeError for what is
    not a row."""
    return _row_from(data)
