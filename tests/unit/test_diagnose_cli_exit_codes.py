"""`python -m certpilot diagnose-cert` in a subprocess: output, exit codes, no leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.pki import (
    DAY,
    NOW,
    Pki,
    build_pki,
    der,
    key_bytes,
    key_markers,
    make_key,
    p7b,
    p12,
    pem,
)

REPO = Path(__file__).resolve().parents[2]
FIXED_NOW = "2025-06-01T12:00:00Z"
PASSWORD = "s3cret-pfx"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        return data


def diagnose(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CERTPILOT_")}
    environ["PYTHONPATH"] = str(REPO / "shared" / "python")
    environ.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "certpilot", "diagnose-cert", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd or REPO,
        timeout=60,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return build_pki(("www.example.com", "*.example.com"), depth=2, leaf_key="rsa2048")


@pytest.fixture(scope="module")
def files(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("diagnose")
    contents = {
        "chain.pem": pki.chain_pem(),
        "reversed.pem": pem(*pki.chain[::-1]),
        "leaf.pem": pem(pki.leaf.cert),
        "leaf.der": der(pki.leaf.cert),
        "chain.p7b": p7b(pki.chain),
        "chain.pfx": p12(pki.leaf.key, pki.leaf.cert, pki.chain[1:], PASSWORD.encode()),
        "combined.pem": pki.chain_pem() + key_bytes(pki.leaf.key),
        "root.pem": pem(pki.root.cert),
        "key.pem": key_bytes(pki.leaf.key, "traditional"),
        "other-key.pem": key_bytes(make_key("rsa2048", 77)),
        "empty.pem": b"",
        "garbage.bin": b"\xff\xfe" + bytes(range(256)) * 2,
        "truncated.pem": pki.chain_pem()[:900],
        "huge.pem": pki.chain_pem() + b"#" * (1024 * 1024),
    }
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in contents}


def _assert_no_key_material(run: Run, pki: Pki) -> None:
    for marker in key_markers(pki.leaf.key):
        assert marker.decode() not in run.stdout
        assert marker.decode() not in run.stderr


@dataclass(frozen=True)
class Case:
    args: Callable[[dict[str, Path]], list[str]]
    exit_code: int
    codes: list[str] = field(default_factory=list)  # finding codes (exit 0/1)
    stderr_has: str = ""  # (exit 2)
    env: dict[str, str] = field(default_factory=dict)


def _with(*extra: str) -> Callable[[dict[str, Path]], list[str]]:
    def build(f: dict[str, Path]) -> list[str]:
        out = []
        for item in extra:
            out.append(str(f[item[1:]]) if item.startswith("@") else item)
        return out

    return build


def _base(
    cert: str, *extra: str, domain: str = "www.example.com"
) -> Callable[[dict[str, Path]], list[str]]:
    return _with("--domain", domain, "--cert", f"@{cert}", "--now", FIXED_NOW, *extra)


TRUST = ("--ca-bundle", "@root.pem")

CASES: list[tuple[str, Case]] = [
    ("ok-pem", Case(_base("chain.pem", *TRUST), 0)),
    ("ok-with-key", Case(_base("chain.pem", *TRUST, "--key", "@key.pem"), 0)),
    ("ok-wildcard", Case(_base("chain.pem", *TRUST, domain="oss.example.com"), 0)),
    (
        "ok-ca-bundle-from-env",
        Case(_base("chain.pem"), 0, env={"CERTPILOT_CA_BUNDLE": "@root.pem"}),
    ),
    ("warning-order-exit-0", Case(_base("reversed.pem", *TRUST), 0, ["CHAIN_ORDER"])),
    ("der-leaf-only", Case(_base("leaf.der", *TRUST), 1, ["CHAIN_INCOMPLETE", "NOT_PEM"])),
    ("p7b", Case(_base("chain.p7b", *TRUST), 0, ["NOT_PEM"])),
    (
        "pfx-with-password",
        Case(
            _base("chain.pfx", *TRUST, "--password-env", "PFX_PW"),
            0,
            ["NOT_PEM"],
            env={"PFX_PW": PASSWORD},
        ),
    ),
    ("combined-pem-key-checked", Case(_base("combined.pem", *TRUST), 0)),
    (
        "key-mismatch",
        Case(_base("chain.pem", *TRUST, "--key", "@other-key.pem"), 1, ["KEY_MISMATCH"]),
    ),
    (
        "name-mismatch",
        Case(_base("chain.pem", *TRUST, domain="cdn.example.org"), 1, ["NAME_MISMATCH"]),
    ),
    (
        "wildcard-level",
        Case(_base("chain.pem", *TRUST, domain="cdn.oss.example.com"), 1, ["WILDCARD_LEVEL"]),
    ),
    ("untrusted-by-mozilla", Case(_base("chain.pem"), 1, ["CHAIN_INCOMPLETE"])),
    ("incomplete", Case(_base("leaf.pem", *TRUST), 1, ["CHAIN_INCOMPLETE"])),
    (
        "expired-later",
        Case(
            _with(
                "--domain", "www.example.com", "--cert", "@chain.pem", *TRUST, "--now", "2025-09-01"
            ),
            1,
            ["CERT_EXPIRED"],
        ),
    ),
    (
        "expiring-renew-days",
        Case(_base("chain.pem", *TRUST, "--renew-days", "90"), 0, ["CERT_EXPIRING"]),
    ),
    # exit 2: the input cannot be used
    ("empty-file", Case(_base("empty.pem"), 2, stderr_has="empty")),
    ("garbage", Case(_base("garbage.bin"), 2, stderr_has="unrecognized binary data")),
    ("truncated-pem", Case(_base("truncated.pem"), 2, stderr_has="truncated")),
    ("key-as-cert", Case(_base("key.pem"), 2, stderr_has="holds a private key")),
    ("cert-as-key", Case(_base("chain.pem", "--key", "@chain.pem"), 2, stderr_has="--key")),
    (
        "wrong-pfx-password",
        Case(
            _base("chain.pfx", "--password-env", "PFX_PW"),
            2,
            stderr_has="wrong PKCS#12 password",
            env={"PFX_PW": "nope"},
        ),
    ),
    ("pfx-no-password", Case(_base("chain.pfx"), 2, stderr_has="password-protected")),
    (
        "password-env-unset",
        Case(_base("chain.pfx", "--password-env", "NOT_SET_ANYWHERE"), 2, stderr_has="not set"),
    ),
    ("over-1-mib", Case(_base("huge.pem"), 2, stderr_has="over 1048576 bytes")),
    (
        "invalid-domain",
        Case(_base("chain.pem", domain="exa mple.com"), 2, stderr_has="invalid domain"),
    ),
    ("ip-domain", Case(_base("chain.pem", domain="192.0.2.1"), 2, stderr_has="IP address")),
    (
        "missing-file",
        Case(
            _with("--domain", "a.example.com", "--cert", "/nonexistent/x.pem"),
            2,
            stderr_has="no such file",
        ),
    ),
    (
        "missing-ca-bundle",
        Case(_base("chain.pem", "--ca-bundle", "/nonexistent/ca.pem"), 2, stderr_has="--ca-bundle"),
    ),
    ("missing-domain-flag", Case(_with("--cert", "@chain.pem"), 2, stderr_has="--domain")),
    ("bad-renew-days", Case(_base("chain.pem", "--renew-days", "-3"), 2, stderr_has="renew-days")),
]


@pytest.mark.parametrize("case", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_diagnose_cert(case: Case, files: dict[str, Path], pki: Pki) -> None:
    env = {k: str(files[v[1:]]) if v.startswith("@") else v for k, v in case.env.items()}
    run = diagnose(*case.args(files), env=env)
    assert run.code == case.exit_code, run.stderr
    assert "Traceback" not in run.stderr
    _assert_no_key_material(run, pki)
    if case.exit_code == 2:
        assert run.stdout == ""
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("certpilot: error: ")
        assert case.stderr_has in run.stderr
        return
    report = run.report
    codes = sorted(f["code"] for f in report["findings"])
    assert codes == sorted(case.codes)
    assert report["ok"] is (case.exit_code == 0)


def test_json_report_shape(files: dict[str, Path], pki: Pki) -> None:
    run = diagnose(*_base("reversed.pem", *TRUST)(files))
    report = run.report
    cert = report["certificate"]
    assert cert["subject"] == "CN=www.example.com"
    assert cert["sans"] == ["www.example.com", "*.example.com"]
    assert cert["issuer"] == "CN=certpilot Test Intermediate 2,O=certpilot tests"
    assert int(str(cert["serial"]), 16) == pki.leaf.cert.serial_number
    assert cert["not_after"] == "2025-07-31T12:00:00Z" and cert["days_left"] == 60
    assert cert["key_type"] == "RSA" and cert["key_size"] == 2048
    chain = report["chain"]
    assert chain["status"] == "trusted" and chain["order_was_wrong"] is True
    assert [c["role"] for c in chain["certificates"]] == ["leaf", "intermediate", "intermediate"]
    assert chain["trust_anchor"] == "CN=certpilot Test Root,O=certpilot tests"
    finding = report["findings"][0]
    assert set(finding) == {"code", "severity", "domain", "message", "browser_error"}


def test_text_format(files: dict[str, Path]) -> None:
    run = diagnose(*_base("leaf.pem", *TRUST, "--format", "text")(files))
    assert run.code == 1
    assert "Certificate for www.example.com" in run.stdout
    assert "ERROR   CHAIN_INCOMPLETE" in run.stdout
    assert "NET::ERR_CERT_AUTHORITY_INVALID" in run.stdout
    assert "Result: NOT OK" in run.stdout


@pytest.mark.parametrize(
    ("source", "env"),
    [
        ("chain.pfx", {"PFX_PW": PASSWORD}),
        ("chain.p7b", {}),
        ("reversed.pem", {}),
        ("combined.pem", {}),
    ],
    ids=["from-pfx", "from-p7b", "from-reversed-pem", "from-combined-pem"],
)
def test_convert_pem_writes_leaf_first_certificates_only(
    source: str, env: dict[str, str], files: dict[str, Path], pki: Pki, tmp_path: Path
) -> None:
    out = tmp_path / "fullchain.pem"
    extra = ["--password-env", "PFX_PW"] if env else []
    run = diagnose(*_base(source, *TRUST, "--convert-pem", str(out), *extra)(files), env=env)
    assert run.code == 0, run.stderr
    assert run.report["converted_pem"] == str(out)
    written = out.read_bytes()
    assert written == pki.chain_pem()
    assert b"PRIVATE KEY" not in written
    assert not list(tmp_path.glob(".*certpilot-tmp"))


def test_convert_pem_unwritable_target(files: dict[str, Path]) -> None:
    run = diagnose(*_base("chain.pem", "--convert-pem", "/nonexistent/dir/out.pem")(files))
    assert run.code == 2 and "--convert-pem" in run.stderr and run.stderr.count("\n") == 1


def test_cli_uses_real_clock_without_now(tmp_path: Path) -> None:
    from tests.pki import real_now

    now = real_now()
    p = build_pki(base=now, leaf_not_before=now - DAY, leaf_not_after=now + 200 * DAY)
    (tmp_path / "c.pem").write_bytes(p.chain_pem())
    (tmp_path / "r.pem").write_bytes(pem(p.root.cert))
    run = diagnose(
        "--domain",
        "www.example.com",
        "--cert",
        str(tmp_path / "c.pem"),
        "--ca-bundle",
        str(tmp_path / "r.pem"),
    )
    assert run.code == 0, run.stdout
    assert run.report["certificate"]["days_left"] in (199, 200)
    assert NOW.year == 2025  # the fixed clock of the other tests is untouched
