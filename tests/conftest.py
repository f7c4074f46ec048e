"""Shared pytest fixtures: a real emulator process and SDK clients pointed at it.

Importing this file clears every `*_proxy` environment variable: the Tea SDK clients
(CDN, CAS, FC) would otherwise send even 127.0.0.1 traffic to a proxy.

Fixtures
--------
`emulator` (session scope)
    An `Emulator` handle on one `python -m emulator --port 0` subprocess (one per
    xdist worker), started on first use and terminated at the end of the session.
    Attributes: `api` (control-plane base URL), `https` / `http` (edge `host:port`),
    `ca_bundle` (PEM path), `access_key_id`, `access_key_secret`, `security_token`,
    `account_id`, `region`, `info` (the whole ready line).
    Admin helpers: `reset()`, `stats()`, `action_stats("cdn:Action")`,
    `faults(spec, ...)` (returns the added faults), `clear_faults()`,
    `load_estate(dict)`, `state()`, `settings(**changes)` (GET when called without
    arguments), `register_function(name, path, handler=..., env=..., layers=...,
    async_retries=..., async_retry_delay=...)`, `invocations(function=None)`,
    `wait_invocation(request_id)` (polls until it finished, FC's async retries
    included), `verify_domain(bucket, domain)` (the CNAME token in the `_dnsauth` TXT
    record, as a new PutCname needs), `admin(method, path, body)` for anything else.
    SDK factories (real SDKs, lazily imported): `oss_client()`, `cdn_client()`,
    `cas_client()`, `fc_client()`; each takes `access_key_id=`, `access_key_secret=`,
    `security_token=` overrides (for authentication scenarios), and `oss_client`
    also `retries=` (the OSS SDK retries 5xx and skew errors 3 times by default).
    `certpilot_env()` gives the environment that points certpilot at this emulator.

`cloud` (function scope)
    The same handle after `reset()`: no buckets, domains, certificates, faults or
    stats, and start-up settings, so every test starts from an empty account.
    Use this one in tests; use `emulator` only for read-only session-wide checks.

`emulator_factory` (session scope)
    `emulator_factory("--security-token", "T", ...)` starts another emulator with
    extra command-line arguments (terminated at the end of the session).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

for _name in list(os.environ):
    if _name.lower().endswith("_proxy"):
        del os.environ[_name]

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 20.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EmulatorError(RuntimeError):
    """The emulator did not start, or an admin call failed."""


class Emulator:
    """A running emulator process and helpers to drive it (see the module docstring)."""

    def __init__(self, process: subprocess.Popen[bytes], info: dict[str, Any], log: Path) -> None:
        self.process = process
        self.info = info
        self.log = log
        self.api: str = info["api"]
        self.https: str | None = info.get("https")
        self.http: str | None = info.get("http")
        self.ca_bundle: str | None = info.get("ca_bundle")
        self.access_key_id: str = info["access_key_id"]
        self.access_key_secret: str = info["access_key_secret"]
        self.security_token: str | None = info.get("security_token")
        self.account_id: str = info["account_id"]
        self.region: str = info.get("region") or "cn-hangzhou"

    @property
    def endpoint(self) -> str:
        """The control plane as `host:port` (the Tea SDKs' `endpoint`)."""
        return self.api.split("://", 1)[1]

    # -- admin API ------------------------------------------------------------------

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call `/_emulator/<path>` and return its JSON answer.

        Raises:
            EmulatorError: on an HTTP error status (with the answer's message).
        """
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            f"{self.api}/_emulator/{path.lstrip('/')}", data=data, method=method
        )
        request.add_header("Content-Type", "application/json")
        try:
            with _NO_PROXY.open(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            raise EmulatorError(f"{method} {path}: {err.code} {err.read()!r}") from None

    def reset(self) -> None:
        """Empty the account and clear faults, stats and settings (keys stay)."""
        self.admin("POST", "reset")

    def stats(self) -> dict[str, Any]:
        """`{"actions": {"cdn:Action": {"calls", "throttled", "errors"}}, "totals": ...}`."""
        result: dict[str, Any] = self.admin("GET", "stats")
        return result

    def action_stats(self, action: str) -> dict[str, int]:
        """The counters of one action ("oss:PutCname"), zeros if it was never called."""
        counts: dict[str, int] = self.stats()["actions"].get(action) or {}
        return {"calls": 0, "throttled": 0, "errors": 0, **counts}

    def calls(self, since: int = 0, action: str | None = None) -> list[dict[str, Any]]:
        """The ordered call log: `{"seq", "action", "outcome", "params"}` per call after
        sequence number `since`, oldest first (`action` filters, e.g. "oss:PutCname")."""
        query = f"calls?since={since}" + (f"&action={action}" if action else "")
        records: list[dict[str, Any]] = self.admin("GET", query)["calls"]
        return records

    def faults(self, *specs: dict[str, Any], **spec: Any) -> list[dict[str, Any]]:
        """Add faults, e.g. `faults(action="cdn:X", error={"code": "ServiceBusy",
        "status": 403}, times=2)` or `faults({"action": ..., "latency": 0.5}, {...})`."""
        all_specs = [*specs, *([spec] if spec else [])]
        added: list[dict[str, Any]] = self.admin("POST", "faults", {"faults": all_specs})["faults"]
        return added

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults")

    def load_estate(self, estate: dict[str, Any]) -> dict[str, int]:
        """Load an estate document (see emulator/README.md, "Estate file format");
        returns the CAS id of each certificate by its estate name."""
        certificates: dict[str, int] = self.admin("POST", "estate", estate)["certificates"]
        return certificates

    def state(self) -> dict[str, Any]:
        """The JSON dump of the account (no private keys)."""
        result: dict[str, Any] = self.admin("GET", "state")
        return result

    def settings(self, **changes: Any) -> dict[str, Any]:
        """Change settings (`propagation_delay`, `qps_scale`, `burst`, `qps`,
        `clock_offset`, `time_offset`, `security_token_expired`, `verify_domain_ownership`); returns
        them all."""
        result: dict[str, Any] = (
            self.admin("POST", "settings", changes) if changes else self.admin("GET", "settings")
        )
        return result

    def register_function(
        self,
        name: str,
        path: str | Path,
        *,
        handler: str = "handler",
        env: dict[str, str] | None = None,
        layers: Sequence[str | Path] = (),
        timeout: float = 60.0,
        async_retries: int | None = None,
        async_retry_delay: float | None = None,
    ) -> dict[str, Any]:
        """Register an FC function backed by the Python file at `path` (async retries
        and their pause: the emulator's defaults unless given)."""
        spec: dict[str, Any] = {
            "name": name,
            "path": str(path),
            "handler": handler,
            "env": env or {},
            "layers": [str(p) for p in layers],
            "timeout": timeout,
        }
        if async_retries is not None:
            spec["asyncRetries"] = async_retries
        if async_retry_delay is not None:
            spec["asyncRetryDelay"] = async_retry_delay
        result: dict[str, Any] = self.admin("POST", "functions", spec)
        return result

    def verify_domain(self, bucket: str, domain: str) -> str:
        """Prove `domain` is ours for `bucket` as OSS requires before PutCname binds it:
        CreateCnameToken through the OSS SDK, then publish the token as the
        `_dnsauth.<domain>` TXT record (the emulator plays DNS). Returns the token."""
        import alibabacloud_oss_v2 as oss

        created = self.oss_client().create_cname_token(
            oss.CreateCnameTokenRequest(
                bucket=bucket,
                bucket_cname_configuration=oss.BucketCnameConfiguration(
                    cname=oss.Cname(domain=domain)
                ),
            )
        )
        token: str = created.cname_token.token
        name = "_dnsauth." + created.cname_token.cname.removeprefix("*.")  # its A-label
        self.admin("POST", "oss/dns-txt", {"name": name, "value": token})
        return token

    def invocations(self, function: str | None = None) -> list[dict[str, Any]]:
        path = "invocations" + (f"?function={function}" if function else "")
        records: list[dict[str, Any]] = self.admin("GET", path)["invocations"]
        return records

    def wait_invocation(self, request_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll until the invocation `request_id` has finished, retries included;
        returns the record of its last attempt.

        Raises:
            TimeoutError: if it is still running (or to be retried) after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            records = self.admin("GET", f"invocations?request_id={request_id}")["invocations"]
            last = max(records, key=lambda r: r.get("attempt", 1), default=None)
            if last is not None and last["status"] != "running" and not last.get("willRetry"):
                record: dict[str, Any] = last
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"invocation {request_id} still running")
            time.sleep(0.05)

    def certpilot_env(self) -> dict[str, str]:
        """Environment variables that point certpilot (CLI, handlers) at this emulator."""
        env = {
            "CERTPILOT_ENDPOINT": self.api,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": self.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": self.access_key_secret,
            "CERTPILOT_ACCOUNT_ID": self.account_id,
        }
        if self.security_token:
            env["ALIBABA_CLOUD_SECURITY_TOKEN"] = self.security_token
        if self.https:
            env["CERTPILOT_EDGE_HTTPS"] = self.https
        if self.http:
            env["CERTPILOT_EDGE_HTTP"] = self.http
        if self.ca_bundle:
            env["CERTPILOT_CA_BUNDLE"] = self.ca_bundle
        return env

    # -- SDK clients ------------------------------------------------------------------

    def _credentials(self, overrides: dict[str, Any]) -> tuple[str, str, str | None]:
        return (
            overrides.get("access_key_id", self.access_key_id),
            overrides.get("access_key_secret", self.access_key_secret),
            overrides.get("security_token", self.security_token),
        )

    def oss_client(self, *, retries: int | None = None, **credentials: Any) -> Any:
        """An `alibabacloud_oss_v2.Client` for this emulator (path-style, region set)."""
        import alibabacloud_oss_v2 as oss

        key_id, secret, token = self._credentials(credentials)
        config = oss.config.load_default()
        config.credentials_provider = oss.credentials.StaticCredentialsProvider(
            key_id, secret, token
        )
        config.region = self.region
        config.endpoint = self.api
        if retries is not None:
            config.retry_max_attempts = retries
        return oss.Client(config)

    def _tea_config(self, credentials: dict[str, Any]) -> Any:
        from alibabacloud_tea_openapi import utils_models

        key_id, secret, token = self._credentials(credentials)
        return utils_models.Config(
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=token,
            endpoint=self.endpoint,
            protocol="http",
            region_id=self.region,
        )

    def cdn_client(self, **credentials: Any) -> Any:
        """An `alibabacloud_cdn20180510` client for this emulator."""
        from alibabacloud_cdn20180510.client import Client

        return Client(self._tea_config(credentials))

    def cas_client(self, **credentials: Any) -> Any:
        """An `alibabacloud_cas20200407` client for this emulator."""
        from alibabacloud_cas20200407.client import Client

        return Client(self._tea_config(credentials))

    def fc_client(self, **credentials: Any) -> Any:
        """An `alibabacloud_fc20230330` (FC 3.0) client for this emulator."""
        from alibabacloud_fc20230330.client import Client

        return Client(self._tea_config(credentials))

    # -- lifetime -------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM the process, wait for it and remove its log; returns its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.unlink(missing_ok=True)
        return self.process.returncode


def launch_emulator(*args: str, timeout: float = READY_TIMEOUT) -> Emulator:
    """Start `python -m emulator --port 0 ARGS...` and wait for its ready line.

    Raises:
        EmulatorError: if it exits or stays silent for `timeout` seconds (with its log).
    """
    log = Path(tempfile.mkstemp(prefix="emulator-", suffix=".log")[1])
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "emulator", "--port", "0", "--watch-stdin", *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    lines: list[bytes] = []
    assert process.stdout is not None
    stdout = process.stdout

    def read_ready_line() -> None:
        lines.append(stdout.readline())
        for _ in iter(stdout.readline, b""):  # keep the pipe drained
            pass

    threading.Thread(target=read_ready_line, name="emulator-stdout", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not lines and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    if not lines or not lines[0].strip():
        process.kill()
        process.wait()
        text = log.read_text(errors="replace")
        log.unlink(missing_ok=True)
        raise EmulatorError(f"emulator did not start; log:\n{text}")
    return Emulator(process, json.loads(lines[0]), log)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One emulator process for the whole session (see the module docstring)."""
    running = launch_emulator()
    yield running
    running.stop()


@pytest.fixture
def cloud(emulator: Emulator) -> Emulator:
    """The session's emulator, reset to an empty account before the test."""
    emulator.reset()
    return emulator


@pytest.fixture(scope="session")
def emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """Start extra emulators with custom arguments; all are stopped at session end."""
    started: list[Emulator] = []

    def start(*args: str) -> Emulator:
        running = launch_emulator(*args)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(autouse=True)
def _isolated_certpilot_state() -> Iterator[None]:
    """certpilot's process-wide state as each test found it: a fresh shared QPS limiter
    (`ratelimit.shared_limiter()`), and the secrets a test registers for redaction
    (`log.register_secret`, e.g. by building `Credentials`) forgotten after it."""
    from certpilot.cloud import ratelimit
    from certpilot.core import log

    with log.isolated_secrets(), ratelimit.isolated_shared_limiter():
        yield
