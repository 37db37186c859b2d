"""What an S3-compatible server answers NotImplemented to becomes one sentence naming the server and the feature."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from lakecircle import errors
from lakecircle.adapters.s3.errors import Server, map_error

ENDPOINT = "http://127.0.0.1:8333"


def not_implemented(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {
                "Code": "NotImplemented",
                "Message": "A header you provided implies functionality that is not implemented",
            },
            "ResponseMetadata": {"RequestId": "REQ501", "HTTPStatusCode": 501},
        },
        operation,
    )


def lifecycle(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"Bucket": "media", "LifecycleConfiguration": {"Rules": list(rules)}}


def mapped(operation: str, params: dict[str, Any], endpoint: str | None = ENDPOINT) -> str:
    error = map_error(not_implemented(operation), operation=operation, server=Server(endpoint, params))
    assert isinstance(error, errors.NotImplementedByServer)
    assert error.bucket == params.get("Bucket")
    assert not isinstance(error, errors.TransientError)
    return str(error)


def test_transitions_are_named_with_their_rules_and_what_to_change() -> None:
    text = mapped(
        "PutBucketLifecycleConfiguration",
        lifecycle(
            {"ID": "archive", "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]},
            {"ID": "keep", "Expiration": {"Days": 3}},
            {"ID": "old", "NoncurrentVersionTransitions": [{"NoncurrentDays": 30, "StorageClass": "GLACIER"}]},
        ),
    )

    assert text == (
        "bucket media: PutBucketLifecycleConfiguration failed [NotImplemented]: the S3 server at"
        f" {ENDPOINT} does not implement lifecycle transitions and noncurrent version transitions"
        " (transitions in rule(s) 'archive'; noncurrent version transitions in rule(s) 'old'): remove the"
        " transitions and noncurrent version transitions from the bucket's definition, or manage the bucket"
        " on a server that implements them (request id REQ501)"
    )


def test_a_configuration_without_transitions_says_part_of_it_is_not_implemented() -> None:
    text = mapped("PutBucketLifecycleConfiguration", lifecycle({"ID": "keep", "Expiration": {"Days": 3}}), None)

    assert "the S3 server does not implement part of this lifecycle configuration" in text
    assert "(A header you provided implies functionality that is not implemented)" in text


def test_another_operation_is_named_as_what_the_server_lacks() -> None:
    text = mapped("GetBucketTagging", {"Bucket": "media"})

    assert f"the S3 server at {ENDPOINT} does not implement GetBucketTagging" in text
    assert "use a server that implements it" in text
