"""The emulator's CAS 2020-04-07 API, driven through the real `alibabacloud_cas20200407` SDK.

Scenarios: uploading certificates and the ways an upload is refused, reading one back
with and without its secrets, listing by type and status with paging, deleting, and the
admin endpoints that play the CA (issue, revoke).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest
from alibabacloud_cas20200407 import models as cas_models
from alibabacloud_cas20200407.client import Client
from alibabacloud_tea_openapi import utils_models as open_api_models
from alibabacloud_tea_openapi.exceptions import ClientException

from emulator import cas, certinfo
from emulator.pki import TestPki
from emulator.server import App, ControlPlane
from emulator.state import CasCertificate, State

pytestmark = pytest.mark.integration

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
UTC = timezone.utc

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def plane(pki: TestPki) -> Iterator[ControlPlane]:
    for name in PROXY_VARS:
        os.environ.pop(name, None)
    app = App(State(propagation_delay=0.0))
    app.platform.pki = pki
    app.platform.throttle.configure(qps_scale=1000)  # scenarios, not flow control
    server = ControlPlane(app).start()
    yield server
    server.close()


@pytest.fixture
def state(plane: ControlPlane) -> State:
    app_state: State = plane._server.app.state
    app_state.reset()
    return app_state


@pytest.fixture
def client(plane: ControlPlane, state: State) -> Client:
    return Client(
        open_api_models.Config(
            access_key_id=state.access_key_id,
            access_key_secret=state.access_key_secret,
            endpoint=f"{plane.host}:{plane.port}",
            protocol="http",
        )
    )


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


def admin_post(plane: ControlPlane, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{plane.url}/_emulator/{path}",
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
    assert filtered.cert_identifier == body.cert_identifier


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
        ("bad-key", chain, "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----",
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


def _estate(state: State, pki: TestPki) -> dict[str, CasCertificate]:
    """Certificates in every status: issued, expiring soon, expired, revoked, uploaded."""
    now = datetime.now(UTC)
    certs = {
        "fresh": cas.issue(state, ["fresh.example.com"], name="fresh", days=200),
        "soon": cas.issue(state, ["soon.example.com"], name="soon", days=10),
        "old": cas.issue(
            state,
            ["old.example.com"],
            name="old",
            not_before=now - timedelta(days=100),
            not_after=now - timedelta(days=1),
        ),
        "revoked": cas.issue(state, ["revoked.example.com"], name="revoked", days=200),
    }
    cas.revoke(state, certs["revoked"].id)
    chain, key = pki.issue(["*.uploaded.example.com"], ca="two", days=300)
    with state.lock:
        uploaded = certinfo.make_cas_certificate(
            state, name="uploaded", cert_pem=chain, key_pem=key, source="upload"
        )
        cas.add_certificate(state, uploaded)
    certs["uploaded"] = uploaded
    return certs


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"order_type": "CERT"}, ["uploaded", "soon", "fresh"]),
        ({"order_type": "UPLOAD"}, ["uploaded"]),
        ({}, []),
        ({"order_type": "CPACK"}, []),
        ({"order_type": "CERT", "status": "ISSUED"}, ["uploaded", "fresh"]),
        ({"order_type": "CERT", "status": "WILLEXPIRED"}, ["soon"]),
        ({"order_type": "CERT", "status": "EXPIRED"}, ["old"]),
        ({"order_type": "CERT", "status": "REVOKED"}, ["revoked"]),
        ({"order_type": "CERT", "keyword": "uploaded.example"}, ["uploaded"]),
    ],
    ids=[
        "cert-default-valid-only",
        "upload-only",
        "default-order-type-cpack",
        "cpack",
        "issued",
        "will-expire",
        "expired",
        "revoked",
        "keyword",
    ],
)
def test_listing_filters_by_order_type_status_and_keyword(
    client: Client, state: State, pki: TestPki, params: dict[str, Any], expected: list[str]
) -> None:
    _estate(state, pki)
    body = listing(client, **params)
    assert [item.name for item in body.certificate_order_list] == expected
    assert body.total_count == len(expected)


def test_listed_items_describe_each_certificate(client: Client, state: State, pki: TestPki) -> None:
    certs = _estate(state, pki)
    items = {i.name: i for i in listing(client, order_type="CERT").certificate_order_list}

    uploaded, expected = items["uploaded"], certs["uploaded"]
    assert uploaded.certificate_id == expected.id
    assert (uploaded.common_name, uploaded.sans) == ("*.uploaded.example.com",) * 2
    assert uploaded.upload is True and items["fresh"].upload is False
    assert uploaded.issuer == "Emulator Two Trust Inc"
    assert (uploaded.fingerprint, uploaded.sha_2) == (expected.fingerprint_sha1, expected.sha256)
    assert uploaded.serial_no == expected.serial
    assert uploaded.expired is False and uploaded.status == "ISSUED"
    assert items["soon"].status == "WILLEXPIRED"
    start = expected.not_before.astimezone(certinfo.CAS_DATE_TZ).strftime("%Y-%m-%d")
    assert uploaded.start_date == start and len(uploaded.end_date) == 10

    expired = listing(client, order_type="CERT", status="EXPIRED").certificate_order_list[0]
    assert (expired.expired, expired.status) == (True, "EXPIRED")


def test_listing_pages_through_every_certificate_once(client: Client, state: State) -> None:
    # Given seven certificates
    ids = {cas.issue(state, [f"host{i}.example.com"], name=f"c{i}").id for i in range(7)}

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


# --------------------------------------------------------------------------- admin (the CA)


def test_admin_issue_and_revoke_simulate_the_certificate_authority(
    plane: ControlPlane, client: Client
) -> None:
    # When the CA issues a certificate through the admin API
    status, issued = admin_post(
        plane, "cas/issue", {"sans": ["shop.example.com"], "ca": "two", "days": 45, "name": "shop"}
    )
    assert status == 200
    cert_id = issued["certId"]
    assert issued["identifier"] == f"{cert_id}-cn-hangzhou" and issued["name"] == "shop"

    # Then CAS lists it as an issued (not uploaded) certificate from that CA
    body = detail(client, cert_id)
    assert (body.name, body.common, body.buy_in_aliyun) == ("shop", "shop.example.com", True)
    assert body.issuer == "Emulator Two Trust Inc"
    assert abs(body.not_after / 1000 - (time.time() + 45 * 86400)) < 60

    # When it is revoked, it leaves the default listing and shows as REVOKED
    assert admin_post(plane, "cas/revoke", {"certId": cert_id}) == (
        200,
        {"certId": cert_id, "revoked": True},
    )
    assert listing(client, order_type="CERT").total_count == 0
    revoked = listing(client, order_type="CERT", status="REVOKED").certificate_order_list
    assert [r.certificate_id for r in revoked] == [cert_id]

    # And the admin API refuses what it cannot do
    assert admin_post(plane, "cas/revoke", {"certId": 1})[0] == 404
    assert admin_post(plane, "cas/issue", {"sans": []})[0] == 400
    assert admin_post(plane, "cas/issue", {"sans": ["a.example.com"], "ca": "nine"})[0] == 400
    assert admin_post(plane, "cas/issue", {"sans": ["b.example.com"], "name": "shop"})[0] == 409


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
