"""Property-based tests of hostname matching (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from certpilot.core.names import (
    InvalidHostname,
    covers,
    name_matches,
    normalize_hostname,
    wildcard_level_off,
)

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
labels = st.builds(
    lambda first, middle, last: first + middle + last,
    st.sampled_from(_ALNUM),
    st.text(alphabet=_ALNUM + "-", max_size=10),
    st.sampled_from(_ALNUM),
) | st.sampled_from(_ALNUM)
# A final label with a letter, so that no base reads as an IP address.
tlds = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=6)
bases = st.builds(
    lambda parts, tld: ".".join([*parts, tld]), st.lists(labels, min_size=1, max_size=3), tlds
)

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)


def _flip_case(text: str, mask: list[bool]) -> str:
    padded = (mask + [False] * len(text))[: len(text)]
    return "".join(c.upper() if m else c for c, m in zip(text, padded, strict=True))


@PROPERTY_SETTINGS
@given(base=bases, label=labels, extra=labels)
def test_wildcard_covers_exactly_one_label(base: str, label: str, extra: str) -> None:
    pattern = f"*.{base}"
    assert name_matches(pattern, f"{label}.{base}")
    assert not name_matches(pattern, base)
    assert not name_matches(pattern, f"{extra}.{label}.{base}")
    # and the misses are the one-level-off ones
    assert wildcard_level_off([pattern], base) == pattern
    assert wildcard_level_off([pattern], f"{extra}.{label}.{base}") == pattern


@PROPERTY_SETTINGS
@given(base=bases, label=labels, mask=st.lists(st.booleans(), max_size=40), dot=st.booleans())
def test_matching_ignores_case_and_trailing_dot(
    base: str, label: str, mask: list[bool], dot: bool
) -> None:
    host = f"{label}.{base}"
    variant = _flip_case(host, mask) + ("." if dot else "")
    for pattern in (host, f"*.{base}", base):
        assert name_matches(pattern, variant) == name_matches(pattern, host)
        assert name_matches(_flip_case(pattern, mask), host) == name_matches(pattern, host)


@PROPERTY_SETTINGS
@given(text=st.text(max_size=40))
def test_normalize_is_idempotent(text: str) -> None:
    try:
        once = normalize_hostname(text)
    except InvalidHostname:
        return
    assert normalize_hostname(once) == once
    assert once == once.lower() and once.isascii() and not once.endswith(".")
    assert len(once) <= 253


@PROPERTY_SETTINGS
@given(base=bases)
def test_normalized_hostname_matches_itself(base: str) -> None:
    assert name_matches(base, base)
    assert name_matches(normalize_hostname(base.upper()), base)


@PROPERTY_SETTINGS
@given(address=st.ip_addresses())
def test_an_ip_address_is_never_a_hostname(address: object) -> None:
    text = str(address)
    try:
        normalize_hostname(text)
    except InvalidHostname:
        pass
    else:
        raise AssertionError(f"{text} accepted as a hostname")
    assert not name_matches(text, text)


@PROPERTY_SETTINGS
@given(sans=st.lists(st.one_of(bases, bases.map(lambda b: f"*.{b}")), max_size=4), host=bases)
def test_level_off_only_when_not_covered(sans: list[str], host: str) -> None:
    off = wildcard_level_off(sans, host)
    if covers(sans, host):
        assert off is None
    if off is not None:
        assert off in sans and off.startswith("*.")
