"""OSS error codes and `EC` values, documented or chosen, and how they are raised."""

from __future__ import annotations

from emulator.core import ServiceError

# (status, code, EC). "doc" = documented code and EC; "chosen" = picked for the emulator.
ERRORS: dict[str, tuple[int, str, str]] = {
    "no_bucket": (404, "NoSuchBucket", "0015-00000101"),  # doc
    "bucket_exists": (409, "BucketAlreadyExists", "0015-00000104"),  # code doc, EC chosen
    "bucket_name": (400, "InvalidBucketName", "0015-00000001"),  # code doc, EC chosen
    "bucket_not_empty": (409, "BucketNotEmpty", "0015-00000301"),  # code doc, EC chosen
    "wrong_endpoint": (403, "AccessDenied", "0003-00001403"),  # code doc, EC chosen
    "invalid_argument": (400, "InvalidArgument", "0016-00000001"),  # EC chosen
    "no_key": (404, "NoSuchKey", "0026-00000001"),  # doc
    # PutObject with x-oss-forbid-overwrite over an existing key: code and status doc, EC chosen.
    "object_exists": (409, "FileAlreadyExists", "0026-00000011"),
    "bad_digest": (400, "InvalidDigest", "0016-00000202"),  # code doc, EC chosen
    "domain_invalid": (400, "InvalidArgument", "0018-00000401"),  # EC doc, code chosen
    "cname_exists": (409, "CnameAlreadyExists", "0018-00000002"),  # code doc, EC chosen
    "need_verify": (400, "NeedVerifyDomainOwnership", "0018-00000301"),  # code doc, rest chosen
    "no_token": (404, "NoSuchCnameToken", "0018-00000302"),  # chosen
    "no_cname": (404, "NoSuchCname", "0018-00000102"),  # code and status doc, EC chosen
    "cert_id_too_long": (400, "InvalidArgument", "0018-00000206"),  # EC doc, code chosen
    "previous_cert": (400, "InvalidArgument", "0018-00000209"),  # EC doc, code chosen
    "key_without_cert": (400, "InvalidArgument", "0018-00000210"),  # EC doc, code chosen
    "cert_without_key": (400, "InvalidArgument", "0018-00000211"),  # chosen
    "cert_unknown": (400, "InvalidArgument", "0018-00000212"),  # chosen
    "cert_not_covering": (400, "InvalidArgument", "0018-00000213"),  # chosen
    "cert_unparsable": (400, "InvalidArgument", "0018-00000214"),  # chosen
    "cert_key_mismatch": (400, "InvalidArgument", "0018-00000215"),  # chosen
    "cert_revoked": (400, "InvalidArgument", "0018-00000216"),  # chosen
    "cert_both": (400, "InvalidArgument", "0018-00000217"),  # chosen
    # Bucket policies: EC documented, Code strings UNCONFIRMED (chosen).
    "policy_too_large": (400, "PolicyTooLarge", "0030-00000001"),
    "policy_field_too_long": (400, "InvalidPolicyDocument", "0030-00000003"),
    "policy_syntax": (400, "InvalidPolicyDocument", "0030-00000005"),
    "policy_source_ip": (400, "InvalidPolicyDocument", "0030-00000008"),
    "no_policy": (404, "NoSuchBucketPolicy", "0031-00000001"),  # code doc, EC chosen
    "not_implemented": (400, "NotImplemented", "0000-00000000"),
    "invalid_tag": (400, "InvalidTag", "0017-00000101"),  # code doc, EC chosen
}


def oss_error(kind: str, message: str) -> ServiceError:
    """The ServiceError of `ERRORS[kind]` with `message`."""
    status, code, ec = ERRORS[kind]
    return ServiceError(status, code, message, ec=ec)
