"""Settings and credentials from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from certpilot.cloud import credentials
from certpilot.core import log, settings
from certpilot.core.errors import ConfigError
from certpilot.core.settings import Endpoint, Settings


def test_defaults_without_any_variable() -> None:
    s = Settings.from_env({})

    assert s == Settings()
    assert (s.region, s.renew_days, s.verify_deadline, s.concurrency) == (
        "cn-hangzhou",
        30,
        120.0,
        8,
    )
    assert s.endpoint is None and s.parsed_endpoint() is None
    assert not s.dry_run and s.log_level == "INFO"


def test_every_variable_is_read() -> None:
    env = {
        settings.ENDPOINT: "http://127.0.0.1:8123",
        settings.EDGE_HTTPS: "127.0.0.1:8443",
        settings.EDGE_HTTP: "127.0.0.1:8080",
        settings.CA_BUNDLE: "/tmp/ca.pem",
        settings.ACCOUNT_ID: "1234567890123456",
        settings.REGION: "cn-shanghai",
        settings.CAS_REGION: "ap-southeast-1",
        settings.RENEW_DAYS: "14",
        settings.VERIFY_DEADLINE: "30.5",
        settings.CONCURRENCY: "4",
        settings.LOG_LEVEL: "debug",
        settings.DRY_RUN: "yes",
        settings.CONNECT_TIMEOUT: "2",
        settings.READ_TIMEOUT: "7.5",
        settings.MAX_ATTEMPTS: "3",
        settings.RETRY_DEADLINE: "12",
        settings.VERIFY_CONSECUTIVE: "5",
        settings.REVOCATION_TIMEOUT: "2.5",
        settings.ENFORCE_SKIP_BUCKETS: "legacy-assets, Old-Site",
        settings.ENFORCE_SKIP_DOMAINS: "a.example.com b.example.com.",
        settings.HSTS_MAX_AGE: "31536000",
        settings.HSTS_INCLUDE_SUBDOMAINS: "on",
        settings.CDN_FEATURES: "https_force,hsts",
        settings.NOTIFY_MIN_SEVERITY: "Error",
        settings.DINGTALK_WEBHOOK: "https://oapi.dingtalk.com/robot/send?access_token=tok123456",
        settings.DINGTALK_SECRET: "SECding123456",
        settings.WECOM_WEBHOOK: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wk123456",
        settings.FEISHU_WEBHOOK: "https://open.feishu.cn/open-apis/bot/v2/hook/0123456789abcdef0",
        settings.FEISHU_SECRET: "feishu123456",
        settings.WEBHOOK_URL: "https://hooks.example.com/certpilot",
        settings.WEBHOOK_SECRET: "hook123456",
        settings.REPORT_BUCKET: "ops-reports",
        settings.REPORT_REGION: "cn-beijing",
        settings.REPORT_PREFIX: "/audit/https/",
        settings.DEPLOY_FUNCTION: "prod-deploy-cert",
        settings.SHARD_SIZE: "250",
    }

    s = Settings.from_env(env)

    assert s.as_dict() == {
        "endpoint": "http://127.0.0.1:8123",
        "edge_https": "127.0.0.1:8443",
        "edge_http": "127.0.0.1:8080",
        "ca_bundle": "/tmp/ca.pem",
        "account_id": "1234567890123456",
        "region": "cn-shanghai",
        "cas_region": "ap-southeast-1",
        "renew_days": 14,
        "verify_deadline": 30.5,
        "verify_consecutive": 5,
        "concurrency": 4,
        "log_level": "DEBUG",
        "dry_run": True,
        "connect_timeout": 2.0,
        "read_timeout": 7.5,
        "max_attempts": 3,
        "retry_deadline": 12.0,
        "revocation_timeout": 2.5,
        "enforce_skip_buckets": ("legacy-assets", "old-site"),
        "enforce_skip_domains": ("a.example.com", "b.example.com"),
        "hsts_max_age": 31536000,
        "hsts_include_subdomains": True,
        "cdn_features": ("https_force", "hsts"),
        "notify_min_severity": "error",
        # secrets: shown as set, never as themselves
        "dingtalk_webhook": "[REDACTED]",
        "dingtalk_secret": "[REDACTED]",
        "wecom_webhook": "[REDACTED]",
        "feishu_webhook": "[REDACTED]",
        "feishu_secret": "[REDACTED]",
        "webhook_url": "[REDACTED]",
        "webhook_secret": "[REDACTED]",
        "report_bucket": "ops-reports",
        "report_region": "cn-beijing",
        "report_prefix": "audit/https",
        "deploy_function": "prod-deploy-cert",
        "shard_size": 250,
    }
    assert s.dingtalk_secret is not None and s.dingtalk_secret.reveal() == "SECding123456"
    for name in ("tok123456", "wk123456", "0123456789abcdef0", "feishu123456", "hook123456"):
        assert name not in repr(s)
        assert name not in log.redact(f"a message quoting {name}")
    assert s.parsed_endpoint() == Endpoint("http", "127.0.0.1", 8123)
    assert set(env) < set(settings.ALL_VARIABLES)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        (settings.RENEW_DAYS, "soon"),
        (settings.RENEW_DAYS, "-1"),
        (settings.CONCURRENCY, "0"),
        (settings.HSTS_MAX_AGE, "63072001"),
        (settings.HSTS_INCLUDE_SUBDOMAINS, "maybe"),
        (settings.CDN_FEATURES, "https_force,brotli"),
        (settings.VERIFY_DEADLINE, "nan"),
        (settings.VERIFY_DEADLINE, "inf"),
        (settings.DRY_RUN, "maybe"),
        (settings.LOG_LEVEL, "LOUD"),
        (settings.EDGE_HTTPS, "127.0.0.1"),
        (settings.EDGE_HTTP, "host:99999"),
        (settings.ENDPOINT, "ftp://127.0.0.1:21"),
        (settings.ENDPOINT, "http://127.0.0.1:8000/api"),
        (settings.MAX_ATTEMPTS, "0"),
        (settings.NOTIFY_MIN_SEVERITY, "critical"),
        (settings.DINGTALK_WEBHOOK, "oapi.dingtalk.com/robot/send"),
        (settings.WEBHOOK_URL, "file:///etc/passwd"),
    ],
)
def test_unusable_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as failure:
        Settings.from_env({variable: value})

    assert variable in str(failure.value)


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("http://127.0.0.1:9000", Endpoint("http", "127.0.0.1", 9000)),
        ("http://localhost:9000/", Endpoint("http", "localhost", 9000)),
        ("127.0.0.1:9000", Endpoint("http", "127.0.0.1", 9000)),
        ("https://emulator.test", Endpoint("https", "emulator.test", 443)),
    ],
)
def test_endpoint_forms(raw: str, parsed: Endpoint) -> None:
    endpoint = Settings.from_env({settings.ENDPOINT: raw}).parsed_endpoint()

    assert endpoint == parsed
    assert endpoint is not None and endpoint.netloc == f"{parsed.host}:{parsed.port}"


def test_settings_never_hold_credentials() -> None:
    env = {
        settings.ACCESS_KEY_ID: "LTAI5tKeyId000001",
        settings.ACCESS_KEY_SECRET: "s3cr3t-value-1",
    }

    s = Settings.from_env(env)

    assert "s3cr3t-value-1" not in repr(s) and "LTAI5tKeyId000001" not in repr(s)


def test_credentials_from_env_and_context() -> None:
    class Creds:
        access_key_id = "STS.ctx-key-0001"
        access_key_secret = "ctx-secret-0001"
        security_token = "CAIS-ctx-token-0001"

    class Context:
        credentials = Creds()

    env = {settings.ACCESS_KEY_ID: "LTAI5tEnvKey0001", settings.ACCESS_KEY_SECRET: "env-secret-1"}

    from_ctx = credentials.resolve(Context(), env)
    from_env = credentials.resolve(None, env)

    assert (from_ctx.source, from_ctx.security_token) == ("fc-context", "CAIS-ctx-token-0001")
    assert (from_env.source, from_env.access_key_id) == ("env", "LTAI5tEnvKey0001")
    for creds in (from_ctx, from_env):
        shown = repr(creds) + str(creds)
        assert creds.access_key_secret not in shown
        assert creds.access_key_id not in shown


@pytest.mark.parametrize(
    "env",
    [
        {},
        {settings.ACCESS_KEY_ID: "LTAI5tOnlyTheId"},
        {settings.ACCESS_KEY_SECRET: "only-the-secret"},
    ],
)
def test_missing_credentials_are_a_config_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as failure:
        credentials.resolve(None, env)

    assert "only-the-secret" not in str(failure.value)


def test_importing_the_cloud_modules_loads_no_sdk() -> None:
    # Cold starts cost money: SDKs are imported inside the functions that use them.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import certpilot.cloud.oss, certpilot.cloud.cdn, certpilot.cloud.cas\n"
        "import certpilot.cloud.fc, certpilot.cloud.clients\n"
        "import certpilot.discovery.inventory, certpilot.discovery.catalog\n"
        "heavy = ('alibabacloud', 'darabonba', 'Tea', 'requests', 'aiohttp', 'cryptography')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(heavy)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "shared" / "python")},
    )

    assert out.stdout.strip() == "[]"


def test_cdn_features_none_turns_every_feature_off() -> None:
    # given CERTPILOT_CDN_FEATURES=none
    s = Settings.from_env({settings.CDN_FEATURES: "none"})
    # then enforce-https applies no CDN feature
    assert s.cdn_features == ()


def test_an_unusable_webhook_url_is_named_but_never_quoted() -> None:
    url = "hxxp://oapi.dingtalk.com/robot/send?access_token=quoted-nowhere-123"

    with pytest.raises(ConfigError) as failure:
        Settings.from_env({settings.DINGTALK_WEBHOOK: url})

    assert settings.DINGTALK_WEBHOOK in str(failure.value)
    assert "quoted-nowhere-123" not in str(failure.value)
