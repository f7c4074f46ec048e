"""CDN HTTPS features for enforce-https: what to change on each domain, batched (pure).

The features (guide, "Force HTTPS access" and "Performance optimization"): `https_force`
with a 301, `HSTS`, `https_option` with HTTP/2, `gzip`. `http_force` (HTTPS -> HTTP) is
mutually exclusive with `https_force` and must be deleted first (DeleteSpecificConfig),
even when it is switched off.

A feature already configured counts as in place when every argument certpilot owns has
the wanted value and its status is `success`: DescribeCdnDomainConfigs may add arguments
nobody sent (the reference's `scheme_origin_port`, Terraform's filtered `aliyun_id`), so
the extras are ignored, never compared.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# BatchSetCdnDomainConfig takes up to 50 DomainNames a call, and up to 50 domains x
# features (the API reference's limits; the emulator refuses more: TooManyDomains).
BATCH_DOMAINS = 50
BATCH_ITEMS = 50


def batch_size(features: int) -> int:
    """How many domains one BatchSetCdnDomainConfig call can carry with `features`
    features each."""
    return max(1, min(BATCH_DOMAINS, BATCH_ITEMS // max(1, features)))


HSTS_MAX_AGE_DEFAULT = 5_184_000  # 60 days, the CDN console's recommendation


class FeatureName(str, enum.Enum):
    """CDN `functionName`s certpilot owns or clears."""

    HTTPS_FORCE = "https_force"
    HTTP_FORCE = "http_force"
    HSTS = "HSTS"
    HTTPS_OPTION = "https_option"
    GZIP = "gzip"
    # Not a feature of FeaturePrefs: the guard switches a CDN origin fetch to HTTPS.
    FORWARD_SCHEME = "forward_scheme"


@dataclass(frozen=True)
class FeaturePrefs:
    """Which features enforce-https applies, and how (settings)."""

    https_force: bool = True
    hsts: bool = True
    hsts_max_age: int = HSTS_MAX_AGE_DEFAULT
    # Off unless configured: every subdomain must then serve HTTPS, or browsers that saw
    # the header refuse them.
    hsts_include_subdomains: bool = False
    http2: bool = True
    gzip: bool = True


@dataclass(frozen=True)
class Wanted:
    """One feature with the arguments certpilot owns."""

    name: FeatureName
    args: tuple[tuple[str, str], ...]

    @property
    def arg_map(self) -> dict[str, str]:
        """The arguments as a mapping."""
        return dict(self.args)


@dataclass(frozen=True)
class Configured:
    """A feature as DescribeCdnDomainConfigs reports it."""

    config_id: str
    name: str
    status: str  # success | testing | failed | configuring
    args: Mapping[str, str] = field(default_factory=dict)


class State(str, enum.Enum):
    """Where one wanted feature stands on one domain."""

    IN_PLACE = "in-place"  # owned arguments match and status success
    PENDING = "pending"  # owned arguments match, still configuring / testing
    MISSING = "missing"  # absent, different, or failed: must be set


def wanted_features(prefs: FeaturePrefs) -> tuple[Wanted, ...]:
    """The features `prefs` asks for, in the order they are applied."""
    wanted: list[Wanted] = []
    if prefs.https_force:
        wanted.append(Wanted(FeatureName.HTTPS_FORCE, (("enable", "on"), ("https_rewrite", "301"))))
    if prefs.hsts:
        wanted.append(
            Wanted(
                FeatureName.HSTS,
                (
                    ("enabled", "on"),
                    ("https_hsts_max_age", str(prefs.hsts_max_age)),
                    (
                        "https_hsts_include_subdomains",
                        "on" if prefs.hsts_include_subdomains else "off",
                    ),
                ),
            )
        )
    if prefs.http2:
        wanted.append(Wanted(FeatureName.HTTPS_OPTION, (("http2", "on"),)))
    if prefs.gzip:
        wanted.append(Wanted(FeatureName.GZIP, (("enable", "on"),)))
    return tuple(wanted)


ORIGIN_OVER_HTTPS = Wanted(
    FeatureName.FORWARD_SCHEME, (("enable", "on"), ("scheme_origin", "https"))
)


def _same(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def state_of(wanted: Wanted, configured: Iterable[Configured]) -> State:
    """Where `wanted` stands given the domain's configured features."""
    best = State.MISSING
    for config in configured:
        if not _same(config.name, wanted.name.value):
            continue
        owned_match = all(
            name in config.args and _same(config.args[name], value) for name, value in wanted.args
        )
        if not owned_match:
            continue
        status = config.status.strip().lower()
        if status == "success":
            return State.IN_PLACE
        if status in ("configuring", "testing"):
            best = State.PENDING
    return best


@dataclass(frozen=True)
class DomainFeaturePlan:
    """What one CDN domain needs: configs to delete first, then features to set."""

    domain: str
    delete: tuple[str, ...]  # ConfigIds (http_force)
    set: tuple[Wanted, ...]
    pending: tuple[Wanted, ...]  # right values, not yet `success`: confirm, do not re-send

    @property
    def in_place(self) -> bool:
        """True when nothing is to be deleted or set (pending ones are only awaited)."""
        return not self.delete and not self.set


def plan_domain(
    domain: str, configured: Sequence[Configured], prefs: FeaturePrefs
) -> DomainFeaturePlan:
    """Decide the feature changes of one domain."""
    wanted = wanted_features(prefs)
    delete: tuple[str, ...] = ()
    if prefs.https_force:
        delete = tuple(
            c.config_id for c in configured if _same(c.name, FeatureName.HTTP_FORCE.value)
        )
    states = [(w, state_of(w, configured)) for w in wanted]
    return DomainFeaturePlan(
        domain=domain,
        delete=delete,
        set=tuple(w for w, s in states if s is State.MISSING),
        pending=tuple(w for w, s in states if s is State.PENDING),
    )


@dataclass(frozen=True)
class Batch:
    """One BatchSetCdnDomainConfig call: the same features on up to 50 domains."""

    features: tuple[Wanted, ...]
    domains: tuple[str, ...]


def batches(plans: Iterable[DomainFeaturePlan]) -> list[Batch]:
    """Group the domains that need the very same features, as many to a call as
    BatchSetCdnDomainConfig takes: at most 50 domains, and at most 50 domains x
    features (`batch_size`).

    Fewest calls for the 3-a-second limit: one call per distinct feature set per
    batch, in a stable order (by first appearance).
    """
    groups: dict[tuple[Wanted, ...], list[str]] = {}
    for plan in plans:
        if plan.set:
            groups.setdefault(plan.set, []).append(plan.domain)
    result = []
    for features, domains in groups.items():
        size = batch_size(len(features))
        for start in range(0, len(domains), size):
            result.append(Batch(features, tuple(domains[start : start + size])))
    return result
