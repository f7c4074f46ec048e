"""Carry out a `Plan`: deploy on each domain, verify from outside, roll back on failure.

Domains run concurrently in a thread pool; the adapters keep every call under its QPS
limit and retry throttling and 5xx themselves. One domain's failure never stops the
others: every domain of the plan ends with exactly one `DomainResult`.
"""

from __future__ import annotations

import contextvars
import enum
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from certpilot.errors import CloudError
from certpilot.log import event, get_logger
from certpilot.model import Route
from certpilot.plan import (
    ALREADY_CURRENT,
    ROLLBACK_NONE,
    ROLLBACK_REMOVE,
    ROLLBACK_RESTORE,
    Action,
    Plan,
    Skip,
)
from certpilot.probe import Verification, wait_for_certificate, wait_for_restore


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
        force: bool,
    ) -> None: ...

    def unbind_certificate(
        self, bucket: str, region: str, domain: str, previous_identifier: str | None
    ) -> None: ...


class CdnSetter(Protocol):
    """The part of `adapters.cdn.CdnAdapter` that apply uses."""

    def set_certificate(self, domain: str, cas_id: int, region: str) -> None: ...

    def disable_certificate(self, domain: str) -> None: ...


@dataclass(frozen=True)
class ApplyOptions:
    """How to apply: pool size, and whether and how long to verify."""

    concurrency: int = 8
    verify: bool = True
    verify_deadline: float = 120.0
    edge_https: str | None = None
    ca_bundle: str | None = None
    probe_timeout: float = 5.0


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
    forced: bool = False  # OSS Force=true was sent (the domain had no certificate)
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
            "forced": self.forced,
            "verified": self.verified,
            "restoredVerified": self.restored_verified,
            "seconds": round(self.seconds, 3),
        }


Waiter = Callable[..., Verification]
_LOG = get_logger(__name__)
# How long to watch the edge after a rollback (at most the verification deadline): the
# restore is best effort, a domain must not hold the whole invocation twice over.
MAX_RESTORE_WAIT = 30.0


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
    wait: Waiter = wait_for_certificate,
    wait_restored: Waiter = wait_for_restore,
) -> tuple[DomainResult, ...]:
    """Deploy every action of `plan`; skipped domains get their result as they are.

    A domain that does not verify is rolled back, and the edge is probed again
    (best effort, `MAX_RESTORE_WAIT`) to record whether it serves the restored state.
    Never raises for a domain's failure. Results come in the plan's domain order.
    """
    fingerprint = plan.cert.fingerprint_sha256
    results: dict[str, DomainResult] = {s.domain: skip_result(s) for s in plan.skipped}
    if plan.actions:
        workers = max(1, min(options.concurrency, len(plan.actions)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deploy") as pool:
            # Each worker runs in a copy of this context: log lines keep the request id.
            futures = [
                pool.submit(
                    contextvars.copy_context().run,
                    _guarded,
                    action,
                    fingerprint,
                    oss,
                    cdn,
                    options,
                    log,
                    (wait, wait_restored),
                )
                for action in plan.actions
            ]
            for future in futures:
                result = future.result()
                results[result.domain] = result
    return tuple(results[name] for name in sorted(results))


def _guarded(
    action: Action,
    fingerprint: str,
    oss: OssBinder,
    cdn: CdnSetter,
    options: ApplyOptions,
    log: logging.Logger,
    waits: tuple[Waiter, Waiter],
) -> DomainResult:
    start = time.monotonic()
    try:
        result = _apply_one(action, fingerprint, oss, cdn, options, log, waits)
    except Exception as err:  # one domain's bug must not stop the others
        result = _result(action, Outcome.FAILED, f"unexpected {type(err).__name__}", "Internal")
    result = _with_seconds(result, time.monotonic() - start)
    log.info("domain result", extra={"fields": result.to_dict()})
    return result


def _with_seconds(result: DomainResult, seconds: float) -> DomainResult:
    from dataclasses import replace

    return replace(result, seconds=seconds)


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
        forced=action.force,
        verified=verification.ok if verification else None,
        restored_verified=restored.ok if restored else None,
        attempts=verification.attempts if verification else 0,
    )


def _apply_one(
    action: Action,
    fingerprint: str,
    oss: OssBinder,
    cdn: CdnSetter,
    options: ApplyOptions,
    log: logging.Logger,
    waits: tuple[Waiter, Waiter],
) -> DomainResult:
    wait, wait_restored = waits
    try:
        _deploy(action, oss, cdn)
    except CloudError as err:
        return _result(action, Outcome.FAILED, f"{err.action} failed: {err.code}", err.code)
    reason = action.reason + (
        "; Force=true (the domain had no certificate)" if action.force else ""
    )
    if not options.verify:
        return _result(action, Outcome.DEPLOYED, reason)
    verification = wait(
        probe_name(action.domain),
        fingerprint,
        deadline=options.verify_deadline,
        edge=options.edge_https,
        ca_bundle=options.ca_bundle,
        timeout=options.probe_timeout,
    )
    if verification.ok:
        return _result(action, Outcome.DEPLOYED, reason, verification=verification)
    why = f"verification failed after {verification.elapsed:.1f}s: {verification.reason}"
    event(
        log,
        "verification failed",
        level=logging.WARNING,
        domain=action.domain,
        reason=verification.reason,
    )
    if action.rollback == ROLLBACK_NONE:
        return _result(
            action,
            Outcome.FAILED,
            why + "; the previous certificate is not held in CAS and cannot be restored",
            "VerifyFailed",
            verification=verification,
        )
    try:
        _roll_back(action, oss, cdn)
    except CloudError as err:
        return _result(
            action,
            Outcome.FAILED,
            f"{why}; rollback {err.action} failed: {err.code}",
            err.code,
            verification=verification,
        )
    undone = (
        f"restored certificate {action.previous_cas_id}"
        if action.rollback == ROLLBACK_RESTORE
        else "removed the certificate (the domain had none)"
    )
    previous = action.previous
    restored = wait_restored(
        probe_name(action.domain),
        fingerprint,
        previous=_comparable(previous.fingerprint if previous else None),
        expect_certificate=action.rollback == ROLLBACK_RESTORE,
        deadline=min(options.verify_deadline, MAX_RESTORE_WAIT),
        edge=options.edge_https,
        ca_bundle=options.ca_bundle,
        timeout=options.probe_timeout,
    )
    if restored.ok:
        undone += (
            ", and the edge serves it"
            if action.rollback == ROLLBACK_RESTORE
            else ", and the edge no longer serves the new one"
        )
    else:
        undone += f"; not confirmed at the edge: {restored.reason}"
        event(
            log,
            "restore not confirmed at the edge",
            level=logging.WARNING,
            domain=action.domain,
            reason=restored.reason,
        )
    return _result(
        action,
        Outcome.ROLLED_BACK,
        f"{why}; {undone}",
        verification=verification,
        restored=restored,
    )


def _comparable(fingerprint: str | None) -> str | None:
    """A fingerprint a probe can compare (SHA-1 or SHA-256 hex), else None."""
    text = (fingerprint or "").replace(":", "").upper()
    if len(text) in (40, 64) and all(c in "0123456789ABCDEF" for c in text):
        return text
    return None


def probe_name(domain: str) -> str:
    """The name to verify `domain` with: a wildcard domain is probed one label below."""
    return "certpilot-verify" + domain[1:] if domain.startswith("*.") else domain


def _deploy(action: Action, oss: OssBinder, cdn: CdnSetter) -> None:
    if action.route is Route.OSS:
        oss.bind_certificate(
            _need(action.bucket, "bucket"),
            _need(action.region, "region"),
            action.domain,
            action.identifier,
            action.previous_identifier,
            action.force,
        )
    else:
        cdn.set_certificate(action.domain, action.cas_id, action.cert_region)


def _roll_back(action: Action, oss: OssBinder, cdn: CdnSetter) -> None:
    previous = action.previous
    if action.route is Route.OSS:
        bucket, region = _need(action.bucket, "bucket"), _need(action.region, "region")
        if action.rollback == ROLLBACK_RESTORE and action.previous_identifier:
            oss.bind_certificate(
                bucket, region, action.domain, action.previous_identifier, action.identifier, False
            )
        elif action.rollback == ROLLBACK_REMOVE:
            oss.unbind_certificate(bucket, region, action.domain, action.identifier)
    else:
        if action.rollback == ROLLBACK_RESTORE and previous is not None and previous.cas_id:
            cdn.set_certificate(action.domain, previous.cas_id, previous.region)
        elif action.rollback == ROLLBACK_REMOVE:
            cdn.disable_certificate(action.domain)


def _need(value: str | None, what: str) -> str:
    if not value:
        raise ValueError(f"the plan has no {what} for this OSS domain")
    return value


def count_outcomes(results: Iterable[DomainResult]) -> dict[str, int]:
    """How many domains ended in each outcome (every outcome present)."""
    counts = {o.value: 0 for o in Outcome}
    for result in results:
        counts[result.outcome.value] += 1
    return counts
