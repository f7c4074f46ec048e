"""`make demo`: certpilot's whole story on a laptop, offline, in well under a minute.

The emulator starts with the demo estate (emulator/estates/demo.json); then, each job
run as Function Compute runs it (`certpilot invoke <job> --event FILE`: the function's
`index.handler` called with the event's bytes and an FC context, DESIGN §7):

1. check-expiry, report-only: the problems, as `certpilot sweep`'s table;
2. deploy-cert: CAS issues a renewed `*.example.com`; its `certpilot.certificate.issued`
   event rolls it out;
3. enforce-https: `app.example.com` is bound to a new bucket through the OSS API
   (PutBucket, CreateCnameToken, PutCname); the PutCname ActionTrail event secures it;
4. check-expiry with repairs (deploy-cert invoked asynchronously through the
   emulator's FC, drifted enforcement restored), then once more: nothing left to repair;
5. before and after, per domain;
6. the HTML report check-expiry stored in OSS, written to `<out>/report.html`.

The events go to `<out>/events/` (run them again with `make sandbox`). Each step is
timed. Exit 0 when every step's outcome is the one the story expects, 1 otherwise
(the step and what differed on stderr).

Usage: python scripts/demo.py [--out DIR] [--estate FILE]
(defaults: build/demo, emulator/estates/demo.json; another estate tells another story,
which the demo says differs from the expected one)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _estate import (
    DEMO_ESTATE,
    REPO,
    EstateError,
    admin,
    exports,
    issue_renewed,
    start_emulator,
    stop_emulator,
    without_proxies,
)

sys.path.insert(0, str(REPO / "shared" / "python"))

from certpilot.cli import main as certpilot
from certpilot.cli.render import table
from certpilot.cli.sweep import render_table

OUT = REPO / "build" / "demo"
REPORTS = "ops-reports"  # the bucket check-expiry stores its reports in
APP_BUCKET = "app-prod"
APP_DOMAIN = "app.example.com"
DEPLOY_FUNCTION = "certpilot-deploy-cert"
ASYNC_TIMEOUT = 60.0
PEM_KEY_MARK = "PRIVATE" + " KEY-----"  # never written out, whole or in part
PROBLEMS = ("error", "warning")


class Unexpected(Exception):
    """A step's outcome is not the one the story expects."""


def expect(condition: bool, what: str) -> None:
    """Raises Unexpected(`what`) unless `condition`."""
    if not condition:
        raise Unexpected(what)


def say(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class Story:
    """The running demo: the emulator, where the files go, the step timings."""

    info: dict[str, Any]
    out: Path
    estate: Path
    timings: list[tuple[str, float]] = field(default_factory=list)
    events: int = 0
    current: str = "0"

    @contextlib.contextmanager
    def step(self, label: str, title: str) -> Iterator[None]:
        """A heading, then the step, then its time."""
        say(f"\n== {label}. {title} ==")
        self.current = label
        started = time.monotonic()
        yield
        seconds = time.monotonic() - started
        self.timings.append((label, seconds))
        say(f"({seconds:.1f} s)")

    def invoke(self, function: str, event: dict[str, Any], what: str) -> dict[str, Any]:
        """`certpilot invoke FUNCTION --event FILE`, in this process: the event written
        to `<out>/events/`, the handler's JSON answer returned.

        Raises:
            Unexpected: the answer is not JSON, or not `"ok": true`.
        """
        self.events += 1
        path = self.out / "events" / f"{self.events}-{function}.json"
        path.write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
        say(f"{what}: certpilot invoke {function} --event {shown(path)}")
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            code = certpilot(["invoke", function, "--event", str(path)])
        try:
            summary: dict[str, Any] = json.loads(stdout.getvalue())
        except ValueError:
            raise Unexpected(f"{function} answered no JSON (exit {code})") from None
        expect(code == 0 and summary.get("ok") is True, f"{function}: {summary.get('error')}")
        return summary

    def oss(self) -> Any:
        """An OSS SDK client, as a user's console or script would have."""
        import alibabacloud_oss_v2 as oss

        config = oss.config.load_default()
        config.credentials_provider = oss.credentials.StaticCredentialsProvider(
            self.info["access_key_id"],
            self.info["access_key_secret"],
            self.info.get("security_token"),
        )
        config.region = self.info.get("region") or "cn-hangzhou"
        config.endpoint = self.info["api"]
        return oss.Client(config)


def shown(path: Path) -> str:
    """`path` relative to the checkout when inside it."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def timer(report_only: bool) -> dict[str, Any]:
    """The event FC's timer trigger sends check-expiry (events/check-expiry.timer.json)."""
    return {
        "triggerTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "triggerName": "certpilot-daily",
        "payload": json.dumps({"reportOnly": report_only}),
    }


def rows_of(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["domain"]: row for row in summary["rows"]}


def codes(row: dict[str, Any] | None, severities: Sequence[str] = ()) -> list[str]:
    """The finding codes of a row (only those of `severities` when given)."""
    if row is None:
        return []
    return [f["code"] for f in row["findings"] if not severities or f["severity"] in severities]


def all_codes(summary: dict[str, Any]) -> set[str]:
    return {code for row in summary["rows"] for code in codes(row)}


def problems(summary: dict[str, Any]) -> int:
    by_severity = summary["totals"]["bySeverity"]
    return int(sum(by_severity.get(s, 0) for s in PROBLEMS))


# -- the steps ---------------------------------------------------------------------------


def setup(story: Story) -> None:
    """The report bucket through the OSS API, deploy-cert registered in the emulator's FC
    as the e2e tests do (its handler, the layer, settings; credentials from the context)."""
    import alibabacloud_oss_v2 as oss

    story.oss().put_bucket(oss.PutBucketRequest(bucket=REPORTS))
    env = {
        k: v
        for k, v in exports(story.info).items()
        if not k.startswith("ALIBABA_CLOUD_") and k != "CERTPILOT_ACCOUNT_ID"
    }
    admin(
        story.info["api"],
        "POST",
        "functions",
        {
            "name": DEPLOY_FUNCTION,
            "path": str(REPO / "functions" / "deploy_cert" / "index.py"),
            "handler": "handler",
            "env": {**env, "CERTPILOT_VERIFY_DEADLINE": "8", "CERTPILOT_LOG_LEVEL": "ERROR"},
            "layers": [str(REPO / "shared" / "python")],
            "timeout": 60,
            "asyncRetries": 0,
        },
    )
    state = admin(story.info["api"], "GET", "state")
    say(
        f"OSS, CDN, CAS, FC and a live HTTPS edge at {story.info['api']}, loaded with "
        f"{shown(story.estate)}: {len(state['buckets']) - 1} buckets, "
        f"{len(state['cdn_domains'])} CDN domains, {len(state['certificates'])} certificates"
    )
    say(f"deploy-cert registered in FC as {DEPLOY_FUNCTION}; reports go to oss://{REPORTS}/")


def report_only(story: Story) -> dict[str, Any]:
    """Step 1: the daily sweep, report-only; its summary (the "before")."""
    summary = story.invoke("check-expiry", timer(True), "the daily timer, reportOnly")
    say(render_table(summary).rstrip())
    expect(summary["reportOnly"] is True, "check-expiry did not run report-only")
    expect(summary["status"] == "findings", f"status {summary['status']}, not findings")
    expect(not summary["notJudged"], f"not judged: {summary['notJudged']}")
    expect(not summary["repairs"] and not summary["restored"], "a report-only run repaired")
    expected = {"CERT_EXPIRING", "HTTP_NOT_FORCED", "NO_CERTIFICATE"}
    expect(expected <= all_codes(summary), f"missing {expected - all_codes(summary)}")
    return summary


def renewal(story: Story, before: dict[str, Any]) -> dict[str, Any]:
    """Step 2: CAS issues the renewal, its certificate-issued event goes to deploy-cert;
    the issued certificate (CAS's answer)."""
    issued = issue_renewed(story.info["api"])
    say(
        f"CAS issued certificate {issued['certId']} ({issued['name']}) for *.example.com, "
        f"valid until {issued['notAfter'][:10]}"
    )
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "certpilot.demo",
        "type": "certpilot.certificate.issued",
        "time": datetime.now(timezone.utc).isoformat(),
        "datacontenttype": "application/json",
        "aliyunaccountid": story.info["account_id"],
        "aliyunregionid": story.info.get("region") or "cn-hangzhou",
        "data": {"certId": issued["identifier"]},
    }
    summary = story.invoke("deploy-cert", event, "the certificate-issued CloudEvent")
    results = summary.get("results", [])
    say(
        table(
            ["domain", "route", "outcome", "reason"],
            [(r["domain"], r["route"], r["outcome"], r["reason"]) for r in results],
        )
    )
    for finding in summary.get("findings") or []:
        say(f"  {finding['code']}  {finding['domain']}: {finding['message']}")
    counts = summary["counts"]
    expect(summary["status"] == "deployed", f"deploy-cert status {summary['status']}")
    expect(counts["failed"] == 0 and counts["rolled-back"] == 0, f"deploy-cert {counts}")
    # Every domain whose expiring wildcard the renewal covers must now have it.
    deployed = {r["domain"] for r in results if r["outcome"] == "deployed"}
    due = {
        domain
        for domain, row in rows_of(before).items()
        if "CERT_EXPIRING" in codes(row)
        and "WILDCARD_LEVEL" not in codes(row)
        and (row["certificate"] or {}).get("name") == "wildcard-example-com"
    }
    expect(bool(due) and due <= deployed, f"not deployed: {sorted(due - deployed)}")
    issued["deployed"] = sorted(deployed)
    return issued


def new_domain(story: Story, renewed: dict[str, Any]) -> None:
    """Step 3: a domain bound to a new bucket through the OSS API, then enforce-https on
    the PutCname ActionTrail event (events/enforce-https.oss-putcname.json, this one's)."""
    import alibabacloud_oss_v2 as oss

    client = story.oss()
    client.put_bucket(oss.PutBucketRequest(bucket=APP_BUCKET))
    client.put_object(
        oss.PutObjectRequest(bucket=APP_BUCKET, key="index.html", body=b"<p>app</p>\n")
    )
    binding = oss.BucketCnameConfiguration(cname=oss.Cname(domain=APP_DOMAIN))
    token = client.create_cname_token(
        oss.CreateCnameTokenRequest(bucket=APP_BUCKET, bucket_cname_configuration=binding)
    ).cname_token
    # The emulator plays DNS: the ownership proof OSS checks before binding.
    proof = {"name": f"_dnsauth.{APP_DOMAIN}", "value": token.token}
    admin(story.info["api"], "POST", "oss/dns-txt", proof)
    client.put_cname(oss.PutCnameRequest(bucket=APP_BUCKET, bucket_cname_configuration=binding))
    say(f"OSS API: PutBucket {APP_BUCKET}, CreateCnameToken, PutCname {APP_DOMAIN}")
    account = story.info["account_id"]
    region = story.info.get("region") or "cn-hangzhou"
    event = json.loads((REPO / "events" / "enforce-https.oss-putcname.json").read_text())
    event.update(
        id=str(uuid.uuid4()),
        subject=f"acs:oss:{region}:{account}:{APP_BUCKET}",
        time=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        aliyunaccountid=account,
    )
    event["data"]["userIdentity"]["accountId"] = account
    event["data"]["requestParameters"] = {"BucketName": APP_BUCKET, "Domain": APP_DOMAIN}
    event["data"]["referencedResources"] = {"ACS::OSS::Bucket": [APP_BUCKET]}
    summary = story.invoke("enforce-https", event, "its PutCname ActionTrail event")
    for d in summary["domains"]:
        edge = d["facts"].get("edge") or {}
        say(
            f"  {d['domain']}: {d['outcome']} ({d['reason']}), certificate "
            f"{d['facts'].get('certId', '-')}; plain HTTP answers {edge.get('httpStatus', '-')}, "
            f"HTTPS {edge.get('httpsStatus', '-')}"
        )
    for b in summary["buckets"]:
        say(f"  bucket {b['bucket']}: {b['outcome']} ({b['detail']})")
    domain = next((d for d in summary["domains"] if d["domain"] == APP_DOMAIN), None)
    expect(summary["status"] == "enforced", f"enforce-https status {summary['status']}")
    expect(domain is not None and domain["outcome"] == "enforced", f"{APP_DOMAIN}: {domain}")
    expect(
        domain is not None and domain["facts"].get("certId") == renewed["certId"],
        f"{APP_DOMAIN} did not get the renewed certificate",
    )
    buckets = {b["bucket"]: b["outcome"] for b in summary["buckets"]}
    expect(buckets.get(APP_BUCKET) == "enforced", f"bucket {APP_BUCKET}: {buckets}")


def wait_async(story: Story, since: int) -> list[dict[str, Any]]:
    """The FC invocations of deploy-cert after the first `since`, once all are done
    (polled; their retries included).

    Raises:
        Unexpected: one is still running after ASYNC_TIMEOUT.
    """
    deadline = time.monotonic() + ASYNC_TIMEOUT
    while True:
        path = f"invocations?function={DEPLOY_FUNCTION}"
        records = admin(story.info["api"], "GET", path)["invocations"][since:]
        if all(r["status"] != "running" and not r.get("willRetry") for r in records):
            return list(records)
        expect(time.monotonic() < deadline, "deploy-cert in FC still running")
        time.sleep(0.1)


def repairs(story: Story) -> tuple[dict[str, Any], dict[str, Any]]:
    """Step 4: the sweep with repairs, its deploy-cert invocations in FC waited for, then
    the sweep again, which must find nothing to repair; both summaries."""
    listing = admin(story.info["api"], "GET", f"invocations?function={DEPLOY_FUNCTION}")
    seen = len(listing["invocations"])
    repaired = story.invoke("check-expiry", timer(False), "the daily timer, with repairs")
    rows = [
        (
            r["kind"],
            ", ".join(r["domains"]),
            r["casId"] or "-",
            ", ".join(r["fixes"]),
            r["status"],
        )
        for r in [*repaired["repairs"], *repaired["restored"]]
    ]
    say(table(["repair", "domains", "certificate", "fixes", "status"], rows))
    expect(repaired["reportOnly"] is False, "check-expiry ran report-only")
    expect(not repaired["notJudged"], f"not judged: {repaired['notJudged']}")
    expect(bool(rows), "check-expiry repaired nothing")
    failed = [r for r in rows if r[-1] == "failed"]
    expect(not failed, f"repairs failed: {failed}")

    invocations = wait_async(story, seen)
    outcomes = [json.loads(r.get("result") or "{}").get("status", r["status"]) for r in invocations]
    say(
        f"deploy-cert in FC (asynchronous): {len(invocations)} invocation(s): {', '.join(outcomes)}"
    )
    expect(len(invocations) == len(repaired["repairs"]), "not one FC invocation per rollout")
    succeeded = [r["status"] == "succeeded" for r in invocations]
    expect(all(succeeded) and set(outcomes) <= {"deployed"}, f"deploy-cert in FC: {outcomes}")

    clean = story.invoke("check-expiry", timer(False), "the timer once more")
    settled = clean["settledRepairs"]
    confirmed = sum(s["status"] == "confirmed" for s in settled)
    expect(not clean["repairs"] and not clean["restored"], "the last sweep still repaired")
    expect(not clean["notJudged"], f"not judged: {clean['notJudged']}")
    pending = {d for r in repaired["repairs"] for d in r["domains"]}
    expect(
        confirmed == len(settled) and {s["domain"] for s in settled} == pending,
        f"rollouts not confirmed: {settled}",
    )
    say(
        f"nothing left to repair: {len(clean['repairs'])} repairs invoked, "
        f"{len(clean['restored'])} restored; {confirmed} earlier rollout(s) confirmed"
    )
    left = [
        (row["domain"], f["code"], f["message"])
        for row in clean["rows"]
        for f in row["findings"]
        if f["severity"] in PROBLEMS
    ]
    if left:
        say("what remains is not for certpilot to repair (it needs a person):")
        for domain, code, message in left:
            say(f"  {code}  {domain}: {message}")
    return repaired, clean


def _change(before: str, after: str) -> str:
    return before if before == after else f"{before} -> {after}"


def _cells(row: dict[str, Any] | None) -> tuple[str, str, str, str, str]:
    if row is None:
        return ("(not bound)", "-", "-", "-", "-")
    yes = {True: "yes", False: "no", None: "-"}
    days = row["expiresInDays"]
    return (
        (row["certificate"] or {}).get("name") or "-",
        "-" if days is None else str(days),
        yes[row["httpsForced"]],
        yes[row["hsts"]],
        ", ".join(codes(row, PROBLEMS)) or "ok",
    )


def side_by_side(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Step 5: per domain, certificate, days left, HTTPS forced, HSTS and the error and
    warning findings, before -> after; no domain may have got worse."""
    old, new = rows_of(before), rows_of(after)
    lines = []
    for domain in sorted(old.keys() | new.keys()):
        cells = zip(_cells(old.get(domain)), _cells(new.get(domain)), strict=True)
        lines.append((domain, *(_change(b, a) for b, a in cells)))
    headers = ["domain", "certificate", "days left", "HTTPS forced", "HSTS", "findings"]
    say(table(headers, lines))
    say(
        f"findings: the errors and warnings ({problems(before)} -> {problems(after)}); the info"
        " ones (NO_BACKUP: no certificate from a second CA) are in the report"
    )
    worse = {
        domain: sorted(set(codes(new[domain], PROBLEMS)) - set(codes(old.get(domain), PROBLEMS)))
        for domain in new
    }
    worse = {d: c for d, c in worse.items() if c}
    expect(not worse, f"domains that got worse: {worse}")
    expect(problems(after) < problems(before), "no fewer problems after than before")
    expect(APP_DOMAIN in new and new[APP_DOMAIN]["httpsForced"] is True, f"{APP_DOMAIN} missing")


def html_report(story: Story, clean: dict[str, Any]) -> Path:
    """Step 6: the HTML report the last sweep stored in OSS, read back through the OSS
    API and written to `<out>/report.html`; its path."""
    import alibabacloud_oss_v2 as oss

    keys = clean["report"]["keys"]
    expect(clean["report"]["stored"] is True, f"report not stored: {clean['report']['error']}")
    key = next((k for k in keys if k.endswith("/latest.html")), None)
    expect(key is not None, f"no latest.html among {keys}")
    got = story.oss().get_object(oss.GetObjectRequest(bucket=REPORTS, key=key))
    html = got.body.read().decode("utf-8")
    secret = story.info["access_key_secret"]
    expect(PEM_KEY_MARK not in html and secret not in html, "the report holds key material")
    path = story.out / "report.html"
    path.write_text(html, encoding="utf-8")
    say(f"check-expiry stored it as oss://{REPORTS}/{key}; here it is:")
    say(f"  {path}")
    return path


# -- the run -----------------------------------------------------------------------------


def run(story: Story) -> None:
    """The six steps (module docstring).

    Raises:
        Unexpected: a step's outcome is not the expected one.
        EstateError: an admin call to the emulator failed.
    """
    state: dict[str, Any] = {}

    def one() -> None:
        state["before"] = report_only(story)

    def two() -> None:
        state["renewed"] = renewal(story, state["before"])

    def three() -> None:
        new_domain(story, state["renewed"])

    def four() -> None:
        state["repaired"], state["after"] = repairs(story)

    def five() -> None:
        side_by_side(state["before"], state["after"])

    def six() -> None:
        html_report(story, state["after"])

    steps: list[tuple[str, str, Callable[[], None]]] = [
        ("1", "check-expiry, report-only: what is wrong today", one),
        ("2", "deploy-cert: a renewed *.example.com certificate", two),
        ("3", f"enforce-https: {APP_DOMAIN}, newly bound to bucket {APP_BUCKET}", three),
        ("4", "check-expiry with repairs, then once more", four),
        ("5", "before -> after", five),
        ("6", "the HTML report", six),
    ]
    for label, title, body in steps:
        with story.step(label, title):
            body()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT, help="where the files go (build/demo)")
    parser.add_argument("--estate", type=Path, default=DEMO_ESTATE, help="the estate to load")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    (out / "events").mkdir(parents=True, exist_ok=True)
    for old in (out / "events").glob("*.json"):
        old.unlink()
    started = time.monotonic()
    say("certpilot demo: the whole story against the emulator, offline (no account, no network)")
    say(
        "each job runs as Function Compute runs it: `certpilot invoke JOB --event FILE` calls"
        " functions/JOB/index.py handler(event bytes, context)"
    )
    with tempfile.TemporaryFile() as log:
        story: Story | None = None
        try:
            with contextlib.ExitStack() as stack:
                say("\n== 0. the emulator and its estate ==")
                t0 = time.monotonic()
                process, info = start_emulator(log, args.estate)
                stack.callback(stop_emulator, process)
                env = without_proxies(os.environ)
                os.environ.clear()
                os.environ.update(
                    {
                        **env,
                        **exports(info),
                        "CERTPILOT_REPORT_BUCKET": REPORTS,
                        "CERTPILOT_DEPLOY_FUNCTION": DEPLOY_FUNCTION,
                        "CERTPILOT_LOG_LEVEL": "ERROR",
                    }
                )
                story = Story(info, out, args.estate.resolve())
                setup(story)
                story.timings.append(("0", time.monotonic() - t0))
                say(f"({story.timings[-1][1]:.1f} s)")
                run(story)
        except (Unexpected, EstateError) as err:
            label = story.current if story is not None else "0"
            log.seek(0)
            tail = (
                log.read().decode(errors="replace")[-2000:] if isinstance(err, EstateError) else ""
            )
            sys.stderr.write(f"demo: step {label}: not as expected: {err}\n{tail}")
            return 1
    total = time.monotonic() - started
    assert story is not None
    steps = ", ".join(f"{label}: {seconds:.1f}" for label, seconds in story.timings)
    say(f"\ndone: the story as expected in {total:.1f} s (per step, s: {steps})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
