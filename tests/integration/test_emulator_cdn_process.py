"""The CDN API of a real `python -m emulator` process, end to end through the real SDKs.

One scenario as certpilot plays it: a certificate uploaded to CAS, a domain added to
CDN, the certificate deployed by CertId, HTTPS forced, and every change watched until
it has propagated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alibabacloud_cas20200407 import models as cas_models
from alibabacloud_cdn20180510 import models as cdn_models
from alibabacloud_tea_openapi.exceptions import ClientException

from emulator.pki import TestPki
from tests.integration.polling import poll

pytestmark = pytest.mark.integration

TIMEOUT = 10.0  # seconds a change may take to show
DOMAIN = "img.assets.example.com"
FUNCTIONS = (
    '[{"functionName":"https_force","functionArgs":[{"argName":"enable","argValue":"on"}]},'
    '{"functionName":"HSTS","functionArgs":[{"argName":"enabled","argValue":"on"},'
    '{"argName":"https_hsts_max_age","argValue":"5184000"}]}]'
)


def test_certificate_rollout_on_a_new_cdn_domain(cloud: Any, tmp_path: Path):
    cloud.settings(propagation_delay=0.2)
    cdn, cas = cloud.cdn_client(), cloud.cas_client()
    # Given a wildcard certificate in CAS
    chain, key = TestPki.create(tmp_path).issue(["*.assets.example.com"])
    upload = cas_models.UploadUserCertificateRequest(name="assets-wild", cert=chain, key=key)
    cert_id = cas.upload_user_certificate(upload).body.cert_id

    # When a domain is added, it cannot be configured before it is online
    cdn.add_cdn_domain(
        cdn_models.AddCdnDomainRequest(
            domain_name=DOMAIN,
            cdn_type="web",
            sources='[{"content":"assets.oss-cn-hangzhou.aliyuncs.com","type":"oss",'
            '"port":80,"priority":"20","weight":"10"}]',
        )
    )
    deploy = cdn_models.SetCdnDomainSSLCertificateRequest(
        domain_name=DOMAIN, sslprotocol="on", cert_type="cas", cert_id=cert_id
    )
    with pytest.raises(ClientException) as busy:
        cdn.set_cdn_domain_sslcertificate(deploy)
    assert (busy.value.status_code, busy.value.code) == (403, "ServiceBusy")

    def listed() -> Any:
        request = cdn_models.DescribeUserDomainsRequest(domain_name=DOMAIN)
        return cdn.describe_user_domains(request).body.domains.page_data[0]

    assert listed().domain_status == "configuring"
    poll(listed, lambda d: d.domain_status == "online", timeout=TIMEOUT)

    # Then the certificate is deployed by CertId and checked until it reached the edge
    cdn.set_cdn_domain_sslcertificate(deploy)

    def cert_info() -> Any:
        request = cdn_models.DescribeDomainCertificateInfoRequest(domain_name=DOMAIN)
        return cdn.describe_domain_certificate_info(request).body.cert_infos.cert_info[0]

    info = poll(cert_info, lambda i: i.status == "success", timeout=TIMEOUT)
    assert (info.cert_id, info.cert_type, info.cert_name) == (str(cert_id), "cas", "assets-wild")

    # and HTTPS is forced with HSTS, both reported success once propagated
    cdn.batch_set_cdn_domain_config(
        cdn_models.BatchSetCdnDomainConfigRequest(domain_names=DOMAIN, functions=FUNCTIONS)
    )

    def configs() -> list[Any]:
        request = cdn_models.DescribeCdnDomainConfigsRequest(domain_name=DOMAIN)
        return list(cdn.describe_cdn_domain_configs(request).body.domain_configs.domain_config)

    done = poll(configs, lambda cs: {c.status for c in cs} == {"success"}, timeout=TIMEOUT)
    assert sorted(c.function_name for c in done) == ["HSTS", "https_force"]
    by_func = cdn.describe_cdn_user_domains_by_func(
        cdn_models.DescribeCdnUserDomainsByFuncRequest(func_id=44)
    ).body
    assert [d.domain_name for d in by_func.domains.page_data] == [DOMAIN]
    assert poll(listed, lambda d: d.domain_status == "online", timeout=TIMEOUT).ssl_protocol == "on"
    # and the platform counted the refused and the accepted deployment
    counts = cloud.action_stats("cdn:SetCdnDomainSSLCertificate")
    assert (counts["calls"], counts["errors"]) == (2, 1)
