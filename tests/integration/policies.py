"""Bucket policies as the enforce-https tests set them up and read them back through
certpilot's OSS adapter."""

from __future__ import annotations

from typing import Any

from certpilot.jobs.enforce_https.policy import parse_document


def foreign_statements(bucket: str) -> list[dict[str, Any]]:
    """Two statements someone else wrote in `bucket`'s policy: an Allow of reads under
    `public/` and a conditional Deny of deletes."""
    return [
        {
            "Effect": "Allow",
            "Action": ["oss:GetObject"],
            "Principal": ["1234567890"],
            "Resource": [f"acs:oss:*:*:{bucket}/public/*"],
        },
        {
            "Effect": "Deny",
            "Action": ["oss:DeleteObject"],
            "Principal": ["*"],
            "Resource": [f"acs:oss:*:*:{bucket}/*"],
            "Condition": {"StringLike": {"acs:UserAgent": ["*bot*"]}},
        },
    ]


def stored_statements(clients: Any, bucket: str, region: str) -> list[Any]:
    """The statements of `bucket`'s stored policy (empty: it has none)."""
    text = clients.oss.get_bucket_policy(bucket, region)
    return list(parse_document(text)["Statement"]) if text else []
