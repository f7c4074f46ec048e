"""Reaching an HTTP(S) URL from the layer: loopback directly, the rest through the proxies.

A loopback host (`localhost`, `127.0.0.0/8`, `::1`) is the emulator or a local responder:
it is reached directly, never through a proxy the environment names. Any other host goes
through the usual proxy variables (`NO_PROXY` honoured by urllib). Standard library only.
"""

from __future__ import annotations

import ipaddress
import urllib.request


def is_loopback(host: str) -> bool:
    """True for `localhost` (any case, trailing dot allowed) and loopback IP addresses
    (an IPv6 address may come in brackets)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def opener_for(
    host: str, *handlers: urllib.request.BaseHandler | type[urllib.request.BaseHandler]
) -> urllib.request.OpenerDirector:
    """An opener for requests to `host`, with `handlers` added: no proxy for a loopback
    host, the environment's proxies for any other."""
    if is_loopback(host):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}), *handlers)
    return urllib.request.build_opener(*handlers)
