"""Every environment variable certpilot reads, and the frozen settings built from them.

Credentials are read by `certpilot.cloud.credentials`, never kept here: a `Settings` can be
logged or echoed without leaking anything. The notification webhooks (their URLs carry
access tokens) and their signing secrets are kept as `Secret` values: registered for
redaction when read, masked by `repr`, `str` and `as_dict`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from certpilot.core.certref import DEFAULT_REGION
from certpilot.core.errors import ConfigError
from certpilot.core.findings import Severity
from certpilot.core.log import MASK, register_secret

# DESIGN §7 names (shared with the emulator, the demo and the FC configuration).
ENDPOINT = "CERTPILOT_ENDPOINT"
ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 (a variable name)
SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105 (a variable name)
EDGE_HTTPS = "CERTPILOT_EDGE_HTTPS"
EDGE_HTTP = "CERTPILOT_EDGE_HTTP"
CA_BUNDLE = "CERTPILOT_CA_BUNDLE"
ACCOUNT_ID = "CERTPILOT_ACCOUNT_ID"
# The project's own.
REGION = "CERTPILOT_REGION"
CAS_REGION = "CERTPILOT_CAS_REGION"
RENEW_DAYS = "CERTPILOT_RENEW_DAYS"
VERIFY_DEADLINE = "CERTPILOT_VERIFY_DEADLINE"
VERIFY_CONSECUTIVE = "CERTPILOT_VERIFY_CONSECUTIVE"
CONCURRENCY = "CERTPILOT_CONCURRENCY"
LOG_LEVEL = "CERTPILOT_LOG_LEVEL"
DRY_RUN = "CERTPILOT_DRY_RUN"
CONNECT_TIMEOUT = "CERTPILOT_CONNECT_TIMEOUT"
READ_TIMEOUT = "CERTPILOT_READ_TIMEOUT"
MAX_ATTEMPTS = "CERTPILOT_MAX_ATTEMPTS"
RETRY_DEADLINE = "CERTPILOT_RETRY_DEADLINE"
REVOCATION_TIMEOUT = "CERTPILOT_REVOCATION_TIMEOUT"
# enforce-https.
ENFORCE_SKIP_BUCKETS = "CERTPILOT_ENFORCE_SKIP_BUCKETS"
ENFORCE_SKIP_DOMAINS = "CERTPILOT_ENFORCE_SKIP_DOMAINS"
HSTS_MAX_AGE = "CERTPILOT_HSTS_MAX_AGE"
HSTS_INCLUDE_SUBDOMAINS = "CERTPILOT_HSTS_INCLUDE_SUBDOMAINS"
CDN_FEATURES = "CERTPILOT_CDN_FEATURES"
# check-expiry's notifications (`certpilot.jobs.check_expiry.notify`).
NOTIFY_MIN_SEVERITY = "CERTPILOT_NOTIFY_MIN_SEVERITY"
DINGTALK_WEBHOOK = "CERTPILOT_DINGTALK_WEBHOOK"
DINGTALK_SECRET = "CERTPILOT_DINGTALK_SECRET"  # noqa: S105 (a variable name)
WECOM_WEBHOOK = "CERTPILOT_WECOM_WEBHOOK"
FEISHU_WEBHOOK = "CERTPILOT_FEISHU_WEBHOOK"
FEISHU_SECRET = "CERTPILOT_FEISHU_SECRET"  # noqa: S105 (a variable name)
WEBHOOK_URL = "CERTPILOT_WEBHOOK_URL"
WEBHOOK_SECRET = "CERTPILOT_WEBHOOK_SECRET"  # noqa: S105 (a variable name)
# check-expiry's reports (`certpilot.jobs.check_expiry.report`).
REPORT_BUCKET = "CERTPILOT_REPORT_BUCKET"
REPORT_REGION = "CERTPILOT_REPORT_REGION"
REPORT_PREFIX = "CERTPILOT_REPORT_PREFIX"
# check-expiry's repairs: the FC function (3.0 name) that deploys a certificate.
DEPLOY_FUNCTION = "CERTPILOT_DEPLOY_FUNCTION"
# check-expiry's fan-out: domains per shard (`jobs.check_expiry.shards`); unset: from
# the invocation's time budget, 0: never split.
SHARD_SIZE = "CERTPILOT_SHARD_SIZE"

# Every variable above, for documentation and `--help` listings.
ALL_VARIABLES: tuple[str, ...] = (
    ENDPOINT,
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    SECURITY_TOKEN,
    EDGE_HTTPS,
    EDGE_HTTP,
    CA_BUNDLE,
    ACCOUNT_ID,
    REGION,
    CAS_REGION,
    RENEW_DAYS,
    VERIFY_DEADLINE,
    VERIFY_CONSECUTIVE,
    CONCURRENCY,
    LOG_LEVEL,
    DRY_RUN,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    MAX_ATTEMPTS,
    RETRY_DEADLINE,
    REVOCATION_TIMEOUT,
    ENFORCE_SKIP_BUCKETS,
    ENFORCE_SKIP_DOMAINS,
    HSTS_MAX_AGE,
    HSTS_INCLUDE_SUBDOMAINS,
    CDN_FEATURES,
    NOTIFY_MIN_SEVERITY,
    DINGTALK_WEBHOOK,
    DINGTALK_SECRET,
    WECOM_WEBHOOK,
    FEISHU_WEBHOOK,
    FEISHU_SECRET,
    WEBHOOK_URL,
    WEBHOOK_SECRET,
    REPORT_BUCKET,
    REPORT_REGION,
    REPORT_PREFIX,
    DEPLOY_FUNCTION,
    SHARD_SIZE,
)

# The CDN features enforce-https can apply (`CERTPILOT_CDN_FEATURES`), all by default.
CDN_FEATURE_NAMES: tuple[str, ...] = ("https_force", "hsts", "http2", "gzip")
MAX_SHARD_SIZE = 100_000
HSTS_MAX_AGE_LIMIT = 63_072_000  # two years: the longest max-age browsers preload

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


class Secret:
    """A secret setting (a webhook URL with its token, a signing key).

    `reveal()` gives the value to the one place that sends it; `repr`, `str` and
    `Settings.as_dict` show only a mask. Equal when the values are equal.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself: for the request that needs it, nowhere else."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Endpoint:
    """A parsed `CERTPILOT_ENDPOINT` (`http://127.0.0.1:PORT`)."""

    scheme: str  # http | https
    host: str
    port: int

    @property
    def url(self) -> str:
        """Scheme, host and port, as the OSS SDK takes it."""
        return f"{self.scheme}://{self.netloc}"

    @property
    def netloc(self) -> str:
        """Bare `host:port`, as the Tea SDKs take it (a scheme there becomes the Host)."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """What certpilot is configured to do. Never holds credentials."""

    endpoint: str | None = None
    edge_https: str | None = None
    edge_http: str | None = None
    ca_bundle: str | None = None
    account_id: str | None = None
    region: str = DEFAULT_REGION
    cas_region: str = DEFAULT_REGION
    renew_days: int = 30
    verify_deadline: float = 120.0
    # Consecutive consistent handshakes that judge a domain (a CDN change reaches its
    # edge nodes one by one: one lucky handshake proves little).
    verify_consecutive: int = 3
    concurrency: int = 8
    log_level: str = "INFO"
    dry_run: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_attempts: int = 5
    retry_deadline: float = 30.0
    # Seconds for asking one certificate's CA (OCSP, then CRL) whether it is revoked;
    # 0 turns the check off.
    revocation_timeout: float = 4.0
    # enforce-https: buckets and domains never enforced, HSTS, the CDN features to apply.
    enforce_skip_buckets: tuple[str, ...] = ()
    enforce_skip_domains: tuple[str, ...] = ()
    hsts_max_age: int = 5_184_000
    hsts_include_subdomains: bool = False
    cdn_features: tuple[str, ...] = CDN_FEATURE_NAMES
    # check-expiry notifies about findings of this severity or worse. `warning`, so that
    # CERT_EXPIRING (a warning) reaches people while the certificate still works.
    notify_min_severity: Severity = Severity.WARNING
    dingtalk_webhook: Secret | None = None
    dingtalk_secret: Secret | None = None
    wecom_webhook: Secret | None = None
    feishu_webhook: Secret | None = None
    feishu_secret: Secret | None = None
    webhook_url: Secret | None = None
    webhook_secret: Secret | None = None
    # Where check-expiry writes its reports: no bucket, no report objects; the region
    # defaults to `region`; the prefix is kept without leading or trailing slashes.
    report_bucket: str | None = None
    report_region: str | None = None
    report_prefix: str = "certpilot/reports"
    deploy_function: str = "certpilot-deploy-cert"
    # Domains per check-expiry shard: None (unset) chooses from the time budget, 0 never
    # splits the sweep.
    shard_size: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `environ` (default `os.environ`).

        Raises:
            ConfigError: a variable is set to a value that cannot be used; the message
                names the variable (values of secret variables are never read here).
        """
        if environ is None:
            import os

            environ = os.environ
        env = environ
        settings = cls(
            endpoint=_text(env, ENDPOINT),
            edge_https=_host_port(env, EDGE_HTTPS),
            edge_http=_host_port(env, EDGE_HTTP),
            ca_bundle=_text(env, CA_BUNDLE),
            account_id=_text(env, ACCOUNT_ID),
            region=_text(env, REGION) or cls.region,
            cas_region=_text(env, CAS_REGION) or cls.cas_region,
            renew_days=_int(env, RENEW_DAYS, cls.renew_days, lo=0, hi=365),
            verify_deadline=_float(env, VERIFY_DEADLINE, cls.verify_deadline, lo=0.0),
            verify_consecutive=_int(env, VERIFY_CONSECUTIVE, cls.verify_consecutive, lo=1, hi=20),
            concurrency=_int(env, CONCURRENCY, cls.concurrency, lo=1, hi=64),
            log_level=_log_level(env),
            dry_run=_bool(env, DRY_RUN),
            connect_timeout=_float(env, CONNECT_TIMEOUT, cls.connect_timeout, lo=0.1),
            read_timeout=_float(env, READ_TIMEOUT, cls.read_timeout, lo=0.1),
            max_attempts=_int(env, MAX_ATTEMPTS, cls.max_attempts, lo=1, hi=20),
            retry_deadline=_float(env, RETRY_DEADLINE, cls.retry_deadline, lo=0.0),
            revocation_timeout=_float(env, REVOCATION_TIMEOUT, cls.revocation_timeout, lo=0.0),
            enforce_skip_buckets=_names(env, ENFORCE_SKIP_BUCKETS),
            enforce_skip_domains=_names(env, ENFORCE_SKIP_DOMAINS),
            hsts_max_age=_int(env, HSTS_MAX_AGE, cls.hsts_max_age, lo=0, hi=HSTS_MAX_AGE_LIMIT),
            hsts_include_subdomains=_bool(env, HSTS_INCLUDE_SUBDOMAINS),
            cdn_features=_features(env),
            notify_min_severity=_severity(env, NOTIFY_MIN_SEVERITY, cls.notify_min_severity),
            dingtalk_webhook=_webhook(env, DINGTALK_WEBHOOK),
            dingtalk_secret=_secret(env, DINGTALK_SECRET),
            wecom_webhook=_webhook(env, WECOM_WEBHOOK),
            feishu_webhook=_webhook(env, FEISHU_WEBHOOK),
            feishu_secret=_secret(env, FEISHU_SECRET),
            webhook_url=_webhook(env, WEBHOOK_URL),
            webhook_secret=_secret(env, WEBHOOK_SECRET),
            report_bucket=_text(env, REPORT_BUCKET),
            report_region=_text(env, REPORT_REGION),
            report_prefix=_prefix(env, REPORT_PREFIX, cls.report_prefix),
            deploy_function=_text(env, DEPLOY_FUNCTION) or cls.deploy_function,
            shard_size=(
                None
                if _text(env, SHARD_SIZE) is None
                else _int(env, SHARD_SIZE, 0, lo=0, hi=MAX_SHARD_SIZE)
            ),
        )
        if settings.endpoint is not None:
            settings.parsed_endpoint()  # validate early
        return settings

    def parsed_endpoint(self) -> Endpoint | None:
        """The endpoint override, parsed; None when every client goes to the cloud.

        Raises:
            ConfigError: `CERTPILOT_ENDPOINT` is not `http(s)://host:port`.
        """
        if self.endpoint is None:
            return None
        parts = urlsplit(self.endpoint if "://" in self.endpoint else "http://" + self.endpoint)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{ENDPOINT} must look like http://127.0.0.1:PORT")
        if parts.path not in ("", "/") or parts.query:
            raise ConfigError(f"{ENDPOINT} must not carry a path or query")
        if port is None:
            port = 443 if parts.scheme == "https" else 80
        return Endpoint(parts.scheme, parts.hostname, port)

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain JSON-able values (safe to log: a secret set shows as
        the mask, one unset as None)."""
        data = asdict(self)
        for name, value in data.items():
            if isinstance(value, Secret):
                data[name] = MASK
            elif isinstance(value, Severity):
                data[name] = value.value
        return data


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _int(env: Mapping[str, str], name: str, default: int, *, lo: int, hi: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw[:20]!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, lo: float) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw[:20]!r}") from None
    if not math.isfinite(value) or value < lo:
        raise ConfigError(f"{name} must be a finite number >= {lo}, got {raw[:20]!r}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw[:20]!r}")


def _names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma- or blank-separated list, lower-cased, duplicates dropped."""
    raw = (_text(env, name) or "").replace(",", " ").lower()
    return tuple(dict.fromkeys(part.rstrip(".") for part in raw.split() if part))


def _features(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _text(env, CDN_FEATURES)
    if raw is None:
        return CDN_FEATURE_NAMES
    chosen = _names(env, CDN_FEATURES)
    if chosen == ("none",):
        return ()
    unknown = [f for f in chosen if f not in CDN_FEATURE_NAMES]
    if unknown:
        raise ConfigError(
            f"{CDN_FEATURES} takes {', '.join(CDN_FEATURE_NAMES)} or none, got {unknown[0][:20]!r}"
        )
    return chosen


def _log_level(env: Mapping[str, str]) -> str:
    raw = (_text(env, LOG_LEVEL) or "INFO").upper()
    if raw == "WARN":
        raw = "WARNING"
    if raw not in _LOG_LEVELS:
        raise ConfigError(f"{LOG_LEVEL} must be one of {', '.join(_LOG_LEVELS)}")
    return raw


def _prefix(env: Mapping[str, str], name: str, default: str) -> str:
    raw = _text(env, name)
    if raw is None:
        return default
    prefix = raw.strip("/")
    segments = prefix.split("/")
    # An object key prefix: ".." or empty segments would make keys that tools resolve
    # differently from OSS, and control characters do not belong in a key.
    if not prefix or any(s in ("", ".", "..") for s in segments) or not prefix.isprintable():
        raise ConfigError(f"{name} must be a key prefix like certpilot/reports, got {raw[:40]!r}")
    return prefix


def _host_port(env: Mapping[str, str], name: str) -> str | None:
    raw = _text(env, name)
    if raw is None:
        return None
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must be host:port, got {raw[:40]!r}")
    return raw


def _severity(env: Mapping[str, str], name: str, default: Severity) -> Severity:
    raw = (_text(env, name) or default.value).lower()
    try:
        return Severity(raw)
    except ValueError:
        choices = ", ".join(s.value for s in Severity)
        raise ConfigError(f"{name} must be one of {choices}, got {raw[:20]!r}") from None


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    raw = _text(env, name)
    if raw is None:
        return None
    register_secret(raw)
    return Secret(raw)


def _webhook(env: Mapping[str, str], name: str) -> Secret | None:
    """A webhook URL: a secret as a whole, and so is each part that can carry its token
    (query values, long path segments), since an error could quote a part alone."""
    raw = _text(env, name)
    if raw is None:
        return None
    register_secret(raw)
    parts = urlsplit(raw)
    for _, value in parse_qsl(parts.query, keep_blank_values=True):
        register_secret(value)
    for segment in parts.path.split("/"):
        # Short segments are words ("robot", "send", "hook"): masking them would mangle
        # ordinary log text, and a token is never that short.
        if len(segment) >= _TOKEN_SEGMENT:
            register_secret(segment)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The value is a secret: the message names the variable, never quotes it.
        raise ConfigError(f"{name} must be an http(s) URL")
    return Secret(raw)


_TOKEN_SEGMENT = 16
