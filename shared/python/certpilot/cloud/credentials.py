"""Cloud credentials: the FC context's STS credentials in the cloud, env vars locally.

Whatever the source, the secret and the token are registered with the log redactor
the moment they are read, and never appear in a repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from certpilot.core import settings as names
from certpilot.core.errors import ConfigError
from certpilot.core.log import register_secret


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, with the STS token when the pair is temporary."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    source: str = "env"  # "fc-context" | "env"

    def __post_init__(self) -> None:
        if not self.access_key_id or not self.access_key_secret:
            raise ConfigError("credentials need an AccessKey id and secret")
        register_secret(self.access_key_secret)
        register_secret(self.security_token)
        register_secret(self.access_key_id, keep_prefix=4)

    def __repr__(self) -> str:
        return (
            f"Credentials(access_key_id={self.access_key_id[:4]}****, "
            f"temporary={self.security_token is not None}, source={self.source!r})"
        )

    __str__ = __repr__


def from_context(context: Any) -> Credentials | None:
    """Credentials of an FC invocation context (`context.credentials`), or None.

    FC 3.0 passes the function role's STS credentials as `access_key_id`,
    `access_key_secret`, `security_token` attributes.
    """
    creds = getattr(context, "credentials", None)
    if creds is None:
        return None
    key_id = getattr(creds, "access_key_id", None) or getattr(creds, "accessKeyId", None)
    secret = getattr(creds, "access_key_secret", None) or getattr(creds, "accessKeySecret", None)
    token = getattr(creds, "security_token", None) or getattr(creds, "securityToken", None)
    if not key_id or not secret:
        return None
    return Credentials(str(key_id), str(secret), str(token) if token else None, "fc-context")


def from_env(environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials from `ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` (`_SECURITY_TOKEN`)."""
    if environ is None:
        import os

        environ = os.environ
    key_id = environ.get(names.ACCESS_KEY_ID, "").strip()
    secret = environ.get(names.ACCESS_KEY_SECRET, "").strip()
    token = environ.get(names.SECURITY_TOKEN, "").strip() or None
    if not key_id and not secret:
        return None
    if not key_id or not secret:
        raise ConfigError(f"set both {names.ACCESS_KEY_ID} and {names.ACCESS_KEY_SECRET}")
    return Credentials(key_id, secret, token, "env")


def resolve(context: Any = None, environ: Mapping[str, str] | None = None) -> Credentials:
    """The credentials to use: the FC context's when present, else the environment's.

    Raises:
        ConfigError: neither source has credentials.
    """
    found = from_context(context) if context is not None else None
    if found is None:
        found = from_env(environ)
    if found is None:
        raise ConfigError(
            f"no credentials: run in Function Compute or set {names.ACCESS_KEY_ID} and "
            f"{names.ACCESS_KEY_SECRET}"
        )
    return found
