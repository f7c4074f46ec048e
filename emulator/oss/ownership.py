"""Proving a custom domain is yours: a valid CNAME token published as the
`_dnsauth.<domain>` TXT record; PutCname checks it for new bindings."""

from __future__ import annotations

from emulator.oss.errors import oss_error
from emulator.state import State

CNAME_TOKEN_TTL = 72 * 3600  # documented: a CNAME token expires 72 hours after creation


def valid_token(state: State, bucket: str, domain: str) -> str | None:
    """The unexpired CNAME token of `domain` on `bucket`, if any."""
    entry = state.cname_tokens.get((bucket, domain))
    if entry is None or entry[1] <= state.now():
        return None
    return entry[0]


def check_ownership(state: State, bucket: str, domain: str) -> None:
    """Raise NeedVerifyDomainOwnership unless `_dnsauth.<domain>` holds a valid token."""
    token = valid_token(state, bucket, domain)
    if token is None or state.dns_txt.get("_dnsauth." + domain.removeprefix("*.")) != token:
        raise oss_error(
            "need_verify",
            "Please verify domain ownership by CreateCnameToken and try again.",
        )
