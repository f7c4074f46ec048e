"""OSS bucket policies: parse the stored JSON document and evaluate a request against it.

Evaluation follows OSS: a matching explicit Deny wins over any Allow; a statement
applies when its Principal, Action, Resource and every Condition match. A statement
whose Principal is `*` and that has no Condition spares the bucket owner.

Conditions: `Bool`, `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`,
`StringNotEqualsIgnoreCase`, `StringLike`, `StringNotLike`, `IpAddress`,
`NotIpAddress`, `DateLessThan`, `DateLessThanEquals`, `DateGreaterThan`,
`DateGreaterThanEquals`, `DateEquals`. Within one operator every key must match, and
a key matches when any of its listed values does. Chosen (no source settles them): a
key absent from the request (`acs:SourceVpc` of a request from the internet) fails
every positive operator and satisfies every negated one (`StringNot...`,
`NotIpAddress`), as in AWS's policy language, so `Deny` + `StringNotEquals
acs:SourceVpc` denies internet requests; an operator the emulator does not know never
matches, so a statement using one never applies (neither denies nor allows).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ALLOW = "allow"
DENY = "deny"
NO_MATCH = "none"  # neither allowed nor denied by the policy (implicit)


class PolicyError(ValueError):
    """A policy document that is not valid JSON or not shaped like an OSS bucket policy."""


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: tuple[str, ...]
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...]  # (operator, key, values)


@dataclass(frozen=True)
class Policy:
    version: str
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class PolicyRequest:
    """What a statement is matched against.

    `context` holds condition keys (case-insensitive), e.g. `acs:SecureTransport` ->
    "false", `acs:SourceIp` -> "203.0.113.9", `acs:CurrentTime` -> ISO 8601.
    """

    action: str  # "oss:GetObject"
    resource: str  # "acs:oss:<region>:<account>:<bucket>/<key>"
    principal: str = "*"  # "*" for an anonymous request, else the requester's uid
    is_owner: bool = False
    context: Mapping[str, str] = field(default_factory=dict)


def https_only_policy(bucket: str) -> str:
    """The policy document that denies every request made over plain HTTP."""
    statement = {
        "Effect": "Deny",
        "Action": ["oss:*"],
        "Principal": ["*"],
        "Resource": [f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"],
        "Condition": {"Bool": {"acs:SecureTransport": ["false"]}},
    }
    return json.dumps({"Version": "1", "Statement": [statement]})


def parse_policy(text: str) -> Policy:
    """Parse an OSS bucket policy document.

    Raises PolicyError naming the offending field, e.g. `Statement[0].Effect`.
    """
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as err:
        raise PolicyError(f"policy is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise PolicyError("policy must be a JSON object")
    version = data.get("Version", "1")
    if version != "1":
        raise PolicyError(f'Version must be the string "1", got {version!r}')
    raw = data.get("Statement")
    if not isinstance(raw, list) or not raw:
        raise PolicyError("Statement must be a non-empty list")
    return Policy(version, tuple(_statement(item, i) for i, item in enumerate(raw)))


def _statement(item: Any, index: int) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(item, dict):
        raise PolicyError(f"{where} must be an object")
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f'{where}.Effect must be "Allow" or "Deny", got {effect!r}')
    actions = _strings(item.get("Action"), f"{where}.Action")
    resources = _strings(item.get("Resource"), f"{where}.Resource")
    principals = _principals(item.get("Principal", ["*"]), f"{where}.Principal")
    conditions: list[tuple[str, str, tuple[str, ...]]] = []
    raw_conditions = item.get("Condition", {})
    if not isinstance(raw_conditions, dict):
        raise PolicyError(f"{where}.Condition must be an object")
    for operator, keys in raw_conditions.items():
        if not isinstance(keys, dict) or not keys:
            raise PolicyError(f"{where}.Condition.{operator} must be a non-empty object")
        for key, values in keys.items():
            conditions.append(
                (operator, key, _strings(values, f"{where}.Condition.{operator}.{key}"))
            )
    return Statement(effect, actions, resources, principals, tuple(conditions))


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, (str, bool, int, float)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise PolicyError(f"{where} must be a string or a non-empty list of strings")
    out = []
    for item in value:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            out.append(str(item))
        else:
            raise PolicyError(f"{where} must hold strings, got {item!r}")
    return tuple(out)


def _principals(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, dict):  # {"RAM": [...]} style: the values are what matters
        flat: list[Any] = []
        for item in value.values():
            flat.extend(item if isinstance(item, list) else [item])
        value = flat
    return _strings(value, where)


def evaluate(policy: Policy | str | None, request: PolicyRequest) -> str:
    """ALLOW, DENY or NO_MATCH for `request` under `policy` (a parsed policy or its text).

    Raises PolicyError when given text that does not parse.
    """
    if policy is None:
        return NO_MATCH
    if isinstance(policy, str):
        policy = parse_policy(policy)
    allowed = False
    for statement in policy.statements:
        if _applies(statement, request):
            if statement.effect == "Deny":
                return DENY
            allowed = True
    return ALLOW if allowed else NO_MATCH


def _applies(statement: Statement, request: PolicyRequest) -> bool:
    if "*" in statement.principals:
        if request.is_owner and not statement.conditions:
            return False
    elif request.principal not in statement.principals:
        return False
    if not any(_glob(p, ignore_case=True).fullmatch(request.action) for p in statement.actions):
        return False
    if not any(
        _glob(p, ignore_case=False).fullmatch(request.resource) for p in statement.resources
    ):
        return False
    context = {k.lower(): v for k, v in request.context.items()}
    for operator, key, values in statement.conditions:
        actual = context.get(key.lower())
        test = _OPERATORS.get(operator)
        if test is None:
            return False
        if actual is None:
            if operator not in _NEGATED:
                return False
        elif not test(actual, values):
            return False
    return True


@lru_cache(maxsize=512)
def _glob(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """`*` matches any run of characters, `?` any one character; nothing else is special."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(regex, (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


_Test = Callable[[str, tuple[str, ...]], bool]


def _ip_in(actual: str, values: tuple[str, ...]) -> bool | None:
    try:
        address = ipaddress.ip_address(actual)
    except ValueError:
        return None
    for value in values:
        try:
            if address in ipaddress.ip_network(value, strict=False):
                return True
        except ValueError:
            continue
    return False


def _parse_time(value: str) -> dt.datetime | None:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _date(compare: Callable[[dt.datetime, dt.datetime], bool]) -> _Test:
    def test(actual: str, values: tuple[str, ...]) -> bool:
        now = _parse_time(actual)
        if now is None:
            return False
        limits = [t for t in (_parse_time(v) for v in values) if t is not None]
        return any(compare(now, limit) for limit in limits)

    return test


def _not_ip(actual: str, values: tuple[str, ...]) -> bool:
    inside = _ip_in(actual, values)
    return inside is False


_NEGATED = frozenset(
    {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NotIpAddress"}
)

_OPERATORS: dict[str, _Test] = {
    "Bool": lambda a, vs: any(a.lower() == v.lower() for v in vs),
    "StringEquals": lambda a, vs: a in vs,
    "StringNotEquals": lambda a, vs: a not in vs,
    "StringEqualsIgnoreCase": lambda a, vs: a.lower() in {v.lower() for v in vs},
    "StringNotEqualsIgnoreCase": lambda a, vs: a.lower() not in {v.lower() for v in vs},
    "StringLike": lambda a, vs: any(_glob(v, ignore_case=False).fullmatch(a) for v in vs),
    "StringNotLike": lambda a, vs: not any(_glob(v, ignore_case=False).fullmatch(a) for v in vs),
    "IpAddress": lambda a, vs: _ip_in(a, vs) is True,
    "NotIpAddress": _not_ip,
    "DateLessThan": _date(lambda now, limit: now < limit),
    "DateLessThanEquals": _date(lambda now, limit: now <= limit),
    "DateGreaterThan": _date(lambda now, limit: now > limit),
    "DateGreaterThanEquals": _date(lambda now, limit: now >= limit),
    "DateEquals": _date(lambda now, limit: now == limit),
}
