"""Carry out a `Plan`: deploy on each domain, verify from outside, roll back on failure.

Phases, not one domain after the other: every write first (concurrently; the adapters
keep every call under its QPS limit and retry throttling and 5xx themselves), then the
verification of all written domains in probing rounds, then the rollbacks, then a
check of the restored state. Waiting for the edge (about a minute on CDN) so never
holds a write: a run takes about the writes' QPS time plus one propagation, not
domains x propagation / workers. One domain's failure never stops the others: every
domain of the plan ends with exactly one `DomainResult`.

A write that raised any CloudError is settled by re-reading the binding (an earlier
attempt of the adapter's retry loop may have been applied, even when the last one was
throttled or refused): if ours is bound the domain goes on to verification like any
other; if the re-read fails too, the domain counts as written and is verified as usual
(a rollback is safe: OSS rollbacks are conditional on PreviousCertId = ours, a CDN
restore puts back the state the plan saw). Before a rollback the binding is checked
too (CDN: re-read first, it has no conditional write; OSS: the write itself is
conditional on PreviousCertId = ours): a domain on which another certificate was set
meanwhile (another run) is not rolled back but reported `skipped` with reason
`superseded`; a CDN re-read that fails does not stop the rollback.

Every result carries a typed `Reason` (`certpilot.core.outcomes`) and the `Note`s of
what re-reads showed; the words are rendered by `certpilot.jobs.deploy_cert.summary`.

A domain busy with an earlier change (CDN `ServiceBusy`: it is `configuring` until
that change has reached every edge node, about a minute) is written, or rolled back,
once it is free: the write or rollback is retried (`_BusyRetry`) within the run's time
budget. A write still refused at the end of it is `skipped` with reason `busy`; a
rollback, `failed` (`rollback-failed`) with error code `ServiceBusy`.

Verification and the restore check judge a domain on `verify_consecutive` consecutive
handshakes that all agree (`probe.tls.Watch.consecutive`): a CDN edge serves the old
and the new certificate side by side, node by node, while a change propagates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from certpilot.core.cloudtypes import CnameInfo
from certpilot.core.errors import (
    BusyError,
    CertpilotError,
    CloudError,
    ConflictError,
    ThrottledError,
    TransientError,
)
from certpilot.core.log import event, get_logger, with_context
from certpilot.core.model import DeployedCert, Route
from certpilot.core.names import normalize_domain
from certpilot.core.outcomes import (
    Binding,
    BindingState,
    CallError,
    Note,
    NoteKind,
    Outcome,
    Reason,
    ReasonCode,
)
from certpilot.jobs.deploy_cert.plan import Action, Plan, Rollback, Skip
from certpilot.probe.tls import (
    VERIFY_WORKERS,
    ServedCert,
    Verification,
    Watch,
    certificate_problem,
    edge_address,
    poll_rounds,
    probe_name,
    rollback_problem,
)


class OssBinder(Protocol):
    """The part of `adapters.oss.OssAdapter` that apply uses."""

    def bind_certificate(
        self,
        bucket: str,
        region: str,
        domain: str,
        cert_identifier: str,
        previous_identifier: str | None,
    ) -> None: ...

    def unbind_certificate(
        self, bucket: str, region: str, domain: str, previous_identifier: str | None
    ) -> None: ...

    def list_cnames(self, bucket: str, region: str) -> Sequence[CnameInfo]: ...


class CdnSetter(Protocol):
    """The part of `adapters.cdn.CdnAdapter` that apply uses."""

    def set_certificate(self, domain: str, cas_id: int, region: str) -> None: ...

    def disable_certificate(self, domain: str) -> None: ...

    def certificate_info(self, domain: str) -> DeployedCert | None: ...


class IncompletePlan(CertpilotError):
    """An action lacks what its write needs (an OSS action without bucket or region)."""


@dataclass(frozen=True)
class ApplyOptions:
    """How to apply: pool size, and whether and how long to verify."""

    concurrency: int = 8
    verify: bool = True
    verify_deadline: float = 120.0
    edge_https: str | None = None
    ca_bundle: str | None = None
    probe_timeout: float = 5.0  # connecting
    probe_read_timeout: float | None = None  # each wait for the edge; None: probe_timeout
    verify_workers: int = VERIFY_WORKERS  # handshakes at once in a verification round
    # The run's own deadline, a time of `apply_plan`'s clock (FC: its timeout minus a
    # margin); None: no budget. See `_Budget` for how it is shared out.
    deadline: float | None = None
    # Consecutive consistent handshakes that verify a domain (and its restore).
    verify_consecutive: int = 3
    # How long a write or a rollback waits out `ServiceBusy` (the domain is configuring),
    # at most: capped by the run's budget; pauses start at `busy_pause` and double up
    # to `busy_max_pause` (or what the service asked for, if it did).
    busy_wait: float = 120.0
    busy_pause: float = 0.5
    busy_max_pause: float = 5.0


@dataclass(frozen=True)
class DomainResult:
    """The end state of one domain."""

    domain: str
    outcome: Outcome
    route: Route | None
    reason: Reason
    error_code: str | None = None  # the cloud's error code (or ours: VerifyFailed, ...)
    cert_id: int | None = None
    previous_cert_id: int | None = None
    verified: bool | None = None  # None: not verified (dry run or verification off)
    # After a rollback: what it did (restore the previous certificate, or remove ours),
    # whether the edge was seen serving the restored state (None when nothing was rolled
    # back), and what the probe saw when it was not.
    rollback: Rollback | None = None
    restored_verified: bool | None = None
    restore_problem: str | None = None
    # The leaf the edge served at the last verification or restore probe (SHA-256, upper
    # hex); None when not probed or no certificate was served.
    served_sha256: str | None = None
    notes: tuple[Note, ...] = ()  # what re-reads of the binding showed
    attempts: int = 0
    seconds: float = 0.0


_LOG = get_logger(__name__)
# How long to watch the edge after a rollback: the verification deadline, but at least
# MIN_RESTORE_WAIT (a rollback that lands after the new certificate reached the edge needs
# one more propagation, however short the deadline was set) and at most MAX_RESTORE_WAIT
# (the restore is best effort: a domain must not hold the whole invocation twice over).
# The watch ends as soon as the restored state is seen.
MIN_RESTORE_WAIT = 5.0
MAX_RESTORE_WAIT = 30.0
Prober = Callable[[str], ServedCert]
# What the rollbacks of a run may take (their writes, retried under QPS), kept free at
# the end of a run with a deadline.
ROLLBACK_ALLOWANCE = 15.0
# Errors after which a write may have been applied all the same: a timeout or 5xx
# (after retries), or a conflict that our own earlier attempt may have caused.
UNCERTAIN = (TransientError, ConflictError)
# Errors of a write whose re-read is worth noting in the reason: the above, and a
# throttled answer after retries (an earlier attempt of the retry loop may have applied).
_UNSURE_WRITE = (*UNCERTAIN, ThrottledError)


def skip_result(skip: Skip) -> DomainResult:
    """The result of a domain the plan leaves alone."""
    if skip.reason.code is ReasonCode.ALREADY_CURRENT:
        return DomainResult(skip.domain, Outcome.ALREADY_CURRENT, skip.route, skip.reason)
    return DomainResult(skip.domain, Outcome.SKIPPED, skip.route, skip.reason)


def apply_plan(
    plan: Plan,
    oss: OssBinder,
    cdn: CdnSetter,
    options: ApplyOptions,
    *,
    log: logging.Logger = _LOG,
    probe: Prober | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[DomainResult, ...]:
    """Deploy every action of `plan`; skipped domains get their result as they are.

    In phases, so that waiting for the edge never holds a write: (1) every write,
    concurrently (a pool per route of `options.concurrency`, each call paced by the
    adapters' QPS limiter); (2) verification of the written domains in probing rounds
    (`probe.poll_rounds`), each domain within `options.verify_deadline` of its own
    write; (3) the rollback of those that did not verify, concurrently; (4) a best
    effort check (`MAX_RESTORE_WAIT`) that the edge serves the restored state.
    With `options.deadline` the phases share the run's time (`_Budget`): the verify
    deadline and the restore wait are capped so that all of it fits, and a write is
    not started (reported `skipped`, reason `out-of-time`) once too little time is left
    to verify it and roll it back.
    `probe`, `clock` and `sleep` replace the live handshake and time (tests).
    Never raises for a domain's failure. Results come in the plan's domain order.
    """
    results: dict[str, DomainResult] = {s.domain: skip_result(s) for s in plan.skipped}
    if plan.actions:
        rollout = _Rollout(plan, oss, cdn, options, log, probe, clock, sleep)
        results.update(rollout.run())
    return tuple(results[name] for name in sorted(results))


class _OutOfTime(CertpilotError):
    """Not written: too little time left to verify and roll back."""


class _StillBusy(CertpilotError):
    """Not written (or not rolled back): the domain stayed busy (ServiceBusy) for all
    the time it had."""

    def __init__(self, error: BusyError, waited: float, refusals: int) -> None:
        super().__init__(f"{error.action} answered {error.code} {refusals} times")
        self.error = error
        self.waited = waited
        self.refusals = refusals


class _BusyRetry:
    """Runs a write (or rollback) again while the service answers ServiceBusy, pausing
    `busy_pause` doubling to `busy_max_pause` (at least any retry-after the answer
    carried), until `stop` (a clock time) would be crossed.

    A busy answer may come from our own earlier attempt: the adapter retries a call
    whose answer was lost, and the attempt that was applied put the domain in
    `configuring`. So after each busy answer `done()` (a re-read of the binding) is
    asked first: when the binding already shows what the call sets, it is not sent
    again. When the re-read fails, a write stops waiting (`give_up_unknown`: the caller
    settles an unknown outcome its usual way, verifying it as written) rather than
    re-sending, and so re-propagating, a write that may already be ours; a rollback
    keeps waiting: restoring the state the plan saw is right either way."""

    def __init__(
        self,
        options: ApplyOptions,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        log: logging.Logger,
    ) -> None:
        self.options = options
        self.clock = clock
        self.sleep = sleep
        self.log = log

    def run(
        self,
        call: Callable[[], None],
        stop: float,
        domain: str,
        done: Callable[[], bool],
        *,
        give_up_unknown: bool,
    ) -> tuple[int, bool]:
        """`call()` until it is not refused as busy; returns how many refusals it took,
        and whether `done()` found it applied by an earlier attempt.

        Raises:
            _StillBusy: still busy, and the next pause would end past `stop`.
            CloudError: any other failure, as raised.
        """
        pause = self.options.busy_pause
        refusals = 0
        began = self.clock()
        while True:
            try:
                call()
                return refusals, False
            except BusyError as error:
                refusals += 1
                try:
                    if done():
                        return refusals, True
                except CloudError:
                    if give_up_unknown:
                        raise _StillBusy(error, self.clock() - began, refusals) from None
                wait = max(pause, error.retry_after or 0.0)
                if self.clock() + wait > stop:
                    raise _StillBusy(error, self.clock() - began, refusals) from None
                event(
                    self.log,
                    "domain busy: retrying",
                    domain=domain,
                    action=error.action,
                    refusals=refusals,
                    wait=round(wait, 3),
                )
                self.sleep(wait)
                pause = min(pause * 2, self.options.busy_max_pause)


@dataclass(frozen=True)
class _Budget:
    """How a run with a deadline shares its time: writes, then verification, then
    `ROLLBACK_ALLOWANCE` for rollbacks and `restore_wait` to check them at the edge."""

    verify: float  # seconds to verify a domain, from its write
    restore_wait: float  # seconds to watch a restore, from the rollback
    deadline: float | None  # clock time the run must end by (None: no budget)

    @classmethod
    def of(cls, options: ApplyOptions, now: float) -> _Budget:
        verify = options.verify_deadline
        restore = min(max(verify, MIN_RESTORE_WAIT), MAX_RESTORE_WAIT)
        if options.deadline is None:
            return cls(verify, restore, None)
        remaining = max(0.0, options.deadline - now)
        restore = min(restore, remaining / 6)
        # What is left after the rollbacks' share: half for writes, half for verifying.
        verify = min(verify, max(0.0, (remaining - ROLLBACK_ALLOWANCE - restore) / 2))
        return cls(verify, restore, options.deadline)

    @property
    def verify_stop(self) -> float | None:
        """The clock time verification must end by (None: no budget)."""
        if self.deadline is None:
            return None
        return self.deadline - ROLLBACK_ALLOWANCE - self.restore_wait

    def can_write(self, now: float, *, verify: bool) -> bool:
        """Whether a write started at `now` leaves time to verify and roll it back."""
        stop = self.write_stop(verify=verify)
        return stop is None or now <= stop

    def write_stop(self, *, verify: bool) -> float | None:
        """The last clock time a write may start at (None: no budget)."""
        if self.deadline is None:
            return None
        need = self.verify + ROLLBACK_ALLOWANCE + self.restore_wait if verify else 0.0
        return self.deadline - need

    @property
    def rollback_stop(self) -> float | None:
        """The clock time rollbacks must be done by, leaving the restore check its time."""
        if self.deadline is None:
            return None
        return self.deadline - self.restore_wait


@dataclass
class _Track:
    """Where one action stands between phases."""

    action: Action
    started: float = 0.0  # when its write was sent
    written: float = 0.0  # when the cloud accepted it
    verification: Verification | None = None
    undone: float = 0.0  # when the rollback was accepted
    notes: list[Note] = field(default_factory=list)  # what re-reads showed
    superseded: Binding | None = None  # what another run bound meanwhile: not rolled back

    def failed_verification(
        self, code: ReasonCode, *, bound: Binding | None = None, error: CallError | None = None
    ) -> Reason:
        """`code` with what the failed verification saw and how long it waited."""
        verification = self.verification
        return Reason(
            code,
            problem=verification.reason if verification else None,
            waited=verification.elapsed if verification else None,
            bound=bound,
            error=error,
        )


class _Rollout:
    """The phases of `apply_plan` over one plan's actions."""

    def __init__(
        self,
        plan: Plan,
        oss: OssBinder,
        cdn: CdnSetter,
        options: ApplyOptions,
        log: logging.Logger,
        probe: Prober | None,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.fingerprint = plan.cert.fingerprint_sha256
        self.actions = plan.actions
        self.oss, self.cdn = oss, cdn
        self.options = options
        self.log = log
        self.probe = probe
        self.clock = clock
        self.sleep = sleep
        self.results: dict[str, DomainResult] = {}
        self.budget = _Budget.of(options, clock())
        self.busy = _BusyRetry(options, clock, sleep, log)

    def _busy_stop(self, started: float, budget_stop: float | None) -> float:
        """Until when a busy domain is waited for: `busy_wait` from `started`, and
        never past the budget's own stop."""
        stop = started + self.options.busy_wait
        return stop if budget_stop is None else min(stop, budget_stop)

    def run(self) -> dict[str, DomainResult]:
        written = self._write_all()
        if not self.options.verify:
            for track in written:
                self._finish(track, Outcome.DEPLOYED, track.action.reason)
            return self.results
        failed = self._verify(written)
        restorable = self._roll_back_all(failed)
        self._check_restored(restorable)
        return self.results

    # -- phase 1: writes ------------------------------------------------------------

    def _write_all(self) -> list[_Track]:
        tracks = [_Track(action) for action in self.actions]
        errors = self._concurrently(tracks, self._write)
        written = []
        for track in tracks:
            error = errors[track.action.domain]
            if error is None:
                written.append(track)
            elif isinstance(error, _OutOfTime):
                self._finish(track, Outcome.SKIPPED, Reason(ReasonCode.OUT_OF_TIME))
            elif isinstance(error, _StillBusy):
                reason = Reason(ReasonCode.BUSY, error=_call(error.error), waited=error.waited)
                self._finish(track, Outcome.SKIPPED, reason, error.error.code)
            else:
                reason, code = _failure(ReasonCode.WRITE_FAILED, error)
                self._finish(track, Outcome.FAILED, reason, code)
        event(self.log, "writes done", written=len(written), failed=len(tracks) - len(written))
        return written

    def _write(self, track: _Track) -> None:
        track.started = self.clock()
        if not self.budget.can_write(track.started, verify=self.options.verify):
            raise _OutOfTime(
                "not written: too little of the run's time left to verify and roll it back"
            )
        stop = self._busy_stop(track.started, self.budget.write_stop(verify=self.options.verify))
        action = track.action
        try:
            refusals, earlier = self.busy.run(
                lambda: _deploy(action, self.oss, self.cdn),
                stop,
                action.domain,
                lambda: binding_key(read_binding(action, self.oss, self.cdn)) == _ours(action),
                give_up_unknown=True,
            )
        except _StillBusy as still:
            if not self._applied_anyway(track, still.error):
                raise
        except CloudError as error:
            if not self._applied_anyway(track, error):
                raise
        else:
            busy = CallError(_deploy_action(action), "ServiceBusy")
            if refusals:
                track.notes.append(Note(NoteKind.BUSY_WAITED, busy, count=refusals))
            if earlier:
                bound = Binding(BindingState.CERTIFICATE, _ours(action))
                track.notes.append(Note(NoteKind.APPLIED_DESPITE_ERROR, busy, bound=bound))
        track.written = self.clock()

    def _applied_anyway(self, track: _Track, error: CloudError) -> bool:
        """After a write that raised: whether to treat it as written (notes why).

        True when the binding shows ours, or when it cannot be read either (then the
        domain is verified as usual, and rolled back if the edge does not serve ours).
        """
        action = track.action
        try:
            bound = read_binding(action, self.oss, self.cdn)
        except CloudError as reread:
            # Whether the write was applied is unknown: verified as if written.
            self._note_error(
                track,
                Note(NoteKind.OUTCOME_UNKNOWN, _call(error), reread=_call(reread)),
                "write outcome unknown: verifying it as written",
                error,
                reread=reread.code,
            )
            return True
        if binding_key(bound) != _ours(action):
            if isinstance(error, _UNSURE_WRITE):
                track.notes.append(Note(NoteKind.OTHER_BOUND, _call(error), bound=bound))
            return False
        self._note_error(
            track,
            Note(NoteKind.APPLIED_DESPITE_ERROR, _call(error), bound=bound),
            "write applied despite its error",
            error,
        )
        return True

    def _note_error(
        self, track: _Track, note: Note, message: str, error: CloudError, **fields: Any
    ) -> None:
        """Keep `note` on the domain's record and log `message` as a warning naming the
        call that erred (`error`'s action and code) and any further `fields`."""
        track.notes.append(note)
        event(
            self.log,
            message,
            level=logging.WARNING,
            domain=track.action.domain,
            action=error.action,
            code=error.code,
            **fields,
        )

    def _concurrently(
        self, tracks: Sequence[_Track], step: Callable[[_Track], None]
    ) -> dict[str, BaseException | None]:
        """Run `step` on every track, a pool per route (one service's QPS limit must
        not hold the other's calls); each worker keeps the caller's log context."""
        by_route: dict[Route, list[_Track]] = {}
        for track in tracks:
            by_route.setdefault(track.action.route, []).append(track)
        errors: dict[str, BaseException | None] = {}
        pools = [
            ThreadPoolExecutor(
                max(1, min(self.options.concurrency, len(group))),
                thread_name_prefix=f"deploy-{route.value}",
            )
            for route, group in by_route.items()
        ]
        try:
            futures = [
                (track, pool.submit(with_context(step), track))
                for pool, group in zip(pools, by_route.values(), strict=True)
                for track in group
            ]
            for track, future in futures:
                errors[track.action.domain] = future.exception()
        finally:
            for pool in pools:
                pool.shutdown(wait=True)
        return errors

    # -- phase 2: verification --------------------------------------------------------

    def _verify(self, written: list[_Track]) -> list[_Track]:
        """Watch every written domain in rounds; returns those that did not verify."""
        by_domain = {track.action.domain: track for track in written}
        watches = {
            domain: Watch(
                probe_name(domain),
                certificate_problem(self.fingerprint),
                track.written,
                self._capped(self.budget.verify, track.written, self.budget.verify_stop),
                self._edge(track.action),
                consecutive=self.options.verify_consecutive,
            )
            for domain, track in by_domain.items()
        }
        failed: list[_Track] = []

        def settle(domain: str, verification: Verification) -> None:
            track = by_domain[domain]
            track.verification = verification
            if verification.ok:
                self._finish(track, Outcome.DEPLOYED, track.action.reason)
                return
            failed.append(track)

        self._poll(watches, settle, self.budget.verify_stop)
        event(
            self.log,
            "verification done",
            verified=len(written) - len(failed),
            failed=len(failed),
            rounds=max((t.verification.attempts for t in written if t.verification), default=0),
        )
        restorable = []
        for track in failed:
            action, verification = track.action, track.verification
            assert verification is not None
            event(
                self.log,
                "verification failed",
                level=logging.WARNING,
                domain=action.domain,
                reason=verification.reason,
            )
            if action.rollback is Rollback.NONE:
                # The previous certificate is not held in CAS: it cannot be restored.
                self._finish(
                    track,
                    Outcome.FAILED,
                    track.failed_verification(ReasonCode.VERIFY_FAILED),
                    VERIFY_FAILED,
                    rollback=Rollback.NONE,
                )
            else:
                restorable.append(track)
        return restorable

    def _edge(self, action: Action) -> str | None:
        """Where `action`'s domain is probed: the override, else its own edge host."""
        return edge_address(action.edge_host, self.options.edge_https)

    @staticmethod
    def _capped(seconds: float, started: float, stop: float | None) -> float:
        """`seconds` from `started`, but not past `stop` (a clock time)."""
        return seconds if stop is None else max(0.0, min(seconds, stop - started))

    def _poll(
        self,
        watches: Mapping[str, Watch],
        on_result: Callable[[str, Verification], None],
        stop_at: float | None,
    ) -> None:
        if not watches:
            return
        poll_rounds(
            watches,
            edge=self.options.edge_https,
            ca_bundle=self.options.ca_bundle,
            timeout=self.options.probe_timeout,
            read_timeout=self.options.probe_read_timeout,
            workers=self.options.verify_workers,
            probe=self.probe,
            clock=self.clock,
            sleep=self.sleep,
            on_result=on_result,
            stop_at=stop_at,
        )

    # -- phase 3: rollbacks -----------------------------------------------------------

    def _roll_back_all(self, failed: list[_Track]) -> list[_Track]:
        """Roll back every domain that did not verify; returns those rolled back."""
        if not failed:
            return []
        errors = self._concurrently(failed, self._undo)
        undone = []
        for track in failed:
            error = errors[track.action.domain]
            if error is None and track.superseded is not None:
                self._finish(
                    track,
                    Outcome.SKIPPED,
                    track.failed_verification(ReasonCode.SUPERSEDED, bound=track.superseded),
                )
            elif error is None:
                undone.append(track)
            else:
                failure, code = _failure(ReasonCode.ROLLBACK_FAILED, error)
                reason = track.failed_verification(ReasonCode.ROLLBACK_FAILED, error=failure.error)
                self._finish(track, Outcome.FAILED, reason, code, rollback=track.action.rollback)
        return undone

    def _undo(self, track: _Track) -> None:
        """Roll one domain back, unless another certificate was set on it meanwhile."""
        action = track.action
        ours = _ours(action)
        if action.route is Route.CDN:
            # CDN has no conditional write: look first (a narrow window remains). A look
            # that fails does not stop the rollback: restoring the state the plan saw is
            # right unless the binding positively shows someone else's certificate.
            try:
                bound = read_binding(action, self.oss, self.cdn)
            except CloudError as error:
                # Rolled back to the state the plan saw.
                self._note_error(
                    track,
                    Note(NoteKind.BINDING_UNKNOWN, _call(error)),
                    "binding unknown before rollback: rolling back anyway",
                    error,
                )
            else:
                if binding_key(bound) != ours:
                    self._supersede(track, bound)
                    return
        stop = self._busy_stop(self.clock(), self.budget.rollback_stop)
        try:
            refusals, _ = self.busy.run(
                lambda: _roll_back(action, self.oss, self.cdn),
                stop,
                action.domain,
                lambda: (
                    binding_key(read_binding(action, self.oss, self.cdn))
                    == _rollback_target(action)
                ),
                give_up_unknown=False,
            )
            if refusals:
                busy = CallError(_deploy_action(action), "ServiceBusy")
                track.notes.append(Note(NoteKind.BUSY_WAITED, busy, count=refusals))
        except _StillBusy as still:
            track.notes.append(Note(NoteKind.BUSY_WAITED, _call(still.error), count=still.refusals))
            raise still.error from None
        except UNCERTAIN as error:
            # OSS: PreviousCertId = ours, so a binding changed by someone else conflicts.
            try:
                bound = read_binding(action, self.oss, self.cdn)
            except CloudError:
                raise error from None
            if binding_key(bound) == _rollback_target(action):
                track.notes.append(Note(NoteKind.ROLLBACK_APPLIED, _call(error), bound=bound))
            elif binding_key(bound) == ours:
                raise error
            else:
                self._supersede(track, bound)
                return
        track.undone = self.clock()

    def _supersede(self, track: _Track, bound: Binding) -> None:
        track.superseded = bound
        event(
            self.log,
            "superseded: not rolled back",
            level=logging.WARNING,
            domain=track.action.domain,
            bound=bound.state.value,
            cert=bound.cert,
        )

    # -- phase 4: the restored state at the edge ------------------------------------

    def _check_restored(self, undone: list[_Track]) -> None:
        by_domain = {track.action.domain: track for track in undone}
        watches = {}
        for domain, track in by_domain.items():
            action = track.action
            previous = _comparable(action.previous.fingerprint if action.previous else None)
            problem = rollback_problem(
                self.fingerprint,
                previous=previous,
                expect_certificate=action.rollback is Rollback.RESTORE,
            )
            wait = self._capped(self.budget.restore_wait, track.undone, self.budget.deadline)
            watches[domain] = Watch(
                probe_name(domain),
                problem,
                track.undone,
                wait,
                self._edge(action),
                consecutive=self.options.verify_consecutive,
            )

        def settle(domain: str, restored: Verification) -> None:
            track = by_domain[domain]
            if not restored.ok:
                event(
                    self.log,
                    "restore not confirmed at the edge",
                    level=logging.WARNING,
                    domain=domain,
                    reason=restored.reason,
                )
            self._finish(
                track,
                Outcome.ROLLED_BACK,
                track.failed_verification(ReasonCode.VERIFY_FAILED),
                rollback=track.action.rollback,
                restored=restored,
            )

        self._poll(watches, settle, self.budget.deadline)

    # -- results ----------------------------------------------------------------------

    def _finish(
        self,
        track: _Track,
        outcome: Outcome,
        reason: Reason,
        error_code: str | None = None,
        *,
        rollback: Rollback | None = None,
        restored: Verification | None = None,
    ) -> None:
        action, verification = track.action, track.verification
        last = restored or verification
        result = DomainResult(
            domain=action.domain,
            outcome=outcome,
            route=action.route,
            reason=reason,
            error_code=error_code,
            cert_id=action.cas_id,
            previous_cert_id=action.previous_cas_id,
            verified=verification.ok if verification else None,
            rollback=rollback,
            restored_verified=restored.ok if restored else None,
            restore_problem=restored.reason if restored and not restored.ok else None,
            served_sha256=last.served.fingerprint if last is not None else None,
            notes=tuple(track.notes),
            attempts=verification.attempts if verification else 0,
            seconds=max(0.0, self.clock() - track.started),
        )
        self.results[result.domain] = result
        self.log.info(
            "domain result",
            extra={
                "fields": {
                    "domain": result.domain,
                    "outcome": result.outcome.value,
                    "reason": result.reason.wire,
                    "errorCode": result.error_code,
                    "notes": [note.kind.value for note in result.notes],
                }
            },
        )


# `error_code` of a domain whose verification failed and that could not be rolled back.
VERIFY_FAILED = "VerifyFailed"
# `error_code` of a domain whose handling hit a bug (the other domains carried on).
INTERNAL = "Internal"


def _deploy_action(action: Action) -> str:
    """The API that writes `action`'s certificate (and rolls it back)."""
    return "PutCname" if action.route is Route.OSS else "SetCdnDomainSSLCertificate"


def _call(error: CloudError) -> CallError:
    return CallError(error.action, error.code)


def _failure(code: ReasonCode, error: BaseException) -> tuple[Reason, str]:
    """(reason, error code) of a write or rollback (`code`) that raised."""
    if isinstance(error, CloudError):
        return Reason(code, error=_call(error)), error.code
    if isinstance(error, IncompletePlan):
        return Reason(ReasonCode.INCOMPLETE_PLAN), type(error).__name__
    if isinstance(error, CertpilotError):
        return Reason(code), type(error).__name__
    # One domain's bug must not stop the others.
    return Reason(ReasonCode.INTERNAL), INTERNAL


def _comparable(fingerprint: str | None) -> str | None:
    """A fingerprint a probe can compare (SHA-1 or SHA-256 hex), else None."""
    text = (fingerprint or "").replace(":", "").upper()
    if len(text) in (40, 64) and all(c in "0123456789ABCDEF" for c in text):
        return text
    return None


def api_name(action: Action) -> str:
    """The domain as the service spells it (CDN lists a wildcard as `.example.org`)."""
    return action.api_name or action.domain


def _deploy(action: Action, oss: OssBinder, cdn: CdnSetter) -> None:
    if action.route is Route.OSS:
        oss.bind_certificate(
            _need(action.bucket, "bucket", action),
            _need(action.region, "region", action),
            api_name(action),
            action.identifier,
            action.previous_identifier,
        )
    else:
        cdn.set_certificate(api_name(action), action.cas_id, action.cert_region)


def _roll_back(action: Action, oss: OssBinder, cdn: CdnSetter) -> None:
    previous = action.previous
    name = api_name(action)
    if action.route is Route.OSS:
        bucket = _need(action.bucket, "bucket", action)
        region = _need(action.region, "region", action)
        if action.rollback is Rollback.RESTORE and action.previous_identifier:
            oss.bind_certificate(
                bucket, region, name, action.previous_identifier, action.identifier
            )
        elif action.rollback is Rollback.REMOVE:
            oss.unbind_certificate(bucket, region, name, action.identifier)
    else:
        if action.rollback is Rollback.RESTORE and previous is not None and previous.cas_id:
            cdn.set_certificate(name, previous.cas_id, previous.region)
        elif action.rollback is Rollback.REMOVE:
            cdn.disable_certificate(name)


def _need(value: str | None, what: str, action: Action) -> str:
    if not value:
        raise IncompletePlan(f"the plan has no {what} for OSS domain {action.domain}")
    return value


NO_ID = "?"  # key of a certificate bound without a CAS id / CertId
UNBOUND = "!"  # key of an OSS domain no longer bound to its bucket


def binding_key(binding: Binding) -> str | None:
    """What a binding is compared by: the OSS CertId / CDN CAS id as text; None: no
    certificate; a key of its own for a certificate without id and an unbound domain."""
    if binding.state is BindingState.CERTIFICATE:
        return binding.cert
    if binding.state is BindingState.NO_ID:
        return NO_ID
    if binding.state is BindingState.UNBOUND:
        return UNBOUND
    return None


def read_binding(action: Action, oss: OssBinder, cdn: CdnSetter) -> Binding:
    """Re-read what `action`'s domain has bound (OSS ListCname of its bucket; CDN
    DescribeDomainCertificateInfo).

    Raises:
        CloudError: the read failed (after retries).
        IncompletePlan: an OSS action without bucket or region.
    """
    name = api_name(action)
    if action.route is Route.OSS:
        bucket = _need(action.bucket, "bucket", action)
        for info in oss.list_cnames(bucket, _need(action.region, "region", action)):
            if not _same_name(info.domain, name):
                continue
            if info.cert_identifier:
                return Binding(BindingState.CERTIFICATE, cert=info.cert_identifier.strip())
            if info.certificate is not None:
                return Binding(BindingState.NO_ID, cert_type=info.certificate.cert_type)
            return Binding(BindingState.NONE)
        return Binding(BindingState.UNBOUND, bucket=bucket)
    cert = cdn.certificate_info(name)
    if cert is None:
        return Binding(BindingState.NONE)
    if cert.cas_id is None:
        return Binding(BindingState.NO_ID, cert_type=cert.cert_type or None)
    return Binding(BindingState.CERTIFICATE, cert=str(cert.cas_id))


def _same_name(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower() or (
        normalize_domain(a) is not None and normalize_domain(a) == normalize_domain(b)
    )


def _ours(action: Action) -> str:
    """The `binding_key` of the certificate `action` writes."""
    return action.identifier if action.route is Route.OSS else str(action.cas_id)


def _rollback_target(action: Action) -> str | None:
    """The `binding_key` a successful rollback of `action` leaves (None: no certificate)."""
    if action.rollback is not Rollback.RESTORE:
        return None
    if action.route is Route.OSS:
        return action.previous_identifier
    return str(action.previous_cas_id) if action.previous_cas_id is not None else None
