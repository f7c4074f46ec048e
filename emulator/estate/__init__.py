"""Estates: a whole account (certificates, buckets, custom domains, CDN domains) from JSON.

`load_estate(state, pki, data)` validates the document completely before it changes
anything, issues the certificates from the test PKI, and creates every resource
directly in `State` (settled at once: the edge serves it immediately). The format is
documented in emulator/README.md, "Estate file format"; `DEMO_ESTATE` holds an estate
in which every finding code of DESIGN §6 occurs, `MINIMAL_ESTATE` a small healthy one.

Modules: `loader` (reading and loading, the settings section), one per section
(`certificates`, `buckets`, `cdn_domains`, `files`), `bindings` (certificates bound by
name), `fields` (typed field checks, `EstateError`) and `plan` (what a load creates).
"""

from __future__ import annotations

from emulator.estate.fields import EstateError
from emulator.estate.files import FILE_CONTENTS
from emulator.estate.loader import (
    DEMO_ESTATE,
    ESTATES_DIR,
    MINIMAL_ESTATE,
    load_estate,
    read_estate,
)

__all__ = [
    "DEMO_ESTATE",
    "ESTATES_DIR",
    "FILE_CONTENTS",
    "MINIMAL_ESTATE",
    "EstateError",
    "load_estate",
    "read_estate",
]
