"""TrustStore: Mozilla roots by default, a CA bundle file, lazy loading, issuer lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from certpilot.certs import CertificateError
from certpilot.certs.trust import CA_BUNDLE_ENV, TrustStore, TrustStoreError
from tests.pki import build_pki, make_ca, pem


def test_default_store_is_mozilla_and_shared() -> None:
    store = TrustStore.default()
    assert store is TrustStore.default()
    assert len(store) > 100
    assert "Mozilla" in store.description
    # a root finds itself as an anchor
    anchor = store.certificates[0]
    assert store.contains(anchor)


def test_bundle_file_is_read_lazily(tmp_path: Path) -> None:
    p = build_pki(depth=1)
    path = tmp_path / "ca.pem"
    store = TrustStore.from_file(path)  # nothing there yet: not read until used
    path.write_bytes(b"# comment\n" + pem(p.root.cert))
    assert store.find_issuer(p.intermediates[0].cert) == p.root.cert
    assert store.find_issuer(p.leaf.cert) is None
    assert store.contains(p.root.cert) and not store.contains(p.leaf.cert)
    assert store.description == str(path)


def test_reissued_root_with_same_key_is_the_same_anchor() -> None:
    original = make_ca(slot=11)
    reissued = make_ca(slot=11)  # same name, same key, new serial and signature
    assert original.cert != reissued.cert
    assert TrustStore.from_certificates([original.cert]).contains(reissued.cert)
    assert not TrustStore.from_certificates([make_ca(slot=12).cert]).contains(reissued.cert)


def test_from_env(tmp_path: Path) -> None:
    p = build_pki(depth=0)
    path = tmp_path / "ca.pem"
    path.write_bytes(pem(p.root.cert))
    assert TrustStore.from_env({CA_BUNDLE_ENV: str(path)}).certificates == (p.root.cert,)
    assert TrustStore.from_env({CA_BUNDLE_ENV: " "}) is TrustStore.default()
    assert TrustStore.from_env({}) is TrustStore.default()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(None, "no such file"), (b"", "empty"), (b"just text\n", "no PEM certificate")],
    ids=["missing", "empty", "no-certificates"],
)
def test_unusable_bundle(tmp_path: Path, content: bytes | None, fragment: str) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    store = TrustStore.from_file(path)
    with pytest.raises(TrustStoreError, match=fragment) as caught:
        store.load()
    assert isinstance(caught.value, CertificateError) and "\n" not in str(caught.value)
