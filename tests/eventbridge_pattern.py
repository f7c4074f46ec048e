"""EventBridge event-pattern matching, for testing the rules s.yaml declares (a test
utility: never part of the certpilot layer).

Semantics of Alibaba Cloud EventBridge event patterns ("Event patterns", EventBridge
user guide), which follow the AWS EventBridge syntax:

- A pattern is a JSON object with the event's nesting. Keys are ANDed; each leaf is a
  non-empty array of conditions, ORed. Every key of the pattern must be in the event
  (`{"exists": false}` aside); the event's other keys are ignored. `{}` matches anything.
- Conditions: a literal (string, number, true / false, null; `""` is the empty string)
  that must equal the value, type included ("5" is not 5); `{"prefix": s}`,
  `{"suffix": s}`, `{"contains": s}` on strings; `{"anything-but": v}` with v a
  literal, a list of literals, or `{"prefix": s}`; `{"numeric": [op, n, ...]}` with one
  comparison (`=`, `<`, `<=`, `>`, `>=`) or a lower and an upper bound
  (`[">", 0, "<=", 5]`); `{"cidr": "10.0.0.0/24"}` (IPv4); `{"exists": true|false}`.
- An array in the event matches when any of its elements does (AWS: the intersection of
  the pattern's values and the event's is not empty); a nested pattern applied to an
  array of objects matches when one of them does.

Differences from AWS found in Alibaba's documentation (and so enforced here: a pattern
using anything else raises `PatternError`, so s.yaml cannot come to rely on it):
`contains` is Alibaba's (AWS has `wildcard` instead); Alibaba documents `anything-but`
with a literal, a list or `prefix` only (AWS adds `suffix`, `wildcard`,
`equals-ignore-case`); `equals-ignore-case`, `wildcard` and `$or` are not documented by
Alibaba; `cidr` is IPv4 only. Alibaba events are CloudEvents (`type`, `source`,
`subject`, `data`), where AWS has `detail-type` and `detail`.

CHOSEN where neither documentation says: `anything-but` (any form) and every other
condition but `{"exists": false}` need the field present; `anything-but` with a literal
or list matches any present value of another type; `anything-but` with a prefix, like
`prefix` / `suffix` / `contains`, matches strings only; an empty array in the event
counts as absent (it has no element to match); conditions apply to leaves only: none
matches an object value, and for `exists` a field holding an object counts as absent.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from typing import Any

_MISSING = object()
_COMPARISONS = ("=", "<", "<=", ">", ">=")
_LOWER = (">", ">=")
_UPPER = ("<", "<=")
_OPERATORS = frozenset(
    {"prefix", "suffix", "contains", "anything-but", "numeric", "cidr", "exists"}
)


class PatternError(ValueError):
    """The pattern is not valid EventBridge pattern syntax (as Alibaba documents it)."""


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """Whether `event` (decoded JSON) matches `pattern` (decoded JSON).

    Raises:
        PatternError: `pattern` is not a valid event pattern.
    """
    validate(pattern)
    return _match_object(pattern, event)


def validate(pattern: Any) -> None:
    """Check `pattern`'s syntax.

    Raises:
        PatternError: not an object, a leaf that is not a non-empty array, an unknown or
            malformed condition.
    """
    if not isinstance(pattern, Mapping):
        raise PatternError("a pattern (and each nested level) must be a JSON object")
    for key, value in pattern.items():
        if isinstance(value, Mapping):
            validate(value)
        elif isinstance(value, list):
            if not value:
                raise PatternError(f"{key}: a condition array must not be empty")
            for condition in value:
                _validate_condition(key, condition)
        else:
            raise PatternError(f"{key}: must be an array of conditions or a nested object")


def _is_literal(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int, float))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _validate_condition(key: str, condition: Any) -> None:
    if _is_literal(condition):
        return
    if not isinstance(condition, Mapping) or len(condition) != 1:
        raise PatternError(f"{key}: a condition is a literal or an object with one operator")
    [(operator, operand)] = condition.items()
    if operator not in _OPERATORS:
        raise PatternError(f"{key}: unknown operator {operator!r}")
    if operator in ("prefix", "suffix", "contains"):
        if not isinstance(operand, str):
            raise PatternError(f"{key}: {operator} takes a string")
    elif operator == "anything-but":
        _validate_anything_but(key, operand)
    elif operator == "numeric":
        _bounds(key, operand)
    elif operator == "cidr":
        try:
            ipaddress.IPv4Network(operand, strict=False)
        except (ValueError, TypeError):
            raise PatternError(f"{key}: cidr takes an IPv4 block such as 10.0.0.0/24") from None
    elif not isinstance(operand, bool):
        raise PatternError(f"{key}: exists takes true or false")


def _validate_anything_but(key: str, operand: Any) -> None:
    if isinstance(operand, Mapping):
        if set(operand) != {"prefix"} or not isinstance(operand["prefix"], str):
            raise PatternError(f"{key}: anything-but takes a literal, a list or a prefix")
    elif isinstance(operand, list):
        if not operand or not all(_is_literal(v) for v in operand):
            raise PatternError(f"{key}: anything-but takes a non-empty list of literals")
    elif not _is_literal(operand):
        raise PatternError(f"{key}: anything-but takes a literal, a list or a prefix")


def _bounds(key: str, operand: Any) -> list[tuple[str, float]]:
    """The comparisons of a `numeric` condition, checked."""
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        raise PatternError(f"{key}: numeric takes one or two (operator, number) pairs")
    pairs = [(operand[i], operand[i + 1]) for i in range(0, len(operand), 2)]
    for op, number in pairs:
        if op not in _COMPARISONS or not _is_number(number) or not math.isfinite(number):
            raise PatternError(f"{key}: numeric comparisons are {_COMPARISONS} with a number")
    if len(pairs) == 2:
        (first, low), (second, high) = pairs
        if first not in _LOWER or second not in _UPPER or low > high:
            raise PatternError(f"{key}: a numeric range is a lower bound, then an upper one")
    return [(op, float(number)) for op, number in pairs]


def _match_object(pattern: Mapping[str, Any], event: Any) -> bool:
    if isinstance(event, list):
        return any(_match_object(pattern, item) for item in event)
    if not isinstance(event, Mapping):
        return False
    for key, expected in pattern.items():
        value = event.get(key, _MISSING)
        if isinstance(expected, Mapping):
            if value is _MISSING or not _match_object(expected, value):
                return False
        elif not _match_leaf(expected, value):
            return False
    return True


def _match_leaf(conditions: Sequence[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    present = value is not _MISSING and values != []
    for condition in conditions:
        if isinstance(condition, Mapping) and "exists" in condition:
            if condition["exists"] == (present and not _is_object(values)):
                return True
        elif present and any(_condition(condition, v) for v in values):
            return True
    return False


def _is_object(values: Sequence[Any]) -> bool:
    return all(isinstance(v, Mapping) for v in values)


def _equal(expected: Any, value: Any) -> bool:
    if expected is None or value is None:
        return expected is value
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and expected == value
    if isinstance(expected, str) or isinstance(value, str):
        return isinstance(expected, str) and isinstance(value, str) and expected == value
    return bool(expected == value)


def _condition(condition: Any, value: Any) -> bool:
    if isinstance(value, Mapping):
        return False
    if not isinstance(condition, Mapping):
        return _equal(condition, value)
    [(operator, operand)] = condition.items()
    if operator == "prefix":
        return isinstance(value, str) and value.startswith(operand)
    if operator == "suffix":
        return isinstance(value, str) and value.endswith(operand)
    if operator == "contains":
        return isinstance(value, str) and operand in value
    if operator == "anything-but":
        if isinstance(operand, Mapping):
            return isinstance(value, str) and not value.startswith(operand["prefix"])
        excluded = operand if isinstance(operand, list) else [operand]
        return not any(_equal(e, value) for e in excluded)
    if operator == "numeric":
        return _is_number(value) and all(
            _compare(op, float(value), bound) for op, bound in _bounds("numeric", operand)
        )
    if operator == "cidr":
        if not isinstance(value, str):
            return False
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            return False
        return address in ipaddress.IPv4Network(operand, strict=False)
    raise PatternError(f"unknown operator {operator!r}")  # validate() keeps this unreachable


def _compare(op: str, value: float, bound: float) -> bool:
    if op == "=":
        return value == bound
    if op == "<":
        return value < bound
    if op == "<=":
        return value <= bound
    if op == ">":
        return value > bound
    return value >= bound
