"""OSS bucket policies: PutBucketPolicy (validated as OSS does), GetBucketPolicy,
DeleteBucketPolicy. The control plane stores policies; the edge evaluates them
(`emulator/policy.py`)."""

from __future__ import annotations

import json
import re
from typing import Any

from emulator.core import OssContext, Response, ServiceError, oss
from emulator.oss.addressing import ok, require_bucket
from emulator.oss.errors import oss_error

MAX_POLICY_BYTES = 16 * 1024

_RESOURCE = re.compile(r"^acs:oss:[^:]*:[^:]*:(.+)$")


def _policy_invalid(message: str) -> ServiceError:
    return oss_error("policy_invalid", message)


def _strings(value: Any, field: str, index: int, *, required: bool = True) -> list[str]:
    if value is None and not required:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise _policy_invalid(
            f"Statement {index}: {field} must be a non-empty string or list of strings."
        )
    return items


def validate_policy(body: bytes, bucket: str) -> None:
    """Check a bucket policy the way OSS does before storing it.

    Raises ServiceError: PolicyTooLarge (> 16 KB), InvalidPolicyDocument (not JSON,
    Version not the string "1", no Statement, a statement without Effect Allow|Deny,
    Action or Resource, a Resource outside the bucket, or acs:SourceIp without
    acs:SourceVpc in the same statement).
    """
    if len(body) > MAX_POLICY_BYTES:
        raise oss_error(
            "policy_too_large",
            f"The policy document is {len(body)} bytes; the limit is {MAX_POLICY_BYTES}.",
        )
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _policy_invalid("The policy document is not valid JSON.") from None
    if not isinstance(document, dict):
        raise _policy_invalid("The policy document must be a JSON object.")
    if document.get("Version") != "1":
        raise _policy_invalid('The policy Version must be the string "1".')
    statements = document.get("Statement")
    if not isinstance(statements, list) or not statements:
        raise _policy_invalid("The policy must have a non-empty Statement list.")
    for index, statement in enumerate(statements):
        _validate_statement(statement, index, bucket)


def _validate_statement(statement: Any, index: int, bucket: str) -> None:
    if not isinstance(statement, dict):
        raise _policy_invalid(f"Statement {index} must be a JSON object.")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise _policy_invalid(f'Statement {index}: Effect must be "Allow" or "Deny".')
    _strings(statement.get("Action"), "Action", index)
    _strings(statement.get("Principal"), "Principal", index, required=False)
    for resource in _strings(statement.get("Resource"), "Resource", index):
        match = _RESOURCE.match(resource)
        target = match.group(1) if match else ""
        if target != bucket and not target.startswith(bucket + "/"):
            raise _policy_invalid(
                f"Statement {index}: the resource {resource!r} is not in bucket {bucket}."
            )
    condition = statement.get("Condition")
    if condition is None:
        return
    if not isinstance(condition, dict) or not all(isinstance(v, dict) for v in condition.values()):
        raise _policy_invalid(f"Statement {index}: Condition must map operators to objects.")
    keys = {key.lower() for block in condition.values() for key in block}
    if "acs:sourceip" in keys and "acs:sourcevpc" not in keys:
        raise _policy_invalid(
            f"Statement {index}: a condition on acs:SourceIp must also state acs:SourceVpc."
        )


@oss("PutBucketPolicy", "PUT", "bucket", "policy")
def put_bucket_policy(ctx: OssContext) -> Response:
    state = ctx.state
    with state.lock:
        bucket = require_bucket(ctx)
        validate_policy(ctx.request.body, bucket.name)
        bucket.policy.set(ctx.request.body.decode("utf-8"), state.now(), state.propagation_delay)
    return ok()


@oss("GetBucketPolicy", "GET", "bucket", "policy")
def get_bucket_policy(ctx: OssContext) -> Response:
    with ctx.state.lock:
        policy = require_bucket(ctx).policy.latest()
    if policy is None:
        raise oss_error("no_policy", "The bucket policy does not exist.")
    return Response(200, policy.encode("utf-8"), {"Content-Type": "application/json"})


@oss("DeleteBucketPolicy", "DELETE", "bucket", "policy")
def delete_bucket_policy(ctx: OssContext) -> Response:
    state = ctx.state
    with state.lock:
        bucket = require_bucket(ctx)
        if bucket.policy.latest() is not None:
            bucket.policy.set(None, state.now(), state.propagation_delay)
    return ok(204)
