"""Oracles: our chain and hostname verdicts agree with OpenSSL, reached two ways.

1. Python's `ssl`: a real TLS handshake against a local server (in a thread) that
   serves the chain; the client trusts only the test root, with check_hostname on and
   CN fallback off (as browsers).
2. `openssl verify -CAfile root -untrusted intermediates [-verify_hostname] leaf`,
   skipped when `openssl` is not on PATH.

Both judge with the real clock, so these chains are built around the real now.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509

from certpilot.certs import load_bundle
from certpilot.certs.trust import TrustStore
from certpilot.certs.validate import validate
from certpilot.core.findings import Code, Severity
from tests.pki import DAY, Issued, build_pki, key_bytes, make_ca, make_leaf, pem, real_now

# OpenSSL verify error numbers and the codes that describe them.
OPENSSL_CODES: dict[int, set[Code]] = {
    2: {Code.CHAIN_INCOMPLETE},  # unable to get issuer certificate
    20: {Code.CHAIN_INCOMPLETE},  # unable to get local issuer certificate
    21: {Code.CHAIN_INCOMPLETE},  # unable to verify the first certificate
    24: {Code.CHAIN_INCOMPLETE},  # invalid CA certificate (an issuer that is not a CA)
    79: {Code.CHAIN_INCOMPLETE},  # invalid CA certificate (OpenSSL 3 strict checks)
    32: {Code.CHAIN_INCOMPLETE},  # issuer's keyUsage lacks keyCertSign
    18: {Code.UNTRUSTED_ROOT},  # self-signed certificate
    19: {Code.UNTRUSTED_ROOT},  # self-signed certificate in certificate chain
    9: {Code.CERT_NOT_YET_VALID},
    10: {Code.CERT_EXPIRED},
    62: {Code.NAME_MISMATCH, Code.WILDCARD_LEVEL},  # hostname mismatch
}
JUDGED = {code for codes in OPENSSL_CODES.values() for code in codes}


@dataclass(frozen=True)
class Served:
    """What the server sends, its key, the root the client trusts, the name it asks for."""

    chain: list[x509.Certificate]  # as served, in this order
    key: Issued
    root: x509.Certificate
    hostname: str
    now: datetime


def _served(
    sans: tuple[str, ...] = ("www.example.com",),
    hostname: str = "www.example.com",
    *,
    depth: int = 1,
    leaf_key: str = "ec256",
    arrange: Callable[[list[x509.Certificate], x509.Certificate], list[x509.Certificate]] = (
        lambda chain, root: chain
    ),
    cn: str | None = None,
    leaf_window: tuple[int, int] | None = None,
    trusted_root_slot: int | None = None,
) -> Callable[[], Served]:
    def build() -> Served:
        now = real_now()
        window = {}
        if leaf_window is not None:
            window = {
                "leaf_not_before": now + leaf_window[0] * DAY,
                "leaf_not_after": now + leaf_window[1] * DAY,
            }
        p = build_pki(sans, depth=depth, leaf_key=leaf_key, cn=cn, base=now, **window)  # type: ignore[arg-type]
        root = p.root.cert
        if trusted_root_slot is not None:
            root = make_ca("Someone Else Root", slot=trusted_root_slot, base=now).cert
        return Served(arrange(p.chain, p.root.cert), p.leaf, root, hostname, now)

    return build


def _through_non_ca() -> Served:
    now = real_now()
    root = make_ca(base=now)
    not_a_ca = make_ca("Not A CA", issuer=root, slot=41, ca=False, base=now)
    leaf = make_leaf(not_a_ca, base=now)
    return Served([leaf.cert, not_a_ca.cert], leaf, root.cert, "www.example.com", now)


def _self_signed() -> Served:
    now = real_now()
    me = make_ca("www.example.com", slot=21, ca=False, sans=["www.example.com"], base=now)
    other_root = make_ca(base=now)
    return Served([me.cert], me, other_root.cert, "www.example.com", now)


SCENARIOS: list[tuple[str, Callable[[], Served], set[Code] | None]] = [
    # id, build, expected error codes (empty: handshake succeeds)
    ("good-ec", _served(), set()),
    ("good-rsa-depth-2", _served(depth=2, leaf_key="rsa2048"), set()),
    ("good-ed25519", _served(leaf_key="ed25519"), set()),
    # (a TLS server refuses to start unless the leaf comes first, so only the
    # intermediates are out of order on the wire)
    ("intermediates-swapped", _served(depth=2, arrange=lambda c, r: [c[0], c[2], c[1]]), set()),
    ("root-served", _served(arrange=lambda c, r: [*c, r]), set()),
    ("leaf-only", _served(depth=2, arrange=lambda c, r: c[:1]), {Code.CHAIN_INCOMPLETE}),
    (
        "middle-missing",
        _served(depth=2, arrange=lambda c, r: [c[0], c[2]]),
        {Code.CHAIN_INCOMPLETE},
    ),
    (
        "untrusted-root-served",
        _served(arrange=lambda c, r: [*c, r], trusted_root_slot=31),
        {Code.UNTRUSTED_ROOT},
    ),
    ("untrusted-root-not-served", _served(trusted_root_slot=31), {Code.CHAIN_INCOMPLETE}),
    ("self-signed", _self_signed, {Code.UNTRUSTED_ROOT}),
    ("issuer-not-a-ca", _through_non_ca, {Code.CHAIN_INCOMPLETE}),
    ("name-mismatch", _served(("oss.example.com",), "cdn.example.com"), {Code.NAME_MISMATCH}),
    ("wildcard-ok", _served(("*.example.com",), "oss.example.com"), set()),
    ("wildcard-apex", _served(("*.example.com",), "example.com"), {Code.WILDCARD_LEVEL}),
    (
        "wildcard-two-deep",
        _served(("*.example.com",), "cdn.oss.example.com"),
        {Code.WILDCARD_LEVEL},
    ),
    ("partial-wildcard", _served(("w*.example.com",), "www.example.com"), {Code.NAME_MISMATCH}),
    ("cn-only", _served((), cn="www.example.com"), {Code.NAME_MISMATCH}),
    ("idn", _served(("xn--bcher-kva.example",), "xn--bcher-kva.example"), set()),
    ("expired", _served(leaf_window=(-90, -1)), {Code.CERT_EXPIRED}),
    ("not-yet-valid", _served(leaf_window=(2, 90)), {Code.CERT_NOT_YET_VALID}),
]
# OpenSSL's own command line allows partial wildcards and falls back to the CN;
# Python's ssl turns both off, like browsers (and like certpilot).
NOT_FOR_OPENSSL_CLI = {"partial-wildcard", "cn-only"}


def _ours(served: Served) -> set[Code]:
    bundle = load_bundle(pem(*served.chain))
    trust = TrustStore.from_certificates([served.root])
    findings = validate(bundle, served.hostname, now=served.now, trust=trust)
    return {f.code for f in findings if f.severity is Severity.ERROR and f.code in JUDGED}


def _handshake(served: Served, tmp_path: Path) -> int | None:
    """None when the client accepts the server, else OpenSSL's verify error number."""
    chain_file, key_file, ca_file = (
        tmp_path / "chain.pem",
        tmp_path / "key.pem",
        tmp_path / "ca.pem",
    )
    chain_file.write_bytes(pem(*served.chain))
    key_file.write_bytes(key_bytes(served.key.key))
    ca_file.write_bytes(pem(served.root))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(chain_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.settimeout(10)
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError):
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(ca_file))
    client_ctx.hostname_checks_common_name = False
    try:
        with (
            socket.create_connection(listener.getsockname(), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname=served.hostname) as tls,
        ):
            tls.recv(2)
        return None
    except ssl.SSLCertVerificationError as exc:
        return int(exc.verify_code)
    finally:
        thread.join(timeout=10)
        listener.close()


def _agree(oracle_errors: set[int], ours: set[Code]) -> None:
    if not oracle_errors:
        assert ours == set(), f"oracle accepts, we found {ours}"
        return
    for number in oracle_errors:
        assert number in OPENSSL_CODES, f"unmapped OpenSSL error {number}"
        assert OPENSSL_CODES[number] & ours, f"oracle error {number}, we found {ours}"


@pytest.mark.parametrize(
    ("build", "expected"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS]
)
def test_python_ssl_handshake_agrees(
    build: Callable[[], Served], expected: set[Code], tmp_path: Path
) -> None:
    served = build()
    ours = _ours(served)
    assert ours == expected
    code = _handshake(served, tmp_path)
    _agree(set() if code is None else {code}, ours)


OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not on PATH")
@pytest.mark.parametrize(
    ("build", "expected"),
    [s[1:] for s in SCENARIOS if s[0] not in NOT_FOR_OPENSSL_CLI],
    ids=[s[0] for s in SCENARIOS if s[0] not in NOT_FOR_OPENSSL_CLI],
)
def test_openssl_verify_agrees(
    build: Callable[[], Served], expected: set[Code], tmp_path: Path
) -> None:
    served = build()
    ours = _ours(served)
    assert ours == expected
    # openssl wants the leaf on its own
    bundle = load_bundle(pem(*served.chain))
    leaf, rest = bundle.leaf, [c for c in served.chain if c != bundle.leaf]
    (tmp_path / "leaf.pem").write_bytes(pem(leaf))
    (tmp_path / "root.pem").write_bytes(pem(served.root))
    argv = [str(OPENSSL), "verify", "-CAfile", str(tmp_path / "root.pem")]
    if rest:
        (tmp_path / "untrusted.pem").write_bytes(pem(*rest))
        argv += ["-untrusted", str(tmp_path / "untrusted.pem")]
    argv += ["-verify_hostname", served.hostname, "-attime", str(int(served.now.timestamp()))]
    argv.append(str(tmp_path / "leaf.pem"))
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    errors = {
        int(line.split()[1])
        for line in (result.stdout + result.stderr).splitlines()
        if line.startswith("error ") and line.split()[1].isdigit()
    }
    assert (result.returncode == 0) is (not errors), result.stdout + result.stderr
    _agree(errors, ours)
