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

MAX_POLICY_BYTES = 16 * 1024  # documented, EC 0030-00000001
MAX_FIELD_BYTES = 4095  # documented: a single field of the document, EC 0030-00000003

_RESOURCE = re.compile(r"^acs:oss:[^:]*:[^:]*:(.+)$")
_STATEMENT_KEYS = frozenset({"Effect", "Action", "Principal", "Resource", "Condition"})

# UNCONFIRMED (chosen): the OSS actions a policy may name (RAM's `oss:` action names of
# the service-, bucket- and object-level APIs). An Action must be `oss:` plus a name or
# a `*` / `?` pattern that matches at least one of them; anything else is a syntax error.
OSS_ACTIONS = frozenset(
    [
        "ListBuckets",
        "ListUserDataRedundancyTransition",
        "PutPublicAccessBlock",
        "GetPublicAccessBlock",
        "DeletePublicAccessBlock",
        "DescribeRegions",
        "PutBucket",
        "DeleteBucket",
        "GetBucketInfo",
        "GetBucketLocation",
        "GetBucketStat",
        "ListObjects",
        "ListObjectVersions",
        "PutBucketAcl",
        "GetBucketAcl",
        "PutBucketPolicy",
        "GetBucketPolicy",
        "DeleteBucketPolicy",
        "GetBucketPolicyStatus",
        "PutCname",
        "ListCname",
        "DeleteCname",
        "CreateCnameToken",
        "GetCnameToken",
        "PutBucketWebsite",
        "GetBucketWebsite",
        "DeleteBucketWebsite",
        "PutBucketLogging",
        "GetBucketLogging",
        "DeleteBucketLogging",
        "PutBucketReferer",
        "GetBucketReferer",
        "PutBucketLifecycle",
        "GetBucketLifecycle",
        "DeleteBucketLifecycle",
        "PutBucketCors",
        "GetBucketCors",
        "DeleteBucketCors",
        "PutBucketVersioning",
        "GetBucketVersioning",
        "PutBucketEncryption",
        "GetBucketEncryption",
        "DeleteBucketEncryption",
        "PutBucketTagging",
        "GetBucketTagging",
        "DeleteBucketTagging",
        "PutBucketReplication",
        "GetBucketReplication",
        "DeleteBucketReplication",
        "GetBucketReplicationLocation",
        "GetBucketReplicationProgress",
        "PutBucketRequestPayment",
        "GetBucketRequestPayment",
        "PutBucketTransferAcceleration",
        "GetBucketTransferAcceleration",
        "InitiateBucketWorm",
        "AbortBucketWorm",
        "CompleteBucketWorm",
        "ExtendBucketWorm",
        "GetBucketWorm",
        "PutBucketInventory",
        "GetBucketInventory",
        "ListBucketInventory",
        "DeleteBucketInventory",
        "ListMultipartUploads",
        "PutBucketAccessMonitor",
        "GetBucketAccessMonitor",
        "PutBucketResourceGroup",
        "GetBucketResourceGroup",
        "PutBucketHttpsConfig",
        "GetBucketHttpsConfig",
        "PutBucketPublicAccessBlock",
        "GetBucketPublicAccessBlock",
        "DeleteBucketPublicAccessBlock",
        "GetObject",
        "PutObject",
        "DeleteObject",
        "AppendObject",
        "PutObjectAcl",
        "GetObjectAcl",
        "PutSymlink",
        "GetSymlink",
        "RestoreObject",
        "AbortMultipartUpload",
        "ListParts",
        "PutObjectTagging",
        "GetObjectTagging",
        "DeleteObjectTagging",
        "GetObjectVersion",
        "DeleteObjectVersion",
        "GetObjectVersionAcl",
        "PutObjectVersionAcl",
        "GetObjectVersionTagging",
        "PutObjectVersionTagging",
        "DeleteObjectVersionTagging",
    ]
)


def _syntax(message: str) -> ServiceError:
    return oss_error("policy_syntax", message)


def _strings(value: Any, field: str, index: int) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise _syntax(f"Statement {index}: {field} must be a non-empty string or list of strings.")
    return items


def _known_action(action: str) -> bool:
    service, _, name = action.partition(":")
    if service.lower() != "oss" or not name:
        return False
    pattern = re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name),
        re.IGNORECASE,
    )
    return any(pattern.fullmatch(known) for known in OSS_ACTIONS)


def _long_field(value: Any) -> str | None:
    """The first key or string value of the document over MAX_FIELD_BYTES, if any."""
    if isinstance(value, str):
        return value if len(value.encode("utf-8")) > MAX_FIELD_BYTES else None
    if isinstance(value, list):
        return next((f for f in map(_long_field, value) if f is not None), None)
    if isinstance(value, dict):
        for key, item in value.items():
            found = _long_field(key) or _long_field(item)
            if found is not None:
                return found
    return None


def validate_policy(body: bytes, bucket: str) -> None:
    """Check a newly submitted bucket policy the way OSS does before storing it.

    Raises ServiceError (400, the documented EC of each check; the Code strings are
    UNCONFIRMED (chosen)):
        PolicyTooLarge 0030-00000001: over 16 KB.
        InvalidPolicyDocument 0030-00000003: a key or string value over 4,095 bytes.
        InvalidPolicyDocument 0030-00000005: invalid syntax: not JSON, `Version` not the
            string "1", no `Statement`, a statement with an unknown key or without
            `Effect` Allow|Deny, `Action`, `Principal` or `Resource`, an action that is
            not an OSS action, a Resource outside the bucket, a malformed Condition.
        InvalidPolicyDocument 0030-00000008: `acs:SourceIp` in a statement that does
            not also state `acs:SourceVpc`.
    """
    if len(body) > MAX_POLICY_BYTES:
        raise oss_error(
            "policy_too_large",
            f"The policy document is {len(body)} bytes; the limit is {MAX_POLICY_BYTES}.",
        )
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _syntax("The policy document is not valid JSON.") from None
    long_field = _long_field(document)
    if long_field is not None:
        raise oss_error(
            "policy_field_too_long",
            f"A policy field is {len(long_field.encode('utf-8'))} bytes;"
            f" the limit is {MAX_FIELD_BYTES}.",
        )
    if not isinstance(document, dict):
        raise _syntax("The policy document must be a JSON object.")
    unknown = set(document) - {"Version", "Statement"}
    if unknown:
        raise _syntax(f"Unknown policy element {sorted(unknown)[0]!r}.")
    if document.get("Version") != "1":
        raise _syntax('The policy Version must be the string "1".')
    statements = document.get("Statement")
    if not isinstance(statements, list) or not statements:
        raise _syntax("The policy must have a non-empty Statement list.")
    for index, statement in enumerate(statements):
        _validate_statement(statement, index, bucket)


def _validate_statement(statement: Any, index: int, bucket: str) -> None:
    if not isinstance(statement, dict):
        raise _syntax(f"Statement {index} must be a JSON object.")
    unknown = set(statement) - _STATEMENT_KEYS
    if unknown:
        raise _syntax(f"Statement {index}: unknown element {sorted(unknown)[0]!r}.")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise _syntax(f'Statement {index}: Effect must be "Allow" or "Deny".')
    for action in _strings(statement.get("Action"), "Action", index):
        if not _known_action(action):
            raise _syntax(f"Statement {index}: {action!r} is not an OSS action.")
    # Documented: Principal is required in a bucket policy (an empty list is allowed).
    principal = statement.get("Principal")
    if not isinstance(principal, (str, list)) or (
        isinstance(principal, list) and not all(isinstance(p, str) and p for p in principal)
    ):
        raise _syntax(f"Statement {index}: Principal must be a string or a list of strings.")
    for resource in _strings(statement.get("Resource"), "Resource", index):
        match = _RESOURCE.match(resource)
        target = match.group(1) if match else ""
        if target != bucket and not target.startswith(bucket + "/"):
            raise _syntax(
                f"Statement {index}: the resource {resource!r} is not in bucket {bucket}."
            )
    condition = statement.get("Condition")
    if condition is None:
        return
    if (
        not isinstance(condition, dict)
        or not condition
        or not all(isinstance(v, dict) and v for v in condition.values())
    ):
        raise _syntax(f"Statement {index}: Condition must map operators to non-empty objects.")
    keys = {key.lower() for block in condition.values() for key in block}
    if "acs:sourceip" in keys and "acs:sourcevpc" not in keys:
        raise oss_error(
            "policy_source_ip",
            f"Statement {index}: a condition on acs:SourceIp must also state acs:SourceVpc.",
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
