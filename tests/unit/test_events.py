"""deploy-cert event parsing: every accepted shape, every rejection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from certpilot.core.errors import EventError, ForeignAccount, MalformedEvent, UnsupportedEvent
from certpilot.events import (
    CERT_ISSUED_TYPE,
    MAX_EVENT_BYTES,
    SHAPE_ACTIONTRAIL,
    SHAPE_CLOUDEVENT,
    SHAPE_DIRECT,
    parse_cert_id,
    parse_deploy_event,
)
from certpilot.jobs.check_expiry.sweep import parse_options
from certpilot.jobs.enforce_https.events import parse_enforce_event

ACCOUNT = "1234567890123456"
EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


def cloudevent(data: Any, **envelope: Any) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "acme.renewal",
        "type": CERT_ISSUED_TYPE,
        "aliyunaccountid": ACCOUNT,
        "data": data,
    }
    event.update(envelope)
    return event


def actiontrail(
    name: str | None = "UploadUserCertificate",
    response: Any = None,
    request: Any = None,
    acs_region: Any = None,
    **envelope: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "at-1",
        "source": "acs.actiontrail",
        "type": "cas:ActionTrail:ApiCall",
        "aliyunaccountid": ACCOUNT,
        "data": {
            "eventName": name,
            "serviceName": "cas",
            "userIdentity": {"accountId": ACCOUNT, "type": "root-account"},
            "requestParameters": request if request is not None else {"Name": "renewed"},
            "responseElements": response if response is not None else {"CertId": 10000042},
        },
    }
    if acs_region is not None:
        event["data"]["acsRegion"] = acs_region
    event.update(envelope)
    return event


def raw(event: Any) -> bytes:
    return json.dumps(event).encode()


HZ, SG = "cn-hangzhou", "ap-southeast-1"


@pytest.mark.parametrize(
    ("event", "cas_id", "region", "shape"),
    [
        (cloudevent({"certId": 10000042}), 10000042, None, SHAPE_CLOUDEVENT),
        (cloudevent({"certId": "10000042"}), 10000042, None, SHAPE_CLOUDEVENT),
        (cloudevent({"certId": "10000042-ap-southeast-1"}), 10000042, SG, SHAPE_CLOUDEVENT),
        (cloudevent(json.dumps({"certId": 7})), 7, None, SHAPE_CLOUDEVENT),
        (cloudevent({"certId": 7}, source="certpilot"), 7, None, SHAPE_CLOUDEVENT),
        (actiontrail(), 10000042, None, SHAPE_ACTIONTRAIL),
        (actiontrail(acs_region=SG), 10000042, SG, SHAPE_ACTIONTRAIL),
        (
            actiontrail(response={"CertId": "5-cn-hangzhou"}, acs_region=HZ),
            5,
            HZ,
            SHAPE_ACTIONTRAIL,
        ),
        (actiontrail(response=json.dumps({"CertId": 55})), 55, None, SHAPE_ACTIONTRAIL),
        (
            actiontrail(response={"RequestId": "x"}, request={"CertId": "56-cn-hangzhou"}),
            56,
            HZ,
            SHAPE_ACTIONTRAIL,
        ),
        (
            actiontrail(type="yundun-cert:ActionTrail:ApiCall", source="acs.cas"),
            10000042,
            None,
            SHAPE_ACTIONTRAIL,
        ),
        ({"certId": 10000042}, 10000042, None, SHAPE_DIRECT),
        ({"certId": "10000042-cn-hangzhou"}, 10000042, HZ, SHAPE_DIRECT),
        ({"certId": 9, "dryRun": True, "reason": "sweep"}, 9, None, SHAPE_DIRECT),
    ],
)
def test_accepted_shapes_give_a_typed_request(
    event: dict[str, Any], cas_id: int, region: str | None, shape: str
) -> None:
    # given an event of an accepted shape, as FC passes it (bytes)
    # when it is parsed
    request = parse_deploy_event(raw(event), account_id=ACCOUNT)
    # then the request names the certificate, the region the event names (if any) and
    # the shape
    assert (request.cas_id, request.region, request.shape) == (cas_id, region, shape)
    assert request.identifier == (f"{cas_id}-{region}" if region else str(cas_id))


def test_request_is_read_only_and_carries_the_envelope() -> None:
    request = parse_deploy_event(raw(cloudevent({"certId": 5})), account_id=ACCOUNT)
    assert (request.event_id, request.source, request.account_id) == (
        "evt-1",
        "acme.renewal",
        ACCOUNT,
    )
    with pytest.raises(AttributeError):
        request.cas_id = 6  # type: ignore[misc]


def test_direct_payload_needs_no_account_and_keeps_dry_run() -> None:
    request = parse_deploy_event(b'{"certId": 3, "dryRun": true}', account_id=None)
    assert request.dry_run is True
    assert request.account_id is None


def test_str_and_mapping_inputs_are_accepted() -> None:
    assert parse_deploy_event('{"certId": 3}', account_id=None).cas_id == 3
    assert parse_deploy_event({"certId": 3}, account_id=None).cas_id == 3


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", MalformedEvent),
        (b"   ", MalformedEvent),
        (b"{not json", MalformedEvent),
        (b"\xff\xfe{}", MalformedEvent),
        (b"[" * 100_000 + b"]" * 100_000, MalformedEvent),  # too deep (or too big)
        (b"x" * (MAX_EVENT_BYTES + 1), MalformedEvent),
        (b'"certId"', UnsupportedEvent),
        (b"42", UnsupportedEvent),
        (b'[{"certId": 1}]', UnsupportedEvent),
        (b"{}", UnsupportedEvent),
        (b'{"certid": 1}', UnsupportedEvent),
        (raw({"certId": 0}), MalformedEvent),
        (raw({"certId": -5}), MalformedEvent),
        (raw({"certId": True}), MalformedEvent),
        (raw({"certId": 1.5}), MalformedEvent),
        (raw({"certId": None}), MalformedEvent),
        (raw({"certId": "abc"}), MalformedEvent),
        (raw({"certId": "12-"}), MalformedEvent),
        (raw({"certId": "012"}), MalformedEvent),
        (raw({"certId": 2**70}), MalformedEvent),
        (raw({"certId": "9" * 25}), MalformedEvent),
        (raw({"certId": 1, "domains": ["a"]}), MalformedEvent),
        (raw({"certId": 1, "dryRun": "yes"}), MalformedEvent),
        (raw({"certId": 1, "reason": 7}), MalformedEvent),
        (raw(cloudevent({"certId": 1}, specversion="0.3")), UnsupportedEvent),
        (raw(cloudevent({"certId": 1}, type="")), MalformedEvent),
        (raw(cloudevent({"certId": 1}, type=7)), MalformedEvent),
        (raw(cloudevent({"certId": 1}, type="acs.oss:ObjectCreated")), UnsupportedEvent),
        (raw(cloudevent({"certId": 1}, type="certpilot.certificate.revoked")), UnsupportedEvent),
        (raw(cloudevent({})), MalformedEvent),
        (raw(cloudevent(None)), MalformedEvent),
        (raw(cloudevent("not json")), MalformedEvent),
        (raw(cloudevent([1])), MalformedEvent),
        (raw(cloudevent({"certId": "x"})), MalformedEvent),
        (raw(cloudevent({"certId": 1}, aliyunaccountid=None)), MalformedEvent),
        (raw(cloudevent({"certId": 1}, aliyunaccountid=["x"])), MalformedEvent),
        (raw(cloudevent({"certId": 1}, aliyunaccountid="999")), ForeignAccount),
        (raw(actiontrail(name="DeleteUserCertificate")), UnsupportedEvent),
        (raw(actiontrail(name=None)), MalformedEvent),
        (raw(actiontrail(response={"OrderId": 1}, request={})), UnsupportedEvent),
        (raw(actiontrail(response={"CertId": "nope"})), MalformedEvent),
        (raw(actiontrail(type="oss:ActionTrail:ApiCall")), UnsupportedEvent),
        (raw(actiontrail(aliyunaccountid="999")), ForeignAccount),
        # the record and its certificate id name two different regions
        (raw(actiontrail(response={"CertId": "5-ap-southeast-1"}, acs_region=HZ)), MalformedEvent),
        (raw(actiontrail(acs_region="Hangzhou")), MalformedEvent),
        (raw(actiontrail(acs_region=7)), MalformedEvent),
    ],
)
def test_rejected_events_raise_a_clear_event_error(payload: bytes, error: type) -> None:
    # given something that is not a usable deploy-cert event
    # when it is parsed, then the matching EventError is raised
    with pytest.raises(error) as caught:
        parse_deploy_event(payload, account_id=ACCOUNT)
    assert isinstance(caught.value, EventError)
    assert str(caught.value)


def test_actiontrail_record_of_another_account_is_foreign() -> None:
    event = actiontrail()
    event["data"]["userIdentity"]["accountId"] = "999"
    with pytest.raises(ForeignAccount):
        parse_deploy_event(raw(event), account_id=ACCOUNT)


def test_actiontrail_without_envelope_account_uses_the_record_account() -> None:
    event = actiontrail()
    del event["aliyunaccountid"]
    assert parse_deploy_event(raw(event), account_id=ACCOUNT).account_id == ACCOUNT


def test_failed_actiontrail_call_is_not_a_certificate() -> None:
    event = actiontrail()
    event["data"]["errorCode"] = "InvalidParameter"
    with pytest.raises(UnsupportedEvent):
        parse_deploy_event(raw(event), account_id=ACCOUNT)


def test_account_scoped_events_are_refused_when_no_account_is_configured() -> None:
    # given no CERTPILOT_ACCOUNT_ID, a CloudEvent cannot be trusted
    with pytest.raises(ForeignAccount, match="CERTPILOT_ACCOUNT_ID"):
        parse_deploy_event(raw(cloudevent({"certId": 1})), account_id=None)


def test_error_messages_do_not_echo_the_payload() -> None:
    secret = "-----BEGIN PRIVATE " + "KEY-----abc"
    with pytest.raises(EventError) as caught:
        parse_deploy_event(raw({"certId": secret}), account_id=ACCOUNT)
    assert "PRIVATE KEY" not in str(caught.value)


def test_large_but_legal_event_is_accepted() -> None:
    event = cloudevent({"certId": 5, "note": "x" * (MAX_EVENT_BYTES - 1000)})
    assert len(raw(event)) <= MAX_EVENT_BYTES
    assert parse_deploy_event(raw(event), account_id=ACCOUNT).cas_id == 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, (1, None)),
        (" 123 ", (123, None)),
        ("123-cn-hangzhou", (123, "cn-hangzhou")),
        ("123-ap-southeast-1", (123, "ap-southeast-1")),
    ],
)
def test_cert_id_forms(value: object, expected: tuple[int, str | None]) -> None:
    assert parse_cert_id(value) == expected


# The parser of each function's events, by the sample files' name prefix. A sample
# for a function without a parser here fails the test below until one is added.
PARSERS: dict[str, Any] = {
    "deploy-cert": parse_deploy_event,
    "enforce-https": parse_enforce_event,
    # check-expiry's events are not account-scoped (a timer, or a direct invocation).
    "check-expiry": lambda data, account_id: parse_options(data),
}
SAMPLE_ACCOUNT = "1234567890123456"  # the account every sample names
SAMPLES = sorted(p for p in EVENTS_DIR.iterdir() if p.is_file())


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_sample_event_is_accepted(path: Path) -> None:
    # given a sample event from events/ (named <function>.<shape>[-<variant>].json)
    function, name, suffix = path.name.split(".")
    shape = name.split("-")[0]
    assert suffix == "json" and function in PARSERS, f"no parser for {path.name}"
    data = path.read_bytes()
    # when parsed with the account it names, as the handler would
    request = PARSERS[function](data, account_id=SAMPLE_ACCOUNT)
    # then it is accepted (as the shape its name says, for deploy-cert)
    if function == "deploy-cert":
        assert request.shape == shape
        assert request.cas_id > 0
    elif function == "check-expiry":
        event = json.loads(data)
        options = json.loads(event["payload"]) if shape == "timer" else event
        assert request.report_only is options.get("reportOnly", False)
        assert request.scope == options.get("scope")
        assert (request.trigger is not None) == (shape == "timer")
    else:
        assert request.domains or request.buckets


def test_every_accepted_shape_has_a_sample() -> None:
    shapes = {
        p.name.split(".")[1].split("-")[0] for p in SAMPLES if p.name.startswith("deploy-cert.")
    }
    assert shapes == {SHAPE_CLOUDEVENT, SHAPE_ACTIONTRAIL, SHAPE_DIRECT}


@pytest.mark.parametrize(
    ("event", "cas_region", "refused"),
    [
        ({"certId": "7-ap-southeast-1"}, HZ, True),
        ({"certId": "7-cn-hangzhou"}, HZ, False),
        ({"certId": 7}, HZ, False),  # no region named: the deployment's applies
        ({"certId": 7}, SG, False),
        ({"certId": "7-ap-southeast-1"}, SG, False),
        (actiontrail(acs_region=SG), HZ, True),
    ],
)
def test_a_certificate_in_another_cas_region_is_refused_before_anything_is_read(
    event: dict[str, Any], cas_region: str, refused: bool
) -> None:
    from certpilot.core.errors import ForeignRegion
    from certpilot.core.settings import Settings
    from certpilot.jobs.deploy_cert.engine import check_region

    # given a deployment that reads CAS in `cas_region`, and an event naming a region
    settings = Settings.from_env({"CERTPILOT_CAS_REGION": cas_region})
    request = parse_deploy_event(raw(event), account_id=ACCOUNT)
    # when the engine checks it, then a foreign region is a clear EventError
    if refused:
        with pytest.raises(ForeignRegion, match="CERTPILOT_CAS_REGION") as caught:
            check_region(request.region, settings)
        assert isinstance(caught.value, EventError)
        assert str(request.region) in str(caught.value)
    else:
        check_region(request.region, settings)
