"""OSS bucket tagging through the real OSS SDK against the emulator, and certpilot's
adapter reading it."""

from __future__ import annotations

from typing import Any

import alibabacloud_oss_v2 as oss
import pytest

pytestmark = pytest.mark.integration


def _tags(client: Any, bucket: str) -> dict[str, str]:
    result = client.get_bucket_tags(oss.GetBucketTagsRequest(bucket=bucket))
    tag_set = result.tagging.tag_set if result.tagging else None
    tags = tag_set.tags if tag_set and tag_set.tags else []
    return {t.key: t.value for t in tags}


def _put(client: Any, bucket: str, tags: dict[str, str]) -> None:
    client.put_bucket_tags(
        oss.PutBucketTagsRequest(
            bucket=bucket,
            tagging=oss.Tagging(
                tag_set=oss.TagSet(tags=[oss.Tag(key=k, value=v) for k, v in tags.items()])
            ),
        )
    )


def test_put_get_delete_bucket_tags(cloud: Any) -> None:
    # given a bucket without tags
    cloud.load_estate({"buckets": [{"name": "media"}]})
    client = cloud.oss_client()
    assert _tags(client, "media") == {}
    # when tags are put, they replace the set and read back
    _put(client, "media", {"team": "web", "certpilot-enforce": "off"})
    _put(client, "media", {"certpilot-enforce": "off", "env": "prod"})
    assert _tags(client, "media") == {"certpilot-enforce": "off", "env": "prod"}
    # and certpilot's adapter reads the same
    from certpilot.cloud.clients import CloudClients
    from certpilot.cloud.credentials import Credentials
    from certpilot.core.settings import Settings

    settings = Settings(endpoint=cloud.api)
    clients = CloudClients.from_settings(
        settings, Credentials(cloud.access_key_id, cloud.access_key_secret)
    )
    assert clients.oss.bucket_tags("media", "cn-hangzhou") == {
        "certpilot-enforce": "off",
        "env": "prod",
    }
    # when the tags are deleted, then none are left
    client.delete_bucket_tags(oss.DeleteBucketTagsRequest(bucket="media"))
    assert _tags(client, "media") == {}


@pytest.mark.parametrize(
    "tags",
    [{"aliyun-x": "1"}, {"k" * 65: "1"}, {"k": "v" * 129}, {f"k{i}": "v" for i in range(21)}],
    ids=["reserved-prefix", "long-key", "long-value", "too-many"],
)
def test_invalid_tags_are_refused(cloud: Any, tags: dict[str, str]) -> None:
    cloud.load_estate({"buckets": [{"name": "media"}]})
    client = cloud.oss_client()
    with pytest.raises(oss.exceptions.OperationError) as raised:
        _put(client, "media", tags)
    assert "InvalidTag" in str(raised.value)
    assert _tags(client, "media") == {}
