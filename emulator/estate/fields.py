"""Reading estate fields: typed checks that raise `EstateError` naming the field's path."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from emulator.pki import PkiError
from emulator.pki import to_a_label as _a_label

NOTE = "note"  # free text allowed in every object (JSON has no comments)

_RELATIVE = re.compile(r"^([+-])(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class EstateError(ValueError):
    """A bad estate document; the message starts with the offending field's path."""


def as_object(
    value: Any, where: str, allowed: set[str] | None, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`value` as an object with only `allowed` keys (any when None) besides `note`, and
    every `required` one; `note` is dropped. Raises EstateError."""
    if not isinstance(value, dict):
        raise EstateError(f"{where}: expected an object, got {_kind(value)}")
    if allowed is not None:
        unknown = sorted(k for k in value if k not in allowed and k != NOTE)
        if unknown:
            raise EstateError(
                f"{where}: unknown key {unknown[0]!r} (known: {names(sorted(allowed))})"
            )
        value = {k: v for k, v in value.items() if k != NOTE}
    for key in required:
        if key not in value:
            raise EstateError(f"{where}: missing required key {key!r}")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    """`value` as a list; raises EstateError."""
    if not isinstance(value, list):
        raise EstateError(f"{where}: expected a list, got {_kind(value)}")
    return value


def as_str(value: Any, where: str, *, allow_empty: bool = False) -> str:
    """`value` as a (non-empty, unless allowed) string; raises EstateError."""
    if not isinstance(value, str):
        raise EstateError(f"{where}: expected a string, got {_kind(value)}")
    if not value and not allow_empty:
        raise EstateError(f"{where}: must not be empty")
    return value


def as_bool(value: Any, where: str) -> bool:
    """`value` as true or false; raises EstateError."""
    if not isinstance(value, bool):
        raise EstateError(f"{where}: expected true or false, got {value!r}")
    return value


def as_choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    """`value` when it is one of `choices`; raises EstateError."""
    if value not in choices:
        raise EstateError(f"{where}: expected one of {names(list(choices))}, got {value!r}")
    return str(value)


def as_time(value: Any, where: str, now: float) -> dt.datetime:
    """`now`, a relative time like "-10d" / "+20d" / "+3h" (units s, m, h, d), or ISO 8601.

    Raises EstateError.
    """
    text = as_str(value, where).strip()
    base = dt.datetime.fromtimestamp(now, dt.timezone.utc).replace(microsecond=0)
    if text == "now":
        return base
    match = _RELATIVE.match(text)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        seconds = sign * float(match.group(2)) * _UNITS[match.group(3)]
        try:
            return base + dt.timedelta(seconds=seconds)
        except OverflowError:
            raise EstateError(
                f"{where}: {text!r} is outside the years 1 to 9999 that X.509 can hold"
            ) from None
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        raise EstateError(
            f'{where}: expected a relative time like "-10d" or "+20d" (units s, m, h, d), '
            f'"now", or an ISO 8601 time, got {text!r}'
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def as_domain(value: Any, where: str, *, wildcard: bool) -> str:
    """`value` as a domain name in A-label form (with `wildcard`, `*.` / `.` allowed first).

    Raises EstateError.
    """
    raw = as_str(value, where)
    prefix = ""
    if wildcard:
        for marker in ("*.", "."):
            if raw.startswith(marker):
                prefix, raw = marker, raw[len(marker) :]
                break
    try:
        name = _a_label(raw)
    except PkiError:
        name = ""
    labels = name.split(".")
    if len(labels) < 2 or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise EstateError(f"{where}: {value!r} is not a valid domain name")
    return prefix + name


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a number ({value!r})" if isinstance(value, (int, float)) else repr(value)
    )


def names(items: list[str]) -> str:
    """`items` for an error message: comma-separated, or "none"."""
    return ", ".join(items) if items else "none"
