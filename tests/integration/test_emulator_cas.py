"""The emulator's CAS 2020-04-07 API, driven through the real `alibabacloud_cas20200407` SDK.

Scenarios: uploading certificates and the ways an upload is refused, reading one back
with and without its secrets, listing by type and status with paging, deleting, and the
admin endpoints that play the CA (issue, revoke).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.error import HTTPError

import pytest
from alibabacloud_cas20200407 import models as cas_models
from alibabacloud_cas20200407.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from emulator import certinfo
from emulator.pki import TestPki
from tests.conftest import Emulator

pytestmark = pytest.mark.integration

UTC = timezone.utc

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """A local CA for certificates uploaded with their keys (no emulator trust needed)."""
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def client(cloud: Emulator) -> Client:
    cloud.settings(qps_scale=100)  # scenarios here, not flow control
    cas_client: Client = cloud.cas_client()
    return cas_client


def client_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ClientException:
    """The ClientException raised by `call(*args, **kwargs)` (fails if it succeeds)."""
    with pytest.raises(ClientException) as info:
        call(*args, **kwargs)
    return info.value


def upload(client: Client, name: str, cert: str, key: str) -> int:
    request = cas_models.UploadUserCertificateRequest(name=name, cert=cert, key=key)
    cert_id: int = client.upload_user_certificate(request).body.cert_id
    return cert_id


def detail(client: Client, cert_id: int, *, cert_filter: bool | None = None) -> Any:
    request = cas_models.GetUserCertificateDetailRequest(cert_id=cert_id, cert_filter=cert_filter)
    return client.get_user_certificate_detail(request).body


def listing(client: Client, **params: Any) -> Any:
    return client.list_user_certificate_order(
        cas_models.ListUserCertificateOrderRequest(**params)
    ).body


def issue(cloud: Emulator, sans: list[str], **recipe: Any) -> dict[str, Any]:
    """Have the emulator's CA issue a certificate into CAS."""
    issued: dict[str, Any] = cloud.admin("POST", "cas/issue", {"sans": sans, **recipe})
    return issued


def admin_post(cloud: Emulator, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """(HTTP status, JSON answer) of an admin call, errors included."""
    request = urllib.request.Request(
        f"{cloud.api}/_emulator/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except HTTPError as err:
        return err.code, json.loads(err.read())


# --------------------------------------------------------------------------- upload and detail


def test_an_uploaded_certificate_reads_back_in_full_or_filtered(
    client: Client, pki: TestPki
) -> None:
    # Given a certificate chain (leaf, intermediate) and its key
    chain, key = pki.issue(["www.example.com", "example.com"], days=120)

    # When it is uploaded
    cert_id = upload(client, "www-2024", chain, key)
    assert isinstance(cert_id, int)

    # Then the detail describes it, with the chain leaf first and the key
    body = detail(client, cert_id)
    assert (body.id, body.name, body.common) == (cert_id, "www-2024", "www.example.com")
    assert body.sans == "www.example.com,example.com"
    assert body.cert_identifier == f"{cert_id}-cn-hangzhou"
    assert body.cert == chain and body.key == key
    assert body.expired is False and body.buy_in_aliyun is False
    assert body.issuer == "Emulator One Certificates Ltd"
    assert body.algorithm == "ECC"
    assert len(body.fingerprint) == 40 and body.fingerprint.isupper()
    assert len(body.sha_2) == 64
    assert abs(body.not_after / 1000 - (time.time() + 120 * 86400)) < 60
    assert body.not_before < time.time() * 1000 < body.not_after
    end = datetime.fromtimestamp(body.not_after / 1000, tz=certinfo.CAS_DATE_TZ)
    assert body.end_date == end.strftime("%Y-%m-%d")
    assert [c.common_name for c in body.cert_chain] == ["www.example.com", "Emulator CA One"]
    assert body.cert_chain[0].issuer_common_name == "Emulator CA One"
    assert body.cert_chain[0].remain_day in (119, 120)

    # And CertFilter=true leaves out the certificate and the private key
    filtered = detail(client, cert_id, cert_filter=True)
    assert filtered.cert is None and filtered.key is None
    # but keeps the metadata and the chain description that certpilot judges it by
    wire = filtered.to_map()
    assert "Cert" not in wire and "Key" not in wire
    full = body.to_map()
    assert {k: v for k, v in full.items() if k not in ("Cert", "Key", "RequestId")} == {
        k: v for k, v in wire.items() if k != "RequestId"
    }
    assert (filtered.cert_identifier, filtered.not_after) == (body.cert_identifier, body.not_after)
    assert [
        (c.common_name, c.issuer_common_name, c.not_before, c.not_after, c.remain_day)
        for c in filtered.cert_chain
    ] == [
        (c.common_name, c.issuer_common_name, c.not_before, c.not_after, c.remain_day)
        for c in body.cert_chain
    ]
    intermediate = filtered.cert_chain[1]
    assert intermediate.issuer_common_name == "Emulator Root CA"
    assert intermediate.not_before < intermediate.not_after and intermediate.remain_day > 120


def test_uploads_are_refused_for_bad_names_content_or_keys(client: Client, pki: TestPki) -> None:
    chain, key = pki.issue(["www.example.com"])
    _, other_key = pki.issue(["www.example.com"])
    upload(client, "taken", chain, key)
    cases = [
        ("taken", chain, key, "NameRepeat"),
        ("x" * 65, chain, key, "InvalidParameter"),
        ("garbage", "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", key,
         "ParseCertificateFailed"),
        ("not-pem", "hello", key, "ParseCertificateFailed"),
        ("bad-key", chain, "-----BEGIN PRIVATE " + "KEY-----\nxx\n-----END PRIVATE KEY-----",
         "ParsePrivateKeyFailed"),
        ("mismatch", chain, other_key, "CertificateKeyMismatch"),
    ]  # fmt: skip
    for name, cert, private, code in cases:
        err = client_error(upload, client, name, cert, private)
        assert (err.status_code, err.code) == (400, code), name

    err = client_error(
        lambda: client.upload_user_certificate(
            cas_models.UploadUserCertificateRequest(name="no-key", cert=chain)
        )
    )
    assert err.code == "MissingParameter"


def test_unknown_certificate_ids_are_not_found(client: Client) -> None:
    for call in (
        lambda: detail(client, 424242),
        lambda: client.delete_user_certificate(
            cas_models.DeleteUserCertificateRequest(cert_id=424242)
        ),
    ):
        err = client_error(call)
        assert (err.status_code, err.code) == (400, "NotFound")


def test_a_deleted_certificate_is_gone(client: Client, pki: TestPki) -> None:
    cert_id = upload(client, "short-lived", *pki.issue(["a.example.com"]))
    client.delete_user_certificate(cas_models.DeleteUserCertificateRequest(cert_id=cert_id))
    assert client_error(lambda: detail(client, cert_id)).code == "NotFound"
    assert listing(client, order_type="CERT").total_count == 0


# --------------------------------------------------------------------------- listing


def _estate(cloud: Emulator, client: Client, pki: TestPki) -> dict[str, int]:
    """Certificates in every status: issued, expiring soon, expired, revoked by their CA,
    purchased (BUY, one of them revoked; CPACK), uploaded."""
    now = datetime.now(UTC)
    ids = {
        "fresh": issue(cloud, ["fresh.example.com"], name="fresh", days=200)["certId"],
        "soon": issue(cloud, ["soon.example.com"], name="soon", days=10)["certId"],
        "old": issue(
            cloud,
            ["old.example.com"],
            name="old",
            notBefore=(now - timedelta(days=100)).isoformat(),
            notAfter=(now - timedelta(days=1)).isoformat(),
        )["certId"],
        "revoked": issue(cloud, ["revoked.example.com"], name="revoked", days=200)["certId"],
        "bought": issue(cloud, ["bought.example.com"], name="bought", order="BUY")["certId"],
        "bought-revoked": issue(
            cloud, ["bought-revoked.example.com"], name="bought-revoked", order="BUY"
        )["certId"],
        "pack": issue(cloud, ["pack.example.com"], name="pack", order="CPACK")["certId"],
    }
    cloud.admin("POST", "cas/revoke", {"certId": ids["revoked"]})
    cloud.admin("POST", "cas/revoke", {"certId": ids["bought-revoked"]})
    chain, key = pki.issue(["*.uploaded.example.com"], ca="two", days=300)
    ids["uploaded"] = upload(client, "uploaded", chain, key)
    return ids


def _label(item: Any) -> str:
    """A certificate row's Name; an order row (no Name) by its domain's first label."""
    return str(item.name if item.certificate_id is not None else item.domain.split(".")[0])


ALL_VALID = ["uploaded", "pack", "bought-revoked", "bought", "revoked", "fresh"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"order_type": "CERT"},
            ["uploaded", "pack", "bought-revoked", "bought", "revoked", "soon", "fresh"],
        ),
        ({"order_type": "UPLOAD"}, ["uploaded"]),
        ({}, ["pack"]),
        ({"order_type": "CPACK"}, ["pack"]),
        ({"order_type": "BUY"}, ["bought-revoked", "bought"]),
        ({"order_type": "BUY", "status": "REVOKED"}, ["bought-revoked"]),
        ({"order_type": "BUY", "status": "ISSUED"}, ["bought"]),
        ({"order_type": "CERT", "status": "ISSUED"}, ALL_VALID),
        ({"order_type": "CERT", "status": "WILLEXPIRED"}, ["soon"]),
        ({"order_type": "CERT", "status": "EXPIRED"}, ["old"]),
        ({"order_type": "CERT", "status": "REVOKED"}, []),
        ({"order_type": "CERT", "keyword": "uploaded.example"}, ["uploaded"]),
    ],
    ids=[
        "cert-default-valid-only-revocation-unknown",
        "upload-only",
        "default-order-type-cpack",
        "cpack",
        "buy-orders",
        "buy-revoked",
        "buy-issued",
        "issued",
        "will-expire",
        "expired",
        "revoked-is-an-order-status",
        "keyword",
    ],
)
def test_listing_filters_by_order_type_status_and_keyword(
    cloud: Emulator, client: Client, pki: TestPki, params: dict[str, Any], expected: list[str]
) -> None:
    # Given certificates in every state, two revoked by their CA (one purchased)
    _estate(cloud, client, pki)
    # When CAS lists them by type and status
    body = listing(client, **params)
    # Then only a purchased certificate's order tells revocation; certificates never do
    assert [_label(item) for item in body.certificate_order_list] == expected
    assert body.total_count == len(expected)


def test_certificate_rows_carry_no_status_and_order_rows_no_certificate_id(
    cloud: Emulator, client: Client, pki: TestPki
) -> None:
    # Given a purchased certificate that its CA revoked
    ids = _estate(cloud, client, pki)
    # When CAS lists certificates and orders
    certs = {i.name: i for i in listing(client, order_type="CERT").certificate_order_list}
    [order] = listing(client, order_type="BUY", status="REVOKED").certificate_order_list
    # Then certificate rows have no Status, order rows no CertificateId (SDK docstrings)
    assert all(row.status is None for row in certs.values())
    assert order.certificate_id is None and order.status == "REVOKED"
    assert order.source_type == "buy" and order.cert_end_time > order.cert_start_time
    # And the order links to its certificate by OrderId / InstanceId (chosen)
    revoked = detail(client, ids["bought-revoked"], cert_filter=True)
    assert (revoked.order_id, revoked.instance_id) == (order.order_id, order.instance_id)
    assert certs["bought-revoked"].instance_id == order.instance_id


def test_listed_items_describe_each_certificate(
    cloud: Emulator, client: Client, pki: TestPki
) -> None:
    ids = _estate(cloud, client, pki)
    items = {i.name: i for i in listing(client, order_type="CERT").certificate_order_list}

    # The uploaded certificate's item matches what its PEM says
    uploaded = items["uploaded"]
    leaf = x509.load_pem_x509_certificates(detail(client, ids["uploaded"]).cert.encode())[0]
    assert uploaded.certificate_id == ids["uploaded"]
    assert (uploaded.common_name, uploaded.sans) == ("*.uploaded.example.com",) * 2
    assert uploaded.upload is True and items["fresh"].upload is False
    assert uploaded.issuer == "Emulator Two Trust Inc"
    assert uploaded.fingerprint == leaf.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
    assert uploaded.sha_2 == leaf.fingerprint(hashes.SHA256()).hex().upper()
    assert uploaded.serial_no == format(leaf.serial_number, "x")
    assert uploaded.expired is False and uploaded.status is None
    start = leaf.not_valid_before_utc.astimezone(certinfo.CAS_DATE_TZ).strftime("%Y-%m-%d")
    assert uploaded.start_date == start and len(uploaded.end_date) == 10
    assert "soon" in items

    expired = listing(client, order_type="CERT", status="EXPIRED").certificate_order_list[0]
    assert (expired.name, expired.expired) == ("old", True)


def test_listing_pages_through_every_certificate_once(cloud: Emulator, client: Client) -> None:
    # Given seven certificates
    ids = {issue(cloud, [f"host{i}.example.com"], name=f"c{i}")["certId"] for i in range(7)}

    # When reading them three at a time
    pages = [listing(client, order_type="CERT", show_size=3, current_page=p) for p in (1, 2, 3, 4)]

    # Then every page reports the totals and together they hold each certificate once
    assert [len(p.certificate_order_list) for p in pages] == [3, 3, 1, 0]
    assert {(p.total_count, p.show_size) for p in pages} == {(7, 3)}
    assert [p.current_page for p in pages] == [1, 2, 3, 4]
    seen = [i.certificate_id for p in pages for i in p.certificate_order_list]
    assert sorted(seen) == sorted(ids) and seen == sorted(seen, reverse=True)

    # And the default page size is 50
    assert listing(client, order_type="CERT").show_size == 50


def test_invalid_listing_parameters_are_refused(client: Client) -> None:
    for params in ({"order_type": "NOPE"}, {"order_type": "CERT", "show_size": 0}):
        assert client_error(listing, client, **params).code == "InvalidParameter"


@pytest.mark.parametrize(
    ("recipe", "chain"),
    [
        ({}, [("www.example.com", "Emulator CA One"), ("Emulator CA One", "Emulator Root CA")]),
        ({"chain": "leaf-only"}, [("www.example.com", "Emulator CA One")]),
        (
            {"chain": "wrong-order"},
            [("Emulator CA One", "Emulator Root CA"), ("www.example.com", "Emulator CA One")],
        ),
        (
            {"chain": "with-root"},
            [
                ("www.example.com", "Emulator CA One"),
                ("Emulator CA One", "Emulator Root CA"),
                ("Emulator Root CA", "Emulator Root CA"),
            ],
        ),
        (
            {"ca": "untrusted"},
            [("www.example.com", "Untrusted CA"), ("Untrusted CA", "Untrusted Root")],
        ),
    ],
    ids=["complete", "leaf-only", "wrong-order", "with-root", "untrusted"],
)
def test_cert_chain_describes_the_stored_chain_without_the_key(
    cloud: Emulator, client: Client, recipe: dict[str, Any], chain: list[tuple[str, str]]
) -> None:
    # Given a certificate issued with a chain of some shape
    cert_id = issue(cloud, ["www.example.com"], **recipe)["certId"]

    # When it is read back without its secrets, as certpilot does
    body = detail(client, cert_id, cert_filter=True)

    # Then CertChain describes every stored certificate, in the stored order
    assert body.cert is None and body.key is None
    assert [(c.common_name, c.issuer_common_name) for c in body.cert_chain] == chain
    assert all(c.not_before < c.not_after and c.remain_day >= 0 for c in body.cert_chain)


# --------------------------------------------------------------------------- admin (the CA)


def test_admin_issue_and_revoke_simulate_the_certificate_authority(
    cloud: Emulator, client: Client
) -> None:
    # When the CA issues a certificate through the admin API
    status, issued = admin_post(
        cloud, "cas/issue", {"sans": ["shop.example.com"], "ca": "two", "days": 45, "name": "shop"}
    )
    assert status == 200
    cert_id = issued["certId"]
    assert issued["identifier"] == f"{cert_id}-cn-hangzhou" and issued["name"] == "shop"

    # Then CAS lists it as an issued (not uploaded) certificate from that CA
    body = detail(client, cert_id)
    assert (body.name, body.common, body.buy_in_aliyun) == ("shop", "shop.example.com", True)
    assert body.issuer == "Emulator Two Trust Inc"
    assert abs(body.not_after / 1000 - (time.time() + 45 * 86400)) < 60

    # When its CA revokes it
    status, answer = admin_post(cloud, "cas/revoke", {"certId": cert_id, "reason": "superseded"})
    assert status == 200 and answer["revoked"] and answer["certIds"] == [cert_id]
    assert answer["serial"] == body.serial_no
    # Then CAS, which sold no order for it, cannot tell: it is still listed as valid
    assert [
        r.certificate_id for r in listing(client, order_type="CERT").certificate_order_list
    ] == [cert_id]

    # And the admin API refuses what it cannot do
    assert admin_post(cloud, "cas/revoke", {"certId": 1})[0] == 404
    assert admin_post(cloud, "cas/revoke", {"serial": "abc123"})[0] == 404
    assert admin_post(cloud, "cas/revoke", {"certId": cert_id, "reason": "bored"})[0] == 400
    assert admin_post(cloud, "cas/issue", {"sans": ["c.example.com"], "order": "GIFT"})[0] == 400
    assert admin_post(cloud, "cas/issue", {"sans": []})[0] == 400
    assert admin_post(cloud, "cas/issue", {"sans": ["a.example.com"], "ca": "nine"})[0] == 400
    assert admin_post(cloud, "cas/issue", {"sans": ["b.example.com"], "name": "shop"})[0] == 409


# --------------------------------------------------------------------------- name matching


@pytest.mark.parametrize(
    ("pattern", "domain", "covered"),
    [
        ("www.example.com", "WWW.Example.com.", True),
        ("*.example.com", "www.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.com", "example.com", False),
        ("w*.example.com", "www.example.com", False),
        ("*.xn--fiqs8s", "例子.中国", False),
        ("xn--fsqu00a.xn--fiqs8s", "例子.中国", True),
    ],
)
def test_certificate_names_cover_domains_per_rfc_6125(
    pattern: str, domain: str, covered: bool
) -> None:
    assert certinfo.name_covers(pattern, domain) is covered
