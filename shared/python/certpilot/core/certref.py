"""The certificate reference: a CAS certificate id and the CAS region that holds it.

CAS names a certificate `<id>-<region>` (`CertIdentifier`, e.g. `4930001-cn-hangzhou`):
OSS binds it by that text (`CertId`, `PreviousCertId`), CDN by the id and its
`CertRegion`, events may carry either form. `CertRef` is the one place where that
text is built (`identifier`) and read back (`parse`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from certpilot.core.errors import CertpilotError

# The CAS region of mainland accounts, and the region every client defaults to.
DEFAULT_REGION = "cn-hangzhou"

REGION_PATTERN = r"[a-z]{2,}(?:-[a-z0-9]+)+"
_REGION = re.compile(rf"{REGION_PATTERN}\Z")
_IDENTIFIER = re.compile(rf"([1-9][0-9]{{0,18}})-({REGION_PATTERN})\Z")
MAX_CAS_ID = 2**63 - 1


class InvalidCertRef(CertpilotError, ValueError):
    """The text is not a certificate identifier `<id>-<region>`."""


def is_region(text: str) -> bool:
    """True when `text` looks like a region id such as `cn-hangzhou`."""
    return bool(_REGION.match(text))


@dataclass(frozen=True, order=True)
class CertRef:
    """A CAS certificate: its id and the CAS region that holds it."""

    cas_id: int
    region: str = DEFAULT_REGION

    @property
    def identifier(self) -> str:
        """`<id>-<region>`: CAS's CertIdentifier, OSS's CertId."""
        return f"{self.cas_id}-{self.region}"

    def __str__(self) -> str:
        return self.identifier

    @classmethod
    def parse(cls, text: str) -> CertRef:
        """Read `<id>-<region>` (surrounding blanks ignored).

        Raises:
            InvalidCertRef: anything else (a bare id, junk, an id out of range).
        """
        found = cls.find(text)
        if found is None:
            raise InvalidCertRef("not a certificate identifier <id>-<region>")
        return found

    @classmethod
    def find(cls, text: str | None) -> CertRef | None:
        """Like `parse`, but None for text that is not an identifier (an upload's own id
        as OSS reports it, an empty value)."""
        if not text:
            return None
        match = _IDENTIFIER.match(text.strip())
        if match is None:
            return None
        cas_id = int(match.group(1))
        if cas_id > MAX_CAS_ID:
            return None
        return cls(cas_id, match.group(2))
