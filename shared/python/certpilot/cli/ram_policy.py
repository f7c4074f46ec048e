"""`certpilot ram-policy`: the RAM policy of the functions' role, for one account.

`deploy/ram-policy.json` is a template: valid JSON whose strings hold `${AccountId}`,
`${Region}`, `${ReportBucket}`, `${ReportPrefix}`, `${DeployFunction}`,
`${CheckExpiryFunction}` and `${FailureQueue}`. This command fills them from its
options, defaulting to the settings (CERTPILOT_ACCOUNT_ID, CERTPILOT_REGION,
CERTPILOT_REPORT_BUCKET, CERTPILOT_REPORT_PREFIX, CERTPILOT_DEPLOY_FUNCTION), for
check-expiry's own name (it invokes itself when a sweep fans out) to s.yaml's
`certpilot-check-expiry`, and for the failure queue to s.yaml's `vars.failureQueue`,
and prints the policy document. Without a report bucket
the report statement is left out (check-expiry then writes no report); with
`--no-failure-queue`, the MNS statement (for s.yaml without an asynchronous-invocation
failure destination). Exit 0: printed;
1: the document exceeds RAM's size limit; 2: a value is missing or malformed, or the
template cannot be read.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from certpilot.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE

TEMPLATE = Path("deploy") / "ram-policy.json"
# RAM CreatePolicy: "The document must be 1 to 6,144 characters in length."
MAX_POLICY_CHARS = 6144
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
# s.yaml's `vars.failureQueue`: the MNS queue FC sends failed asynchronous invocations to.
FAILURE_QUEUE = "certpilot-failed"
# s.yaml's check-expiry `functionName`: the function a sweep's fan-out invokes.
CHECK_EXPIRY_FUNCTION = "certpilot-check-expiry"

# What each placeholder may be. `*` and `?` are RAM wildcards: a value holding one
# would widen the grant, so none of these patterns admits them.
VALUE_PATTERNS: Mapping[str, re.Pattern[str]] = {
    "AccountId": re.compile(r"\d{1,32}"),
    "Region": re.compile(r"[a-z]{2}(-[a-z0-9]+)+"),
    # OSS bucket names: 3-63 lower-case letters, digits and hyphens, no hyphen at an end.
    "ReportBucket": re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"),
    "ReportPrefix": re.compile(r"[A-Za-z0-9!\-_.'()]+(/[A-Za-z0-9!\-_.'()]+)*"),
    "DeployFunction": re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}"),
    "CheckExpiryFunction": re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}"),
    # MNS queue names: letters, digits and hyphens, a letter or digit first, up to 120.
    "FailureQueue": re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,119}"),
}


class PolicyValueError(ValueError):
    """A placeholder's value is missing (`value` None) or malformed."""

    def __init__(self, placeholder: str, value: str | None) -> None:
        self.placeholder = placeholder
        self.value = value
        what = "no value" if value is None else f"{value!r} is not a valid value"
        super().__init__(f"${{{placeholder}}}: {what}")


def render(template: Mapping[str, Any], values: Mapping[str, str | None]) -> dict[str, Any]:
    """The policy `template` with every `${Name}` replaced by `values[Name]`.

    A statement that names a placeholder whose value is None is left out (no report
    bucket, no report statement). Pure.

    Raises:
        PolicyValueError: a placeholder missing from `values`, or a value its pattern
            (`VALUE_PATTERNS`) refuses.
    """
    for name, value in values.items():
        pattern = VALUE_PATTERNS.get(name)
        if value is not None and (pattern is None or not pattern.fullmatch(value)):
            raise PolicyValueError(name, value)

    def named(node: Any) -> set[str]:
        if isinstance(node, str):
            return set(PLACEHOLDER.findall(node))
        if isinstance(node, list):
            return set().union(*(named(n) for n in node)) if node else set()
        if isinstance(node, dict):
            return set().union(*(named(v) for v in node.values())) if node else set()
        return set()

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), node)
        if isinstance(node, list):
            return [fill(n) for n in node]
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        return node

    unknown = named(template) - values.keys()
    if unknown:
        raise PolicyValueError(sorted(unknown)[0], None)
    kept = [
        statement
        for statement in template.get("Statement", [])
        if all(values[name] is not None for name in named(statement))
    ]
    rendered: dict[str, Any] = fill({**template, "Statement": kept})
    return rendered


def text(policy: Mapping[str, Any]) -> str:
    """The policy document as printed (indented JSON)."""
    return json.dumps(policy, indent=2)


def default_template() -> Path:
    """`deploy/ram-policy.json` of the working directory, else of this checkout."""
    here = Path.cwd() / TEMPLATE
    if here.is_file():
        return here
    # shared/python/certpilot/cli/ram_policy.py -> the checkout's root.
    return Path(__file__).resolve().parents[4] / TEMPLATE


def register(subparsers: Any) -> None:
    """Add the `ram-policy` sub-command to the CLI."""
    parser = subparsers.add_parser(
        "ram-policy",
        help="print the RAM policy of the functions' role, filled in for one account",
        description="Fill deploy/ram-policy.json in for an account and print it.",
    )
    parser.add_argument("--account-id", help="the Alibaba Cloud account id (CERTPILOT_ACCOUNT_ID)")
    parser.add_argument("--region", help="the functions' region (CERTPILOT_REGION)")
    parser.add_argument(
        "--report-bucket", help="check-expiry's report bucket (CERTPILOT_REPORT_BUCKET)"
    )
    parser.add_argument("--report-prefix", help="the report key prefix (CERTPILOT_REPORT_PREFIX)")
    parser.add_argument(
        "--deploy-function",
        help="the deploy-cert function check-expiry invokes (CERTPILOT_DEPLOY_FUNCTION)",
    )
    parser.add_argument(
        "--check-expiry-function",
        default=CHECK_EXPIRY_FUNCTION,
        help="check-expiry's own function name, invoked by its fan-out"
        f" (default {CHECK_EXPIRY_FUNCTION})",
    )
    parser.add_argument(
        "--failure-queue",
        default=FAILURE_QUEUE,
        help=f"the MNS queue of s.yaml's failure destination (default {FAILURE_QUEUE})",
    )
    parser.add_argument(
        "--no-failure-queue",
        action="store_true",
        help="leave the MNS statement out (no asynchronous-invocation failure destination)",
    )
    parser.add_argument("--template", type=Path, help="the policy template to fill in")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render and print; returns the exit code."""
    from certpilot.core.errors import ConfigError
    from certpilot.core.settings import Settings

    try:
        settings = Settings.from_env()
    except ConfigError as err:
        sys.stderr.write(f"certpilot ram-policy: {err}\n")
        return EXIT_USAGE
    values = {
        "AccountId": args.account_id or settings.account_id,
        "Region": args.region or settings.region,
        "ReportBucket": args.report_bucket or settings.report_bucket,
        "ReportPrefix": (args.report_prefix or settings.report_prefix).strip("/"),
        "DeployFunction": args.deploy_function or settings.deploy_function,
        "CheckExpiryFunction": args.check_expiry_function,
        "FailureQueue": None if args.no_failure_queue else args.failure_queue,
    }
    if not values["AccountId"]:
        sys.stderr.write("certpilot ram-policy: --account-id (or CERTPILOT_ACCOUNT_ID) is needed\n")
        return EXIT_USAGE
    path = args.template or default_template()
    try:
        template = json.loads(path.read_text(encoding="utf-8"))
        policy = render(template, values)
    except (OSError, ValueError) as err:
        sys.stderr.write(f"certpilot ram-policy: {path}: {err}\n")
        return EXIT_USAGE
    document = text(policy)
    if len(document) > MAX_POLICY_CHARS:
        sys.stderr.write(
            f"certpilot ram-policy: {len(document)} characters, RAM takes {MAX_POLICY_CHARS}\n"
        )
        return EXIT_FINDINGS
    if values["ReportBucket"] is None:
        sys.stderr.write(
            "certpilot ram-policy: no report bucket: the report statement is left out\n"
        )
    print(document)
    return EXIT_OK
