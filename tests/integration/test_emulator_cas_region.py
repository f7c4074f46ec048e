"""The account's CAS site (China `cn-hangzhou`, International `ap-southeast-1`) through the
real SDKs: the CertIdentifier CAS gives, the CertRegion CDN accepts, the CertId OSS takes.
"""

from __future__ import annotations

from typing import Any

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_cas20200407 import models as cas_models
from alibabacloud_cdn20180510 import models as cdn_models
from alibabacloud_tea_openapi.exceptions import ClientException

from tests.conftest import Emulator, EmulatorError

pytestmark = pytest.mark.integration

ESTATE: dict[str, Any] = {
    "buckets": [{"name": "assets", "cnames": [{"domain": "static.example.com"}]}],
    "cdn_domains": [{"name": "cdn.example.com", "origin": "assets"}],
}


def _set_cdn(cloud: Emulator, cert_id: int, region: str | None) -> None:
    cloud.cdn_client().set_cdn_domain_sslcertificate(
        cdn_models.SetCdnDomainSSLCertificateRequest(
            domain_name="cdn.example.com",
            sslprotocol="on",
            cert_type="cas",
            cert_id=cert_id,
            cert_region=region,
        )
    )


def _put_cname(cloud: Emulator, cert_id: str) -> None:
    config = oss.CertificateConfiguration(cert_id=cert_id, force=True)
    cloud.oss_client(retries=1).put_cname(
        oss.PutCnameRequest(
            bucket="assets",
            bucket_cname_configuration=oss.BucketCnameConfiguration(
                cname=oss.Cname(domain="static.example.com", certificate_configuration=config)
            ),
        )
    )


def test_an_international_account_holds_its_certificates_in_ap_southeast_1(
    cloud: Emulator,
) -> None:
    # Given an International-site account
    assert cloud.settings(cas_region="ap-southeast-1")["cas_region"] == "ap-southeast-1"
    cloud.load_estate(ESTATE)
    cert_id = cloud.admin("POST", "cas/issue", {"sans": ["*.example.com"]})["certId"]
    # Then CAS names its certificates `<id>-ap-southeast-1`
    detail = (
        cloud.cas_client()
        .get_user_certificate_detail(
            cas_models.GetUserCertificateDetailRequest(cert_id=cert_id, cert_filter=True)
        )
        .body
    )
    assert detail.cert_identifier == f"{cert_id}-ap-southeast-1"
    # And CDN finds it only in that CertRegion (the default cn-hangzhou included)
    for wrong in (None, "cn-hangzhou"):
        with pytest.raises(ClientException) as refused:
            _set_cdn(cloud, cert_id, wrong)
        assert refused.value.code == "Certificate.NotFind"
    _set_cdn(cloud, cert_id, "ap-southeast-1")
    # And OSS binds it by that CertIdentifier only
    with pytest.raises(oss.exceptions.OperationError) as unknown:
        _put_cname(cloud, f"{cert_id}-cn-hangzhou")
    assert unknown.value.unwrap().code == "InvalidArgument"
    _put_cname(cloud, f"{cert_id}-ap-southeast-1")
    state = cloud.state()
    assert state["cdn_domains"]["cdn.example.com"]["ssl"]["cert_region"] == "ap-southeast-1"
    bound = state["buckets"]["assets"]["cnames"]["static.example.com"]["certificate"]
    assert (bound["cert_id"], bound["cert_region"]) == (cert_id, "ap-southeast-1")


def test_the_cas_region_setting_takes_only_the_two_sites_and_reset_restores_it(
    cloud: Emulator,
) -> None:
    with pytest.raises(EmulatorError):
        cloud.settings(cas_region="eu-central-1")
    cloud.settings(cas_region="ap-southeast-1")
    cloud.reset()
    assert cloud.settings()["cas_region"] == "cn-hangzhou"
