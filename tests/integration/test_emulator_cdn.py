"""The emulator's CDN 2018-05-10 API, driven through the real `alibabacloud_cdn20180510` SDK.

Scenarios: adding domains and watching them propagate, listing and paging, certificates
(CAS and uploaded) with their validation errors, feature configs with their conflicts,
and the certificate queries certpilot's sweeps rely on.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alibabacloud_cdn20180510 import models as cdn_models
from alibabacloud_cdn20180510.client import Client
from alibabacloud_tea_openapi import utils_models as open_api_models
from alibabacloud_tea_openapi.exceptions import ClientException
from darabonba.runtime import RuntimeOptions

from emulator.certinfo import make_cas_certificate
from emulator.pki import TestPki
from emulator.server import App, ControlPlane
from emulator.state import CasCertificate, CdnDomain, State
from tests.integration.polling import poll

pytestmark = pytest.mark.integration

DELAY = 0.25  # propagation delay used by the scenarios that watch a change settle
OSS_ORIGIN = '[{"content":"assets.oss-cn-hangzhou.aliyuncs.com","type":"oss","port":80}]'
HTTPS_FORCE_ON = (
    '[{"functionName":"https_force","functionArgs":'
    '[{"argName":"enable","argValue":"on"},{"argName":"https_rewrite","argValue":"301"}]}]'
)
HTTP_FORCE_ON = (
    '[{"functionName":"http_force","functionArgs":[{"argName":"enable","argValue":"on"}]}]'
)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def control_plane() -> Iterator[tuple[ControlPlane, State]]:
    """The control plane in-process: the scenarios read and seed `State` directly."""
    # The Tea clients send even 127.0.0.1 traffic to a proxy when one is configured.
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        os.environ.pop(name, None)
    emulated = State(propagation_delay=0.0)
    app = App(emulated)
    # Flow control has its own tests; here many calls of one action follow each other.
    app.platform.throttle.configure(qps_scale=100.0)
    plane = ControlPlane(app).start()
    yield plane, emulated
    plane.close()


@pytest.fixture
def state(control_plane: tuple[ControlPlane, State]) -> State:
    emulated = control_plane[1]
    emulated.reset()
    emulated.propagation_delay = 0.0
    return emulated


@pytest.fixture
def cdn(control_plane: tuple[ControlPlane, State], state: State) -> Client:
    plane = control_plane[0]
    return Client(
        open_api_models.Config(
            access_key_id=state.access_key_id,
            access_key_secret=state.access_key_secret,
            endpoint=f"{plane.host}:{plane.port}",
            protocol="http",
        )
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("cdn-pki"))


def issue(pki: TestPki, *sans: str, **recipe: Any) -> tuple[str, str]:
    return pki.issue(list(sans), **recipe)


def add_cas(state: State, name: str, chain: str, key: str) -> CasCertificate:
    """Put a certificate into the emulated CAS, as UploadUserCertificate would."""
    with state.lock:
        cert = make_cas_certificate(state, name=name, cert_pem=chain, key_pem=key)
        state.certificates[cert.id] = cert
    return cert


def add_domain(cdn: Client, name: str, sources: str = OSS_ORIGIN) -> None:
    cdn.add_cdn_domain(
        cdn_models.AddCdnDomainRequest(domain_name=name, cdn_type="web", sources=sources)
    )


def insert_domains(state: State, names: list[str]) -> None:
    """Create many online domains at once, as an estate would (no API round trips)."""
    with state.lock:
        for i, name in enumerate(names):
            state.cdn_domains[name] = CdnDomain(
                name=name,
                cdn_type="web",
                sources=[
                    {
                        "type": "oss",
                        "content": "b.oss-cn-hangzhou.aliyuncs.com",
                        "port": 80,
                        "priority": "20",
                        "weight": "10",
                    }
                ],
                cname=f"{name}.w.kunlunca.com",
                created=1_700_000_000 + i,
            )


def error_of(call: Callable[[], Any]) -> ClientException:
    with pytest.raises(ClientException) as caught:
        call()
    return caught.value


def set_configs(cdn: Client, domains: str, functions: str) -> Any:
    return cdn.batch_set_cdn_domain_config(
        cdn_models.BatchSetCdnDomainConfigRequest(domain_names=domains, functions=functions)
    ).body


def configs(cdn: Client, domain: str, names: str | None = None) -> list[Any]:
    body = cdn.describe_cdn_domain_configs(
        cdn_models.DescribeCdnDomainConfigsRequest(domain_name=domain, function_names=names)
    ).body
    return list(body.domain_configs.domain_config)


def set_cas(cdn: Client, domain: str, cert_id: int, protocol: str = "on") -> None:
    cdn.set_cdn_domain_sslcertificate(
        cdn_models.SetCdnDomainSSLCertificateRequest(
            domain_name=domain, sslprotocol=protocol, cert_type="cas", cert_id=cert_id
        )
    )


def call_generic(cdn: Client, action: str, query: dict[str, str], body_type: str) -> Any:
    """An action the current SDK has no method for, through the generic call_api."""
    params = open_api_models.Params(
        action=action,
        version="2018-05-10",
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type=body_type,
        body_type="json",
    )
    return cdn.call_api(params, open_api_models.OpenApiRequest(query=query), RuntimeOptions())


# --------------------------------------------------------------------------- domains


def test_added_domain_is_configuring_until_propagated_then_online(cdn: Client, state: State):
    # Given a propagation delay
    state.propagation_delay = DELAY
    # When a domain with an OSS origin is added
    add_domain(cdn, "static.example.com")

    # Then it is listed as configuring at first, with its CNAME and typed origin fields
    def detail() -> Any:
        request = cdn_models.DescribeCdnDomainDetailRequest(domain_name="static.example.com")
        return cdn.describe_cdn_domain_detail(request).body.get_domain_detail_model

    first = detail()
    assert first.domain_status == "configuring"
    assert first.cname == "static.example.com.w.kunlunca.com"
    assert first.server_certificate_status == "off"
    source = first.source_models.source_model[0]
    assert (source.type, source.content, source.port) == (
        "oss",
        "assets.oss-cn-hangzhou.aliyuncs.com",
        80,
    )
    assert datetime.strptime(first.gmt_created, "%Y-%m-%dT%H:%M:%SZ")
    # and online once the change has propagated
    assert poll(detail, lambda m: m.domain_status == "online").cdn_type == "web"


def test_writes_to_a_domain_still_being_added_answer_service_busy(cdn: Client, state: State):
    state.propagation_delay = 5.0
    add_domain(cdn, "busy.example.com")
    err = error_of(lambda: set_configs(cdn, "busy.example.com", HTTPS_FORCE_ON))
    assert (err.status_code, err.code) == (403, "ServiceBusy")


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("domain_name", "not a domain", "InvalidDomainName.Malformed"),
        ("domain_name", "localhost", "InvalidDomainName.Malformed"),
        ("cdn_type", "live", "InvalidCdnType.ValueNotSupported"),
        ("sources", "not json", "InvalidSources.Malformed"),
        ("sources", '[{"content":"1.2.3","type":"ipaddr"}]', "InvalidSources.Malformed"),
        ("sources", '[{"content":"a.example.com","type":"ftp"}]', "InvalidSources.Malformed"),
        ("scope", "moon", "InvalidScope.ValueNotSupported"),
    ],
)
def test_add_domain_rejects_invalid_input(cdn: Client, field: str, value: str, code: str):
    request = cdn_models.AddCdnDomainRequest(
        domain_name="ok.example.com", cdn_type="web", sources=OSS_ORIGIN
    )
    setattr(request, field, value)
    err = error_of(lambda: cdn.add_cdn_domain(request))
    assert (err.status_code, err.code) == (400, code)


def test_adding_a_domain_twice_is_refused(cdn: Client):
    add_domain(cdn, "twice.example.com")
    err = error_of(lambda: add_domain(cdn, "TWICE.example.com"))
    assert (err.status_code, err.code) == (400, "DomainAlreadyExist")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("faß.example.com", "xn--fa-hia.example.com"),  # IDNA 2003 would say fass
        ("*.Bücher.example", "*.xn--bcher-kva.example"),
        ("ＷＷＷ．example．com", "www.example.com"),  # UTS 46 maps full-width forms
    ],
)
def test_domain_names_are_stored_as_idna_2008_a_labels(
    cdn: Client, state: State, pki: TestPki, given: str, stored: str
):
    # Given a domain added under its Unicode name
    add_domain(cdn, given)
    # Then it is listed under its UTS 46 / IDNA 2008 A-label, as browsers and CAs spell it
    listed = cdn.describe_user_domains(cdn_models.DescribeUserDomainsRequest()).body
    assert [d.domain_name for d in listed.domains.page_data] == [stored]
    # and a certificate issued for the Unicode name (A-labels in its SANs) covers it
    poll(lambda: state.cdn_domains[stored].status.latest(), lambda s: s == "online")
    cert = add_cas(state, "idn", *issue(pki, given))
    set_cas(cdn, given, cert.id)
    assert cert_info(cdn, stored).cert_id == str(cert.id)


def test_user_domains_page_up_to_500_with_typed_fields(cdn: Client, state: State):
    # Given 1,200 domains
    insert_domains(state, [f"d{i:04d}.example.com" for i in range(1200)])

    def page(number: int, size: int = 500) -> Any:
        request = cdn_models.DescribeUserDomainsRequest(page_number=number, page_size=size)
        return cdn.describe_user_domains(request).body

    # When they are listed 500 at a time, then the pages hold 500, 500 and 200 domains
    pages = [page(n) for n in (1, 2, 3)]
    assert [len(p.domains.page_data) for p in pages] == [500, 500, 200]
    assert {p.total_count for p in pages} == {1200}
    names = [d.domain_name for p in pages for d in p.domains.page_data]
    assert len(set(names)) == 1200
    first = pages[0].domains.page_data[0]
    assert (first.ssl_protocol, first.domain_status) == ("off", "online")
    assert first.sources.source[0].port == 80 and first.sources.source[0].priority == "20"
    # and a page size over 500 is refused
    assert error_of(lambda: page(1, 501)).code == "InvalidParameter"


@pytest.mark.parametrize(
    ("needle", "how", "expected"),
    [
        # no DomainSearchType: exact match (the SDK's documented default)
        ("shop", None, []),
        ("shop.example.com", None, ["shop.example.com"]),
        (
            "shop.example.com,Shop.Example.org,nope.example.com",
            None,
            ["shop.example.com", "shop.example.org"],
        ),
        ("shop", "fuzzy_match", ["cdn.shop.example.com", "shop.example.com", "shop.example.org"]),
        ("shop", "pre_match", ["shop.example.com", "shop.example.org"]),
        (".org", "suf_match", ["shop.example.org"]),
        ("shop.example.com", "full_match", ["shop.example.com"]),
    ],
)
def test_user_domains_search(cdn: Client, state: State, needle: str, how: str | None, expected):
    insert_domains(
        state, ["shop.example.com", "cdn.shop.example.com", "shop.example.org", "blog.example.com"]
    )
    request = cdn_models.DescribeUserDomainsRequest(domain_name=needle, domain_search_type=how)
    body = cdn.describe_user_domains(request).body
    assert sorted(d.domain_name for d in body.domains.page_data) == expected
    assert body.total_count == len(expected)


def test_user_domains_filter_by_status(cdn: Client, state: State):
    insert_domains(state, ["a.example.com", "b.example.com"])
    cdn.stop_cdn_domain(cdn_models.StopCdnDomainRequest(domain_name="b.example.com"))
    request = cdn_models.DescribeUserDomainsRequest(domain_status="offline")
    body = cdn.describe_user_domains(request).body
    assert [d.domain_name for d in body.domains.page_data] == ["b.example.com"]


def test_stop_start_delete_lifecycle(cdn: Client, state: State):
    insert_domains(state, ["life.example.com"])

    def status() -> str:
        request = cdn_models.DescribeCdnDomainDetailRequest(domain_name="life.example.com")
        return cdn.describe_cdn_domain_detail(request).body.get_domain_detail_model.domain_status

    cdn.stop_cdn_domain(cdn_models.StopCdnDomainRequest(domain_name="life.example.com"))
    assert status() == "offline"
    cdn.start_cdn_domain(cdn_models.StartCdnDomainRequest(domain_name="life.example.com"))
    assert status() == "online"
    cdn.delete_cdn_domain(cdn_models.DeleteCdnDomainRequest(domain_name="life.example.com"))
    assert error_of(status).code == "InvalidDomain.NotFound"


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.describe_cdn_domain_detail(
            cdn_models.DescribeCdnDomainDetailRequest(domain_name="nope.example.com")
        ),
        lambda c: c.describe_domain_certificate_info(
            cdn_models.DescribeDomainCertificateInfoRequest(domain_name="nope.example.com")
        ),
        lambda c: set_cas(c, "nope.example.com", 1),
        lambda c: set_configs(c, "nope.example.com", HTTPS_FORCE_ON),
        lambda c: configs(c, "nope.example.com"),
        lambda c: c.delete_specific_config(
            cdn_models.DeleteSpecificConfigRequest(domain_name="nope.example.com", config_id="1")
        ),
        lambda c: c.stop_cdn_domain(
            cdn_models.StopCdnDomainRequest(domain_name="nope.example.com")
        ),
    ],
    ids=["detail", "cert-info", "set-cert", "set-config", "configs", "delete-config", "stop"],
)
def test_unknown_domain_is_not_found(cdn: Client, call: Callable[[Client], Any]):
    err = error_of(lambda: call(cdn))
    assert (err.status_code, err.code) == (404, "InvalidDomain.NotFound")


# --------------------------------------------------------------------------- configs


def test_batch_config_returns_config_ids_and_propagates(cdn: Client, state: State):
    # Given two domains and a propagation delay
    insert_domains(state, ["a.example.com", "b.example.com"])
    state.propagation_delay = DELAY
    # When HTTPS is forced and HSTS enabled on both in one call
    functions = (
        HTTPS_FORCE_ON[:-1] + ',{"functionName":"HSTS","functionArgs":['
        '{"argName":"enabled","argValue":"on"},{"argName":"https_hsts_max_age","argValue":5184000}'
        "]}]"
    )
    body = set_configs(cdn, "a.example.com,b.example.com", functions)
    # Then each domain x function gets a numeric ConfigId
    models = body.domain_config_list.domain_config_model
    assert sorted((m.domain_name, m.function_name) for m in models) == [
        ("a.example.com", "HSTS"),
        ("a.example.com", "https_force"),
        ("b.example.com", "HSTS"),
        ("b.example.com", "https_force"),
    ]
    assert all(isinstance(m.config_id, int) for m in models)
    # and the configs read back with string ConfigIds, args exactly as given, configuring first
    listed = configs(cdn, "a.example.com")
    assert {c.status for c in listed} == {"configuring"}
    https = next(c for c in listed if c.function_name == "https_force")
    assert https.config_id in {str(m.config_id) for m in models}
    args = [(a.arg_name, a.arg_value) for a in https.function_args.function_arg]
    assert args == [("enable", "on"), ("https_rewrite", "301")]
    # and the edge sees them only after the delay
    domain = state.cdn_domains["a.example.com"]
    assert domain.configs.at(state.now()) == ()
    settled = poll(lambda: configs(cdn, "a.example.com"), lambda cs: cs[0].status == "success")
    assert {c.status for c in settled} == {"success"}
    hsts = next(c for c in domain.configs.at(state.now()) if c.function_name == "HSTS")
    assert hsts.arg("https_hsts_max_age") == "5184000"
    # and the function filter narrows the read-back
    assert [c.function_name for c in configs(cdn, "a.example.com", "HSTS")] == ["HSTS"]


def test_https_force_and_http_force_exclude_each_other(cdn: Client, state: State):
    # Given a domain with http_force (switched off still counts)
    insert_domains(state, ["mutex.example.com"])
    off = HTTP_FORCE_ON.replace('"on"', '"off"')
    http_id = set_configs(cdn, "mutex.example.com", off).domain_config_list.domain_config_model[0]
    # When https_force is set, then it is refused
    err = error_of(lambda: set_configs(cdn, "mutex.example.com", HTTPS_FORCE_ON))
    assert (err.status_code, err.code) == (400, "FunctionMutex")
    # and once http_force is deleted, https_force is accepted
    cdn.delete_specific_config(
        cdn_models.DeleteSpecificConfigRequest(
            domain_name="mutex.example.com", config_id=str(http_id.config_id)
        )
    )
    set_configs(cdn, "mutex.example.com", HTTPS_FORCE_ON)
    assert [c.function_name for c in configs(cdn, "mutex.example.com")] == ["https_force"]


def test_resetting_a_feature_replaces_it(cdn: Client, state: State):
    insert_domains(state, ["re.example.com"])
    first = set_configs(cdn, "re.example.com", HTTPS_FORCE_ON).domain_config_list
    first_id = first.domain_config_model[0].config_id
    # Without a configId: replaced under a new ConfigId
    second = set_configs(cdn, "re.example.com", HTTPS_FORCE_ON.replace("301", "308"))
    second_id = second.domain_config_list.domain_config_model[0].config_id
    assert second_id != first_id
    listed = configs(cdn, "re.example.com")
    assert [c.config_id for c in listed] == [str(second_id)]
    # With the existing configId: updated in place
    with_id = HTTPS_FORCE_ON.replace('"https_force",', f'"https_force","configId":{second_id},')
    third = set_configs(cdn, "re.example.com", with_id).domain_config_list.domain_config_model[0]
    assert third.config_id == second_id


@pytest.mark.parametrize(
    ("functions", "code"),
    [
        ("{not json", "InvalidFunctions.Malformed"),
        ('[{"functionArgs":[]}]', "InvalidFunctions.Malformed"),
        (
            '[{"functionName":"teleport","functionArgs":[]}]',
            "InvalidFunctionName.ValueNotSupported",
        ),
        ('[{"functionName":"https_force","functionArgs":[]}]', "MissingParameterenable"),
        (
            '[{"functionName":"https_force","functionArgs":[{"argName":"enable","argValue":"yes"}]}]',
            "InvalidArgValue.Malformed",
        ),
        (HTTPS_FORCE_ON.replace("301", "302"), "InvalidArgValue.Malformed"),
        (
            '[{"functionName":"gzip","functionArgs":[{"argName":"level","argValue":"9"}]}]',
            "InvalidArgName.ValueNotSupported",
        ),
        (HTTPS_FORCE_ON[:-1] + "," + HTTP_FORCE_ON[1:], "FunctionMutex"),
    ],
    ids=["json", "no-name", "unknown", "missing", "on-off", "rewrite", "arg", "same-call"],
)
def test_batch_config_validation(cdn: Client, state: State, functions: str, code: str):
    insert_domains(state, ["v.example.com"])
    err = error_of(lambda: set_configs(cdn, "v.example.com", functions))
    assert (err.status_code, err.code) == (400, code)
    assert state.cdn_domains["v.example.com"].configs.latest() == ()


def test_batch_config_is_all_or_nothing_across_domains(cdn: Client, state: State):
    insert_domains(state, ["ok.example.com"])
    err = error_of(lambda: set_configs(cdn, "ok.example.com,missing.example.com", HTTPS_FORCE_ON))
    assert err.code == "InvalidDomain.NotFound"
    assert state.cdn_domains["ok.example.com"].configs.latest() == ()
    too_many = ",".join(f"d{i}.example.com" for i in range(51))
    assert error_of(lambda: set_configs(cdn, too_many, HTTPS_FORCE_ON)).code == "TooManyDomains"


def test_delete_unknown_config_id(cdn: Client, state: State):
    insert_domains(state, ["del.example.com"])
    err = error_of(
        lambda: cdn.delete_specific_config(
            cdn_models.DeleteSpecificConfigRequest(domain_name="del.example.com", config_id="42")
        )
    )
    assert (err.status_code, err.code) == (404, "InvalidConfigId.NotFound")


def test_domains_by_function(cdn: Client, state: State):
    # Given https_force on two of three domains (one of them switched off)
    insert_domains(state, ["f1.example.com", "f2.example.com", "f3.example.com"])
    set_configs(cdn, "f1.example.com", HTTPS_FORCE_ON)
    set_configs(cdn, "f3.example.com", HTTPS_FORCE_ON.replace('"on"', '"off"'))

    def by_func(func_id: int, size: int = 50) -> Any:
        request = cdn_models.DescribeCdnUserDomainsByFuncRequest(func_id=func_id, page_size=size)
        return cdn.describe_cdn_user_domains_by_func(request).body

    # Then FuncId 44 lists both, with the same page data as DescribeUserDomains
    body = by_func(44)
    assert [d.domain_name for d in body.domains.page_data] == ["f1.example.com", "f3.example.com"]
    assert body.total_count == 2 and body.domains.page_data[0].sources.source[0].port == 80
    # and FuncId 112 (HSTS) lists none; page sizes over 50 are refused
    assert by_func(112).total_count == 0
    assert error_of(lambda: by_func(44, 51)).code == "InvalidParameter"


# --------------------------------------------------------------------------- certificates


def cert_info(cdn: Client, domain: str) -> Any:
    request = cdn_models.DescribeDomainCertificateInfoRequest(domain_name=domain)
    return cdn.describe_domain_certificate_info(request).body.cert_infos.cert_info[0]


def test_cas_certificate_is_checking_until_propagated(cdn: Client, state: State, pki: TestPki):
    # Given a domain and a CAS certificate covering it
    insert_domains(state, ["www.example.com"])
    cert = add_cas(state, "www-2025", *issue(pki, "www.example.com", "example.com"))
    state.propagation_delay = DELAY
    # When it is set on the domain
    set_cas(cdn, "www.example.com", cert.id)
    # Then the control plane reports it at once, as checking, and the domain as configuring
    info = cert_info(cdn, "www.example.com")
    assert (info.server_certificate_status, info.status) == ("on", "checking")
    assert (info.cert_id, info.cert_type, info.cert_region) == (str(cert.id), "cas", "cn-hangzhou")
    assert info.cert_name == "www-2025" and info.cert_domain_name == "www.example.com"
    assert info.cert_expire_time == cert.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert info.server_certificate.startswith("-----BEGIN CERTIFICATE-----")
    listed = cdn.describe_user_domains(cdn_models.DescribeUserDomainsRequest()).body
    assert (
        listed.domains.page_data[0].ssl_protocol,
        listed.domains.page_data[0].domain_status,
    ) == (
        "on",
        "configuring",
    )
    # while the edge still serves no certificate
    domain = state.cdn_domains["www.example.com"]
    assert domain.ssl.at(state.now()) is None
    # and after the delay both agree
    poll(lambda: cert_info(cdn, "www.example.com"), lambda i: i.status == "success")
    served = domain.ssl.at(state.now())
    assert served is not None and served.cert_id == cert.id


@pytest.mark.parametrize(
    ("sans", "domain", "ok"),
    [
        (("*.example.com",), "img.example.com", True),
        (("*.example.com",), "a.img.example.com", False),
        (("*.example.com",), "example.com", False),
        (("other.example.com",), "img.example.com", False),
    ],
)
def test_cas_certificate_must_cover_the_domain(
    cdn: Client, state: State, pki: TestPki, sans: tuple[str, ...], domain: str, ok: bool
):
    insert_domains(state, [domain])
    cert = add_cas(state, "c", *issue(pki, *sans))
    if ok:
        set_cas(cdn, domain, cert.id)
        assert state.cdn_domains[domain].ssl.latest() is not None
    else:
        err = error_of(lambda: set_cas(cdn, domain, cert.id))
        assert (err.status_code, err.code) == (400, "Certificate.MissMatch")
        assert state.cdn_domains[domain].ssl.latest() is None


def test_set_certificate_errors(cdn: Client, state: State, pki: TestPki):
    insert_domains(state, ["e.example.com"])
    past = datetime.now(timezone.utc) - timedelta(days=100)
    expired = add_cas(state, "old", *issue(pki, "e.example.com", days=30, not_before=past))
    chain, key = issue(pki, "e.example.com")
    _, other_key = issue(pki, "e.example.com")

    def upload(**fields: Any) -> Any:
        request = cdn_models.SetCdnDomainSSLCertificateRequest(
            domain_name="e.example.com", sslprotocol="on", cert_type="upload", **fields
        )
        return cdn.set_cdn_domain_sslcertificate(request)

    cases = {
        "Certificate.NotFind": lambda: set_cas(cdn, "e.example.com", 999),
        "Certificate.Expired": lambda: set_cas(cdn, "e.example.com", expired.id),
        "SSLPub.MissingParameter": lambda: upload(sslpri=key),
        "SSLPri.MissingParameter": lambda: upload(sslpub=chain),
        "InvalidSSLPub": lambda: upload(sslpub="hello", sslpri=key),
        "InvalidSSLPri": lambda: upload(sslpub=chain, sslpri="-----BEGIN PRIVATE " + "KEY-----x"),
        "Certificate.MissMatch": lambda: upload(sslpub=chain, sslpri=other_key),
        "InvalidSSLProtocol.ValueNotSupported": lambda: set_cas(cdn, "e.example.com", 1, "yes"),
    }
    got = {code: error_of(call).code for code, call in cases.items()}
    assert got == {code: code for code in cases}
    assert state.cdn_domains["e.example.com"].ssl.latest() is None


@pytest.mark.parametrize("shape", ["complete", "wrong-order"])
def test_uploaded_certificate_then_https_off(cdn: Client, state: State, pki: TestPki, shape: str):
    # Given a chain as uploaded (a careless wrong-order chain too: the key finds the leaf)
    insert_domains(state, ["up.example.com"])
    chain, key = issue(pki, "up.example.com", chain=shape)
    # When it is uploaded to the domain
    cdn.set_cdn_domain_sslcertificate(
        cdn_models.SetCdnDomainSSLCertificateRequest(
            domain_name="up.example.com",
            sslprotocol="on",
            cert_type="upload",
            cert_name="up-cert",
            sslpub=chain,
            sslpri=key,
        )
    )
    # Then it is reported as an upload and served exactly as given
    info = cert_info(cdn, "up.example.com")
    assert (info.cert_type, info.cert_name, info.cert_id) == ("upload", "up-cert", "")
    assert (info.cert_domain_name, info.server_certificate) == ("up.example.com", chain)
    # and SSLProtocol=off takes it away again
    cdn.set_cdn_domain_sslcertificate(
        cdn_models.SetCdnDomainSSLCertificateRequest(
            domain_name="up.example.com", sslprotocol="off"
        )
    )
    assert cert_info(cdn, "up.example.com").server_certificate_status == "off"
    assert state.cdn_domains["up.example.com"].ssl.at(state.now()) is None


def test_https_domain_list_reports_certificate_status(cdn: Client, state: State, pki: TestPki):
    request = cdn_models.DescribeCdnHttpsDomainListRequest(page_size=500)
    # Given no HTTPS domain, the list answers NoHttpsDomain
    insert_domains(state, ["h1.example.com", "h2.example.com", "plain.example.com"])
    assert error_of(lambda: cdn.describe_cdn_https_domain_list(request)).code == "NoHttpsDomain"
    # Given one long-lived and one soon-expiring certificate
    set_cas(cdn, "h1.example.com", add_cas(state, "long", *issue(pki, "h1.example.com")).id)
    set_cas(
        cdn, "h2.example.com", add_cas(state, "soon", *issue(pki, "h2.example.com", days=10)).id
    )
    # Then each HTTPS domain is listed with its certificate and status
    body = cdn.describe_cdn_https_domain_list(request).body
    assert body.total_count == 2
    rows = {i.domain_name: i for i in body.cert_infos.cert_info}
    assert (rows["h1.example.com"].cert_status, rows["h2.example.com"].cert_status) == (
        "ok",
        "expire_soon",
    )
    assert rows["h1.example.com"].cert_common_name == "h1.example.com"
    assert datetime.strptime(rows["h1.example.com"].cert_expire_time, "%Y-%m-%d %H:%M:%S")
    # and the keyword and page size narrow it
    narrowed = cdn.describe_cdn_https_domain_list(
        cdn_models.DescribeCdnHttpsDomainListRequest(keyword="soon", page_size=1)
    ).body
    assert [i.domain_name for i in narrowed.cert_infos.cert_info] == ["h2.example.com"]


def test_domains_by_certificate(cdn: Client, state: State, pki: TestPki):
    # Given three domains, two covered by a wildcard, one of them already on HTTPS
    insert_domains(state, ["a.shop.example.com", "b.shop.example.com", "www.example.com"])
    chain, key = issue(pki, "*.shop.example.com")
    set_cas(cdn, "a.shop.example.com", add_cas(state, "shop", chain, key).id)

    def by_cert(ssl_pub: str, ssl_status: bool | None = None) -> Any:
        request = cdn_models.DescribeCdnDomainByCertificateRequest(
            sslpub=ssl_pub, sslstatus=ssl_status
        )
        return cdn.describe_cdn_domain_by_certificate(request).body.cert_infos.cert_info[0]

    # When queried by PEM, then the covered domains are listed with the certificate's facts
    info = by_cert(chain)
    assert info.domain_list == "a.shop.example.com,b.shop.example.com"
    assert (info.domain_names, info.cert_type, info.cert_expired) == (
        "*.shop.example.com",
        "ECDSA",
        "no",
    )
    assert info.cert_expire_time.endswith(" GMT") and "CN=Emulator CA One" in info.issuer
    # and SSLStatus narrows to domains with HTTPS on / off; base64 input works too
    assert by_cert(chain, True).domain_list == "a.shop.example.com"
    encoded = base64.b64encode(chain.encode()).decode()
    assert by_cert(encoded, False).domain_list == "b.shop.example.com"


def test_batch_server_certificate_through_generic_call(cdn: Client, state: State, pki: TestPki):
    # Given two domains a wildcard covers and one it does not
    insert_domains(state, ["x.example.com", "y.example.com", "z.example.org"])
    chain, key = issue(pki, "*.example.com")
    query = {"SSLProtocol": "on", "CertType": "upload", "SSLPub": chain, "SSLPri": key}
    # When set on the two covered ones (form and JSON request styles), it applies to both
    for body_type in ("formData", "json"):
        answer = call_generic(
            cdn,
            "BatchSetCdnDomainServerCertificate",
            {"DomainName": "x.example.com,y.example.com", **query},
            body_type,
        )
        assert answer["statusCode"] == 200 and answer["body"]["RequestId"]
    assert all(state.cdn_domains[d].ssl.latest() for d in ("x.example.com", "y.example.com"))
    # and a batch including an uncovered domain changes nothing
    err = error_of(
        lambda: call_generic(
            cdn,
            "BatchSetCdnDomainServerCertificate",
            {"DomainName": "z.example.org,x.example.com", **query},
            "formData",
        )
    )
    assert err.code == "Certificate.MissMatch"
    assert state.cdn_domains["z.example.org"].ssl.latest() is None
    # and more than ten domains are refused
    eleven = ",".join(f"n{i}.example.com" for i in range(11))
    err = error_of(
        lambda: call_generic(
            cdn, "BatchSetCdnDomainServerCertificate", {"DomainName": eleven, **query}, "formData"
        )
    )
    assert err.code == "TooManyDomains"
