"""Hostname normalization and certificate name matching: table-driven scenarios."""

from __future__ import annotations

import pytest

from certpilot.core.names import (
    InvalidHostname,
    covers,
    is_wildcard,
    name_matches,
    normalize_hostname,
    wildcard_level_off,
)

NORMALIZE_OK = [
    ("plain", "www.example.com", "www.example.com"),
    ("uppercase", "WWW.Example.COM", "www.example.com"),
    ("trailing-dot", "www.example.com.", "www.example.com"),
    ("idn-u-label", "bücher.example", "xn--bcher-kva.example"),
    ("idn-uppercase", "BÜCHER.example", "xn--bcher-kva.example"),
    ("idn-ideographic-dot", "bücher。example", "xn--bcher-kva.example"),
    ("idn-nontransitional-sharp-s", "straße.de", "xn--strae-oqa.de"),
    ("a-label-uppercase", "XN--BCHER-KVA.example", "xn--bcher-kva.example"),
    ("hyphens-3-4-ascii", "r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com"),
    ("single-label", "localhost", "localhost"),
    ("digits-inside", "1a.example.com", "1a.example.com"),
    ("max-label", "a" * 63 + ".example.com", "a" * 63 + ".example.com"),
]


@pytest.mark.parametrize(
    ("given", "expected"), [c[1:] for c in NORMALIZE_OK], ids=[c[0] for c in NORMALIZE_OK]
)
def test_normalize_accepts_hostnames(given: str, expected: str) -> None:
    # when normalized, then the A-label form comes back
    assert normalize_hostname(given) == expected


NORMALIZE_BAD = [
    ("empty", ""),
    ("only-dot", "."),
    ("double-dot", "www..example.com"),
    ("two-trailing-dots", "example.com.."),
    ("leading-dot", ".example.com"),
    ("space", "www example.com"),
    ("underscore", "a_b.example.com"),
    ("leading-hyphen", "-a.example.com"),
    ("trailing-hyphen", "a-.example.com"),
    ("label-64", "a" * 64 + ".example.com"),
    ("too-long", ".".join(["a" * 60] * 5)),
    ("ipv4", "192.0.2.1"),
    ("ipv4-trailing-dot", "192.0.2.1."),
    ("ipv6", "2001:db8::1"),
    ("ipv6-bracketed", "[2001:db8::1]"),
    ("numeric-tld", "www.example.123"),
    ("hex-tld", "foo.0x7f"),
    ("wildcard", "*.example.com"),
    ("bad-a-label", "xn--zz.example"),
    ("url", "https://example.com"),
    ("port", "example.com:443"),
    ("newline", "example.com\nevil"),
]


@pytest.mark.parametrize("given", [c[1] for c in NORMALIZE_BAD], ids=[c[0] for c in NORMALIZE_BAD])
def test_normalize_rejects_non_hostnames(given: str) -> None:
    with pytest.raises(InvalidHostname) as caught:
        normalize_hostname(given)
    # then the message is one line, whatever the input held
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


MATCHES = [
    # id, pattern, hostname, matches
    ("exact", "www.example.com", "www.example.com", True),
    ("exact-case", "WWW.EXAMPLE.COM", "www.example.com", True),
    ("exact-trailing-dot", "www.example.com.", "www.example.com.", True),
    ("different-host", "oss.example.com", "cdn.example.com", False),
    ("wildcard-one-label", "*.example.com", "www.example.com", True),
    ("wildcard-other-label", "*.example.com", "oss.example.com", True),
    ("wildcard-not-apex", "*.example.com", "example.com", False),
    ("wildcard-not-two-deep", "*.example.com", "cdn.oss.example.com", False),
    ("wildcard-case", "*.EXAMPLE.com", "Www.Example.Com", True),
    ("wildcard-idn", "*.bücher.example", "www.xn--bcher-kva.example", True),
    ("wildcard-a-label-host", "*.example.com", "xn--bcher-kva.example.com", True),
    ("partial-prefix", "w*.example.com", "www.example.com", False),
    ("partial-suffix", "*w.example.com", "www.example.com", False),
    ("partial-middle", "w*w.example.com", "www.example.com", False),
    ("wildcard-not-leftmost", "www.*.com", "www.example.com", False),
    ("double-wildcard", "*.*.example.com", "a.b.example.com", False),
    ("wildcard-tld", "*.com", "example.com", False),
    ("bare-star", "*", "com", False),
    ("idn-u-label-san", "bücher.example", "xn--bcher-kva.example", True),
    ("idn-u-label-host", "xn--bcher-kva.example", "bücher.example", True),
    ("ip-never-dns", "192.0.2.1", "192.0.2.1", False),
    ("ip-host-vs-wildcard", "*.2.1", "192.0.2.1", False),
    ("invalid-host", "*.example.com", "a b.example.com", False),
    ("suffix-not-label-boundary", "*.ample.com", "www.example.com", False),
]


@pytest.mark.parametrize(
    ("pattern", "hostname", "expected"), [c[1:] for c in MATCHES], ids=[c[0] for c in MATCHES]
)
def test_name_matches(pattern: str, hostname: str, expected: bool) -> None:
    assert name_matches(pattern, hostname) is expected


LEVEL_OFF = [
    ("apex", ["*.example.com"], "example.com", "*.example.com"),
    ("two-deep", ["*.example.com"], "cdn.oss.example.com", "*.example.com"),
    ("three-deep", ["*.example.com"], "a.b.c.example.com", None),
    ("covered", ["*.example.com"], "www.example.com", None),
    ("covered-apex-by-other-san", ["*.example.com", "example.com"], "example.com", None),
    ("unrelated", ["*.example.org"], "example.com", None),
    ("no-wildcard", ["www.example.com"], "example.com", None),
    ("kept-as-written", ["*.Example.COM"], "EXAMPLE.com", "*.Example.COM"),
]


@pytest.mark.parametrize(
    ("sans", "hostname", "expected"), [c[1:] for c in LEVEL_OFF], ids=[c[0] for c in LEVEL_OFF]
)
def test_wildcard_level_off(sans: list[str], hostname: str, expected: str | None) -> None:
    assert wildcard_level_off(sans, hostname) == expected


def test_covers_any_san() -> None:
    sans = ["example.com", "*.example.com"]
    assert covers(sans, "example.com")
    assert covers(sans, "www.example.com")
    assert not covers(sans, "a.b.example.com")
    assert not covers([], "example.com")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("*.example.com", True), ("*.com", False), ("w*.example.com", False), ("example.com", False)],
    ids=["wildcard", "tld-wildcard", "partial", "plain"],
)
def test_is_wildcard(name: str, expected: bool) -> None:
    assert is_wildcard(name) is expected
