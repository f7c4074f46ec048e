"""Hostnames and certificate name matching (RFC 6125, as browsers apply it).

Everything is compared in A-label form: lowercase ASCII, no trailing dot. A wildcard
covers exactly one whole left-most label (`*.example.com` matches `www.example.com`,
not `example.com` nor `a.b.example.com`). Lean on purpose: no `cryptography` here, and
`idna` is imported only for non-ASCII input or A-label checks.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable

from certpilot.core.errors import CertpilotError

MAX_HOSTNAME_LENGTH = 253
MAX_LABEL_LENGTH = 63

_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z")
# WHATWG URL parsing reads a name whose last label is numeric (decimal or hex) as an
# IPv4 address, so such a name can never be a DNS hostname in a browser.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")


class InvalidHostname(CertpilotError, ValueError):
    """The text is not a valid DNS hostname (an IP address is not one either).

    Part of certpilot's error tree, and a ValueError for callers that catch that.
    """


def _show(name: str) -> str:
    # Echo user input safely on one line, bounded.
    return repr(name[:80] + ("..." if len(name) > 80 else ""))


_IPV4_CHARACTERS = frozenset("0123456789.")


def _is_ip_literal(name: str) -> bool:
    candidate = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    # An IPv6 literal has a colon, an IPv4 one only ASCII digits and dots: any other
    # name is answered without ipaddress's parse (costly when it fails, as for names).
    if ":" not in candidate and not _IPV4_CHARACTERS.issuperset(candidate):
        return False
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _to_alabels(name: str) -> str:
    import idna  # only for non-ASCII input

    try:
        encoded: bytes = idna.encode(name, uts46=True, transitional=False)
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidHostname(f"{_show(name)} is not a valid internationalized name") from exc
    return encoded.decode("ascii")


def _check_alabel(label: str, name: str) -> None:
    import idna

    try:
        idna.decode(label)
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidHostname(f"{_show(name)} has an invalid A-label {_show(label)}") from exc


def normalize_hostname(name: str) -> str:
    """Return `name` as a lowercase A-label hostname without a trailing dot.

    Non-ASCII names are converted with IDNA 2008 / UTS #46 (non-transitional, as
    browsers do). Raises InvalidHostname for anything that is not a DNS hostname:
    empty, too long, empty or over-long labels, characters outside letters, digits
    and hyphens, bad A-labels, IP addresses and names a browser would read as one.
    """
    if not isinstance(name, str):
        raise InvalidHostname("a hostname must be text")
    return _normalized(name)


# A sweep matches every domain against every certificate name, several times: the same
# few thousand names are normalized again and again (a failure is not cached: it raises).
@functools.lru_cache(maxsize=32_768)
def _normalized(name: str) -> str:
    if not name or name == ".":
        raise InvalidHostname("empty hostname")
    if _is_ip_literal(name) or _is_ip_literal(name.rstrip(".")):
        raise InvalidHostname(f"{_show(name)} is an IP address, not a DNS hostname")
    ascii_name = name.lower() if name.isascii() else _to_alabels(name)
    if ascii_name.endswith("."):
        ascii_name = ascii_name[:-1]
    if not ascii_name:
        raise InvalidHostname("empty hostname")
    if len(ascii_name) > MAX_HOSTNAME_LENGTH:
        raise InvalidHostname(f"{_show(name)} is longer than {MAX_HOSTNAME_LENGTH} characters")
    labels = ascii_name.split(".")
    for label in labels:
        if not label:
            raise InvalidHostname(f"{_show(name)} has an empty label")
        if len(label) > MAX_LABEL_LENGTH:
            raise InvalidHostname(f"{_show(name)} has a label over {MAX_LABEL_LENGTH} characters")
        if not _LDH_LABEL.match(label):
            raise InvalidHostname(
                f"{_show(name)}: label {_show(label)} must be letters, digits and inner hyphens"
            )
        if label.startswith("xn--"):
            _check_alabel(label, name)
    if _NUMERIC_LABEL.match(labels[-1]):
        raise InvalidHostname(f"{_show(name)} ends in a numeric label (read as an IP address)")
    return ascii_name


def normalize_domain(name: str) -> str | None:
    """A domain in A-label form (a leading `*.` kept for wildcard domains, CDN's `.x`
    spelling read as `*.x`); None if invalid. Never raises."""
    raw = name.strip()
    wildcard = raw.startswith(("*.", "."))
    try:
        base = normalize_hostname(raw[2:] if raw.startswith("*.") else raw.lstrip("."))
    except InvalidHostname:
        return None
    return f"*.{base}" if wildcard else base


def _parse_pattern(pattern: str) -> tuple[bool, str] | None:
    """Split a presented identifier into (is_wildcard, normalized base); None if unusable."""
    if not isinstance(pattern, str):
        return None
    return _parsed_pattern(pattern)


@functools.lru_cache(maxsize=4_096)
def _parsed_pattern(pattern: str) -> tuple[bool, str] | None:
    if "*" not in pattern:
        try:
            return False, normalize_hostname(pattern)
        except InvalidHostname:
            return None
    # Only a whole left-most "*" label is a wildcard: no "w*", "*w", "a.*.b" nor "*.*".
    if not pattern.startswith("*.") or pattern.count("*") != 1:
        return None
    try:
        base = normalize_hostname(pattern[2:])
    except InvalidHostname:
        return None
    # "*.com": a wildcard needs at least two labels after it.
    if base.count(".") < 1:
        return None
    return True, base


def name_matches(pattern: str, hostname: str) -> bool:
    """True when the certificate name `pattern` (a dNSName SAN) covers `hostname`.

    Case- and trailing-dot-insensitive; IDNs compare in A-label form. Never raises:
    an invalid pattern or hostname, or an IP address on either side, matches nothing.
    """
    try:
        host = normalize_hostname(hostname)
    except InvalidHostname:
        return False
    parsed = _parse_pattern(pattern)
    if parsed is None:
        return False
    wildcard, base = parsed
    if not wildcard:
        return host == base
    _, dot, rest = host.partition(".")
    return bool(dot) and rest == base


def covers(sans: Iterable[str], hostname: str) -> bool:
    """True when any of the certificate names `sans` covers `hostname`."""
    return any(name_matches(san, hostname) for san in sans)


def wildcard_level_off(sans: Iterable[str], hostname: str) -> str | None:
    """Return the wildcard SAN that misses `hostname` by exactly one label, else None.

    `*.example.com` is one level off for `example.com` (the apex) and for
    `a.b.example.com` (one label too deep). None when the names cover the hostname,
    or when the hostname is invalid.
    """
    names = list(sans)
    try:
        host = normalize_hostname(hostname)
    except InvalidHostname:
        return None
    if covers(names, host):
        return None
    parts = host.split(".", 2)
    for san in names:
        parsed = _parse_pattern(san)
        if parsed is None or not parsed[0]:
            continue
        base = parsed[1]
        if host == base or (len(parts) == 3 and parts[2] == base):
            return san
    return None


def is_wildcard(name: str) -> bool:
    """True when `name` is a usable wildcard identifier such as `*.example.com`."""
    parsed = _parse_pattern(name)
    return parsed is not None and parsed[0]
