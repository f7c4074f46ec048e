"""check-expiry's run: a sweep turned into the report, stored, and notified about.

`finish(result, deps, ...)` maps the sweep's rows onto the report model
(`report.DomainRow`: location, certificate, issuer, days left, HTTPS forced, HSTS,
backup, findings, repairs), reads the previous report's alert state (when
`CERTPILOT_REPORT_BUCKET` is set), notifies about what changed since
(`notify.notify`), then stores this run's report (dated objects and `latest`). Storing
or reading a report that fails is logged and said in the summary; it never hides the
findings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from certpilot.core.errors import CloudError
from certpilot.core.log import event, get_logger
from certpilot.core.model import Location, Route
from certpilot.jobs.check_expiry.notify import AlertKey, NotifyRun, notify
from certpilot.jobs.check_expiry.report import (
    CertInfo,
    DomainRow,
    Forced,
    Hsts,
    Repair,
    RepairKind,
    Report,
    ReportTarget,
    RunInfo,
    StoredReport,
    load_previous,
    log_fields,
    store_report,
)

if TYPE_CHECKING:
    from certpilot.jobs.check_expiry.sweep import Row, SweepResult
    from certpilot.jobs.deploy_cert.engine import Deps

_log = get_logger(__name__)


def _forced(value: bool | None) -> Forced:
    return Forced.UNKNOWN if value is None else (Forced.YES if value else Forced.NO)


def _hsts(row: Row) -> Hsts:
    if row.location is not Route.CDN:
        return Hsts.NOT_APPLICABLE
    value = row.verdict.hsts
    return Hsts.UNKNOWN if value is None else (Hsts.YES if value else Hsts.NO)


def domain_row(row: Row, result: SweepResult) -> DomainRow:
    """The report's row for one swept domain, with the repairs meant for it."""
    v = row.verdict
    certificate = (
        CertInfo(v.cas_id, v.certificate, v.issuer, v.not_after)
        if v.cas_id is not None or v.certificate is not None
        else None
    )
    repairs = tuple(
        Repair(
            kind=RepairKind.DEPLOY_INVOKED,
            status=r.status,
            cas_id=r.rollout.cas_id,
            fixes=r.rollout.fixes,
            error_code=r.error_code,
        )
        for r in result.repairs
        if row.domain in r.rollout.domains
    )
    return DomainRow(
        domain=row.domain,
        location=Location(row.location.value),
        certificate=certificate,
        https_forced=_forced(v.https_forced),
        hsts=_hsts(row),
        backup_cas_id=v.backup,
        findings=v.findings,
        repairs=repairs,
        bucket=row.bucket,
    )


def to_report(
    result: SweepResult,
    *,
    run_id: str,
    finished: datetime,
    account: str | None = None,
    notified: NotifyRun | None = None,
) -> Report:
    """The report of `result` (pure)."""
    run = RunInfo(
        run_id=run_id,
        started=result.now,
        finished=finished,
        now=result.now,
        account=account,
        scope=result.options.scope,
        report_only=result.options.report_only,
    )
    return Report(run, tuple(domain_row(r, result) for r in result.rows), notified=notified)


@dataclass(frozen=True)
class Finished:
    """The report, where it was stored (None: not stored, `store_error` says why when it
    failed), and what the notifier did."""

    report: Report
    stored: StoredReport | None
    notified: NotifyRun
    store_error: str | None = None
    previous_error: str | None = None


def _previous_keys(
    deps: Deps, target: ReportTarget | None
) -> tuple[frozenset[AlertKey], str | None]:
    if target is None:
        return frozenset(), None
    try:
        previous = load_previous(deps.clients.oss, target.bucket, target.region, target.prefix)
    except CloudError as error:
        event(_log, "previous report unreadable", level=logging.WARNING, code=error.code)
        return frozenset(), error.code
    except ValueError as error:
        event(_log, "previous report unreadable", level=logging.WARNING, error=type(error).__name__)
        return frozenset(), "unreadable"
    return (previous.alert_keys if previous is not None else frozenset()), None


def finish(result: SweepResult, deps: Deps, *, run_id: str, finished: datetime) -> Finished:
    """Notify about what changed since the previous report, then store this one (module
    docstring). Never raises for a report that cannot be read or stored."""
    settings = deps.settings
    target = ReportTarget.from_settings(settings)
    previous, previous_error = _previous_keys(deps, target)
    notified = notify(result.findings, previous, settings, not_judged=result.not_judged)
    report = to_report(
        result, run_id=run_id, finished=finished, account=settings.account_id, notified=notified
    )
    stored: StoredReport | None = None
    store_error: str | None = None
    if target is not None:
        try:
            stored = store_report(
                deps.clients.oss, target.bucket, target.region, target.prefix, report, result.now
            )
        except CloudError as error:
            event(_log, "report not stored", level=logging.WARNING, code=error.code)
            store_error = error.code
    event(_log, "check-expiry report", **log_fields(report))
    return Finished(report, stored, notified, store_error, previous_error)
