"""How the emulator's edge judges a request against an OSS bucket policy.

Table-driven: one policy statement or document per row, one request, the decision.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from emulator.policy import (
    ALLOW,
    DENY,
    NO_MATCH,
    PolicyError,
    PolicyRequest,
    evaluate,
    https_only_policy,
    parse_policy,
)

RESOURCE = "acs:oss:cn-hangzhou:1234567890123456:assets/img/logo.png"


def request(
    *,
    secure: bool = True,
    ip: str = "203.0.113.9",
    when: str = "2025-06-01T12:00:00Z",
    action: str = "oss:GetObject",
    resource: str = RESOURCE,
    owner: bool = False,
) -> PolicyRequest:
    return PolicyRequest(
        action=action,
        resource=resource,
        is_owner=owner,
        context={
            "acs:SecureTransport": "true" if secure else "false",
            "acs:SourceIp": ip,
            "acs:CurrentTime": when,
        },
    )


def policy(*statements: dict[str, Any]) -> str:
    full = [
        {"Principal": ["*"], "Action": ["oss:GetObject"], "Resource": ["acs:oss:*:*:assets/*"]} | s
        for s in statements
    ]
    return json.dumps({"Version": "1", "Statement": full})


def deny_when(operator: str, key: str, *values: str) -> str:
    return policy({"Effect": "Deny", "Condition": {operator: {key: list(values)}}})


@pytest.mark.parametrize(
    ("document", "req", "decision"),
    [
        # the HTTPS-only statement certpilot writes
        (https_only_policy("assets"), request(secure=False), DENY),
        (https_only_policy("assets"), request(secure=True), NO_MATCH),
        (https_only_policy("other"), request(secure=False), NO_MATCH),
        # explicit Deny wins over Allow, in any order
        (
            policy({"Effect": "Allow"}, {"Effect": "Deny"}),
            request(),
            DENY,
        ),
        (policy({"Effect": "Deny"}, {"Effect": "Allow"}), request(), DENY),
        (policy({"Effect": "Allow"}), request(), ALLOW),
        # action and resource wildcards
        (policy({"Effect": "Deny", "Action": ["oss:*"]}), request(), DENY),
        (policy({"Effect": "Deny", "Action": ["oss:Get*"]}), request(), DENY),
        (policy({"Effect": "Deny", "Action": ["oss:PutObject"]}), request(), NO_MATCH),
        (policy({"Effect": "Deny", "Action": "OSS:getobject"}), request(), DENY),
        (policy({"Effect": "Deny", "Resource": ["acs:oss:*:*:assets"]}), request(), NO_MATCH),
        (policy({"Effect": "Deny", "Resource": ["acs:oss:*:*:assets/img/*"]}), request(), DENY),
        (policy({"Effect": "Deny", "Resource": ["acs:oss:*:*:assets/css/*"]}), request(), NO_MATCH),
        (
            policy({"Effect": "Deny", "Resource": ["acs:oss:*:999:assets/*"]}),
            request(),
            NO_MATCH,
        ),
        # condition operators
        (deny_when("Bool", "acs:SecureTransport", "false"), request(secure=False), DENY),
        (deny_when("Bool", "acs:SecureTransport", "FALSE"), request(secure=False), DENY),
        (deny_when("StringEquals", "acs:SourceIp", "203.0.113.9"), request(), DENY),
        (deny_when("StringEquals", "acs:SourceIp", "203.0.113.10"), request(), NO_MATCH),
        (deny_when("StringLike", "acs:SourceIp", "203.0.113.*"), request(), DENY),
        (deny_when("StringLike", "acs:SourceIp", "198.*"), request(), NO_MATCH),
        (deny_when("IpAddress", "acs:SourceIp", "203.0.113.0/24"), request(), DENY),
        (deny_when("IpAddress", "acs:SourceIp", "10.0.0.0/8"), request(), NO_MATCH),
        (deny_when("NotIpAddress", "acs:SourceIp", "10.0.0.0/8"), request(), DENY),
        (deny_when("NotIpAddress", "acs:SourceIp", "203.0.113.0/24"), request(), NO_MATCH),
        (deny_when("DateLessThan", "acs:CurrentTime", "2025-07-01T00:00:00Z"), request(), DENY),
        (deny_when("DateLessThan", "acs:CurrentTime", "2025-05-01T00:00:00Z"), request(), NO_MATCH),
        (deny_when("DateGreaterThan", "acs:CurrentTime", "2025-05-01T00:00:00Z"), request(), DENY),
        (
            deny_when("DateGreaterThan", "acs:CurrentTime", "2025-07-01T00:00:00Z"),
            request(),
            NO_MATCH,
        ),
        # the ...Equals forms include the limit itself
        (deny_when("DateLessThan", "acs:CurrentTime", "2025-06-01T12:00:00Z"), request(), NO_MATCH),
        (
            deny_when("DateLessThanEquals", "acs:CurrentTime", "2025-06-01T12:00:00Z"),
            request(),
            DENY,
        ),
        (
            deny_when("DateGreaterThanEquals", "acs:CurrentTime", "2025-06-01T20:00:00+08:00"),
            request(),
            DENY,
        ),
        (
            deny_when("DateGreaterThan", "acs:CurrentTime", "2025-06-01T12:00:00Z"),
            request(),
            NO_MATCH,
        ),
        (deny_when("DateEquals", "acs:CurrentTime", "2025-06-01T12:00:00Z"), request(), DENY),
        # chosen: a key the request lacks (no VPC on the internet) satisfies only the
        # negated operators
        (deny_when("StringNotLike", "acs:SourceVpc", "vpc-*"), request(), DENY),
        (deny_when("StringNotEquals", "acs:SourceVpc", "vpc-1"), request(), DENY),
        (deny_when("StringLike", "acs:SourceVpc", "vpc-*"), request(), NO_MATCH),
        # condition keys are case-insensitive; a key the request lacks never matches
        (deny_when("Bool", "ACS:securetransport", "false"), request(secure=False), DENY),
        (deny_when("StringEquals", "acs:UserAgent", "curl"), request(), NO_MATCH),
        # chosen: an operator the emulator does not know never matches
        (deny_when("NumericLessThan", "acs:SourceIp", "5"), request(), NO_MATCH),
        # all operators of a statement must match
        (
            policy(
                {
                    "Effect": "Deny",
                    "Condition": {
                        "Bool": {"acs:SecureTransport": ["false"]},
                        "IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]},
                    },
                }
            ),
            request(secure=False),
            NO_MATCH,
        ),
        # Principal "*" without a Condition spares the owner; with one it does not
        (policy({"Effect": "Deny"}), request(owner=True), NO_MATCH),
        (https_only_policy("assets"), request(secure=False, owner=True), DENY),
        (policy({"Effect": "Deny", "Principal": ["1234"]}), request(), NO_MATCH),
        (None, request(), NO_MATCH),
    ],
)
def test_policy_decisions(document: str | None, req: PolicyRequest, decision: str) -> None:
    assert evaluate(document, req) == decision


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "policy is not valid JSON"),
        ("[]", "policy must be a JSON object"),
        ('{"Version": "2", "Statement": []}', 'Version must be the string "1"'),
        ('{"Version": "1", "Statement": []}', "Statement must be a non-empty list"),
        (
            '{"Statement": [{"Effect": "Block", "Action": "oss:*", "Resource": "*"}]}',
            'Statement[0].Effect must be "Allow" or "Deny"',
        ),
        ('{"Statement": [{"Effect": "Deny", "Resource": "*"}]}', "Statement[0].Action must be"),
        (
            '{"Statement": [{"Effect": "Deny", "Action": "oss:*", "Resource": "*",'
            ' "Condition": {"Bool": []}}]}',
            "Statement[0].Condition.Bool must be a non-empty object",
        ),
    ],
)
def test_malformed_policies_are_refused_with_the_field_named(document: str, message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        parse_policy(document)
