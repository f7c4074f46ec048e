"""`certpilot.core.net`: which hosts are loopback, and that they bypass the proxies."""

from __future__ import annotations

import urllib.request

import pytest

from certpilot.core.net import is_loopback, opener_for


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LocalHost.", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_loopback_opener_uses_no_proxy_and_keeps_the_extra_handlers() -> None:
    class Marker(urllib.request.BaseHandler):
        def http_request(self, request: urllib.request.Request) -> urllib.request.Request:
            return request

    handlers = opener_for("127.0.0.1", Marker).handlers  # type: ignore[attr-defined]
    # An empty ProxyHandler replaces the environment's and registers nothing.
    assert not any(isinstance(h, urllib.request.ProxyHandler) for h in handlers)
    assert any(isinstance(h, Marker) for h in handlers)
