"""The emulated cloud's state: one account, its buckets, CDN domains and certificates.

Every handler mutates it under `State.lock`. Anything the edge serves (certificates,
CDN configs, bucket policies) is held in a `Propagating` so that a change reaches the
edge after `State.propagation_delay` seconds, as in the cloud.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emulator.propagation import Propagating

DEFAULT_REGION = "cn-hangzhou"
CAS_REGION = "cn-hangzhou"
# CAS has one region per site: the China site's certificates are `<id>-cn-hangzhou`, the
# International site's `<id>-ap-southeast-1` (CertIdentifier, GetCertificateDetail docs).
CAS_REGIONS = ("cn-hangzhou", "ap-southeast-1")
ORDER_TYPES = ("BUY", "CPACK")


@dataclass
class CasCertificate:
    """A certificate held by SSL Certificates Service (uploaded or issued)."""

    id: int
    name: str
    cert_pem: str  # leaf first, then intermediates, exactly as uploaded or issued
    key_pem: str
    source: str  # "upload" | "issued"
    common_name: str
    sans: list[str]
    issuer: str  # issuer organization or CN
    not_before: datetime
    not_after: datetime
    fingerprint_sha1: str  # upper hex, no colons (CAS style)
    sha256: str  # upper hex, no colons
    serial: str  # lower hex
    created_ms: int
    region: str = CAS_REGION
    # Revoked by its CA (the test PKI's OCSP and CRL say so). CAS itself knows only for
    # a purchased certificate (`order_type`), whose order then shows Status REVOKED.
    revoked: bool = False
    # "BUY" / "CPACK" for a certificate bought through CAS (listed as an order too);
    # "" for an uploaded one or one issued outside any order.
    order_type: str = ""
    order_id: int | None = None

    @property
    def identifier(self) -> str:
        """CAS `CertIdentifier`, which OSS PutCname takes as `CertId`."""
        return f"{self.id}-{self.region}"

    @property
    def cas_knows_revoked(self) -> bool:
        """Whether CAS (and so OSS and CDN) knows it is revoked: a purchased certificate
        whose order was revoked. CAS does not learn that an outside CA revoked an upload."""
        return self.revoked and bool(self.order_type)


@dataclass(frozen=True)
class BoundCertificate:
    """A certificate as bound to an OSS custom domain or a CDN domain."""

    cert_type: str  # OSS: "CAS" | "Upload"; CDN: "cas" | "upload" | "free"
    cert_id: int | None  # CAS id when bound by reference
    cert_region: str
    cert_name: str
    cert_pem: str
    key_pem: str
    bound_at: float


@dataclass
class Cname:
    """An OSS custom domain bound to a bucket."""

    domain: str
    bucket: str
    status: str = "Enabled"
    last_modified: float = 0.0
    certificate: Propagating[BoundCertificate | None] = field(
        default_factory=lambda: Propagating(None)
    )


@dataclass
class StoredObject:
    body: bytes
    content_type: str
    last_modified: float
    etag: str


@dataclass
class Bucket:
    name: str
    region: str
    created: float
    owner_id: str
    storage_class: str = "Standard"
    acl: str = "private"
    cnames: dict[str, Cname] = field(default_factory=dict)
    policy: Propagating[str | None] = field(default_factory=lambda: Propagating(None))
    objects: dict[str, StoredObject] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def extranet_endpoint(self) -> str:
        return f"oss-{self.region}.aliyuncs.com"

    @property
    def bucket_domain(self) -> str:
        return f"{self.name}.oss-{self.region}.aliyuncs.com"


@dataclass(frozen=True)
class CdnConfig:
    """One configured CDN feature (a `functionName` with its arguments)."""

    config_id: int
    function_name: str
    args: tuple[tuple[str, str], ...]
    parent_id: str = ""

    def arg(self, name: str, default: str = "") -> str:
        for key, value in self.args:
            if key == name:
                return value
        return default


@dataclass
class CdnDomain:
    name: str
    cdn_type: str
    sources: list[dict[str, Any]]  # {"type", "content", "port", "priority", "weight"}
    cname: str
    created: float
    scope: str = "domestic"
    status: Propagating[str] = field(default_factory=lambda: Propagating("online"))
    ssl: Propagating[BoundCertificate | None] = field(default_factory=lambda: Propagating(None))
    configs: Propagating[tuple[CdnConfig, ...]] = field(default_factory=lambda: Propagating(()))
    modified: float = 0.0
    # A DomainStatus set through the estate or the admin API: reported as it is until
    # cleared, whatever the domain's own lifecycle says.
    pinned_status: str | None = None


@dataclass
class FcFunction:
    """A function the emulator's Function Compute can invoke (registered by tests/demo)."""

    name: str
    handler: Callable[[bytes, Any], Any]
    invocations: list[dict[str, Any]] = field(default_factory=list)
    # How the handler runs (see emulator/fc.py): a file loaded in a worker process.
    path: str = ""
    handler_name: str = "handler"
    env: dict[str, str] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)
    memory_mb: int = 512
    timeout_s: float = 60.0
    # Async invocation config (FC `maxAsyncRetryAttempts`): retries after a failed
    # asynchronous run, 3 by default as documented; the pause before each is chosen.
    async_retries: int = 3
    async_retry_delay_s: float = 0.2
    # What PutAsyncInvokeConfig stored (GetAsyncInvokeConfig answers it), None if unset.
    async_config: dict[str, Any] | None = None


class State:
    """The whole emulated account. Mutate only while holding `lock`."""

    def __init__(
        self,
        *,
        account_id: str = "1234567890123456",
        access_key_id: str = "LTAI5tEmulatorKey0001",
        access_key_secret: str | None = None,
        security_token: str | None = None,
        propagation_delay: float = 0.3,
        clock: Callable[[], float] = time.time,
        cas_region: str = CAS_REGION,
    ) -> None:
        self.lock = threading.RLock()
        self.account_id = account_id
        self.access_key_id = access_key_id
        # A fresh secret per start unless given: nothing to leak from the repository.
        self.access_key_secret = access_key_secret or secrets.token_urlsafe(24)
        self.security_token = security_token
        self.propagation_delay = propagation_delay
        self.clock = clock
        # The account's site: where its CAS certificates live (CertIdentifier suffix, the
        # only CertRegion CDN finds them in).
        self.cas_region = cas_region
        # Seconds added to `clock` (admin setting `time_offset`): the account's time
        # moves on (certificates age, policies' acs:CurrentTime, propagation) while
        # request signing keeps checking real time.
        self.time_offset = 0.0
        self.reset()

    def reset(self) -> None:
        """Forget every resource (configuration such as keys and delay stays)."""
        with self.lock:
            self.buckets: dict[str, Bucket] = {}
            self.cdn_domains: dict[str, CdnDomain] = {}
            self.certificates: dict[int, CasCertificate] = {}
            self.cname_tokens: dict[tuple[str, str], tuple[str, float]] = {}
            self.functions: dict[str, FcFunction] = {}
            # PutCname of a new domain needs its `_dnsauth` TXT token (OSS: mandatory);
            # the estate / admin settings can turn it off.
            self.verify_domain_ownership = True
            self.dns_txt: dict[str, str] = {}
            # Tags of CDN domains (TagResources): domain name -> {key: value}.
            self.cdn_tags: dict[str, dict[str, str]] = {}
            self._ids = itertools.count(10_000_001)
            self._order_ids = itertools.count(80_000_001)
            self._config_ids = itertools.count(5_000_001)

    def now(self) -> float:
        return self.clock() + self.time_offset

    def next_cert_id(self) -> int:
        return next(self._ids)

    def next_order_id(self) -> int:
        return next(self._order_ids)

    def next_config_id(self) -> int:
        return next(self._config_ids)

    def find_cname(self, domain: str) -> Cname | None:
        """The OSS custom-domain binding of `domain`, whatever its bucket."""
        for bucket in self.buckets.values():
            cname = bucket.cnames.get(domain)
            if cname is not None:
                return cname
        return None
