"""The enforce-https guard: a bucket denies plain HTTP only when nothing still needs it."""

from __future__ import annotations

import pytest

from certpilot.jobs.enforce_https.guard import (
    BlockReason,
    CdnOrigin,
    DirectDomain,
    OriginScheme,
    judge_bucket,
)

OK_DIRECT = DirectDomain("img.example.com", https_verified=True)


def test_given_every_direct_domain_verified_and_no_cdn_then_allowed() -> None:
    decision = judge_bucket("assets", [OK_DIRECT, DirectDomain("a.example.com", True)], [])
    assert decision.allowed
    assert decision.switch_origin == ()


def test_a_direct_domain_without_verified_https_blocks_the_bucket_and_is_named() -> None:
    decision = judge_bucket("assets", [OK_DIRECT, DirectDomain("plain.example.com", False)], [])
    assert not decision.allowed
    assert [(b.domain, b.reason) for b in decision.blockers] == [
        ("plain.example.com", BlockReason.HTTPS_NOT_VERIFIED)
    ]


@pytest.mark.parametrize(
    ("scheme", "forces_https", "needs_switch"),
    [
        (OriginScheme.HTTPS, False, False),
        (OriginScheme.FOLLOW, True, False),
        (OriginScheme.FOLLOW, False, True),
        (OriginScheme.HTTP, True, True),
        (OriginScheme.DEFAULT, True, True),
    ],
    ids=["https", "follow-forced", "follow-not-forced", "http", "default"],
)
def test_a_cdn_origin_over_http_is_switched_before_the_policy(
    scheme: OriginScheme, forces_https: bool, needs_switch: bool
) -> None:
    decision = judge_bucket(
        "assets", [OK_DIRECT], [CdnOrigin("cdn.example.com", scheme, forces_https)]
    )
    assert decision.allowed
    assert decision.switch_origin == (("cdn.example.com",) if needs_switch else ())


def test_an_origin_that_cannot_be_switched_blocks_the_bucket() -> None:
    paused = CdnOrigin("paused.example.com", OriginScheme.DEFAULT, False, switchable=False)
    decision = judge_bucket("assets", [OK_DIRECT], [paused])
    assert not decision.allowed
    assert decision.blockers[0].reason is BlockReason.ORIGIN_OVER_HTTP
    assert decision.blockers[0].domain == "paused.example.com"


def test_an_opted_out_bucket_is_never_enforced() -> None:
    decision = judge_bucket("assets", [OK_DIRECT], [], opted_out=True)
    assert not decision.allowed
    assert decision.blockers[0].reason is BlockReason.OPTED_OUT
