"""probe: real TLS handshakes with SNI against a local server with test-made certificates."""

from __future__ import annotations

import hashlib
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certpilot.core.findings import Code
from certpilot.probe.tls import (
    ServedCert,
    Verification,
    Watch,
    certificate_problem,
    parse_hostport,
    poll_rounds,
    probe_http,
    probe_https,
    restore_problem,
    rollback_problem,
    served_finding_code,
    served_problem,
)
from tests.unit.fakes import FakeClock

NOW = datetime.now(timezone.utc)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _cert(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    sans: tuple[str, ...] = (),
    days: int = 30,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    root_pem: Path
    inter: x509.Certificate
    inter_key: ec.EllipticCurvePrivateKey
    directory: Path

    def leaf(self, sans: tuple[str, ...], *, chain: bool = True) -> tuple[Path, str]:
        """Write a leaf (+ intermediate) and key; return (pem path, leaf sha256)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(_name(sans[0]), key, self.inter.subject, self.inter_key, ca=False, sans=sans)
        pem = cert.public_bytes(serialization.Encoding.PEM)
        if chain:
            pem += self.inter.public_bytes(serialization.Encoding.PEM)
        pem += key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = self.directory / f"{sans[0].replace('*', 'star')}-{chain}.pem"
        path.write_bytes(pem)
        der = cert.public_bytes(serialization.Encoding.DER)
        return path, hashlib.sha256(der).hexdigest().upper()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("Probe Test Root", "Probe Test")
    root = _cert(root_name, root_key, root_name, root_key, ca=True, days=365)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _cert(_name("Probe Test CA", "Probe Test"), inter_key, root_name, root_key, ca=True)
    root_pem = directory / "root.pem"
    root_pem.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return Pki(root_pem, inter, inter_key, directory)


class TlsServer:
    """Serves a certificate per SNI name; completes handshakes and closes."""

    def __init__(self, default: Path) -> None:
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.default = self._context(default)
        self.default.sni_callback = self._pick
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def edge(self) -> str:
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def _context(pem: Path) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pem)
        return context

    def serve(self, name: str, pem: Path) -> None:
        self.contexts[name] = self._context(pem)

    def _pick(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> None:
        if name in self.contexts:
            sock.context = self.contexts[name]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                with self.default.wrap_socket(conn, server_side=True):
                    self.handshakes += 1
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def server(pki: Pki) -> Iterator[TlsServer]:
    default, _ = pki.leaf(("default.invalid",))
    srv = TlsServer(default)
    yield srv
    srv.close()


def test_served_certificate_is_described(pki: Pki, server: TlsServer) -> None:
    # given the edge serves a wildcard with its intermediate for www.example.com
    pem, fingerprint = pki.leaf(("*.example.com",))
    server.serve("www.example.com", pem)
    # when probed with SNI through the edge, trusting the test root
    served = probe_https("www.example.com", edge=server.edge, ca_bundle=str(pki.root_pem))
    # then the leaf, its chain and its name are good
    assert served.fingerprint == fingerprint
    assert (served.chain_ok, served.name_ok, served.error) == (True, True, None)
    assert served.issuer == "Probe Test"
    assert served.sans == ("*.example.com",)
    assert served.not_after is not None and served.not_after > NOW
    assert served.ok and served_problem(served, fingerprint, now=NOW) == ""
    # and its SHA-1 is known too (OSS ListCname reports that one), for rollback checks
    der = x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(serialization.Encoding.DER)
    assert served.fingerprint_sha1 == hashlib.sha1(der).hexdigest().upper()  # noqa: S324


def test_leaf_only_chain_fails_verification_but_is_still_identified(
    pki: Pki, server: TlsServer
) -> None:
    pem, fingerprint = pki.leaf(("*.example.com",), chain=False)
    server.serve("www.example.com", pem)
    served = probe_https("www.example.com", edge=server.edge, ca_bundle=str(pki.root_pem))
    assert served.fingerprint == fingerprint
    assert not served.chain_ok and served.name_ok
    assert served.error and "verify failed" in served.error
    assert "chain" in served_problem(served, fingerprint, now=NOW) or "verify" in served_problem(
        served, fingerprint, now=NOW
    )


def test_untrusted_when_the_default_store_does_not_know_the_root(
    pki: Pki, server: TlsServer
) -> None:
    pem, _ = pki.leaf(("*.example.com",))
    server.serve("www.example.com", pem)
    served = probe_https("www.example.com", edge=server.edge)  # certifi
    assert not served.chain_ok


def test_name_is_judged_with_one_label_wildcards(pki: Pki, server: TlsServer) -> None:
    pem, fingerprint = pki.leaf(("*.example.com",))
    server.serve("a.b.example.com", pem)
    served = probe_https("a.b.example.com", edge=server.edge, ca_bundle=str(pki.root_pem))
    assert served.chain_ok and not served.name_ok
    assert (
        served_problem(served, fingerprint, now=NOW)
        == "served certificate does not cover the domain"
    )


def test_another_certificate_is_a_mismatch(pki: Pki, server: TlsServer) -> None:
    served = probe_https("www.example.com", edge=server.edge, ca_bundle=str(pki.root_pem))
    assert served_problem(served, "00" * 32, now=NOW) == "edge serves another certificate"


def test_nothing_listening_is_an_error_not_an_exception() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    served = probe_https("www.example.com", edge=f"127.0.0.1:{port}", timeout=1)
    assert served.fingerprint is None and served.error
    assert not served.ok
    assert served_problem(served, "00" * 32, now=NOW) == served.error


def _served(fingerprint: str) -> ServedCert:
    return ServedCert("d.example.com", fingerprint, chain_ok=True, name_ok=True)


def wait_on(
    clock: FakeClock,
    problem: Callable[[ServedCert], str],
    probe: Callable[[str], ServedCert],
    *,
    deadline: float,
) -> Verification:
    """`poll_rounds` watching d.example.com alone, answered by `probe`, on the fake `clock`."""
    watch = Watch("d.example.com", problem, clock.clock(), deadline)
    return poll_rounds({"d": watch}, workers=1, probe=probe, clock=clock.clock, sleep=clock.sleep)[
        "d"
    ]


def test_wait_backs_off_exponentially_until_the_new_certificate_is_served() -> None:
    # given an edge that serves the old certificate for the first four probes
    clock = FakeClock()
    answers = iter([_served("OLD")] * 4 + [_served("NEW")])
    # when waiting for NEW
    result = wait_on(clock, certificate_problem("new"), lambda _: next(answers), deadline=60)
    # then it is verified on the fifth probe after doubling waits
    assert result.ok and result.attempts == 5 and result.reason == ""
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8])


def test_wait_gives_up_at_the_deadline_with_the_reason() -> None:
    clock = FakeClock()
    result = wait_on(clock, certificate_problem("NEW"), lambda _: _served("OLD"), deadline=10)
    assert not result.ok
    assert result.reason == "edge serves another certificate"
    assert clock.now == pytest.approx(10)
    assert max(clock.sleeps) <= 5.0


def test_wait_with_zero_deadline_probes_once() -> None:
    clock = FakeClock()
    result = wait_on(clock, certificate_problem("NEW"), lambda _: _served("OLD"), deadline=0)
    assert (result.ok, result.attempts, clock.sleeps) == (False, 1, [])


def test_wait_against_a_live_server(pki: Pki, server: TlsServer) -> None:
    pem, fingerprint = pki.leaf(("*.example.com",))
    server.serve("www.example.com", pem)
    watch = Watch("www.example.com", certificate_problem(fingerprint.lower()), time.monotonic(), 2)
    result = poll_rounds({"w": watch}, edge=server.edge, ca_bundle=str(pki.root_pem))["w"]
    assert result.ok and result.attempts == 1


class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(301)
        self.send_header("Location", f"https://{self.headers['Host']}{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_probe_http_reports_status_and_location_without_following() -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        status, location, headers = probe_http(
            "www.example.com", edge=f"127.0.0.1:{httpd.server_address[1]}", path="/a.png"
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (status, location) == (301, "https://www.example.com/a.png")
    assert headers["content-length"] == "0"


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("127.0.0.1:8443", 443, ("127.0.0.1", 8443)),
        ("example.com", 443, ("example.com", 443)),
        ("[::1]:8443", 443, ("::1", 8443)),
        ("[::1]", 80, ("::1", 80)),
    ],
)
def test_parse_hostport(text: str, default: int, expected: tuple[str, int]) -> None:
    assert parse_hostport(text, default) == expected


def test_parse_hostport_rejects_bad_ports() -> None:
    with pytest.raises(ValueError):
        parse_hostport("h:70000", 443)
    with pytest.raises(ValueError):
        parse_hostport("h:abc", 443)


@pytest.mark.parametrize(
    ("served", "code"),
    [
        (ServedCert("a.example.com", "AA", chain_ok=True, name_ok=True), None),
        (ServedCert("a.example.com", error="refused"), None),
        (ServedCert("a.example.com", "AA", verify_code=10), Code.CERT_EXPIRED),
        (ServedCert("a.example.com", "AA", verify_code=9), Code.CERT_NOT_YET_VALID),
        (ServedCert("a.example.com", "AA", verify_code=20), Code.CHAIN_INCOMPLETE),
        (ServedCert("a.example.com", "AA", verify_code=19), Code.UNTRUSTED_ROOT),
        (ServedCert("a.example.com", "AA", verify_code=66), Code.WEAK_KEY),
        (ServedCert("a.example.com", "AA", verify_code=68), Code.WEAK_SIGNATURE),
        (ServedCert("a.example.com", "AA", verify_code=12345), None),
        (
            ServedCert("a.b.example.com", "AA", sans=("*.example.com",), chain_ok=True),
            Code.WILDCARD_LEVEL,
        ),
        (
            ServedCert("a.example.org", "AA", sans=("*.example.com",), chain_ok=True),
            Code.NAME_MISMATCH,
        ),
    ],
)
def test_served_finding_code(served: ServedCert, code: Code | None) -> None:
    assert served_finding_code(served) is code


def test_verify_code_is_recorded_for_a_broken_chain(pki: Pki, server: TlsServer) -> None:
    pem, _ = pki.leaf(("*.example.com",), chain=False)
    server.serve("www.example.com", pem)
    served = probe_https("www.example.com", edge=server.edge, ca_bundle=str(pki.root_pem))
    assert served_finding_code(served) is Code.CHAIN_INCOMPLETE


NEW_FP = "AA" * 32
OLD_FP = "BB" * 32
OLD_SHA1 = "CC" * 20


def _edge(fingerprint: str | None, sha1: str | None = None) -> ServedCert:
    if fingerprint is None:
        return ServedCert("d.example.com", error="TLS error: unrecognized name")
    return ServedCert("d.example.com", fingerprint, fingerprint_sha1=sha1)


@pytest.mark.parametrize(
    ("served", "previous", "expect_certificate", "problem"),
    [
        # restored: the previous certificate is back (by SHA-256 or by OSS's SHA-1)
        (_edge(OLD_FP), OLD_FP, True, ""),
        (_edge(OLD_FP, OLD_SHA1), "cc:" * 19 + "cc", True, ""),
        (_edge(OLD_FP), None, True, ""),  # previous unknown (CDN): the new one is gone
        # removed: the domain had no certificate, and serves none again
        (_edge(None), None, False, ""),
        # not (yet) restored
        (_edge(NEW_FP), OLD_FP, True, "edge still serves the rolled-back certificate"),
        (_edge(NEW_FP), None, False, "edge still serves the rolled-back certificate"),
        (_edge("DD" * 32), OLD_FP, True, "edge serves neither"),
        (_edge(None), OLD_FP, True, "TLS error: unrecognized name"),
    ],
)
def test_restore_problem(
    served: ServedCert, previous: str | None, expect_certificate: bool, problem: str
) -> None:
    found = restore_problem(
        served, NEW_FP.lower(), previous=previous, expect_certificate=expect_certificate
    )
    assert found.startswith(problem) and bool(found) is bool(problem)


def test_wait_for_restore_backs_off_until_the_edge_serves_the_previous_certificate() -> None:
    # given an edge that still serves the rolled-back certificate for two probes
    clock = FakeClock()
    answers = iter([_edge(NEW_FP), _edge(NEW_FP), _edge(OLD_FP)])
    # when waiting for the restore
    result = wait_on(
        clock,
        rollback_problem(NEW_FP, previous=OLD_FP, expect_certificate=True),
        lambda _: next(answers),
        deadline=30,
    )
    # then it is confirmed on the third probe
    assert result.ok and result.attempts == 3
    assert clock.sleeps == pytest.approx([0.1, 0.2])


def test_wait_for_restore_reports_an_edge_stuck_on_the_new_certificate() -> None:
    clock = FakeClock()
    result = wait_on(
        clock,
        rollback_problem(NEW_FP, previous=None, expect_certificate=False),
        lambda _: _edge(NEW_FP),
        deadline=2,
    )
    assert not result.ok and result.reason == "edge still serves the rolled-back certificate"
    assert clock.now == pytest.approx(2)


def _fine_from(
    times: dict[str, float], clock: FakeClock, probed: list[tuple[float, str]]
) -> Callable[[str], ServedCert]:
    """A probe whose edge serves NEW for `domain` from `times[domain]` on, else OLD."""

    def probe(domain: str) -> ServedCert:
        probed.append((clock.now, domain))
        return _served("NEW" if clock.now >= times[domain] else "OLD")

    return probe


def _watch(domain: str, deadline: float, started: float = 0.0) -> Watch:
    return Watch(domain, lambda served: served_problem(served, "NEW", now=NOW), started, deadline)


def test_poll_rounds_probes_each_pending_domain_once_per_round() -> None:
    # given three domains the edge serves at 0, 0.25 and 0.6 s
    clock = FakeClock()
    probed: list[tuple[float, str]] = []
    times = {"a": 0.0, "b": 0.25, "c": 0.6}
    done: list[str] = []
    # when they are watched together
    results = poll_rounds(
        {name: _watch(name, 10) for name in times},
        probe=_fine_from(times, clock, probed),
        workers=4,
        clock=clock.clock,
        sleep=clock.sleep,
        on_result=lambda key, _: done.append(key),
    )
    # then a round probes only the pending ones, once each, and each leaves when served
    assert sorted(probed) == [
        (0.0, "a"), (0.0, "b"), (0.0, "c"),
        (0.1, "b"), (0.1, "c"),
        (pytest.approx(0.3), "b"), (pytest.approx(0.3), "c"),
        (pytest.approx(0.7), "c"),
    ]  # fmt: skip
    assert {k: (v.ok, v.attempts) for k, v in results.items()} == {
        "a": (True, 1),
        "b": (True, 3),
        "c": (True, 4),
    }
    assert done == ["a", "b", "c"]


def test_poll_rounds_deadlines_count_from_each_watch_start() -> None:
    # given two domains never served: one written at 0 with 1 s, one at 0.5 with 2 s
    clock = FakeClock()
    probed: list[tuple[float, str]] = []
    times = {"early": 99.0, "late": 99.0}
    results = poll_rounds(
        {"early": _watch("early", 1.0), "late": _watch("late", 2.0, started=0.5)},
        probe=_fine_from(times, clock, probed),
        clock=clock.clock,
        sleep=clock.sleep,
    )
    # then each gives up at its own deadline, probed right at it, with the reason
    assert results["early"].elapsed == pytest.approx(1.0)
    assert results["late"].elapsed == pytest.approx(2.0)
    assert clock.now == pytest.approx(2.5)
    assert {v.reason for v in results.values()} == {"edge serves another certificate"}
    assert max(clock.sleeps) <= 1.0


def test_poll_rounds_counts_a_probe_that_raises_as_not_served() -> None:
    def broken(domain: str) -> ServedCert:
        raise RuntimeError("bug")

    clock = FakeClock()
    results = poll_rounds(
        {"a": _watch("a", 0.0)}, probe=broken, clock=clock.clock, sleep=clock.sleep
    )
    assert not results["a"].ok and results["a"].reason == "probe failed: RuntimeError"


@pytest.mark.parametrize(
    ("offset", "problem"),
    [
        (timedelta(seconds=-1), ""),
        (timedelta(0), ""),  # RFC 5280: valid through notAfter
        (timedelta(microseconds=1), "served certificate has expired"),
    ],
)
def test_served_expiry_is_judged_at_the_time_given_not_the_clock(
    offset: timedelta, problem: str
) -> None:
    # given the edge serves the expected certificate, whose notAfter is long past
    not_after = datetime(2001, 1, 1, tzinfo=timezone.utc)
    served = ServedCert(
        "d.example.com", "AB" * 32, not_after=not_after, chain_ok=True, name_ok=True
    )
    # when judged `offset` after its notAfter, then the given time decides, not today
    assert served_problem(served, "ab" * 32, now=not_after + offset) == problem


def test_wait_for_certificate_judges_expiry_with_its_wall_clock() -> None:
    not_after = datetime(2001, 1, 1, tzinfo=timezone.utc)
    served = ServedCert(
        "d.example.com", "AB" * 32, not_after=not_after, chain_ok=True, name_ok=True
    )
    clock = FakeClock()
    result = wait_on(
        clock,
        certificate_problem("AB" * 32, wall_clock=lambda: not_after),
        lambda _: served,
        deadline=0,
    )
    assert result.ok
