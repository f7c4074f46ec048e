"""Bucket policy merge for enforce-https: pure functions, no I/O, no clock reads.

OSS `PutBucketPolicy` replaces the whole document, so certpilot never writes a policy
it did not read and merge first. The functions here take the document as OSS returned
it (None when the bucket has none) and answer a `PolicyChange`: the new document to
write, "already in the desired state", or a refusal that leaves the bucket as it was.

Rules (enforce-https issue, DESIGN §2.3):
- every statement and field someone else wrote is kept, in order, with its values;
- an equivalent HTTPS-only statement already present means no change, however its
  `false` is spelled (`"false"`, `false`, `["false"]`) and whatever extra resources it
  names;
- an unparseable document (invalid JSON, duplicate keys, not shaped like a policy) is
  never overwritten;
- the result stays within OSS's limits (16 KB a document, 4,095 bytes a field, valid
  syntax, `Version` "1") or nothing is written.

Which statements are "ours": OSS policy statements carry no id certpilot could mark
them with (a `Sid` is not part of the OSS syntax), so a statement is ours when it is
equivalent to the HTTPS-only statement for the bucket, with or without the fallback
condition below. `remove_https_only` removes exactly those.

Emergency fallback: the Deny statement gains `DateGreaterThan` on `acs:CurrentTime`,
so it denies plain HTTP again only after that instant, without any function running
(OSS evaluates `acs:CurrentTime` at request time).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

# OSS bucket policy limits (OSS API reference, PutBucketPolicy; EC 0030-00000001 / -03).
MAX_DOCUMENT_BYTES = 16 * 1024
MAX_FIELD_BYTES = 4095
POLICY_VERSION = "1"

SECURE_TRANSPORT = "acs:securetransport"
CURRENT_TIME = "acs:currenttime"
_FALSE_SPELLINGS = ("false",)


class ChangeKind(str, enum.Enum):
    """What a merge or removal decided."""

    UNCHANGED = "unchanged"  # already in the desired state: write nothing
    WRITE = "write"  # write `document`
    DELETE = "delete"  # ours was the last statement: delete the policy
    REFUSED = "refused"  # leave the bucket as it is; `refusal` says why


class Refusal(str, enum.Enum):
    """Why a policy cannot take (or give up) our statement; nothing is written."""

    UNPARSEABLE = "unparseable"  # not JSON, duplicate keys
    INVALID = "invalid"  # JSON, but not an OSS policy (no Statement list, Version not "1")
    TOO_LARGE = "too-large"  # the merged document would exceed 16 KB
    FIELD_TOO_LONG = "field-too-long"  # a field of the merged document exceeds 4,095 bytes


@dataclass(frozen=True)
class PolicyChange:
    """The decision for one bucket: the document to write, or why not.

    `document` is set for `WRITE`; `refusal` (and `detail`, for people) for `REFUSED`.
    `size` is the byte length of the document that would be written.
    """

    kind: ChangeKind
    document: str | None = None
    refusal: Refusal | None = None
    detail: str = ""
    size: int = 0

    @property
    def writes(self) -> bool:
        """True when the bucket's policy must be written or deleted."""
        return self.kind in (ChangeKind.WRITE, ChangeKind.DELETE)


class _Unparseable(ValueError):
    pass


def https_only_statement(
    bucket: str, *, allow_http_until: datetime | None = None
) -> dict[str, Any]:
    """The statement that denies every request to `bucket` made over plain HTTP.

    With `allow_http_until`, the denial applies only after that instant (the emergency
    fallback): `DateGreaterThan` on `acs:CurrentTime`.
    """
    condition: dict[str, Any] = {"Bool": {"acs:SecureTransport": ["false"]}}
    if allow_http_until is not None:
        condition["DateGreaterThan"] = {"acs:CurrentTime": [_iso(allow_http_until)]}
    return {
        "Effect": "Deny",
        "Action": ["oss:*"],
        "Principal": ["*"],
        "Resource": [f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"],
        "Condition": condition,
    }


def parse_document(text: str) -> dict[str, Any]:
    """Parse a policy document strictly (duplicate keys are an error).

    Raises:
        ValueError: not JSON, duplicate keys, or not an object.
    """
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except (json.JSONDecodeError, _Unparseable, RecursionError) as err:
        raise ValueError(str(err)) from None
    if not isinstance(value, dict):
        raise ValueError("the policy is not a JSON object")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # json.loads would keep the last one silently: rewriting that document would
            # drop the first, so it counts as unparseable (never overwritten).
            raise _Unparseable(f"duplicate key {key!r}")
        result[key] = value
    return result


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _iso(instant: datetime) -> str:
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ci(mapping: Mapping[str, Any]) -> dict[str, Any]:
    # Operator names and condition keys compare case-insensitively (RAM policy syntax).
    return {str(key).lower(): value for key, value in mapping.items()}


def _is_false(values: Any) -> bool:
    items = _as_list(values)
    return bool(items) and all(
        item is False or (isinstance(item, str) and item.strip().lower() in _FALSE_SPELLINGS)
        for item in items
    )


def _parse_time(value: Any) -> datetime | None:
    items = _as_list(value)
    if len(items) != 1 or not isinstance(items[0], str):
        return None
    text = items[0].strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class OurStatement:
    """A statement equivalent to ours: its index and the fallback end it carries."""

    index: int
    allow_http_until: datetime | None


def _match(statement: Any, bucket: str, index: int = -1) -> OurStatement | None:
    """None when `statement` is not ours; else ours, with its fallback end if any."""
    if not isinstance(statement, dict):
        return None
    fields = _ci(statement)
    if set(fields) - {"effect", "action", "principal", "resource", "condition"}:
        return None  # NotAction, NotResource, ...: a different statement
    if str(fields.get("effect", "")).lower() != "deny":
        return None
    if "oss:*" not in _as_list(fields.get("action")) and "*" not in _as_list(fields.get("action")):
        return None
    if "*" not in _as_list(fields.get("principal")):
        return None
    resources = set(_as_list(fields.get("resource")))
    if not {f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"} <= resources:
        return None
    condition = fields.get("condition")
    if not isinstance(condition, dict):
        return None
    operators = _ci(condition)
    extra = set(operators) - {"bool", "dategreaterthan"}
    if extra:
        return None  # narrower than ours (e.g. only some IPs): not equivalent
    bool_keys = operators.get("bool")
    if not isinstance(bool_keys, dict):
        return None
    bools = _ci(bool_keys)
    if set(bools) != {SECURE_TRANSPORT} or not _is_false(bools[SECURE_TRANSPORT]):
        return None
    if "dategreaterthan" not in operators:
        return OurStatement(index, None)
    after = operators["dategreaterthan"]
    if not isinstance(after, dict):
        return None
    times = _ci(after)
    if set(times) != {CURRENT_TIME}:
        return None
    until = _parse_time(times[CURRENT_TIME])
    return None if until is None else OurStatement(index, until)


def find_ours(document: Mapping[str, Any], bucket: str) -> list[OurStatement]:
    """Every statement of `document` equivalent to our HTTPS-only statement for `bucket`."""
    found = []
    for index, statement in enumerate(_as_list(document.get("Statement", []))):
        matched = _match(statement, bucket, index)
        if matched is not None:
            found.append(matched)
    return found


def _validate_shape(document: Mapping[str, Any]) -> str | None:
    if document.get("Version") != POLICY_VERSION:
        return 'Version must be the string "1"'
    statements = document.get("Statement")
    if not isinstance(statements, list):
        return "Statement must be a list"
    if not all(isinstance(item, dict) for item in statements):
        return "every statement must be an object"
    return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def render(document: Mapping[str, Any]) -> str:
    """The document as certpilot writes it: compact JSON, keys in their order, UTF-8."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _checked(document: Mapping[str, Any]) -> PolicyChange:
    text = render(document)
    size = len(text.encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        return PolicyChange(
            ChangeKind.REFUSED,
            refusal=Refusal.TOO_LARGE,
            detail=f"the merged policy would be {size} bytes (limit {MAX_DOCUMENT_BYTES})",
            size=size,
        )
    longest = max((len(s.encode("utf-8")) for s in _strings(document)), default=0)
    if longest > MAX_FIELD_BYTES:
        return PolicyChange(
            ChangeKind.REFUSED,
            refusal=Refusal.FIELD_TOO_LONG,
            detail=f"a field would be {longest} bytes (limit {MAX_FIELD_BYTES})",
            size=size,
        )
    return PolicyChange(ChangeKind.WRITE, document=text, size=size)


def _load(current: str | None) -> dict[str, Any] | PolicyChange:
    if current is None or not current.strip():
        return {"Version": POLICY_VERSION, "Statement": []}
    try:
        document = parse_document(current)
    except ValueError as err:
        return PolicyChange(ChangeKind.REFUSED, refusal=Refusal.UNPARSEABLE, detail=str(err))
    problem = _validate_shape(document)
    if problem:
        return PolicyChange(ChangeKind.REFUSED, refusal=Refusal.INVALID, detail=problem)
    return document


def merge_https_only(
    current: str | None, bucket: str, *, allow_http_until: datetime | None = None
) -> PolicyChange:
    """Merge our HTTPS-only statement for `bucket` into the `current` document.

    `allow_http_until` asks for the fallback form (HTTP allowed until then); None asks
    for the plain statement (which also ends an active fallback). Every other statement
    is kept as it is; ours, when present in another form, is replaced in place.
    """
    loaded = _load(current)
    if isinstance(loaded, PolicyChange):
        return loaded
    wanted_until = normalise_instant(allow_http_until)
    ours = find_ours(loaded, bucket)
    if ours and all(item.allow_http_until == wanted_until for item in ours):
        return PolicyChange(ChangeKind.UNCHANGED, size=len(render(loaded).encode("utf-8")))
    wanted = https_only_statement(bucket, allow_http_until=wanted_until)
    if ours:
        # Ours in another form (fallback on/off, a duplicate): the first becomes the
        # wanted form where it stands, the other copies go.
        first, drop = ours[0].index, {item.index for item in ours[1:]}
        statements = [
            wanted if i == first else s for i, s in enumerate(loaded["Statement"]) if i not in drop
        ]
    else:
        statements = [*loaded["Statement"], wanted]
    return _checked({**loaded, "Statement": statements})


def remove_https_only(current: str | None, bucket: str) -> PolicyChange:
    """Remove our statement(s) for `bucket`, never anyone else's.

    `DELETE` when ours was the only statement (delete the policy), `UNCHANGED` when
    there is no policy or none of ours.
    """
    if current is None or not current.strip():
        return PolicyChange(ChangeKind.UNCHANGED)
    loaded = _load(current)
    if isinstance(loaded, PolicyChange):
        return loaded
    ours = {item.index for item in find_ours(loaded, bucket)}
    if not ours:
        return PolicyChange(ChangeKind.UNCHANGED)
    statements = [s for i, s in enumerate(loaded["Statement"]) if i not in ours]
    if not statements:
        return PolicyChange(ChangeKind.DELETE)
    return _checked({**loaded, "Statement": statements})


def fallback_until(current: str | None, bucket: str) -> datetime | None:
    """The end of an emergency fallback in `current` for `bucket`, if one is there."""
    loaded = _load(current)
    if isinstance(loaded, PolicyChange):
        return None
    ends = [item.allow_http_until for item in find_ours(loaded, bucket) if item.allow_http_until]
    return max(ends) if ends else None


def statements_kept(before: str | None, after: str | None, bucket: str) -> bool:
    """True when every statement of `before` that is not ours is still in `after`.

    The read-back check after a write, and the loop condition when two runs write
    the same bucket at once.
    """
    old = _statements(before)
    new = _statements(after)
    if old is None or new is None:
        return False
    foreign = [s for s in old if _match(s, bucket) is None]
    remaining = list(new)
    for statement in foreign:
        if statement not in remaining:
            return False
        remaining.remove(statement)
    return True


def _statements(text: str | None) -> Sequence[Any] | None:
    if text is None or not text.strip():
        return []
    try:
        document = parse_document(text)
    except ValueError:
        return None
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else None


def normalise_instant(instant: datetime | None) -> datetime | None:
    """`instant` in UTC to the second (naive means UTC), as the policy spells it."""
    if instant is None:
        return None
    aware = instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).replace(microsecond=0)
