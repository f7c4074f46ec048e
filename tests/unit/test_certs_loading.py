"""Reading certificates and keys in every supported format, and refusing bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from certpilot import certs
from certpilot.certs import InputFormat, detect_format, load_bundle, load_private_key
from tests.pki import (
    KEY_KINDS,
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

PW = b"correct horse"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return build_pki(("www.example.com", "example.com"), depth=2)


# ------------------------------------------------------------------ certificate formats

FORMATS: list[tuple[str, Callable[[Pki], bytes], InputFormat, int, bool]] = [
    # id, encode(pki), expected format, chain length, key included
    ("pem-chain", lambda p: p.chain_pem(), InputFormat.PEM, 3, False),
    ("pem-leaf-only", lambda p: pem(p.leaf.cert), InputFormat.PEM, 1, False),
    ("pem-crlf", lambda p: p.chain_pem().replace(b"\n", b"\r\n"), InputFormat.PEM, 3, False),
    (
        "pem-with-bag-attributes",
        lambda p: b"Bag Attributes\n    friendlyName: x\nsubject=/CN=x\n" + p.chain_pem(),
        InputFormat.PEM,
        3,
        False,
    ),
    (
        "pem-x509-label",
        lambda p: pem(p.leaf.cert).replace(b"CERTIFICATE", b"X509 CERTIFICATE"),
        InputFormat.PEM,
        1,
        False,
    ),
    (
        "pem-combined-with-key",
        lambda p: p.chain_pem() + key_bytes(p.leaf.key),
        InputFormat.PEM,
        3,
        True,
    ),
    ("der-leaf", lambda p: der(p.leaf.cert), InputFormat.DER, 1, False),
    ("p7b-der", lambda p: p7b(p.chain), InputFormat.PKCS7_DER, 3, False),
    ("p7b-pem", lambda p: p7b(p.chain, as_pem=True), InputFormat.PKCS7_PEM, 3, False),
    (
        "p12-no-password",
        lambda p: p12(p.leaf.key, p.leaf.cert, p.chain[1:]),
        InputFormat.PKCS12,
        3,
        True,
    ),
    (
        "p12-password",
        lambda p: p12(p.leaf.key, p.leaf.cert, p.chain[1:], PW),
        InputFormat.PKCS12,
        3,
        True,
    ),
    ("p12-certs-only", lambda p: p12(None, None, p.chain), InputFormat.PKCS12, 3, False),
]


@pytest.mark.parametrize(
    ("encode", "fmt", "length", "has_key"), [f[1:] for f in FORMATS], ids=[f[0] for f in FORMATS]
)
def test_every_format_loads_to_the_same_chain(
    pki: Pki, encode: Callable[[Pki], bytes], fmt: InputFormat, length: int, has_key: bool
) -> None:
    # given the chain encoded one way
    data = encode(pki)
    # when detected and loaded
    assert detect_format(data) is fmt
    bundle = load_bundle(data, PW)
    # then it is the same leaf-first chain, with its key when the input carried one
    assert bundle.source_format is fmt
    assert list(bundle.chain) == pki.chain[:length]
    assert (bundle.key is not None) is has_key
    if bundle.key is not None:
        assert certs.public_key_matches(bundle.leaf, bundle.key)
    # and the PEM conversion round-trips to a plain PEM bundle
    converted = load_bundle(bundle.to_pem_bundle().encode())
    assert converted.chain == bundle.chain and converted.source_format is InputFormat.PEM


def test_pem_bundle_never_contains_the_key(pki: Pki) -> None:
    bundle = load_bundle(p12(pki.leaf.key, pki.leaf.cert, pki.chain[1:], PW), PW)
    text = bundle.to_pem_bundle().encode()
    assert all(marker not in text for marker in key_markers(pki.leaf.key))
    assert "key" not in repr(bundle).lower().replace("key=", "")


# ------------------------------------------------------------------ private keys

KEY_ENCODINGS = [
    # id, kind, fmt, pem?, password
    ("rsa-pkcs1-pem", "rsa2048", "traditional", True, None),
    ("rsa-pkcs8-pem", "rsa2048", "pkcs8", True, None),
    ("rsa-pkcs8-der", "rsa2048", "pkcs8", False, None),
    ("rsa-pkcs1-der", "rsa2048", "traditional", False, None),
    ("rsa-pkcs8-encrypted", "rsa2048", "pkcs8", True, PW),
    ("rsa-pkcs1-encrypted-legacy", "rsa2048", "traditional", True, PW),
    ("ec-sec1-pem", "ec256", "traditional", True, None),
    ("ec-pkcs8-pem", "ec256", "pkcs8", True, None),
    ("ec-pkcs8-der-encrypted", "ec256", "pkcs8", False, PW),
    ("ec384-pkcs8-pem", "ec384", "pkcs8", True, None),
    ("ed25519-pkcs8-pem", "ed25519", "pkcs8", True, None),
    ("ed25519-pkcs8-der", "ed25519", "pkcs8", False, None),
    ("ed25519-encrypted", "ed25519", "pkcs8", True, PW),
]


@pytest.mark.parametrize(
    ("kind", "fmt", "as_pem", "password"),
    [k[1:] for k in KEY_ENCODINGS],
    ids=[k[0] for k in KEY_ENCODINGS],
)
def test_private_keys_load_in_every_encoding(
    kind: str, fmt: str, as_pem: bool, password: bytes | None
) -> None:
    key = make_key(kind, 7)
    data = key_bytes(key, fmt, as_pem=as_pem, password=password)
    loaded = load_private_key(data, password)
    assert certs.key_description(loaded) == certs.key_description(key)
    assert loaded.public_key() == key.public_key()


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_key_inside_pkcs12(kind: str) -> None:
    p = build_pki(leaf_key=kind, depth=0)
    loaded = load_private_key(p12(p.leaf.key, p.leaf.cert, (), PW), PW)
    assert certs.public_key_matches(p.leaf.cert, loaded)


# ------------------------------------------------------------------ refusals

REFUSALS: list[tuple[str, Callable[[Pki], bytes], bytes | None, type[Exception]]] = [
    ("empty", lambda p: b"", None, certs.EmptyInput),
    ("whitespace", lambda p: b"  \n\t\n", None, certs.EmptyInput),
    ("too-large", lambda p: p.chain_pem() + b"#" * (1024 * 1024), None, certs.InputTooLarge),
    ("binary-garbage", lambda p: bytes(range(1, 256)) * 4, None, certs.UnrecognizedFormat),
    (
        "der-like-garbage",
        lambda p: b"\x30\x82\x01\x00" + b"\x00" * 256,
        None,
        certs.UnrecognizedFormat,
    ),
    (
        "text-no-pem",
        lambda p: b"hello, this is not a certificate\n",
        None,
        certs.UnrecognizedFormat,
    ),
    ("truncated-pem", lambda p: p.chain_pem()[:700], None, certs.TruncatedPem),
    ("truncated-second-block", lambda p: p.chain_pem()[:-300], None, certs.TruncatedPem),
    ("end-without-begin", lambda p: p.chain_pem()[40:], None, certs.TruncatedPem),
    (
        "corrupt-base64",
        lambda p: pem(p.leaf.cert).replace(b"M", b"!", 3),
        None,
        certs.CorruptCertificate,
    ),
    (
        "cut-der-inside-pem",
        lambda p: (
            b"-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n"
            b"-----END CERTIFICATE-----\n"
        ),
        None,
        certs.CorruptCertificate,
    ),
    ("truncated-der", lambda p: der(p.leaf.cert)[:200], None, certs.UnrecognizedFormat),
    ("key-as-cert-pem", lambda p: key_bytes(p.leaf.key), None, certs.KeyGivenAsCertificate),
    (
        "key-as-cert-der",
        lambda p: key_bytes(make_key("rsa2048", 7), as_pem=False),
        None,
        certs.KeyGivenAsCertificate,
    ),
    (
        "encrypted-key-as-cert",
        lambda p: key_bytes(p.leaf.key, password=PW),
        None,
        certs.KeyGivenAsCertificate,
    ),
    (
        "csr",
        lambda p: b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        None,
        certs.NotACertificate,
    ),
    (
        "p12-wrong-password",
        lambda p: p12(p.leaf.key, p.leaf.cert, (), PW),
        b"wrong",
        certs.BadPassword,
    ),
    (
        "p12-password-missing",
        lambda p: p12(p.leaf.key, p.leaf.cert, (), PW),
        None,
        certs.PasswordRequired,
    ),
    ("p12-key-only", lambda p: p12(p.leaf.key, None, ()), None, certs.NoCertificate),
    (
        "combined-encrypted-key-no-password",
        lambda p: p.chain_pem() + key_bytes(p.leaf.key, password=PW),
        None,
        certs.PasswordRequired,
    ),
]


@pytest.mark.parametrize(
    ("encode", "password", "error"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_bad_certificate_input_is_refused_narrowly(
    pki: Pki, encode: Callable[[Pki], bytes], password: bytes | None, error: type[Exception]
) -> None:
    data = encode(pki)
    with pytest.raises(error) as caught:
        load_bundle(data, password)
    message = str(caught.value)
    # then: one line, under the common base, and no key material
    assert isinstance(caught.value, certs.CertificateError)
    assert message and "\n" not in message and len(message) <= 300
    for marker in key_markers(pki.leaf.key)[1:]:
        assert marker.decode() not in message


KEY_REFUSALS: list[tuple[str, Callable[[Pki], bytes], bytes | None, type[Exception]]] = [
    ("cert-as-key-pem", lambda p: pem(p.leaf.cert), None, certs.CertificateGivenAsKey),
    ("cert-as-key-der", lambda p: der(p.leaf.cert), None, certs.CertificateGivenAsKey),
    ("p7b-as-key", lambda p: p7b(p.chain), None, certs.CertificateGivenAsKey),
    (
        "encrypted-no-password",
        lambda p: key_bytes(p.leaf.key, password=PW),
        None,
        certs.PasswordRequired,
    ),
    (
        "encrypted-wrong-password",
        lambda p: key_bytes(p.leaf.key, password=PW),
        b"x",
        certs.BadPassword,
    ),
    (
        "der-encrypted-wrong-password",
        lambda p: key_bytes(p.leaf.key, as_pem=False, password=PW),
        b"x",
        certs.BadPassword,
    ),
    ("p12-without-key", lambda p: p12(None, None, p.chain), None, certs.NotAPrivateKey),
    ("two-keys", lambda p: key_bytes(p.leaf.key) * 2, None, certs.NotAPrivateKey),
    ("garbage", lambda p: b"\x8f" + bytes(range(64)), None, certs.UnrecognizedFormat),
    (
        "corrupt-key",
        lambda p: b"-----BEGIN PRIVATE " + b"KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        None,
        certs.CorruptKey,
    ),
    (
        "openssh",
        lambda p: (
            b"-----BEGIN OPENSSH PRIVATE " + b"KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
        ),
        None,
        certs.UnsupportedKey,
    ),
    ("empty", lambda p: b"", None, certs.EmptyInput),
]


@pytest.mark.parametrize(
    ("encode", "password", "error"),
    [r[1:] for r in KEY_REFUSALS],
    ids=[r[0] for r in KEY_REFUSALS],
)
def test_bad_key_input_is_refused_narrowly(
    pki: Pki, encode: Callable[[Pki], bytes], password: bytes | None, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        load_private_key(encode(pki), password)
    message = str(caught.value)
    assert "\n" not in message
    for marker in key_markers(pki.leaf.key):
        assert marker.decode() not in message or marker == b"PRIVATE KEY"


def test_read_input_limits_and_missing(tmp_path: Path) -> None:
    with pytest.raises(certs.InputNotFound):
        certs.read_input(tmp_path / "missing.pem")
    with pytest.raises(certs.InputUnreadable):
        certs.read_input(tmp_path)
    big = tmp_path / "big.pem"
    big.write_bytes(b"x" * (certs.MAX_INPUT_BYTES + 1))
    with pytest.raises(certs.InputTooLarge):
        certs.read_input(big)
    exact = tmp_path / "exact.pem"
    exact.write_bytes(b"x" * certs.MAX_INPUT_BYTES)
    assert len(certs.read_input(exact)) == certs.MAX_INPUT_BYTES


def test_load_pem_certificates_skips_invalid_blocks(pki: Pki) -> None:
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    data = pem(pki.root.cert) + broken + key_bytes(pki.leaf.key)
    assert certs.load_pem_certificates(data, skip_invalid=True) == [pki.root.cert]
    with pytest.raises(certs.CorruptCertificate):
        certs.load_pem_certificates(data)
