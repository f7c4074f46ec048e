"""Apply CDN feature plans (`features`) and confirm them: the thin, I/O side.

Order per run: every `http_force` is deleted first (DeleteSpecificConfig: it excludes
`https_force`), then the features go out with BatchSetCdnDomainConfig, one call for up
to 50 domains that need the very same change (the adapter keeps the call under its
3-a-second limit), then DescribeCdnDomainConfigs is read until every wanted feature is
`success` with the arguments certpilot owns (extras the service adds are ignored).

A domain busy with an earlier change answers `ServiceBusy` (it is `configuring` until
that change reached its edge): the write is sent again after a growing pause while the
caller's time allows. A write that fails otherwise is settled by reading the configs
back: a change the service applied despite the error counts as written.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Protocol

from certpilot.core.cloudtypes import CdnConfig, CdnConfigRef, CdnFunction
from certpilot.core.errors import CloudError
from certpilot.core.log import event
from certpilot.jobs.deploy_cert.apply import ApplyOptions, _BusyRetry, _StillBusy
from certpilot.jobs.enforce_https.features import (
    Batch,
    Configured,
    DomainFeaturePlan,
    FeatureName,
    FeaturePrefs,
    State,
    Wanted,
    batches,
    state_of,
)
from certpilot.jobs.enforce_https.guard import OriginScheme

# Every feature read back per domain: ours, http_force (to delete) and forward_scheme.
READ_FEATURES = tuple(f.value for f in FeatureName)
BUSY_PAUSE = 0.2
BUSY_MAX_PAUSE = 5.0
CONFIRM_MAX_INTERVAL = 1.0
CONFIRM_READERS = 8  # DescribeCdnDomainConfigs reads at once while confirming


class CdnConfigs(Protocol):
    """The CDN calls feature enforcement needs (`certpilot.cloud.cdn.CdnAdapter`)."""

    def domain_configs(self, domain: str, function_names: Iterable[str]) -> list[CdnConfig]: ...

    def set_configs(
        self, domains: Sequence[str], functions: Sequence[CdnFunction]
    ) -> list[CdnConfigRef]: ...

    def delete_config(self, domain: str, config_id: str | int) -> None: ...


class FeatureOutcome(str, enum.Enum):
    """How one domain's features ended."""

    IN_PLACE = "in-place"  # nothing to change: every wanted feature already there
    APPLIED = "applied"  # written and confirmed `success`
    UNCONFIRMED = "unconfirmed"  # written, not `success` by the deadline
    FAILED = "failed"  # the cloud refused a write (and the read-back shows it missing)


@dataclass(frozen=True)
class FeatureResult:
    """What happened to one domain's features."""

    domain: str
    outcome: FeatureOutcome
    deleted: tuple[str, ...] = ()  # ConfigIds deleted (http_force)
    set: tuple[FeatureName, ...] = ()
    missing: tuple[FeatureName, ...] = ()  # not confirmed (UNCONFIRMED / FAILED)
    error_code: str | None = None
    busy_refusals: int = 0

    @property
    def ok(self) -> bool:
        """True when every wanted feature is confirmed in place."""
        return self.outcome in (FeatureOutcome.IN_PLACE, FeatureOutcome.APPLIED)


@dataclass
class _Track:
    plan: DomainFeaturePlan
    error_code: str | None = None
    busy: int = 0
    deleted: list[str] = field(default_factory=list)


def configured(configs: Iterable[CdnConfig]) -> tuple[Configured, ...]:
    """The adapter's configs as `features.Configured` values."""
    return tuple(Configured(c.config_id, c.function_name, c.status, dict(c.args)) for c in configs)


def read_configured(cdn: CdnConfigs, domain: str) -> tuple[Configured, ...]:
    """Every feature of `domain` enforce-https looks at (DescribeCdnDomainConfigs).

    Raises:
        CloudError: the read failed.
    """
    return configured(cdn.domain_configs(domain, READ_FEATURES))


def origin_scheme(configs: Iterable[Configured]) -> OriginScheme:
    """How the domain fetches its origin: `forward_scheme`'s `scheme_origin` (switched
    on), else CDN's default, plain HTTP."""
    for config in configs:
        if config.name != FeatureName.FORWARD_SCHEME.value:
            continue
        if config.args.get("enable", "on").strip().lower() != "on":
            return OriginScheme.DEFAULT
        value = config.args.get("scheme_origin", "follow").strip().lower()
        try:
            return OriginScheme(value)
        except ValueError:
            return OriginScheme.DEFAULT
    return OriginScheme.DEFAULT


def forces_https(configs: Iterable[Configured]) -> bool:
    """True when `https_force` is switched on (whatever its status)."""
    return any(
        c.name == FeatureName.HTTPS_FORCE.value and c.args.get("enable", "").lower() == "on"
        for c in configs
    )


def feature_prefs(
    features: Iterable[str], *, hsts_max_age: int, hsts_include_subdomains: bool
) -> FeaturePrefs:
    """`FeaturePrefs` from the settings' feature names (`CERTPILOT_CDN_FEATURES`)."""
    chosen = set(features)
    return FeaturePrefs(
        https_force="https_force" in chosen,
        hsts="hsts" in chosen,
        hsts_max_age=hsts_max_age,
        hsts_include_subdomains=hsts_include_subdomains,
        http2="http2" in chosen,
        gzip="gzip" in chosen,
    )


def _wire(wanted: Wanted) -> CdnFunction:
    return CdnFunction(wanted.name.value, wanted.arg_map)


class _Busy:
    """deploy-cert's busy retry (`_BusyRetry`) for config writes: ServiceBusy is waited
    out with growing pauses (at least what the service asked for) until `stop`; after
    each busy answer `done()` re-reads the configs first, since the busy answer may come
    from our own earlier attempt that was applied."""

    def __init__(
        self,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        stop: float,
        log: logging.Logger,
    ) -> None:
        options = ApplyOptions(busy_pause=BUSY_PAUSE, busy_max_pause=BUSY_MAX_PAUSE)
        self.retry = _BusyRetry(options, clock, sleep, log)
        self.stop = stop

    def call(self, write: Callable[[], None], domain: str, done: Callable[[], bool]) -> int:
        """Run `write` until it is not refused as busy; how many refusals it took.

        Raises:
            CloudError: any other failure, or still busy at `stop` (the BusyError).
        """
        try:
            refusals, _earlier = self.retry.run(
                write, self.stop, domain, done, give_up_unknown=True
            )
        except _StillBusy as still:
            raise still.error from None
        return refusals


def apply_features(
    cdn: CdnConfigs,
    plans: Sequence[DomainFeaturePlan],
    *,
    deadline: float,
    log: logging.Logger,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    seen: dict[str, tuple[Configured, ...]] | None = None,
) -> dict[str, FeatureResult]:
    """Delete, set and confirm the features `plans` ask for; one result per domain.

    `deadline` (a `clock` time) bounds the busy retries and the confirmation. `seen`,
    when given, receives the configs each domain's confirmation read last. Never
    raises for one domain's failure.
    """
    writer = FeatureWriter(cdn, deadline=deadline, log=log, clock=clock, sleep=sleep)
    writer.send(plans)
    return writer.confirm(seen)


class FeatureWriter:
    """`apply_features` in steps: plans are sent as they become known (`send`, any
    number of times), then every domain sent is confirmed at once (`confirm`)."""

    def __init__(
        self,
        cdn: CdnConfigs,
        *,
        deadline: float,
        log: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cdn = cdn
        self.deadline = deadline
        self.log = log
        self.clock = clock
        self.sleep = sleep
        self.busy = _Busy(clock, sleep, deadline, log)
        self.tracks: dict[str, _Track] = {}

    def send(self, plans: Sequence[DomainFeaturePlan]) -> None:
        """Delete `http_force` where asked, then write the features of `plans`, as few
        calls as `features.batches` allows. Never raises for one domain's failure."""
        cdn, busy, log = self.cdn, self.busy, self.log
        tracks = {p.domain: _Track(p) for p in plans}
        self.tracks.update(tracks)
        for track in tracks.values():
            if not track.plan.delete:
                continue
            domain, ids = track.plan.domain, ",".join(track.plan.delete)

            def delete(d: str = domain, i: str = ids) -> None:
                cdn.delete_config(d, i)

            def deleted(d: str = domain) -> bool:
                return not any(
                    c.name == FeatureName.HTTP_FORCE.value for c in read_configured(cdn, d)
                )

            try:
                track.busy += busy.call(delete, domain, deleted)
                track.deleted.extend(track.plan.delete)
            except CloudError as error:
                track.error_code = error.code or type(error).__name__
                event(
                    log,
                    "http_force not deleted",
                    level=logging.WARNING,
                    domain=domain,
                    error=track.error_code,
                )
        ready = [t.plan for t in tracks.values() if t.error_code is None]
        for batch in batches(ready):
            functions = [_wire(w) for w in batch.features]

            def write(
                names: Sequence[str] = batch.domains, f: Sequence[CdnFunction] = functions
            ) -> None:
                cdn.set_configs(names, f)

            def written(b: Batch = batch) -> bool:
                return all(
                    state_of(w, read_configured(cdn, d)) is not State.MISSING
                    for d in b.domains
                    for w in b.features
                )

            try:
                refusals = busy.call(write, ",".join(batch.domains), written)
                for domain in batch.domains:
                    tracks[domain].busy += refusals
            except CloudError as error:
                # The read-back in `confirm` settles whether it was applied all the same.
                event(
                    log,
                    "feature write failed",
                    level=logging.WARNING,
                    domains=list(batch.domains),
                    error=error.code,
                )
                for domain in batch.domains:
                    tracks[domain].error_code = error.code or type(error).__name__

    def confirm(
        self, seen: dict[str, tuple[Configured, ...]] | None = None
    ) -> dict[str, FeatureResult]:
        """Read back every domain sent until it is in place, failed, or out of time
        (`apply_features`); one result per domain."""
        return _confirm(
            self.cdn,
            self.tracks,
            deadline=self.deadline,
            clock=self.clock,
            sleep=self.sleep,
            seen=seen,
        )


def _confirm(
    cdn: CdnConfigs,
    tracks: Mapping[str, _Track],
    *,
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    seen: dict[str, tuple[Configured, ...]] | None = None,
) -> dict[str, FeatureResult]:
    """Read the pending domains' configs in rounds until each is in place, failed, or
    out of time. A round reads the domains in the order they were written,
    `CONFIRM_READERS` at a time, and stops at the first group that still has one
    configuring: the domains written after it were written later and settle later, so
    reading them now would only spend DescribeCdnDomainConfigs' QPS (the round that
    meets the deadline reads every one)."""
    results: dict[str, FeatureResult] = {}
    pending = dict(tracks)
    interval = 0.1
    while pending:
        final = clock() + interval > deadline
        names = list(pending)
        for start in range(0, len(names), CONFIRM_READERS):
            group = names[start : start + CONFIRM_READERS]
            read = _read_all(cdn, group)
            waiting = False
            for domain in group:
                now = read[domain]
                if now is not None and seen is not None:
                    seen[domain] = now
                result = _judge(pending[domain], now, final=final)
                if result is None:
                    waiting = True
                else:
                    results[domain] = result
                    del pending[domain]
            if waiting and not final:
                break
        if pending:
            sleep(interval)
            interval = min(interval * 2, CONFIRM_MAX_INTERVAL)
    return results


def _read_all(cdn: CdnConfigs, domains: Sequence[str]) -> dict[str, tuple[Configured, ...] | None]:
    """The configs of each of `domains`, read side by side (None: the read failed)."""

    def read(domain: str) -> tuple[Configured, ...] | None:
        try:
            return read_configured(cdn, domain)
        except CloudError:
            return None

    if len(domains) <= 1:
        return {d: read(d) for d in domains}
    with ThreadPoolExecutor(len(domains), thread_name_prefix="confirm") as pool:
        return dict(zip(domains, pool.map(read, domains), strict=True))


def _judge(
    track: _Track, now: tuple[Configured, ...] | None, *, final: bool
) -> FeatureResult | None:
    """One domain's result from its configs as read (`now`; None: unreadable), or None
    while it is still worth waiting for."""
    wanted = (*track.plan.set, *track.plan.pending)
    states = {w.name: state_of(w, now) for w in wanted} if now is not None else {}
    missing = tuple(n for n, s in states.items() if s is not State.IN_PLACE)
    if now is not None and not missing:
        written = bool(track.plan.set or track.deleted)
        return FeatureResult(
            track.plan.domain,
            FeatureOutcome.APPLIED if written else FeatureOutcome.IN_PLACE,
            tuple(track.deleted),
            tuple(w.name for w in track.plan.set),
            error_code=track.error_code,
            busy_refusals=track.busy,
        )
    absent = now is not None and any(s is State.MISSING for s in states.values())
    if final or (track.error_code is not None and absent):
        return FeatureResult(
            track.plan.domain,
            FeatureOutcome.FAILED if absent else FeatureOutcome.UNCONFIRMED,
            tuple(track.deleted),
            tuple(w.name for w in track.plan.set),
            missing=missing or tuple(w.name for w in wanted),
            error_code=track.error_code,
            busy_refusals=track.busy,
        )
    return None


def with_origin_switch(plan: DomainFeaturePlan, switch: Wanted | None) -> DomainFeaturePlan:
    """`plan` with the origin switch added to what is set (None: unchanged)."""
    if switch is None or switch in plan.set:
        return plan
    return replace(plan, set=(*plan.set, switch))
