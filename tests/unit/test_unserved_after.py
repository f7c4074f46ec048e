"""After a run, a domain whose edge was last seen serving another certificate than the
one configured there is reported (SERVED_MISMATCH), whatever its outcome."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from certpilot.core.findings import Code
from certpilot.core.model import (
    Catalog,
    DeployedCert,
    DomainRecord,
    EdgeObservation,
    Inventory,
    Location,
    Route,
)
from certpilot.core.outcomes import Outcome, Reason, ReasonCode
from certpilot.jobs.deploy_cert.apply import DomainResult
from certpilot.jobs.deploy_cert.engine import unserved_after
from certpilot.jobs.deploy_cert.plan import Rollback, plan_certificate
from tests.unit.fakes import NOW, wildcard_cert

NEW = wildcard_cert("AA" * 32)
OLD = replace(wildcard_cert("BB" * 32), cas_id=1001, identifier="1001-cn-hangzhou", not_after=NOW)
OTHER = "CC" * 32
DOMAIN = "cdn.example.com"
RECORD = DomainRecord(
    DOMAIN,
    Route.CDN,
    "assets",
    "cn-hangzhou",
    DeployedCert(Location.CDN, 1001, "cas", NOW + timedelta(days=5)),
)
INVENTORY = Inventory((RECORD,))
CATALOG = Catalog((OLD, NEW))
PLAN = plan_certificate(NEW, INVENTORY, NOW, catalog=CATALOG)


def result(outcome: Outcome, code: ReasonCode, **fields: object) -> DomainResult:
    return replace(
        DomainResult(DOMAIN, outcome, Route.CDN, Reason(code), cert_id=2001, previous_cert_id=1001),
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("end", "unwritten", "configured"),
    [
        # the rollback restored 1001 but the edge still served something else
        (
            result(
                Outcome.ROLLED_BACK,
                ReasonCode.VERIFY_FAILED,
                verified=False,
                rollback=Rollback.RESTORE,
                restored_verified=False,
                served_sha256=OTHER,
            ),
            {},
            OLD.fingerprint_sha256,
        ),
        # ours is bound, the rollback failed, and the edge served something else
        (
            result(
                Outcome.FAILED,
                ReasonCode.ROLLBACK_FAILED,
                verified=False,
                served_sha256=OTHER,
            ),
            {},
            NEW.fingerprint_sha256,
        ),
        # the write was refused: 1001 stays configured, the edge serves another one
        (
            result(Outcome.FAILED, ReasonCode.WRITE_FAILED),
            {DOMAIN: EdgeObservation(None, OTHER)},
            OLD.fingerprint_sha256,
        ),
    ],
    ids=["restore-unconfirmed", "rollback-failed", "write-failed"],
)
def test_the_last_seen_edge_is_held_against_what_is_configured_after_the_run(
    end: DomainResult, unwritten: dict[str, EdgeObservation], configured: str
) -> None:
    [finding] = unserved_after(PLAN, [end], INVENTORY, CATALOG, unwritten)
    assert (finding.code, finding.domain) == (Code.SERVED_MISMATCH, DOMAIN)
    assert (finding.configured, finding.served) == (configured, OTHER)


@pytest.mark.parametrize(
    "end",
    [
        result(
            Outcome.DEPLOYED,
            ReasonCode.EXPIRES_LATER,
            verified=True,
            served_sha256=NEW.fingerprint_sha256,
        ),
        result(
            Outcome.ROLLED_BACK,
            ReasonCode.VERIFY_FAILED,
            verified=False,
            rollback=Rollback.RESTORE,
            restored_verified=True,
            served_sha256=OLD.fingerprint_sha256,
        ),
        result(Outcome.SKIPPED, ReasonCode.SUPERSEDED, verified=False, served_sha256=OTHER),
        result(Outcome.FAILED, ReasonCode.WRITE_FAILED),  # not probed: nothing to say
    ],
    ids=["deployed", "restored", "superseded", "unprobed"],
)
def test_a_domain_served_as_configured_or_not_seen_raises_nothing(end: DomainResult) -> None:
    assert unserved_after(PLAN, [end], INVENTORY, CATALOG, {}) == ()
