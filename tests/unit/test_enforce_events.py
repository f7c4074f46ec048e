"""enforce-https events: every accepted shape parsed into one typed request, anything
else (and other accounts) rejected with a typed error before anything runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from certpilot.core.errors import ForeignAccount, MalformedEvent, UnsupportedEvent
from certpilot.jobs.enforce_https.events import EnforceRequest, Trigger, parse_enforce_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
ACCOUNT = "1234567890123456"


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"enforce-https.{name}.json").read_text())
    return loaded


def parse(event: Any, account: str | None = ACCOUNT) -> EnforceRequest:
    return parse_enforce_event(json.dumps(event).encode(), account_id=account)


@pytest.mark.parametrize(
    ("name", "trigger", "domains", "buckets"),
    [
        ("oss-putcname", Trigger.OSS_PUT_CNAME, ("img.example.com",), ("media",)),
        ("cdn-addcdndomain", Trigger.CDN_ADD_DOMAIN, ("cdn.example.com",), ()),
        ("cdn-legacy", Trigger.CDN_LEGACY, ("cdn.example.com",), ()),
        ("direct", Trigger.DIRECT, ("img.example.com",), ()),
    ],
)
def test_every_sample_event_parses(
    name: str, trigger: Trigger, domains: tuple[str, ...], buckets: tuple[str, ...]
) -> None:
    request = parse(sample(name))
    assert (request.trigger, request.domains, request.buckets) == (trigger, domains, buckets)


def test_direct_bucket_dry_run_and_idn_domains() -> None:
    request = parse({"bucket": "media", "dryRun": True, "reason": "manual"})
    assert (request.buckets, request.dry_run, request.reason) == (("media",), True, "manual")
    assert parse({"domain": "Bücher.Example.com."}).domains == ("xn--bcher-kva.example.com",)


def test_putcname_record_with_only_the_bucket_in_referenced_resources() -> None:
    event = sample("oss-putcname")
    event["data"]["requestParameters"] = {}
    request = parse(event)
    assert (request.domains, request.buckets) == ((), ("media",))


def test_batch_add_names_several_domains() -> None:
    event = sample("cdn-addcdndomain")
    event["data"]["eventName"] = "BatchAddCdnDomain"
    event["data"]["requestParameters"]["DomainName"] = "a.example.com,b.example.com,a.example.com"
    assert parse(event).domains == ("a.example.com", "b.example.com")


def _with(name: str, path: tuple[str, ...], value: Any) -> dict[str, Any]:
    event = sample(name)
    node: Any = event
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"certId": 1}, UnsupportedEvent),
        ({"domain": "a.example.com", "extra": 1}, MalformedEvent),
        ({"domain": "not a domain"}, MalformedEvent),
        ({"domain": "a.example.com", "dryRun": "yes"}, MalformedEvent),
        ({"bucket": "Bad_Bucket"}, MalformedEvent),
        (_with("oss-putcname", ("type",), "oss:ObjectCreated:PutObject"), UnsupportedEvent),
        (_with("oss-putcname", ("data", "eventName"), "DeleteCname"), UnsupportedEvent),
        (
            _with("oss-putcname", ("data", "errorCode"), "NeedVerifyDomainOwnership"),
            UnsupportedEvent,
        ),
        (_with("oss-putcname", ("aliyunaccountid",), "999"), ForeignAccount),
        (_with("cdn-addcdndomain", ("data", "eventName"), "DeleteCdnDomain"), UnsupportedEvent),
        (_with("cdn-addcdndomain", ("data", "requestParameters"), {}), MalformedEvent),
        (_with("cdn-addcdndomain", ("data", "userIdentity", "accountId"), "999"), ForeignAccount),
        (
            {"events": [{"eventName": "CdnDomainDeleted", "userIdentity": {"aliUid": ACCOUNT}}]},
            UnsupportedEvent,
        ),
        ({"events": []}, MalformedEvent),
        (
            {
                "events": [
                    {
                        "eventName": "CdnDomainAdded",
                        "userIdentity": {"aliUid": "9"},
                        "resource": {"domain": "a.example.com"},
                    }
                ]
            },
            ForeignAccount,
        ),
        ([{"domain": "a.example.com"}], UnsupportedEvent),
    ],
)
def test_anything_else_is_rejected_with_its_error(event: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse(event)


def test_account_scoped_events_are_refused_when_no_account_is_configured() -> None:
    with pytest.raises(ForeignAccount):
        parse(sample("oss-putcname"), account=None)
    # a direct payload names no account: the caller was authorised by FC
    assert parse(sample("direct"), account=None).domains == ("img.example.com",)


def test_garbage_bytes_are_malformed() -> None:
    for raw in (b"", b"\xff\xfe", b"{", b"x" * (300 * 1024)):
        with pytest.raises(MalformedEvent):
            parse_enforce_event(raw, account_id=ACCOUNT)


def test_wildcard_domains_are_accepted_in_their_canonical_form() -> None:
    # given direct payloads naming a wildcard domain, as CDN and OSS spell it
    for raw in ("*.Example.com", ".example.com"):
        # when parsed, then the domain is the canonical wildcard
        request = parse_enforce_event({"domain": raw}, account_id=None)
        assert request.domains == ("*.example.com",)


def test_a_malformed_wildcard_is_rejected() -> None:
    with pytest.raises(MalformedEvent):
        parse_enforce_event({"domain": "*.bad_label..com"}, account_id=None)
