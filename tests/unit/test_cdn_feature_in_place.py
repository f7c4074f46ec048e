"""Whether a CDN feature is already in place: only the arguments the caller owns count."""

from __future__ import annotations

import pytest

from certpilot.cloud.cdn import CdnConfig, CdnFunction, feature_in_place

FORWARD = CdnFunction("forward_scheme", {"enable": "on", "scheme_origin": "https"})


def config(name: str, **args: str) -> CdnConfig:
    return CdnConfig(config_id="1", function_name=name, status="success", args=args)


def test_arguments_the_service_adds_on_read_back_are_ignored() -> None:
    # Given a read-back with scheme_origin_port, which the caller never sent
    read_back = [
        config("forward_scheme", enable="on", scheme_origin="https", scheme_origin_port="443")
    ]
    # Then the feature counts as in place
    assert feature_in_place(read_back, FORWARD)


@pytest.mark.parametrize(
    "read_back",
    [
        [config("forward_scheme", enable="on", scheme_origin="http", scheme_origin_port="80")],
        [config("forward_scheme", enable="off", scheme_origin="https")],
        [config("forward_scheme", enable="on")],  # an owned argument missing
        [config("https_force", enable="on", scheme_origin="https")],  # another feature
        [],
    ],
)
def test_an_owned_argument_that_differs_or_is_missing_means_not_in_place(
    read_back: list[CdnConfig],
) -> None:
    assert not feature_in_place(read_back, FORWARD)


def test_on_off_values_compare_without_case_and_blanks() -> None:
    read_back = [config("forward_scheme", enable=" ON", scheme_origin="https ")]
    assert feature_in_place(read_back, FORWARD)


def test_any_one_of_several_configs_of_the_feature_may_match() -> None:
    wanted = CdnFunction("set_resp_header", {"key": "X-A", "value": "1"})
    read_back = [
        config("set_resp_header", key="X-B", value="2"),
        config("set_resp_header", key="X-A", value="1", header_operation_type="add"),
    ]
    assert feature_in_place(read_back, wanted)
