"""check-expiry's run: a sweep turned into the report, stored, and notified about.

`finish(result, deps, ...)` maps the sweep's rows onto the report model
(`report.DomainRow`: location, certificate, issuer, days left, HTTPS forced, HSTS,
backup, findings, repairs), reads the previous report (when `CERTPILOT_REPORT_BUCKET`
is set: its alert state, and its pending repairs, which this run settles: `confirmed`),
notifies about what changed since
(`notify.notify`), then stores this run's report (dated objects and `latest`). Storing
or reading a report that fails is logged and said in the summary; it never hides the
findings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from certpilot.core.errors import CloudError
from certpilot.core.findings import Code, Finding
from certpilot.core.log import event, get_logger
from certpilot.core.model import Location, Route
from certpilot.jobs.check_expiry.notify import NotifyRun, notify
from certpilot.jobs.check_expiry.report import (
    CertInfo,
    DomainRow,
    Forced,
    Hsts,
    Repair,
    RepairKind,
    RepairStatus,
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


def confirmed(previous: Report | None, row: Row) -> tuple[Repair, ...]:
    """The outcome of the previous run's pending rollouts to this domain (pure):
    CONFIRMED when none of the findings it was to fix remain (by its certificate, or by
    another rollout's that covers the domain too and landed meanwhile), FAILED when one
    does; none when the domain was not judged now."""
    return settled_repairs(
        previous, row.domain, row.verdict.judged, row.verdict.codes, row.verdict.cas_id
    )


def settled_repairs(
    previous: Report | None,
    domain: str,
    judged: bool,
    found: Sequence[Code],
    cas_id: int | None,
) -> tuple[Repair, ...]:
    """`confirmed` of a domain given by its facts: judged or not, its finding codes
    now and its certificate's CAS id (pure)."""
    if previous is None or not judged:
        return ()
    before = next((r for r in previous.rows if r.domain == domain), None)
    if before is None:
        return ()
    codes = set(found)
    settled = []
    for repair in before.repairs:
        if (
            repair.kind not in (RepairKind.DEPLOY_INVOKED, RepairKind.FAILED_OVER)
            or repair.status is not RepairStatus.PENDING
        ):
            continue
        landed = cas_id is not None and not codes & set(repair.fixes)
        settled.append(
            replace(
                repair,
                status=RepairStatus.CONFIRMED if landed else RepairStatus.FAILED,
                error_code=None if landed else "not-in-place",
            )
        )
    return tuple(settled)


def domain_row(row: Row, result: SweepResult, previous: Report | None = None) -> DomainRow:
    """The report's row for one swept domain, with the repairs meant for it (and the
    previous run's, settled: `confirmed`)."""
    v = row.verdict
    certificate = (
        CertInfo(v.cas_id, v.certificate, v.issuer, v.not_after)
        if v.cas_id is not None or v.certificate is not None
        else None
    )
    repairs = (
        confirmed(previous, row)
        + tuple(
            Repair(
                kind=r.rollout.kind(row.domain),
                status=r.status,
                cas_id=r.rollout.cas_id,
                fixes=r.rollout.fixes,
                error_code=r.error_code,
            )
            for r in result.repairs
            if row.domain in r.rollout.domains
        )
        + tuple(
            Repair(
                kind=RepairKind.ENFORCEMENT_RESTORED,
                status=r.status,
                fixes=r.fixes,
                error_code=r.error_code,
            )
            for r in result.restored
            if r.domain == row.domain
        )
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
    previous: Report | None = None,
) -> Report:
    """The report of `result` (pure), settling `previous`'s pending repairs."""
    run = RunInfo(
        run_id=run_id,
        started=result.now,
        finished=finished,
        now=result.now,
        account=account,
        scope=result.options.scope,
        report_only=result.options.report_only,
    )
    rows = tuple(domain_row(r, result, previous) for r in result.rows)
    return Report(run, rows, notified=notified)


@dataclass(frozen=True)
class Finished:
    """The report, where it was stored (None: not stored, `store_error` says why when it
    failed), and what the notifier did."""

    report: Report
    stored: StoredReport | None
    notified: NotifyRun
    store_error: str | None = None
    previous_error: str | None = None


def load(deps: Deps, target: ReportTarget | None) -> tuple[Report | None, str | None]:
    """The previous report and, when it could not be read, why (never raises)."""
    if target is None:
        return None, None
    try:
        return load_previous(deps.clients.oss, target.bucket, target.region, target.prefix), None
    except CloudError as error:
        event(_log, "previous report unreadable", level=logging.WARNING, code=error.code)
        return None, error.code
    except ValueError as error:
        event(_log, "previous report unreadable", level=logging.WARNING, error=type(error).__name__)
        return None, "unreadable"


def finish(result: SweepResult, deps: Deps, *, run_id: str, finished: datetime) -> Finished:
    """Notify about what changed since the previous report, then store this one (module
    docstring). Never raises for a report that cannot be read or stored."""
    target = ReportTarget.from_settings(deps.settings)
    previous, previous_error = load(deps, target)
    report = to_report(
        result,
        run_id=run_id,
        finished=finished,
        account=deps.settings.account_id,
        previous=previous,
    )
    return publish(report, result.findings, deps, target, previous, previous_error)


def publish(
    report: Report,
    findings: Sequence[Finding],
    deps: Deps,
    target: ReportTarget | None,
    previous: Report | None,
    previous_error: str | None = None,
) -> Finished:
    """Notify about `findings` (every finding of the run, those about CAS certificates
    included) as changed since `previous`, then store `report` with the notifier's
    record and log it. Never raises for a report that cannot be stored."""
    keys = previous.alert_keys if previous is not None else frozenset()
    not_judged = tuple(row.domain for row in report.rows if not row.judged)
    notified = notify(findings, keys, deps.settings, not_judged=not_judged)
    report = replace(report, notified=notified)
    stored: StoredReport | None = None
    store_error: str | None = None
    if target is not None:
        try:
            stored = store_report(
                deps.clients.oss,
                target.bucket,
                target.region,
                target.prefix,
                report,
                report.run.now,
            )
        except CloudError as error:
            event(_log, "report not stored", level=logging.WARNING, code=error.code)
            store_error = error.code
    event(_log, "check-expiry report", **log_fields(report))
    return Finished(report, stored, notified, store_error, previous_error)
