"""Applying CDN feature plans: http_force deleted first, busy writes waited out, a
failed write settled by reading the configs back (fake CDN, fake clock)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from certpilot.core.cloudtypes import CdnConfig, CdnConfigRef, CdnFunction
from certpilot.core.errors import BusyError, CloudError
from certpilot.core.log import get_logger
from certpilot.jobs.enforce_https.cdn_apply import (
    FeatureOutcome,
    apply_features,
    forces_https,
    origin_scheme,
    read_configured,
)
from certpilot.jobs.enforce_https.features import FeatureName, FeaturePrefs, plan_domain
from certpilot.jobs.enforce_https.guard import OriginScheme

LOG = get_logger("test")


class FakeCdn:
    """A CDN that keeps configs per domain; `busy` refusals first, `fail` errors."""

    def __init__(self, configs: dict[str, list[CdnConfig]], *, busy: int = 0) -> None:
        self.configs = configs
        self.busy = busy
        self.fail: CloudError | None = None
        self.apply_despite_error = False
        self.calls: list[str] = []
        self.next_id = 100

    def domain_configs(self, domain: str, function_names: Iterable[str]) -> list[CdnConfig]:
        self.calls.append("describe")
        return list(self.configs.get(domain, []))

    def set_configs(
        self, domains: Sequence[str], functions: Sequence[CdnFunction]
    ) -> list[CdnConfigRef]:
        self.calls.append("set")
        if self.busy:
            self.busy -= 1
            raise BusyError("cdn", "BatchSetCdnDomainConfig", "ServiceBusy", 403)
        if self.fail is not None and not self.apply_despite_error:
            raise self.fail
        for domain in domains:
            kept = [
                c
                for c in self.configs.get(domain, [])
                if c.function_name not in {f.name for f in functions}
            ]
            for function in functions:
                self.next_id += 1
                kept.append(
                    CdnConfig(str(self.next_id), function.name, "success", dict(function.args))
                )
            self.configs[domain] = kept
        if self.fail is not None:
            raise self.fail
        return []

    def delete_config(self, domain: str, config_id: str | int) -> None:
        self.calls.append("delete")
        ids = set(str(config_id).split(","))
        self.configs[domain] = [c for c in self.configs[domain] if c.config_id not in ids]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _http_force() -> CdnConfig:
    return CdnConfig("7", "http_force", "success", {"enable": "on"})


def test_http_force_is_deleted_first_and_busy_answers_are_waited_out() -> None:
    # given a domain with http_force, and CDN answering ServiceBusy twice
    cdn = FakeCdn({"cdn.example.com": [_http_force()]}, busy=2)
    clock = Clock()
    plan = plan_domain("cdn.example.com", read_configured(cdn, "cdn.example.com"), FeaturePrefs())
    # when the plan is applied
    results = apply_features(cdn, [plan], deadline=60, log=LOG, clock=clock, sleep=clock.sleep)
    # then http_force went first, the write was sent again after the busy answers,
    # and every feature is confirmed
    result = results["cdn.example.com"]
    assert result.outcome is FeatureOutcome.APPLIED
    assert result.deleted == ("7",)
    assert result.busy_refusals == 2
    writes = [c for c in cdn.calls if c != "describe"]
    assert writes == ["delete", "set", "set", "set"]
    # and each busy answer was followed by a read-back before sending again
    assert cdn.calls[cdn.calls.index("set") + 1] == "describe"
    names = {c.function_name for c in cdn.configs["cdn.example.com"]}
    assert names == {"https_force", "HSTS", "https_option", "gzip"}


def test_write_error_after_the_change_was_applied_is_settled_by_the_read_back() -> None:
    # given a write the cloud applies and then answers with an error
    cdn = FakeCdn({"cdn.example.com": []})
    cdn.fail = CloudError("cdn", "BatchSetCdnDomainConfig", "InternalError", 500)
    cdn.apply_despite_error = True
    clock = Clock()
    plan = plan_domain("cdn.example.com", (), FeaturePrefs(hsts=False, gzip=False))
    # when applied
    results = apply_features(cdn, [plan], deadline=60, log=LOG, clock=clock, sleep=clock.sleep)
    # then the read-back shows it in place: applied, the error kept as a fact
    result = results["cdn.example.com"]
    assert result.outcome is FeatureOutcome.APPLIED
    assert result.error_code == "InternalError"


def test_refused_write_is_failed_with_what_is_missing() -> None:
    # given a write the cloud refuses
    cdn = FakeCdn({"cdn.example.com": []})
    cdn.fail = CloudError("cdn", "BatchSetCdnDomainConfig", "InvalidParameter", 400)
    clock = Clock()
    plan = plan_domain("cdn.example.com", (), FeaturePrefs(hsts=False, http2=False, gzip=False))
    # when applied
    results = apply_features(cdn, [plan], deadline=60, log=LOG, clock=clock, sleep=clock.sleep)
    # then the domain failed, naming the missing feature and the error
    result = results["cdn.example.com"]
    assert result.outcome is FeatureOutcome.FAILED
    assert result.missing == (FeatureName.HTTPS_FORCE,)
    assert result.error_code == "InvalidParameter"
    assert not result.ok


def test_origin_scheme_and_forced_https_from_the_configs() -> None:
    cdn = FakeCdn(
        {
            "a": [
                CdnConfig(
                    "1", "forward_scheme", "success", {"enable": "on", "scheme_origin": "https"}
                )
            ],
            "b": [
                CdnConfig(
                    "2", "forward_scheme", "success", {"enable": "off", "scheme_origin": "https"}
                ),
                CdnConfig("3", "https_force", "success", {"enable": "on"}),
            ],
            "c": [],
        }
    )
    a, b, c = (read_configured(cdn, d) for d in "abc")
    assert origin_scheme(a) is OriginScheme.HTTPS and not forces_https(a)
    assert origin_scheme(b) is OriginScheme.DEFAULT and forces_https(b)
    assert origin_scheme(c) is OriginScheme.DEFAULT


class SettlingCdn(FakeCdn):
    """A CDN whose written features stay `configuring` for `delay` seconds."""

    def __init__(self, clock: Clock, delay: float) -> None:
        super().__init__({})
        self.clock = clock
        self.delay = delay
        self.due: dict[str, float] = {}

    def set_configs(
        self, domains: Sequence[str], functions: Sequence[CdnFunction]
    ) -> list[CdnConfigRef]:
        refs = super().set_configs(domains, functions)
        for domain in domains:
            self.due[domain] = self.clock() + self.delay
        return refs

    def domain_configs(self, domain: str, function_names: Iterable[str]) -> list[CdnConfig]:
        configs = super().domain_configs(domain, function_names)
        if self.clock() < self.due.get(domain, 0.0):
            return [CdnConfig(c.config_id, c.function_name, "configuring", c.args) for c in configs]
        return configs


def _confirmations(deadline: float) -> tuple[SettlingCdn, dict[str, FeatureOutcome]]:
    clock = Clock()
    cdn = SettlingCdn(clock, delay=5.0)
    plans = [plan_domain(f"d{i:02d}.example.com", (), FeaturePrefs()) for i in range(40)]
    results = apply_features(cdn, plans, deadline=deadline, log=LOG, clock=clock, sleep=clock.sleep)
    return cdn, {domain: result.outcome for domain, result in results.items()}


def test_confirmation_rounds_stop_at_the_first_domain_still_configuring() -> None:
    # Given 40 domains whose written features take 5 s to reach the edge
    cdn, outcomes = _confirmations(deadline=60)
    # Then every one is confirmed applied
    assert set(outcomes.values()) == {FeatureOutcome.APPLIED}
    # and the rounds before the change settled read one group each, not all 40:
    # about 10 waiting rounds of 8 reads, then the 40 confirmed
    reads = cdn.calls.count("describe")
    assert 40 <= reads < 40 + 12 * 8


def test_the_round_at_the_deadline_reads_every_domain() -> None:
    # Given the same domains, and a deadline before the change settles
    cdn, outcomes = _confirmations(deadline=2)
    # Then each is unconfirmed (written, not yet success), the last round having read
    # all 40 rather than stopping at the first
    assert set(outcomes.values()) == {FeatureOutcome.UNCONFIRMED}
    assert len(outcomes) == 40
    assert cdn.calls[-40:] == ["describe"] * 40
