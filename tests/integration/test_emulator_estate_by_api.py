"""A small estate built through the real SDKs alone, then visited on the live edge.

DESIGN §7 promises that the emulator's state "can be built entirely through the real
APIs". This scenario does exactly that against `python -m emulator` (the `cloud`
fixture): no estate file, no admin call other than the fixture's reset. It builds what
certpilot deploys (a bucket with a page, a CAS certificate, an OSS custom domain bound
by CertId, a CDN domain with an OSS origin, HTTPS forced with HSTS, an HTTPS-only
bucket policy), then checks what a browser sees with real TLS handshakes: the served
leaf and chain, 403 for plain HTTP on the HTTPS-only bucket, 301 and HSTS on the CDN
domain, the HTTP-origin CDN domain broken by the policy until its origin protocol is
HTTPS, a failed handshake for a name nobody configured, and every change reaching the
edge only after the propagation delay.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_cas20200407 import models as cas_models
from alibabacloud_cdn20180510 import models as cdn_models
from alibabacloud_tea_openapi.exceptions import ClientException

from emulator.pki import TestPki
from emulator.policy import https_only_policy  # the statement certpilot adds
from tests.conftest import Emulator
from tests.integration.polling import poll
from tests.integration.test_emulator_edge import (
    Reply,
    client_context,
    ders,
    fetch,
    handshake,
    leaf_der,
    served_chain,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")
BUCKET = "assets-prod"
OSS_DOMAIN = "static.example.com"
CDN_DOMAIN = "cdn.example.com"
PAGE = b"<p>served from assets-prod</p>"
HSTS_MAX_AGE = "5184000"
ORIGIN = f"{BUCKET}.oss-cn-hangzhou.aliyuncs.com"


def eventually(probe: Callable[[], T], accept: Callable[[T], bool]) -> T:
    """Poll `probe` until `accept` holds for its value (TLS/connection errors retry)."""
    return poll(probe, accept, retry_on=(ssl.SSLError, OSError))


def not_yet_served(written: float, delay: float, probe: Callable[[], object]) -> None:
    """Until `delay` seconds after `written` (taken before the write), `probe` must fail.

    A probe that succeeds only fails the test if it ran inside the delay, so a slow
    machine cannot make this flaky.
    """
    try:
        probe()
    except (ssl.SSLError, OSError):
        return
    assert time.monotonic() - written >= delay, "the edge served a change before the delay"


def functions(**features: dict[str, str]) -> str:
    """The `Functions` JSON of BatchSetCdnDomainConfig."""
    return json.dumps(
        [
            {
                "functionName": name,
                "functionArgs": [{"argName": k, "argValue": v} for k, v in args.items()],
            }
            for name, args in features.items()
        ]
    )


def test_an_estate_built_through_the_sdks_alone_is_served_by_the_edge(
    cloud: Emulator, tmp_path: Path
) -> None:
    assert cloud.https and cloud.http
    https_port = int(cloud.https.rsplit(":", 1)[1])
    http_port = int(cloud.http.rsplit(":", 1)[1])
    delay = float(cloud.settings()["propagation_delay"])  # the default, 0.3 s
    store, cdn, cas = cloud.oss_client(), cloud.cdn_client(), cloud.cas_client()
    customer_ca = TestPki.create(tmp_path)  # the customer's own CA, unknown to the emulator
    browser = client_context(customer_ca.ca_bundle_path)

    def https(host: str) -> Reply:
        return fetch(https_port, host, tls=browser)

    def http(host: str) -> Reply:
        return fetch(http_port, host)

    # Given a bucket with a page, and a CDN domain pulling it over HTTP (port 80)
    store.put_bucket(oss.PutBucketRequest(bucket=BUCKET))
    store.put_object(
        oss.PutObjectRequest(bucket=BUCKET, key="index.html", body=PAGE, content_type="text/html")
    )
    source = {"type": "oss", "content": ORIGIN, "port": 80, "priority": "20", "weight": "10"}
    cdn.add_cdn_domain(
        cdn_models.AddCdnDomainRequest(
            domain_name=CDN_DOMAIN, cdn_type="web", sources=json.dumps([source])
        )
    )
    # and a wildcard certificate uploaded to CAS, read back the way certpilot does (no key)
    chain, key = customer_ca.issue(["*.example.com"], days=120)
    cert_id = cas.upload_user_certificate(
        cas_models.UploadUserCertificateRequest(name="wild-example-com", cert=chain, key=key)
    ).body.cert_id
    detail = cas.get_user_certificate_detail(
        cas_models.GetUserCertificateDetailRequest(cert_id=cert_id, cert_filter=True)
    ).body
    assert detail.cert is None and detail.key is None
    assert [c.common_name for c in detail.cert_chain] == ["*.example.com", "Emulator CA One"]

    # When the custom domain, proven ours (token in its _dnsauth TXT record), is bound by
    # CertId and the bucket is made HTTPS-only
    cloud.verify_domain(BUCKET, OSS_DOMAIN)
    written = time.monotonic()
    store.put_cname(
        oss.PutCnameRequest(
            bucket=BUCKET,
            bucket_cname_configuration=oss.BucketCnameConfiguration(
                cname=oss.Cname(
                    domain=OSS_DOMAIN,
                    certificate_configuration=oss.CertificateConfiguration(
                        cert_id=detail.cert_identifier
                    ),
                )
            ),
        )
    )
    store.put_bucket_policy(
        oss.PutBucketPolicyRequest(bucket=BUCKET, body=https_only_policy(BUCKET))
    )

    # Then the edge serves nothing for it until the propagation delay has passed
    not_yet_served(written, delay, lambda: handshake(https_port, OSS_DOMAIN, browser))
    leaf = eventually(lambda: handshake(https_port, OSS_DOMAIN, browser), bool)
    # and then exactly the uploaded chain, verified by a browser trusting the customer's CA
    assert leaf == leaf_der(chain, key)
    assert served_chain(https_port, OSS_DOMAIN) == ders(chain)
    # and plain HTTP is denied by the bucket policy while HTTPS serves the page
    denied = eventually(lambda: http(OSS_DOMAIN), lambda r: r.status == 403)
    assert b"<Code>AccessDenied</Code>" in denied.body
    page = https(OSS_DOMAIN)
    assert (page.status, page.body) == (200, PAGE)
    # and a name nobody configured fails the handshake
    with pytest.raises(ssl.SSLError):
        handshake(https_port, "nobody.example.com", browser)
    # and the control plane lists the binding with its certificate block
    listed = store.list_cname(oss.ListCnameRequest(bucket=BUCKET)).cnames
    assert [(c.domain, c.certificate.cert_id) for c in listed] == [
        (OSS_DOMAIN, detail.cert_identifier)
    ]

    # When the CDN domain is online, gets the certificate, forced HTTPS and HSTS
    def cdn_status() -> str:
        request = cdn_models.DescribeUserDomainsRequest(domain_name=CDN_DOMAIN)
        return str(cdn.describe_user_domains(request).body.domains.page_data[0].domain_status)

    eventually(cdn_status, lambda status: status == "online")
    written = time.monotonic()
    cdn.set_cdn_domain_sslcertificate(
        cdn_models.SetCdnDomainSSLCertificateRequest(
            domain_name=CDN_DOMAIN, sslprotocol="on", cert_type="cas", cert_id=cert_id
        )
    )
    features = cdn_models.BatchSetCdnDomainConfigRequest(
        domain_names=CDN_DOMAIN,
        functions=functions(
            https_force={"enable": "on", "https_rewrite": "301"},
            HSTS={"enabled": "on", "https_hsts_max_age": HSTS_MAX_AGE},
        ),
    )
    # Then it is `configuring` while the certificate propagates, and a write meanwhile is
    # refused as busy (unless this machine was slower than the delay)
    try:
        cdn.batch_set_cdn_domain_config(features)
        refused = None
    except ClientException as error:
        refused = (error.status_code, error.code)
    assert refused == (403, "ServiceBusy") or time.monotonic() - written >= delay
    assert cdn_status() == "configuring" or time.monotonic() - written >= delay
    # and once it is online again the features can be set
    eventually(cdn_status, lambda status: status == "online")
    if refused is not None:
        cdn.batch_set_cdn_domain_config(features)
    assert eventually(lambda: handshake(https_port, CDN_DOMAIN, browser), bool) == leaf
    # and plain HTTP is redirected to HTTPS with 301
    moved = eventually(lambda: http(CDN_DOMAIN), lambda r: r.status == 301)
    assert moved.headers["location"] == f"https://{CDN_DOMAIN}/"
    # but CDN still pulls its origin over HTTP, which the bucket policy denies
    broken = https(CDN_DOMAIN)
    assert broken.status == 403 and b"<Code>AccessDenied</Code>" in broken.body

    # When the origin protocol is switched to HTTPS (once the features have settled)
    eventually(cdn_status, lambda status: status == "online")
    cdn.batch_set_cdn_domain_config(
        cdn_models.BatchSetCdnDomainConfigRequest(
            domain_names=CDN_DOMAIN,
            functions=functions(forward_scheme={"enable": "on", "scheme_origin": "https"}),
        )
    )

    # Then the CDN domain serves the page over HTTPS with HSTS
    served = eventually(lambda: https(CDN_DOMAIN), lambda r: r.status == 200)
    assert served.body == PAGE
    assert served.headers["strict-transport-security"] == f"max-age={HSTS_MAX_AGE}"
    # and the control plane reports everything settled once every edge node has it
    eventually(cdn_status, lambda status: status == "online")
    info = cdn.describe_domain_certificate_info(
        cdn_models.DescribeDomainCertificateInfoRequest(domain_name=CDN_DOMAIN)
    ).body.cert_infos.cert_info[0]
    assert (info.cert_id, info.cert_type, info.status) == (str(cert_id), "cas", "success")
    configs = cdn.describe_cdn_domain_configs(
        cdn_models.DescribeCdnDomainConfigsRequest(domain_name=CDN_DOMAIN)
    ).body.domain_configs.domain_config
    assert {(c.function_name, c.status) for c in configs} == {
        ("https_force", "success"),
        ("HSTS", "success"),
        ("forward_scheme", "success"),
    }
