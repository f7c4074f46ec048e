"""The RAM policy of the functions' role (`deploy/ram-policy.json`) against the code.

The actions are derived from the code (`tests.ramscan`: the SDK calls of the adapters,
resolved through the SDKs' own source, kept where the three functions reach them),
never from a list kept by hand; the policy must grant exactly those.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from certpilot.cli import EXIT_OK, EXIT_USAGE, main
from certpilot.cli.ram_policy import (
    FAILURE_QUEUE,
    MAX_POLICY_CHARS,
    PLACEHOLDER,
    PolicyValueError,
    render,
    text,
)
from tests import ramscan, s_yaml_spec

POLICY_PATH = ramscan.ROOT / "deploy" / "ram-policy.json"
TRUST_PATH = ramscan.ROOT / "deploy" / "ram-trust-policy.json"
REPORT_OBJECTS = "${ReportBucket}/${ReportPrefix}/"
OBJECT_ACTIONS = {"oss:PutObject", "oss:GetObject"}
# RAM's statement elements (RAM policy grammar); certpilot's policy uses the first four.
STATEMENT_KEYS = {"Effect", "Action", "Resource", "Condition", "NotAction", "NotResource"}
ACTION = re.compile(r"[a-z][a-z0-9-]*:[A-Z][A-Za-z0-9]*")  # no wildcard anywhere
VALUES = {
    "AccountId": "1234567890123456",
    "Region": "cn-hangzhou",
    "ReportBucket": "certpilot-reports",
    "ReportPrefix": "certpilot/reports",
    "DeployFunction": "certpilot-deploy-cert",
    "CheckExpiryFunction": "certpilot-check-expiry",
    "FailureQueue": "certpilot-failed",
}


def _policy() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(POLICY_PATH.read_text(encoding="utf-8"))
    return document


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@pytest.fixture(scope="module")
def derived() -> ramscan.Derivation:
    return ramscan.derive()


# -- the policy equals the code --------------------------------------------------------


def test_policy_grants_exactly_the_actions_the_functions_call(
    derived: ramscan.Derivation,
) -> None:
    # Given the actions derived from the adapters and the functions' reach, and those
    # s.yaml's asynchronous-invocation destinations need
    needed = derived.actions | ramscan.deployment_actions(s_yaml_spec.spec())
    # When the policy's Allow actions are compared with them
    difference = ramscan.disagreement(ramscan.policy_actions(_policy()), needed)
    # Then neither side has an action the other lacks
    assert difference == "", difference


def test_every_adapter_reaches_the_cloud_through_a_resolved_sdk_call(
    derived: ramscan.Derivation,
) -> None:
    # Given the four adapters the functions use
    scanned = {scan.module for scan in derived.adapters}
    assert scanned == {f"certpilot.cloud.{s}" for s in ("oss", "cdn", "cas", "fc")}
    # Then every public adapter method that talks to the cloud resolved to an action
    # (a method that calls nothing is a helper: none of the adapters has one today)
    for scan in derived.adapters:
        silent = sorted(m for m, actions in scan.methods.items() if not actions)
        assert silent == [], f"{scan.module}: no SDK action found for {silent}"


def test_the_other_cloud_modules_name_no_sdk_api_call(derived: ramscan.Derivation) -> None:
    # Given the service SDKs the adapters use, and the cloud modules that are no adapter
    sources = ramscan.package_sources()
    adapters = {scan.module for scan in derived.adapters}
    services = set().union(*(ramscan._sdk_packages(ramscan._parse(sources[m])) for m in adapters))
    clients = [ramscan.sdk_client(p) for p in sorted(services)]
    others = [m for m in sources if m.startswith(ramscan.CLOUD_PACKAGE + ".") and m not in adapters]
    assert "certpilot.cloud.clients" in others
    # Then none of them names an API method the derivation would not see
    for name in others:
        words = ramscan._names(ramscan._parse(sources[name]))
        calls = sorted(w for w in words for c in clients if ramscan.sdk_action(c, w))
        assert calls == [], f"{name} calls {calls}: move the call into an adapter"


# -- the derivation works --------------------------------------------------------------

EXTRA_CDN_METHOD = '''

    def service_status(self) -> dict[str, Any]:
        """An extra call, as a future change might add."""
        from alibabacloud_cdn20180510 import models

        return self._call(
            "DescribeUserDomains",  # a wrong label: the SDK method decides the action
            "describe_cdn_service_with_options",
            models.DescribeCdnServiceRequest(),
        )
'''


def _with_reach(sources: dict[str, str], module: str, line: str) -> dict[str, str]:
    return {**sources, module: sources[module] + f"\n\ndef _reach(clients):\n    {line}\n"}


def test_a_new_sdk_call_in_an_adapter_is_derived_and_the_policy_is_then_short() -> None:
    # Given the CDN adapter with one more method, which a job reaches
    sources = ramscan.package_sources()
    sources["certpilot.cloud.cdn"] += EXTRA_CDN_METHOD
    sources = _with_reach(
        sources, "certpilot.jobs.check_expiry.sweep", "return clients.cdn.service_status()"
    )
    # When the actions are derived
    derivation = ramscan.derive(sources)
    # Then the new method's action is the SDK method's, not its label's
    assert derivation.reached["certpilot.cloud.cdn.service_status"] == {"cdn:DescribeCdnService"}
    # And the policy, unchanged, is found lacking exactly that action
    needed = derivation.actions | ramscan.deployment_actions(s_yaml_spec.spec())
    difference = ramscan.disagreement(ramscan.policy_actions(_policy()), needed)
    assert difference == "needed, not granted: cdn:DescribeCdnService"


def test_only_adapter_methods_the_functions_reach_count() -> None:
    # Given `CdnAdapter.domains_by_function`, which no function calls today
    sources = ramscan.package_sources()
    baseline = ramscan.derive(sources)
    assert "cdn:DescribeCdnUserDomainsByFunc" not in baseline.actions
    by_func = "return clients.cdn.domains_by_function(44)"
    # When only a CLI command calls it, the functions' role still needs no grant
    cli_only = ramscan.derive(_with_reach(sources, "certpilot.cli.plan", by_func))
    assert cli_only.actions == baseline.actions
    # When a module enforce-https imports calls it, its action is derived
    reached = ramscan.derive(
        _with_reach(sources, "certpilot.jobs.enforce_https.cdn_apply", by_func)
    )
    assert reached.actions - baseline.actions == {"cdn:DescribeCdnUserDomainsByFunc"}


def test_the_cli_commands_need_nothing_beyond_the_policy(derived: ramscan.Derivation) -> None:
    # Given every CLI command as a root too (disable-https, fallback, plan, ...)
    sources = ramscan.package_sources()
    cli = {name: text for name, text in sources.items() if name.startswith("certpilot.cli")}
    # When the actions are derived with them
    with_cli = ramscan.derive(sources, {**ramscan.function_sources(), **cli})
    # Then an operator holding the functions' policy can run them all
    assert with_cli.actions == derived.actions


def test_binding_a_certificate_brings_the_cas_actions_oss_checks(
    derived: ramscan.Derivation,
) -> None:
    # Given the OSS adapter binds CAS certificates with PutCname
    assert "oss:PutCname" in derived.reached["certpilot.cloud.oss.bind_certificate"]
    # Then the derived set holds what OSS checks on the caller for a CertId binding
    assert ramscan.ASSOCIATED_ACTIONS["oss:PutCname"] <= derived.actions


def test_disagreement_names_both_directions() -> None:
    # Given a policy missing one action the code calls and granting one it does not
    code = frozenset({"oss:ListCname", "oss:PutCname"})
    policy = frozenset({"oss:ListCname", "oss:GetBucketInfo"})
    # Then the difference names each
    assert ramscan.disagreement(policy, code) == (
        "needed, not granted: oss:PutCname; granted, not needed: oss:GetBucketInfo"
    )
    assert ramscan.disagreement(code, code) == ""


def test_s_yaml_failure_destination_needs_send_message_on_that_queue_only() -> None:
    # Given s.yaml's failure destinations, resolved as `s deploy` would
    spec = s_yaml_spec.spec()
    arns = {s_yaml_spec.resolve(arn) for arn in ramscan.destinations(spec).values()}
    assert ramscan.deployment_actions(spec) == {"mns:SendMessage"}
    assert spec["vars"]["failureQueue"] == FAILURE_QUEUE  # the CLI's default
    # When the policy is filled in with the same region, account and queue
    values = {
        **VALUES,
        "AccountId": s_yaml_spec.ACCOUNT,
        "Region": s_yaml_spec.resolve(spec["vars"]["region"]),
    }
    policy = render(_policy(), values)
    # Then the MNS statement names exactly those queues
    [mns] = [s for s in policy["Statement"] if "mns:SendMessage" in s["Action"]]
    assert set(mns["Resource"]) == arns


def test_an_unknown_kind_of_destination_is_not_guessed() -> None:
    spec = {
        "resources": {
            "f": {
                "props": {
                    "asyncInvokeConfig": {
                        "destinationConfig": {
                            "onFailure": {"destination": "acs:kafka:cn-hangzhou:1:instance/x"}
                        }
                    }
                }
            }
        }
    }
    with pytest.raises(ValueError, match="onFailure"):
        ramscan.deployment_actions(spec)


# -- RAM's grammar, scope and size -----------------------------------------------------


def test_policy_is_a_ram_policy_document() -> None:
    policy = _policy()
    assert set(policy) == {"Version", "Statement"}
    assert policy["Version"] == "1"
    assert isinstance(policy["Statement"], list) and policy["Statement"]
    seen: list[str] = []
    for statement in policy["Statement"]:
        assert set(statement) <= STATEMENT_KEYS
        assert statement["Effect"] in ("Allow", "Deny")
        actions = _listed(statement["Action"])
        resources = _listed(statement["Resource"])
        assert actions and resources
        assert all(ACTION.fullmatch(a) for a in actions), actions
        assert all(r == "*" or r.startswith("acs:") for r in resources), resources
        seen.extend(actions)
    assert len(seen) == len(set(seen)), "an action is granted twice"


def test_report_objects_are_the_only_objects_and_oss_fc_are_never_granted_on_everything() -> None:
    for statement in _policy()["Statement"]:
        actions = set(_listed(statement["Action"]))
        resources = _listed(statement["Resource"])
        if actions & OBJECT_ACTIONS:
            # the object statement holds the object actions alone, on the report prefix
            assert actions == OBJECT_ACTIONS
            assert all(REPORT_OBJECTS in r and r.endswith("/*") for r in resources)
        if any(a.startswith(("oss:", "fc:", "mns:")) for a in actions):
            assert "*" not in resources
        if "fc:InvokeFunction" in actions:
            assert resources == [
                "acs:fc:${Region}:${AccountId}:functions/${DeployFunction}",
                "acs:fc:${Region}:${AccountId}:functions/${CheckExpiryFunction}",
            ]
        if "oss:ListObjects" in actions:
            # check-expiry's fan-out lists its run's parts: the report bucket only
            assert actions == {"oss:ListObjects"}
            assert resources == ["acs:oss:*:${AccountId}:${ReportBucket}"]


def test_rendered_policy_fits_rams_size_limit_with_the_longest_values() -> None:
    longest = {
        "AccountId": "9" * 32,
        "Region": "ap-southeast-1",
        "ReportBucket": "b" * 63,
        "ReportPrefix": "/".join(["p" * 60] * 8),
        "DeployFunction": "f" * 128,
        "CheckExpiryFunction": "c" * 128,
        "FailureQueue": "q" * 120,
    }
    document = text(render(_policy(), longest))
    assert len(document) <= MAX_POLICY_CHARS


def test_trust_policy_lets_function_compute_assume_the_role() -> None:
    trust = json.loads(TRUST_PATH.read_text(encoding="utf-8"))
    assert trust["Version"] == "1"
    [statement] = trust["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Allow", "sts:AssumeRole")
    assert statement["Principal"] == {"Service": ["fc.aliyuncs.com"]}


# -- rendering -------------------------------------------------------------------------


def test_rendering_fills_every_placeholder() -> None:
    policy = render(_policy(), VALUES)
    document = text(policy)
    assert PLACEHOLDER.search(document) is None
    assert ramscan.policy_actions(policy) == ramscan.policy_actions(_policy())
    objects = [s for s in policy["Statement"] if "oss:PutObject" in s["Action"]]
    assert objects[0]["Resource"] == [
        "acs:oss:*:1234567890123456:certpilot-reports/certpilot/reports/*"
    ]


def test_without_a_report_bucket_the_report_statement_is_left_out() -> None:
    policy = render(_policy(), {**VALUES, "ReportBucket": None})
    report_actions = OBJECT_ACTIONS | {"oss:ListObjects"}
    assert not ramscan.policy_actions(policy) & report_actions
    assert ramscan.policy_actions(policy) == ramscan.policy_actions(_policy()) - report_actions


@pytest.mark.parametrize(
    ("placeholder", "value"),
    [
        ("ReportBucket", "*"),  # a wildcard would widen the grant to every bucket
        ("ReportPrefix", "reports/*"),
        ("AccountId", "12?4"),
        ("DeployFunction", "certpilot-*"),
        ("Region", "cn hangzhou"),
    ],
)
def test_a_value_that_would_widen_or_break_the_grant_is_refused(
    placeholder: str, value: str
) -> None:
    with pytest.raises(PolicyValueError) as raised:
        render(_policy(), {**VALUES, placeholder: value})
    assert (raised.value.placeholder, raised.value.value) == (placeholder, value)


def test_without_a_failure_queue_the_mns_statement_is_left_out() -> None:
    policy = render(_policy(), {**VALUES, "FailureQueue": None})
    assert ramscan.policy_actions(policy) == ramscan.policy_actions(_policy()) - {"mns:SendMessage"}


def test_a_placeholder_without_a_value_is_refused() -> None:
    values = {k: v for k, v in VALUES.items() if k != "DeployFunction"}
    with pytest.raises(PolicyValueError) as raised:
        render(_policy(), values)
    assert (raised.value.placeholder, raised.value.value) == ("DeployFunction", None)


def test_cli_prints_the_filled_in_policy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("CERTPILOT_ACCOUNT_ID", "CERTPILOT_REPORT_BUCKET", "CERTPILOT_REPORT_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CERTPILOT_REGION", "cn-hangzhou")
    monkeypatch.chdir(tmp_path)  # no deploy/ here: the checkout's template is used
    code = main(
        ["ram-policy", "--account-id", "1234567890123456", "--report-bucket", "certpilot-reports"]
    )
    assert code == EXIT_OK
    assert json.loads(capsys.readouterr().out) == render(_policy(), VALUES)


def test_cli_without_an_account_id_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CERTPILOT_ACCOUNT_ID", raising=False)
    assert main(["ram-policy"]) == EXIT_USAGE
