"""CDN as documented, through the real SDK against the emulator process, and certpilot's
CDN adapter on it: exact domain lookups and every DomainStatus, ServiceBusy while a
change propagates, an edge of several nodes that switch one by one, flow control with
the gateway's answer and retry-after hint, and read-backs that add arguments.

The edge is judged with Python's own `ssl` handshakes (not certpilot's probe).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_cdn20180510 import models as cdn_models
from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException

from certpilot.cloud import credentials
from certpilot.cloud.cdn import CdnFunction, feature_in_place
from certpilot.cloud.clients import CloudClients
from certpilot.cloud.ratelimit import RateLimiter
from certpilot.cloud.retry import Retrier, RetryPolicy
from certpilot.core.errors import BusyError
from certpilot.core.settings import Settings
from tests.conftest import Emulator, EmulatorError
from tests.integration.clients import make_clients
from tests.integration.polling import poll
from tests.integration.test_emulator_edge import client_context, handshake

STATUSES = (
    "online",
    "offline",
    "configuring",
    "configure_failed",
    "checking",
    "check_failed",
    "stopping",
    "deleting",
)


def estate(*domains: dict[str, Any], propagation: float = 0.0) -> dict[str, Any]:
    return {
        "settings": {"propagation_delay": propagation},
        "certificates": [
            {"name": "old", "sans": ["*.example.com"], "days": 60},
            {"name": "new", "sans": ["*.example.com"], "days": 120},
        ],
        "buckets": [{"name": "assets", "objects": {"index.html": "<p>hi</p>"}}],
        "cdn_domains": list(domains),
    }


def domain(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "origin": "assets", **fields}


def list_names(cdn: Any, **request: Any) -> list[str]:
    body = cdn.describe_user_domains(cdn_models.DescribeUserDomainsRequest(**request)).body
    return sorted(d.domain_name for d in body.domains.page_data)


def status_of(cdn: Any, name: str) -> str:
    body = cdn.describe_user_domains(cdn_models.DescribeUserDomainsRequest(domain_name=name)).body
    [item] = body.domains.page_data
    return str(item.domain_status)


def set_cas(cdn: Any, name: str, cert_id: int) -> None:
    cdn.set_cdn_domain_sslcertificate(
        cdn_models.SetCdnDomainSSLCertificateRequest(
            domain_name=name, sslprotocol="on", cert_type="cas", cert_id=cert_id
        )
    )


def refusal(call: Any) -> ClientException:
    with pytest.raises(ClientException) as raised:
        call()
    return raised.value


def sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest().upper()


# -- lookups and statuses ---------------------------------------------------------------


def test_a_name_lookup_matches_exactly_unless_a_search_type_is_given(cloud: Emulator) -> None:
    # Given domains whose names contain one another
    names = ["shop.example.com", "cdn.shop.example.com", "shop.example.com.cn"]
    cloud.load_estate(estate(*(domain(n) for n in names)))
    cdn = cloud.cdn_client()
    # When one is looked up by name, then exactly that one comes back
    assert list_names(cdn, domain_name="shop.example.com") == ["shop.example.com"]
    # and fuzzy matching happens only when asked for
    assert list_names(cdn, domain_name="shop.example.com", domain_search_type="fuzzy_match") == [
        "cdn.shop.example.com",
        "shop.example.com",
        "shop.example.com.cn",
    ]
    # and a comma-separated list of names matches each exactly
    listed = list_names(cdn, domain_name="shop.example.com.cn,cdn.shop.example.com,x.example.com")
    assert listed == ["cdn.shop.example.com", "shop.example.com.cn"]


def test_more_than_50_names_and_page_sizes_outside_1_to_500_are_refused(cloud: Emulator) -> None:
    cloud.load_estate(estate(domain("a.example.com")))
    cdn = cloud.cdn_client()
    fifty_one = ",".join(f"d{i}.example.com" for i in range(51))
    assert list_names(cdn, domain_name=",".join(f"d{i}.example.com" for i in range(50))) == []
    for request in ({"domain_name": fifty_one}, {"page_size": 0}, {"page_size": 501}):
        error = refusal(lambda r=request: list_names(cdn, **r))
        assert (error.status_code, error.code) == (400, "InvalidParameter"), request


def test_every_documented_status_can_be_set_by_estate_and_admin_api(cloud: Emulator) -> None:
    # Given one domain in each DomainStatus the SDK documents, from the estate file
    cloud.load_estate(
        estate(*(domain(f"{s.replace('_', '-')}.example.com", status=s) for s in STATUSES))
    )
    cdn = cloud.cdn_client()
    # Then each is listed with its status, and found by it
    for status in STATUSES:
        name = f"{status.replace('_', '-')}.example.com"
        assert status_of(cdn, name) == status
        assert list_names(cdn, domain_status=status) == [name]
    # When the admin API sets a status and then clears it
    answer = cloud.admin(
        "POST", "cdn/status", {"domain": "online.example.com", "status": "check_failed"}
    )
    assert answer == {"domain": "online.example.com", "status": "check_failed"}
    assert status_of(cdn, "online.example.com") == "check_failed"
    cloud.admin("POST", "cdn/status", {"domain": "online.example.com", "status": None})
    # Then the domain reports its own status again
    assert status_of(cdn, "online.example.com") == "online"
    # and an unknown status or domain is refused
    with pytest.raises(EmulatorError, match="400"):
        cloud.admin("POST", "cdn/status", {"domain": "online.example.com", "status": "paused"})
    with pytest.raises(EmulatorError, match="404"):
        cloud.admin("POST", "cdn/status", {"domain": "nope.example.com", "status": "online"})


# -- busy domains -------------------------------------------------------------------


def test_a_write_while_a_change_propagates_is_service_busy(cloud: Emulator) -> None:
    # Given an online domain and an offline one, and a 0.6 s propagation
    ids = cloud.load_estate(
        estate(domain("a.example.com"), domain("b.example.com", status="offline"))
    )
    cloud.settings(propagation_delay=0.6)
    cdn = cloud.cdn_client()
    # When a certificate is set on each
    written = time.monotonic()
    set_cas(cdn, "a.example.com", ids["new"])
    set_cas(cdn, "b.example.com", ids["new"])
    # Then both are configuring, and a further write (certificate or feature) is refused
    # with the documented 403 ServiceBusy (unless this machine was slower than the delay)
    error = refusal(lambda: set_cas(cdn, "a.example.com", ids["old"]))
    feature = json.dumps(
        [{"functionName": "gzip", "functionArgs": [{"argName": "enable", "argValue": "on"}]}]
    )
    busy_config = refusal(
        lambda: cdn.batch_set_cdn_domain_config(
            cdn_models.BatchSetCdnDomainConfigRequest(
                domain_names="b.example.com", functions=feature
            )
        )
    )
    if time.monotonic() - written < 0.6:
        assert (error.status_code, error.code) == (403, "ServiceBusy")
        assert (busy_config.status_code, busy_config.code) == (403, "ServiceBusy")
        assert status_of(cdn, "a.example.com") == "configuring"
    # and once the change has propagated each is back to its own status, and writable
    poll(lambda: status_of(cdn, "a.example.com"), lambda s: s == "online")
    poll(lambda: status_of(cdn, "b.example.com"), lambda s: s == "offline")
    set_cas(cdn, "a.example.com", ids["old"])


def test_certpilots_adapter_surfaces_lasting_service_busy_as_busy_error(cloud: Emulator) -> None:
    # Given a domain configuring (pinned through the admin API)
    ids = cloud.load_estate(estate(domain("a.example.com", status="configuring")))
    clients = make_clients(cloud, max_attempts=3)
    # When certpilot sets a certificate on it
    with pytest.raises(BusyError) as raised:
        clients.cdn.set_certificate("a.example.com", ids["new"], "cn-hangzhou")
    # Then after its short retries it gets BusyError (a write's caller waits longer,
    # within its own budget)
    assert (raised.value.code, raised.value.status) == ("ServiceBusy", 403)
    stats = cloud.action_stats("cdn:SetCdnDomainSSLCertificate")
    assert stats["calls"] == stats["errors"] == 3


# -- the edge as a fleet of nodes ---------------------------------------------------------


def test_during_propagation_the_nodes_serve_old_and_new_side_by_side(
    cloud: Emulator, tmp_path: Path
) -> None:
    # Given a domain serving the old certificate from 3 nodes, a 1.5 s propagation
    ids = cloud.load_estate(estate(domain("a.example.com", certificate="old")))
    cloud.settings(propagation_delay=1.5, edge_nodes=3, edge_node_selection="round_robin")
    assert cloud.https
    port = int(cloud.https.rsplit(":", 1)[1])
    browser = client_context(Path(cloud.ca_bundle) if cloud.ca_bundle else None)

    def triple() -> set[str]:
        """What 3 consecutive connections get: one from each node, in turn."""
        return {sha256(handshake(port, "a.example.com", browser)) for _ in range(3)}

    [old] = triple()
    # When the new certificate is set
    set_cas(cloud.cdn_client(), "a.example.com", ids["new"])
    # Then for a while the nodes disagree: some serve the new one, some the old one
    seen: list[set[str]] = []

    def observe() -> set[str]:
        seen.append(triple())
        return seen[-1]

    final = poll(observe, lambda s: s != {old} and len(s) == 1)
    assert any(len(s) == 2 and old in s for s in seen), seen
    # and in the end every node serves the new one
    assert old not in final
    # and the edge's handshake log shows each node, and which answers came before the
    # change had reached all of them
    log = cloud.admin("GET", "edge/handshakes?host=a.example.com")["handshakes"]
    assert {h["node"] for h in log} == {0, 1, 2}
    mixed = [h for h in log if not h["settled"]]
    assert {h["fingerprint"] for h in mixed} == {old, *final}
    assert all(
        h["fingerprint"] in final for h in log if h["settled"] and h["time"] > mixed[-1]["time"]
    )


def test_random_node_selection_is_a_setting(cloud: Emulator) -> None:
    settings = cloud.settings(edge_nodes=5, edge_node_selection="random")
    assert (settings["edge_nodes"], settings["edge_node_selection"]) == (5, "random")
    with pytest.raises(EmulatorError, match="400"):
        cloud.settings(edge_nodes=0)
    with pytest.raises(EmulatorError, match="400"):
        cloud.settings(edge_node_selection="sticky")


# -- flow control -----------------------------------------------------------------------


def test_a_tight_loop_of_batch_config_calls_is_throttled_with_the_gateways_answer(
    cloud: Emulator,
) -> None:
    # Given 10 domains (no propagation: no domain is busy)
    cloud.load_estate(estate(*(domain(f"d{i}.example.com") for i in range(10))))
    cdn = cloud.cdn_client()
    feature = json.dumps(
        [{"functionName": "gzip", "functionArgs": [{"argName": "enable", "argValue": "on"}]}]
    )
    # When BatchSetCdnDomainConfig is called in a tight loop
    throttled: ThrottlingException | None = None
    for i in range(10):
        try:
            cdn.batch_set_cdn_domain_config(
                cdn_models.BatchSetCdnDomainConfigRequest(
                    domain_names=f"d{i}.example.com", functions=feature
                )
            )
        except ThrottlingException as error:
            throttled = error
            break
    # Then it is refused after at most 3 calls with Throttling.User (HTTP 400) and a
    # retry-after hint in milliseconds (x-acs-retry-after: a ThrottlingException)
    assert throttled is not None and i <= 3
    assert (throttled.status_code, throttled.code) == (400, "Throttling.User")
    assert 0 < throttled.retry_after <= 1000
    assert cloud.action_stats("cdn:BatchSetCdnDomainConfig")["throttled"] == 1


def test_more_than_50_domains_in_one_batch_config_call_is_refused(cloud: Emulator) -> None:
    cloud.load_estate(estate(domain("a.example.com")))
    feature = json.dumps(
        [{"functionName": "gzip", "functionArgs": [{"argName": "enable", "argValue": "on"}]}]
    )
    names = ",".join(["a.example.com"] * 51)
    error = refusal(
        lambda: cloud.cdn_client().batch_set_cdn_domain_config(
            cdn_models.BatchSetCdnDomainConfigRequest(domain_names=names, functions=feature)
        )
    )
    assert (error.status_code, error.code) == (400, "TooManyDomains")


def test_certpilot_paces_batch_config_calls_under_the_documented_3_per_second(
    cloud: Emulator,
) -> None:
    # Given 200 domains
    cloud.load_estate(estate(*(domain(f"d{i:03d}.example.com") for i in range(200))))
    clients = make_clients(cloud)
    names = [f"d{i:03d}.example.com" for i in range(200)]
    # When certpilot configures a feature on all of them, then again on half of them
    clients.cdn.set_configs(names, [CdnFunction("gzip", {"enable": "on"})])
    clients.cdn.set_configs(names[:100], [CdnFunction("brotli", {"enable": "on"})])
    # Then it took 6 calls of up to 50 domains, and the service throttled none of them
    stats = cloud.action_stats("cdn:BatchSetCdnDomainConfig")
    assert (stats["calls"], stats["throttled"], stats["errors"]) == (6, 0, 0)


def test_certpilot_waits_at_least_what_the_retry_after_hint_asks(cloud: Emulator) -> None:
    # Given an account whose BatchSetCdnDomainConfig allows one call every 2 s
    cloud.load_estate(estate(domain("a.example.com"), domain("b.example.com")))
    cloud.settings(qps={"cdn:BatchSetCdnDomainConfig": 0.5})
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds)

    env = cloud.certpilot_env()
    creds = credentials.from_env(env)
    assert creds is not None
    clients = CloudClients.from_settings(
        Settings.from_env(env),
        creds,
        limiter=RateLimiter(),
        retrier=Retrier(RetryPolicy(base_delay=0.01, max_delay=0.05, deadline=10), sleep=sleep),
    )
    # When certpilot makes two calls back to back
    clients.cdn.set_configs(["a.example.com"], [CdnFunction("gzip", {"enable": "on"})])
    clients.cdn.set_configs(["b.example.com"], [CdnFunction("gzip", {"enable": "on"})])
    # Then the second was throttled once, with a hint of about 2 s, and certpilot paused
    # that long (not its own 0.05 s backoff cap) before the attempt that went through
    stats = cloud.action_stats("cdn:BatchSetCdnDomainConfig")
    assert (stats["calls"], stats["throttled"]) == (3, 1)
    assert len(pauses) == 1 and 1.0 <= pauses[0] <= 2.5


# -- read-backs with arguments nobody sent --------------------------------------------


def test_config_read_backs_add_arguments_and_certpilot_compares_only_its_own(
    cloud: Emulator,
) -> None:
    # Given a domain on which certpilot sets the origin protocol to HTTPS
    cloud.load_estate(estate(domain("a.example.com")))
    clients = make_clients(cloud)
    wanted = CdnFunction("forward_scheme", {"enable": "on", "scheme_origin": "https"})
    clients.cdn.set_configs(["a.example.com"], [wanted])
    # When it reads the feature back
    configs = clients.cdn.domain_configs("a.example.com", ["forward_scheme"])
    # Then the service added an argument certpilot never sent
    [config] = configs
    assert config.args["scheme_origin_port"] == "443"
    # and the feature counts as in place all the same, but not another origin protocol
    assert feature_in_place(configs, wanted)
    assert not feature_in_place(
        configs, CdnFunction("forward_scheme", {"enable": "on", "scheme_origin": "http"})
    )
