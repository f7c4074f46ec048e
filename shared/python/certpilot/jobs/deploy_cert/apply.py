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
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Protocol

from certpilot.cloud.oss import CnameInfo
from certpilot.core.errors import (
    CertpilotError,
    CloudError,
    ConflictError,
    ThrottledError,
    TransientError,
)
from certpilot.core.log import event, get_logger, with_context
from certpilot.core.model import DeployedCert, Route
from certpilot.discovery.inventory import normalize_domain
from certpilot.jobs.deploy_cert.plan import (
    ALREADY_CURRENT,
    ROLLBACK_NONE,
    ROLLBACK_REMOVE,
    ROLLBACK_RESTORE,
    Action,
    Plan,
    Skip,
)
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


class Outcome(str, enum.Enum):
    """How a domain ended."""

    DEPLOYED = "deployed"
    ALREADY_CURRENT = "already-current"
    SKIPPED = "skipped"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"

    def __str__(self) -> str:
        return self.value


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


@dataclass(frozen=True)
class DomainResult:
    """The end state of one domain."""

    domain: str
    outcome: Outcome
    route: Route | None = None
    reason: str = ""
    error_code: str | None = None
    cert_id: int | None = None
    previous_cert_id: int | None = None
    verified: bool | None = None  # None: not verified (dry run or verification off)
    # After a rollback: whether the edge was seen serving the restored state (the
    # previous certificate, or none). None when nothing was rolled back.
    restored_verified: bool | None = None
    attempts: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "domain": self.domain,
            "outcome": self.outcome.value,
            "route": self.route.value if self.route else None,
            "reason": self.reason,
            "errorCode": self.error_code,
            "certId": self.cert_id,
            "previousCertId": self.previous_cert_id,
            "verified": self.verified,
            "restoredVerified": self.restored_verified,
            "seconds": round(self.seconds, 3),
        }


_LOG = get_logger(__name__)
# How long to watch the edge after a rollback (at most the verification deadline): the
# restore is best effort, a domain must not hold the whole invocation twice over.
MAX_RESTORE_WAIT = 30.0
Prober = Callable[[str], ServedCert]
# Skip reason of a domain on which another certificate was set after our write (another
# run, or a person): it is left as it is, not rolled back.
SUPERSEDED = "superseded"
# What the rollbacks of a run may take (their writes, retried under QPS), kept free at
# the end of a run with a deadline.
ROLLBACK_ALLOWANCE = 15.0
# Skip reason of a domain whose write was not started: too little of the run's time
# was left to verify it and roll it back.
OUT_OF_TIME = "out-of-time"
# Errors after which a write may have been applied all the same: a timeout or 5xx
# (after retries), or a conflict that our own earlier attempt may have caused.
UNCERTAIN = (TransientError, ConflictError)
# Errors of a write whose re-read is worth noting in the reason: the above, and a
# throttled answer after retries (an earlier attempt of the retry loop may have applied).
_UNSURE_WRITE = (*UNCERTAIN, ThrottledError)


def skip_result(skip: Skip) -> DomainResult:
    """The result of a domain the plan leaves alone."""
    if skip.reason == ALREADY_CURRENT:
        return DomainResult(skip.domain, Outcome.ALREADY_CURRENT, skip.route, skip.detail)
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
        restore = min(verify, MAX_RESTORE_WAIT)
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
        if self.deadline is None:
            return True
        need = self.verify + ROLLBACK_ALLOWANCE + self.restore_wait if verify else 0.0
        return now + need <= self.deadline


@dataclass
class _Track:
    """Where one action stands between phases."""

    action: Action
    started: float = 0.0  # when its write was sent
    written: float = 0.0  # when the cloud accepted it
    verification: Verification | None = None
    why: str = ""  # why it is being rolled back
    undone: float = 0.0  # when the rollback was accepted
    notes: list[str] = field(default_factory=list)  # what re-reads showed: end of reason
    superseded: str = ""  # what another run bound meanwhile: not rolled back


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
                self._finish(track, Outcome.SKIPPED, f"{OUT_OF_TIME}: {error}")
            else:
                self._finish(track, Outcome.FAILED, *_failure(error))
        event(self.log, "writes done", written=len(written), failed=len(tracks) - len(written))
        return written

    def _write(self, track: _Track) -> None:
        track.started = self.clock()
        if not self.budget.can_write(track.started, verify=self.options.verify):
            raise _OutOfTime(
                "not written: too little of the run's time left to verify and roll it back"
            )
        try:
            _deploy(track.action, self.oss, self.cdn)
        except CloudError as error:
            if not self._applied_anyway(track, error):
                raise
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
            track.notes.append(
                f"{error.action} answered {error.code} and re-reading the binding failed"
                f" ({reread.action}: {reread.code}): whether the write was applied is"
                " unknown, so it was verified as if written"
            )
            event(
                self.log,
                "write outcome unknown: verifying it as written",
                level=logging.WARNING,
                domain=action.domain,
                action=error.action,
                code=error.code,
                reread=reread.code,
            )
            return True
        if bound.key != _ours(action):
            if isinstance(error, _UNSURE_WRITE):
                track.notes.append(f"re-read: the domain has {bound.text}, not ours")
            return False
        track.notes.append(f"{error.action} answered {error.code}, yet the domain has {bound.text}")
        event(
            self.log,
            "write applied despite its error",
            level=logging.WARNING,
            domain=action.domain,
            action=error.action,
            code=error.code,
        )
        return True

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
            track.why = (
                f"verification failed after {verification.elapsed:.1f}s: {verification.reason}"
            )
            event(
                self.log,
                "verification failed",
                level=logging.WARNING,
                domain=action.domain,
                reason=verification.reason,
            )
            if action.rollback == ROLLBACK_NONE:
                self._finish(
                    track,
                    Outcome.FAILED,
                    track.why
                    + "; the previous certificate is not held in CAS and cannot be restored",
                    "VerifyFailed",
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
            if error is None and track.superseded:
                self._finish(
                    track,
                    Outcome.SKIPPED,
                    f"{SUPERSEDED}: the domain has {track.superseded} now, not ours"
                    f" (changed by another run?), so it is not rolled back; {track.why}",
                )
            elif error is None:
                undone.append(track)
            else:
                reason, code = _failure(error)
                self._finish(track, Outcome.FAILED, f"{track.why}; rollback {reason}", code)
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
                track.notes.append(
                    f"the binding before the rollback was unknown ({error.action}:"
                    f" {error.code}): rolled back to the state the plan saw"
                )
                event(
                    self.log,
                    "binding unknown before rollback: rolling back anyway",
                    level=logging.WARNING,
                    domain=action.domain,
                    action=error.action,
                    code=error.code,
                )
            else:
                if bound.key != ours:
                    self._supersede(track, bound)
                    return
        try:
            _roll_back(action, self.oss, self.cdn)
        except UNCERTAIN as error:
            # OSS: PreviousCertId = ours, so a binding changed by someone else conflicts.
            try:
                bound = read_binding(action, self.oss, self.cdn)
            except CloudError:
                raise error from None
            if bound.key == _rollback_target(action):
                track.notes.append(
                    f"rollback {error.action} answered {error.code}, yet it was applied"
                )
            elif bound.key == ours:
                raise error
            else:
                self._supersede(track, bound)
                return
        track.undone = self.clock()

    def _supersede(self, track: _Track, bound: Bound) -> None:
        track.superseded = bound.text
        event(
            self.log,
            "superseded: not rolled back",
            level=logging.WARNING,
            domain=track.action.domain,
            bound=bound.text,
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
                expect_certificate=action.rollback == ROLLBACK_RESTORE,
            )
            wait = self._capped(self.budget.restore_wait, track.undone, self.budget.deadline)
            watches[domain] = Watch(
                probe_name(domain), problem, track.undone, wait, self._edge(action)
            )

        def settle(domain: str, restored: Verification) -> None:
            track = by_domain[domain]
            self._finish(
                track,
                Outcome.ROLLED_BACK,
                f"{track.why}; {self._undone_text(track.action, restored)}",
                restored=restored,
            )

        self._poll(watches, settle, self.budget.deadline)

    def _undone_text(self, action: Action, restored: Verification) -> str:
        restore = action.rollback == ROLLBACK_RESTORE
        text = (
            f"restored certificate {action.previous_cas_id}"
            if restore
            else "removed the certificate (the domain had none)"
        )
        if restored.ok:
            return text + (
                ", and the edge serves it"
                if restore
                else ", and the edge no longer serves the new one"
            )
        event(
            self.log,
            "restore not confirmed at the edge",
            level=logging.WARNING,
            domain=action.domain,
            reason=restored.reason,
        )
        return text + f"; not confirmed at the edge: {restored.reason}"

    # -- results ----------------------------------------------------------------------

    def _finish(
        self,
        track: _Track,
        outcome: Outcome,
        reason: str,
        error_code: str | None = None,
        *,
        restored: Verification | None = None,
    ) -> None:
        reason = "; ".join([reason, *track.notes])
        result = replace(
            _result(
                track.action,
                outcome,
                reason,
                error_code,
                verification=track.verification,
                restored=restored,
            ),
            seconds=max(0.0, self.clock() - track.started),
        )
        self.results[result.domain] = result
        self.log.info("domain result", extra={"fields": result.to_dict()})


def _failure(error: BaseException) -> tuple[str, str]:
    """(reason, error code) of a write that raised."""
    if isinstance(error, CloudError):
        return f"{error.action} failed: {error.code}", error.code
    if isinstance(error, CertpilotError):
        return str(error), type(error).__name__
    # One domain's bug must not stop the others.
    return f"unexpected {type(error).__name__}", "Internal"


def _result(
    action: Action,
    outcome: Outcome,
    reason: str,
    error_code: str | None = None,
    *,
    verification: Verification | None = None,
    restored: Verification | None = None,
) -> DomainResult:
    return DomainResult(
        domain=action.domain,
        outcome=outcome,
        route=action.route,
        reason=reason,
        error_code=error_code,
        cert_id=action.cas_id,
        previous_cert_id=action.previous_cas_id,
        verified=verification.ok if verification else None,
        restored_verified=restored.ok if restored else None,
        attempts=verification.attempts if verification else 0,
    )


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
        if action.rollback == ROLLBACK_RESTORE and action.previous_identifier:
            oss.bind_certificate(
                bucket, region, name, action.previous_identifier, action.identifier
            )
        elif action.rollback == ROLLBACK_REMOVE:
            oss.unbind_certificate(bucket, region, name, action.identifier)
    else:
        if action.rollback == ROLLBACK_RESTORE and previous is not None and previous.cas_id:
            cdn.set_certificate(name, previous.cas_id, previous.region)
        elif action.rollback == ROLLBACK_REMOVE:
            cdn.disable_certificate(name)


def _need(value: str | None, what: str, action: Action) -> str:
    if not value:
        raise IncompletePlan(f"the plan has no {what} for OSS domain {action.domain}")
    return value


@dataclass(frozen=True)
class Bound:
    """What the control plane says a domain has bound now."""

    # OSS CertId / CDN CAS id as text; None: no certificate. A certificate without an
    # id, or an OSS domain no longer bound to the bucket, gets a key of its own.
    key: str | None
    text: str  # for reasons: "certificate 2001-cn-hangzhou", "HTTPS off", ...


NO_ID = "?"  # key of a certificate bound without a CAS id / CertId
UNBOUND = "!"  # key of an OSS domain no longer bound to its bucket


def read_binding(action: Action, oss: OssBinder, cdn: CdnSetter) -> Bound:
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
                return Bound(info.cert_identifier.strip(), f"certificate {info.cert_identifier}")
            if info.certificate is not None:
                return Bound(NO_ID, "a certificate without CertId")
            return Bound(None, "no certificate")
        return Bound(UNBOUND, f"no binding to bucket {bucket}")
    cert = cdn.certificate_info(name)
    if cert is None:
        return Bound(None, "HTTPS off")
    if cert.cas_id is None:
        return Bound(NO_ID, f"a {cert.cert_type or 'non-CAS'} certificate without CAS id")
    return Bound(str(cert.cas_id), f"certificate {cert.cas_id}")


def _same_name(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower() or (
        normalize_domain(a) is not None and normalize_domain(a) == normalize_domain(b)
    )


def _ours(action: Action) -> str:
    """The `Bound.key` of the certificate `action` writes."""
    return action.identifier if action.route is Route.OSS else str(action.cas_id)


def _rollback_target(action: Action) -> str | None:
    """The `Bound.key` a successful rollback of `action` leaves (None: no certificate)."""
    if action.rollback != ROLLBACK_RESTORE:
        return None
    if action.route is Route.OSS:
        return action.previous_identifier
    return str(action.previous_cas_id) if action.previous_cas_id is not None else None


def count_outcomes(results: Iterable[DomainResult]) -> dict[str, int]:
    """How many domains ended in each outcome (every outcome present)."""
    counts = {o.value: 0 for o in Outcome}
    for result in results:
        counts[result.outcome.value] += 1
    return counts
