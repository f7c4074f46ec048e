"""Build the cloud adapters from settings and credentials, lazily.

`CloudClients.from_settings(settings, credentials)` exposes `.oss`, `.cdn`, `.cas` and
`.fc`. Nothing is imported or connected until an adapter is first used; SDK clients
are cached for the life of the object (one OSS client per region), so a warm FC
instance reuses them across invocations.

Endpoints: in the cloud each bucket is addressed at `oss-<region>.aliyuncs.com`, CDN
at `cdn.aliyuncs.com`, CAS at `cas.aliyuncs.com` (`cas.<region>.aliyuncs.com` outside
mainland China) and FC at `<account_id>.<region>.fc.aliyuncs.com`. With
`CERTPILOT_ENDPOINT` set every client goes there instead (path-style OSS).

Retries: the adapters retry themselves (`certpilot.cloud.retry`), so the SDKs' own retries
are off: OSS gets a `NopRetryer` (its default retries 401 and `BadRequest`, which would
hide auth errors and multiply attempts), the Tea clients get no `retry_options`.

Proxies: the Tea SDKs (CDN, CAS, FC) send every request, even to 127.0.0.1, through
`HTTP_PROXY`/`HTTPS_PROXY` and ignore `NO_PROXY`, and they offer no way to switch that
off per client. So when `CERTPILOT_ENDPOINT` is set, building `CloudClients` removes
the proxy variables from this process's environment (logged once); the OSS client also
gets a session that ignores the environment. Without an endpoint override proxies are
left alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from certpilot.cloud._common import Caller, translate_oss, translate_tea
from certpilot.cloud.credentials import Credentials
from certpilot.cloud.ratelimit import RateLimiter, shared_limiter
from certpilot.cloud.retry import Retrier, RetryPolicy
from certpilot.core.log import event, get_logger
from certpilot.core.settings import Endpoint, Settings

if TYPE_CHECKING:
    from certpilot.cloud.cas import CasAdapter
    from certpilot.cloud.cdn import CdnAdapter
    from certpilot.cloud.fc import FcAdapter
    from certpilot.cloud.oss import OssAdapter

T = TypeVar("T")

_log = get_logger(__name__)
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
)
USER_AGENT = "certpilot/0.1"
CDN_ENDPOINT = "cdn.aliyuncs.com"


def disable_proxies(environ: Any = None) -> list[str]:
    """Remove the proxy variables from `environ` (default `os.environ`); return their names."""
    env = os.environ if environ is None else environ
    removed = [name for name in PROXY_VARIABLES if name in env]
    for name in removed:
        del env[name]
    if removed:
        event(_log, "proxy variables cleared for the endpoint override", variables=removed)
    return removed


def cas_endpoint(region: str) -> str:
    """CAS's endpoint for a region: mainland regions share `cas.aliyuncs.com`."""
    return "cas.aliyuncs.com" if region.startswith("cn-") else f"cas.{region}.aliyuncs.com"


class CloudClients:
    """The adapters of one account, built lazily and cached. Thread-safe."""

    def __init__(
        self,
        settings: Settings,
        credentials: Credentials,
        *,
        limiter: RateLimiter | None = None,
        retrier: Retrier | None = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.endpoint: Endpoint | None = settings.parsed_endpoint()
        if self.endpoint is not None:
            disable_proxies()
        self.limiter = limiter or shared_limiter()
        self.retrier = retrier or Retrier(
            RetryPolicy(max_attempts=settings.max_attempts, deadline=settings.retry_deadline)
        )
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, credentials: Credentials, **kwargs: Any
    ) -> CloudClients:
        """Build the clients of `settings` (endpoint, region, timeouts) for `credentials`."""
        return cls(settings, credentials, **kwargs)

    def _cached(self, key: str, build: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            value: T = self._cache[key]
            return value

    # -- adapters ------------------------------------------------------------------

    @property
    def oss(self) -> OssAdapter:
        """The OSS adapter."""
        from certpilot.cloud.oss import OssAdapter

        return self._cached(
            "adapter:oss",
            lambda: OssAdapter(self.oss_client, self.caller("oss"), self.settings.region),
        )

    @property
    def cdn(self) -> CdnAdapter:
        """The CDN adapter."""
        from certpilot.cloud.cdn import CdnAdapter

        return self._cached(
            "adapter:cdn",
            lambda: CdnAdapter(self.cdn_client, self.caller("cdn"), self.tea_runtime),
        )

    @property
    def cas(self) -> CasAdapter:
        """The CAS adapter."""
        from certpilot.cloud.cas import CasAdapter

        return self._cached(
            "adapter:cas",
            lambda: CasAdapter(
                self.cas_client, self.caller("cas"), self.tea_runtime, self.settings.cas_region
            ),
        )

    @property
    def fc(self) -> FcAdapter:
        """The Function Compute adapter."""
        from certpilot.cloud.fc import FcAdapter

        return self._cached(
            "adapter:fc", lambda: FcAdapter(self.fc_client, self.caller("fc"), self.tea_runtime)
        )

    def caller(self, service: str) -> Caller:
        """The guarded-call helper of a service (shared limiter and retrier)."""
        translate = translate_oss if service == "oss" else translate_tea
        return Caller(service, self.limiter, self.retrier, translate)

    # -- SDK clients ---------------------------------------------------------------

    def oss_client(self, region: str) -> Any:
        """The OSS SDK client for buckets of `region` (cached per region)."""
        return self._cached(f"oss:{region}", lambda: self._build_oss(region))

    def _build_oss(self, region: str) -> Any:
        import alibabacloud_oss_v2 as oss
        from alibabacloud_oss_v2.retry import NopRetryer

        creds = self.credentials
        cfg = oss.config.load_default()
        cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
            creds.access_key_id, creds.access_key_secret, creds.security_token
        )
        cfg.region = region
        cfg.retryer = NopRetryer()
        cfg.connect_timeout = self.settings.connect_timeout
        cfg.readwrite_timeout = self.settings.read_timeout
        cfg.user_agent = USER_AGENT
        if self.endpoint is not None:
            import requests
            from alibabacloud_oss_v2 import transport

            cfg.endpoint = self.endpoint.url
            cfg.use_path_style = True
            session = requests.Session()
            session.trust_env = False  # no proxy, no netrc: the endpoint is local
            cfg.http_client = transport.RequestsHttpClient(
                session=session,
                connect_timeout=self.settings.connect_timeout,
                readwrite_timeout=self.settings.read_timeout,
            )
        else:
            cfg.endpoint = f"oss-{region}.aliyuncs.com"
        return oss.Client(cfg)

    def _tea_config(self, cloud_endpoint: str | None, region: str) -> Any:
        from alibabacloud_tea_openapi import utils_models

        creds = self.credentials
        config = utils_models.Config(
            access_key_id=creds.access_key_id,
            access_key_secret=creds.access_key_secret,
            security_token=creds.security_token,
            region_id=region,
            connect_timeout=int(self.settings.connect_timeout * 1000),
            read_timeout=int(self.settings.read_timeout * 1000),
            user_agent=USER_AGENT,
        )
        if self.endpoint is not None:
            config.endpoint = self.endpoint.netloc
            config.protocol = self.endpoint.scheme
        elif cloud_endpoint is not None:
            config.endpoint = cloud_endpoint
            config.protocol = "https"
        return config

    def cdn_client(self) -> Any:
        """The CDN SDK client (cached)."""

        def build() -> Any:
            from alibabacloud_cdn20180510.client import Client

            return Client(self._tea_config(CDN_ENDPOINT, self.settings.region))

        return self._cached("cdn", build)

    def cas_client(self) -> Any:
        """The CAS SDK client (cached)."""

        def build() -> Any:
            from alibabacloud_cas20200407.client import Client

            region = self.settings.cas_region
            return Client(self._tea_config(cas_endpoint(region), region))

        return self._cached("cas", build)

    def fc_client(self) -> Any:
        """The Function Compute 3.0 SDK client (cached)."""

        def build() -> Any:
            from alibabacloud_fc20230330.client import Client

            region = self.settings.region
            account = self.settings.account_id
            endpoint = f"{account}.{region}.fc.aliyuncs.com" if account else None
            return Client(self._tea_config(endpoint, region))

        return self._cached("fc", build)

    def tea_runtime(self) -> Any:
        """RuntimeOptions for Tea calls: timeouts (ms), no SDK retries."""

        def build() -> Any:
            from darabonba.runtime import RuntimeOptions

            return RuntimeOptions(
                autoretry=False,
                max_attempts=1,
                connect_timeout=int(self.settings.connect_timeout * 1000),
                read_timeout=int(self.settings.read_timeout * 1000),
            )

        return self._cached("tea-runtime", build)
