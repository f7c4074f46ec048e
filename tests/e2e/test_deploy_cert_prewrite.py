"""deploy-cert refuses, before any write, a certificate a browser would reject.

Each candidate is one CAS's metadata does not give away (CAS lists names and dates,
not key sizes, digests or signatures): the pre-write check reads its PEM chain and
verifies it against the trust store. The tests assert the refusal's finding code,
that not one certificate write reached the emulator, and (with Python's `ssl`, not
certpilot's probe) that the edge still serves what it served before.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.e2e.deploy_helpers import (
    bound,
    cloudevent,
    edge_view,
    invoke,
    issue,
    outcomes,
    use_estate,
)
from tests.pki import Issued, make_key, make_leaf, real_now

pytestmark = pytest.mark.e2e

OSS_DOMAIN = "static.example.com"
FIRST_BINDING = "docs.example.com"  # no certificate yet
CDN_DOMAIN = "cdn.example.com"
DOMAINS = (OSS_DOMAIN, FIRST_BINDING, CDN_DOMAIN)
# Every call that writes a certificate binding or a CDN certificate.
WRITES = ("oss:PutCname", "oss:DeleteCname", "cdn:SetCdnDomainSSLCertificate")

ESTATE: dict[str, Any] = {
    "certificates": [
        {"name": "old", "sans": ["*.example.com"], "not_before": "-70d", "days": 90},
        # A renewal whose leaf the CA signed with SHA-1 (not deployed anywhere).
        {"name": "sha1-renewal", "sans": ["*.example.com"], "signature_hash": "sha1"},
    ],
    "buckets": [
        {
            "name": "assets",
            "cnames": [{"domain": OSS_DOMAIN, "certificate": "old"}, {"domain": FIRST_BINDING}],
        }
    ],
    "cdn_domains": [{"name": CDN_DOMAIN, "origin": "assets", "certificate": "old"}],
}


@pytest.fixture
def account(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator with the estate loaded, its certificate ids kept on it."""
    cloud.ids = use_estate(cloud, monkeypatch, ESTATE)
    return cloud


def _writes(cloud: Any) -> dict[str, int]:
    return {action: cloud.action_stats(action)["calls"] for action in WRITES}


def _sha1(cloud: Any) -> int:
    cert_id: int = cloud.ids["sha1-renewal"]
    return cert_id


def _rsa1024(cloud: Any) -> int:
    cert_id: int = issue(cloud, ["*.example.com"], days=90, keyType="rsa1024")["certId"]
    return cert_id


def _untrusted_root(cloud: Any) -> int:
    # a complete chain up to and including its root, a root no trust store holds
    recipe = {"days": 90, "ca": "untrusted", "chain": "with-root"}
    cert_id: int = issue(cloud, ["*.example.com"], **recipe)["certId"]
    return cert_id


def _incomplete(cloud: Any) -> int:
    cert_id: int = issue(cloud, ["*.example.com"], days=90, chain="leaf-only")["certId"]
    return cert_id


def _bad_signature(cloud: Any) -> int:
    """Upload (through the real CAS SDK) a leaf that names the emulator's intermediate
    as its issuer and sits in front of it, but whose signature is another key's."""
    from alibabacloud_cas20200407 import models
    from alibabacloud_tea_util.models import RuntimeOptions

    client = cloud.cas_client()
    genuine = issue(cloud, ["genuine.example.net"], days=90)["certId"]
    detail = client.get_user_certificate_detail_with_options(
        models.GetUserCertificateDetailRequest(cert_id=genuine, cert_filter=False),
        RuntimeOptions(),
    ).body
    intermediate = x509.load_pem_x509_certificates(detail.cert.encode())[1]
    impostor = Issued(intermediate, make_key("ec256", slot=41))  # the right name, a wrong key
    leaf = make_leaf(impostor, ["*.example.com"], base=real_now())
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf.cert, intermediate))
    key = leaf.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    uploaded = client.upload_user_certificate_with_options(
        models.UploadUserCertificateRequest(
            name=f"forged-{uuid.uuid4().hex[:8]}", cert=chain.decode(), key=key.decode()
        ),
        RuntimeOptions(),
    )
    cert_id: int = uploaded.body.cert_id
    return cert_id


@pytest.mark.parametrize(
    ("make_candidate", "code"),
    [
        (_sha1, "WEAK_SIGNATURE"),
        (_rsa1024, "WEAK_KEY"),
        (_bad_signature, "CHAIN_INCOMPLETE"),
        (_untrusted_root, "UNTRUSTED_ROOT"),
        (_incomplete, "CHAIN_INCOMPLETE"),
    ],
    ids=["sha1", "rsa1024", "bad-signature", "untrusted-root", "incomplete-chain"],
)
def test_a_candidate_browsers_reject_is_refused_before_any_write(
    account: Any, make_candidate: Any, code: str
) -> None:
    # given domains that serve the old certificate, and a candidate browsers reject
    before_bound = bound(account)
    before_served = {d: edge_view(account, d).sha256 for d in (OSS_DOMAIN, CDN_DOMAIN)}
    candidate = make_candidate(account)
    before_writes = _writes(account)
    # when its certificate-issued event reaches deploy-cert
    summary = invoke(account, cloudevent(account, candidate))
    # then it is refused with the finding a browser would reject it for
    assert (summary["ok"], summary["status"]) == (False, "refused")
    assert code in [f["code"] for f in summary["findings"]]
    assert {d: o for d, o in outcomes(summary).items() if d in DOMAINS} == {
        d: ("skipped", f"candidate-invalid:{code}") for d in DOMAINS
    }
    # and not one write reached the cloud: bindings and the edge are as they were
    assert _writes(account) == before_writes
    assert bound(account) == before_bound
    assert {d: edge_view(account, d).sha256 for d in (OSS_DOMAIN, CDN_DOMAIN)} == before_served


def test_a_sound_candidate_in_the_same_estate_is_written(account: Any) -> None:
    # given the same estate and a renewal browsers accept (the control: the checks
    # above can fail, since this one's writes do reach the cloud)
    before_writes = _writes(account)
    new = issue(account, ["*.example.com"], days=90)
    # when its event arrives
    summary = invoke(account, cloudevent(account, new["certId"]))
    # then it is written and served everywhere, and a verifying client accepts it
    assert summary["status"] == "deployed", summary["results"]
    after = _writes(account)
    assert after["oss:PutCname"] - before_writes["oss:PutCname"] == 2
    assert (
        after["cdn:SetCdnDomainSSLCertificate"] - before_writes["cdn:SetCdnDomainSSLCertificate"]
        == 1
    )
    for domain in DOMAINS:
        view = edge_view(account, domain)
        assert (view.sha256, view.verified) == (new["sha256"], True)
