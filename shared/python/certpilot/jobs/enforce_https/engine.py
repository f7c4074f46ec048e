"""enforce-https: secure the domains an event names, then make plain HTTP impossible.

`enforce_https(request, deps)`, in this order (docs/enforce-https.md):

1. Discover the scope with few calls: ListBuckets and the CDN listing once, ListCname
   only for the buckets in scope (those named, the buckets of the domains named, and
   every bucket only when a named domain is no CDN domain and the event named no
   bucket).
2. HTTPS live: one handshake per domain of the scope (valid chain and name). A target
   domain that fails it gets the best CAS candidate (covering, valid, not revoked,
   latest expiry) through the deploy-cert engine restricted to that domain (which
   verifies on consecutive handshakes and rolls back); none: `NO_CERTIFICATE`.
3. CDN features on each verified target CDN domain (`features`, `cdn_apply`). Steps 2
   and 3 run as a pipeline (not in a dry run): the scope is cut into stages of whole
   buckets, and a stage's features go out once all of its domains are judged, while
   the next stage is probed; every write is confirmed at the end.
4. The guard per bucket (`guard`): every direct custom domain verified, every CDN
   domain pulling from it over HTTPS (switched first, confirmed, then seen serving),
   else `ENFORCEMENT_BLOCKED` naming the domain and the bucket untouched; then the
   policy (`policy_apply.ensure_https_only`; an active emergency fallback is kept).
5. Verify from outside: HTTP answers 301 to https (CDN) or 403 (OSS policy), HTTPS
   still answers, with `Strict-Transport-Security` on CDN.

A dry run stops after deciding and answers the plan.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from certpilot.core.errors import CloudError
from certpilot.core.findings import Code, Finding, make_finding
from certpilot.core.log import event, get_logger, with_context
from certpilot.core.model import DomainRecord, Inventory, Route
from certpilot.core.names import normalize_domain
from certpilot.core.outcomes import Outcome
from certpilot.events import DeployRequest
from certpilot.jobs.deploy_cert import engine as deploy_engine
from certpilot.jobs.deploy_cert.plan import domain_covered
from certpilot.jobs.enforce_https import cdn_apply, fallback, policy_apply
from certpilot.jobs.enforce_https.cdn_apply import FeatureOutcome, FeatureResult
from certpilot.jobs.enforce_https.events import EnforceRequest, parse_enforce_event
from certpilot.jobs.enforce_https.features import (
    ORIGIN_OVER_HTTPS,
    Configured,
    DomainFeaturePlan,
    FeaturePrefs,
    plan_domain,
)
from certpilot.jobs.enforce_https.guard import (
    Blocker,
    BlockReason,
    CdnOrigin,
    DirectDomain,
    GuardDecision,
    judge_bucket,
)
from certpilot.jobs.enforce_https.policy import fallback_until
from certpilot.jobs.enforce_https.policy_apply import PolicyOutcome
from certpilot.jobs.enforce_https.summary import (
    BucketOutcome,
    BucketResult,
    DomainOutcome,
    DomainReason,
    DomainResult,
    EdgeCheck,
    EnforceReport,
    EnforceStatus,
    render,
)
from certpilot.probe.tls import VERIFY_WORKERS, HttpResponse, edge_address, probe_name

if TYPE_CHECKING:
    from certpilot.core.cloudtypes import CasSummary, CnameInfo
    from certpilot.handler import Invocation

_log = get_logger(__name__)
Deps = deploy_engine.Deps
MAX_CANDIDATES = 3  # certificates tried per domain before giving up
ONLINE = "online"
# A bucket tagged so is never enforced (chosen key; OSS tag keys may not start with
# `aliyun` / `acs:`).
OPT_OUT_TAG = "certpilot-enforce"
OPT_OUT_VALUES = frozenset({"off", "false", "no", "skip"})
SERVING_PROBLEM_STATUSES = (403,)  # answers that mean the origin refused the edge
# Probed domains per pipeline stage: 50 domains with the same features are 5 calls
# of BatchSetCdnDomainConfig, sent while the next 50 are probed.
PIPELINE_STAGE = 50


def parse_event(event_data: Any, invocation: Invocation) -> EnforceRequest:
    """The handler frame's `parse`: an enforce-https event from this account.

    Raises:
        EventError: malformed, unsupported, or from another account.
    """
    return parse_enforce_event(event_data, account_id=invocation.account_id)


def run(request: EnforceRequest, invocation: Invocation) -> dict[str, Any]:
    """The handler frame's `run`: `enforce_https` with dependencies from the FC context.

    Raises:
        ConfigError: the settings or credentials cannot be used.
        CloudError: the account cannot be read at all.
    """
    deps = deploy_engine.build_deps(invocation.context, settings=invocation.settings)
    return enforce_https(request, deps)


def enforce_https(request: EnforceRequest, deps: Deps) -> dict[str, Any]:
    """Secure and enforce what `request` names; the JSON summary (`summary.render`).

    Raises CloudError only when the account cannot be read at all.
    """
    return render(run_enforce(request, deps))


def describe(request: EnforceRequest) -> dict[str, Any]:
    """The loggable, echoable form of a request (no payload beyond these fields)."""
    return {
        "trigger": request.trigger.value,
        "domains": list(request.domains),
        "buckets": list(request.buckets),
        "dryRun": request.dry_run,
        "eventId": request.event_id,
    }


@dataclass
class _Scope:
    inventory: Inventory
    regions: dict[str, str]
    targets: list[DomainRecord]
    missing: list[str]
    buckets: list[str]  # judged by the guard, in order


@dataclass
class _Run:
    request: EnforceRequest
    deps: Deps
    dry_run: bool
    prefs: FeaturePrefs
    started: float
    scope: _Scope
    verified: dict[str, bool] = field(default_factory=dict)
    results: dict[str, DomainResult] = field(default_factory=dict)
    deployed: dict[str, int] = field(default_factory=dict)
    candidates: dict[str, int] = field(default_factory=dict)
    configs: dict[str, tuple[Configured, ...]] = field(default_factory=dict)
    features: dict[str, FeatureResult] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    buckets: dict[str, BucketResult] = field(default_factory=dict)
    # CDN domains (names) under an emergency HTTP fallback, with its end.
    cdn_fallback: dict[str, datetime] = field(default_factory=dict)
    # Bucket opt-outs as read (a bucket's tags are read once a run).
    opted_out: dict[str, bool] = field(default_factory=dict)
    # CDN domains (API names) whose origin switch rode in the features' batch, by bucket.
    switched_early: dict[str, list[str]] = field(default_factory=dict)
    # The CAS listing, read once a run when a target needs a certificate.
    listing: Sequence[CasSummary] | None = None

    @property
    def deadline(self) -> float:
        s = self.deps.settings
        budget = self.started + max(s.verify_deadline, 1.0) * 2
        return budget if self.deps.deadline is None else min(budget, self.deps.deadline)


def run_enforce(request: EnforceRequest, deps: Deps) -> EnforceReport:
    """`enforce_https`, typed."""
    settings = deps.settings
    event(_log, "enforce-https started", **describe(request))
    prefs = cdn_apply.feature_prefs(
        settings.cdn_features,
        hsts_max_age=settings.hsts_max_age,
        hsts_include_subdomains=settings.hsts_include_subdomains,
    )
    scope = discover_scope(request, deps)
    state = _Run(
        request,
        deps,
        request.dry_run or settings.dry_run,
        prefs,
        time.monotonic(),
        scope,
    )
    for name in scope.missing:
        state.results[name] = DomainResult(
            name, None, None, DomainOutcome.SKIPPED, DomainReason.NOT_FOUND
        )
    if state.dry_run:
        # The CDN configs (API reads) are read while the edge is probed (handshakes).
        with ThreadPoolExecutor(1, thread_name_prefix="prefetch") as prefetch:
            configs = prefetch.submit(with_context(_read_configs), state, _scope_cdn_names(state))
            _judge_https(state)
            configs.result()
        _cdn_fallbacks(state)
        _secure_targets(state, state.scope.targets)
        _apply_cdn(state)
    else:
        _cdn_fallbacks(state)
        _probe_and_write(state)
    _buckets_and_verify(state)
    report = EnforceReport(
        status=_status(state),
        request_id=deps.request_id,
        event=describe(request),
        domains=tuple(state.results[r.name] for r in scope.targets if r.name in state.results)
        + tuple(state.results[n] for n in scope.missing),
        buckets=tuple(state.buckets[b] for b in scope.buckets),
        findings=tuple(state.findings),
    )
    event(
        _log,
        "enforce-https finished",
        status=report.status.value,
        domains={d.domain: d.outcome.value for d in report.domains},
        buckets={b.bucket: b.outcome.value for b in report.buckets},
    )
    return report


# -- 1. scope ----------------------------------------------------------------------


def discover_scope(request: EnforceRequest, deps: Deps) -> _Scope:
    """The inventory of what `request` touches, read with few calls (module docstring).

    Raises:
        CloudError: a listing failed after retries.
    """
    from certpilot.discovery import inventory as inventory_module

    clients = deps.clients
    buckets = clients.oss.list_buckets()
    regions = {b.name: b.region for b in buckets}
    cdn_domains = clients.cdn.list_domains()
    cdn_by_name = {normalize_domain(d.name) or d.name: d for d in cdn_domains}
    wanted: set[str] = {b for b in request.buckets if b in regions}
    every_bucket = False
    for name in request.domains:
        info = cdn_by_name.get(name)
        origin = inventory_module.oss_origin(info.sources) if info is not None else None
        parsed = inventory_module.parse_bucket_domain(origin.content) if origin else None
        if parsed is not None:
            wanted.add(parsed[0])
        elif not request.buckets:
            every_bucket = True
    listed = [b for b in buckets if every_bucket or b.name in wanted]
    cnames: dict[str, list[CnameInfo]] = {}
    workers = min(max(1, deps.settings.concurrency), len(listed))
    if workers > 1:
        list_cnames = with_context(inventory_module._list_cnames)
        with ThreadPoolExecutor(workers, thread_name_prefix="cnames") as pool:
            found = pool.map(list_cnames, [clients] * len(listed), listed)
            cnames = {b.name: c for b, c in zip(listed, found, strict=True)}
    else:
        for bucket in listed:
            cnames[bucket.name] = inventory_module._list_cnames(clients, bucket)
    needs_certs = any(d.ssl_on for d in cdn_domains)
    https = clients.cdn.https_certificates() if needs_certs else {}
    inventory = inventory_module.classify(buckets, cnames, cdn_domains, https)
    targets: dict[str, DomainRecord] = {}
    missing: list[str] = []
    for name in request.domains:
        record = inventory.get(name)
        if record is None:
            missing.append(name)
        else:
            targets[name] = record
    for named in request.buckets:
        for record in inventory.domains:
            if record.bucket == named and record.route in (Route.OSS, Route.CDN):
                targets.setdefault(record.name, record)
    judged = list(request.buckets) + [
        r.bucket for r in targets.values() if r.route in (Route.OSS, Route.CDN) and r.bucket
    ]
    scope_buckets = [b for b in dict.fromkeys(judged) if b in regions]
    return _Scope(inventory, regions, list(targets.values()), missing, scope_buckets)


def _bucket_domains(state: _Run, bucket: str) -> list[DomainRecord]:
    return [
        r
        for r in state.scope.inventory.domains
        if r.bucket == bucket and r.route in (Route.OSS, Route.CDN)
    ]


def _opted_out_domain(state: _Run, name: str) -> bool:
    skip = {normalize_domain(d) or d for d in state.deps.settings.enforce_skip_domains}
    return name in skip


# -- 2. HTTPS live, certificates ----------------------------------------------------


def _judge_https(state: _Run, names: dict[str, DomainRecord] | None = None) -> None:
    """Handshakes for every domain the run or the guard needs to know about (or only
    `names`): verified only when `CERTPILOT_VERIFY_CONSECUTIVE` handshakes in a row show
    a valid chain and name (a CDN edge of many nodes may serve old and new state side
    by side)."""
    if names is None:
        names = _probed(state, state.scope.targets, state.scope.buckets)
    pending = [n for n, r in names.items() if r.route is not Route.BUCKET_DOMAIN]
    for _ in range(max(1, state.deps.settings.verify_consecutive)):
        probed = deploy_engine.probe_all(pending, state.deps, inventory=state.scope.inventory)
        for name, served in probed.items():
            if served is None or not served.ok:
                state.verified[name] = False
        pending = [n for n in pending if state.verified.get(n) is not False]
        if not pending:
            break
    for name in pending:
        state.verified[name] = True


def _probed(
    state: _Run, targets: Sequence[DomainRecord], buckets: Sequence[str]
) -> dict[str, DomainRecord]:
    """The domains whose HTTPS `targets` and the guard of `buckets` need probed."""
    names: dict[str, DomainRecord] = {r.name: r for r in targets}
    for bucket in buckets:
        for record in _bucket_domains(state, bucket):
            if record.route is Route.OSS:
                names.setdefault(record.name, record)
    return names


@dataclass(frozen=True)
class _Stage:
    """One step of the probe-then-write pipeline: whole buckets (the guard judges a
    bucket on all of its domains) and the targets among their domains."""

    buckets: tuple[str, ...]
    targets: tuple[DomainRecord, ...]


def _stages(state: _Run) -> list[_Stage]:
    """The scope cut into stages of about `PIPELINE_STAGE` probed domains, whole
    buckets each; the targets of no bucket in scope come last."""
    in_scope = set(state.scope.buckets)
    by_bucket: dict[str, list[DomainRecord]] = {b: [] for b in state.scope.buckets}
    loose: list[DomainRecord] = []
    for record in state.scope.targets:
        if record.bucket in in_scope:
            by_bucket[record.bucket or ""].append(record)
        else:
            loose.append(record)
    stages: list[_Stage] = []
    buckets: list[str] = []
    targets: list[DomainRecord] = []
    size = 0
    for bucket, records in by_bucket.items():
        buckets.append(bucket)
        targets += records
        size += len(_probed(state, records, [bucket]))
        if size >= PIPELINE_STAGE:
            stages.append(_Stage(tuple(buckets), tuple(targets)))
            buckets, targets, size = [], [], 0
    targets += loose
    if buckets or targets:
        stages.append(_Stage(tuple(buckets), tuple(targets)))
    return stages


def _probe_and_write(state: _Run) -> None:
    """Steps 2 and 3 as a pipeline: a stage's domains are probed (and given a
    certificate where HTTPS fails) while the features of the stages before go out, so
    the handshakes overlap BatchSetCdnDomainConfig's pacing. A stage's writes start
    only once every domain of it (all the domains of its buckets) has been judged:
    the same facts the guard and the plans had when the whole scope was probed first.
    Every domain sent is confirmed at the end, in the order written."""
    stages = _stages(state)
    judged: queue.Queue[_Stage | None] = queue.Queue()

    def probe() -> None:
        try:
            for stage in stages:
                _judge_https(state, _probed(state, stage.targets, stage.buckets))
                judged.put(stage)
        finally:
            judged.put(None)

    writer = cdn_apply.FeatureWriter(state.deps.clients.cdn, deadline=state.deadline, log=_log)
    early: dict[str, str] = {}
    with ThreadPoolExecutor(2, thread_name_prefix="pipeline") as pool:
        # The CDN configs (API reads) are read while the edge is probed (handshakes).
        configs = pool.submit(with_context(_read_configs), state, _scope_cdn_names(state))
        probes = pool.submit(with_context(probe))
        for stage in iter(judged.get, None):
            _secure_targets(state, stage.targets)
            early.update(_send_cdn(state, writer, stage))
        probes.result()
        configs.result()
    _confirm_cdn(state, writer, early)


def _candidates(listing: Sequence[CasSummary], domain: str, now: datetime) -> list[int]:
    usable = [
        s
        for s in listing
        if not s.expired
        and s.status.upper() not in ("REVOKED", "EXPIRED")
        and (s.end is None or s.end > now)
        and (s.start is None or s.start <= now)
        and domain_covered(tuple(n.lower() for n in s.sans), domain)
    ]
    usable.sort(key=lambda s: (s.end or now, s.cas_id), reverse=True)
    return [s.cas_id for s in usable]


def _secure_targets(state: _Run, targets: Sequence[DomainRecord]) -> None:
    """Give each of `targets` without verified HTTPS the best candidate certificate."""
    from certpilot.discovery import catalog as catalog_module

    pending: list[DomainRecord] = []
    for record in targets:
        reason = _skip_reason(state, record)
        if reason is not None:
            state.results[record.name] = DomainResult(
                record.name,
                record.route.value,
                record.bucket,
                DomainOutcome.SKIPPED,
                reason,
                cdn_status=record.cdn_status,
            )
        elif not state.verified.get(record.name):
            pending.append(record)
    if not pending:
        return
    if state.listing is None:
        state.listing = catalog_module.list_all(state.deps.clients, include_revoked=False).summaries
    listing = state.listing
    now = state.deps.clock()
    options = {r.name: _candidates(listing, r.name, now)[:MAX_CANDIDATES] for r in pending}
    for record in pending:
        if not options[record.name]:
            _not_enforced(state, record, DomainReason.NO_CERTIFICATE)
            state.findings.append(
                make_finding(
                    Code.NO_CERTIFICATE,
                    record.name,
                    f"no valid certificate in CAS covers {record.name}: HTTPS not forced",
                )
            )
        else:
            state.candidates[record.name] = options[record.name][0]
    if state.dry_run:
        return
    # Rounds: each domain's next candidate; domains sharing one go in one deploy-cert run.
    remaining = {r.name: list(options[r.name]) for r in pending if options[r.name]}
    while remaining:
        groups: dict[int, list[str]] = {}
        for name, ids in remaining.items():
            groups.setdefault(ids.pop(0), []).append(name)
        for cas_id, names in groups.items():
            for name, ok in _deploy(state, cas_id, names).items():
                if ok:
                    state.deployed[name] = cas_id
                    state.verified[name] = True
                    remaining.pop(name, None)
        for name in [n for n, ids in remaining.items() if not ids]:
            remaining.pop(name)
            failed = state.scope.inventory.get(name)
            if failed is not None:
                _not_enforced(state, failed, DomainReason.CERTIFICATE_NOT_DEPLOYED)


def _deploy(state: _Run, cas_id: int, names: Sequence[str]) -> dict[str, bool]:
    """deploy-cert of `cas_id` restricted to `names`: which were deployed and verified."""
    request = DeployRequest(
        cas_id=cas_id,
        region=None,
        shape="enforce-https",
        reason="enforce-https: domain without verified HTTPS",
        only=tuple(names),
    )
    try:
        report = deploy_engine.run_deploy(request, state.deps)
    except CloudError as error:
        event(_log, "deploy failed", level=logging.WARNING, certId=cas_id, error=error.code)
        return dict.fromkeys(names, False)
    done = {r.domain: r.outcome is Outcome.DEPLOYED for r in report.results}
    event(_log, "certificate deployed for enforcement", certId=cas_id, domains=done)
    return {name: done.get(name, False) for name in names}


def _skip_reason(state: _Run, record: DomainRecord) -> DomainReason | None:
    if record.route is Route.BUCKET_DOMAIN:
        return DomainReason.BUCKET_DOMAIN
    if _opted_out_domain(state, record.name):
        return DomainReason.OPTED_OUT
    if record.name in state.cdn_fallback:
        return DomainReason.FALLBACK_ACTIVE
    if record.route is Route.CDN and record.cdn_status not in (ONLINE, None):
        return DomainReason.CDN_STATUS
    return None


def _not_enforced(state: _Run, record: DomainRecord, reason: DomainReason) -> None:
    state.results[record.name] = DomainResult(
        record.name,
        record.route.value,
        record.bucket,
        DomainOutcome.PLANNED
        if state.dry_run and reason is not DomainReason.NO_CERTIFICATE
        else DomainOutcome.NOT_ENFORCED,
        reason,
        cdn_status=record.cdn_status,
    )


def _cdn_fallbacks(state: _Run) -> None:
    """Restore the CDN redirects whose emergency fallback has ended (not in a dry run),
    then leave the target CDN domains still under one as they are (FALLBACK_ACTIVE):
    enforcing them would end the fallback early."""
    if not any(r.route is Route.CDN for r in state.scope.targets):
        return
    clients = state.deps.clients
    now = state.deps.clock()
    try:
        if not state.dry_run:
            pacing = fallback.Pacing(timeout=max(1.0, state.deadline - time.monotonic()))
            for step in fallback.restore_expired(clients, now, pacing):
                event(_log, "fallback ended", domain=step.target, outcome=step.outcome.value)
        ends = fallback.cdn_fallbacks(clients.cdn)
    except CloudError as error:
        event(_log, "fallbacks not read", level=logging.WARNING, error=error.code)
        return
    for record in state.scope.targets:
        until = ends.get(_api(record).lower()) if record.route is Route.CDN else None
        if until is not None and until > now:
            state.cdn_fallback[record.name] = until
            state.findings.append(
                make_finding(
                    Code.FALLBACK_ACTIVE,
                    record.name,
                    f"emergency HTTP fallback: the CDN redirect to HTTPS is suspended until"
                    f" {fallback.iso(until)}",
                    until=until,
                )
            )


# -- 3. CDN features ----------------------------------------------------------------


def _configs(state: _Run, name: str) -> tuple[Configured, ...] | None:
    if name not in state.configs:
        try:
            state.configs[name] = cdn_apply.read_configured(state.deps.clients.cdn, name)
        except CloudError as error:
            event(_log, "configs unreadable", level=logging.WARNING, domain=name, error=error.code)
            return None
    return state.configs[name]


def _cdn_targets(state: _Run) -> list[DomainRecord]:
    return (
        [
            r
            for r in state.scope.targets
            if r.route is Route.CDN and r.name not in state.results and state.verified.get(r.name)
        ]
        if not state.dry_run
        else [
            r
            for r in state.scope.targets
            if r.route is Route.CDN
            and r.name not in state.results
            and (state.verified.get(r.name) or r.name in state.candidates)
        ]
    )


def _scope_cdn_names(state: _Run) -> list[str]:
    """The API names of every CDN domain the run may look at: the targets and the CDN
    domains of the buckets in scope."""
    records = [r for r in state.scope.targets if r.route is Route.CDN]
    for bucket in state.scope.buckets:
        records += [r for r in _bucket_domains(state, bucket) if r.route is Route.CDN]
    return list(dict.fromkeys(_api(r) for r in records))


def _read_configs(state: _Run, api_names: Sequence[str]) -> None:
    """Read the configs of many CDN domains side by side (`CERTPILOT_CONCURRENCY` at a
    time; the adapter keeps DescribeCdnDomainConfigs under its QPS) into the cache."""
    todo = [n for n in dict.fromkeys(api_names) if n not in state.configs]
    workers = min(max(1, state.deps.settings.concurrency), len(todo))
    if workers <= 1:
        for name in todo:
            _configs(state, name)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="configs") as pool:
        list(pool.map(with_context(_configs), [state] * len(todo), todo))


def _early_switches(state: _Run, buckets: Sequence[str] | None = None) -> dict[str, str]:
    """The CDN domains whose origin the guard will switch to HTTPS (API name -> bucket):
    their switch goes out in the features' batch, so that the whole run waits for one
    propagation instead of one per bucket. Only for buckets the guard would let
    through; the bucket step still sees each of them serve before writing its policy."""
    if state.dry_run:
        return {}
    buckets = state.scope.buckets if buckets is None else buckets
    _read_opt_outs(state, buckets)
    switches: dict[str, str] = {}
    for bucket in buckets:
        try:
            if _bucket_opted_out(state, bucket):
                continue
        except CloudError:
            continue  # the bucket step reports it
        decision, api_names = _decide(state, bucket)
        if not decision.blockers:
            for name in decision.switch_origin:
                switches[api_names[name]] = bucket
    return switches


def _apply_cdn(state: _Run) -> None:
    targets = _cdn_targets(state)
    _read_configs(state, [_api(r) for r in targets])  # read during the probes, mostly
    early = _early_switches(state)
    plans = _plans(state, targets, early)
    if state.dry_run or not plans:
        for plan in plans:
            state.features[_name(plan.domain)] = FeatureResult(
                _name(plan.domain),
                FeatureOutcome.IN_PLACE if plan.in_place else FeatureOutcome.UNCONFIRMED,
                plan.delete,
                tuple(w.name for w in plan.set),
            )
        return
    writer = cdn_apply.FeatureWriter(state.deps.clients.cdn, deadline=state.deadline, log=_log)
    writer.send(plans)
    _confirm_cdn(state, writer, early)


def _send_cdn(state: _Run, writer: cdn_apply.FeatureWriter, stage: _Stage) -> dict[str, str]:
    """Plan and send the features of one pipeline stage; its early origin switches."""
    names = {r.name for r in stage.targets}
    targets = [r for r in _cdn_targets(state) if r.name in names]
    _read_configs(state, [_api(r) for r in targets])  # read during the probes, mostly
    early = _early_switches(state, stage.buckets)
    writer.send(_plans(state, targets, early))
    return early


def _plans(
    state: _Run, targets: Sequence[DomainRecord], early: dict[str, str]
) -> list[DomainFeaturePlan]:
    """The feature plan of each target CDN domain whose configs could be read."""
    plans: list[DomainFeaturePlan] = []
    for record in targets:
        configs = _configs(state, _api(record))
        if configs is None:
            state.features[record.name] = FeatureResult(
                record.name, FeatureOutcome.FAILED, error_code="DescribeCdnDomainConfigs"
            )
            continue
        plan = plan_domain(_api(record), configs, state.prefs)
        if _api(record) in early:
            plan = cdn_apply.with_origin_switch(plan, ORIGIN_OVER_HTTPS)
        plans.append(plan)
    return plans


def _confirm_cdn(state: _Run, writer: cdn_apply.FeatureWriter, early: dict[str, str]) -> None:
    """Confirm every domain `writer` sent and record the results."""
    seen: dict[str, tuple[Configured, ...]] = {}
    results = writer.confirm(seen)
    for api_name, result in results.items():
        state.features[_name(api_name)] = result
        # Changed: what the confirmation read last, else read again when needed.
        state.configs.pop(api_name, None)
        if api_name in seen:
            state.configs[api_name] = seen[api_name]
        bucket = early.get(api_name)
        if bucket is not None and result.ok and ORIGIN_OVER_HTTPS.name in result.set:
            state.switched_early.setdefault(bucket, []).append(api_name)


def _api(record: DomainRecord) -> str:
    return record.api_name or record.name


def _name(api_name: str) -> str:
    return normalize_domain(api_name) or api_name


# -- 4. the guard and the policy ----------------------------------------------------


def _opted_out_bucket(state: _Run, bucket: str, region: str) -> bool:
    """Listed in `CERTPILOT_ENFORCE_SKIP_BUCKETS`, or tagged `certpilot-enforce=off`.

    Raises:
        CloudError: the tags cannot be read.
    """
    if bucket in state.deps.settings.enforce_skip_buckets:
        return True
    tags = state.deps.clients.oss.bucket_tags(bucket, region)
    return tags.get(OPT_OUT_TAG, "").strip().lower() in OPT_OUT_VALUES


def _bucket_opted_out(state: _Run, bucket: str) -> bool:
    """`_opted_out_bucket`, read once a run.

    Raises:
        CloudError: the tags cannot be read.
    """
    if bucket not in state.opted_out:
        region = state.scope.regions.get(bucket) or state.deps.settings.region
        state.opted_out[bucket] = _opted_out_bucket(state, bucket, region)
    return state.opted_out[bucket]


def _read_opt_outs(state: _Run, buckets: Sequence[str]) -> None:
    """Read the opt-out of many buckets side by side into the run's cache (a bucket whose
    tags cannot be read is left out: the bucket step reads it again and reports it)."""
    todo = [b for b in buckets if b not in state.opted_out]

    def read(bucket: str) -> None:
        with contextlib.suppress(CloudError):
            _bucket_opted_out(state, bucket)

    workers = min(max(1, state.deps.settings.concurrency), len(todo))
    if workers <= 1:
        for bucket in todo:
            read(bucket)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="opt-out") as pool:
        list(pool.map(with_context(read), todo))


def _decide(state: _Run, bucket: str) -> tuple[GuardDecision, dict[str, str]]:
    """The guard's decision on `bucket` from what the run knows now, and the API name
    of each CDN domain it names."""
    direct: list[DirectDomain] = []
    origins: list[CdnOrigin] = []
    api_names: dict[str, str] = {}
    for record in _bucket_domains(state, bucket):
        if record.route is Route.OSS:
            would = state.dry_run and record.name in state.candidates
            direct.append(
                DirectDomain(record.name, state.verified.get(record.name, False) or would)
            )
            continue
        configs = _configs(state, _api(record))
        api_names[record.name] = _api(record)
        if configs is None:
            origins.append(
                CdnOrigin(record.name, cdn_apply.OriginScheme.DEFAULT, False, switchable=False)
            )
            continue
        origins.append(
            CdnOrigin(
                record.name,
                cdn_apply.origin_scheme(configs),
                cdn_apply.forces_https(configs),
                switchable=record.cdn_status == ONLINE,
            )
        )
    return judge_bucket(bucket, direct, origins), api_names


def _enforce_buckets(state: _Run) -> None:
    """The guard and the policy of every bucket in scope, side by side
    (`CERTPILOT_CONCURRENCY` at a time): each bucket's calls are its own."""
    buckets = state.scope.buckets
    _read_configs(
        state,
        [_api(r) for b in buckets for r in _bucket_domains(state, b) if r.route is Route.CDN],
    )
    workers = min(max(1, state.deps.settings.concurrency), len(buckets))
    if workers <= 1:
        for bucket in buckets:
            state.buckets[bucket] = _enforce_bucket(state, bucket)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="bucket") as pool:
        results = list(pool.map(with_context(_enforce_bucket), [state] * len(buckets), buckets))
    for bucket, result in zip(buckets, results, strict=True):
        state.buckets[bucket] = result


def _enforce_bucket(state: _Run, bucket: str) -> BucketResult:
    region = state.scope.regions.get(bucket)
    try:
        opted_out = _bucket_opted_out(state, bucket)
    except CloudError as error:
        # A bucket whose opt-out cannot be read is never written: it may say "off".
        event(
            _log, "bucket tags unreadable", level=logging.WARNING, bucket=bucket, error=error.code
        )
        return BucketResult(bucket, region, BucketOutcome.FAILED, error_code=error.code)
    if opted_out:
        return BucketResult(bucket, region, BucketOutcome.SKIPPED)
    decision, api_names = _decide(state, bucket)
    if decision.blockers:
        return _blocked(state, bucket, region, decision.blockers)
    if state.dry_run:
        return BucketResult(
            bucket, region, BucketOutcome.PLANNED, origins_switched=decision.switch_origin
        )
    # Switched in the features' batch: each must still serve, as after a switch here.
    early = tuple(_name(n) for n in state.switched_early.get(bucket, ()))
    failed = [n for n in early if not _still_serves(state, n)]
    if decision.switch_origin:
        failed += _switch_origins(state, [api_names[n] for n in decision.switch_origin])
    switched = (*early, *decision.switch_origin)
    if failed:
        return _blocked(
            state,
            bucket,
            region,
            tuple(Blocker(n, BlockReason.ORIGIN_OVER_HTTP) for n in failed),
            switched=tuple(n for n in switched if n not in failed),
        )
    return _write_policy(state, bucket, region or state.deps.settings.region, switched)


def _blocked(
    state: _Run,
    bucket: str,
    region: str | None,
    blockers: Sequence[Blocker],
    switched: tuple[str, ...] = (),
) -> BucketResult:
    for blocker in blockers:
        state.findings.append(
            make_finding(
                Code.ENFORCEMENT_BLOCKED,
                blocker.domain,
                f"bucket {bucket} not switched to HTTPS-only: {blocker.domain} still needs"
                f" HTTP ({blocker.reason.value})",
            )
        )
    event(
        _log,
        "bucket blocked",
        level=logging.WARNING,
        bucket=bucket,
        blockers={b.domain: b.reason.value for b in blockers},
    )
    return BucketResult(
        bucket, region, BucketOutcome.BLOCKED, blockers=tuple(blockers), origins_switched=switched
    )


def _switch_origins(state: _Run, api_names: Sequence[str]) -> list[str]:
    """Switch these CDN domains' origin fetch to HTTPS, confirm it, and see each still
    serve; the names that did not make it."""
    plans = [DomainFeaturePlan(n, (), (ORIGIN_OVER_HTTPS,), ()) for n in api_names]
    results = cdn_apply.apply_features(
        state.deps.clients.cdn, plans, deadline=state.deadline, log=_log
    )
    failed = []
    for api_name in api_names:
        state.configs.pop(api_name, None)
        result = results.get(api_name)
        name = _name(api_name)
        if result is None or not result.ok or not _still_serves(state, name):
            failed.append(name)
    event(_log, "origins switched to https", domains=list(api_names), failed=failed)
    return failed


def _still_serves(state: _Run, name: str) -> bool:
    """The CDN domain answers a visitor (over HTTPS where verified, else HTTP) with
    something other than the origin's refusal or an error."""
    try:
        if state.verified.get(name):
            status = _https(state, name).status
        else:
            status = _http(state, name).status
    except OSError:
        return False
    return status not in SERVING_PROBLEM_STATUSES and status < 500


def _write_policy(state: _Run, bucket: str, region: str, switched: tuple[str, ...]) -> BucketResult:
    oss = state.deps.clients.oss
    now = state.deps.clock()
    last: CloudError | None = None
    for _attempt in range(2):  # one more full read-merge-write after an error
        try:
            until = fallback_until(oss.get_bucket_policy(bucket, region), bucket)
            keep = until if until is not None and until > now else None
            if keep is not None:
                state.findings.append(
                    make_finding(
                        Code.FALLBACK_ACTIVE,
                        bucket,
                        f"bucket {bucket} allows plain HTTP until {keep.isoformat()}"
                        " (emergency fallback): kept",
                        until=keep,
                    )
                )
            result = policy_apply.ensure_https_only(oss, bucket, region, allow_http_until=keep)
        except CloudError as error:
            last = error
            event(
                _log, "policy write failed", level=logging.WARNING, bucket=bucket, error=error.code
            )
            continue
        if last is not None and result.outcome is PolicyOutcome.ALREADY:
            # The failed attempt may have written it (an error after OSS applied the
            # write): the state is reached; the error stays a fact.
            result = replace(result, outcome=PolicyOutcome.WRITTEN)
        found = _policy_result(state, bucket, region, result, switched, keep)
        return replace(found, error_code=last.code) if last is not None else found
    return BucketResult(
        bucket,
        region,
        BucketOutcome.FAILED,
        origins_switched=switched,
        error_code=(last.code if last else None) or "CloudError",
    )


def _policy_result(
    state: _Run,
    bucket: str,
    region: str,
    result: policy_apply.PolicyResult,
    switched: tuple[str, ...],
    keep: datetime | None,
) -> BucketResult:
    outcome = {
        PolicyOutcome.WRITTEN: BucketOutcome.ENFORCED,
        PolicyOutcome.ALREADY: BucketOutcome.ALREADY_ENFORCED,
        PolicyOutcome.REFUSED: BucketOutcome.UNMERGEABLE,
        PolicyOutcome.CONTENDED: BucketOutcome.FAILED,
        PolicyOutcome.DELETED: BucketOutcome.FAILED,
    }[result.outcome]
    if outcome is BucketOutcome.UNMERGEABLE:
        state.findings.append(
            make_finding(
                Code.POLICY_UNMERGEABLE,
                bucket,
                f"bucket {bucket}'s policy cannot take the HTTPS-only statement"
                f" ({result.refusal.value if result.refusal else 'refused'}): left as it was",
            )
        )
    return BucketResult(
        bucket,
        region,
        outcome,
        origins_switched=switched,
        refusal=result.refusal,
        rounds=result.rounds,
        fallback_until=keep,
        error_code="Contended" if result.outcome is PolicyOutcome.CONTENDED else None,
    )


# -- 5. verify from outside ---------------------------------------------------------


def _edge_https(state: _Run, name: str) -> str | None:
    record = state.scope.inventory.get(name)
    return edge_address(record.edge_host if record else None, state.deps.settings.edge_https)


def _https(state: _Run, name: str) -> HttpResponse:
    """GET https://<probe name>/ at `name`'s edge (a wildcard: one label below).

    Raises:
        OSError: no answer, or the handshake failed.
    """
    from certpilot.probe.web import fetch_https

    s = state.deps.settings
    return fetch_https(
        probe_name(name),
        edge=_edge_https(state, name),
        ca_bundle=s.ca_bundle,
        timeout=s.connect_timeout,
    )


def _http(state: _Run, name: str) -> HttpResponse:
    """GET http://<probe name>/ (`CERTPILOT_EDGE_HTTP` when set, else the name on 80).

    Raises:
        OSError: no answer.
    """
    from certpilot.probe.tls import Probes

    return Probes.from_settings(state.deps.settings).http(probe_name(name))


def _expect(state: _Run, record: DomainRecord) -> Callable[[], EdgeCheck]:
    """One look at the edge for `record`, judged against what enforcement means there."""
    prefs = state.prefs
    bucket = state.buckets.get(record.bucket or "")
    policy_on = (
        bucket is not None
        and bucket.outcome
        in (
            BucketOutcome.ENFORCED,
            BucketOutcome.ALREADY_ENFORCED,
        )
        and bucket.fallback_until is None
    )

    # A wildcard domain is asked one label below it, as its certificate is verified.
    host = probe_name(record.name)

    def look() -> EdgeCheck:
        try:
            plain = _http(state, record.name)
            secure = _https(state, record.name)
        except OSError as error:
            return EdgeCheck(problem=f"no answer: {type(error).__name__}")
        hsts = secure.headers.get("strict-transport-security")
        check = EdgeCheck(plain.status, plain.location, secure.status, hsts)
        problems: list[str] = []
        if secure.status in SERVING_PROBLEM_STATUSES or secure.status >= 500:
            problems.append(f"HTTPS answers {secure.status}")
        if record.route is Route.CDN:
            if prefs.https_force:
                wanted = f"https://{host}/"
                if plain.status != 301 or plain.location != wanted:
                    problems.append(f"HTTP answers {plain.status} {plain.location or ''}".strip())
            if prefs.hsts and not _hsts_ok(hsts, prefs):
                problems.append(f"Strict-Transport-Security is {hsts!r}")
        elif policy_on and plain.status != 403:
            problems.append(f"HTTP answers {plain.status}, not 403")
        return EdgeCheck(
            check.http_status, check.http_location, check.https_status, hsts, "; ".join(problems)
        )

    return look


def _hsts_ok(header: str | None, prefs: FeaturePrefs) -> bool:
    if header is None:
        return False
    parts = {p.strip().lower() for p in header.split(";")}
    if f"max-age={prefs.hsts_max_age}" not in parts:
        return False
    return ("includesubdomains" in parts) == prefs.hsts_include_subdomains


def _buckets_and_verify(state: _Run) -> None:
    """Steps 4 and 5: the CDN domains' edge is verified while the buckets are
    enforced (what a CDN domain must answer does not depend on its bucket's policy);
    the direct domains, and a CDN domain whose origin the bucket step switched, are
    verified after. Outcomes are set once the buckets are done (whether a domain
    changed depends on its bucket too)."""
    if state.dry_run:
        _enforce_buckets(state)
        _verify(state)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="verify-cdn") as pool:
        early = pool.submit(with_context(_edge_checks), state, _verify_todo(state, Route.CDN))
        _enforce_buckets(state)
        checked = early.result()
    late = {n for b in state.buckets.values() for n in b.origins_switched} - {
        _name(n) for names in state.switched_early.values() for n in names
    }
    for name, (record, check) in checked.items():
        if name not in late:
            _record_check(state, record, check)
    _verify(state)


def _verify(state: _Run) -> None:
    """Poll the edge for every domain enforced here (and not settled yet) until it
    answers as enforced or the run's verification time is up; then set each domain's
    outcome."""
    for record, check in _edge_checks(state, _verify_todo(state)).values():
        _record_check(state, record, check)


def _verify_todo(state: _Run, route: Route | None = None) -> dict[str, DomainRecord]:
    """The targets (of `route`, or all) to verify at the edge; the others get their
    outcome here (dry run, features failed, bucket skipped or not enforced)."""
    todo: dict[str, DomainRecord] = {}
    for record in state.scope.targets:
        if record.name in state.results or (route is not None and record.route is not route):
            continue
        if state.dry_run:
            state.results[record.name] = _planned(state, record)
            continue
        features = state.features.get(record.name)
        if record.route is Route.CDN and (features is None or not features.ok):
            state.results[record.name] = _result(
                state,
                record,
                DomainOutcome.FAILED,
                DomainReason.FEATURES_FAILED,
                error_code=features.error_code if features else None,
            )
            continue
        bucket = state.buckets.get(record.bucket or "")
        if record.route is Route.OSS and bucket and bucket.outcome is BucketOutcome.SKIPPED:
            state.results[record.name] = _result(
                state, record, DomainOutcome.SKIPPED, DomainReason.OPTED_OUT
            )
            continue
        if record.route is Route.OSS and (
            bucket is None
            or bucket.outcome not in (BucketOutcome.ENFORCED, BucketOutcome.ALREADY_ENFORCED)
        ):
            state.results[record.name] = _result(
                state, record, DomainOutcome.NOT_ENFORCED, DomainReason.BUCKET_NOT_ENFORCED
            )
            continue
        todo[record.name] = record
    return todo


def _edge_checks(
    state: _Run, todo: dict[str, DomainRecord]
) -> dict[str, tuple[DomainRecord, EdgeCheck]]:
    """Poll the edge for each of `todo` until it answers as enforced (on consecutive
    looks) or the verification time is up; each domain's last check."""
    todo = dict(todo)
    done: dict[str, tuple[DomainRecord, EdgeCheck]] = {}
    looks = {name: _expect(state, record) for name, record in todo.items()}
    # Consecutive good answers in a row (each a new connection): one lucky node proves
    # little while a CDN change propagates.
    wanted = max(1, state.deps.settings.verify_consecutive)
    streak = dict.fromkeys(todo, 0)
    stop = time.monotonic() + state.deps.settings.verify_deadline
    if state.deps.deadline is not None:
        stop = min(stop, state.deps.deadline)
    interval = 0.1

    def look(name: str) -> EdgeCheck:
        # A good answer is confirmed at once by further looks, each a new connection.
        check = looks[name]()
        streak[name] = 0 if check.problem else streak[name] + 1
        while not check.problem and streak[name] < wanted:
            check = looks[name]()
            streak[name] = 0 if check.problem else streak[name] + 1
        return check

    workers = min(VERIFY_WORKERS, len(todo))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="edge") if workers > 1 else None
    try:
        while todo:
            names = list(todo)
            checks = list(pool.map(look, names)) if pool else [look(n) for n in names]
            for name, check in zip(names, checks, strict=True):
                if streak[name] >= wanted or time.monotonic() >= stop:
                    done[name] = (todo.pop(name), check)
            if todo:
                time.sleep(interval)
                interval = min(interval * 2, 1.0)
    finally:
        if pool is not None:
            pool.shutdown()
    return done


def _record_check(state: _Run, record: DomainRecord, check: EdgeCheck) -> None:
    """Set a domain's outcome from its last edge check."""
    name = record.name
    if check.problem:
        state.results[name] = _result(
            state,
            record,
            DomainOutcome.FAILED,
            DomainReason.EDGE_CHECK_FAILED,
            check=check,
        )
    else:
        changed = _changed(state, record)
        state.results[name] = _result(
            state,
            record,
            DomainOutcome.ENFORCED if changed else DomainOutcome.ALREADY_ENFORCED,
            DomainReason.VERIFIED,
            check=check,
        )


def _changed(state: _Run, record: DomainRecord) -> bool:
    if record.name in state.deployed:
        return True
    features = state.features.get(record.name)
    if features is not None and features.outcome is FeatureOutcome.APPLIED:
        return True
    bucket = state.buckets.get(record.bucket or "")
    return bucket is not None and (
        bucket.outcome is BucketOutcome.ENFORCED or bool(bucket.origins_switched)
    )


def _result(
    state: _Run,
    record: DomainRecord,
    outcome: DomainOutcome,
    reason: DomainReason,
    *,
    check: EdgeCheck | None = None,
    error_code: str | None = None,
) -> DomainResult:
    return DomainResult(
        record.name,
        record.route.value,
        record.bucket,
        outcome,
        reason,
        certificate=state.deployed.get(record.name),
        features=state.features.get(record.name),
        check=check,
        cdn_status=record.cdn_status,
        error_code=error_code,
    )


def _planned(state: _Run, record: DomainRecord) -> DomainResult:
    plan: dict[str, Any] = {"httpsVerified": state.verified.get(record.name, False)}
    if record.name in state.candidates:
        plan["deployCertificate"] = state.candidates[record.name]
    features = state.features.get(record.name)
    if features is not None:
        plan["deleteConfigs"] = list(features.deleted)
        plan["setFeatures"] = [n.value for n in features.set]
    bucket = state.buckets.get(record.bucket or "")
    if bucket is not None:
        plan["bucket"] = bucket.outcome.value
    return DomainResult(
        record.name,
        record.route.value,
        record.bucket,
        DomainOutcome.PLANNED,
        DomainReason.WOULD_ENFORCE,
        certificate=state.candidates.get(record.name),
        cdn_status=record.cdn_status,
        planned=plan,
    )


def _status(state: _Run) -> EnforceStatus:
    if state.dry_run:
        return EnforceStatus.DRY_RUN
    good_domains = (DomainOutcome.ENFORCED, DomainOutcome.ALREADY_ENFORCED, DomainOutcome.SKIPPED)
    good_buckets = (
        BucketOutcome.ENFORCED,
        BucketOutcome.ALREADY_ENFORCED,
        BucketOutcome.SKIPPED,
    )
    domains = list(state.results.values())
    buckets = list(state.buckets.values())
    bad = [d for d in domains if d.outcome not in good_domains] + [
        b for b in buckets if b.outcome not in good_buckets
    ]
    wrote = any(d.outcome is DomainOutcome.ENFORCED for d in domains) or any(
        b.outcome is BucketOutcome.ENFORCED for b in buckets
    )
    if not bad:
        return EnforceStatus.ENFORCED if wrote else EnforceStatus.NOTHING_TO_DO
    some = any(
        d.outcome in (DomainOutcome.ENFORCED, DomainOutcome.ALREADY_ENFORCED) for d in domains
    ) or any(b.outcome in (BucketOutcome.ENFORCED, BucketOutcome.ALREADY_ENFORCED) for b in buckets)
    return EnforceStatus.PARTIAL if some else EnforceStatus.NOT_ENFORCED
