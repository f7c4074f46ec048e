"""The EventBridge pattern matcher the s.yaml tests rely on (tests/eventbridge_pattern.py):
each operator matching and refusing, on a CloudEvent-shaped event."""

from __future__ import annotations

from typing import Any

import pytest

from tests.eventbridge_pattern import PatternError, matches, validate

EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "type": "oss:ActionTrail:ApiCall",
    "source": "acs.oss",
    "subject": "acs:oss:cn-hangzhou:1234567890123456:media/photo.jpg",
    "aliyunaccountid": "1234567890123456",
    "data": {
        "eventName": "PutCname",
        "eventVersion": "",
        "responseElements": None,
        "retries": 3,
        "ratio": 0.25,
        "success": True,
        "sourceIpAddress": "10.0.0.17",
        "tags": ["prod", "media"],
        "empty": [],
        "userIdentity": {"type": "root-account", "accountId": "1234567890123456"},
        "records": [{"domain": "a.example.com"}, {"domain": "b.example.com"}],
    },
}


def data(**conditions: Any) -> dict[str, Any]:
    """A pattern on the event's `data`."""
    return {"data": conditions}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # the empty pattern, exact values, AND across keys, OR within an array
        ({}, True),
        ({"type": ["oss:ActionTrail:ApiCall"]}, True),
        ({"type": ["oss:actiontrail:apicall"]}, False),  # case-sensitive
        ({"type": ["cdn:ActionTrail:ApiCall", "oss:ActionTrail:ApiCall"]}, True),
        ({"type": ["oss:ActionTrail:ApiCall"], "source": ["acs.cdn"]}, False),
        ({"type": ["oss:ActionTrail:ApiCall"], "data": {"eventName": ["PutCname"]}}, True),
        (data(eventName=["PutBucketPolicy"]), False),
        # a key the event lacks fails, at any depth
        ({"nope": ["x"]}, False),
        (data(nope=["x"]), False),
        ({"nope": {"deeper": ["x"]}}, False),
        # types count: "3" is not 3, true is not 1, null and "" are their own values
        (data(retries=[3]), True),
        (data(retries=["3"]), False),
        (data(success=[True]), True),
        (data(success=[1]), False),
        (data(retries=[True]), False),
        (data(responseElements=[None]), True),
        (data(eventVersion=[None]), False),
        (data(eventVersion=[""]), True),
        (data(eventName=[""]), False),
        # prefix, suffix, contains: strings only
        ({"source": [{"prefix": "acs."}]}, True),
        ({"source": [{"prefix": "aliyun."}]}, False),
        ({"subject": [{"suffix": ".jpg"}]}, True),
        ({"subject": [{"suffix": ".png"}]}, False),
        (data(retries=[{"prefix": "3"}]), False),
        ({"type": [{"contains": "ActionTrail"}]}, True),
        ({"type": [{"contains": "Normal"}]}, False),
        # anything-but: a value, a list, a prefix; the field must be present
        (data(eventName=[{"anything-but": "PutBucketPolicy"}]), True),
        (data(eventName=[{"anything-but": "PutCname"}]), False),
        (data(eventName=[{"anything-but": ["PutCname", "DeleteCname"]}]), False),
        (data(eventName=[{"anything-but": ["PutBucketPolicy", "DeleteCname"]}]), True),
        (data(retries=[{"anything-but": 3}]), False),
        (data(retries=[{"anything-but": 4}]), True),
        (data(retries=[{"anything-but": "3"}]), True),  # another type is "anything but"
        (data(eventName=[{"anything-but": {"prefix": "Put"}}]), False),
        (data(eventName=[{"anything-but": {"prefix": "Delete"}}]), True),
        (data(retries=[{"anything-but": {"prefix": "Delete"}}]), False),
        (data(nope=[{"anything-but": "x"}]), False),
        # numeric: one comparison or a range, numbers only
        (data(retries=[{"numeric": [">", 0, "<=", 5]}]), True),
        (data(retries=[{"numeric": [">", 3, "<=", 5]}]), False),
        (data(retries=[{"numeric": [">=", 3, "<", 4]}]), True),
        (data(retries=[{"numeric": ["=", 3]}]), True),
        (data(retries=[{"numeric": ["=", 3.5]}]), False),
        (data(ratio=[{"numeric": ["<", 0.5]}]), True),
        (data(ratio=[{"numeric": [">=", 0.5]}]), False),
        (data(success=[{"numeric": [">", 0]}]), False),  # a boolean is no number
        (data(eventName=[{"numeric": [">", 0]}]), False),
        # cidr
        (data(sourceIpAddress=[{"cidr": "10.0.0.0/24"}]), True),
        (data(sourceIpAddress=[{"cidr": "10.0.1.0/24"}]), False),
        (data(eventName=[{"cidr": "10.0.0.0/8"}]), False),
        # exists: on leaves; an object and an empty array count as absent
        (data(eventName=[{"exists": True}]), True),
        (data(eventName=[{"exists": False}]), False),
        (data(nope=[{"exists": False}]), True),
        (data(nope=[{"exists": True}]), False),
        (data(responseElements=[{"exists": True}]), True),  # null is a value
        (data(empty=[{"exists": True}]), False),
        (data(empty=[{"exists": False}]), True),
        (data(userIdentity=[{"exists": True}]), False),
        (data(userIdentity=["root-account"]), False),  # conditions match leaves only
        # nested objects
        (data(userIdentity={"type": ["root-account"]}), True),
        (data(userIdentity={"type": ["ram-user"]}), False),
        (data(eventName={"type": ["root-account"]}), False),  # a leaf is no object
        # arrays in the event: any element
        (data(tags=["media"]), True),
        (data(tags=["staging", "prod"]), True),
        (data(tags=["staging"]), False),
        (data(tags=[{"prefix": "me"}]), True),
        (data(tags=[{"anything-but": "prod"}]), True),  # "media" is anything but "prod"
        (data(tags=[{"anything-but": ["prod", "media"]}]), False),
        (data(records={"domain": ["b.example.com"]}), True),
        (data(records={"domain": ["c.example.com"]}), False),
        # several conditions in one array: any of them
        (data(eventName=[{"prefix": "Delete"}, "PutCname"]), True),
        (data(eventName=[{"prefix": "Delete"}, {"suffix": "Policy"}]), False),
        (data(nope=["x", {"exists": False}]), True),
    ],
)
def test_pattern_matches_as_eventbridge_does(pattern: dict[str, Any], expected: bool) -> None:
    # given a pattern and the sample CloudEvent, when matched, then as the semantics say
    assert matches(pattern, EVENT) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        [],  # not an object
        {"type": "oss:ActionTrail:ApiCall"},  # a leaf must be an array
        {"type": []},
        {"type": [["nested"]]},
        {"type": [{"prefix": "a", "suffix": "b"}]},  # one operator per condition
        {"type": [{"prefix": 3}]},
        {"type": [{"wildcard": "oss:*"}]},  # AWS only
        {"type": [{"equals-ignore-case": "x"}]},  # AWS only
        {"type": [{"anything-but": {"suffix": ".png"}}]},  # AWS only
        {"type": [{"anything-but": []}]},
        {"type": [{"anything-but": [{"prefix": "a"}]}]},
        {"n": [{"numeric": [">", "0"]}]},
        {"n": [{"numeric": ["!=", 0]}]},
        {"n": [{"numeric": [">", 0, "<"]}]},
        {"n": [{"numeric": ["<", 5, ">", 0]}]},  # a range is lower bound first
        {"n": [{"numeric": [">", 5, "<", 1]}]},
        {"n": [{"numeric": [">", float("inf")]}]},
        {"ip": [{"cidr": "2001:db8::/32"}]},  # IPv4 only
        {"ip": [{"cidr": "not-a-block"}]},
        {"f": [{"exists": "yes"}]},
        {"$or": [{"type": ["a"]}, {"type": ["b"]}]},
    ],
)
def test_invalid_patterns_are_refused(pattern: Any) -> None:
    # given a pattern Alibaba's documented syntax does not allow, then it is refused
    with pytest.raises(PatternError):
        validate(pattern)
    with pytest.raises(PatternError):
        matches(pattern, EVENT)


def test_an_event_that_is_not_an_object_matches_no_pattern() -> None:
    assert matches({}, {"any": "thing"})
    assert not matches({}, "x")
    assert not matches({"type": ["x"]}, "x")
    assert not matches({"type": ["x"]}, None)
