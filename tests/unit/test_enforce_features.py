"""CDN HTTPS features of enforce-https: what each domain needs, compared on the
arguments certpilot owns only, and batched for BatchSetCdnDomainConfig."""

from __future__ import annotations

import pytest

from certpilot.jobs.enforce_https.features import (
    BATCH_DOMAINS,
    Configured,
    FeatureName,
    FeaturePrefs,
    State,
    batches,
    plan_domain,
    state_of,
    wanted_features,
)

ALL_ON = FeaturePrefs()


def configured(name: str, status: str = "success", config_id: str = "1", **args: str) -> Configured:
    return Configured(config_id=config_id, name=name, status=status, args=args)


HTTPS_FORCE = configured("https_force", enable="on", https_rewrite="301")
HSTS = configured(
    "HSTS", enabled="on", https_hsts_max_age="5184000", https_hsts_include_subdomains="off"
)
HTTP2 = configured("https_option", http2="on")
GZIP = configured("gzip", enable="on")


def test_given_a_bare_domain_then_every_feature_is_set_in_order() -> None:
    plan = plan_domain("cdn.example.com", [], ALL_ON)
    assert [w.name for w in plan.set] == [
        FeatureName.HTTPS_FORCE,
        FeatureName.HSTS,
        FeatureName.HTTPS_OPTION,
        FeatureName.GZIP,
    ]
    assert plan.delete == ()
    assert dict(plan.set[1].args)["https_hsts_max_age"] == "5184000"
    assert dict(plan.set[1].args)["https_hsts_include_subdomains"] == "off"


def test_given_everything_in_place_with_extra_arguments_then_nothing_changes() -> None:
    # the read-back carries arguments certpilot never sent (e.g. the service's own)
    extra = configured("https_option", http2="on", ocsp_stapling="off", aliyun_id="x")
    plan = plan_domain("cdn.example.com", [HTTPS_FORCE, HSTS, extra, GZIP], ALL_ON)
    assert plan.in_place
    assert plan.pending == ()


def test_given_http_force_then_it_is_deleted_first_even_when_off() -> None:
    http_force = configured("http_force", config_id="77", enable="off")
    plan = plan_domain("cdn.example.com", [http_force, HSTS, HTTP2, GZIP], ALL_ON)
    assert plan.delete == ("77",)
    assert [w.name for w in plan.set] == [FeatureName.HTTPS_FORCE]


def test_http_force_is_left_alone_when_https_force_is_turned_off_in_settings() -> None:
    http_force = configured("http_force", config_id="77", enable="on")
    plan = plan_domain("cdn.example.com", [http_force], FeaturePrefs(https_force=False))
    assert plan.delete == ()
    assert FeatureName.HTTPS_FORCE not in [w.name for w in plan.set]


@pytest.mark.parametrize(
    ("config", "state"),
    [
        (HTTPS_FORCE, State.IN_PLACE),
        (configured("https_force", enable="ON", https_rewrite="301"), State.IN_PLACE),
        (configured("https_force", enable="on", https_rewrite="308"), State.MISSING),
        (configured("https_force", enable="off", https_rewrite="301"), State.MISSING),
        (configured("https_force", enable="on"), State.MISSING),
        (configured("https_force", "configuring", enable="on", https_rewrite="301"), State.PENDING),
        (configured("https_force", "testing", enable="on", https_rewrite="301"), State.PENDING),
        (configured("https_force", "failed", enable="on", https_rewrite="301"), State.MISSING),
        (configured("gzip", enable="on"), State.MISSING),
    ],
    ids=[
        "same",
        "case",
        "308",
        "off",
        "no-rewrite",
        "configuring",
        "testing",
        "failed",
        "other-feature",
    ],
)
def test_state_compares_owned_arguments_and_status(config: Configured, state: State) -> None:
    https_force = wanted_features(ALL_ON)[0]
    assert state_of(https_force, [config]) is state


def test_each_feature_can_be_turned_off_and_hsts_is_configurable() -> None:
    prefs = FeaturePrefs(
        https_force=False, gzip=False, hsts_max_age=31536000, hsts_include_subdomains=True
    )
    names = [w.name for w in wanted_features(prefs)]
    assert names == [FeatureName.HSTS, FeatureName.HTTPS_OPTION]
    hsts = dict(wanted_features(prefs)[0].args)
    assert hsts["https_hsts_max_age"] == "31536000"
    assert hsts["https_hsts_include_subdomains"] == "on"
    assert wanted_features(FeaturePrefs(False, False, http2=False, gzip=False)) == ()


def test_batches_group_domains_that_need_the_same_change_fifty_items_a_call() -> None:
    # Given 120 bare domains (4 features each), 60 that only lack gzip, one complete
    bare = [plan_domain(f"d{i}.example.com", [], ALL_ON) for i in range(120)]
    only_gzip = [
        plan_domain(f"g{i}.example.com", [HTTPS_FORCE, HSTS, HTTP2], ALL_ON) for i in range(60)
    ]
    done = [plan_domain("done.example.com", [HTTPS_FORCE, HSTS, HTTP2, GZIP], ALL_ON)]
    result = batches([*bare, *only_gzip, *done])
    # Then no call carries more than 50 domains x features: 12 bare domains a call
    # (4 features), 50 gzip-only domains a call
    assert [len(b.domains) for b in result] == [12] * 10 + [BATCH_DOMAINS, 10]
    assert all(len(b.domains) * len(b.features) <= 50 for b in result)
    assert [w.name for w in result[-1].features] == [FeatureName.GZIP]
    assert all("done.example.com" not in b.domains for b in result)
    assert sum(len(b.domains) for b in result) == 180
