"""The emulator's OSS API, driven through the real `alibabacloud_oss_v2` SDK.

Scenarios: buckets in several regions and their listing, custom domains with CAS and
uploaded certificates (the PreviousCertId / Force rules, names that a certificate does
not cover, ownership verification), bucket policies and their validation, and objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_cas20200407 import models as cas_models

from emulator import cas, certinfo
from emulator import oss as emu_oss
from emulator.core import OssContext, Request, ServiceError
from emulator.pki import TestPki
from emulator.state import State
from tests.conftest import Emulator

pytestmark = pytest.mark.integration

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """A local CA for certificates uploaded with their keys (no emulator trust needed)."""
    return TestPki.create(tmp_path_factory.mktemp("pki"))


ClientFactory = Callable[..., oss.Client]


@pytest.fixture
def make_client(cloud: Emulator) -> ClientFactory:
    def make(region: str = "cn-hangzhou") -> oss.Client:
        cfg = oss.config.load_default()
        cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
            cloud.access_key_id, cloud.access_key_secret, cloud.security_token
        )
        cfg.region = region
        cfg.endpoint = cloud.api
        cfg.retryer = oss.retry.NopRetryer()
        return oss.Client(cfg)

    cloud.settings(propagation_delay=0.0, qps_scale=100)
    return make


@pytest.fixture
def client(make_client: ClientFactory) -> oss.Client:
    return make_client()


@pytest.fixture
def bucket(client: oss.Client) -> str:
    client.put_bucket(oss.PutBucketRequest(bucket="assets"))
    return "assets"


def service_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The OSS ServiceError raised by `call(*args, **kwargs)` (fails if it succeeds)."""
    with pytest.raises(oss.exceptions.OperationError) as info:
        call(*args, **kwargs)
    err = info.value.unwrap()
    assert isinstance(err, oss.exceptions.ServiceError), err
    return err


def issue(cloud: Emulator, sans: list[str], **recipe: Any) -> dict[str, Any]:
    """Have the emulator's CA issue a certificate into CAS: `{"certId", "identifier"}`."""
    issued: dict[str, Any] = cloud.admin("POST", "cas/issue", {"sans": sans, **recipe})
    return issued


def put_cname(
    client: oss.Client, bucket: str, domain: str, **certificate: Any
) -> oss.PutCnameResult:
    config = oss.CertificateConfiguration(**certificate) if certificate else None
    return client.put_cname(
        oss.PutCnameRequest(
            bucket=bucket,
            bucket_cname_configuration=oss.BucketCnameConfiguration(
                cname=oss.Cname(domain=domain, certificate_configuration=config)
            ),
        )
    )


def cas_uploads(cloud: Emulator, order_type: str = "UPLOAD") -> dict[int, Any]:
    """CAS's uploaded certificates by id, as ListUserCertificateOrder lists them."""
    body = (
        cloud.cas_client()
        .list_user_certificate_order(
            cas_models.ListUserCertificateOrderRequest(order_type=order_type)
        )
        .body
    )
    return {c.certificate_id: c for c in body.certificate_order_list or [] if c.upload}


def cnames(client: oss.Client, bucket: str) -> dict[str, Any]:
    result = client.list_cname(oss.ListCnameRequest(bucket=bucket))
    return {c.domain: c for c in result.cnames or []}


# --------------------------------------------------------------------------- buckets


def test_buckets_live_in_their_signing_region_and_list_with_endpoints(
    make_client: ClientFactory,
) -> None:
    # Given a bucket created through Hangzhou and an IA bucket created through Shanghai
    make_client().put_bucket(oss.PutBucketRequest(bucket="assets"))
    shanghai = make_client("cn-shanghai")
    shanghai.put_bucket(
        oss.PutBucketRequest(
            bucket="archive",
            create_bucket_configuration=oss.CreateBucketConfiguration(storage_class="IA"),
        )
    )

    # When listing every bucket
    listed = {b.name: b for b in make_client().list_buckets(oss.ListBucketsRequest()).buckets}

    # Then each carries its own region and endpoints
    assert set(listed) == {"assets", "archive"}
    archive = listed["archive"]
    assert (archive.region, archive.location) == ("cn-shanghai", "oss-cn-shanghai")
    assert archive.extranet_endpoint == "oss-cn-shanghai.aliyuncs.com"
    assert archive.intranet_endpoint == "oss-cn-shanghai-internal.aliyuncs.com"
    assert archive.storage_class == "IA"
    assert archive.creation_date is not None and archive.creation_date.tzinfo is not None
    assert (listed["assets"].region, listed["assets"].storage_class) == ("cn-hangzhou", "Standard")

    # And GetBucketInfo answers through the bucket's own region only
    info = shanghai.get_bucket_info(oss.GetBucketInfoRequest(bucket="archive")).bucket_info
    assert (info.name, info.location, info.storage_class) == ("archive", "oss-cn-shanghai", "IA")
    assert info.acl == "private" and info.owner.id
    err = service_error(
        lambda: make_client().get_bucket_info(oss.GetBucketInfoRequest(bucket="archive"))
    )
    assert (err.status_code, err.code) == (403, "AccessDenied")
    assert "oss-cn-shanghai.aliyuncs.com" in err.message


def test_creating_an_existing_bucket_conflicts(client: oss.Client, bucket: str) -> None:
    err = service_error(lambda: client.put_bucket(oss.PutBucketRequest(bucket=bucket)))
    assert (err.status_code, err.code) == (409, "BucketAlreadyExists")


def test_list_buckets_pages_by_marker_within_a_prefix(client: oss.Client) -> None:
    # Given five "web-" buckets and two others
    for name in ("web-e", "web-a", "web-d", "other-1", "web-c", "web-b", "zeta"):
        client.put_bucket(oss.PutBucketRequest(bucket=name))

    # When paging two at a time through the "web-" prefix
    pages = list(
        client.list_buckets_paginator().iter_page(oss.ListBucketsRequest(prefix="web-"), limit=2)
    )

    # Then the pages are ordered, complete and marked truncated but for the last
    assert [[b.name for b in p.buckets] for p in pages] == [
        ["web-a", "web-b"],
        ["web-c", "web-d"],
        ["web-e"],
    ]
    assert [p.is_truncated for p in pages] == [True, True, False]
    assert pages[0].next_marker == "web-b" and pages[1].marker == "web-b"


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_bucket_info(oss.GetBucketInfoRequest(bucket="missing")),
        lambda c: c.list_cname(oss.ListCnameRequest(bucket="missing")),
        lambda c: put_cname(c, "missing", "www.example.com"),
        lambda c: c.get_bucket_policy(oss.GetBucketPolicyRequest(bucket="missing")),
        lambda c: c.put_object(oss.PutObjectRequest(bucket="missing", key="k", body=b"x")),
        lambda c: c.get_object(oss.GetObjectRequest(bucket="missing", key="k")),
    ],
    ids=["bucket-info", "list-cname", "put-cname", "get-policy", "put-object", "get-object"],
)
def test_an_unknown_bucket_is_no_such_bucket(
    client: oss.Client, call: Callable[[oss.Client], Any]
) -> None:
    err = service_error(lambda: call(client))
    assert (err.status_code, err.code, err.ec) == (404, "NoSuchBucket", "0015-00000101")


# --------------------------------------------------------------------------- custom domains


def test_a_cas_certificate_bound_to_a_domain_shows_in_list_cname(
    client: oss.Client, bucket: str, cloud: Emulator
) -> None:
    # Given a CAS certificate for the domain
    cert = issue(cloud, ["static.example.com"])

    # When the domain, proven ours, is bound with it by CAS identifier
    cloud.verify_domain(bucket, "static.example.com")
    put_cname(client, bucket, "static.example.com", cert_id=cert["identifier"], force=True)

    # Then ListCname reports the binding as OSS documents it
    result = client.list_cname(oss.ListCnameRequest(bucket=bucket))
    assert (result.bucket, result.owner) == (bucket, cloud.account_id)
    (entry,) = result.cnames
    assert (entry.domain, entry.status) == ("static.example.com", "Enabled")
    assert entry.last_modified.endswith("Z")
    bound = entry.certificate
    assert (bound.type, bound.cert_id, bound.status) == ("CAS", cert["identifier"], "Enabled")
    detail = (
        cloud.cas_client()
        .get_user_certificate_detail(
            cas_models.GetUserCertificateDetailRequest(cert_id=cert["certId"], cert_filter=True)
        )
        .body
    )
    assert bound.fingerprint.replace(":", "") == detail.fingerprint
    assert bound.valid_end_date.endswith("GMT") and bound.creation_date.endswith("GMT")
    assert cert["notAfter"][:4] in bound.valid_end_date


def test_a_bare_cas_id_binds_too_and_a_domain_without_certificate_lists_plainly(
    client: oss.Client, bucket: str, cloud: Emulator
) -> None:
    cert = issue(cloud, ["*.example.com"])
    cloud.verify_domain(bucket, "plain.example.com")
    cloud.verify_domain(bucket, "img.example.com")
    put_cname(client, bucket, "plain.example.com")
    put_cname(client, bucket, "img.example.com", cert_id=str(cert["certId"]))
    listed = cnames(client, bucket)
    assert listed["plain.example.com"].certificate is None
    assert listed["img.example.com"].certificate.cert_id == cert["identifier"]


def test_replacing_a_certificate_needs_the_previous_id_or_force(
    client: oss.Client, bucket: str, cloud: Emulator
) -> None:
    # Given a domain bound to certificate A
    first = issue(cloud, ["www.example.com"])
    second = issue(cloud, ["www.example.com"], ca="two")
    cloud.verify_domain(bucket, "www.example.com")
    put_cname(client, bucket, "www.example.com", cert_id=first["identifier"])

    # When replacing it without, or with a wrong, PreviousCertId: refused
    for previous in (None, second["identifier"]):
        err = service_error(
            put_cname,
            client,
            bucket,
            "www.example.com",
            cert_id=second["identifier"],
            previous_cert_id=previous,
        )
        assert (err.status_code, err.code, err.ec) == (400, "InvalidArgument", "0018-00000209")
    assert cnames(client, bucket)["www.example.com"].certificate.cert_id == first["identifier"]

    # Then the right PreviousCertId, or Force, replaces it
    put_cname(
        client,
        bucket,
        "www.example.com",
        cert_id=second["identifier"],
        previous_cert_id=first["identifier"],
    )
    assert cnames(client, bucket)["www.example.com"].certificate.cert_id == second["identifier"]
    put_cname(client, bucket, "www.example.com", cert_id=first["identifier"], force=True)
    assert cnames(client, bucket)["www.example.com"].certificate.cert_id == first["identifier"]


@pytest.mark.parametrize(
    ("sans", "domain", "covered"),
    [
        (["*.example.com"], "www.example.com", True),
        (["*.example.com"], "example.com", False),
        (["*.example.com"], "a.b.example.com", False),
        (["example.com", "www.example.com"], "www.example.com", True),
        (["other.example.com"], "www.example.com", False),
    ],
)
def test_a_certificate_must_cover_the_domain(
    client: oss.Client, bucket: str, cloud: Emulator, sans: list[str], domain: str, covered: bool
) -> None:
    cert = issue(cloud, sans)
    cloud.verify_domain(bucket, domain)
    bind = lambda: put_cname(client, bucket, domain, cert_id=cert["identifier"])  # noqa: E731
    if covered:
        bind()
        assert cnames(client, bucket)[domain].certificate.cert_id == cert["identifier"]
    else:
        err = service_error(bind)
        assert (err.status_code, err.code, err.ec) == (400, "InvalidArgument", "0018-00000213")
        assert domain not in cnames(client, bucket)


def test_unknown_revoked_or_overlong_certificate_ids_are_refused(
    client: oss.Client, bucket: str, cloud: Emulator
) -> None:
    revoked = issue(cloud, ["www.example.com"], order="BUY")  # CAS knows: its order
    cloud.admin("POST", "cas/revoke", {"certId": revoked["certId"]})
    cloud.verify_domain(bucket, "www.example.com")
    cases = {
        "99999999-cn-hangzhou": "0018-00000212",
        f"{revoked['certId']}-ap-southeast-1": "0018-00000212",
        revoked["identifier"]: "0018-00000216",
        "1" * 64: "0018-00000206",
    }
    for cert_id, ec in cases.items():
        err = service_error(put_cname, client, bucket, "www.example.com", cert_id=cert_id)
        assert (err.code, err.ec) == ("InvalidArgument", ec), cert_id


def test_an_uploaded_certificate_binds_when_its_key_matches_and_lands_in_cas(
    client: oss.Client, bucket: str, pki: TestPki, cloud: Emulator
) -> None:
    chain, key = pki.issue(["upload.example.com"])
    _, other_key = pki.issue(["upload.example.com"])
    cloud.verify_domain(bucket, "upload.example.com")

    # A key that is not the certificate's, or a key alone, is refused
    err = service_error(
        lambda: put_cname(
            client, bucket, "upload.example.com", certificate=chain, private_key=other_key
        )
    )
    assert (err.code, err.ec) == ("InvalidArgument", "0018-00000215")
    err = service_error(lambda: put_cname(client, bucket, "upload.example.com", private_key=key))
    assert err.ec == "0018-00000210"

    assert cas_uploads(cloud) == {}  # nothing refused reached CAS

    # The matching pair binds as an "Upload" certificate
    put_cname(client, bucket, "upload.example.com", certificate=chain, private_key=key)
    bound = cnames(client, bucket)["upload.example.com"].certificate
    assert bound.type == "Upload" and bound.cert_id.endswith("-cn-hangzhou")
    # and lands in CAS as an uploaded certificate, under the CertId ListCname shows
    cas_id = int(bound.cert_id.split("-", 1)[0])
    for order_type in ("UPLOAD", "CERT"):
        listed = cas_uploads(cloud, order_type)
        assert list(listed) == [cas_id], order_type
        assert listed[cas_id].upload is True
        assert listed[cas_id].fingerprint == bound.fingerprint.replace(":", "")


def test_delete_certificate_unbinds_the_domain_but_keeps_it_bound(
    client: oss.Client, bucket: str, cloud: Emulator
) -> None:
    # Given a domain with a certificate
    cert = issue(cloud, ["www.example.com"])
    cloud.verify_domain(bucket, "www.example.com")
    put_cname(client, bucket, "www.example.com", cert_id=cert["identifier"])

    # When the certificate is deleted with a wrong, then the right, PreviousCertId
    err = service_error(
        put_cname, client, bucket, "www.example.com", delete_certificate=True, previous_cert_id="1"
    )
    assert err.ec == "0018-00000209"
    put_cname(
        client,
        bucket,
        "www.example.com",
        delete_certificate=True,
        previous_cert_id=cert["identifier"],
    )

    # Then the domain stays bound without certificate
    assert cnames(client, bucket)["www.example.com"].certificate is None


def delete_cname(client: oss.Client, bucket: str, domain: str) -> Any:
    return client.delete_cname(
        oss.DeleteCnameRequest(
            bucket=bucket,
            bucket_cname_configuration=oss.BucketCnameConfiguration(cname=oss.Cname(domain=domain)),
        )
    )


def test_a_domain_bound_elsewhere_conflicts_and_delete_cname_frees_it(
    client: oss.Client, bucket: str, cloud: Emulator
) -> None:
    client.put_bucket(oss.PutBucketRequest(bucket="other"))
    cloud.verify_domain(bucket, "www.example.com")
    put_cname(client, bucket, "www.example.com")

    # the other bucket may not take it, even with its own proof of ownership
    cloud.verify_domain("other", "www.example.com")
    err = service_error(lambda: put_cname(client, "other", "www.example.com"))
    assert (err.status_code, err.code) == (409, "CnameAlreadyExists")
    # nor delete it: it is not bound to that bucket
    err = service_error(delete_cname, client, "other", "www.example.com")
    assert (err.status_code, err.code, err.ec) == (404, "NoSuchCname", "0018-00000102")

    delete_cname(client, bucket, "www.example.com")
    assert cnames(client, bucket) == {}
    put_cname(client, "other", "www.example.com")
    assert list(cnames(client, "other")) == ["www.example.com"]


def test_deleting_a_domain_that_is_not_bound_is_no_such_cname(
    client: oss.Client, bucket: str, cloud: Emulator
) -> None:
    # given a domain bound once, then deleted
    cloud.verify_domain(bucket, "www.example.com")
    put_cname(client, bucket, "www.example.com")
    delete_cname(client, bucket, "www.example.com")

    # when it is deleted again, or a never-bound one is
    for domain in ("www.example.com", "never.example.com"):
        err = service_error(delete_cname, client, bucket, domain)
        # then OSS answers NoSuchCname
        assert (err.status_code, err.code) == (404, "NoSuchCname"), domain


def test_a_deleted_domain_needs_its_ownership_proven_again(
    client: oss.Client, bucket: str, cloud: Emulator
) -> None:
    # given a domain bound from the estate (verified already), then deleted
    cloud.load_estate({"buckets": [{"name": "site", "cnames": [{"domain": "site.example.com"}]}]})
    delete_cname(client, "site", "site.example.com")

    # when it is bound again without a token in DNS, then OSS refuses
    err = service_error(put_cname, client, "site", "site.example.com")
    assert (err.status_code, err.code) == (400, "NeedVerifyDomainOwnership")
    assert cnames(client, "site") == {}


@pytest.mark.parametrize("domain", ["cdn.aliyuncs.com", "bad_label.example.com", "localhost"])
def test_reserved_or_invalid_domains_are_refused(
    client: oss.Client, bucket: str, domain: str
) -> None:
    err = service_error(lambda: put_cname(client, bucket, domain))
    assert (err.code, err.ec) == ("InvalidArgument", "0018-00000401")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("faß.example", "xn--fa-hia.example"),  # IDNA 2003 (str.encode("idna")) says fass
        ("Bücher.Example.", "xn--bcher-kva.example"),
    ],
)
def test_idn_custom_domains_are_stored_as_idna_2008_a_labels(
    client: oss.Client, bucket: str, cloud: Emulator, given: str, stored: str
) -> None:
    # Given a certificate issued for the Unicode name (its SAN is the IDNA 2008 A-label)
    cert = issue(cloud, [given])
    # When the domain is proven ours and bound under its Unicode name with that certificate
    cloud.verify_domain(bucket, given)
    put_cname(client, bucket, given, cert_id=cert["identifier"])
    # Then it is listed under its A-label, and the certificate covers it
    listed = cnames(client, bucket)
    assert list(listed) == [stored]
    assert listed[stored].certificate.cert_id == cert["identifier"]


def test_domain_ownership_is_checked_with_a_cname_token_in_dns(
    client: oss.Client, bucket: str, cloud: Emulator
) -> None:
    # Given ownership verification is on, as it is by default
    assert cloud.settings()["verify_domain_ownership"] is True
    err = service_error(lambda: put_cname(client, bucket, "www.example.com"))
    assert err.code == "NeedVerifyDomainOwnership"
    err = service_error(
        lambda: client.get_cname_token(
            oss.GetCnameTokenRequest(bucket=bucket, cname="www.example.com")
        )
    )
    assert (err.status_code, err.code) == (404, "NoSuchCnameToken")

    # When a token is created (twice: the valid one comes back) and published as TXT
    config = oss.BucketCnameConfiguration(cname=oss.Cname(domain="www.example.com"))
    created = client.create_cname_token(
        oss.CreateCnameTokenRequest(bucket=bucket, bucket_cname_configuration=config)
    ).cname_token
    again = client.create_cname_token(
        oss.CreateCnameTokenRequest(bucket=bucket, bucket_cname_configuration=config)
    ).cname_token
    fetched = client.get_cname_token(
        oss.GetCnameTokenRequest(bucket=bucket, cname="www.example.com")
    ).cname_token
    assert created.token == again.token == fetched.token and len(created.token) == 32
    assert (created.bucket, created.cname) == (bucket, "www.example.com")
    assert created.expire_time.endswith("GMT")
    txt = {"name": "_dnsauth.www.example.com", "value": "someone-elses-token"}
    cloud.admin("POST", "oss/dns-txt", txt)
    err = service_error(put_cname, client, bucket, "www.example.com")
    assert err.code == "NeedVerifyDomainOwnership"
    cloud.admin("POST", "oss/dns-txt", {**txt, "value": created.token})

    # Then the domain binds
    put_cname(client, bucket, "www.example.com")
    assert "www.example.com" in cnames(client, bucket)


def test_ownership_verification_can_be_turned_off(
    client: oss.Client, bucket: str, cloud: Emulator
) -> None:
    # given the setting off (as an estate may say)
    cloud.settings(verify_domain_ownership=False)
    # when a new domain is bound without any token, then it binds
    put_cname(client, bucket, "www.example.com")
    assert "www.example.com" in cnames(client, bucket)


# --------------------------------------------------------------------------- bucket policy


def https_only(bucket: str) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": ["oss:*"],
                "Principal": ["*"],
                "Resource": [f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"],
                "Condition": {"Bool": {"acs:SecureTransport": ["false"]}},
            }
        ],
    }


def test_bucket_policy_round_trips(client: oss.Client, bucket: str) -> None:
    # Given no policy yet
    err = service_error(client.get_bucket_policy, oss.GetBucketPolicyRequest(bucket=bucket))
    assert (err.status_code, err.code) == (404, "NoSuchBucketPolicy")

    # When the HTTPS-only policy is put
    document = json.dumps(https_only(bucket))
    client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket=bucket, body=document))

    # Then it reads back as written
    got = client.get_bucket_policy(oss.GetBucketPolicyRequest(bucket=bucket))
    assert got.body == document

    # And deleting answers 204 and leaves no policy
    deleted = client.delete_bucket_policy(oss.DeleteBucketPolicyRequest(bucket=bucket))
    assert deleted.status_code == 204
    err = service_error(client.get_bucket_policy, oss.GetBucketPolicyRequest(bucket=bucket))
    assert err.code == "NoSuchBucketPolicy"


def _policy_with(**statement_changes: Any) -> str:
    document = https_only("assets")
    document["Statement"][0].update(statement_changes)
    return json.dumps(document)


def _without_principal() -> str:
    document = https_only("assets")
    del document["Statement"][0]["Principal"]
    return json.dumps(document)


SYNTAX = ("InvalidPolicyDocument", "0030-00000005")


@pytest.mark.parametrize(
    ("body", "code_and_ec"),
    [
        ("{not json", SYNTAX),
        (json.dumps({**https_only("assets"), "Version": 1}), SYNTAX),
        (json.dumps({**https_only("assets"), "Version": "2"}), SYNTAX),
        (json.dumps({"Version": "1", "Statement": []}), SYNTAX),
        (_policy_with(Effect="Maybe"), SYNTAX),
        (_policy_with(Action=[]), SYNTAX),
        (_policy_with(Action=["oss:LaunchRocket"]), SYNTAX),
        (_policy_with(Action=["ecs:*"]), SYNTAX),
        (_without_principal(), SYNTAX),
        (_policy_with(Effekt="Deny"), SYNTAX),
        (_policy_with(Resource=["acs:oss:*:*:someone-else/*"]), SYNTAX),
        (
            _policy_with(Condition={"StringEquals": {"acs:UserAgent": ["a" * 5000]}}),
            ("InvalidPolicyDocument", "0030-00000003"),
        ),
        (
            _policy_with(Condition={"IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}}),
            ("InvalidPolicyDocument", "0030-00000008"),
        ),
        (
            json.dumps(
                {
                    "Version": "1",
                    "Statement": https_only("assets")["Statement"] * 120,
                }
            ),
            ("PolicyTooLarge", "0030-00000001"),
        ),
    ],
    ids=[
        "not-json",
        "version-int",
        "version-2",
        "no-statement",
        "bad-effect",
        "no-action",
        "unknown-action",
        "foreign-service-action",
        "no-principal",
        "unknown-element",
        "foreign-resource",
        "5kb-field",
        "sourceip-without-sourcevpc",
        "over-16kb",
    ],
)
def test_invalid_bucket_policies_are_refused(
    client: oss.Client, bucket: str, body: str, code_and_ec: tuple[str, str]
) -> None:
    # when an invalid policy is submitted
    err = service_error(
        lambda: client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket=bucket, body=body))
    )
    # then OSS refuses it with the documented EC (in the XML and the x-oss-ec header)
    assert (err.status_code, err.code, err.ec) == (400, *code_and_ec)
    assert err.headers.get("x-oss-ec") == code_and_ec[1]
    # and nothing was stored
    err = service_error(lambda: client.get_bucket_policy(oss.GetBucketPolicyRequest(bucket=bucket)))
    assert err.code == "NoSuchBucketPolicy"


def test_the_limits_themselves_are_accepted(client: oss.Client, bucket: str) -> None:
    # a field of exactly 4,095 bytes, an action pattern, an empty Principal list, and a
    # document of exactly 16 KB are all valid
    body = _policy_with(
        Action=["oss:Get*"],
        Principal=[],
        Condition={"StringEquals": {"acs:UserAgent": ["a" * 4095]}},
    )
    client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket=bucket, body=body))
    padded = body[:-1] + " " * (16 * 1024 - len(body)) + "}"
    assert len(padded) == 16 * 1024
    client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket=bucket, body=padded))
    assert client.get_bucket_policy(oss.GetBucketPolicyRequest(bucket=bucket)).body == padded


def test_a_source_ip_condition_with_source_vpc_is_accepted(client: oss.Client, bucket: str) -> None:
    body = _policy_with(
        Effect="Allow",
        Condition={
            "IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]},
            "StringEquals": {"acs:SourceVpc": ["vpc-*"]},
        },
    )
    client.put_bucket_policy(oss.PutBucketPolicyRequest(bucket=bucket, body=body))
    assert client.get_bucket_policy(oss.GetBucketPolicyRequest(bucket=bucket)).body == body


# --------------------------------------------------------------------------- objects


def test_objects_keep_their_content_type_and_etag(client: oss.Client, bucket: str) -> None:
    # When an object is put (the SDK checks the CRC-64 the emulator returns)
    put = client.put_object(
        oss.PutObjectRequest(
            bucket=bucket,
            key="reports/2024/sweep.json",
            body=b'{"ok": true}',
            content_type="application/json",
        )
    )

    # Then it reads back with the same bytes, type and ETag
    got = client.get_object(oss.GetObjectRequest(bucket=bucket, key="reports/2024/sweep.json"))
    assert got.body.read() == b'{"ok": true}'
    assert got.content_type == "application/json"
    assert got.etag == put.etag and put.etag.startswith('"')
    assert got.hash_crc64 == put.hash_crc64

    head = client.head_object(oss.HeadObjectRequest(bucket=bucket, key="reports/2024/sweep.json"))
    assert (head.content_length, head.etag) == (12, put.etag)

    # And once deleted, or never written, a key is NoSuchKey
    client.delete_object(oss.DeleteObjectRequest(bucket=bucket, key="reports/2024/sweep.json"))
    for key in ("reports/2024/sweep.json", "nope"):
        err = service_error(client.get_object, oss.GetObjectRequest(bucket=bucket, key=key))
        assert (err.status_code, err.code, err.ec) == (404, "NoSuchKey", "0026-00000001")


# --------------------------------------------------------------------------- in process
# What the wire cannot show: the edge's view of a change, and names the SDK refuses itself.


def call_handler(
    state: State, handler: Callable[[OssContext], Any], method: str, bucket: str, **query: str
) -> Any:
    body = query.pop("body", "").encode()
    request = Request(method, f"/{bucket}", f"/{bucket}", dict(query), "", {}, body)
    return handler(OssContext(state, request, bucket, ""))


@pytest.mark.parametrize("name", ["ab", "Upper-case", "-leading", "trailing-", "under_score"])
def test_the_service_refuses_invalid_bucket_names(name: str) -> None:
    state = State()
    with pytest.raises(ServiceError) as info:
        call_handler(state, emu_oss.put_bucket, "PUT", name)
    assert (info.value.status, info.value.code) == (400, "InvalidBucketName")
    assert name not in state.buckets


def test_certificate_and_policy_changes_reach_the_edge_after_the_delay(pki: TestPki) -> None:
    # Given a stopped clock, a 0.3 s propagation delay, a bucket and a CAS certificate
    clock = [1_000_000.0]
    state = State(propagation_delay=0.3, clock=lambda: clock[0])
    call_handler(state, emu_oss.put_bucket, "PUT", "assets")
    chain, key = pki.issue(["www.example.com"])
    with state.lock:
        cert = certinfo.make_cas_certificate(state, name="www", cert_pem=chain, key_pem=key)
        cas.add_certificate(state, cert)

    # When the domain is proven ours (its token in DNS), bound with it, and a policy is put
    with state.lock:
        state.cname_tokens[("assets", "www.example.com")] = ("t0ken", clock[0] + 3600)
        state.dns_txt["_dnsauth.www.example.com"] = "t0ken"
    cname_xml = (
        "<BucketCnameConfiguration><Cname><Domain>www.example.com</Domain>"
        f"<CertificateConfiguration><CertId>{cert.identifier}</CertId>"
        "</CertificateConfiguration></Cname></BucketCnameConfiguration>"
    )
    call_handler(state, emu_oss.put_cname, "POST", "assets", cname="", comp="add", body=cname_xml)
    document = json.dumps(https_only("assets"))
    call_handler(state, emu_oss.put_bucket_policy, "PUT", "assets", policy="", body=document)

    # Then the control plane shows both at once, the edge only once the delay has passed
    binding = state.find_cname("www.example.com")
    policy = state.buckets["assets"].policy
    assert binding is not None and binding.certificate.latest() is not None
    assert binding.certificate.at(clock[0]) is None and policy.at(clock[0]) is None
    served = binding.certificate.at(clock[0] + 0.3)
    assert served is not None and served.cert_id == cert.id and served.cert_type == "CAS"
    assert policy.at(clock[0] + 0.3) == document

    # And a deleted policy keeps being served until the delay has passed again
    clock[0] += 10
    call_handler(state, emu_oss.delete_bucket_policy, "DELETE", "assets", policy="")
    assert policy.latest() is None
    assert policy.at(clock[0]) == document and policy.at(clock[0] + 0.3) is None
