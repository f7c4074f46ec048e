"""An oracle for what a TLS edge serves that is not certpilot's own probe.

End-to-end tests judge the edge with Python's `ssl` module directly (OpenSSL's
verifier, the way a client would see it), so that a bug in `certpilot.probe` cannot
pass its own test. Nothing here imports certpilot.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class EdgeView:
    """One handshake: the served leaf and whether a verifying client accepts it."""

    sha256: str  # of the served leaf's DER, upper hex without colons
    verified: bool  # chain and name verified against the CA bundle with SNI
    verify_code: int | None = None  # OpenSSL's X509_V_ERR_* when not verified
    verify_message: str | None = None


def _address(edge: str) -> tuple[str, int]:
    host, _, port = edge.rpartition(":")
    return host.strip("[]"), int(port)


def _leaf_der(context: ssl.SSLContext, edge: str, server_name: str, timeout: float) -> bytes:
    with (
        socket.create_connection(_address(edge), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the edge sent no certificate")
    return der


def handshake(edge: str, server_name: str, ca_bundle: str, *, timeout: float = 3.0) -> EdgeView:
    """Connect to `edge` (`host:port`) with SNI `server_name`, verify against `ca_bundle`.

    A verification failure is an answer (`verified` False, with OpenSSL's code): the
    leaf is then read in a second, unverified handshake. Raises OSError / ssl.SSLError
    when no handshake completes at all.
    """
    verifying = ssl.create_default_context(cafile=ca_bundle)
    try:
        der = _leaf_der(verifying, edge, server_name, timeout)
    except ssl.SSLCertVerificationError as err:
        lenient = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        lenient.check_hostname = False
        lenient.verify_mode = ssl.CERT_NONE
        der = _leaf_der(lenient, edge, server_name, timeout)
        return EdgeView(
            sha256=hashlib.sha256(der).hexdigest().upper(),
            verified=False,
            verify_code=err.verify_code,
            verify_message=err.verify_message,
        )
    return EdgeView(sha256=hashlib.sha256(der).hexdigest().upper(), verified=True)
