"""check-expiry's sweep: every domain of the account judged (DESIGN §6), report-only.

`sweep(options, deps)` reads the account with the calls that answer for many domains at
once, then looks at every domain from outside, and judges each one (`judge.judge`):

1. inventory (`discovery.inventory.discover`: ListBuckets, ListCname per bucket,
   DescribeUserDomains, DescribeCdnHttpsDomainList);
2. the CAS catalog: the listing (usable and expired certificates, revoked orders), then
   one detail call per certificate that covers a swept domain; a detail call that fails
   leaves the domains that depend on it NOT_JUDGED instead of failing the sweep;
3. the CAS ids of CDN certificates by name in that listing (`with_cert_ids`: a call per
   domain only where the name does not tell);
4. GetBucketPolicy once per bucket that has OSS custom domains in scope (HTTPS-only
   statement, emergency fallback), and one tag listing for the CDN domains' emergency
   fallbacks (`enforce_https.fallback.cdn_fallbacks`);
5. live probes, concurrent (`CERTPILOT_CONCURRENCY`) and within the run's time budget:
   a TLS handshake (the served chain is judged with signatures, `certs.candidate`),
   plain HTTP and HTTPS GETs (redirect, HSTS); then the CA of each distinct served
   certificate is asked once whether it is revoked (`certs.revocation.check_many`).

Cloud calls go through the adapters, paced within each action's QPS by the shared
limiter. Unless the sweep is report-only (`reportOnly`), what CAS can repair is
repaired: a domain inside its renewal window or whose certificate is unusable gets the
best certificate CAS holds for it, by deploy-cert invoked asynchronously through FC,
one invocation per certificate (`repair`), each candidate's CA asked first whether it
is revoked; a domain whose primary became unusable fails over to the best backup from
another CA (FAILED_OVER), and drifted enforcement (HTTP_NOT_FORCED / HSTS_MISSING) is
restored by the enforce-https engine in process (ENFORCEMENT_RESTORED). A report-only
sweep only reads. A domain that could not be judged (a failed
call, a failed probe, the time budget) carries NOT_JUDGED, is never repaired, and the
sweep is then never "clear".
"""

from __future__ import annotations

import enum
import fnmatch
import functools
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from certpilot.core.errors import CloudError, MalformedEvent
from certpilot.core.findings import (
    Code,
    Finding,
    Severity,
    count_by_severity,
    has_errors,
    make_finding,
)
from certpilot.core.log import event, get_logger, with_context
from certpilot.core.model import Catalog, CatalogCert, DomainRecord, Inventory, Route
from certpilot.jobs.check_expiry.judge import (
    DomainState,
    Gap,
    JudgePolicy,
    PolicyView,
    Served,
    Verdict,
    WebView,
    best_backup,
    judge,
)
from certpilot.jobs.check_expiry.repair import (
    Restore,
    Rollout,
    RolloutResult,
    invoke_rollouts,
    plan_enforcements,
    plan_rollouts,
    restore_enforcement,
)
from certpilot.jobs.check_expiry.report import RepairKind
from certpilot.jobs.deploy_cert.engine import Deps, build_deps

if TYPE_CHECKING:
    from certpilot.certs.trust import TrustStore
    from certpilot.discovery.catalog import Listing
    from certpilot.handler import Invocation
    from certpilot.jobs.check_expiry.shards import ShardRef, SharedCatalog
    from certpilot.probe.tls import ServedCert

_log = get_logger(__name__)
FUNCTION = "check-expiry"
OPTION_KEYS = frozenset({"reportOnly", "scope", "shard"})
TIMER_KEYS = frozenset({"triggerTime", "triggerName", "payload"})
MAX_SCOPE_LENGTH = 255

Progress = Callable[[int, int, str], None]
"""`progress(done, total, domain)`: called as each domain is judged."""


class SweepStatus(str, enum.Enum):
    """How a sweep ended (the summary's `status`)."""

    CLEAR = "clear"  # every domain judged, no finding at warning or above
    FINDINGS = "findings"  # every domain judged, some findings
    INCOMPLETE = "incomplete"  # some domain could not be judged: never an all-clear
    FANNED_OUT = "fanned-out"  # split into shards: the last one to finish reports
    SHARD = "shard"  # one shard's part written (and, by the last, the run merged)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SweepOptions:
    """What a sweep is asked to do. `report_only`: judge and report, never repair;
    `scope`: a glob matched against bucket names and domain names (None: everything)."""

    report_only: bool = False
    scope: str | None = None
    trigger: str | None = None  # the timer trigger's name, when a timer fired
    shard: ShardRef | None = None  # this invocation is one shard of a fanned-out run


@dataclass(frozen=True)
class Row:
    """One domain of the report: where it is served from and what was found."""

    domain: str
    location: Route
    bucket: str | None
    verdict: Verdict


@dataclass(frozen=True)
class SweepResult:
    """A whole sweep."""

    options: SweepOptions
    now: datetime
    rows: tuple[Row, ...]
    buckets: int = 0
    certificates: int = 0
    elapsed: float = 0.0
    repairs: tuple[RolloutResult, ...] = field(default=())
    restored: tuple[Restore, ...] = field(default=())  # drifted enforcement restored
    # Findings about CAS certificates themselves (a revoked one it still holds), named
    # by the certificate's common name: they are on no domain.
    catalog_findings: tuple[Finding, ...] = field(default=())
    # A shard's repairs left to the merge: the rollouts it would invoke, and the domains
    # whose enforcement another shard's domains share a bucket policy with.
    planned: tuple[Rollout, ...] = field(default=())
    deferred: tuple[str, ...] = field(default=())

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of every domain, then those about CAS certificates."""
        return (*(f for row in self.rows for f in row.verdict.findings), *self.catalog_findings)

    @property
    def not_judged(self) -> tuple[str, ...]:
        """The domains that could not be judged."""
        return tuple(row.domain for row in self.rows if not row.verdict.judged)

    @property
    def status(self) -> SweepStatus:
        """CLEAR only when every domain was judged and nothing at warning or above remains."""
        if self.not_judged:
            return SweepStatus.INCOMPLETE
        if any(f.severity is not Severity.INFO for f in self.findings):
            return SweepStatus.FINDINGS
        return SweepStatus.CLEAR

    @property
    def has_errors(self) -> bool:
        """True when an error finding remains."""
        return has_errors(self.findings)


# -- options ------------------------------------------------------------------------


def _event(raw: Any) -> Mapping[str, Any]:
    """The event as a JSON object; an empty one (a bare direct invocation) is `{}`."""
    from certpilot.events import load_event

    if raw is None or (isinstance(raw, (bytes, bytearray, str)) and not raw.strip()):
        return {}
    return load_event(raw)


def _payload(value: Any) -> Mapping[str, Any]:
    """A timer's `payload` (JSON text, possibly empty) as a JSON object."""
    from certpilot.events import json_object

    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    return json_object(value, "the timer payload")


def parse_options(raw: Any) -> SweepOptions:
    """The sweep's options from an FC timer event (`{"triggerTime", "triggerName",
    "payload": "<JSON text>"}`, options in the payload) or a direct invocation (the
    options themselves): `reportOnly` (boolean), `scope` (a bucket or domain glob).

    Raises:
        EventError: not JSON, not an object (MalformedEvent, UnsupportedEvent), an
            unknown option or a wrong type (MalformedEvent).
    """
    data = _event(raw)
    trigger: str | None = None
    if "triggerTime" in data or "triggerName" in data:
        unknown = sorted(set(data) - TIMER_KEYS)
        if unknown:
            raise MalformedEvent(f"unknown timer event field(s): {', '.join(unknown)}")
        name = data.get("triggerName")
        trigger = name if isinstance(name, str) else None
        data = _payload(data.get("payload"))
    unknown = sorted(set(data) - OPTION_KEYS)
    if unknown:
        raise MalformedEvent(
            f"unknown option(s): {', '.join(unknown)}; accepted: reportOnly, scope"
            " (and shard, between check-expiry's own invocations)"
        )
    report_only = data.get("reportOnly", False)
    if not isinstance(report_only, bool):
        raise MalformedEvent("reportOnly must be true or false")
    shard = None
    if "shard" in data:
        from certpilot.jobs.check_expiry.shards import parse_ref

        shard = parse_ref(data["shard"])
    scope = data.get("scope")
    if scope is not None:
        if not isinstance(scope, str) or not scope.strip():
            raise MalformedEvent("scope must be a non-empty bucket or domain pattern")
        scope = scope.strip().lower()
        if len(scope) > MAX_SCOPE_LENGTH or any(c.isspace() for c in scope):
            raise MalformedEvent("scope must be one bucket or domain pattern, without spaces")
    return SweepOptions(report_only=report_only, scope=scope, trigger=trigger, shard=shard)


def in_scope(record: DomainRecord, scope: str | None) -> bool:
    """Whether `record` is swept under `scope` (its name or its bucket matches the glob)."""
    if scope is None:
        return True
    return fnmatch.fnmatchcase(record.name, scope) or (
        record.bucket is not None and fnmatch.fnmatchcase(record.bucket, scope)
    )


# -- the handler's entry points -----------------------------------------------------


def parse_event(raw: Any, invocation: Invocation) -> SweepOptions:
    """The handler frame's `parse` (see `parse_options`).

    Raises:
        MalformedEvent: the options cannot be used.
    """
    del invocation
    return parse_options(raw)


def run(options: SweepOptions, invocation: Invocation) -> dict[str, Any]:
    """The handler frame's `run`: sweep with dependencies from the FC context, then the
    report (stored when `CERTPILOT_REPORT_BUCKET` is set) and the notifications
    (`run.finish`).

    Raises:
        ConfigError: the settings or credentials cannot be used.
        CloudError: the account cannot be listed at all.
    """
    import uuid

    from certpilot.discovery.inventory import discover
    from certpilot.jobs.check_expiry import fanout
    from certpilot.jobs.check_expiry.run import finish

    deps = build_deps(invocation.context, settings=invocation.settings)
    if options.shard is not None:
        return fanout.run_shard(options, deps)
    inventory = discover(deps.clients, deps.settings)
    split = fanout.fan_out(options, deps, inventory, fanout.self_function(invocation.context))
    if split is not None:
        return split
    result = sweep_inventory(options, deps, inventory)
    done = finish(result, deps, run_id=deps.request_id or str(uuid.uuid4()), finished=deps.clock())
    summary = render(result, request_id=deps.request_id)
    summary["report"] = {
        "stored": done.stored is not None,
        "keys": list(done.stored.keys) if done.stored else [],
        "error": done.store_error,
        "previousError": done.previous_error,
    }
    summary["notify"] = done.notified.to_dict()
    # The previous run's rollouts, as this run found them (the report rows carry them).
    summary["settledRepairs"] = [
        {"domain": row.domain, "casId": r.cas_id, "status": r.status.value}
        for row in done.report.rows
        for r in row.repairs
        if r.status.settled
    ]
    return summary


# -- gathering ------------------------------------------------------------------------


def _load_catalog(
    deps: Deps,
    trust: TrustStore,
    listing: Listing,
    records: Sequence[DomainRecord],
    pems: dict[int, str] | None = None,
) -> tuple[Catalog, frozenset[int]]:
    """The catalog of the certificates covering the swept domains or configured on one
    of them, and the ids whose detail call failed (their domains cannot be judged). One
    detail call per certificate, without its PEM (which would bring the key)."""
    from certpilot.discovery.catalog import from_detail, order_revoked, trusted_names

    wanted = _relevant(listing.summaries, records)
    if not wanted:
        return Catalog(certificates=()), frozenset()
    anchors = trusted_names(trust)

    def detail(summary: Any) -> CatalogCert | int:
        try:
            got = deps.clients.cas.get_certificate(summary.cas_id, with_pem=pems is not None)
        except CloudError as error:
            event(
                _log,
                "certificate detail unreadable",
                level=logging.WARNING,
                certId=summary.cas_id,
                code=error.code,
            )
            return int(summary.cas_id)
        if pems is not None and got.cert_pem:
            pems[int(summary.cas_id)] = certificates_only(got.cert_pem)
        return from_detail(got, anchors, revoked=order_revoked(got, listing.revoked_orders))

    workers = max(1, min(len(wanted), deps.settings.concurrency))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="catalog") as pool:
        answers = list(pool.map(with_context(detail), wanted))
    certificates = sorted((a for a in answers if not isinstance(a, int)), key=lambda c: c.cas_id)
    failed = frozenset(a for a in answers if isinstance(a, int))
    return Catalog(certificates=tuple(certificates)), failed


def _relevant(summaries: Sequence[Any], records: Sequence[DomainRecord]) -> list[Any]:
    """The listed certificates that cover a swept domain or are configured on one."""
    from certpilot.core.names import covers

    names = [r.name for r in records]
    configured = {
        c.cas_id for r in records for c in (r.deployed, r.oss_hosted) if c and c.cas_id is not None
    }

    def relevant(summary: Any) -> bool:
        sans = summary.sans or (summary.common_name,)
        return summary.cas_id in configured or any(covers(sans, n) or n in sans for n in names)

    return [s for s in summaries if relevant(s)]


def read_catalog(
    deps: Deps,
    trust: TrustStore,
    records: Sequence[DomainRecord],
    pems: dict[int, str] | None = None,
) -> tuple[Listing, Catalog, frozenset[int]]:
    """The CAS listing, the catalog of the certificates that matter to `records`
    (`_load_catalog`), and the ids whose detail call failed. With `pems` each detail
    call brings the certificate's public PEM chain too, collected there (certificate
    blocks only: CAS's key is dropped by the adapter, and anything else here).

    Raises:
        CloudError: the CAS listing cannot be read at all (after retries).
    """
    from certpilot.discovery import catalog as catalog_module

    listing = catalog_module.list_all(deps.clients, include_expired=True)
    catalog, unreadable = _load_catalog(deps, trust, listing, records, pems)
    return listing, catalog, unreadable


_CERTIFICATE_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----"
)


def certificates_only(pem: str) -> str:
    """The CERTIFICATE blocks of `pem`, nothing else (a key block never passes)."""
    return "\n".join(m.group(0) for m in _CERTIFICATE_BLOCK.finditer(pem)) + "\n"


def _from_shared(
    shared: SharedCatalog, records: Sequence[DomainRecord]
) -> tuple[Listing, Catalog, frozenset[int]]:
    """What `read_catalog` answers for `records`, from the catalog the coordinator read
    for the whole run (no CAS call)."""
    from certpilot.discovery.catalog import Listing

    wanted = {s.cas_id for s in _relevant(shared.summaries, records)}
    catalog = Catalog(tuple(c for c in shared.catalog.certificates if c.cas_id in wanted))
    return Listing(usable=shared.summaries), catalog, shared.unreadable & wanted


def _pems_of(catalog_read: SharedCatalog | None) -> Mapping[int, str]:
    return {} if catalog_read is None else catalog_read.pems


def _policies(deps: Deps, records: Sequence[DomainRecord]) -> dict[str, PolicyView | None]:
    """Per bucket with OSS custom domains: its HTTPS-only statement, or None when the
    policy could not be read. One GetBucketPolicy per bucket."""
    from certpilot.jobs.enforce_https.policy import fallback_until, find_ours, parse_document

    buckets = sorted(
        {(r.bucket, r.region) for r in records if r.route is Route.OSS and r.bucket and r.region}
    )

    def read(item: tuple[str, str]) -> tuple[str, PolicyView | None]:
        bucket, region = item
        try:
            text = deps.clients.oss.get_bucket_policy(bucket, region)
        except CloudError as error:
            event(
                _log,
                "bucket policy unreadable",
                level=logging.WARNING,
                bucket=bucket,
                code=error.code,
            )
            return bucket, None
        try:
            ours = bool(find_ours(parse_document(text), bucket)) if text else False
        except ValueError:
            ours = False
        return bucket, PolicyView(statement=ours, fallback_until=fallback_until(text, bucket))

    if not buckets:
        return {}
    workers = max(1, min(len(buckets), deps.settings.concurrency))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="policy") as pool:
        return dict(pool.map(with_context(read), buckets))


def _cdn_fallbacks(
    deps: Deps, records: Sequence[DomainRecord]
) -> dict[str, datetime | None] | None:
    """The recorded emergency fallback end of every CDN domain that has one (one tag
    listing, `enforce_https.fallback.cdn_fallbacks`); None when it could not be read."""
    if not any(r.route is Route.CDN for r in records):
        return {}
    from certpilot.jobs.enforce_https.fallback import cdn_fallbacks

    try:
        return cdn_fallbacks(deps.clients.cdn)
    except CloudError as error:
        event(_log, "CDN fallbacks unreadable", level=logging.WARNING, code=error.code)
        return None


def _chain_codes(served: ServedCert, trust: TrustStore, now: datetime) -> tuple[Code, ...]:
    """The codes of the signature-checking judgement of the chain the edge sent."""
    if not served.chain:
        return ()
    try:
        return _judged_chain(served.chain, trust, now)
    except Exception as err:  # what a server sent may not parse: the handshake judged it
        event(_log, "served chain not judged", domain=served.domain, error=type(err).__name__)
        return ()


# Many domains share a certificate: a sweep judges each distinct served chain once (the
# key holds the sweep's trust store and `now`, so another sweep judges afresh).
@functools.lru_cache(maxsize=256)
def _judged_chain(chain: tuple[bytes, ...], trust: TrustStore, now: datetime) -> tuple[Code, ...]:
    from cryptography import x509

    from certpilot.certs import CertBundle
    from certpilot.certs.candidate import judge_candidate

    certs = [x509.load_der_x509_certificate(der) for der in chain]
    verdict = judge_candidate(CertBundle.from_certificates(certs), now=now, trust=trust)
    return tuple(dict.fromkeys(f.code for f in verdict.findings))


@dataclass
class _Look:
    """What the live probes of one domain saw."""

    served: ServedCert | None = None
    web: WebView | None = None
    gaps: list[Gap] = field(default_factory=list)
    chain_codes: tuple[Code, ...] = ()


def _look(record: DomainRecord, deps: Deps, trust: TrustStore, now: datetime) -> _Look:
    """Probe one domain from outside: TLS handshake, then plain HTTP and HTTPS GETs."""
    from certpilot.probe.tls import Probes, probe_name
    from certpilot.probe.web import fetch_https

    probes = Probes.from_settings(deps.settings)
    name = probe_name(record.name)
    look = _Look()
    try:
        look.served = probes.https(name, edge_host=record.edge_host)
    except Exception as err:  # a probe's bug must not stop the sweep
        event(
            _log,
            "probe failed",
            level=logging.WARNING,
            domain=record.name,
            error=type(err).__name__,
        )
    if record.deployed is None:
        return look
    if look.served is None or look.served.fingerprint is None:
        look.gaps.append(Gap.PROBE_FAILED)
        return look
    look.chain_codes = _chain_codes(look.served, trust, now)
    try:
        plain = probes.http(name)
    except OSError:
        look.gaps.append(Gap.HTTP_UNANSWERED)
        return look
    answered, hsts = False, None
    if look.served.ok:
        from certpilot.probe.tls import edge_address

        try:
            secure = fetch_https(
                name,
                edge=edge_address(record.edge_host, deps.settings.edge_https),
                ca_bundle=deps.settings.ca_bundle,
                timeout=deps.settings.connect_timeout,
            )
            answered, hsts = True, secure.headers.get("strict-transport-security")
        except (OSError, ssl.SSLError):
            answered = False
    look.web = WebView(plain.status, plain.location, answered, hsts)
    return look


def _revoked(looks: Mapping[str, _Look], deps: Deps, trust: TrustStore) -> frozenset[str]:
    """The domains whose served certificate its CA says is revoked: each distinct
    served chain asked once (`certs.revocation.check_many`)."""
    from certpilot.jobs.deploy_cert.engine import _pem

    timeout = deps.settings.revocation_timeout
    chains = {
        domain: _pem(look.served.chain)
        for domain, look in looks.items()
        if look.served is not None and look.served.chain and look.served.fingerprint
    }
    if timeout <= 0 or not chains:
        return frozenset()
    from certpilot.certs.revocation import check_many

    verdicts = check_many(
        chains, trust=trust, timeout=timeout, concurrency=deps.settings.concurrency
    )
    return frozenset(d for d, v in verdicts.items() if v.revoked)


MAX_ASK_ROUNDS = 3


def _ask_revoked(
    deps: Deps,
    trust: TrustStore,
    catalog: Catalog,
    wanted: set[int],
    pems_known: Mapping[int, str],
) -> tuple[Catalog, bool]:
    """Ask the CA of each certificate of `wanted` whether it is revoked (its PEM: one
    detail call each); `catalog` with those it says are revoked marked so, and those
    whose PEM shows a weak key or digest marked with it (never rolled out: `usable`),
    and whether any was marked. A certificate whose PEM cannot be read is taken as not
    revoked, as an UNKNOWN answer is. A PEM in `pems_known` (the run's catalog) is not
    read again."""
    from certpilot.certs.revocation import check_many

    pems: dict[int, str] = {}
    for cas_id in sorted(wanted):
        if cas_id in pems_known:
            pems[cas_id] = pems_known[cas_id]
            continue
        try:
            pem = deps.clients.cas.get_certificate(cas_id, with_pem=True).cert_pem
        except CloudError:
            continue
        if pem:
            pems[cas_id] = pem
    verdicts = check_many(
        pems,
        trust=trust,
        timeout=deps.settings.revocation_timeout,
        concurrency=deps.settings.concurrency,
    )
    revoked = {cas_id for cas_id, verdict in verdicts.items() if verdict.revoked}
    weak = {cas_id: codes for cas_id, codes in _strength(pems).items() if codes}
    if not revoked and not weak:
        return catalog, False
    marked = tuple(
        replace(
            c,
            revoked=c.revoked or c.cas_id in revoked,
            problems=tuple(dict.fromkeys((*c.problems, *weak.get(c.cas_id, ())))),
        )
        for c in catalog.certificates
    )
    return Catalog(certificates=marked), True


def _strength(pems: Mapping[int, str]) -> dict[int, tuple[Code, ...]]:
    """WEAK_KEY / WEAK_SIGNATURE of each certificate's chain, from its PEM: what the CAS
    listing cannot tell, and what would make a rollout a finding of the next sweep."""
    from certpilot.certs.candidate import parse_candidate
    from certpilot.certs.validate import check_strength

    found: dict[int, tuple[Code, ...]] = {}
    for cas_id, pem in pems.items():
        try:
            bundle = parse_candidate(pem)
        except Exception as err:  # unparseable: deploy-cert judges it again
            event(_log, "candidate not parsed", certId=cas_id, error=type(err).__name__)
            continue
        found[cas_id] = tuple(dict.fromkeys(f.code for f in check_strength(bundle, "")))
    return found


def _backups_asked(
    deps: Deps,
    trust: TrustStore,
    catalog: Catalog,
    records: Sequence[DomainRecord],
    looks: Mapping[str, _Look],
    now: datetime,
    asked: set[int],
    pems_known: Mapping[int, str],
) -> Catalog:
    """`catalog` with the would-be backups its CA says are revoked marked so (CAS does
    not know of an uploaded certificate's revocation). Only the best backup of each
    domain is asked, each certificate once, and again for the next best while one
    turns out revoked (at most `MAX_ASK_ROUNDS`). `asked` collects the ids asked."""
    if deps.settings.revocation_timeout <= 0:
        return catalog
    for _ in range(MAX_ASK_ROUNDS):
        wanted: set[int] = set()
        for record in records:
            if record.deployed is None:
                continue
            known = catalog.by_id(record.deployed.cas_id) if record.deployed.cas_id else None
            look = looks.get(record.name)
            issuer = (
                known.issuer if known else (look.served.issuer if look and look.served else None)
            )
            backup = best_backup(record.name, catalog, now, issuer, record.deployed.cas_id)
            if backup is not None and backup.cas_id not in asked:
                wanted.add(backup.cas_id)
        if not wanted:
            break
        asked |= wanted
        catalog, any_revoked = _ask_revoked(deps, trust, catalog, wanted, pems_known)
        if not any_revoked:
            break
    return catalog


def _rollouts(
    deps: Deps,
    trust: TrustStore,
    catalog: Catalog,
    records: Sequence[DomainRecord],
    rows: Sequence[Row],
    now: datetime,
    asked: set[int],
    pems_known: Mapping[int, str],
) -> tuple[Rollout, ...]:
    """The rollouts to invoke (`repair.plan_rollouts`), each certificate's CA asked
    first: a revoked one, or one whose PEM shows a weak key or digest (which the next
    sweep would find again), is dropped and the next best taken (at most
    `MAX_ASK_ROUNDS`)."""
    verdicts = {row.domain: row.verdict for row in rows}
    rollouts = plan_rollouts(records, verdicts, catalog, now)
    if deps.settings.revocation_timeout <= 0:
        return rollouts
    for _ in range(MAX_ASK_ROUNDS):
        wanted = {r.cas_id for r in rollouts} - asked
        if not wanted:
            break
        asked |= wanted
        catalog, any_marked = _ask_revoked(deps, trust, catalog, wanted, pems_known)
        if any_marked:
            rollouts = plan_rollouts(records, verdicts, catalog, now)
    return tuple(r for r in rollouts if not _marked_in(catalog, r.cas_id))


def _marked_in(catalog: Catalog, cas_id: int) -> bool:
    """Whether its CA revoked the certificate or its PEM showed a weak key or digest."""
    cert = catalog.by_id(cas_id)
    return cert is not None and (
        cert.revoked or bool({Code.WEAK_KEY, Code.WEAK_SIGNATURE} & set(cert.problems))
    )


def catalog_findings(catalog: Catalog) -> tuple[Finding, ...]:
    """CERT_REVOKED (a warning: it is on no domain) for each CAS certificate known to be
    revoked (by CAS or its CA)."""
    return tuple(
        make_finding(
            Code.CERT_REVOKED,
            c.common_name or c.name,
            f"CAS still holds certificate {c.cas_id} ({c.name}), which its CA revoked:"
            " it is never deployed or used as a backup; delete it from CAS",
            # Nothing serves it: worth cleaning up, not an outage.
            severity=Severity.WARNING,
        )
        for c in catalog.certificates
        if c.revoked
    )


def _served(look: _Look, revoked: bool) -> Served | None:
    from certpilot.probe.tls import served_finding_code

    seen = look.served
    if seen is None or seen.fingerprint is None:
        return None
    return Served(
        sha256=seen.fingerprint,
        sha1=seen.fingerprint_sha1,
        not_before=seen.not_before,
        not_after=seen.not_after,
        issuer=seen.issuer,
        sans=seen.sans,
        rejected=served_finding_code(seen),
        chain_codes=look.chain_codes,
        revoked=revoked,
    )


def _probe_all(
    records: Sequence[DomainRecord],
    deps: Deps,
    trust: TrustStore,
    now: datetime,
    progress: Progress | None,
) -> dict[str, _Look]:
    """`_look` of every record, at most `CERTPILOT_CONCURRENCY` at once; a domain not
    started before the run's deadline is OUT_OF_TIME."""
    total = len(records)
    done = 0

    def one(record: DomainRecord) -> _Look:
        if deps.deadline is not None and time.monotonic() >= deps.deadline:
            return _Look(gaps=[Gap.OUT_OF_TIME])
        return _look(record, deps, trust, now)

    looks: dict[str, _Look] = {}
    if not records:
        return looks
    workers = max(1, min(total, deps.settings.concurrency))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
        for record, look in zip(records, pool.map(with_context(one), records), strict=True):
            looks[record.name] = look
            done += 1
            if progress is not None:
                progress(done, total, record.name)
    return looks


# -- the sweep --------------------------------------------------------------------------


def _scoped(inventory: Inventory, options: SweepOptions) -> list[DomainRecord]:
    # Bucket domains are Alibaba's own (DESIGN §4): never judged, never modified.
    return [
        r
        for r in inventory.domains
        if r.route is not Route.BUCKET_DOMAIN and in_scope(r, options.scope)
    ]


def sweep(options: SweepOptions, deps: Deps, *, progress: Progress | None = None) -> SweepResult:
    """Judge every domain in scope (module docstring). Reads only.

    Raises:
        CloudError: the inventory or the CAS listing cannot be read at all (after
            retries): without them no domain can be named, let alone judged.
    """
    from certpilot.discovery import inventory as inventory_module

    return sweep_inventory(
        options, deps, inventory_module.discover(deps.clients, deps.settings), progress=progress
    )


def sweep_inventory(
    options: SweepOptions,
    deps: Deps,
    inventory: Inventory,
    *,
    progress: Progress | None = None,
    invoke: bool = True,
    defer_buckets: frozenset[str] = frozenset(),
    catalog_read: SharedCatalog | None = None,
) -> SweepResult:
    """`sweep` of the domains of `inventory` (already listed). With `invoke` false (a
    shard) the rollouts are planned, not invoked (`SweepResult.planned`); drifted
    enforcement of OSS domains of `defer_buckets` is left to the merge
    (`SweepResult.deferred`). With `catalog_read` (a shard) the CAS catalog is the one the
    coordinator read, and CAS is not listed again.

    Raises:
        CloudError: the CAS listing cannot be read at all (after retries).
    """
    from certpilot.discovery import inventory as inventory_module

    started = time.monotonic()
    now = deps.clock()
    trust = deps.trust_store()
    records = _scoped(inventory, options)
    if catalog_read is None:
        listing, catalog, unreadable = read_catalog(deps, trust, records)
    else:
        listing, catalog, unreadable = _from_shared(catalog_read, records)
    cdn_named = [r.name for r in records if r.route is Route.CDN and r.deployed is not None]
    if cdn_named:
        inventory = inventory_module.with_cert_ids(
            inventory,
            deps.clients,
            cdn_named,
            cas=listing.summaries,
            regions={c.cas_id: c.region for c in catalog.certificates},
        )
        records = _scoped(inventory, options)
    # The bucket policies and the fallback tags are read while the probes run: both are
    # needed only to judge, and at scale their QPS time would otherwise come first.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="side-reads") as side:
        policies_read = side.submit(with_context(_policies), deps, records)
        cdn_ends_read = side.submit(with_context(_cdn_fallbacks), deps, records)
        looks = _probe_all(records, deps, trust, now, progress)
        policies, cdn_ends = policies_read.result(), cdn_ends_read.result()
    revoked = _revoked(looks, deps, trust)
    asked: set[int] = set()
    pems_known = _pems_of(catalog_read)
    catalog = _backups_asked(deps, trust, catalog, records, looks, now, asked, pems_known)
    policy = JudgePolicy(renew_days=deps.settings.renew_days)
    rows = []
    for record in records:
        look = looks.get(record.name) or _Look(gaps=[Gap.OUT_OF_TIME])
        gaps = list(look.gaps)
        view: PolicyView | None = None
        if record.route is Route.OSS and record.deployed is not None:
            view = policies.get(record.bucket or "")
            if view is None:
                gaps.append(Gap.POLICY_UNREADABLE)
        deployed = record.deployed
        if record.route is Route.CDN and deployed is not None and cdn_ends is None:
            gaps.append(Gap.FALLBACK_UNREADABLE)
        # The configured certificate, or one that might be its backup, is unreadable.
        if deployed is not None and (
            deployed.cas_id in unreadable or _backup_unknown(record, listing, unreadable)
        ):
            gaps.append(Gap.CERTIFICATE_UNREADABLE)
        state = DomainState(
            record=record,
            served=_served(look, record.name in revoked),
            web=look.web,
            policy=view,
            gaps=tuple(gaps),
            cdn_fallback_until=(cdn_ends or {}).get((record.api_name or record.name).lower()),
            probe_error=(
                look.served.error if look.served is not None and Gap.PROBE_FAILED in gaps else None
            ),
        )
        rows.append(
            Row(record.name, record.route, record.bucket, judge(state, catalog, now, policy))
        )
    repairs: tuple[RolloutResult, ...] = ()
    restored: tuple[Restore, ...] = ()
    planned: tuple[Rollout, ...] = ()
    deferred: tuple[str, ...] = ()
    if not options.report_only:
        verdicts = {row.domain: row.verdict for row in rows}
        drifted = plan_enforcements(records, verdicts)
        shared = {r.name for r in records if r.route is Route.OSS and r.bucket in defer_buckets}
        deferred = tuple(d for d in drifted if d in shared)
        codes = {d: verdicts[d].codes for d in drifted}
        restored = restore_enforcement([d for d in drifted if d not in shared], codes, deps)
        rollouts = _rollouts(deps, trust, catalog, records, rows, now, asked, pems_known)
        if invoke:
            repairs = invoke_rollouts(
                rollouts, deps.clients.fc, deps.settings.deploy_function, deps.request_id
            )
        else:
            planned = rollouts
    return SweepResult(
        planned=planned,
        deferred=deferred,
        options=options,
        repairs=repairs,
        restored=restored,
        catalog_findings=catalog_findings(catalog),
        now=now,
        rows=tuple(rows),
        buckets=len(inventory.buckets),
        certificates=len(catalog.certificates),
        elapsed=time.monotonic() - started,
    )


def _backup_unknown(record: DomainRecord, listing: Listing, unreadable: frozenset[int]) -> bool:
    """Whether a certificate that might be the domain's backup could not be read."""
    from certpilot.core.names import covers

    return any(
        s.cas_id in unreadable and covers(s.sans or (s.common_name,), record.name)
        for s in listing.summaries
    )


# -- the summary ----------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def row_dict(
    row: Row,
    now: datetime,
    repairs: Sequence[RolloutResult] = (),
    restored: Sequence[Restore] = (),
) -> dict[str, Any]:
    """One domain's row, JSON-ready (fields chosen to map onto the report's rows), with
    the repairs meant for it."""
    v = row.verdict
    mine = [r for r in repairs if row.domain in r.rollout.domains]
    return {
        "domain": row.domain,
        "location": row.location.value,
        "bucket": row.bucket,
        "certificate": {"casId": v.cas_id, "name": v.certificate}
        if v.certificate or v.cas_id
        else None,
        "issuer": v.issuer,
        "notAfter": _iso(v.not_after),
        "expiresInDays": v.expires_in_days(now),
        "httpsForced": v.https_forced,
        "hsts": v.hsts,
        "backup": v.backup,
        "judged": v.judged,
        "findings": [f.to_dict() for f in v.findings],
        "repairs": [_repair_dict(r, row.domain) for r in mine]
        + [_restore_dict(r) for r in restored if r.domain == row.domain],
    }


def _restore_dict(restore: Restore) -> dict[str, Any]:
    return {
        "kind": RepairKind.ENFORCEMENT_RESTORED.value,
        "status": restore.status.value,
        "casId": None,
        "domains": [restore.domain],
        "fixes": [c.value for c in restore.fixes],
        "errorCode": restore.error_code,
    }


def _repair_dict(result: RolloutResult, domain: str | None = None) -> dict[str, Any]:
    """One invocation, JSON-ready; its kind is the one for `domain` (None: the whole
    invocation, DEPLOY_INVOKED, its failovers listed in `failedOver`)."""
    kind = result.rollout.kind(domain) if domain is not None else RepairKind.DEPLOY_INVOKED
    return {
        "kind": kind.value,
        "status": result.status.value,
        "casId": result.rollout.cas_id,
        "domains": list(result.rollout.domains),
        "failedOver": list(result.rollout.failed_over),
        "fixes": [c.value for c in result.rollout.fixes],
        "errorCode": result.error_code,
    }


def totals(findings: Sequence[Finding]) -> dict[str, Any]:
    """Counts by severity (every severity) and by code (codes present)."""
    by_code: dict[str, int] = {}
    for finding in findings:
        by_code[finding.code.value] = by_code.get(finding.code.value, 0) + 1
    return {
        "bySeverity": {s.value: n for s, n in count_by_severity(findings).items()},
        "byCode": dict(sorted(by_code.items())),
    }


def render(result: SweepResult, *, request_id: str | None = None) -> dict[str, Any]:
    """The sweep's JSON summary: status, `reportOnly`, the repairs invoked, totals, the
    domains not judged, and a row per domain."""
    status = result.status
    return {
        "function": FUNCTION,
        "requestId": request_id,
        "ok": True,
        "status": status.value,
        "allClear": status is SweepStatus.CLEAR,
        "reportOnly": result.options.report_only,
        "scope": result.options.scope,
        "trigger": result.options.trigger,
        "now": _iso(result.now),
        "domains": len(result.rows),
        "buckets": result.buckets,
        "certificates": result.certificates,
        "notJudged": list(result.not_judged),
        "totals": totals(result.findings),
        "repairs": [_repair_dict(r) for r in result.repairs],
        "restored": [_restore_dict(r) for r in result.restored],
        "rows": [row_dict(row, result.now, result.repairs, result.restored) for row in result.rows],
        "catalogFindings": [f.to_dict() for f in result.catalog_findings],
        "elapsedSeconds": round(result.elapsed, 3),
    }
