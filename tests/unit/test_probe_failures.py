"""Probes never stop a run: probe_https describes an unreadable certificate as an error,
engine.probe_served leaves out a domain whose probe raises anyway, and poll_rounds
starts no probe past the run's deadline, even within a round."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certpilot.jobs.deploy_cert import engine
from certpilot.probe import tls as probe
from certpilot.probe.tls import OUT_OF_TIME, ServedCert, Watch, poll_rounds, probe_https
from tests.unit.fakes import FakeClock

NOW = datetime.now(timezone.utc)
SAN_OID = b"\x06\x03\x55\x1d\x11"  # subjectAltName, DER
IAN_OID = b"\x06\x03\x55\x1d\x12"  # issuerAltName, DER


def duplicate_san_leaf() -> bytes:
    """A leaf (DER) carrying subjectAltName twice, as a broken CA could issue it: the
    issuerAltName of the same content re-labelled (the signature is not checked here)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.com")])
    dns = [x509.DNSName("a.example.com")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(dns), critical=False)
        .add_extension(x509.IssuerAlternativeName(dns), critical=False)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    assert der.count(IAN_OID) == 1
    return der.replace(IAN_OID, SAN_OID)


def test_a_served_leaf_with_a_duplicate_extension_is_an_error_not_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an edge serving a leaf whose extensions cannot be parsed
    der = duplicate_san_leaf()
    with pytest.raises(x509.DuplicateExtension):
        _ = x509.load_der_x509_certificate(der).extensions
    monkeypatch.setattr(probe, "_handshake", lambda *_args: (der, ()))
    # when it is probed
    served = probe_https("a.example.com", edge="127.0.0.1:1")
    # then the result says so and still identifies what was served
    assert served.error is not None and served.error.startswith("unparsable certificate")
    assert "DuplicateExtension" in served.error
    assert served.fingerprint == hashlib.sha256(der).hexdigest().upper()
    assert not served.ok


def test_probe_served_leaves_out_a_domain_whose_probe_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given two domains: one's probe raises, the other's edge serves a wrong name
    def fake_probe(domain: str, **_: Any) -> ServedCert:
        if domain == "broken.example.com":
            raise ValueError("duplicate extension")
        return ServedCert(domain, "AA" * 32, chain_ok=True, name_ok=False)

    monkeypatch.setattr(probe, "probe_https", fake_probe)
    settings = SimpleNamespace(
        edge_https=None, ca_bundle=None, connect_timeout=1.0, read_timeout=1.0, concurrency=4
    )
    deps: Any = SimpleNamespace(settings=settings)
    # when the engine asks the edge about both
    found = engine.probe_served(["broken.example.com", "fine.example.com"], deps)
    # then the broken one is left out and the other is still judged
    assert list(found) == ["fine.example.com"]
    assert found["fine.example.com"].problem == "NAME_MISMATCH"


def test_poll_rounds_starts_no_probe_past_the_run_deadline_even_within_a_round() -> None:
    # given five watches with a long deadline, one probe at a time, each taking 1 s
    clock = FakeClock()
    probed: list[str] = []

    def slow(name: str) -> ServedCert:
        probed.append(name)
        clock.now += 1.0
        return ServedCert(name, error="timed out")

    watches = {
        f"d{i}": Watch(f"d{i}.example.com", lambda s: s.error or "", 0.0, 100.0) for i in range(5)
    }
    # when the run's deadline falls in the middle of the first round
    results = poll_rounds(
        watches, probe=slow, workers=1, clock=clock.clock, sleep=clock.sleep, stop_at=2.5
    )
    # then three probes were made, none after the deadline, and every watch has ended
    assert len(probed) == 3 and clock.now == pytest.approx(3.0)
    assert clock.sleeps == []
    assert set(results) == set(watches)
    assert [results[f"d{i}"].attempts for i in range(5)] == [1, 1, 1, 0, 0]
    assert results["d4"].reason == OUT_OF_TIME and not results["d4"].ok
    assert results["d0"].reason == "timed out"
