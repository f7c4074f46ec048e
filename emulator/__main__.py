"""`python -m emulator --port N`: start the control plane, the edge and the test PKI.

Prints one JSON line on stdout when ready (see emulator/README.md, "The ready line"),
then serves until SIGTERM or SIGINT (or, with `--watch-stdin`, until stdin closes),
and exits cleanly, removing its temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from emulator.latency import parse_profile
from emulator.state import CAS_REGIONS, DEFAULT_REGION, State


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (loopback only, unless --allow-remote)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than loopback: anyone who reaches it gets the secret"
        " (GET /_emulator/info) and runs code (POST /_emulator/functions)",
    )
    parser.add_argument("--port", type=int, default=0, help="control-plane port (0: any free)")
    parser.add_argument("--https-port", type=int, default=0, help="edge HTTPS port (0: any)")
    parser.add_argument("--http-port", type=int, default=0, help="edge HTTP port (0: any)")
    parser.add_argument("--estate", type=Path, help="estate JSON file to load at start")
    parser.add_argument("--propagation-delay", type=float, default=0.3, metavar="S")
    parser.add_argument("--qps-scale", type=float, default=1.0, metavar="X")
    parser.add_argument(
        "--burst",
        type=float,
        default=1.0,
        metavar="S",
        help="flow-control bucket size, in seconds of each action's rate",
    )
    parser.add_argument(
        "--latency-profile",
        nargs="?",
        const="on",
        default="off",
        metavar="read=S,write=S",
        help="minimum seconds a cloud API call takes by class; without a value the"
        " realistic read=0.05,write=0.15 (default: off)",
    )
    parser.add_argument("--access-key-id", default="LTAI5tEmulatorKey0001")
    parser.add_argument("--access-key-secret", help="default: random per start")
    parser.add_argument("--security-token", help="require this STS token on every call")
    parser.add_argument("--account-id", default="1234567890123456")
    parser.add_argument(
        "--cas-region",
        default=CAS_REGIONS[0],
        choices=CAS_REGIONS,
        help="the account's CAS site: cn-hangzhou (China site) or ap-southeast-1"
        " (International site): CertIdentifier suffix and the CertRegion CDN accepts",
    )
    parser.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="NAME=PATH[:HANDLER]",
        help="register an FC function (repeatable)",
    )
    parser.add_argument(
        "--layer",
        action="append",
        default=[],
        metavar="DIR",
        help="directory put on every function's sys.path, like an FC layer",
    )
    parser.add_argument(
        "--watch-stdin",
        action="store_true",
        help="exit when stdin reaches end of file (a parent's lifeline)",
    )
    args = parser.parse_args(argv)
    if not (math.isfinite(args.qps_scale) and math.isfinite(args.burst)):
        parser.error("--qps-scale and --burst must be finite")
    if args.qps_scale <= 0 or args.burst <= 0:
        parser.error("--qps-scale and --burst must be positive")
    if not math.isfinite(args.propagation_delay) or args.propagation_delay < 0:
        parser.error("--propagation-delay must be a finite number of seconds >= 0")
    try:
        args.latency_profile = parse_profile(args.latency_profile)
    except ValueError as exc:
        parser.error(f"--latency-profile: {exc}")
    if not is_loopback(args.host):
        if not args.allow_remote:
            parser.error(
                f"--host {args.host} is not a loopback address: the unauthenticated admin API"
                " hands out the access key secret and runs any file as a function;"
                " add --allow-remote to listen there anyway"
            )
        print(
            f"emulator: WARNING: listening on {args.host} (--allow-remote): anyone who can"
            " reach it can read the access key secret (GET /_emulator/info) and run code"
            " on this machine (POST /_emulator/functions)",
            file=sys.stderr,
            flush=True,
        )
    return args


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or "localhost") is only reachable from this machine."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to any interface


def _optional(module: str, name: str) -> Any:
    """An attribute of another helper's module, or None while that module does not exist."""
    try:
        imported = __import__(f"emulator.{module}", fromlist=[name])
    except ModuleNotFoundError as exc:
        if exc.name != f"emulator.{module}":
            raise
        print(f"emulator: emulator.{module} is missing; running without it", file=sys.stderr)
        return None
    return getattr(imported, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until a signal; returns the exit status."""
    args = parse_args(argv)
    from emulator.admin import Defaults, Platform, function_spec_from_cli
    from emulator.server import App, ControlPlane

    state = State(
        account_id=args.account_id,
        access_key_id=args.access_key_id,
        access_key_secret=args.access_key_secret,
        security_token=args.security_token,
        propagation_delay=args.propagation_delay,
        cas_region=args.cas_region,
    )
    layers = [str(Path(p).resolve()) for p in args.layer]
    functions = []
    for value in args.function:
        spec = function_spec_from_cli(value)
        functions.append({**spec, "layers": layers})
    platform = Platform(
        state,
        Defaults(
            propagation_delay=args.propagation_delay,
            qps_scale=args.qps_scale,
            burst=args.burst,
            functions=functions,
            cas_region=args.cas_region,
            latency_profile=args.latency_profile,
        ),
    )
    workdir = Path(tempfile.mkdtemp(prefix="emulator-"))
    closers: list[Callable[[], None]] = [lambda: shutil.rmtree(workdir, ignore_errors=True)]
    try:
        for spec in functions:
            platform.register_function(spec)
        # Bound before the PKI is made: its certificates name the control plane's
        # OCSP responders and CRLs, so the port must be known first.
        control = ControlPlane(App(state, platform), args.host, args.port)
        closers.append(control.close)
        test_pki = _optional("pki", "TestPki")
        if test_pki is not None:
            platform.pki = test_pki.create(workdir, base_url=control.url)
        control.start()
        closers.append(platform.close)
        edge_class = _optional("edge", "Edge")
        edge = None
        if edge_class is not None:
            edge = edge_class(
                state,
                host=args.host,
                https_port=args.https_port,
                http_port=args.http_port,
                pki=platform.pki,
            ).start()
            closers.append(edge.close)
        if args.estate is not None:
            load_estate = _optional("estate", "load_estate")
            if load_estate is None:
                raise SystemExit("--estate needs emulator.estate")
            try:
                load_estate(state, platform.pki, json.loads(args.estate.read_text()))
            except (OSError, ValueError) as exc:
                raise SystemExit(f"emulator: --estate {args.estate}: {exc}") from None
        info = {
            "api": control.url,
            "https": f"{args.host}:{edge.https_port}" if edge else None,
            "http": f"{args.host}:{edge.http_port}" if edge else None,
            "ca_bundle": str(platform.pki.ca_bundle_path) if platform.pki else None,
            "access_key_id": state.access_key_id,
            "access_key_secret": state.access_key_secret,
            "security_token": state.security_token,
            "account_id": state.account_id,
            "region": DEFAULT_REGION,
            "cas_region": state.cas_region,
            "functions": [spec["name"] for spec in functions],
            "pid": os.getpid(),
        }
        platform.info = info
        stop = _stop_event(args.watch_stdin)
        print(json.dumps(info), flush=True)
        stop.wait()
        return 0
    finally:
        _close_all(closers)


def _close_all(closers: list[Callable[[], None]]) -> None:
    """Run the closers side by side (servers each wait out a poll interval), then the
    first one (the work directory) last."""
    threads = [
        threading.Thread(target=_quietly, args=(close,), daemon=True) for close in closers[1:]
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 3.0  # a stuck listener must not keep the process alive
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    _quietly(closers[0])


def _quietly(close: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):
        close()


class _Stop:
    """Set by a signal or by the stdin watcher; polled by the main thread (a signal
    handler that takes no lock cannot deadlock with the code it interrupts)."""

    def __init__(self) -> None:
        self.requested = False

    def wait(self) -> None:
        while not self.requested:
            time.sleep(0.1)


def _stop_event(watch_stdin: bool) -> _Stop:
    stop = _Stop()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.requested = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if watch_stdin:

        def watch() -> None:
            # A raw read: a buffered one would hold a lock that interpreter exit needs.
            with contextlib.suppress(OSError, ValueError):
                while os.read(sys.stdin.fileno(), 4096):
                    pass
            stop.requested = True

        threading.Thread(target=watch, name="emulator-stdin", daemon=True).start()
    return stop


if __name__ == "__main__":
    sys.exit(main())
