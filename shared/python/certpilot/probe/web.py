"""Live HTTPS requests from outside: what a visitor's browser gets over HTTPS.

`probe.tls.probe_http` asks a domain over plain HTTP; this asks it over HTTPS (a
verified handshake: the trust store, the domain's name), without following redirects,
so that enforce-https can check that HTTPS still answers and carries
`Strict-Transport-Security`.
"""

from __future__ import annotations

import functools
import http.client
import socket
import ssl

from certpilot.probe.tls import DEFAULT_TIMEOUT, HttpResponse, file_version, parse_hostport


# One context per CA bundle (loading one costs about a millisecond of CPU; a sweep asks
# thousands of domains), loaded again when the file changes (see `tls.file_version`).
@functools.lru_cache(maxsize=8)
def _context(ca_bundle: str, mtime_ns: int, size: int) -> ssl.SSLContext:
    del mtime_ns, size  # the cache key only
    return ssl.create_default_context(cafile=ca_bundle)


def fetch_https(
    domain: str,
    *,
    edge: str | None = None,
    path: str = "/",
    ca_bundle: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> HttpResponse:
    """GET `https://domain{path}` (via `edge`, `host:port`, when given; SNI and Host stay
    the domain), verifying the chain against `ca_bundle` (else the Mozilla roots) and
    the name. Redirects are not followed.

    Raises:
        OSError: nothing answers, not in time, or the handshake fails
            (`ssl.SSLError`, `ssl.SSLCertVerificationError`).
    """
    if not ca_bundle:
        import certifi

        ca_bundle = certifi.where()
    context = _context(ca_bundle, *file_version(ca_bundle))
    host, port = parse_hostport(edge, 443) if edge else (domain, 443)
    connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        # SNI and the name check follow the domain, not the edge address connected to.
        connection.sock = context.wrap_socket(
            socket.create_connection((host, port), timeout=timeout), server_hostname=domain
        )
        connection.request(
            "GET",
            path,
            # One request a connection: saying so lets the server answer and close at once.
            headers={
                "Host": domain,
                "User-Agent": "certpilot",
                "Accept-Encoding": "gzip",
                "Connection": "close",
            },
        )
        response = connection.getresponse()
        response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return HttpResponse(response.status, headers.get("location"), headers)
    finally:
        connection.close()
