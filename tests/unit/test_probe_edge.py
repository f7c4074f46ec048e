"""Where live probes connect: `CERTPILOT_EDGE_HTTPS` when set, else the domain's own edge
host from inventory (a CDN domain's CNAME target, an OSS custom domain's bucket
endpoint), else the domain itself on 443; SNI is always the domain (a wildcard's probe
name). The same choice is made by every probe of a run: the pre-plan check,
apply's verification and its restore check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from certpilot.core.cloudtypes import BucketInfo, CdnDomainInfo, CnameInfo, Source
from certpilot.core.model import DeployedCert, Inventory, Location, Route
from certpilot.core.outcomes import Reason, ReasonCode
from certpilot.core.settings import Settings
from certpilot.discovery.inventory import classify
from certpilot.jobs.deploy_cert import engine
from certpilot.jobs.deploy_cert.apply import ApplyOptions, Outcome, apply_plan
from certpilot.jobs.deploy_cert.plan import Action, Plan, Rollback
from certpilot.probe import tls as probe
from certpilot.probe.tls import ServedCert, probe_name
from tests.unit.fakes import NOW, FakeClock, wildcard_cert

OVERRIDE = "127.0.0.1:8443"
CERT = wildcard_cert()


def oss_origin(bucket: str = "media") -> Source:
    return Source("oss", f"{bucket}.oss-cn-shanghai.aliyuncs.com", 80, 20)


def estate() -> Inventory:
    """One domain of each kind, as inventory classifies them from the listings."""
    cdn = [
        CdnDomainInfo(
            "cdn.example.com", "online", True, (oss_origin(),), "cdn.example.com.w.kunlunsl.com"
        ),
        CdnDomainInfo(
            ".wild.example.com", "online", True, (oss_origin(),), "all.wild.example.com.w.cdn."
        ),
        CdnDomainInfo("bare.example.com", "online", True, (oss_origin(),), None),
        CdnDomainInfo("odd.example.com", "online", True, (oss_origin(),), ".not a host"),
    ]
    cnames = {"assets": [CnameInfo("static.example.com", "Enabled", None, None)]}
    return classify([BucketInfo("assets", "cn-hangzhou")], cnames, cdn, {})


@pytest.mark.parametrize(
    ("override", "domain", "sni", "address"),
    [
        # the override wins for every kind of domain (tests and the demo rely on it)
        (OVERRIDE, "cdn.example.com", "cdn.example.com", OVERRIDE),
        (OVERRIDE, "*.wild.example.com", "certpilot-verify.wild.example.com", OVERRIDE),
        (OVERRIDE, "static.example.com", "static.example.com", OVERRIDE),
        # a CDN domain: its CNAME target, SNI the domain
        (None, "cdn.example.com", "cdn.example.com", "cdn.example.com.w.kunlunsl.com:443"),
        # a wildcard CDN domain: its CNAME target, SNI the probe name one label below
        (
            None,
            "*.wild.example.com",
            "certpilot-verify.wild.example.com",
            "all.wild.example.com.w.cdn:443",
        ),
        # an OSS custom domain: its bucket's public endpoint, SNI the domain
        (
            None,
            "static.example.com",
            "static.example.com",
            "assets.oss-cn-hangzhou.aliyuncs.com:443",
        ),
        # no edge host known (no Cname, an unusable one, not in inventory): the domain
        (None, "bare.example.com", "bare.example.com", "bare.example.com:443"),
        (None, "odd.example.com", "odd.example.com", "odd.example.com:443"),
        (None, "gone.example.com", "gone.example.com", "gone.example.com:443"),
    ],
)
def test_the_probe_address_of_each_kind_of_domain(
    override: str | None, domain: str, sni: str, address: str
) -> None:
    # given the inventory of an estate and the override (or none)
    settings = Settings(edge_https=override)
    # when the engine chooses where to probe the domain
    chosen = engine.probe_edge(domain, settings, estate())
    # then it connects there (None: the probed name itself on 443), with that SNI
    assert (probe_name(domain), chosen or f"{probe_name(domain)}:443") == (sni, address)


class Recorder:
    """A live handshake replaced: records (SNI, edge) and serves nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, domain: str, *, edge: str | None = None, **_: Any) -> ServedCert:
        self.calls.append((domain, edge))
        return ServedCert(domain, error="connection refused")


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorded = Recorder()
    monkeypatch.setattr(probe, "probe_https", recorded)
    return recorded


def deps(override: str | None) -> Any:
    return engine.Deps(settings=Settings(edge_https=override), clients=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("override", "expected"),
    [(None, "cdn.example.com.w.kunlunsl.com:443"), (OVERRIDE, OVERRIDE)],
)
def test_the_probe_of_domains_left_alone_uses_the_chosen_address(
    recorder: Recorder, override: str | None, expected: str
) -> None:
    # given a CDN domain with a CNAME target, left alone by the plan
    # when the engine asks what its edge serves (what browsers reject, served mismatch)
    engine.probe_served(["cdn.example.com"], deps(override), inventory=estate())
    # then the handshake went to the chosen address with SNI the domain
    assert recorder.calls == [("cdn.example.com", expected)]


class FakeCdn:
    """A CDN that takes every write and reports the last certificate set."""

    def __init__(self) -> None:
        self.bound: int | None = 1001

    def set_certificate(self, domain: str, cas_id: int, region: str) -> None:
        self.bound = cas_id

    def disable_certificate(self, domain: str) -> None:
        self.bound = None

    def certificate_info(self, domain: str) -> DeployedCert | None:
        return DeployedCert(Location.CDN, self.bound, "cas", None)


@pytest.mark.parametrize(
    ("override", "expected"),
    [(None, "all.wild.example.com.w.cdn:443"), (OVERRIDE, OVERRIDE)],
)
def test_verification_and_restore_check_probe_the_chosen_address(
    recorder: Recorder, override: str | None, expected: str
) -> None:
    # given a wildcard CDN domain whose edge never serves the new certificate
    previous = DeployedCert(Location.CDN, 1001, "cas", NOW + timedelta(days=5), fingerprint="BB")
    action = Action(
        domain="*.wild.example.com",
        route=Route.CDN,
        bucket="media",
        region="cn-shanghai",
        cas_id=CERT.cas_id,
        identifier=CERT.identifier,
        cert_region="cn-hangzhou",
        reason=Reason(ReasonCode.EXPIRES_LATER),
        previous=previous,
        previous_identifier=None,
        rollback=Rollback.RESTORE,
        api_name=".wild.example.com",
        edge_host="all.wild.example.com.w.cdn",
    )
    cdn, clock = FakeCdn(), FakeClock()
    options = ApplyOptions(verify_deadline=1.0, edge_https=override)
    # when it is deployed, verified, rolled back and the restore checked
    [result] = apply_plan(
        Plan(CERT, NOW, (action,), ()),
        None,  # type: ignore[arg-type]
        cdn,
        options,
        clock=clock.clock,
        sleep=clock.sleep,
    )
    # then every probe, before and after the rollback, went to the chosen address
    assert result.outcome is Outcome.ROLLED_BACK and cdn.bound == 1001
    assert len(recorder.calls) > 2
    assert set(recorder.calls) == {("certpilot-verify.wild.example.com", expected)}
