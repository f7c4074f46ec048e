"""The certificates CAS holds, parsed into `model.CatalogCert` (never their keys).

`load()` lists the usable certificates (ListUserCertificateOrder OrderType=CERT: CAS
returns ISSUED and WILLEXPIRED by default), then reads each one's details
(GetUserCertificateDetail with CertFilter=true: no PEM, no key) for exact validity
dates, `CertIdentifier` and the chain.

Revocation: a certificate row says nothing of it (CAS does not learn that a CA revoked
an uploaded certificate); CAS reports it only for purchased certificates, as the
`Status` REVOKED of their order (OrderType BUY / CPACK), which names the certificate by
`OrderId` / `InstanceId` (as its detail does). Those are marked revoked here; any other
certificate's revocation is asked of its CA (`certpilot.certs.revocation`, by the jobs).

A candidate about to be written (`load_candidate`) is judged from its PEM chain with
signatures (`certs.candidate`): see there. Every other certificate (what is deployed
now, read to plan around it) is judged without its PEM, since reading the PEM makes
CAS send the private key too: its chain completeness is judged from `CertChain[]`
(CommonName / IssuerCommonName of each certificate, leaf first) against the trust
store, by subject common names, and the live probe of what the edge serves judges
the rest. Limitations of that names-only judgement: no signature is checked and two
CAs with the same common name are not told apart. A missing issuer of the leaf is
CHAIN_INCOMPLETE, a missing issuer of a supplied intermediate is UNTRUSTED_ROOT (a
second missing intermediate looks the same).
When CAS sends no `CertChain` at all the chain is not judged (counted complete).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from certpilot.core.certref import DEFAULT_REGION, CertRef
from certpilot.core.cloudtypes import CasDetail, CasOrder, CasSummary, ChainEntry
from certpilot.core.errors import AuthError, CloudError, NotFoundError
from certpilot.core.findings import Code, Finding, make_finding
from certpilot.core.log import event, get_logger, with_context
from certpilot.core.model import Catalog, CatalogCert
from certpilot.core.names import covers, normalize_domain

if TYPE_CHECKING:
    from certpilot.certs.trust import TrustStore
    from certpilot.cloud.cas import CasAdapter
    from certpilot.cloud.clients import CloudClients

_log = get_logger(__name__)
MAX_WORKERS = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def trusted_names(trust: TrustStore) -> frozenset[str]:
    """The subject common names (lower-cased) of the trust store's anchors."""
    from cryptography.x509.oid import NameOID

    names = set()
    for anchor in trust.certificates:
        for attribute in anchor.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            value = attribute.value
            names.add((value.decode() if isinstance(value, bytes) else value).strip().lower())
    return frozenset(names)


def judge_chain(
    leaf_common_name: str, chain: Sequence[ChainEntry] | None, anchors: frozenset[str]
) -> tuple[bool, tuple[Code, ...]]:
    """(complete, finding codes) for a `CertChain[]` judged by names against `anchors`.

    Walks issuer names from the leaf: complete when it reaches a name in `anchors`
    (or a supplied self-issued root that is one). CHAIN_INCOMPLETE when the leaf's
    issuer is neither supplied nor an anchor; UNTRUSTED_ROOT when the walk ends at a
    self-issued certificate that is not an anchor, or at a supplied intermediate
    whose issuer is unknown; CHAIN_ORDER when the supplied certificates are not
    leaf-first, each followed by its issuer.
    """
    if not chain:
        return True, ()
    remaining = list(chain)
    leaf = leaf_common_name.strip().lower()
    index = next(
        (i for i, e in enumerate(remaining) if e.common_name.strip().lower() == leaf), None
    )
    problems: list[Code] = []
    if index is None:
        # No entry for the leaf: the first one is taken as the leaf's issuer.
        return _walk(remaining.pop(0), remaining, anchors, problems, at_leaf=False)
    if index != 0:
        problems.append(Code.CHAIN_ORDER)
    current = remaining.pop(index)
    return _walk(current, remaining, anchors, problems, at_leaf=True)


def _walk(
    current: ChainEntry,
    remaining: list[ChainEntry],
    anchors: frozenset[str],
    problems: list[Code],
    *,
    at_leaf: bool,
) -> tuple[bool, tuple[Code, ...]]:
    for _ in range(len(remaining) + 1):
        subject = current.common_name.strip().lower()
        issuer = current.issuer_common_name.strip().lower()
        if subject == issuer:
            if subject in anchors:
                return True, tuple(problems)
            return False, (*problems, Code.UNTRUSTED_ROOT)
        if issuer in anchors:
            return True, tuple(problems)
        index = next(
            (i for i, e in enumerate(remaining) if e.common_name.strip().lower() == issuer),
            None,
        )
        if index is None:
            # The leaf's own issuer missing: an intermediate was left out. A supplied
            # intermediate whose issuer is unknown: the chain ends at a CA we do not
            # trust. (By names alone a second missing intermediate looks the same.)
            code = Code.CHAIN_INCOMPLETE if at_leaf else Code.UNTRUSTED_ROOT
            return False, (*problems, code)
        if index != 0 and Code.CHAIN_ORDER not in problems:
            problems.append(Code.CHAIN_ORDER)
        current = remaining.pop(index)
        at_leaf = False
    return False, (*problems, Code.CHAIN_INCOMPLETE)


def _sans(names: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for name in names:
        normalized = normalize_domain(name)
        if normalized is not None:
            seen.setdefault(normalized, None)
    return tuple(seen)


def _region_of(identifier: str) -> str:
    ref = CertRef.find(identifier)
    return ref.region if ref is not None else DEFAULT_REGION


def from_detail(
    detail: CasDetail, anchors: frozenset[str], *, revoked: bool = False
) -> CatalogCert:
    """A CatalogCert from GetUserCertificateDetail (pure)."""
    complete, problems = judge_chain(detail.common_name, detail.chain, anchors)
    sans = _sans(detail.sans or (detail.common_name,))
    return CatalogCert(
        cas_id=detail.cas_id,
        identifier=detail.identifier,
        name=detail.name,
        common_name=detail.common_name,
        sans=sans,
        issuer=detail.issuer,
        not_before=detail.not_before or _EPOCH,
        not_after=detail.not_after or _EPOCH,
        fingerprint_sha256=detail.sha256 or "",
        region=_region_of(detail.identifier),
        revoked=revoked,
        chain_complete=complete,
        problems=problems,
    )


def from_summary(summary: CasSummary, region: str) -> CatalogCert:
    """A CatalogCert from the listing alone (no detail call).

    The listing's dates are calendar days, so validity is approximate; the chain is
    not judged; a certificate row's Status is not revocation (module docstring).
    """
    return CatalogCert(
        cas_id=summary.cas_id,
        identifier=CertRef(summary.cas_id, region).identifier,
        name=summary.name,
        common_name=summary.common_name,
        sans=_sans(summary.sans or (summary.common_name,)),
        issuer=summary.issuer,
        not_before=summary.start or _EPOCH,
        not_after=summary.end or _EPOCH,
        fingerprint_sha256=summary.sha256 or "",
        region=region,
    )


def order_revoked(detail: CasDetail, orders: Iterable[CasOrder]) -> bool:
    """Whether one of the revoked `orders` is `detail`'s (by OrderId, else InstanceId)."""
    for order in orders:
        if detail.order_id is not None and order.order_id == detail.order_id:
            return True
        if detail.instance_id and order.instance_id == detail.instance_id:
            return True
    return False


def _revoked(cas: CasAdapter) -> list[CasOrder]:
    # Status=REVOKED is documented for CPACK/BUY orders. A refusal costs only the
    # revoked flag of purchased certificates (their CA's OCSP/CRL still tells), so it
    # does not fail the catalog.
    try:
        return cas.list_orders("REVOKED")
    except CloudError as error:
        if error.retryable or isinstance(error, AuthError):
            raise
        event(_log, "revoked certificates not listed", code=error.code)
        return []


def load_candidate(
    clients: CloudClients,
    trust: TrustStore,
    cas_id: int,
    now: datetime,
    *,
    renew_days: int = 30,
) -> CatalogCert | None:
    """The certificate a job is about to write, judged from its PEM chain with
    signatures (`judge_detail`), or None when CAS does not hold it. One detail call
    with CertFilter=false; the adapter drops the key it brings. Revocation is not in
    the detail: the listing carries it.

    Raises:
        CloudError: the CAS call failed after retries (other than not-found).
        TrustStoreError: the trust store cannot be loaded.
    """
    try:
        detail = clients.cas.get_certificate(cas_id, with_pem=True)
    except NotFoundError:
        return None
    return judge_detail(detail, trust, now, renew_days=renew_days)


# Warnings about the candidate that the plan judges itself (with its own `now`).
_PLAN_JUDGES = frozenset({Code.CERT_EXPIRING})


def judge_detail(
    detail: CasDetail, trust: TrustStore, now: datetime, *, renew_days: int = 30
) -> CatalogCert:
    """A CatalogCert whose `findings` / `problems` come from the signature-checking
    pre-write check of `detail.cert_pem` (pure but for loading the trust store).

    The PEM is authoritative: names, dates and fingerprint are the leaf's. CAS's
    `CertChain` may be missing, partial or list the leaf; the chain judged is the
    PEM's, normalised leaf first with duplicates removed (CHAIN_ORDER, a warning).
    UNCONFIRMED (chosen): `Cert` is the chain CAS serves, intermediates included, and
    `CertChain` describes the same certificates. Under the other reading (`Cert` holds
    the leaf, CAS serves the intermediates that `CertChain` lists), a PEM chain that
    stops at an issuer `CertChain` names is judged complete or not by those names
    (`judge_chain`) instead of refused; everything else is still checked.
    Without `Cert` at all, the names-only judgement of `from_detail` is all there is
    (`signatures_checked` False). A `Cert` that does not parse is NOT_PEM (refused).
    Raises ValueError for a naive `now`, TrustStoreError for an unusable trust store.
    """
    # Imported here: cryptography is not loaded at import time (cold starts).
    from certpilot.certs import CertificateError
    from certpilot.certs.candidate import issuer_listed, judge_candidate, parse_candidate

    anchors = trusted_names(trust)
    base = from_detail(detail, anchors)
    subject = detail.common_name or detail.name or str(detail.cas_id)
    if detail.cert_pem is None:
        event(_log, "candidate signatures not checked: CAS sent no Cert", certId=detail.cas_id)
        return base
    try:
        bundle = parse_candidate(detail.cert_pem)
    except CertificateError as error:
        finding = make_finding(
            Code.NOT_PEM,
            subject,
            f"certificate {detail.cas_id}: CAS's certificate text is not a readable PEM chain"
            f" ({type(error).__name__})",
        )
        return replace(base, problems=(Code.NOT_PEM,), findings=(finding,), signatures_checked=True)
    verdict = judge_candidate(bundle, now=now, trust=trust, subject=subject, renew_days=renew_days)
    findings: list[Finding] = [f for f in verdict.findings if f.code not in _PLAN_JUDGES]
    missing = verdict.missing_issuer
    listed = [entry.common_name for entry in detail.chain or ()]
    if missing is not None and issuer_listed(missing, listed):
        findings = [f for f in findings if f.code is not Code.CHAIN_INCOMPLETE]
        _, codes = judge_chain(detail.common_name, detail.chain, anchors)
        findings += [
            make_finding(
                code,
                subject,
                f"certificate {detail.cas_id}: {code.meaning} (judged by the names CAS"
                " lists in CertChain: its Cert does not carry those certificates)",
            )
            for code in codes
            if code is not Code.CHAIN_ORDER
        ]
        event(
            _log,
            "candidate chain judged by CertChain names: Cert lacks listed intermediates",
            certId=detail.cas_id,
        )
    sans = _sans(verdict.sans)
    unnamed = [n for n in base.sans if n not in sans]
    if unnamed:
        findings.append(
            make_finding(
                Code.NAME_MISMATCH,
                subject,
                f"certificate {detail.cas_id}: CAS lists {', '.join(unnamed[:5])}, which the"
                " certificate itself does not name: it is not deployed there",
            )
        )
    codes_found = tuple(dict.fromkeys(f.code for f in findings))
    return replace(
        base,
        sans=sans,
        not_before=verdict.not_before,
        not_after=verdict.not_after,
        fingerprint_sha256=verdict.fingerprint_sha256,
        chain_complete=Code.CHAIN_INCOMPLETE not in codes_found,
        problems=codes_found,
        findings=tuple(findings),
        signatures_checked=True,
    )


@dataclass(frozen=True)
class Listing:
    """What ListUserCertificateOrder (OrderType=CERT) lists, by status group."""

    usable: tuple[CasSummary, ...]  # ISSUED and WILLEXPIRED (CAS's default)
    expired: tuple[CasSummary, ...] = ()
    revoked_orders: tuple[CasOrder, ...] = ()  # purchased certificates' revoked orders

    @property
    def summaries(self) -> tuple[CasSummary, ...]:
        """Every listed certificate once (by CAS id), usable ones first."""
        seen: dict[int, CasSummary] = {}
        for summary in (*self.usable, *self.expired):
            seen.setdefault(summary.cas_id, summary)
        return tuple(seen.values())


def list_all(
    clients: CloudClients, *, include_expired: bool = False, include_revoked: bool = True
) -> Listing:
    """List the CAS certificates (no detail call): one listing per status group, all pages,
    and (`include_revoked`) the revoked orders of purchased certificates.

    A refused REVOKED filter costs only the revoked orders (see `_revoked`).

    Raises:
        CloudError: a listing failed after retries.
    """
    cas = clients.cas
    return Listing(
        usable=tuple(cas.list_certificates()),
        expired=tuple(cas.list_certificates("EXPIRED")) if include_expired else (),
        revoked_orders=tuple(_revoked(cas)) if include_revoked else (),
    )


def load(
    clients: CloudClients,
    trust: TrustStore,
    now: datetime | None = None,
    *,
    covering: Iterable[str] | None = None,
    include_revoked: bool = True,
    include_expired: bool = False,
    listing: Listing | None = None,
) -> Catalog:
    """Read the CAS catalog (see the module docstring).

    `covering`: only certificates whose listed SANs cover one of these hostnames are
    read in detail and returned (saves a detail call per unrelated certificate).
    `listing`: what `list_all` already listed (with the same include flags), so that a
    caller that also needs the listing lists only once.
    `now` is accepted for symmetry with planning; validity is judged by `plan`.

    Raises:
        CloudError: a CAS call failed after retries.
    """
    del now  # dates are re-judged by plan with its own `now`
    cas = clients.cas
    wanted = list(covering) if covering is not None else None

    def relevant(summary: CasSummary) -> bool:
        if wanted is None:
            return True
        names = summary.sans or (summary.common_name,)
        return any(covers(names, host) or host in names for host in wanted)

    if listing is None:
        listing = list_all(
            clients, include_expired=include_expired, include_revoked=include_revoked
        )
    usable = [s for s in listing.usable if relevant(s)]
    if include_expired:
        usable += [s for s in listing.expired if relevant(s)]
    orders = listing.revoked_orders if include_revoked else ()
    anchors = trusted_names(trust) if usable else frozenset()
    certificates: list[CatalogCert] = []
    if usable:
        workers = max(1, min(len(usable), MAX_WORKERS, clients.settings.concurrency))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="catalog") as pool:
            fetch = with_context(lambda s: cas.get_certificate(s.cas_id))
            details = list(pool.map(fetch, usable))
        certificates = [from_detail(d, anchors, revoked=order_revoked(d, orders)) for d in details]
    certificates.sort(key=lambda c: c.cas_id)
    event(
        _log,
        "catalog",
        certificates=len(certificates),
        revoked=sum(c.revoked for c in certificates),
        incomplete=sum(not c.chain_complete for c in certificates),
    )
    return Catalog(certificates=tuple(certificates))
