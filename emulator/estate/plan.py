"""What a validated estate will create: the plan `load_estate` applies in one go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from emulator.state import Bucket, CasCertificate, CdnDomain


@dataclass
class PlannedCert:
    """A certificate issued for the estate, and its CAS record unless `cas: false`."""

    name: str
    chain_pem: str
    key_pem: str
    cas: CasCertificate | None


@dataclass
class Plan:
    """Everything an estate document creates, in the order it is applied."""

    certs: dict[str, PlannedCert] = field(default_factory=dict)
    buckets: list[Bucket] = field(default_factory=list)
    cdn_domains: list[CdnDomain] = field(default_factory=list)
    files: list[tuple[PurePosixPath, bytes]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    # Ids for certificates uploaded straight to OSS (PutCname with PEM), which OSS
    # numbers itself like CAS ids; drawn from the state's counter.
    next_upload_id: Callable[[], int] | None = None
