"""OSS adapter: buckets, custom domains (CNAME) and their hosted certificates, policies,
and the plain objects check-expiry writes its reports to.

Each bucket is addressed at its own region (one SDK client per region, cached by
`CloudClients`); ListBuckets goes to the default region and lists every region.
Certificates are bound by CAS reference (`CertId` = CAS `CertIdentifier`), never
by shipping PEM keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from certpilot.cloud._common import Caller, normalize_fingerprint, parse_time
from certpilot.core.certref import DEFAULT_REGION, CertRef
from certpilot.core.cloudtypes import BucketInfo, CnameInfo
from certpilot.core.errors import NotFoundError
from certpilot.core.model import DeployedCert, Location

SERVICE = "oss"
LIST_BUCKETS_PAGE = 1000  # ListBuckets max-keys: the documented maximum


def _deployed(cert: Any) -> tuple[DeployedCert | None, str | None]:
    if cert is None:
        return None, None
    identifier = (cert.cert_id or "").strip() or None
    ref = CertRef.find(identifier)
    cert_type = cert.type or ""
    deployed = DeployedCert(
        location=Location.OSS,
        # Only a CAS-type binding refers to a CAS certificate; an upload's id is OSS's own.
        cas_id=ref.cas_id if ref is not None and cert_type.upper() == "CAS" else None,
        cert_type=cert_type,
        not_after=parse_time(cert.valid_end_date),
        not_before=parse_time(cert.valid_start_date),
        fingerprint=normalize_fingerprint(cert.fingerprint),
        region=ref.region if ref is not None else DEFAULT_REGION,
    )
    return deployed, identifier


class OssAdapter:
    """OSS operations certpilot needs. All raise CloudError subclasses."""

    def __init__(
        self, client_for_region: Callable[[str], Any], caller: Caller, default_region: str
    ) -> None:
        self._client = client_for_region
        self._caller = caller
        self._default_region = default_region

    def list_buckets(self) -> list[BucketInfo]:
        """Every bucket of the account, in every region (ListBuckets, all pages)."""
        from alibabacloud_oss_v2 import models

        client = self._client(self._default_region)
        buckets: list[BucketInfo] = []
        marker: str | None = None
        for _ in range(10_000):
            request = models.ListBucketsRequest(marker=marker, max_keys=LIST_BUCKETS_PAGE)

            def list_page(request: Any = request) -> Any:
                return client.list_buckets(request)

            result = self._caller.call("ListBuckets", list_page)
            for bucket in result.buckets or []:
                region = bucket.region or (bucket.location or "").removeprefix("oss-")
                buckets.append(BucketInfo(bucket.name, region or self._default_region))
            if not result.is_truncated or not result.next_marker:
                break
            marker = result.next_marker
        return buckets

    def list_cnames(self, bucket: str, region: str) -> list[CnameInfo]:
        """The custom domains of `bucket` with their hosted certificates (ListCname)."""
        from alibabacloud_oss_v2 import models

        client = self._client(region)
        result = self._caller.call(
            "ListCname", lambda: client.list_cname(models.ListCnameRequest(bucket=bucket))
        )
        infos = []
        for cname in result.cnames or []:
            deployed, identifier = _deployed(cname.certificate)
            infos.append(
                CnameInfo(
                    domain=(cname.domain or "").strip().lower(),
                    status=cname.status or "Enabled",
                    certificate=deployed,
                    cert_identifier=identifier,
                )
            )
        return infos

    def bind_certificate(
        self,
        bucket: str,
        region: str,
        domain: str,
        cert_identifier: str,
        previous_identifier: str | None,
        force: bool = False,
    ) -> None:
        """Host the CAS certificate `cert_identifier` for `domain` (PutCname).

        Without `force`, OSS checks that `previous_identifier` is the certificate bound
        now (optimistic concurrency): a mismatch raises ConflictError or CloudError.
        """
        self._put_cname(
            bucket,
            region,
            domain,
            cert_id=cert_identifier,
            previous_cert_id=previous_identifier,
            force=force or None,
        )

    def unbind_certificate(
        self, bucket: str, region: str, domain: str, previous_identifier: str | None
    ) -> None:
        """Stop hosting a certificate for `domain` (PutCname with DeleteCertificate).

        The binding of the domain itself stays. With no `previous_identifier` the
        removal is forced.
        """
        self._put_cname(
            bucket,
            region,
            domain,
            delete_certificate=True,
            previous_cert_id=previous_identifier,
            force=True if previous_identifier is None else None,
        )

    def _put_cname(self, bucket: str, region: str, domain: str, **config: Any) -> None:
        from alibabacloud_oss_v2 import models

        client = self._client(region)
        request = models.PutCnameRequest(
            bucket=bucket,
            bucket_cname_configuration=models.BucketCnameConfiguration(
                cname=models.Cname(
                    domain=domain,
                    certificate_configuration=models.CertificateConfiguration(**config),
                )
            ),
        )
        self._caller.call("PutCname", lambda: client.put_cname(request))

    def get_bucket_policy(self, bucket: str, region: str) -> str | None:
        """The bucket policy document (JSON text), or None when the bucket has none."""
        from alibabacloud_oss_v2 import models

        client = self._client(region)
        try:
            result = self._caller.call(
                "GetBucketPolicy",
                lambda: client.get_bucket_policy(models.GetBucketPolicyRequest(bucket=bucket)),
            )
        except NotFoundError as error:
            if error.code == "NoSuchBucketPolicy":
                return None
            raise
        body = result.body
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        return body or None

    def put_bucket_policy(self, bucket: str, region: str, policy_json: str) -> None:
        """Replace the whole bucket policy with `policy_json` (PutBucketPolicy)."""
        from alibabacloud_oss_v2 import models

        client = self._client(region)
        request = models.PutBucketPolicyRequest(bucket=bucket, body=policy_json)
        self._caller.call("PutBucketPolicy", lambda: client.put_bucket_policy(request))

    def delete_bucket_policy(self, bucket: str, region: str) -> None:
        """Delete the bucket policy (DeleteBucketPolicy); no policy is not an error."""
        from alibabacloud_oss_v2 import models

        client = self._client(region)
        request = models.DeleteBucketPolicyRequest(bucket=bucket)
        self._caller.call("DeleteBucketPolicy", lambda: client.delete_bucket_policy(request))

    def bucket_tags(self, bucket: str, region: str) -> dict[str, str]:
        """The bucket's tags (GetBucketTags); empty when it has none."""
        from alibabacloud_oss_v2 import models

        client = self._client(region)
        result = self._caller.call(
            "GetBucketTags",
            lambda: client.get_bucket_tags(models.GetBucketTagsRequest(bucket=bucket)),
        )
        tagging = getattr(result, "tagging", None)
        tag_set = getattr(tagging, "tag_set", None)
        tags = getattr(tag_set, "tags", None) or []
        return {str(t.key): str(t.value or "") for t in tags if t.key}

    def put_object(
        self, bucket: str, region: str, key: str, body: bytes, content_type: str
    ) -> None:
        """Write `body` to `key` of `bucket` with `content_type` (PutObject), replacing
        any object of that key.

        Raises:
            CloudError: the translated SDK error (NotFoundError for a missing bucket),
                after retries where retryable.
        """
        from alibabacloud_oss_v2 import models

        client = self._client(region)
        request = models.PutObjectRequest(
            bucket=bucket, key=key, body=body, content_type=content_type
        )
        self._caller.call("PutObject", lambda: client.put_object(request))

    def get_object(self, bucket: str, region: str, key: str) -> bytes | None:
        """The content of `key` in `bucket` (GetObject), or None when there is no such key.

        Raises:
            CloudError: the translated SDK error (NotFoundError for a missing bucket),
                after retries where retryable.
        """
        from alibabacloud_oss_v2 import models

        client = self._client(region)
        request = models.GetObjectRequest(bucket=bucket, key=key)

        def read() -> bytes:
            # Read inside the guarded call: a connection dropped mid-body is retried too.
            result = client.get_object(request)
            with result.body as body:
                return bytes(body.read())

        try:
            return self._caller.call("GetObject", read)
        except NotFoundError as error:
            if error.code == "NoSuchKey":
                return None
            raise

    def create_object(
        self, bucket: str, region: str, key: str, body: bytes, content_type: str
    ) -> bool:
        """Write `body` to `key` only if no object of that key exists (PutObject with
        `x-oss-forbid-overwrite: true`, atomic in OSS): True when written, False when
        the key already existed (409 `FileAlreadyExists`; that object is kept).

        A retried write whose first attempt landed also answers False: a caller that
        must know whether the object is its own reads it back.

        Raises:
            CloudError: any other failure, after retries where retryable.
        """
        from alibabacloud_oss_v2 import models

        from certpilot.core.errors import ConflictError

        client = self._client(region)
        request = models.PutObjectRequest(
            bucket=bucket, key=key, body=body, content_type=content_type, forbid_overwrite=True
        )
        try:
            self._caller.call("PutObject", lambda: client.put_object(request))
        except ConflictError as error:
            if error.code == "FileAlreadyExists":
                return False
            raise
        return True

    def list_keys(self, bucket: str, region: str, prefix: str) -> list[str]:
        """Every key of `bucket` that starts with `prefix`, in order (ListObjectsV2, all
        pages of 1000).

        Raises:
            CloudError: the translated SDK error, after retries where retryable.
        """
        from alibabacloud_oss_v2 import models

        client = self._client(region)
        keys: list[str] = []
        token: str | None = None
        while True:
            request = models.ListObjectsV2Request(
                bucket=bucket, prefix=prefix, max_keys=1000, continuation_token=token
            )

            def list_page(request: Any = request) -> Any:
                return client.list_objects_v2(request)

            result = self._caller.call("ListObjectsV2", list_page)
            keys.extend(str(o.key) for o in (result.contents or []) if o.key)
            token = result.next_continuation_token
            if not result.is_truncated or not token:
                return keys

    def delete_object(self, bucket: str, region: str, key: str) -> None:
        """Delete `key` from `bucket` (DeleteObject; a missing key is no error).

        Raises:
            CloudError: the translated SDK error, after retries where retryable.
        """
        from alibabacloud_oss_v2 import models

        client = self._client(region)
        request = models.DeleteObjectRequest(bucket=bucket, key=key)
        self._caller.call("DeleteObject", lambda: client.delete_object(request))
