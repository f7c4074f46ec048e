"""The certificate reference `<id>-<region>`: built and read in one place."""

from __future__ import annotations

import pytest

from certpilot.core.certref import DEFAULT_REGION, CertRef, InvalidCertRef
from certpilot.core.errors import CertpilotError


@pytest.mark.parametrize(
    ("text", "cas_id", "region"),
    [
        ("123-cn-hangzhou", 123, "cn-hangzhou"),
        (" 4930001-ap-southeast-1 ", 4930001, "ap-southeast-1"),
    ],
)
def test_an_identifier_reads_back_into_id_and_region(text: str, cas_id: int, region: str) -> None:
    # given a CAS CertIdentifier, when it is parsed, then id and region are its parts
    ref = CertRef.parse(text)
    assert (ref.cas_id, ref.region) == (cas_id, region)
    # and building it again gives the same text
    assert ref.identifier == text.strip() == str(ref)


@pytest.mark.parametrize(
    "text", ["", "123", "abc-cn-hangzhou", "0-cn-hangzhou", "123-", "-cn-hangzhou", "123-CN"]
)
def test_text_that_is_not_an_identifier_is_refused(text: str) -> None:
    # given text that is not `<id>-<region>`: find says None, parse raises our own error
    assert CertRef.find(text) is None
    with pytest.raises(InvalidCertRef) as caught:
        CertRef.parse(text)
    assert isinstance(caught.value, CertpilotError) and isinstance(caught.value, ValueError)


def test_an_id_beyond_64_bits_is_not_a_reference() -> None:
    assert CertRef.find(f"{2**63}-cn-hangzhou") is None


def test_the_default_region_is_the_mainland_cas_region() -> None:
    assert CertRef(7).identifier == f"7-{DEFAULT_REGION}" == "7-cn-hangzhou"
