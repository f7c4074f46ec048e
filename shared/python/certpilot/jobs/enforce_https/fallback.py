"""Emergency HTTP fallback (the guide's "Risk mitigation"): plain HTTP allowed for a
while, ending by itself.

OSS: our Deny statement gains `DateGreaterThan` on `acs:CurrentTime` (the fallback
form, `policy.https_only_statement`), so OSS itself starts denying plain HTTP again at
the end time: no function has to run. Only a bucket that holds our statement is
changed; a bucket that denies nothing needs no fallback, and a fallback never adds a
statement the guard did not decide on.

CDN: the redirect (`https_force`) is switched off in place (its ConfigId and
`https_rewrite` kept) and the end time is recorded as a tag on the CDN domain
(`FALLBACK_TAG`, TagResources): the one place in the account that the next
enforce-https or check-expiry run can read without a store of certpilot's own.
`restore_expired` (called by those runs) switches the redirect back on once the time
has passed, then removes the tag. The tag is written before the redirect is switched
off, so a run that dies in between leaves a record the restore step finds.

HSTS stays on during a fallback: browsers that have seen the header refuse plain HTTP
for its max-age whatever CDN does now, so removing it lets no-one in who is shut out;
it only stops protecting visitors whose HTTPS works, and it is sent over HTTPS only.

When a CDN domain fetches its origin over the visitor's scheme (`forward_scheme`
absent, `http` or `follow`), an HTTP visitor makes an HTTP origin fetch, which the
bucket's HTTPS-only statement denies: its bucket then gets the OSS fallback too, with
the same end time. A domain that fetches over HTTPS leaves the bucket as it is.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from certpilot.core.cloudtypes import CdnConfig, CdnFunction
from certpilot.core.findings import Code, Finding, make_finding
from certpilot.core.model import DomainRecord, Route
from certpilot.jobs.enforce_https.cdn_steps import Pacing, retry_busy, wait_until

__all__ = [
    "FALLBACK_TAG",
    "Pacing",
    "Part",
    "Step",
    "StepOutcome",
    "active_fallbacks",
    "cdn_fallbacks",
    "end",
    "fallback_end",
    "iso",
    "origin_over_http",
    "parse_duration",
    "parse_iso",
    "restore_expired",
    "start",
]
from certpilot.jobs.enforce_https.policy import (
    Refusal,
    fallback_until,
    find_ours,
    normalise_instant,
    parse_document,
)
from certpilot.jobs.enforce_https.policy_apply import PolicyOutcome, set_fallback

if TYPE_CHECKING:
    from certpilot.cloud.cdn import CdnAdapter
    from certpilot.cloud.clients import CloudClients

# Tag keys may not start with `aliyun` or `acs:` (Alibaba Cloud tag rules).
FALLBACK_TAG = "certpilot-fallback-until"
MAX_DURATION = timedelta(days=7)  # an emergency measure, not a setting
HTTPS_FORCE = "https_force"
FORWARD_SCHEME = "forward_scheme"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$", re.IGNORECASE)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Part(str, enum.Enum):
    """What a fallback step changes."""

    BUCKET_POLICY = "bucket-policy"  # our Deny statement's end condition
    CDN_REDIRECT = "cdn-redirect"  # the CDN domain's https_force, and its end-time tag

    def __str__(self) -> str:
        return self.value


class StepOutcome(str, enum.Enum):
    """How one fallback step ended."""

    SUSPENDED = "suspended"  # plain HTTP allowed until `until`
    ALREADY = "already"  # already in the desired state: nothing written
    NOT_ENFORCED = "not-enforced"  # nothing forces HTTPS there: nothing to suspend
    RESTORED = "restored"  # HTTPS forced again
    UNCONFIRMED = "unconfirmed"  # written, but the read-back did not show it in time
    REFUSED = "refused"  # the bucket policy cannot be changed (`refusal`): left as it was
    CONTENDED = "contended"  # other writers kept replacing the policy: gave up

    def __str__(self) -> str:
        return self.value

    @property
    def ok(self) -> bool:
        """Whether the step did what it was asked (or had nothing to do)."""
        return self in (
            StepOutcome.SUSPENDED,
            StepOutcome.ALREADY,
            StepOutcome.NOT_ENFORCED,
            StepOutcome.RESTORED,
        )


@dataclass(frozen=True)
class Step:
    """One change of a fallback: the part, its target (bucket or CDN domain), the end."""

    part: Part
    target: str
    outcome: StepOutcome
    until: datetime | None = None
    refusal: Refusal | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times ISO 8601 UTC)."""
        data: dict[str, Any] = {
            "part": self.part.value,
            "target": self.target,
            "outcome": self.outcome.value,
            "until": iso(self.until),
        }
        if self.refusal is not None:
            data["refusal"] = self.refusal.value
        return data


def iso(instant: datetime | None) -> str | None:
    """`instant` as `YYYY-MM-DDTHH:MM:SSZ` (UTC), None stays None."""
    normal = normalise_instant(instant)
    return None if normal is None else normal.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    """The instant a tag value spells (ISO 8601), None when it spells none."""
    if not text:
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return normalise_instant(parsed)


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1d` as a duration, at most `MAX_DURATION`.

    Raises:
        ValueError: not of that form, zero, or longer than `MAX_DURATION`.
    """
    match = _DURATION.match(text or "")
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 2h or 1d")
    duration = timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2).lower()])
    if duration <= timedelta(0):
        raise ValueError("a fallback must last longer than zero")
    if duration > MAX_DURATION:
        raise ValueError(f"a fallback lasts at most {MAX_DURATION.days} days")
    return duration


def _policy_step(outcome: PolicyOutcome, bucket: str, until: datetime | None, **kw: Any) -> Step:
    mapping = {
        PolicyOutcome.WRITTEN: StepOutcome.SUSPENDED if until else StepOutcome.RESTORED,
        PolicyOutcome.ALREADY: StepOutcome.ALREADY,
        PolicyOutcome.DELETED: StepOutcome.RESTORED,
        PolicyOutcome.REFUSED: StepOutcome.REFUSED,
        PolicyOutcome.CONTENDED: StepOutcome.CONTENDED,
    }
    return Step(Part.BUCKET_POLICY, bucket, mapping[outcome], until, **kw)


def _bucket_fallback(
    clients: CloudClients, bucket: str, region: str, until: datetime | None
) -> Step:
    """Start (`until`) or end (None) the fallback of one bucket's policy."""
    current = clients.oss.get_bucket_policy(bucket, region)
    enforced = False
    if current:
        try:
            enforced = bool(find_ours(parse_document(current), bucket))
        except ValueError:
            enforced = True  # let set_fallback report the refusal
    if not enforced:
        return Step(Part.BUCKET_POLICY, bucket, StepOutcome.NOT_ENFORCED)
    result = set_fallback(clients.oss, bucket, region, allow_http_until=until)
    return _policy_step(result.outcome, bucket, until, refusal=result.refusal)


def _redirect(cdn: CdnAdapter, domain: str) -> CdnConfig | None:
    configs = [
        c for c in cdn.domain_configs(domain, [HTTPS_FORCE]) if c.function_name == HTTPS_FORCE
    ]
    return configs[0] if configs else None


def _enabled(config: CdnConfig | None) -> bool:
    return config is not None and config.arg("enable").strip().lower() == "on"


def origin_over_http(configs: Iterable[CdnConfig]) -> bool:
    """Whether a plain-HTTP visitor makes the CDN fetch its origin over HTTP: no
    `forward_scheme`, or one switched off, `http` or `follow` (pure)."""
    for config in configs:
        if config.function_name != FORWARD_SCHEME:
            continue
        if config.arg("enable").strip().lower() != "on":
            return True
        return config.arg("scheme_origin").strip().lower() != "https"
    return True


def _switch_redirect(
    cdn: CdnAdapter, domain: str, current: CdnConfig | None, enable: bool, pacing: Pacing
) -> bool:
    """Set `https_force` enable on/off in place (its ConfigId and rewrite code kept);
    True once the read-back shows it applied (`success`)."""
    wanted = "on" if enable else "off"
    args = {
        "enable": wanted,
        "https_rewrite": (current.arg("https_rewrite") if current else "") or "301",
    }
    function = CdnFunction(HTTPS_FORCE, args, config_id=current.config_id if current else None)

    def written() -> bool:
        config = _redirect(cdn, domain)
        return config is not None and config.arg("enable").strip().lower() == wanted

    def applied() -> bool:
        config = _redirect(cdn, domain)
        return (
            config is not None
            and config.arg("enable").strip().lower() == wanted
            and config.status.strip().lower() == "success"
        )

    retry_busy(lambda: cdn.set_configs([domain], [function]), pacing, domain=domain, done=written)

    return wait_until(applied, pacing)


def _cdn_name(record: DomainRecord) -> str:
    return record.api_name or record.name


def start(
    clients: CloudClients, record: DomainRecord, until: datetime, pacing: Pacing | None = None
) -> list[Step]:
    """Allow plain HTTP to `record`'s domain until `until` (see the module docstring).

    Raises:
        CloudError: a read or write failed (steps already done stay done; running the
            command again completes it).
    """
    pacing = pacing or Pacing()
    until = normalise_instant(until) or until
    steps: list[Step] = []
    if record.route is Route.CDN:
        name = _cdn_name(record)
        configs = clients.cdn.domain_configs(name, [HTTPS_FORCE, FORWARD_SCHEME])
        redirect = next((c for c in configs if c.function_name == HTTPS_FORCE), None)
        recorded = parse_iso(clients.cdn.tagged_domains(FALLBACK_TAG).get(name.lower()))
        if not _enabled(redirect) and recorded is None:
            steps.append(Step(Part.CDN_REDIRECT, name, StepOutcome.NOT_ENFORCED))
        else:
            if recorded != until:
                # The end time first: a run that stops after this still gets restored.
                clients.cdn.tag_domains([name], {FALLBACK_TAG: iso(until) or ""})
            if _enabled(redirect):
                confirmed = _switch_redirect(clients.cdn, name, redirect, False, pacing)
                outcome = StepOutcome.SUSPENDED if confirmed else StepOutcome.UNCONFIRMED
            else:
                outcome = StepOutcome.SUSPENDED if recorded != until else StepOutcome.ALREADY
            steps.append(Step(Part.CDN_REDIRECT, name, outcome, until))
        if record.bucket and record.region and origin_over_http(configs):
            steps.append(_bucket_fallback(clients, record.bucket, record.region, until))
    elif record.route is Route.OSS and record.bucket and record.region:
        steps.append(_bucket_fallback(clients, record.bucket, record.region, until))
    return steps


def end(clients: CloudClients, record: DomainRecord, pacing: Pacing | None = None) -> list[Step]:
    """End `record`'s fallback now: HTTPS forced again at once.

    Raises:
        CloudError: a read or write failed.
    """
    pacing = pacing or Pacing()
    steps: list[Step] = []
    bucket_too = record.route is Route.OSS
    if record.route is Route.CDN:
        name = _cdn_name(record)
        recorded = clients.cdn.tagged_domains(FALLBACK_TAG).get(name.lower())
        if recorded is None:
            steps.append(Step(Part.CDN_REDIRECT, name, StepOutcome.ALREADY))
        else:
            steps.append(_restore_redirect(clients.cdn, name, pacing))
        # The bucket's fallback is this domain's only when its origin fetch is HTTP.
        bucket_too = origin_over_http(clients.cdn.domain_configs(name, [FORWARD_SCHEME]))
    if bucket_too and record.bucket and record.region:
        current = clients.oss.get_bucket_policy(record.bucket, record.region)
        if fallback_until(current, record.bucket) is None:
            steps.append(Step(Part.BUCKET_POLICY, record.bucket, StepOutcome.ALREADY))
        else:
            steps.append(_bucket_fallback(clients, record.bucket, record.region, None))
    return steps


def _restore_redirect(cdn: CdnAdapter, name: str, pacing: Pacing) -> Step:
    redirect = _redirect(cdn, name)
    if _enabled(redirect) and redirect is not None and redirect.status.lower() == "success":
        confirmed = True
    else:
        confirmed = _switch_redirect(cdn, name, redirect, True, pacing)
    if not confirmed:
        return Step(Part.CDN_REDIRECT, name, StepOutcome.UNCONFIRMED)
    # The record goes last: a run that stops before this restores again (a no-op).
    cdn.untag_domains([name], [FALLBACK_TAG])
    return Step(Part.CDN_REDIRECT, name, StepOutcome.RESTORED)


def cdn_fallbacks(cdn: CdnAdapter) -> dict[str, datetime | None]:
    """Every CDN domain with a recorded fallback and its end (None: unreadable value)."""
    return {name: parse_iso(value) for name, value in cdn.tagged_domains(FALLBACK_TAG).items()}


def restore_expired(
    clients: CloudClients, now: datetime, pacing: Pacing | None = None
) -> list[Step]:
    """Switch the redirect back on for every CDN domain whose fallback has ended
    (or whose recorded end cannot be read), then drop the record. For the next
    enforce-https and check-expiry runs; OSS fallbacks end by themselves.

    Raises:
        CloudError: a listing failed (a failing domain raises too: the next run retries).
    """
    pacing = pacing or Pacing()
    now = normalise_instant(now) or now
    steps = []
    for name, until in sorted(cdn_fallbacks(clients.cdn).items()):
        if until is None or until <= now:
            steps.append(_restore_redirect(clients.cdn, name, pacing))
    return steps


def active_fallbacks(
    clients: CloudClients, records: Iterable[DomainRecord], now: datetime
) -> list[Finding]:
    """`FALLBACK_ACTIVE` for every domain of `records` under a fallback at `now`:
    an OSS domain whose bucket's statement allows HTTP until later, a CDN domain whose
    recorded end is later. One policy read per bucket, one tag listing in all.

    Raises:
        CloudError: a read failed.
    """
    now = normalise_instant(now) or now
    records = list(records)
    findings: list[Finding] = []
    cdn_ends: Mapping[str, datetime | None] = {}
    if any(r.route is Route.CDN for r in records):
        cdn_ends = cdn_fallbacks(clients.cdn)
    bucket_ends: dict[str, datetime | None] = {}
    for record in records:
        if record.route is Route.CDN:
            until = cdn_ends.get(_cdn_name(record).lower())
            if until is not None and until > now:
                findings.append(_finding(record.name, until, "the CDN redirect to HTTPS"))
        elif record.route is Route.OSS and record.bucket and record.region:
            if record.bucket not in bucket_ends:
                policy = clients.oss.get_bucket_policy(record.bucket, record.region)
                bucket_ends[record.bucket] = fallback_until(policy, record.bucket)
            until = bucket_ends[record.bucket]
            if until is not None and until > now:
                findings.append(
                    _finding(record.name, until, f"bucket {record.bucket}'s HTTPS-only policy")
                )
    return findings


def _finding(domain: str, until: datetime, what: str) -> Finding:
    return make_finding(
        Code.FALLBACK_ACTIVE,
        domain,
        f"emergency HTTP fallback: {what} is suspended until {iso(until)}",
        until=until,
    )


def fallback_end(now: datetime, duration: timedelta) -> datetime:
    """The end of a fallback of `duration` started at `now`, to the second, UTC."""
    aware = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    return normalise_instant(aware + duration) or aware + duration
