"""check-expiry's report: the typed model (days left, totals, alerts, never an all-clear
with unjudged domains), advice for every code, and the JSON, Markdown and HTML
renderers (stable keys, escaping, no external assets, no key material)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest

from certpilot.core.errors import ConfigError
from certpilot.core.findings import Code, Severity, make_finding
from certpilot.core.model import Location
from certpilot.core.settings import Settings
from certpilot.jobs.check_expiry import report as rp
from certpilot.jobs.check_expiry.advice import WHAT_TO_DO, what_to_do
from certpilot.jobs.check_expiry.notify import NotifyRun, previous_alert_keys
from certpilot.jobs.check_expiry.render_html import render_html
from certpilot.jobs.check_expiry.render_markdown import render_markdown
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
)

NOW = datetime(2030, 1, 1, 6, 0, tzinfo=timezone.utc)
HOSTILE = "<script>alert(1)</script>"


def run(**changes: object) -> RunInfo:
    base = RunInfo(
        run_id="20300101T060000Z-req-1",
        started=NOW,
        finished=NOW + timedelta(seconds=42),
        now=NOW,
        account="1234567890",
        scope=None,
        report_only=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def cert(days: float, cas_id: int = 101, name: str = "wild-one") -> CertInfo:
    return CertInfo(cas_id, name, "Example CA One", NOW + timedelta(days=days))


def healthy(domain: str = "www.example.com", location: Location = Location.OSS) -> DomainRow:
    return DomainRow(
        domain,
        location,
        certificate=cert(80),
        https_forced=Forced.YES,
        hsts=Hsts.NOT_APPLICABLE if location is Location.OSS else Hsts.YES,
        backup_cas_id=202,
        bucket="site-hz",
    )


def expiring_cdn() -> DomainRow:
    domain = "cdn.example.com"
    return DomainRow(
        domain,
        Location.CDN,
        certificate=cert(10, cas_id=103, name="cdn-old"),
        https_forced=Forced.NO,
        hsts=Hsts.NO,
        findings=(
            make_finding(Code.CERT_EXPIRING, domain, "expires in 10 days"),
            make_finding(Code.HTTP_NOT_FORCED, domain, "plain HTTP answers 200"),
            make_finding(Code.HSTS_MISSING, domain, "no HSTS header"),
            make_finding(Code.NO_BACKUP, domain, "no second CA"),
        ),
        repairs=(
            Repair(
                RepairKind.DEPLOY_INVOKED,
                RepairStatus.PENDING,
                cas_id=104,
                fixes=(Code.CERT_EXPIRING,),
                request_id="fc-req-9",
            ),
        ),
        bucket="site-hz",
    )


def expired_oss() -> DomainRow:
    domain = "old.example.com"
    return DomainRow(
        domain,
        Location.OSS,
        certificate=cert(-3, cas_id=105, name="old"),
        https_forced=Forced.UNKNOWN,
        hsts=Hsts.NOT_APPLICABLE,
        findings=(make_finding(Code.CERT_EXPIRED, domain, "expired 3 days ago"),),
        repairs=(
            Repair(
                RepairKind.FAILED_OVER,
                RepairStatus.FAILED,
                cas_id=106,
                fixes=(Code.CERT_EXPIRED,),
                error_code="ServiceBusy",
            ),
        ),
    )


def full_report(**changes: object) -> Report:
    rows = (expired_oss(), healthy(), expiring_cdn(), healthy("img.example.com", Location.CDN))
    return Report(run(**changes), rows)


# --------------------------------------------------------------------------- model


@pytest.mark.parametrize(
    ("delta", "days"),
    [
        (timedelta(days=30), 30),
        (timedelta(days=29, hours=23), 29),
        (timedelta(hours=1), 0),
        (timedelta(0), 0),
        (timedelta(seconds=-1), -1),
        (timedelta(days=-3), -3),
    ],
)
def test_days_left_count_whole_days_from_the_runs_now(delta: timedelta, days: int) -> None:
    assert rp.expires_in_days(NOW + delta, NOW) == days
    assert CertInfo(1, "n", "i", NOW + delta).expires_in_days(NOW) == days


def test_days_left_are_unknown_without_not_after_or_certificate() -> None:
    assert rp.expires_in_days(None, NOW) is None
    assert (
        DomainRow("a.example.com", Location.OSS, hsts=Hsts.NOT_APPLICABLE).expires_in_days(NOW)
        is None
    )


def test_totals_by_severity_and_by_code() -> None:
    report = full_report()

    assert report.by_severity == {Severity.ERROR: 1, Severity.WARNING: 3, Severity.INFO: 1}
    assert report.by_code == {
        Code.CERT_EXPIRED: 1,
        Code.CERT_EXPIRING: 1,
        Code.HTTP_NOT_FORCED: 1,
        Code.HSTS_MISSING: 1,
        Code.NO_BACKUP: 1,
    }
    assert list(report.by_code) == [c for c in Code if c in report.by_code]
    assert report.repairs_by_status == {
        RepairStatus.PENDING: 1,
        RepairStatus.CONFIRMED: 0,
        RepairStatus.FAILED: 1,
    }


def test_alerts_are_error_and_warning_findings_once_each_sorted() -> None:
    report = full_report()

    assert [(a.domain, a.code) for a in report.alerts] == [
        ("cdn.example.com", Code.CERT_EXPIRING),
        ("cdn.example.com", Code.HSTS_MISSING),
        ("cdn.example.com", Code.HTTP_NOT_FORCED),
        ("old.example.com", Code.CERT_EXPIRED),
    ]
    assert not report.all_clear


def test_rows_are_sorted_by_domain() -> None:
    assert [r.domain for r in full_report().rows] == [
        "cdn.example.com",
        "img.example.com",
        "old.example.com",
        "www.example.com",
    ]


def test_info_findings_alone_are_all_clear() -> None:
    domain = "www.example.com"
    row = dataclasses.replace(
        healthy(), findings=(make_finding(Code.NO_BACKUP, domain, "no second CA"),)
    )
    report = Report(run(), (row,))

    assert report.all_clear and report.alerts == ()
    assert "All clear" in render_markdown(report) and "All clear" in render_html(report)


def test_an_unjudged_domain_is_never_an_all_clear() -> None:
    # given every judged domain healthy, and one domain the sweep could not judge
    unjudged = rp.not_judged("late.example.com", Location.CDN, "out of time")
    report = Report(run(), (healthy(), unjudged))

    # then the model, the JSON and the human reports all say so
    assert not unjudged.judged and unjudged.findings[0].code is Code.NOT_JUDGED
    assert (report.domains_judged, report.domains_not_judged) == (1, 1)
    assert not report.all_clear
    data = rp.report_to_dict(report)
    assert data["run"]["allClear"] is False and data["run"]["domainsNotJudged"] == 1
    for text in (render_markdown(report), render_html(report)):
        assert "All clear" not in text and "all clear" in text.lower()
        assert "could not be judged" in text


def test_a_report_with_only_unjudged_domains_of_info_severity_is_not_all_clear() -> None:
    # even were NOT_JUDGED demoted to info, the unjudged count alone blocks an all-clear
    domain = "late.example.com"
    row = DomainRow(
        domain,
        Location.OSS,
        hsts=Hsts.NOT_APPLICABLE,
        findings=(make_finding(Code.NOT_JUDGED, domain, "error", severity=Severity.INFO),),
    )
    assert not Report(run(), (row,)).all_clear


def test_an_oss_domain_has_no_hsts_and_a_row_holds_only_its_own_findings() -> None:
    with pytest.raises(ValueError, match="HSTS"):
        DomainRow("a.example.com", Location.OSS, hsts=Hsts.YES)
    with pytest.raises(ValueError, match="findings of"):
        DomainRow(
            "a.example.com",
            Location.CDN,
            findings=(make_finding(Code.NO_BACKUP, "b.example.com", "x"),),
        )
    assert rp.not_judged("a.example.com", Location.OSS, "x").hsts is Hsts.NOT_APPLICABLE
    assert DomainRow("a.example.com", Location.OSS).hsts is Hsts.NOT_APPLICABLE
    assert DomainRow("a.example.com", Location.CDN).hsts is Hsts.UNKNOWN


def test_the_model_has_no_field_for_key_material() -> None:
    classes = (RunInfo, Report, DomainRow, CertInfo, Repair, rp.Alert)
    names = {f.name for cls in classes for f in dataclasses.fields(cls)}
    assert not {n for n in names if re.search(r"key|pem|secret|private|token", n)}


# --------------------------------------------------------------------------- advice


def test_every_code_has_advice_without_links() -> None:
    for code in Code:
        advice = what_to_do(code)
        assert len(advice) > 20, code
        assert "://" not in advice, code
    assert set(WHAT_TO_DO) == set(Code)


def test_advice_follows_the_guides_faq() -> None:
    assert "CDN console" in what_to_do(Code.WRONG_LOCATION)
    assert "intermediate" in what_to_do(Code.CHAIN_INCOMPLETE)
    assert "PEM" in what_to_do(Code.NOT_PEM)
    assert "30 days" in what_to_do(Code.CERT_EXPIRING)
    assert "SecureTransport" in what_to_do(Code.HTTP_NOT_FORCED)


# --------------------------------------------------------------------------- JSON


def test_json_keys_are_stable() -> None:
    data = json.loads(rp.render_json(full_report()))

    assert list(data) == [
        "schema",
        "run",
        "totals",
        "alerts_version",
        "alerts",
        "notification",
        "deliveries",
        "domains",
    ]
    assert (data["alerts_version"], data["notification"], data["deliveries"]) == (1, None, [])
    assert data["schema"] == rp.SCHEMA
    assert list(data["run"]) == [
        "id",
        "function",
        "started",
        "finished",
        "now",
        "account",
        "scope",
        "reportOnly",
        "domains",
        "domainsJudged",
        "domainsNotJudged",
        "allClear",
    ]
    assert list(data["totals"]) == ["bySeverity", "byCode", "repairs"]
    assert data["totals"]["bySeverity"] == {"error": 1, "warning": 3, "info": 1}
    assert data["alerts"][0] == {"domain": "cdn.example.com", "code": "CERT_EXPIRING"}
    cdn = data["domains"][0]
    assert list(cdn) == [
        "domain",
        "location",
        "bucket",
        "certificate",
        "httpsForced",
        "hsts",
        "backupCasId",
        "findings",
        "repairs",
    ]
    assert cdn["certificate"] == {
        "casId": 103,
        "name": "cdn-old",
        "issuer": "Example CA One",
        "notAfter": "2030-01-11T06:00:00Z",
        "expiresInDays": 10,
    }
    assert cdn["findings"][0] == {
        "code": "CERT_EXPIRING",
        "severity": "warning",
        "message": "expires in 10 days",
        "browserError": None,
        "whatToDo": what_to_do(Code.CERT_EXPIRING),
    }
    assert cdn["repairs"] == [
        {
            "kind": "deploy-invoked",
            "status": "pending",
            "casId": 104,
            "fixes": ["CERT_EXPIRING"],
            "requestId": "fc-req-9",
            "errorCode": None,
        }
    ]
    old = data["domains"][2]
    assert (old["hsts"], old["httpsForced"]) == ("not-applicable", "unknown")
    assert old["findings"][0]["browserError"] == "NET::ERR_CERT_DATE_INVALID"
    assert old["certificate"]["expiresInDays"] == -3


def test_json_reads_back_into_the_same_report() -> None:
    report = full_report(scope="*.example.com", report_only=True)

    again = rp.report_from_dict(json.loads(rp.render_json(report)))

    assert (again.run, again.rows, again.alerts) == (report.run, report.rows, report.alerts)
    assert again.recorded_alerts == report.problems


def test_the_notifiers_record_is_the_alert_state_the_next_run_reads() -> None:
    # given a run whose notification was not delivered: the notifier keeps the previous
    # keys (one problem since fixed) so that the next sweep sends the change again
    kept = frozenset({("gone.example.com", Code.CERT_EXPIRED)})
    report = dataclasses.replace(full_report(), notified=NotifyRun(None, (), kept))

    data = rp.report_to_dict(report)

    assert data["alerts"] == [{"domain": "gone.example.com", "code": "CERT_EXPIRED"}]
    assert previous_alert_keys(data) == kept
    assert rp.report_from_dict(data).alert_keys == kept
    # the all-clear judges the findings, not what was recorded
    assert not report.all_clear and report.problems != kept


def test_without_a_notify_run_the_alert_state_is_every_error_and_warning() -> None:
    report = full_report()
    assert previous_alert_keys(rp.render_json(report)) == report.problems


def test_reading_back_refuses_what_is_not_a_report() -> None:
    with pytest.raises(ValueError, match="schema"):
        rp.report_from_dict({"schema": "other"})
    with pytest.raises(ValueError, match="malformed"):
        rp.report_from_dict({"schema": rp.SCHEMA, "run": {}})


def test_log_fields_summarise_the_run() -> None:
    fields = rp.log_fields(full_report())

    assert fields["domains"] == 4 and fields["allClear"] is False
    assert fields["byCode"]["CERT_EXPIRED"] == 1


# --------------------------------------------------------------------------- HTML


class _Walker(HTMLParser):
    """Walks a document, checks that elements nest, collects the domain table's rows."""

    VOID = frozenset({"meta", "br", "link", "img", "hr", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.domain_rows: list[list[str]] = []
        self._in_domains = False
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "table" and attributes.get("class") == "domains":
            self._in_domains = True
        elif self._in_domains and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.domain_rows.append([])
        elif self._in_body and tag == "td" and self.stack.count("td") == 1:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()
        if tag == "td" and self._cell is not None and "td" not in self.stack:
            self.domain_rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._in_domains = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def walk(text: str) -> _Walker:
    walker = _Walker()
    walker.feed(text)
    walker.close()
    assert walker.stack == [], walker.stack
    return walker


def test_the_html_page_parses_with_a_row_per_domain() -> None:
    report = full_report()

    walker = walk(render_html(report))

    assert [row[0] for row in walker.domain_rows] == [r.domain for r in report.rows]
    cdn = walker.domain_rows[0]
    assert cdn[1:8] == [
        "CDN",
        "CAS 103 cdn-old",
        "Example CA One",
        "in 10 days",
        "no",
        "no",
        "none",
    ]
    assert "CERT_EXPIRING" in cdn[8] and "What to do" in cdn[8]
    assert "deploy-cert invoked" in cdn[9] and "pending" in cdn[9]
    old = walker.domain_rows[2]
    assert old[4] == "expired 3 days ago" and old[6] == "n.a."
    assert "NET::ERR_CERT_DATE_INVALID" in old[8]
    assert "failed (ServiceBusy)" in old[9]


def test_the_html_page_is_self_contained_and_phone_ready() -> None:
    text = render_html(full_report())
    tags = walk(text).tags

    assert not re.search(r"https?://", text)
    assert not [t for t, _ in tags if t in ("script", "link", "img", "iframe", "object")]
    assert not [a for _, a in tags if "src" in a or "href" in a]
    viewport = [a for t, a in tags if t == "meta" and a.get("name") == "viewport"]
    assert viewport and "width=device-width" in (viewport[0]["content"] or "")
    assert "@media (max-width" in text
    assert all(a.get("data-label") for t, a in tags if t == "td" and "data-label" in a)


def test_a_report_without_domains_still_has_the_table() -> None:
    walker = walk(render_html(Report(run())))
    assert walker.domain_rows == [["no domains"]]


def hostile_report() -> Report:
    domain = HOSTILE + ".example.com"
    row = DomainRow(
        domain,
        Location.CDN,
        certificate=CertInfo(7, "name|with|pipes " + HOSTILE, HOSTILE, NOW),
        findings=(make_finding(Code.NAME_MISMATCH, domain, 'bad "' + HOSTILE + "' &amp;"),),
        bucket=HOSTILE,
    )
    return Report(run(account=HOSTILE, scope=HOSTILE, run_id=HOSTILE), (row,))


def test_hostile_text_is_escaped_in_html() -> None:
    text = render_html(hostile_report())

    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.example.com" in text
    assert "&amp;amp;" in text
    walker = walk(text)
    assert walker.domain_rows[0][0] == HOSTILE + ".example.com"


def test_hostile_text_is_escaped_in_markdown() -> None:
    text = render_markdown(hostile_report())

    assert "<script" not in text.lower()
    # the table keeps its columns: a `|` in a value is escaped
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| domain |"))
    row = lines[start + 2]
    assert len(re.split(r"(?<!\\)\|", row)) == len(re.split(r"(?<!\\)\|", lines[start]))


def test_hostile_text_is_plain_data_in_json() -> None:
    data = json.loads(rp.render_json(hostile_report()))
    assert data["domains"][0]["domain"] == HOSTILE + ".example.com"


def fake_key(kind: str) -> tuple[str, str]:
    """A PEM private-key-looking block, built at run time (never a literal in the code)."""
    body = base64.b64encode(os.urandom(96)).decode("ascii")
    dashes = "-" * 5
    label = f"{kind}PRIVATE KEY".strip()
    return f"{dashes}BEGIN {label}{dashes}\n{body}\n{dashes}END {label}{dashes}", body


@pytest.mark.parametrize("kind", ["", "RSA ", "EC ", "ENCRYPTED "])
def test_no_key_material_in_any_rendering(kind: str) -> None:
    # given a certificate name and a message carrying a pasted private key
    pem, body = fake_key(kind)
    domain = "www.example.com"
    row = dataclasses.replace(
        healthy(),
        certificate=CertInfo(101, "wild-one " + pem, "Example CA " + pem, NOW),
        findings=(make_finding(Code.NO_BACKUP, domain, "note " + pem),),
    )
    report = Report(run(), (row,))

    # then no rendering shows the key or its markers
    for text in (rp.render_json(report), render_markdown(report), render_html(report)):
        assert "BEGIN" not in text and "-----" not in text
        assert f"END {kind}PRIVATE" not in text
        assert body not in text and body[:40] not in text


# --------------------------------------------------------------------------- storage


def test_run_keys_are_dated_in_utc_and_safe() -> None:
    late = datetime(2030, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))

    assert rp.run_key("certpilot/reports/", "r-1", NOW) == "certpilot/reports/2030/01/01/r-1"
    assert rp.run_key("p", "a/b c..", late) == "p/2030/01/02/a-b-c"
    assert rp.run_key("", "../", NOW) == "2030/01/01/run"


def test_the_report_target_comes_from_settings() -> None:
    assert ReportTarget.from_settings(Settings()) is None
    settings = Settings.from_env(
        {"CERTPILOT_REPORT_BUCKET": "ops-reports", "CERTPILOT_REGION": "cn-shanghai"}
    )
    assert ReportTarget.from_settings(settings) == ReportTarget(
        "ops-reports", "cn-shanghai", "certpilot/reports"
    )
    settings = Settings.from_env(
        {
            "CERTPILOT_REPORT_BUCKET": "ops-reports",
            "CERTPILOT_REPORT_REGION": "cn-beijing",
            "CERTPILOT_REPORT_PREFIX": "/audit/https/",
        }
    )
    assert ReportTarget.from_settings(settings) == ReportTarget(
        "ops-reports", "cn-beijing", "audit/https"
    )


@pytest.mark.parametrize("prefix", ["/", "a//b", "a/../b", "./a", "a\x00b"])
def test_an_unusable_report_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigError, match="CERTPILOT_REPORT_PREFIX"):
        Settings.from_env({"CERTPILOT_REPORT_PREFIX": prefix})
