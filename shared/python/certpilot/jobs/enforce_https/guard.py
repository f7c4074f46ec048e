"""The guard of enforce-https: may this bucket's policy deny plain HTTP now? (pure)

The HTTPS-only statement covers the whole bucket, not one domain: every custom domain
OSS serves from it, every CDN domain that pulls from it, and every client of the bucket
domain. So it is written only when:

- every custom domain bound to the bucket directly (no CDN in front) serves verified
  HTTPS (a live handshake with a valid chain and name), and
- every CDN domain whose origin is the bucket fetches it over HTTPS: `forward_scheme`
  `https`, or `follow` on a domain that forces HTTPS (clients then always arrive over
  HTTPS, so the origin fetch is HTTPS too). No `forward_scheme` means CDN fetches the
  origin over HTTP (its default), which the policy would break.

A CDN domain that fetches over HTTP is not a blocker for ever: enforce-https switches
its origin to HTTPS first (and verifies the domain still serves), so the guard reports
it as `SWITCH_ORIGIN` rather than blocking, unless switching is not possible (the domain
is not online, for instance).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class OriginScheme(str, enum.Enum):
    """How a CDN domain fetches its origin (`forward_scheme` `scheme_origin`)."""

    HTTP = "http"
    HTTPS = "https"
    FOLLOW = "follow"
    DEFAULT = "default"  # no forward_scheme configured: CDN fetches over HTTP


class BlockReason(str, enum.Enum):
    """Why a domain keeps its bucket from being enforced."""

    HTTPS_NOT_VERIFIED = "https-not-verified"  # a direct custom domain without verified HTTPS
    ORIGIN_OVER_HTTP = "origin-over-http"  # a CDN domain that fetches over HTTP, not switchable
    OPTED_OUT = "opted-out"  # the bucket is opted out of enforcement in settings


@dataclass(frozen=True)
class DirectDomain:
    """A custom domain OSS serves from the bucket itself (no CDN in front)."""

    name: str
    https_verified: bool


@dataclass(frozen=True)
class CdnOrigin:
    """A CDN domain whose origin is the bucket."""

    name: str
    scheme: OriginScheme
    forces_https: bool  # https_force on (or being turned on by this run)
    switchable: bool = True  # online: forward_scheme can be set and verified


@dataclass(frozen=True)
class Blocker:
    """A domain that keeps the bucket open over HTTP, and why."""

    domain: str
    reason: BlockReason


@dataclass(frozen=True)
class GuardDecision:
    """The guard's answer for one bucket.

    `allowed` when the policy may be written now; else `blockers` names every domain
    in the way. `switch_origin` lists the CDN domains whose origin must be switched to
    HTTPS (and verified) before the write.
    """

    bucket: str
    blockers: tuple[Blocker, ...]
    switch_origin: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        """True when nothing blocks the bucket (origin switches still come first)."""
        return not self.blockers


def fetches_over_https(origin: CdnOrigin) -> bool:
    """True when the CDN domain's origin fetches already use HTTPS."""
    if origin.scheme is OriginScheme.HTTPS:
        return True
    return origin.scheme is OriginScheme.FOLLOW and origin.forces_https


def judge_bucket(
    bucket: str,
    direct: Iterable[DirectDomain],
    cdn: Iterable[CdnOrigin],
    *,
    opted_out: bool = False,
) -> GuardDecision:
    """Decide whether `bucket` may deny plain HTTP, naming what blocks it."""
    if opted_out:
        return GuardDecision(bucket, (Blocker(bucket, BlockReason.OPTED_OUT),), ())
    blockers = [
        Blocker(d.name, BlockReason.HTTPS_NOT_VERIFIED) for d in direct if not d.https_verified
    ]
    switch: list[str] = []
    for origin in cdn:
        if fetches_over_https(origin):
            continue
        if origin.switchable:
            switch.append(origin.name)
        else:
            blockers.append(Blocker(origin.name, BlockReason.ORIGIN_OVER_HTTP))
    return GuardDecision(bucket, tuple(blockers), tuple(switch))
