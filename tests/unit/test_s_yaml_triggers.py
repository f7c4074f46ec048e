"""s.yaml's triggers against the handlers and the sample events of `events/`: every
trigger is of a kind its function's handler accepts, every sample is accepted by the
handler its trigger feeds (through the handler's own frame, with the settings s.yaml
deploys), and each EventBridge rule matches its function's samples and nothing else
(EventBridge pattern semantics: tests/eventbridge_pattern.py)."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest

from certpilot.core.errors import EventError, UnsupportedEvent
from tests.eventbridge_pattern import matches, validate
from tests.s_yaml_spec import ACCOUNT, Sample, fc_context, functions, resolve, samples

FUNCTIONS = functions()
SAMPLES = samples()
# The kind of event each trigger type delivers, as the samples show it.
KIND = {"eventbridge": "is_cloudevent", "timer": "is_timer"}
RULES = [
    (name, trigger["triggerName"], resolve(trigger["triggerConfig"]))
    for name, function in sorted(FUNCTIONS.items())
    for trigger in function.triggers("eventbridge")
]


def _sample(name: str) -> dict[str, Any]:
    [found] = [s for s in SAMPLES if s.path.name == name]
    event: dict[str, Any] = copy.deepcopy(found.event)
    return event


def _call(name: str, **data: Any) -> dict[str, Any]:
    """An ActionTrail sample with other `data` fields (an event no rule should take)."""
    event = _sample(name)
    event["data"].update(data)
    return event


# Cloud events near the ones the rules take, that none of them may take.
NEAR_MISSES: dict[str, dict[str, Any]] = {
    "oss PutBucketPolicy": _call("enforce-https.oss-putcname.json", eventName="PutBucketPolicy"),
    "oss DeleteCname": _call("enforce-https.oss-putcname.json", eventName="DeleteCname"),
    "oss native PutObject": {
        **_sample("enforce-https.oss-putcname.json"),
        "type": "oss:ObjectCreated:PutObject",
    },
    "cdn DeleteCdnDomain": _call(
        "enforce-https.cdn-addcdndomain.json", eventName="DeleteCdnDomain"
    ),
    "cdn PutCname": _call("enforce-https.cdn-addcdndomain.json", eventName="PutCname"),
    "oss AddCdnDomain": _call("enforce-https.oss-putcname.json", eventName="AddCdnDomain"),
    "cas DeleteUserCertificate": _call(
        "deploy-cert.actiontrail.json", eventName="DeleteUserCertificate"
    ),
    "certpilot certificate revoked": {
        **_sample("deploy-cert.cloudevent.json"),
        "type": "certpilot.certificate.revoked",
    },
}


def test_every_function_has_a_trigger_and_each_trigger_a_known_type() -> None:
    for name, function in FUNCTIONS.items():
        assert function.triggers(), name
        assert {t["triggerType"] for t in function.triggers()} <= set(KIND), name
        names = [t["triggerName"] for t in function.triggers()]
        assert len(set(names)) == len(names), name


@pytest.mark.parametrize(
    ("name", "trigger"),
    [(n, t["triggerName"]) for n, f in sorted(FUNCTIONS.items()) for t in f.triggers()],
)
def test_each_trigger_delivers_events_its_handler_accepts(name: str, trigger: str) -> None:
    # given a trigger and the samples of the kind it delivers for its function
    function = FUNCTIONS[name]
    [config] = [t for t in function.triggers() if t["triggerName"] == trigger]
    delivered = [
        s for s in SAMPLES if s.function == name and getattr(s, KIND[config["triggerType"]])
    ]
    # then there is such a sample, and the function's frame accepts each one
    assert delivered, f"no sample in events/ shows what {trigger} delivers to {name}"
    frame = function.frame()
    for sample in delivered:
        frame.parse(sample.raw, function.invocation())


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.path.name for s in SAMPLES])
def test_every_sample_is_accepted_by_the_handler_it_is_for(sample: Sample) -> None:
    # given a sample event and the function s.yaml deploys for it, with its settings
    function = FUNCTIONS[sample.function]
    # when the handler's own frame parses it as FC hands it over (bytes)
    request = function.frame().parse(sample.raw, function.invocation())
    # then it is accepted, from the account s.yaml configures where it names one
    assert request is not None
    account = getattr(request, "account_id", None)
    assert account in (None, ACCOUNT)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_handler_answers_another_function_s_event_with_a_rejection(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the function's handler, loaded as FC loads it, with s.yaml's environment
    function = FUNCTIONS[name]
    for variable in [v for v in os.environ if v.startswith("CERTPILOT_")]:
        monkeypatch.delenv(variable)
    for variable, value in function.environment.items():
        monkeypatch.setenv(variable, value)
    others = [s for s in SAMPLES if s.function != name and (s.is_cloudevent or s.is_timer)]
    assert others
    for sample in others:
        # when it is invoked with an event another function's trigger delivers
        answer = json.loads(function.handler()(sample.raw, fc_context(function.name)))
        # then it refuses it before any call, and says so
        assert answer["status"] == "rejected", (sample.path.name, answer)
        assert answer["function"] == name


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_timer_payload_is_accepted(name: str) -> None:
    # given each timer's configured payload, delivered as FC's timer event
    function = FUNCTIONS[name]
    for timer in function.triggers("timer"):
        config = resolve(timer["triggerConfig"])
        event = {
            "triggerTime": "2026-12-06T02:00:00Z",
            "triggerName": timer["triggerName"],
            "payload": config["payload"],
        }
        # then the handler's frame accepts it, as a timer run
        request = function.frame().parse(json.dumps(event).encode(), function.invocation())
        assert request.trigger == timer["triggerName"]


def test_timer_samples_name_the_timer_s_yaml_declares() -> None:
    timers = {t["triggerName"] for f in FUNCTIONS.values() for t in f.triggers("timer")}
    named = {s.event["triggerName"] for s in SAMPLES if s.is_timer}
    assert named and named <= timers


# -- EventBridge rules --------------------------------------------------------------


@pytest.mark.parametrize(("name", "trigger", "config"), RULES, ids=[r[1] for r in RULES])
def test_each_rule_listens_on_the_default_bus_one_event_per_async_invocation(
    name: str, trigger: str, config: dict[str, Any]
) -> None:
    # given an EventBridge trigger's configuration
    assert config["triggerEnable"] is True
    assert config["eventSourceConfig"]["eventSourceType"] == "Default"
    # then FC is invoked asynchronously (retries and the failure destination apply)
    assert config["asyncInvocationType"] is True
    # and with the whole CloudEvent (the handlers check its type and account), one at a
    # time: the handlers refuse batches (JSON arrays)
    assert config["eventSinkConfig"]["deliveryOption"]["eventSchema"] == "CloudEvents"
    assert config["runOptions"]["mode"] == "event-driven"
    function = FUNCTIONS[name]
    batch = json.dumps([_sample(SAMPLES[0].path.name)]).encode()
    with pytest.raises(UnsupportedEvent):
        function.frame().parse(batch, function.invocation())
    # and the pattern is valid EventBridge syntax
    validate(json.loads(config["eventRuleFilterPattern"]))


def _rules_matching(event: Any) -> list[tuple[str, str]]:
    return [
        (name, trigger)
        for name, trigger, config in RULES
        if matches(json.loads(config["eventRuleFilterPattern"]), event)
    ]


CLOUD_SAMPLES = [s for s in SAMPLES if s.is_cloudevent]
OTHER_SAMPLES = [s for s in SAMPLES if not s.is_cloudevent]


@pytest.mark.parametrize("sample", CLOUD_SAMPLES, ids=[s.path.name for s in CLOUD_SAMPLES])
def test_each_cloud_event_sample_is_taken_by_exactly_one_rule_of_its_function(
    sample: Sample,
) -> None:
    # given a CloudEvent sample, when every rule of s.yaml is applied to it
    taken = _rules_matching(sample.event)
    # then one rule takes it (two would invoke twice), and it is one of its function's
    assert len(taken) == 1, taken
    assert taken[0][0] == sample.function


@pytest.mark.parametrize("sample", OTHER_SAMPLES, ids=[s.path.name for s in OTHER_SAMPLES])
def test_samples_that_are_not_cloud_events_match_no_rule(sample: Sample) -> None:
    # direct invocations, the timer's and the legacy CDN trigger's events
    assert _rules_matching(sample.event) == []


@pytest.mark.parametrize("event", NEAR_MISSES.values(), ids=list(NEAR_MISSES))
def test_near_misses_match_no_rule(event: dict[str, Any]) -> None:
    assert _rules_matching(event) == []


@pytest.mark.parametrize(("name", "trigger", "config"), RULES, ids=[r[1] for r in RULES])
def test_each_rule_takes_some_sample(name: str, trigger: str, config: dict[str, Any]) -> None:
    # a rule no sample shows firing would be untested
    pattern = json.loads(config["eventRuleFilterPattern"])
    assert any(matches(pattern, s.event) for s in CLOUD_SAMPLES if s.function == name), trigger


@pytest.mark.parametrize("event", NEAR_MISSES.values(), ids=list(NEAR_MISSES))
def test_near_misses_are_refused_by_the_handlers_too(event: dict[str, Any]) -> None:
    # the handlers filter again: what a looser rule would let through is refused
    raw = json.dumps(event).encode()
    for function in FUNCTIONS.values():
        with pytest.raises(EventError):
            function.frame().parse(raw, function.invocation())
