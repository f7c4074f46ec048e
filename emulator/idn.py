"""Internationalized domain names: UTS 46 / IDNA 2008, as browsers, CAs and certpilot
convert them (Python's own `str.encode("idna")` is IDNA 2003: `faß` -> `fass`)."""

from __future__ import annotations

import idna


class IdnError(ValueError):
    """A name that UTS 46 / IDNA 2008 cannot convert to A-labels."""


def to_a_label(name: str) -> str:
    """`name` in lower-case A-label form, label by label (`faß.example` ->
    `xn--fa-hia.example`); ASCII labels, `*` included, are only lower-cased.

    Raises:
        IdnError: for a label IDNA 2008 refuses, or an empty label.
    """
    text = name.strip().rstrip(".")
    if not text.isascii():
        try:
            # UTS 46 mapping first: full-width dots and letters, upper case, ...
            text = idna.uts46_remap(text, std3_rules=False, transitional=False).rstrip(".")
        except idna.IDNAError as err:
            raise IdnError(f"invalid name {name!r}: {err}") from None
    labels = []
    for label in text.split("."):
        if label.isascii():
            labels.append(label.lower())
            continue
        try:
            labels.append(idna.alabel(label).decode("ascii"))
        except idna.IDNAError as err:
            raise IdnError(f"invalid name {name!r}: {err}") from None
    if not all(labels):
        raise IdnError(f"invalid name {name!r}: empty label")
    return ".".join(labels)
