"""The live edge: what a visitor's browser reaches for an OSS custom domain or a CDN domain.

Two listeners. HTTPS picks the certificate by SNI from the state as the edge sees it
(`Propagating.at(now)`), serves exactly the configured chain, and fails the handshake
for a name it has no certificate for. HTTP (plain) answers by Host header. Both serve
objects from the bucket behind the domain: an OSS custom domain reads its bucket and
evaluates the bucket policy for the visitor's scheme; a CDN domain redirects or adds
HSTS per its configs and fetches its OSS origin over its configured origin protocol,
evaluating the bucket policy for that scheme. See emulator/README.md, "Edge".
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import os
import re
import socketserver
import ssl
import tempfile
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from emulator.cdn.domains import serves
from emulator.core import Response
from emulator.policy import DENY, PolicyError, PolicyRequest, evaluate
from emulator.state import BoundCertificate, Bucket, CdnConfig, CdnDomain, Cname, State

if TYPE_CHECKING:
    from emulator.edge_nodes import Fleet
    from emulator.pki import TestPki

DEFAULT_DOCUMENT = "index.html"
DEFAULT_HSTS_MAX_AGE = "5184000"
SOCKET_TIMEOUT = 30.0
MAX_CACHED_CONTEXTS = 2048
_BUCKET_DOMAIN = re.compile(r"^([a-z0-9][a-z0-9-]{1,61}[a-z0-9])\.oss-([a-z0-9-]+)\.aliyuncs\.com$")
_GZIP_TYPES = ("text/", "application/json", "application/javascript", "application/xml")


@dataclass(frozen=True)
class Route:
    """Where the edge sends a host at one instant."""

    kind: str  # "cdn" | "oss"
    host: str
    bucket: Bucket | None  # OSS: the bound bucket; CDN: the OSS origin bucket if found
    origin_error: Response | None  # CDN: the origin's answer when it has no such bucket
    configs: tuple[CdnConfig, ...] = ()

    def config(self, function_name: str) -> CdnConfig | None:
        for item in self.configs:
            if item.function_name == function_name:
                return item
        return None

    def enabled(self, function_name: str, flag: str = "enable") -> CdnConfig | None:
        item = self.config(function_name)
        return item if item is not None and item.arg(flag) == "on" else None


class Edge:
    """An HTTPS and an HTTP listener in front of the emulated buckets and CDN domains.

    `pki`, when given, lets the edge serve bucket domains
    (`<bucket>.oss-<region>.aliyuncs.com`) with a certificate "Alibaba manages".
    """

    def __init__(
        self,
        state: State,
        host: str = "127.0.0.1",
        https_port: int = 0,
        http_port: int = 0,
        *,
        pki: TestPki | None = None,
    ) -> None:
        self.state = state
        self.host = host
        self.pki = pki
        self._contexts: dict[str, ssl.SSLContext | None] = {}
        self._leaves: dict[str, str | None] = {}
        self._managed: dict[str, tuple[str, str]] = {}
        self._cache_lock = threading.Lock()
        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        base.sni_callback = self._on_sni
        self._https = _EdgeServer((host, https_port), self, "https", base)
        self._http = _EdgeServer((host, http_port), self, "http", None)
        self.https_port = int(self._https.server_address[1])
        self.http_port = int(self._http.server_address[1])
        self._started = False
        self._threads = [
            threading.Thread(
                target=s.serve_forever,
                kwargs={"poll_interval": 0.05},  # quick shutdown, so a quick emulator exit
                name=f"emulator-edge-{s.scheme}",
                daemon=True,
            )
            for s in (self._https, self._http)
        ]

    def start(self) -> Edge:
        """Start serving in background threads; returns self."""
        for thread in self._threads:
            thread.start()
        self._started = True
        return self

    def close(self) -> None:
        """Stop both listeners (also fine when never started or already closed)."""
        for server in (self._https, self._http):
            if self._started:
                server.shutdown()  # blocks until serve_forever returns: only if it runs
            server.server_close()
        self._started = False

    # -- routing ------------------------------------------------------------------

    def _fleet(self) -> Fleet:
        from emulator.admin import platform_of

        return platform_of(self.state).fleet

    def pick_node(self, host: str) -> int:
        """The CDN edge node that answers the next connection to `host`."""
        return self._fleet().pick(host)

    def route(self, host: str, now: float, node: int | None = None) -> Route | None:
        """The route of `host` as the edge sees it at `now` (a CDN domain: as node `node`
        of the fleet serves it; None: as every node does), or None if nothing serves it."""
        nodes = self._fleet().nodes
        with self.state.lock:
            cdn = self._cdn_for(host)
            if cdn is not None:
                if not serves(cdn, now, node=node, nodes=nodes):
                    return None
                bucket, error = self._origin(cdn.sources, host)
                configs = cdn.configs.at(now, node=node, nodes=nodes)
                return Route("cdn", host, bucket, error, configs)
            cname = self._cname_for(host)
            if cname is not None and cname.status == "Enabled":
                return Route("oss", host, self.state.buckets.get(cname.bucket), None)
            bucket = self._bucket_for_domain(host)
            if bucket is not None:
                return Route("oss", host, bucket, None)
        return None

    def _cdn_for(self, host: str) -> CdnDomain | None:
        """The CDN domain `host` is served by: its own, else (when no OSS binding of the
        exact name exists) a wildcard CDN domain `*.parent` / `.parent`."""
        cdn = self.state.cdn_domains.get(host)
        if cdn is not None or self.state.find_cname(host) is not None:
            return cdn
        parent = host.partition(".")[2]
        if not parent:
            return None
        return self.state.cdn_domains.get(f"*.{parent}") or self.state.cdn_domains.get(f".{parent}")

    def _cname_for(self, host: str) -> Cname | None:
        """The OSS binding `host` is served by: its own, else a wildcard binding
        `*.parent` (one label, as OSS wildcard custom domains match)."""
        cname = self.state.find_cname(host)
        if cname is not None:
            return cname
        parent = host.partition(".")[2]
        return self.state.find_cname(f"*.{parent}") if parent else None

    def _bucket_for_domain(self, host: str) -> Bucket | None:
        match = _BUCKET_DOMAIN.match(host)
        if not match:
            return None
        bucket = self.state.buckets.get(match.group(1))
        return bucket if bucket is not None and bucket.region == match.group(2) else None

    def _origin(
        self, sources: list[dict[str, Any]], host: str
    ) -> tuple[Bucket | None, Response | None]:
        ordered = sorted(sources, key=lambda s: _int(s.get("priority"), 20))
        for source in ordered:
            if source.get("type") != "oss":
                continue
            match = _BUCKET_DOMAIN.match(str(source.get("content", "")).lower())
            bucket = self.state.buckets.get(match.group(1)) if match else None
            if bucket is not None and match and bucket.region == match.group(2):
                return bucket, None
            return None, oss_error(
                404, "NoSuchBucket", "The specified bucket does not exist.", "0015-00000101", host
            )
        # Chosen: only OSS origins are emulated; any other origin answers 502.
        return None, Response(502, b"origin not emulated\n", {"Content-Type": "text/plain"})

    def certificate_for(
        self, name: str, now: float, node: int | None = None
    ) -> tuple[str, str] | None:
        """(chain PEM, key PEM) the edge serves for SNI `name` at `now` (a CDN domain: on
        node `node` of the fleet; None: what every node serves once settled), or None."""
        nodes = self._fleet().nodes
        with self.state.lock:
            cdn = self._cdn_for(name)
            if cdn is not None:
                # Traffic goes to CDN: a certificate hosted on OSS does not count.
                online = serves(cdn, now, node=node, nodes=nodes)
                return _pair(cdn.ssl.at(now, node=node, nodes=nodes) if online else None)
            cname = self._cname_for(name)
            if cname is not None:
                return _pair(cname.certificate.at(now)) if cname.status == "Enabled" else None
            bucket = self._bucket_for_domain(name)
        if bucket is not None and self.pki is not None:
            return self._managed_certificate(bucket.region)
        return None

    def _managed_certificate(self, region: str) -> tuple[str, str]:
        with self._cache_lock:
            pair = self._managed.get(region)
            if pair is None and self.pki is not None:
                pair = self.pki.issue([f"*.oss-{region}.aliyuncs.com"], ca="one", days=365)
                self._managed[region] = pair
        assert pair is not None
        return pair

    # -- TLS ----------------------------------------------------------------------

    def _on_sni(self, sock: Any, server_name: str | None, _base: ssl.SSLContext) -> int | None:
        if not server_name:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        name = server_name.lower().rstrip(".")
        now = self.state.now()
        try:
            node = self.pick_node(name)
            sock.edge_node = node  # the node answers the whole connection
            pair = self.certificate_for(name, now, node)
            context = self._context(*pair) if pair is not None else None
            self._log_handshake(name, node, pair, context, now)
        except Exception:  # a broken state must fail one handshake, not the listener
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        if pair is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        if context is None:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        sock.context = context
        return None

    def _log_handshake(
        self,
        name: str,
        node: int,
        pair: tuple[str, str] | None,
        context: ssl.SSLContext | None,
        now: float,
    ) -> None:
        """Log a handshake of a CDN domain with the leaf served and whether every node
        had the domain's latest certificate write (`emulator.edge_nodes`)."""
        with self.state.lock:
            cdn = self._cdn_for(name)
            settled = cdn is not None and cdn.ssl.settled(now) and cdn.status.settled(now)
        if cdn is None:
            return
        served = self._fingerprint(*pair) if pair is not None and context is not None else None
        self._fleet().record(name, node, served, settled=settled, now=now)

    def _fingerprint(self, chain_pem: str, key_pem: str) -> str | None:
        """SHA-256 (upper hex) of the leaf the edge sends for this chain and key."""
        digest = hashlib.sha256((chain_pem + "\0" + key_pem).encode()).hexdigest()
        with self._cache_lock:
            if digest in self._leaves:
                return self._leaves[digest]
        try:
            leaf = x509.load_pem_x509_certificates(_leaf_first(chain_pem, key_pem).encode())[0]
            value: str | None = (
                hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
            )
        except ValueError:
            value = None
        with self._cache_lock:
            if len(self._leaves) >= MAX_CACHED_CONTEXTS:
                self._leaves.clear()
            self._leaves[digest] = value
        return value

    def _context(self, chain_pem: str, key_pem: str) -> ssl.SSLContext | None:
        digest = hashlib.sha256((chain_pem + "\0" + key_pem).encode()).hexdigest()
        with self._cache_lock:
            if digest in self._contexts:
                return self._contexts[digest]
        context = _load_context(chain_pem, key_pem)
        with self._cache_lock:
            if len(self._contexts) >= MAX_CACHED_CONTEXTS:
                self._contexts.clear()  # rare (benchmarks); rebuilding one costs ~1 ms
            self._contexts[digest] = context
        return context

    # -- HTTP ---------------------------------------------------------------------

    def handle(
        self,
        scheme: str,
        method: str,
        target: str,
        headers: dict[str, str],
        client_ip: str,
        node: int | None = None,
    ) -> tuple[Response, str]:
        """Answer one request; returns the response and the Server header to send.

        `node`: the CDN edge node of the connection (its TLS handshake picked it); None
        picks one for this request (plain HTTP)."""
        host = headers.get("host", "").lower().rstrip(".")
        host = re.sub(r":\d+$", "", host)
        if not host:
            return oss_error(400, "InvalidArgument", "Missing Host header.", "", ""), "AliyunOSS"
        now = self.state.now()
        route = self.route(host, now, self.pick_node(host) if node is None else node)
        if route is None:
            # Chosen: a host nothing serves gets what OSS answers for an unknown bucket.
            return oss_error(
                404, "NoSuchBucket", "The specified bucket does not exist.", "0015-00000101", host
            ), "AliyunOSS"
        if method not in ("GET", "HEAD"):
            response = oss_error(
                405, "MethodNotAllowed", "The specified method is not allowed.", "", host
            )
            return response, "AliyunOSS" if route.kind == "oss" else "Tengine"
        split = urlsplit(target)
        key = unquote(split.path).lstrip("/")
        if key == "" or key.endswith("/"):
            key += DEFAULT_DOCUMENT  # chosen: the default document of static website hosting
        if route.kind == "oss":
            return self._from_bucket(route.bucket, key, scheme, client_ip, now, host), "AliyunOSS"
        return self._from_cdn(route, key, scheme, split, headers), "Tengine"

    def _from_cdn(
        self,
        route: Route,
        key: str,
        scheme: str,
        split: Any,
        headers: dict[str, str],
    ) -> Response:
        now = self.state.now()
        location_tail = (split.path or "/") + (f"?{split.query}" if split.query else "")
        force_https = route.enabled("https_force")
        force_http = route.enabled("http_force")
        if scheme == "http" and force_https is not None:
            status = 308 if force_https.arg("https_rewrite") == "308" else 301
            response = Response(status, b"", {"Location": f"https://{route.host}{location_tail}"})
        elif scheme == "https" and force_http is not None:
            status = 308 if force_http.arg("http_rewrite") == "308" else 301
            response = Response(status, b"", {"Location": f"http://{route.host}{location_tail}"})
        elif route.bucket is None:
            assert route.origin_error is not None
            response = Response(
                route.origin_error.status,
                route.origin_error.body,
                dict(route.origin_error.headers),
            )
        else:
            origin_scheme = self._origin_scheme(route, scheme)
            response = self._from_bucket(
                route.bucket, key, origin_scheme, self.host, now, route.bucket.bucket_domain
            )
            if route.enabled("gzip") is not None:
                _gzip(response, headers.get("accept-encoding", ""))
        response.headers["Via"] = "cache1.l2emulator[0,0], cache1.emulator[0,0]"
        response.headers["X-Cache"] = "MISS TCP_MISS dirn:-2:-2"
        hsts = route.enabled("HSTS", "enabled")
        if scheme == "https" and hsts is not None:
            value = f"max-age={hsts.arg('https_hsts_max_age', DEFAULT_HSTS_MAX_AGE)}"
            if hsts.arg("https_hsts_include_subdomains") == "on":
                value += "; includeSubDomains"
            response.headers["Strict-Transport-Security"] = value
        return response

    @staticmethod
    def _origin_scheme(route: Route, client_scheme: str) -> str:
        """How CDN fetches its origin: `forward_scheme` if on, else plain HTTP."""
        forward = route.enabled("forward_scheme")
        if forward is None:
            return "http"
        chosen = forward.arg("scheme_origin", "follow")
        return client_scheme if chosen not in ("http", "https") else chosen

    def _from_bucket(
        self,
        bucket: Bucket | None,
        key: str,
        scheme: str,
        client_ip: str,
        now: float,
        host: str,
    ) -> Response:
        if bucket is None:
            return oss_error(
                404, "NoSuchBucket", "The specified bucket does not exist.", "0015-00000101", host
            )
        request = PolicyRequest(
            action="oss:GetObject",
            resource=f"acs:oss:{bucket.region}:{self.state.account_id}:{bucket.name}/{key}",
            context={
                "acs:SecureTransport": "true" if scheme == "https" else "false",
                "acs:SourceIp": client_ip,
                "acs:CurrentTime": _iso(now),
            },
        )
        try:
            decision = evaluate(bucket.policy.at(now), request)
        except PolicyError:
            decision = "none"  # chosen: a stored policy that does not parse denies nothing
        if decision == DENY:
            return oss_error(
                403, "AccessDenied", "Access denied by bucket policy.", "0003-00000101", host
            )
        stored = bucket.objects.get(key)
        if stored is None:
            return oss_error(
                404, "NoSuchKey", "The specified key does not exist.", "0026-00000001", host
            )
        etag = stored.etag if stored.etag.startswith('"') else f'"{stored.etag}"'
        return Response(
            200,
            stored.body,
            {
                "Content-Type": stored.content_type,
                "ETag": etag,
                "Last-Modified": email.utils.formatdate(stored.last_modified, usegmt=True),
                "Accept-Ranges": "bytes",
                "x-oss-request-id": _request_id(),
            },
        )


def oss_error(status: int, code: str, message: str, ec: str, host: str) -> Response:
    """An OSS XML error response."""
    request_id = _request_id()
    ec = ec or "0000-00000000"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>{escape(host)}</HostId>"
        f"<EC>{ec}</EC></Error>"
    )
    headers = {"Content-Type": "application/xml", "x-oss-request-id": request_id, "x-oss-ec": ec}
    return Response(status, body.encode("utf-8"), headers)


def _request_id() -> str:
    return uuid.uuid4().hex[:24].upper()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _pair(bound: BoundCertificate | None) -> tuple[str, str] | None:
    return None if bound is None else (bound.cert_pem, bound.key_pem)


def _gzip(response: Response, accept_encoding: str) -> None:
    content_type = response.headers.get("Content-Type", "")
    if response.status != 200 or "gzip" not in accept_encoding.lower():
        return
    if not content_type.startswith(_GZIP_TYPES):
        return
    response.body = gzip.compress(response.body, mtime=0)
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"


def _leaf_first(chain_pem: str, key_pem: str) -> str:
    """The chain with the certificate of `key_pem` moved to the front.

    TLS sends the end-entity certificate first whatever order it was stored in, so a
    chain stored intermediate-first is served leaf-first; the rest keeps its order.
    """
    try:
        certs = x509.load_pem_x509_certificates(chain_pem.encode())
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except ValueError:
        return chain_pem
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for index, cert in enumerate(certs):
        if (
            cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            == spki
        ):
            ordered = [cert, *certs[:index], *certs[index + 1 :]]
            return "".join(
                c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in ordered
            )
    return chain_pem


def _load_context(chain_pem: str, key_pem: str) -> ssl.SSLContext | None:
    """A server context serving exactly `chain_pem`, or None if it cannot be loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # Serve whatever was configured (RSA-1024, SHA-1): judging it is the client's job.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.set_alpn_protocols(["http/1.1"])
    with tempfile.TemporaryDirectory(prefix="emulator-edge-") as tmp:
        chain_path = Path(tmp) / "chain.pem"
        key_path = Path(tmp) / "key.pem"
        chain_path.write_text(_leaf_first(chain_pem, key_pem))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key_pem)
        try:
            context.load_cert_chain(str(chain_path), str(key_path))
        except (ssl.SSLError, ValueError, OSError):
            return None
    return context


class _EdgeServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        edge: Edge,
        scheme: str,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.edge = edge
        self.scheme = scheme
        self.tls = tls
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread.
        request.settimeout(SOCKET_TIMEOUT)
        if self.tls is None:
            _Handler(request, client_address, self)
            return
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            _Handler(conn, client_address, self)
        finally:
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a visitor hanging up mid-request is not worth a traceback


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _EdgeServer
    _server_header = "AliyunOSS"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def version_string(self) -> str:
        return self._server_header

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        headers = {k.lower(): v for k, v in self.headers.items()}
        response, self._server_header = self.server.edge.handle(
            self.server.scheme,
            self.command,
            self.path,
            headers,
            str(self.client_address[0]),
            getattr(self.connection, "edge_node", None),
        )
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = _serve
