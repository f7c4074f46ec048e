"""`make demo` tells the whole story offline, end to end, in under a minute (README's
first promise, issue 12 point 4): check-expiry report-only, a renewal through
deploy-cert, a new domain through enforce-https, check-expiry repairing then clean,
before and after, and the HTML report written where it says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DEMO = json.loads((REPO / "emulator" / "estates" / "demo.json").read_text())
PEM_KEY_MARK = "PRIVATE" + " KEY"
HEADINGS = [
    "== 0. the emulator and its estate",
    "== 1. check-expiry, report-only",
    "== 2. deploy-cert",
    "== 3. enforce-https",
    "== 4. check-expiry with repairs",
    "== 5. before -> after",
    "== 6. the HTML report",
]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
VOID = {"meta", "br", "hr", "img", "link", "input", "wbr", "col", "source"}


class _Html(HTMLParser):
    """Tags nested as opened, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.seen: set[str] = set()
        self.text: list[str] = []
        self.misnested: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.misnested.append(tag)
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def section(output: str, heading: str) -> str:
    """The part of the output under `heading`, up to the next heading."""
    start = output.index(heading)
    following = [output.find(h, start + 1) for h in HEADINGS if output.find(h, start + 1) > 0]
    return output[start : min(following, default=len(output))]


def test_make_demo_tells_the_whole_story_offline_in_under_a_minute(tmp_path: Path) -> None:
    # given the Makefile's demo target, which runs scripts/demo.py
    make = subprocess.run(
        ["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert make.returncode == 0, make.stderr
    assert "scripts/demo.py" in make.stdout
    # and a shell whose proxy would swallow any outside traffic, and no PYTHONPATH
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    out = tmp_path / "demo"
    started = time.monotonic()

    # when the demo runs (what `make demo` runs), its files going to a scratch folder
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started

    # then every step came out as the story expects, within the minute
    output = done.stdout
    assert done.returncode == 0, output + done.stderr
    assert elapsed < 60, f"{elapsed:.1f} s"
    assert "Traceback" not in done.stderr
    positions = [output.index(h) for h in HEADINGS]
    assert positions == sorted(positions)
    total = re.search(r"^done: the story as expected in ([0-9.]+) s", output, re.MULTILINE)
    assert total is not None and float(total.group(1)) < 60

    # (1) the report-only sweep shows the estate's problems in the CLI's table
    first = section(output, HEADINGS[1])
    for code in ("CERT_EXPIRING", "CERT_EXPIRED", "NO_CERTIFICATE", "HTTP_NOT_FORCED"):
        assert code in first
    assert "report-only" in first
    # (2) the renewal is deployed, (3) the new domain enforced
    assert re.search(r"^static\.example\.com\s+oss\s+deployed", section(output, HEADINGS[2]), re.M)
    assert "app.example.com: enforced" in section(output, HEADINGS[3])
    # (4) the sweep repaired (through FC and in process), then found nothing to repair
    fourth = section(output, HEADINGS[4])
    for kind in ("deploy-invoked", "enforcement-restored"):
        assert kind in fourth
    assert "nothing left to repair: 0 repairs invoked, 0 restored" in fourth
    # (5) before -> after: the expiring wildcard renewed, the new domain forced to HTTPS
    fifth = section(output, HEADINGS[5])
    assert re.search(r"^static\.example\.com .*19 -> 8\d .*CERT_EXPIRING -> ok", fifth, re.M)
    assert re.search(r"^app\.example\.com .*- -> yes", fifth, re.M)

    # and the HTML report is where the demo says, parses, and names every domain
    report = out / "report.html"
    assert str(report) in section(output, HEADINGS[6])
    html = report.read_text(encoding="utf-8")
    parsed = _Html()
    parsed.feed(html)
    parsed.close()
    assert {"html", "table"} <= parsed.seen
    assert parsed.misnested == [] and parsed.open == []
    text = " ".join(parsed.text)
    domains = {c["domain"] for b in DEMO["buckets"] for c in b["cnames"]}
    domains |= {d["name"] for d in DEMO["cdn_domains"]} | {"app.example.com"}
    assert [d for d in domains if d not in text] == []
    # and each job's event is on disk, to run again by hand
    events = sorted(p.name for p in (out / "events").glob("*.json"))
    assert [re.sub(r"^\d+-", "", e) for e in events] == [
        "check-expiry.json",
        "deploy-cert.json",
        "enforce-https.json",
        "check-expiry.json",
        "check-expiry.json",
    ]
    # and no private key anywhere
    for text in (html, output, done.stderr, *((out / "events" / e).read_text() for e in events)):
        assert PEM_KEY_MARK not in text


def test_the_demo_says_which_step_differs_and_exits_1_when_the_story_does_not_hold(
    tmp_path: Path,
) -> None:
    # given an estate with nothing wrong in it (so the first sweep finds no problem)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # when the demo runs on it
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "demo.py"),
            "--out",
            str(tmp_path / "demo"),
            "--estate",
            str(REPO / "emulator" / "estates" / "minimal.json"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # then it stops at step 1, says so, and exits 1
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("demo: step 1: not as expected"), done.stderr
    assert HEADINGS[1] in done.stdout and HEADINGS[2] not in done.stdout
    assert "Traceback" not in done.stderr
    # and the emulator it started is gone
    api = re.search(r"live HTTPS edge at (http://127\.0\.0\.1:\d+)", done.stdout)
    assert api is not None
    with pytest.raises(urllib.error.URLError):
        _NO_PROXY.open(f"{api.group(1)}/_emulator/info", timeout=5)
