"""Parse the events that start enforce-https, at the edge, into one typed request.

Accepted shapes (samples in `events/enforce-https.*.json`):

- an OSS ActionTrail API-call CloudEvent (`oss:ActionTrail:ApiCall`) for `PutCname`:
  a custom domain was bound to a bucket;
- a CDN ActionTrail API-call CloudEvent (`cdn:ActionTrail:ApiCall`) for `AddCdnDomain`
  (or `BatchAddCdnDomain`): a domain was added to CDN;
- the legacy CDN trigger's payload (`{"events": [{"eventName": "CdnDomainAdded" |
  "CdnDomainStarted", "eventSource": "cdn", ...}]}`);
- a direct payload `{"domain": "..."}` or `{"bucket": "..."}` (people, check-expiry),
  optionally `"dryRun": true` and `"reason"`.

Filtered on `type` and `data.eventName`, never on `source` (UNCONFIRMED for
ActionTrail-derived events). UNCONFIRMED (chosen): where OSS's ActionTrail record of
PutCname names the domain and bucket: `requestParameters` keys `Domain` / `domain` /
`cname` and `BucketName` / `bucketName` / `bucket`, else `referencedResources`
(`ACS::OSS::Bucket`). A record that names the bucket but not the domain enforces the
whole bucket, which is what the sweep would do anyway. Anything else raises an
`EventError` subclass and nothing runs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from certpilot.core.errors import ForeignAccount, MalformedEvent, UnsupportedEvent
from certpilot.core.names import InvalidHostname, normalize_domain, normalize_hostname
from certpilot.events import check_account, json_object, load_event, record_section

OSS_ACTIONTRAIL = "oss:actiontrail:apicall"
CDN_ACTIONTRAIL = "cdn:actiontrail:apicall"
OSS_EVENT_NAMES = frozenset({"PutCname"})
CDN_EVENT_NAMES = frozenset({"AddCdnDomain", "BatchAddCdnDomain"})
LEGACY_CDN_EVENT_NAMES = frozenset({"CdnDomainAdded", "CdnDomainStarted"})
DIRECT_KEYS = frozenset({"domain", "bucket", "dryRun", "reason"})
MAX_DOMAINS = 50  # BatchAddCdnDomain takes at most 50 names a call

_DOMAIN_KEYS = ("Domain", "domain", "Cname", "cname", "DomainName", "domainName")
_BUCKET_KEYS = ("BucketName", "bucketName", "Bucket", "bucket")


class Trigger(str, enum.Enum):
    """Which shape started the run (kept in the summary)."""

    OSS_PUT_CNAME = "oss-put-cname"
    CDN_ADD_DOMAIN = "cdn-add-domain"
    CDN_LEGACY = "cdn-legacy"
    DIRECT = "direct"


@dataclass(frozen=True)
class EnforceRequest:
    """What enforce-https was asked to secure: domains (A-labels) and/or buckets."""

    trigger: Trigger
    domains: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    dry_run: bool = False
    reason: str | None = None
    event_id: str | None = None
    account_id: str | None = None


def parse_enforce_event(
    raw: bytes | str | Mapping[str, Any], *, account_id: str | None
) -> EnforceRequest:
    """Validate an enforce-https event and return the typed request.

    Raises:
        MalformedEvent: not JSON, too large, fields of the wrong type, a bad domain.
        UnsupportedEvent: another event type or call, a failed call.
        ForeignAccount: the event comes from another account (or none is configured).
    """
    event = load_event(raw)
    if "type" in event or "specversion" in event:
        return _parse_cloudevent(event, account_id)
    if "events" in event:
        return _parse_legacy(event, account_id)
    if "domain" in event or "bucket" in event:
        return _parse_direct(event)
    raise UnsupportedEvent(
        "not an enforce-https event: expected oss:ActionTrail:ApiCall (PutCname), "
        "cdn:ActionTrail:ApiCall (AddCdnDomain), the CDN trigger's events, or "
        "{'domain': ...} / {'bucket': ...}"
    )


def _domain(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvent(f"{field} must be a domain name")
    raw = value.strip().rstrip(".")
    if raw.startswith(("*.", ".")):
        # A wildcard domain (CDN and OSS take `*.example.com`; CDN lists `.example.com`).
        wildcard = normalize_domain(raw)
        if wildcard is None:
            raise MalformedEvent(f"{field} is not a valid wildcard domain name")
        return wildcard
    try:
        return normalize_hostname(raw)
    except InvalidHostname as err:
        raise MalformedEvent(f"{field} is not a valid domain name: {err}") from None


def _bucket(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _valid_bucket(value):
        raise MalformedEvent(f"{field} must be an OSS bucket name (3-63 of a-z, 0-9, -)")
    return value


def _valid_bucket(name: str) -> bool:
    return (
        3 <= len(name) <= 63
        and all(c.islower() or c.isdigit() or c == "-" for c in name)
        and name.isascii()
        and name[0] != "-"
        and name[-1] != "-"
    )


def _domains(values: Iterable[Any], field: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(_domain(v, field) for v in values))
    if len(names) > MAX_DOMAINS:
        raise MalformedEvent(f"{field} names {len(names)} domains, more than {MAX_DOMAINS}")
    return names


def _parse_direct(event: Mapping[str, Any]) -> EnforceRequest:
    unknown = sorted(set(event) - DIRECT_KEYS)
    if unknown:
        raise MalformedEvent(
            f"unknown field(s) {', '.join(unknown)} in direct payload; allowed: "
            + ", ".join(sorted(DIRECT_KEYS))
        )
    dry_run = event.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise MalformedEvent("dryRun must be true or false")
    reason = event.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise MalformedEvent("reason must be a string")
    domains = (_domain(event["domain"], "domain"),) if "domain" in event else ()
    buckets = (_bucket(event["bucket"], "bucket"),) if "bucket" in event else ()
    return EnforceRequest(
        Trigger.DIRECT,
        domains=domains,
        buckets=buckets,
        dry_run=dry_run,
        reason=reason[:200] if reason else None,
    )


def _first(section: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if section.get(key) not in (None, ""):
            return section[key]
    return None


def _parse_cloudevent(event: Mapping[str, Any], expected: str | None) -> EnforceRequest:
    specversion = event.get("specversion")
    if specversion is not None and specversion != "1.0":
        raise UnsupportedEvent(f"unsupported CloudEvents specversion {specversion!r}")
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise MalformedEvent("CloudEvent 'type' must be a non-empty string")
    kind = event_type.strip().lower()
    if kind not in (OSS_ACTIONTRAIL, CDN_ACTIONTRAIL):
        raise UnsupportedEvent(
            f"event type {event_type!r} is not handled by enforce-https "
            "(expected oss:ActionTrail:ApiCall or cdn:ActionTrail:ApiCall)"
        )
    event_id = event.get("id") if isinstance(event.get("id"), str) else None
    data = json_object(event.get("data"), "CloudEvent 'data'")
    claimed = event.get("aliyunaccountid")
    identity = data.get("userIdentity")
    record = identity.get("accountId") if isinstance(identity, dict) else None
    if claimed is not None and record is not None and str(claimed) != str(record):
        raise ForeignAccount("event envelope and ActionTrail record name different accounts")
    chosen = claimed if claimed is not None else record
    account = check_account(str(chosen) if chosen is not None else None, expected)
    name = data.get("eventName")
    if not isinstance(name, str):
        raise MalformedEvent("ActionTrail event has no data.eventName")
    if data.get("errorCode"):
        raise UnsupportedEvent(f"{name} failed ({data['errorCode']}): nothing was bound")
    params = record_section(data, "requestParameters")
    if kind == OSS_ACTIONTRAIL:
        if name not in OSS_EVENT_NAMES:
            raise UnsupportedEvent(f"OSS call {name!r} does not bind a domain")
        domain = _first(params, _DOMAIN_KEYS)
        bucket = _first(params, _BUCKET_KEYS)
        if bucket is None:
            resources = record_section(data, "referencedResources").get("ACS::OSS::Bucket")
            if isinstance(resources, list) and len(resources) == 1:
                bucket = resources[0]
        if domain is None and bucket is None:
            raise MalformedEvent("PutCname record names neither a domain nor a bucket")
        return EnforceRequest(
            Trigger.OSS_PUT_CNAME,
            domains=(_domain(domain, "data.requestParameters.Domain"),) if domain else (),
            buckets=(_bucket(bucket, "data.requestParameters.BucketName"),) if bucket else (),
            event_id=event_id,
            account_id=account,
        )
    if name not in CDN_EVENT_NAMES:
        raise UnsupportedEvent(f"CDN call {name!r} does not add a domain")
    names = _first(params, ("DomainName", "DomainNames", "domainName"))
    if not isinstance(names, str) or not names.strip():
        raise MalformedEvent(f"{name} record has no requestParameters.DomainName")
    return EnforceRequest(
        Trigger.CDN_ADD_DOMAIN,
        domains=_domains(names.split(","), "data.requestParameters.DomainName"),
        event_id=event_id,
        account_id=account,
    )


def _parse_legacy(event: Mapping[str, Any], expected: str | None) -> EnforceRequest:
    items = event.get("events")
    if not isinstance(items, list) or not items:
        raise MalformedEvent("'events' must be a non-empty list")
    domains: list[str] = []
    account: str | None = None
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedEvent(f"events[{index}] must be an object")
        name = item.get("eventName")
        if name not in LEGACY_CDN_EVENT_NAMES:
            raise UnsupportedEvent(f"CDN trigger event {name!r} is not handled by enforce-https")
        identity = item.get("userIdentity")
        uid = identity.get("aliUid") if isinstance(identity, dict) else None
        claimed = check_account(str(uid) if uid is not None else None, expected)
        if account is not None and claimed != account:
            raise ForeignAccount("the events name different accounts")
        account = claimed
        resource = item.get("resource") if isinstance(item.get("resource"), dict) else {}
        parameter = (
            item.get("eventParameter") if isinstance(item.get("eventParameter"), dict) else {}
        )
        domain = (resource or {}).get("domain") or (parameter or {}).get("domain")
        domains.append(_domain(domain, f"events[{index}].resource.domain"))
    return EnforceRequest(
        Trigger.CDN_LEGACY,
        domains=_domains(domains, "events[].resource.domain"),
        account_id=account,
    )
