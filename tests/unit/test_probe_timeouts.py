"""Live probes connect within the connect timeout and wait for answers within the read
timeout, and the HTTP probe goes where `CERTPILOT_EDGE_HTTP` says."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

import pytest

from certpilot.core import settings
from certpilot.probe.tls import Probes, probe_http, probe_https

T = TypeVar("T")
# Connecting to 127.0.0.1 is immediate: a probe still running after this long is waiting
# with the connect timeout (LONG) where the read timeout (SHORT) should apply.
LONG = 120.0
SHORT = 0.2
HANG_GUARD = 30.0


@pytest.fixture
def silent_server() -> Iterator[str]:
    """`host:port` of a socket that accepts connections (the kernel completes them from
    the backlog) and never sends a byte."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as server:
        yield f"127.0.0.1:{server.getsockname()[1]}"


def finishes(call: Callable[[], T]) -> T:
    """`call()`'s result (or its exception); fails the test instead of hanging when the
    call is still waiting after HANG_GUARD seconds."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(call)
    try:
        done, _ = wait([future], timeout=HANG_GUARD)
        if not done:
            pytest.fail("the probe is still waiting: the read timeout was not applied")
        return future.result()
    finally:
        pool.shutdown(wait=False)


def test_a_tls_probe_gives_up_after_the_read_timeout_not_the_connect_timeout(
    silent_server: str,
) -> None:
    # given an edge that accepts and never answers the ClientHello
    # when probed with a long connect and a short read timeout
    served = finishes(
        lambda: probe_https("www.example.com", edge=silent_server, timeout=LONG, read_timeout=SHORT)
    )
    # then the probe reports a timeout, with nothing served
    assert served.fingerprint is None and not served.ok
    assert served.error == "timed out"


def test_an_http_probe_gives_up_after_the_read_timeout(silent_server: str) -> None:
    # given an edge that accepts and never answers the GET
    # when probed with a long connect and a short read timeout, then it raises a timeout
    with pytest.raises(TimeoutError):
        finishes(
            lambda: probe_http(
                "www.example.com", edge=silent_server, timeout=LONG, read_timeout=SHORT
            )
        )


def test_probes_from_settings_take_both_timeouts_from_the_environment(
    silent_server: str,
) -> None:
    # given CERTPILOT_CONNECT_TIMEOUT long, CERTPILOT_READ_TIMEOUT short, both edges silent
    config = settings.Settings.from_env(
        {
            settings.EDGE_HTTPS: silent_server,
            settings.EDGE_HTTP: silent_server,
            settings.CONNECT_TIMEOUT: str(LONG),
            settings.READ_TIMEOUT: str(SHORT),
        }
    )
    probes = Probes.from_settings(config)
    assert (probes.connect_timeout, probes.read_timeout) == (LONG, SHORT)
    # when both probes run, then both give up at the read timeout
    assert finishes(lambda: probes.https("www.example.com")).error == "timed out"
    with pytest.raises(TimeoutError):
        finishes(lambda: probes.http("www.example.com"))


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(204)
        self.send_header("X-Seen-Host", self.headers["Host"])
        self.send_header("X-Seen-Path", self.path)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_the_http_probe_connects_where_certpilot_edge_http_says() -> None:
    # given an HTTP edge on a local port, named by CERTPILOT_EDGE_HTTP
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        config = settings.Settings.from_env(
            {settings.EDGE_HTTP: f"127.0.0.1:{httpd.server_address[1]}"}
        )
        # when a domain is probed over HTTP
        answer = Probes.from_settings(config).http("static.example.com", "/logo.png")
    finally:
        httpd.shutdown()
        httpd.server_close()
    # then the request reached that edge, with the domain as Host
    assert answer.status == 204
    assert answer.headers["x-seen-host"] == "static.example.com"
    assert answer.headers["x-seen-path"] == "/logo.png"
