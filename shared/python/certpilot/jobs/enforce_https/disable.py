"""Safe disable of HTTPS on one domain, in the guide's order ("Disable HTTPS access").

CDN domain: "first restore the protocol redirection type to its default setting and
disable the HSTS feature before disabling HTTPS": the `https_force` configs are
deleted, then the `HSTS` configs, then SSL is turned off (SetCdnDomainSSLCertificate
SSLProtocol=off); each step is confirmed by its read-back before the next starts, and
a step that cannot be confirmed stops the rest (HTTPS is never turned off while the
redirect may still send visitors to it). Before any of that, a domain whose origin
fetch follows the visitor's scheme while its bucket denies plain HTTP is switched to
fetch over HTTPS (`forward_scheme`), or its HTTP visitors would meet the bucket's
403; a recorded fallback (tag) is dropped at the end.

OSS custom domain: our HTTPS-only statement is taken out of the bucket policy (never
anyone else's; the policy is deleted only when ours was its last statement), then the
certificate is unbound (PutCname with DeleteCertificate). The statement covers the
whole bucket, not one domain: leaving it would make this domain unreachable (no
HTTPS, HTTP denied), so it goes even when other domains of the bucket still serve
HTTPS; the report names them (`affected`): their bucket no longer denies plain HTTP
until enforce-https runs for them (which it will refuse while this domain serves only
HTTP, the guard's rule). The statement goes first: unbinding first would leave the
domain with neither HTTPS nor HTTP for a while.

A dry run reads the same things and answers the steps it would take, writing nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from certpilot.core.cloudtypes import CdnFunction
from certpilot.core.model import DomainRecord, Inventory, Route
from certpilot.jobs.enforce_https.cdn_steps import Pacing, retry_busy, wait_until
from certpilot.jobs.enforce_https.fallback import (
    FALLBACK_TAG,
    FORWARD_SCHEME,
    HTTPS_FORCE,
    origin_over_http,
)
from certpilot.jobs.enforce_https.policy import Refusal, find_ours, parse_document
from certpilot.jobs.enforce_https.policy_apply import PolicyOutcome, remove_https_only_statement

if TYPE_CHECKING:
    from certpilot.cloud.clients import CloudClients

HSTS = "HSTS"


class Action(str, enum.Enum):
    """One step of a disable, in the order they run."""

    ORIGIN_HTTPS = "origin-https"  # CDN: fetch the origin over HTTPS (bucket denies HTTP)
    REMOVE_REDIRECT = "remove-redirect"  # CDN: delete https_force
    REMOVE_HSTS = "remove-hsts"  # CDN: delete HSTS
    SSL_OFF = "ssl-off"  # CDN: SetCdnDomainSSLCertificate SSLProtocol=off
    END_FALLBACK = "end-fallback"  # CDN: drop the fallback's end-time tag
    REMOVE_POLICY_STATEMENT = "remove-policy-statement"  # OSS: our statement only
    UNBIND_CERTIFICATE = "unbind-certificate"  # OSS: PutCname DeleteCertificate

    def __str__(self) -> str:
        return self.value


class StepOutcome(str, enum.Enum):
    """How one step ended."""

    PLANNED = "planned"  # dry run: would be done
    DONE = "done"  # written and confirmed by its read-back
    ALREADY = "already"  # already in the desired state: nothing written
    UNCONFIRMED = "unconfirmed"  # written, the read-back did not show it in time: stopped
    REFUSED = "refused"  # the bucket policy cannot be changed (`refusal`): stopped
    CONTENDED = "contended"  # other writers kept replacing the policy: stopped
    NOT_RUN = "not-run"  # an earlier step stopped the disable

    def __str__(self) -> str:
        return self.value

    @property
    def ok(self) -> bool:
        """Whether the step did (or, in a dry run, would do) what it was asked."""
        return self in (StepOutcome.PLANNED, StepOutcome.DONE, StepOutcome.ALREADY)


@dataclass(frozen=True)
class Step:
    """One step: what, on which target (CDN domain or bucket), how it ended."""

    action: Action
    target: str
    outcome: StepOutcome
    config_ids: tuple[str, ...] = ()
    refusal: Refusal | None = None
    policy: PolicyOutcome | None = None  # the policy change (deleted: ours was the last)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data: dict[str, Any] = {
            "action": self.action.value,
            "target": self.target,
            "outcome": self.outcome.value,
        }
        if self.config_ids:
            data["configIds"] = list(self.config_ids)
        if self.policy is not None:
            data["policy"] = self.policy.value
        if self.refusal is not None:
            data["refusal"] = self.refusal.value
        return data


@dataclass(frozen=True)
class DisableReport:
    """The whole disable of one domain."""

    domain: str
    route: Route
    bucket: str | None
    dry_run: bool
    steps: tuple[Step, ...]
    # Other domains of the bucket whose plain HTTP is no longer denied (OSS route).
    affected: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when every step did (or would do) what it was asked."""
        return all(step.outcome.ok for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the CLI's output)."""
        return {
            "domain": self.domain,
            "route": self.route.value,
            "bucket": self.bucket,
            "dryRun": self.dry_run,
            "ok": self.ok,
            "steps": [step.to_dict() for step in self.steps],
            "affected": list(self.affected),
        }


class _Stopped(Exception):
    """A step did not end well: the ones after it are not run."""


class _Run:
    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.steps: list[Step] = []
        self.stopped = False

    def add(self, step: Step) -> None:
        self.steps.append(step)
        if not step.outcome.ok:
            self.stopped = True
            raise _Stopped

    def pending(self, actions: list[tuple[Action, str]]) -> None:
        for action, target in actions:
            self.steps.append(Step(action, target, StepOutcome.NOT_RUN))


def _bucket_enforced(clients: CloudClients, record: DomainRecord) -> bool:
    if not record.bucket or not record.region:
        return False
    current = clients.oss.get_bucket_policy(record.bucket, record.region)
    if not current:
        return False
    try:
        return bool(find_ours(parse_document(current), record.bucket))
    except ValueError:
        return False


def _absent(ids_of: Callable[[str], tuple[str, ...]], feature: str, ids: tuple[str, ...]) -> bool:
    return not set(ids) & set(ids_of(feature))


def _disable_cdn(clients: CloudClients, record: DomainRecord, run: _Run, pacing: Pacing) -> None:
    cdn = clients.cdn
    name = record.api_name or record.name
    order = [
        (Action.ORIGIN_HTTPS, name),
        (Action.REMOVE_REDIRECT, name),
        (Action.REMOVE_HSTS, name),
        (Action.SSL_OFF, name),
        (Action.END_FALLBACK, name),
    ]
    done = 0

    def ids_of(function: str) -> tuple[str, ...]:
        return tuple(
            c.config_id for c in cdn.domain_configs(name, [function]) if c.function_name == function
        )

    try:
        # 1. Origin over HTTPS where the bucket would answer HTTP visitors 403.
        configs = cdn.domain_configs(name, [FORWARD_SCHEME])
        if origin_over_http(configs) and _bucket_enforced(clients, record):
            if run.dry_run:
                run.add(Step(Action.ORIGIN_HTTPS, name, StepOutcome.PLANNED))
            else:
                current = next((c for c in configs if c.function_name == FORWARD_SCHEME), None)
                function = CdnFunction(
                    FORWARD_SCHEME,
                    {"enable": "on", "scheme_origin": "https"},
                    config_id=current.config_id if current else None,
                )

                def switched() -> bool:
                    return not origin_over_http(cdn.domain_configs(name, [FORWARD_SCHEME]))

                def fetched_over_https() -> bool:
                    now = cdn.domain_configs(name, [FORWARD_SCHEME])
                    return not origin_over_http(now) and all(
                        c.status.lower() == "success"
                        for c in now
                        if c.function_name == FORWARD_SCHEME
                    )

                retry_busy(
                    lambda: cdn.set_configs([name], [function]),
                    pacing,
                    domain=name,
                    done=switched,
                )

                outcome = (
                    StepOutcome.DONE
                    if wait_until(fetched_over_https, pacing)
                    else StepOutcome.UNCONFIRMED
                )
                run.add(Step(Action.ORIGIN_HTTPS, name, outcome))
        else:
            run.add(Step(Action.ORIGIN_HTTPS, name, StepOutcome.ALREADY))
        done += 1
        # 2. and 3. The redirect, then HSTS: deleted and confirmed gone.
        for action, feature in ((Action.REMOVE_REDIRECT, HTTPS_FORCE), (Action.REMOVE_HSTS, HSTS)):
            ids = ids_of(feature)
            if not ids:
                run.add(Step(action, name, StepOutcome.ALREADY))
            elif run.dry_run:
                run.add(Step(action, name, StepOutcome.PLANNED, config_ids=ids))
            else:
                joined = ",".join(ids)
                absent = partial(_absent, ids_of, feature, ids)
                retry_busy(
                    partial(cdn.delete_config, name, joined), pacing, domain=name, done=absent
                )
                gone = wait_until(absent, pacing)
                outcome = StepOutcome.DONE if gone else StepOutcome.UNCONFIRMED
                run.add(Step(action, name, outcome, config_ids=ids))
            done += 1
        # 4. SSL off, confirmed by the certificate read-back.
        if cdn.certificate_info(name) is None:
            run.add(Step(Action.SSL_OFF, name, StepOutcome.ALREADY))
        elif run.dry_run:
            run.add(Step(Action.SSL_OFF, name, StepOutcome.PLANNED))
        else:

            def ssl_off() -> bool:
                return cdn.certificate_info(name) is None

            retry_busy(lambda: cdn.disable_certificate(name), pacing, domain=name, done=ssl_off)
            off = wait_until(ssl_off, pacing)
            run.add(
                Step(Action.SSL_OFF, name, StepOutcome.DONE if off else StepOutcome.UNCONFIRMED)
            )
        done += 1
        # 5. A fallback's record: nothing is left for a restore to switch back on.
        if name.lower() not in cdn.tagged_domains(FALLBACK_TAG):
            run.add(Step(Action.END_FALLBACK, name, StepOutcome.ALREADY))
        elif run.dry_run:
            run.add(Step(Action.END_FALLBACK, name, StepOutcome.PLANNED))
        else:
            cdn.untag_domains([name], [FALLBACK_TAG])
            run.add(Step(Action.END_FALLBACK, name, StepOutcome.DONE))
        done += 1
    except _Stopped:
        run.pending(order[done + 1 :])


def _policy_outcome(outcome: PolicyOutcome) -> StepOutcome:
    return {
        PolicyOutcome.WRITTEN: StepOutcome.DONE,
        PolicyOutcome.DELETED: StepOutcome.DONE,
        PolicyOutcome.ALREADY: StepOutcome.ALREADY,
        PolicyOutcome.REFUSED: StepOutcome.REFUSED,
        PolicyOutcome.CONTENDED: StepOutcome.CONTENDED,
    }[outcome]


def _disable_oss(clients: CloudClients, record: DomainRecord, run: _Run) -> None:
    oss = clients.oss
    bucket, region = record.bucket or "", record.region or ""
    name = record.api_name or record.name
    try:
        if not _bucket_enforced(clients, record):
            run.add(Step(Action.REMOVE_POLICY_STATEMENT, bucket, StepOutcome.ALREADY))
        elif run.dry_run:
            run.add(Step(Action.REMOVE_POLICY_STATEMENT, bucket, StepOutcome.PLANNED))
        else:
            result = remove_https_only_statement(oss, bucket, region)
            run.add(
                Step(
                    Action.REMOVE_POLICY_STATEMENT,
                    bucket,
                    _policy_outcome(result.outcome),
                    refusal=result.refusal,
                    policy=result.outcome,
                )
            )
    except _Stopped:
        run.pending([(Action.UNBIND_CERTIFICATE, record.name)])
        return
    binding = next((c for c in oss.list_cnames(bucket, region) if c.domain == record.name), None)
    if binding is None or binding.certificate is None:
        run.steps.append(Step(Action.UNBIND_CERTIFICATE, record.name, StepOutcome.ALREADY))
    elif run.dry_run:
        run.steps.append(Step(Action.UNBIND_CERTIFICATE, record.name, StepOutcome.PLANNED))
    else:
        oss.unbind_certificate(bucket, region, name, binding.cert_identifier)
        after = next((c for c in oss.list_cnames(bucket, region) if c.domain == record.name), None)
        unbound = after is None or after.certificate is None
        outcome = StepOutcome.DONE if unbound else StepOutcome.UNCONFIRMED
        run.steps.append(Step(Action.UNBIND_CERTIFICATE, record.name, outcome))


def bucket_neighbours(inventory: Inventory, record: DomainRecord) -> tuple[str, ...]:
    """The other domains that reach `record`'s bucket (its custom domains and the CDN
    domains with it as origin): whom removing the bucket's statement affects (pure)."""
    if not record.bucket:
        return ()
    return tuple(
        sorted(
            other.name
            for other in inventory.domains
            if other.bucket == record.bucket
            and other.name != record.name
            and other.route in (Route.OSS, Route.CDN)
        )
    )


def disable_https(
    clients: CloudClients,
    record: DomainRecord,
    inventory: Inventory,
    *,
    dry_run: bool,
    pacing: Pacing | None = None,
) -> DisableReport:
    """Disable HTTPS on `record`'s domain in the safe order (module docstring).

    Raises:
        CloudError: a read or write failed; the steps before it stay done, and running
            the disable again carries on (every step is idempotent).
        ValueError: the domain is a bucket domain (Alibaba manages it).
    """
    pacing = pacing or Pacing()
    run = _Run(dry_run)
    affected: tuple[str, ...] = ()
    if record.route is Route.CDN:
        _disable_cdn(clients, record, run, pacing)
    elif record.route is Route.OSS:
        _disable_oss(clients, record, run)
        policy_step = run.steps[0]
        if policy_step.outcome in (StepOutcome.DONE, StepOutcome.PLANNED):
            affected = bucket_neighbours(inventory, record)
    else:
        raise ValueError(f"{record.name} is a bucket domain: Alibaba Cloud manages its HTTPS")
    return DisableReport(
        domain=record.name,
        route=record.route,
        bucket=record.bucket,
        dry_run=dry_run,
        steps=tuple(run.steps),
        affected=affected,
    )
