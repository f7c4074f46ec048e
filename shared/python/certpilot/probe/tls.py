"""Live probes of a domain from outside: a real TLS handshake with SNI, a plain HTTP GET.

The connect address is the edge (`CERTPILOT_EDGE_HTTPS` / `CERTPILOT_EDGE_HTTP`,
`host:port`) when set, else the domain's own edge host on 443 when inventory knows
one (`edge_address`: a CDN domain's CNAME target, an OSS domain's bucket endpoint),
else the domain itself on 443 / 80; SNI and Host always stay the domain (a wildcard
domain's probe name, `probe_name`). Chains are verified against `CERTPILOT_CA_BUNDLE`
when set, else certifi. `timeout` bounds connecting, `read_timeout` (default: the same)
each wait for the server's bytes (`CERTPILOT_CONNECT_TIMEOUT` / `CERTPILOT_READ_TIMEOUT`).
`Probes.from_settings` gives both probes their settings at once.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from certpilot.core.findings import Code
from certpilot.core.log import with_context
from certpilot.core.names import covers, wildcard_level_off
from certpilot.core.settings import Settings

DEFAULT_TIMEOUT = 5.0
_FIRST_DELAY = 0.1
# Probing rounds start at most this far apart: how late a verification may notice that
# the edge caught up. A round of many domains takes its own time, which spaces them too.
MAX_ROUND_INTERVAL = 1.0
VERIFY_WORKERS = 16  # handshakes at once while verifying (not cloud API calls: no QPS)
# A probing round ends early after a group of at least this many watches, none served.
MIN_SKIP_GROUP = 4
OUT_OF_TIME = "out of time: not probed before the run's deadline"


@dataclass(frozen=True)
class ServedCert:
    """What the edge serves for a domain. On a failed handshake only `error` is set."""

    domain: str
    fingerprint: str | None = None  # SHA-256 of the leaf, upper hex, no colons
    not_after: datetime | None = None
    not_before: datetime | None = None
    issuer: str | None = None
    subject: str | None = None
    sans: tuple[str, ...] = ()
    chain_ok: bool = False  # the chain verifies to the trust store
    name_ok: bool = False  # the leaf covers the domain (RFC 6125)
    error: str | None = None  # handshake or verification error
    verify_code: int | None = None  # OpenSSL X509_V_ERR_* when the chain did not verify
    fingerprint_sha1: str | None = None  # SHA-1 of the leaf (what OSS ListCname reports)
    chain: tuple[bytes, ...] = ()  # DER as sent, leaf first (empty when not known)

    @property
    def ok(self) -> bool:
        """A browser would accept it: verified chain, right name, inside its dates."""
        return self.fingerprint is not None and self.chain_ok and self.name_ok

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "domain": self.domain,
            "fingerprint": self.fingerprint,
            "notAfter": self.not_after.isoformat() if self.not_after else None,
            "issuer": self.issuer,
            "chainOk": self.chain_ok,
            "nameOk": self.name_ok,
            "error": self.error,
        }


class HttpResponse(NamedTuple):
    """The answer to a plain HTTP GET (redirects are not followed)."""

    status: int
    location: str | None
    headers: dict[str, str]


def parse_hostport(value: str, default_port: int) -> tuple[str, int]:
    """Split `host:port` (`[v6]:port` too); raises ValueError for a bad port."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    number = int(port) if port else default_port
    if not 0 < number < 65536:
        raise ValueError(f"port out of range in {value!r}")
    return host, number


def probe_name(domain: str) -> str:
    """The name to verify `domain` with (SNI and Host): a wildcard domain is probed one
    label below, `*.example.com` as `certpilot-verify.example.com`."""
    return "certpilot-verify" + domain[1:] if domain.startswith("*.") else domain


def edge_address(edge_host: str | None, override: str | None) -> str | None:
    """The `host:port` a domain's HTTPS probe connects to, for `probe_https(edge=...)`.

    `override` (`CERTPILOT_EDGE_HTTPS`) wins; else the domain's `edge_host` (see
    `model.DomainRecord.edge_host`) on 443; None (no edge host known) connects to the
    probed name itself on 443. Public DNS of the domain is thus used only as a last
    resort: a wildcard's probe name may not resolve, and a domain whose DNS is not
    switched yet would be answered by another server.
    """
    if override:
        return override
    return f"{edge_host}:443" if edge_host else None


def _context(ca_bundle: str | None, *, verify: bool) -> ssl.SSLContext:
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_bundle is None:
        import certifi

        ca_bundle = certifi.where()
    return _verifying_context(ca_bundle, *file_version(ca_bundle))


def file_version(path: str) -> tuple[int, int]:
    """(mtime ns, size) of `path`, (0, 0) when it cannot be read: part of a context
    cache's key, so that a CA bundle rewritten in place is loaded again."""
    try:
        stat = Path(path).stat()
    except OSError:
        return 0, 0
    return stat.st_mtime_ns, stat.st_size


# Loading a CA bundle costs about a millisecond of CPU: a sweep of thousands of domains
# shares one context per bundle (an SSLContext may wrap sockets in many threads at once).
@functools.lru_cache(maxsize=8)
def _verifying_context(ca_bundle: str, mtime_ns: int, size: int) -> ssl.SSLContext:
    del mtime_ns, size  # the cache key only
    context = ssl.create_default_context(cafile=ca_bundle)
    # Judge like browsers whatever the system's OpenSSL default: level 2 rejects RSA keys
    # under 2048 bits and SHA-1 signatures.
    context.set_ciphers("DEFAULT:@SECLEVEL=2")
    # The name is judged with certpilot.core.names on the leaf, so one handshake tells both.
    context.check_hostname = False
    return context


def _handshake(
    address: tuple[str, int],
    domain: str,
    context: ssl.SSLContext,
    timeout: float,
    read_timeout: float | None = None,
) -> tuple[bytes, tuple[bytes, ...]]:
    """(leaf DER, the chain as sent in DER, leaf first; () when the ssl module cannot tell)."""
    with socket.create_connection(address, timeout=timeout) as raw:
        raw.settimeout(timeout if read_timeout is None else read_timeout)
        with context.wrap_socket(raw, server_hostname=domain) as tls:
            der = tls.getpeercert(binary_form=True)
            chain = _sent_chain(tls)
    if not der:
        raise ssl.SSLError("the server sent no certificate")
    return der, chain


def _sent_chain(tls: ssl.SSLSocket) -> tuple[bytes, ...]:
    # Python 3.13 has SSLSocket.get_unverified_chain(); 3.10 to 3.12 have it on the
    # underlying _ssl object only. Without either, revocation checks of what an edge
    # serves are skipped (the chain is not known), nothing else changes.
    getter = getattr(tls, "get_unverified_chain", None) or getattr(
        getattr(tls, "_sslobj", None), "get_unverified_chain", None
    )
    if getter is None:
        return ()
    import _ssl

    der_encoding = getattr(_ssl, "ENCODING_DER", 2)
    try:
        certs = getter() or []
        return tuple(c if isinstance(c, bytes) else c.public_bytes(der_encoding) for c in certs)
    except (ssl.SSLError, AttributeError, ValueError, TypeError):
        return ()


def probe_https(
    domain: str,
    *,
    edge: str | None = None,
    ca_bundle: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    read_timeout: float | None = None,
) -> ServedCert:
    """Handshake with `domain` (SNI) and describe the certificate it serves.

    `edge` is `host:port` to connect to instead of `domain:443`; `timeout` bounds the
    connection, `read_timeout` (None: `timeout`) each wait for the server. Never raises for
    network or TLS trouble, nor for a certificate that cannot be parsed (e.g. a
    duplicate extension): the result carries `error` instead.
    """
    address = parse_hostport(edge, 443) if edge else (domain, 443)
    error: str | None = None
    verify_code: int | None = None
    chain_ok = False
    try:
        der, sent = _handshake(
            address, domain, _context(ca_bundle, verify=True), timeout, read_timeout
        )
        chain_ok = True
    except ssl.SSLCertVerificationError as err:
        error = f"certificate verify failed: {err.verify_message or err.reason}"
        verify_code = err.verify_code
        try:
            der, sent = _handshake(
                address, domain, _context(None, verify=False), timeout, read_timeout
            )
        except (OSError, ssl.SSLError) as again:
            return ServedCert(domain, error=_describe_error(again))
    except (OSError, ssl.SSLError) as err:
        return ServedCert(domain, error=_describe_error(err))
    served = replace(_served(domain, der, chain_ok=chain_ok, error=error), chain=sent)
    return replace(served, verify_code=verify_code) if verify_code is not None else served


def _describe_error(err: BaseException) -> str:
    if isinstance(err, ssl.SSLError):
        return f"TLS error: {err.reason or err}"
    if isinstance(err, socket.timeout):
        return "timed out"
    return f"{type(err).__name__}: {err}"


def _served(domain: str, der: bytes, *, chain_ok: bool, error: str | None) -> ServedCert:
    leaf = _leaf(der)
    if leaf.error is not None:  # unparsable: only its fingerprints are known
        return replace(leaf, domain=domain)
    return replace(
        leaf, domain=domain, chain_ok=chain_ok, name_ok=covers(leaf.sans, domain), error=error
    )


# Many domains are served the same certificate (a wildcard): a sweep parses each once.
@functools.lru_cache(maxsize=256)
def _leaf(der: bytes) -> ServedCert:
    """What the leaf `der` says whatever the domain (`domain` empty; `error` set only
    when it cannot be parsed)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    fingerprint = hashlib.sha256(der).hexdigest().upper()
    # SHA-1 only identifies the certificate (OSS reports it); it secures nothing here.
    sha1 = hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()
    try:
        cert = x509.load_der_x509_certificate(der)
        try:
            sans = tuple(
                cert.extensions.get_extension_for_class(
                    x509.SubjectAlternativeName
                ).value.get_values_for_type(x509.DNSName)
            )
        except x509.ExtensionNotFound:
            sans = ()
        issuer = _name_attr(cert.issuer, NameOID.ORGANIZATION_NAME) or _name_attr(
            cert.issuer, NameOID.COMMON_NAME
        )
        subject = _name_attr(cert.subject, NameOID.COMMON_NAME)
        not_after, not_before = cert.not_valid_after_utc, cert.not_valid_before_utc
    except Exception as err:  # any parsing failure of what a server sent
        # A duplicate or malformed extension, an odd name: what a browser rejects too.
        return ServedCert(
            "",
            fingerprint=fingerprint,
            error=f"unparsable certificate: {type(err).__name__}",
            fingerprint_sha1=sha1,
        )
    return ServedCert(
        domain="",
        fingerprint=fingerprint,
        not_after=not_after,
        not_before=not_before,
        issuer=issuer,
        subject=subject,
        sans=sans,
        fingerprint_sha1=sha1,
    )


def _name_attr(name: object, oid: object) -> str | None:
    values = name.get_attributes_for_oid(oid)  # type: ignore[attr-defined]
    return str(values[0].value) if values else None


def probe_http(
    domain: str,
    *,
    edge: str | None = None,
    path: str = "/",
    timeout: float = DEFAULT_TIMEOUT,
    read_timeout: float | None = None,
) -> HttpResponse:
    """GET `http://domain{path}` (via `edge`, `host:port`, when given; Host stays the
    domain) without following redirects. `timeout` bounds the connection,
    `read_timeout` (None: `timeout`) each wait for the answer.

    Raises:
        OSError: nothing answers, or not in time (`TimeoutError`).
    """
    host, port = parse_hostport(edge, 80) if edge else (domain, 80)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.connect()
        if connection.sock is not None:  # connect() sets it (or raises)
            connection.sock.settimeout(timeout if read_timeout is None else read_timeout)
        # One request a connection: saying so lets the server answer and close at once.
        connection.request(
            "GET",
            path,
            headers={"Host": domain, "User-Agent": "certpilot", "Connection": "close"},
        )
        response = connection.getresponse()
        response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return HttpResponse(response.status, headers.get("location"), headers)
    finally:
        connection.close()


@dataclass(frozen=True)
class Probes:
    """Live probes configured from the settings: where they connect
    (`CERTPILOT_EDGE_HTTPS` / `CERTPILOT_EDGE_HTTP`), the trust store
    (`CERTPILOT_CA_BUNDLE`) and their connect and read timeouts."""

    edge_https: str | None = None
    edge_http: str | None = None
    ca_bundle: str | None = None
    connect_timeout: float = DEFAULT_TIMEOUT
    read_timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_settings(cls, settings: Settings) -> Probes:
        """The probes `settings` describe."""
        return cls(
            edge_https=settings.edge_https,
            edge_http=settings.edge_http,
            ca_bundle=settings.ca_bundle,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )

    def https(self, domain: str, *, edge_host: str | None = None) -> ServedCert:
        """`probe_https` at `edge_address(edge_host, edge_https)` (see there)."""
        return probe_https(
            domain,
            edge=edge_address(edge_host, self.edge_https),
            ca_bundle=self.ca_bundle,
            timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )

    def http(self, domain: str, path: str = "/") -> HttpResponse:
        """`probe_http` at `CERTPILOT_EDGE_HTTP` when set, else the domain on 80.

        Raises:
            OSError: nothing answers, or not in time.
        """
        return probe_http(
            domain,
            edge=self.edge_http,
            path=path,
            timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )


# OpenSSL X509_V_ERR_* codes (stable across OpenSSL 1.1 and 3) and what they mean here.
_VERIFY_CODES = {
    2: Code.CHAIN_INCOMPLETE,  # unable to get issuer certificate
    9: Code.CERT_NOT_YET_VALID,
    10: Code.CERT_EXPIRED,
    18: Code.UNTRUSTED_ROOT,  # self-signed leaf
    19: Code.UNTRUSTED_ROOT,  # self-signed certificate in chain
    20: Code.CHAIN_INCOMPLETE,  # unable to get local issuer certificate
    21: Code.CHAIN_INCOMPLETE,  # unable to verify the first certificate
    23: Code.CERT_REVOKED,
    66: Code.WEAK_KEY,  # EE key too small
    67: Code.WEAK_KEY,  # CA key too small
    68: Code.WEAK_SIGNATURE,  # CA signature digest too weak
}


def served_finding_code(served: ServedCert) -> Code | None:
    """Why a browser would reject what the edge serves, as a finding code.

    None when it would accept it, when nothing was served (unknown) or when the
    verification error has no finding code. OpenSSL reports an unknown root as
    "unable to get local issuer", so UNTRUSTED_ROOT may show as CHAIN_INCOMPLETE.
    """
    if served.fingerprint is None:
        return None
    if not served.chain_ok:
        return _VERIFY_CODES.get(served.verify_code or 0)
    if not served.name_ok:
        if wildcard_level_off(served.sans, served.domain):
            return Code.WILDCARD_LEVEL
        return Code.NAME_MISMATCH
    return None


@dataclass(frozen=True)
class Verification:
    """The outcome of waiting for a certificate to be served."""

    ok: bool
    served: ServedCert
    attempts: int  # probing rounds
    elapsed: float
    reason: str  # "" when ok
    # Consecutive handshakes that agreed when it ended (ok: at least the watch's
    # `consecutive`; else how far the last streak got).
    agreed: int = 0


def _hex(fingerprint: str) -> str:
    return fingerprint.replace(":", "").replace(" ", "").upper()


def utc_now() -> datetime:
    """The current wall-clock time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def served_problem(served: ServedCert, fingerprint: str, *, now: datetime) -> str:
    """Why `served` is not the expected certificate at `now`, or "" when it is, verified.

    Expired only after its `notAfter` (RFC 5280: the last valid instant).
    """
    if served.fingerprint is None:
        return served.error or "no certificate served"
    if served.fingerprint != _hex(fingerprint):
        return "edge serves another certificate"
    if not served.chain_ok:
        return served.error or "chain does not verify"
    if not served.name_ok:
        return "served certificate does not cover the domain"
    if served.not_after is not None and now > served.not_after:
        return "served certificate has expired"
    return ""


def restore_problem(
    served: ServedCert,
    rolled_back: str,
    *,
    previous: str | None = None,
    expect_certificate: bool = True,
) -> str:
    """Why `served` does not show that a rollback took effect, or "" when it does.

    The rolled-back certificate (SHA-256 `rolled_back`) must be gone. When the restored
    certificate's fingerprint is known (`previous`: SHA-256, or SHA-1 as OSS reports
    it) the edge must serve exactly that one; when `expect_certificate` is False (the
    domain had none) serving nothing is the expected state. The restored certificate
    itself is not judged: it may be the very one that was being replaced as broken.
    """
    if served.fingerprint is None:
        return (served.error or "no certificate served") if expect_certificate else ""
    if served.fingerprint == _hex(rolled_back):
        return "edge still serves the rolled-back certificate"
    if previous and _hex(previous) not in (served.fingerprint, served.fingerprint_sha1):
        return "edge serves neither the restored nor the rolled-back certificate"
    return ""


def certificate_problem(
    fingerprint: str, *, wall_clock: Callable[[], datetime] = utc_now
) -> Callable[[ServedCert], str]:
    """The `problem` of a watch for the certificate `fingerprint` (see `served_problem`),
    each answer's expiry judged at `wall_clock()`."""
    return lambda served: served_problem(served, fingerprint, now=wall_clock())


def rollback_problem(
    rolled_back: str, *, previous: str | None, expect_certificate: bool
) -> Callable[[ServedCert], str]:
    """The `problem` of a watch for a rollback of `rolled_back` to take effect (see
    `restore_problem`)."""
    return lambda served: restore_problem(
        served, rolled_back, previous=previous, expect_certificate=expect_certificate
    )


@dataclass(frozen=True)
class Watch:
    """One domain to watch at the edge until `problem(served)` is "" (see `poll_rounds`).

    `started` is the clock time the watch counts from (the write it verifies) and
    `deadline` the seconds it may take from then.
    """

    domain: str  # the name to probe (SNI)
    problem: Callable[[ServedCert], str]
    started: float
    deadline: float
    # `host:port` to connect to for this watch (see `edge_address`); None: `poll_rounds`'
    # `edge`, else the name itself on 443.
    edge: str | None = None
    # How many consecutive handshakes (new connections, one right after the other) must
    # all show no problem: an edge of many nodes may serve the old and the new state
    # side by side while a change propagates, one lucky handshake proves little.
    consecutive: int = 1


def round_intervals() -> Iterator[float]:
    """Seconds from the start of one probing round to the next: 0.1 s doubling, capped
    at `MAX_ROUND_INTERVAL` (a capped interval overshoots a propagation by at most
    that much; uncapped doubling would overshoot a 2 s one to 3.1 s)."""
    interval = _FIRST_DELAY
    while True:
        yield interval
        interval = min(interval * 2, MAX_ROUND_INTERVAL)


def poll_rounds(
    watches: Mapping[str, Watch],
    *,
    edge: str | None = None,
    ca_bundle: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    read_timeout: float | None = None,
    workers: int = VERIFY_WORKERS,
    probe: Callable[[str], ServedCert] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_result: Callable[[str, Verification], None] | None = None,
    stop_at: float | None = None,
) -> dict[str, Verification]:
    """Watch many domains at once, in rounds, until each is fine or out of time.

    Each round probes every pending watch once, concurrently (at most `workers`
    handshakes at a time, each in the caller's context so logs keep the request id).
    A watch leaves when its problem is "" on `watch.consecutive` consecutive handshakes
    (a round confirms a good answer at once with further handshakes, each a new
    connection: the edge may answer each from another node; any problem ends the
    streak, and the next round starts a new one), or when its own deadline, counted from
    its `started`, has passed; every watch is probed at least once, and the last
    problem is the reason. Rounds start `round_intervals()` apart (the next one at
    once when a round took longer), and the round that meets a pending deadline is
    not slept past. `on_result(key, verification)` is called as each watch ends.
    `stop_at` (a `clock()` time: the run's budget) ends every watch: no probe starts
    past it, even within a round (a watch never probed then ends "out of time").
    Never raises for a probe's failure: a probe that raises counts as not served.
    A watch's own `edge` is the address it is probed at; `edge` is for watches without
    one. `probe(name)` (tests) replaces the live handshake, whatever the address.
    `timeout` / `read_timeout` are each handshake's (see `probe_https`).
    """

    def live(watch: Watch) -> ServedCert:
        address = watch.edge or edge
        return probe_https(
            watch.domain,
            edge=address,
            ca_bundle=ca_bundle,
            timeout=timeout,
            read_timeout=read_timeout,
        )

    run: Callable[[Watch], ServedCert] = (
        (lambda watch: probe(watch.domain)) if probe is not None else live
    )
    pending = dict(watches)
    attempts = dict.fromkeys(pending, 0)
    results: dict[str, Verification] = {}
    intervals = round_intervals()
    size = max(1, min(workers, len(pending)))
    pool = ThreadPoolExecutor(size, thread_name_prefix="verify") if size > 1 else None
    last: dict[str, ServedCert] = {}

    def timely(key: str) -> tuple[ServedCert, bool, int]:
        """(what the edge served, whether it was probed now, how many consecutive
        handshakes agreed): none past `stop_at`."""
        watch = pending[key]
        if stop_at is not None and clock() >= stop_at:
            return last.get(key) or ServedCert(watch.domain, error=OUT_OF_TIME), False, 0
        served, agreed = _confirmed(run, watch)
        return served, True, agreed

    safe = with_context(timely)

    def probe_keys(keys: list[str]) -> list[tuple[ServedCert, bool, int]]:
        return list(pool.map(safe, keys)) if pool else [safe(k) for k in keys]

    def one_round() -> tuple[list[str], list[tuple[ServedCert, bool, int]]]:
        """Probe the pending watches in the order of their writes, a group of `size` at a
        time; a full group in which none is served ends the round early: the watches
        after it were written later and reach the edge later, so probing them now would
        only spend handshakes (and, on a busy machine, stretch the round past the moment
        the edge caught up). Watches at their deadline are probed all the same."""
        keys = sorted(pending, key=lambda k: pending[k].started)
        probed_keys: list[str] = []
        answers: list[tuple[ServedCert, bool, int]] = []
        for start in range(0, len(keys), size):
            group = keys[start : start + size]
            got = probe_keys(group)
            probed_keys += group
            answers += got
            unserved = all(
                pending[k].problem(answer[0]) for k, answer in zip(group, got, strict=True)
            )
            if size >= MIN_SKIP_GROUP and len(group) == size and unserved:
                now = clock()
                late = stop_at is not None and now >= stop_at
                due = [
                    k
                    for k in keys[start + size :]
                    if late or now - pending[k].started >= pending[k].deadline
                ]
                probed_keys += due
                answers += probe_keys(due) if due else []
                break
        return probed_keys, answers

    try:
        while pending:
            began = clock()
            keys, answers = one_round()
            now = clock()
            out_of_time = stop_at is not None and now >= stop_at
            for key, (served, probed, agreed) in zip(keys, answers, strict=True):
                watch = pending[key]
                if probed:
                    attempts[key] += 1
                    last[key] = served
                reason = watch.problem(served)
                elapsed = now - watch.started
                if reason and elapsed < watch.deadline and not out_of_time:
                    continue
                if reason and agreed:
                    reason = (
                        f"{agreed} of {watch.consecutive} consecutive handshakes agreed,"
                        f" then: {reason}"
                    )
                verification = Verification(
                    not reason, served, attempts[key], elapsed, reason, agreed=agreed
                )
                results[key] = verification
                del pending[key]
                if on_result is not None:
                    on_result(key, verification)
            if not pending:
                break
            due = min(w.started + w.deadline for w in pending.values())
            if stop_at is not None:
                due = min(due, stop_at)
            wait = min(began + next(intervals), due) - clock()
            if wait > 0:
                sleep(wait)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return results


def _confirmed(run: Callable[[Watch], ServedCert], watch: Watch) -> tuple[ServedCert, int]:
    """Probe `watch` up to `watch.consecutive` times in a row while each answer shows
    no problem; (the last answer, how many agreed). A streak that breaks returns the
    answer that broke it, whose problem says why (e.g. one node still serves the old
    certificate)."""
    served = _safe_probe(run, watch)
    if watch.problem(served):
        return served, 0
    agreed = 1
    while agreed < watch.consecutive:
        again = _safe_probe(run, watch)
        problem = watch.problem(again)
        if problem:
            return again, agreed
        served, agreed = again, agreed + 1
    return served, agreed


def _safe_probe(run: Callable[[Watch], ServedCert], watch: Watch) -> ServedCert:
    try:
        return run(watch)
    except Exception as err:  # one probe's bug must not stop the round
        return ServedCert(watch.domain, error=f"probe failed: {type(err).__name__}")
