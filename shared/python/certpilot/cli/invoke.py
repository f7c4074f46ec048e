"""`certpilot invoke <function> --event FILE`: run a handler locally as FC would.

Loads `functions/<name>/index.py` by path, passes the event file's bytes and a
context with `request_id`, `credentials` (from the environment), `function` and
`region`, and prints the handler's JSON result. Exit 0: the result is a JSON object
with `"ok": true`; 1: anything else (`ok` false or missing, not JSON), or the handler
raised; 2: unknown or unimplemented function, unreadable event file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certpilot.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE

FUNCTIONS = {
    "deploy-cert": "deploy_cert",
    "enforce-https": "enforce_https",
    "check-expiry": "check_expiry",
}
HANDLER = "handler"


@dataclass(frozen=True)
class FunctionMeta:
    """`context.function` as FC provides it."""

    name: str
    handler: str
    memory: int = 512
    timeout: int = 300


@dataclass(frozen=True)
class LocalContext:
    """An FC-like invocation context for local runs."""

    request_id: str
    credentials: Any
    function: FunctionMeta
    region: str


def default_functions_dir() -> Path | None:
    """`functions/` of the certpilot checkout this package runs from (an editable install,
    or `PYTHONPATH=shared/python`), else `./functions` when the working directory is a
    checkout; None when neither exists (e.g. an installed wheel, outside a checkout)."""
    import certpilot

    # <checkout>/shared/python/certpilot/__init__.py
    checkout = Path(certpilot.__file__).resolve().parents[3]
    for candidate in (checkout / "functions", Path.cwd() / "functions"):
        if candidate.is_dir():
            return candidate
    return None


def register(subparsers: Any) -> None:
    """Add the `invoke` sub-command to the CLI."""
    parser = subparsers.add_parser(
        "invoke",
        help="run a function handler locally, exactly as Function Compute would",
        description="Run a certpilot function locally with an event file, as Function"
        " Compute would: functions/<name>/index.py handler(event_bytes, context), the"
        " context carrying a request id and the environment's credentials. Prints the"
        " handler's JSON result. Needs a certpilot checkout (its functions/ folder).",
    )
    parser.add_argument("function", metavar="FUNCTION", help=" | ".join(FUNCTIONS))
    parser.add_argument("--event", required=True, metavar="FILE", help="event file; - for stdin")
    parser.add_argument(
        "--functions-dir", type=Path, default=None, help="where the function folders are"
    )
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    sys.stderr.write(f"certpilot invoke: {message}\n")
    return EXIT_USAGE


def load_handler(path: Path, name: str) -> Any:
    """Import `path` as FC does (its folder first on sys.path) and return `handler`."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"certpilot_fc_{name}_index", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, HANDLER)


def make_context(function: str) -> LocalContext:
    """A context with a fresh request id and the environment's credentials.

    Raises:
        ConfigError: the environment has half a key pair.
    """
    from certpilot.cloud import credentials
    from certpilot.core.settings import Settings

    settings = Settings.from_env()
    return LocalContext(
        request_id=str(uuid.uuid4()),
        credentials=credentials.from_env(),
        function=FunctionMeta(function, f"index.{HANDLER}"),
        region=settings.region,
    )


def run(args: argparse.Namespace) -> int:
    """Invoke and print; returns the exit code."""
    from certpilot.core.errors import ConfigError
    from certpilot.handler import error_summary

    name = args.function
    folder = FUNCTIONS.get(name)
    if folder is None:
        return _fail(f"unknown function {name!r}; choose one of {', '.join(FUNCTIONS)}")
    functions_dir = args.functions_dir or default_functions_dir()
    if functions_dir is None:
        return _fail(
            "no functions/ folder found: invoke runs the handlers of a certpilot checkout;"
            " run it inside one or pass --functions-dir DIR"
        )
    if not functions_dir.is_dir():
        return _fail(f"--functions-dir {functions_dir} is not a directory")
    path = functions_dir / folder / "index.py"
    if not path.is_file():
        return _fail(f"function {name!r} is not implemented yet ({path} is missing)")
    try:
        event = sys.stdin.buffer.read() if args.event == "-" else Path(args.event).read_bytes()
    except OSError as err:
        return _fail(f"cannot read the event file: {err.strerror or err}")
    try:
        context = make_context(name)
    except ConfigError as err:
        return _fail(str(err))
    try:
        handler = load_handler(path, folder)
        result = handler(event, context)
    except Exception as err:  # the handler's crash is the invocation's result
        print(json.dumps(error_summary(name, err, context.request_id)))
        return EXIT_FINDINGS
    text = result.decode("utf-8") if isinstance(result, bytes) else result
    if not isinstance(text, str):
        text = json.dumps(text)
    print(text)
    return EXIT_OK if result_ok(text) else EXIT_FINDINGS


def result_ok(text: str) -> bool:
    """True only for a JSON object whose `ok` is `true`: a result that does not say
    so (no `ok`, not JSON, not an object) is not a success."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("ok") is True
