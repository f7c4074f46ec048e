"""Request authentication: OSS4-HMAC-SHA256 and ACS3-HMAC-SHA256 signature checks.

Both checks rebuild the canonical request exactly as the official SDKs do
(`alibabacloud_oss_v2/signer/v4.py`; `alibabacloud_tea_openapi/utils.py`
`get_authorization`) and compare signatures in constant time. Failures are raised
as `ServiceError` in the wire terms of the calling service ("oss", "rpc" or "fc"),
see `_ERRORS`. The work per request is a few hashes: derived OSS signing keys are
cached per (secret, date, region, product).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from urllib.parse import quote

from emulator.core import Request, ServiceError
from emulator.state import State

MAX_SKEW_SECONDS = 15 * 60
OSS4 = "OSS4-HMAC-SHA256"
ACS3 = "ACS3-HMAC-SHA256"

# (status, code, message, OSS EC) per failure kind and flavor. Codes and messages are the
# documented ones; the entries marked "chosen" in emulator/README.md were not confirmed.
_ERRORS: dict[str, dict[str, tuple[int, str, str, str]]] = {
    "oss": {
        "missing": (
            403,
            "AccessDenied",
            "AccessDenied: Anonymous access is forbidden for this operation.",
            "0003-00000001",
        ),
        "malformed": (400, "InvalidArgument", "Authorization header is invalid.", "0002-00000012"),
        "unknown_key": (
            403,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
            "0002-00000902",
        ),
        "signature": (
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided."
            " Check your key and signing method.",
            "0002-00000201",
        ),
        "skew": (
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            "0002-00000504",
        ),
        "token_missing": (
            403,
            "InvalidSecurityToken",
            "The security token you provided is invalid.",
            "0002-00000006",
        ),
        "token_mismatch": (
            403,
            "InvalidSecurityToken",
            "The security token you provided is invalid.",
            "0002-00000008",
        ),
        "token_expired": (
            403,
            "SecurityTokenExpired",
            "The security token you provided has expired.",
            "0002-00000007",
        ),
        "nonce": (403, "AccessDenied", "The signature nonce was used already.", "0002-00000201"),
    },
    "rpc": {
        "missing": (
            400,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards.",
            "",
        ),
        "malformed": (
            400,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards.",
            "",
        ),
        "unknown_key": (
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
            "",
        ),
        "signature": (
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
            "",
        ),
        "skew": (
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
            "",
        ),
        "token_missing": (
            400,
            "MissingSecurityToken",
            "SecurityToken is mandatory for this action.",
            "",
        ),
        "token_mismatch": (
            400,
            "InvalidSecurityToken.MismatchWithAccessKey",
            "Specified SecurityToken mismatch with the AccessKey.",
            "",
        ),
        "token_expired": (
            400,
            "InvalidSecurityToken.Expired",
            "Specified SecurityToken is expired.",
            "",
        ),
        "nonce": (400, "SignatureNonceUsed", "Specified signature nonce was used already.", ""),
    },
    "fc": {
        "missing": (
            400,
            "MissingRequiredHeader",
            "required HTTP header Authorization was not specified",
            "",
        ),
        "malformed": (400, "InvalidArgument", "Authorization header is invalid", ""),
        "unknown_key": (403, "InvalidAccessKeyID", "invalid access key ID '{key}'", ""),
        "signature": (
            403,
            "SignatureNotMatch",
            "The request signature we calculated does not match the signature you provided."
            " Check your access key and signing method",
            "",
        ),
        "skew": (
            403,
            "RequestTimeTooSkewed",
            "the difference between the request time and the server's time is too large",
            "",
        ),
        "token_missing": (403, "InvalidSecurityToken", "the security token is required", ""),
        "token_mismatch": (403, "InvalidSecurityToken", "the security token is invalid", ""),
        "token_expired": (403, "InvalidSecurityToken", "the security token has expired", ""),
        "nonce": (400, "SignatureNonceUsed", "the signature nonce was used already", ""),
    },
}


def auth_error(flavor: str, kind: str, *, key: str = "") -> ServiceError:
    """The `ServiceError` a service of `flavor` ("oss", "rpc", "fc") answers for `kind`."""
    status, code, message, ec = _ERRORS[flavor][kind]
    return ServiceError(status, code, message.format(key=key), ec=ec)


@dataclass
class AuthSettings:
    """Knobs the admin API turns: a server clock offset and a simulated token expiry."""

    clock_offset: float = 0.0
    security_token_expired: bool = False


class _NonceCache:
    """Signature nonces seen within the skew window (replays are refused)."""

    def __init__(self, ttl: float = MAX_SKEW_SECONDS, limit: int = 200_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._ttl = ttl
        self._limit = limit

    def add(self, nonce: str, now: float) -> bool:
        """Remember `nonce`; False if it was already used."""
        with self._lock:
            while self._seen:
                oldest, seen_at = next(iter(self._seen.items()))
                if seen_at > now - self._ttl and len(self._seen) < self._limit:
                    break
                del self._seen[oldest]
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            return True

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


def _parse_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise ValueError(part)
        fields[name] = value
    return fields


@lru_cache(maxsize=256)
def _oss4_signing_key(secret: str, date: str, region: str, product: str) -> bytes:
    key = hmac.new(("aliyun_v4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, product, "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def oss4_canonical_uri(path: str) -> str:
    """Path-style canonical URI: `/bucket/key` (percent-encoded, `/` kept), `/bucket/`, `/`."""
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "/"
    return quote(f"/{bucket}/{key}", safe="/")


def oss4_canonical_query(raw_query: str) -> str:
    """Sorted `key=value` pairs as sent (still encoded); a pair without value stays `key`."""
    if not raw_query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in raw_query.split("&"))
    return "&".join(f"{k}={v}" if v else k for k, v in pairs)


def _utc_seconds(text: str, fmt: str) -> float | None:
    try:
        return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


class Authenticator:
    """Verifies signed requests against the account's one AccessKey pair (and STS token)."""

    def __init__(self, state: State, settings: AuthSettings | None = None) -> None:
        self.state = state
        self.settings = settings or AuthSettings()
        self.nonces = _NonceCache()

    def now(self) -> float:
        # Real time, not `state.clock`: tests may move the state clock to age certificates.
        return time.time() + self.settings.clock_offset

    def _check_token(self, flavor: str, token: str) -> None:
        expected = self.state.security_token
        if expected is None:
            if token:
                raise auth_error(flavor, "token_mismatch")
            return
        if not token:
            raise auth_error(flavor, "token_missing")
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise auth_error(flavor, "token_mismatch")
        if self.settings.security_token_expired:
            raise auth_error(flavor, "token_expired")

    def _check_key(self, flavor: str, key_id: str) -> None:
        if key_id != self.state.access_key_id:
            raise auth_error(flavor, "unknown_key", key=key_id)

    def _check_time(self, flavor: str, signed_at: float | None) -> None:
        if signed_at is None:
            raise auth_error(flavor, "malformed")
        if abs(self.now() - signed_at) > MAX_SKEW_SECONDS:
            raise auth_error(flavor, "skew")

    def verify_oss4(self, request: Request) -> None:
        """Check an `OSS4-HMAC-SHA256` Authorization header (path-style addressing).

        Raises:
            ServiceError: in OSS terms (XML, with EC) when the request is not authentic.
        """
        authorization = request.header("authorization")
        if not authorization:
            raise auth_error("oss", "missing")
        scheme, _, rest = authorization.partition(" ")
        try:
            if scheme != OSS4:
                raise ValueError(scheme)
            fields = _parse_fields(rest)
            key_id, date, region, product, terminator = fields["Credential"].split("/")
            signature = fields["Signature"]
            if terminator != "aliyun_v4_request":
                raise ValueError(terminator)
        except (KeyError, ValueError):
            raise auth_error("oss", "malformed") from None
        self._check_key("oss", key_id)
        timestamp = request.header("x-oss-date")
        self._check_time("oss", _utc_seconds(timestamp, "%Y%m%dT%H%M%SZ"))
        if not timestamp.startswith(date):
            raise auth_error("oss", "signature")

        additional = [h for h in fields.get("AdditionalHeaders", "").split(";") if h]
        signed = set(additional)
        canonical_headers = "".join(
            f"{name}:{value}\n"
            for name, value in sorted(request.headers.items())
            if name.startswith("x-oss-")
            or name in ("content-type", "content-md5")
            or name in signed
        )
        canonical_request = "\n".join(
            (
                request.method,
                oss4_canonical_uri(request.path),
                oss4_canonical_query(request.raw_query),
                canonical_headers,
                ";".join(additional),
                request.header("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
            )
        )
        scope = f"{date}/{region}/{product}/aliyun_v4_request"
        string_to_sign = "\n".join(
            (OSS4, timestamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
        )
        key = _oss4_signing_key(self.state.access_key_secret, date, region, product)
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise auth_error("oss", "signature")
        self._check_token("oss", request.header("x-oss-security-token"))

    def verify_acs3(self, request: Request, flavor: str = "rpc") -> None:
        """Check an `ACS3-HMAC-SHA256` Authorization header (RPC and FC 3.0 ROA calls).

        Raises:
            ServiceError: in the terms of `flavor` ("rpc": JSON Code/Message; "fc": FC JSON).
        """
        authorization = request.header("authorization")
        if not authorization:
            raise auth_error(flavor, "missing")
        scheme, _, rest = authorization.partition(" ")
        try:
            if scheme != ACS3:
                raise ValueError(scheme)
            fields = _parse_fields(rest)
            key_id = fields["Credential"]
            signed_headers = fields["SignedHeaders"]
            signature = fields["Signature"]
        except (KeyError, ValueError):
            raise auth_error(flavor, "malformed") from None
        self._check_key(flavor, key_id)
        self._check_time(flavor, _utc_seconds(request.header("x-acs-date"), "%Y-%m-%dT%H:%M:%SZ"))

        query = "&".join(
            f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(request.query.items())
        )
        names = signed_headers.split(";")
        canonical_headers = "".join(f"{n}:{request.header(n).strip()}\n" for n in names)
        canonical_request = "\n".join(
            (
                request.method,
                request.raw_path or "/",
                query,
                canonical_headers,
                signed_headers,
                hashlib.sha256(request.body).hexdigest(),
            )
        )
        string_to_sign = f"{ACS3}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        expected = hmac.new(
            self.state.access_key_secret.encode(), string_to_sign.encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise auth_error(flavor, "signature")
        self._check_token(flavor, request.header("x-acs-security-token"))
        nonce = request.header("x-acs-signature-nonce")
        if nonce and not self.nonces.add(nonce, self.now()):
            raise auth_error(flavor, "nonce")


def verify_oss4(state: State, request: Request) -> None:
    """Check an OSS V4 signature with default settings; raises ServiceError in OSS terms."""
    Authenticator(state).verify_oss4(request)


def verify_acs3(state: State, request: Request) -> None:
    """Check an ACS3-HMAC-SHA256 signature; raises ServiceError in RPC terms when it fails."""
    Authenticator(state).verify_acs3(request)
