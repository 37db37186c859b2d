"""Messages of the events queue read into what they ask: tables of real message shapes.

The samples follow the shapes AWS documents: EventBridge's "AWS API Call via CloudTrail"
events for aws.s3 (the CloudTrail record under ``detail``) and S3's event notification
structure (``Records[].s3``, keys URL-encoded with ``+`` for a space), each possibly inside
an SNS notification envelope.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lakecircle.core.events import (
    BUCKET_CALLS,
    MAX_BODY_BYTES,
    BucketChange,
    DefinitionsPlace,
    Event,
    EventKind,
    parse_message,
)

PLACE = DefinitionsPlace("acme-lakecircle", "lifecycle/definition/")
ACCOUNT = "111122223333"
ROLE = "arn:aws:sts::111122223333:assumed-role/admin/jane"


def cloudtrail(call: str = "PutBucketLifecycle", bucket: str = "acme-logs", **detail: Any) -> dict[str, Any]:
    """An EventBridge event of a CloudTrail management call on S3, as EventBridge delivers it."""
    event: dict[str, Any] = {
        "version": "0",
        "id": "6f2b1f0e-7c1d-4c4e-9c55-2f1d3c4b5a69",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2026-11-29T12:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "arn": ROLE, "accountId": ACCOUNT},
            "eventTime": "2026-11-29T12:00:00Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": call,
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "203.0.113.7",
            "userAgent": "[aws-cli/2.15.0]",
            "requestParameters": {
                "bucketName": bucket,
                "Host": f"{bucket}.s3.eu-west-1.amazonaws.com",
                "lifecycle": "",
            },
            "responseElements": None,
            "requestID": "C3D13FE58DE4C810",
            "eventID": "3a2b1c0d-0000-4000-8000-000000000001",
            "readOnly": False,
            "resources": [{"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}],
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        },
    }
    event["detail"].update(detail)
    return event


def notification(*records: tuple[str, str, str]) -> dict[str, Any]:
    """An S3 event notification with one record per (event name, bucket, URL-encoded key)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "eu-west-1",
                "eventTime": "2026-11-29T12:00:00.000Z",
                "eventName": name,
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "203.0.113.7"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "lakecircle-definitions",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": key,
                        "size": 1024,
                        "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
            for name, bucket, key in records
        ]
    }


def sns(inner: dict[str, Any]) -> dict[str, Any]:
    """``inner`` as an SNS topic delivers it to a queue without raw message delivery."""
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:lakecircle",
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(inner),
        "Timestamp": "2026-11-29T12:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }


TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2026-11-29T12:00:00.000Z",
    "Bucket": "acme-lakecircle",
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}


def change(call: str = "PutBucketLifecycle", bucket: str = "acme-logs", **fields: Any) -> Event:
    values: dict[str, Any] = {"account": ACCOUNT, "region": "eu-west-1", "caller": ROLE, **fields}
    return Event(EventKind.BUCKET, change=BucketChange(bucket, call=call, **values))


@pytest.mark.parametrize("call", sorted(BUCKET_CALLS))
def test_each_bucket_call_asks_for_its_bucket_to_be_verified(call: str) -> None:
    assert parse_message(json.dumps(cloudtrail(call)), PLACE) == change(call)


def without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    event = copy.deepcopy(event)
    target = event
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return event


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            without(cloudtrail(), "detail", "recipientAccountId"),
            change(),
            id="the account comes from the event when the record has no recipient",
        ),
        pytest.param(
            without(without(cloudtrail(), "detail", "recipientAccountId"), "account"),
            change(account=None),
            id="an event without any account asks for the bucket all the same",
        ),
        pytest.param(
            cloudtrail(recipientAccountId="444455556666"),
            change(account="444455556666"),
            id="the bucket owner (recipient) wins over the bus the event came through",
        ),
        pytest.param(
            without(cloudtrail(), "detail", "awsRegion"),
            change(),
            id="the region comes from the event when the record has none",
        ),
        pytest.param(
            cloudtrail(awsRegion="Mars", userIdentity={"type": "Root"}),
            change(caller=None),
            id="a region that is no region code and a caller without an ARN are left out",
        ),
        pytest.param(sns(cloudtrail()), change(), id="an EventBridge event inside an SNS envelope"),
    ],
)
def test_a_bucket_events_fields_come_from_where_aws_puts_them(message: dict[str, Any], expected: Event) -> None:
    assert parse_message(json.dumps(message), PLACE) == expected


@pytest.mark.parametrize(
    ("message", "kind", "fragment"),
    [
        pytest.param(cloudtrail(errorCode="AccessDenied"), EventKind.BUCKET, "failed", id="a call that failed"),
        pytest.param(
            cloudtrail(bucket="Legacy_Bucket"),
            EventKind.BUCKET,
            "not a bucket LakeCircle manages",
            id="a bucket whose name LakeCircle cannot manage",
        ),
        pytest.param(cloudtrail("GetBucketLifecycle"), EventKind.UNKNOWN, "GetBucketLifecycle", id="a read call"),
        pytest.param(cloudtrail("PutObject"), EventKind.UNKNOWN, "PutObject", id="a data call"),
        pytest.param(
            cloudtrail(eventSource="s3express.amazonaws.com"),
            EventKind.UNKNOWN,
            "changes no bucket",
            id="a call of another service",
        ),
        pytest.param(
            {**cloudtrail(), "source": "aws.ec2"}, EventKind.UNKNOWN, "aws.ec2", id="an event from another source"
        ),
        pytest.param(
            {**cloudtrail(), "detail-type": "Object Created"},
            EventKind.UNKNOWN,
            "Object Created",
            id="S3's own EventBridge events",
        ),
    ],
)
def test_a_bucket_event_that_changed_nothing_asks_for_nothing(
    message: dict[str, Any], kind: EventKind, fragment: str
) -> None:
    event = parse_message(json.dumps(message), PLACE)

    assert (event.kind, event.actionable) == (kind, False)
    assert fragment in event.reason


@pytest.mark.parametrize(
    ("records", "keys"),
    [
        pytest.param(
            [("ObjectCreated:Put", "acme-lakecircle", "lifecycle/definition/logs.toml")],
            ("lifecycle/definition/logs.toml",),
            id="a definition uploaded",
        ),
        pytest.param(
            [("ObjectRemoved:Delete", "acme-lakecircle", "lifecycle/definition/team/a.toml")],
            ("lifecycle/definition/team/a.toml",),
            id="a definition deleted in a folder",
        ),
        pytest.param(
            [("ObjectRemoved:DeleteMarkerCreated", "acme-lakecircle", "lifecycle/definition/a.toml")],
            ("lifecycle/definition/a.toml",),
            id="a delete marker on a versioned bucket",
        ),
        pytest.param(
            [
                (
                    "ObjectCreated:CompleteMultipartUpload",
                    "acme-lakecircle",
                    "lifecycle/definition/my+team%2Bops%C3%A9.toml",
                )
            ],
            ("lifecycle/definition/my team+opsé.toml",),
            id="a key is decoded: plus is a space, percent escapes are bytes of UTF-8",
        ),
        pytest.param(
            [
                ("ObjectCreated:Copy", "acme-lakecircle", "lifecycle/definition/a.toml"),
                ("ObjectCreated:Put", "other-bucket", "lifecycle/definition/b.toml"),
                ("ObjectCreated:Put", "acme-lakecircle", "lifecycle/definition/a.toml"),
            ],
            ("lifecycle/definition/a.toml",),
            id="records of other buckets are left out and a key counts once",
        ),
    ],
)
def test_a_definition_file_created_or_removed_asks_for_a_reload(
    records: list[tuple[str, str, str]], keys: tuple[str, ...]
) -> None:
    assert parse_message(json.dumps(notification(*records)), PLACE) == Event(EventKind.DEFINITIONS, keys=keys)


def test_a_notification_inside_an_sns_envelope_is_read_as_it_would_be_alone() -> None:
    message = notification(("ObjectCreated:Put", "acme-lakecircle", "lifecycle/definition/a.toml"))

    assert parse_message(json.dumps(sns(message)), PLACE) == parse_message(json.dumps(message), PLACE)


@pytest.mark.parametrize(
    ("message", "place", "kind", "fragment"),
    [
        pytest.param(TEST_EVENT, PLACE, EventKind.DEFINITIONS, "test event", id="S3's test event"),
        pytest.param(sns(TEST_EVENT), PLACE, EventKind.DEFINITIONS, "test event", id="S3's test event through SNS"),
        pytest.param(
            {**TEST_EVENT, "Bucket": "other"},
            PLACE,
            EventKind.UNKNOWN,
            "another bucket",
            id="the test event of another bucket",
        ),
        pytest.param(
            notification(("ObjectCreated:Put", "acme-lakecircle", "lifecycle/definition/README.md")),
            PLACE,
            EventKind.DEFINITIONS,
            "not a definition file",
            id="a file under the prefix that is no definition",
        ),
        pytest.param(
            notification(("ObjectCreated:Put", "acme-lakecircle", "lifecycle/history/2026/a.json")),
            PLACE,
            EventKind.UNKNOWN,
            "not under the definitions",
            id="LakeCircle's own records",
        ),
        pytest.param(
            notification(("ObjectCreated:Put", "other-bucket", "lifecycle/definition/a.toml")),
            PLACE,
            EventKind.UNKNOWN,
            "not under the definitions",
            id="the same prefix in another bucket",
        ),
        pytest.param(
            notification(("ObjectTagging:Put", "acme-lakecircle", "lifecycle/definition/a.toml")),
            PLACE,
            EventKind.UNKNOWN,
            "ObjectTagging:Put",
            id="an event that changes no file's content",
        ),
        pytest.param(
            notification(("ObjectCreated:Put", "acme-lakecircle", "lifecycle/definition/a.toml")),
            None,
            EventKind.UNKNOWN,
            "not read from S3",
            id="definitions read from a local folder",
        ),
        pytest.param({"hello": "world"}, PLACE, EventKind.UNKNOWN, "neither", id="another JSON object"),
    ],
)
def test_a_message_that_changes_no_definition_asks_for_nothing(
    message: dict[str, Any], place: DefinitionsPlace | None, kind: EventKind, fragment: str
) -> None:
    event = parse_message(json.dumps(message), place)

    assert (event.kind, event.actionable, event.keys) == (kind, False, ())
    assert fragment in event.reason


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param("", "not JSON", id="an empty body"),
        pytest.param("hello", "not JSON", id="plain text"),
        pytest.param('{"Records": [', "not JSON", id="JSON cut short"),
        pytest.param("[1, 2]", "not a JSON object", id="a JSON array"),
        pytest.param("null", "not a JSON object", id="JSON null"),
        pytest.param(deep(100_000), "not JSON", id="JSON nested too deep to read"),
        pytest.param(" " * (MAX_BODY_BYTES + 1), "over", id="a body over the limit"),
        pytest.param("é" * (MAX_BODY_BYTES // 2 + 1), "over", id="a body over the limit in bytes, not characters"),
        pytest.param(json.dumps({"Records": []}), "Records", id="no records"),
        pytest.param(json.dumps({"Records": "x"}), "Records", id="records that are no list"),
        pytest.param(json.dumps({"Records": [1]}), "Records[0]", id="a record that is no object"),
        pytest.param(json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}), "Records[0].s3", id="no s3"),
        pytest.param(
            json.dumps(without(notification(("ObjectCreated:Put", "b", "k")), "Records")),
            "neither",
            id="(control) an object without Records is unknown, not malformed",
        ),
        pytest.param(
            json.dumps(notification(("ObjectCreated:Put", "acme-lakecircle", 7))),  # type: ignore[arg-type]
            "s3.object.key",
            id="a key that is no string",
        ),
        pytest.param(json.dumps({**cloudtrail(), "detail": "x"}), "detail", id="a detail that is no object"),
        pytest.param(json.dumps(without(cloudtrail(), "detail", "eventName")), "eventName", id="no eventName"),
        pytest.param(
            json.dumps(without(cloudtrail(), "detail", "requestParameters")),
            "requestParameters",
            id="no requestParameters",
        ),
        pytest.param(json.dumps(cloudtrail(requestParameters={"Host": "x"})), "bucketName", id="no bucketName"),
        pytest.param(json.dumps(cloudtrail(recipientAccountId="12345")), "12-digit", id="an account of 5 digits"),
        pytest.param(json.dumps(cloudtrail(recipientAccountId=111122223333)), "12-digit", id="an account as a number"),
        pytest.param(json.dumps({**sns(TEST_EVENT), "Message": 5}), "SNS", id="an SNS envelope without a message"),
        pytest.param(json.dumps({**sns(TEST_EVENT), "Message": "not json"}), "not JSON", id="an SNS message not JSON"),
    ],
)
def test_a_malformed_message_says_why_and_asks_for_nothing(body: str, fragment: str) -> None:
    event = parse_message(body, PLACE)

    if fragment == "neither":
        assert event.kind is EventKind.UNKNOWN
    else:
        assert (event.kind, event.actionable) == (EventKind.MALFORMED, False)
    assert fragment in event.reason


def test_an_sns_envelope_is_opened_once_only() -> None:
    event = parse_message(json.dumps(sns(sns(cloudtrail()))), PLACE)

    assert (event.kind, event.actionable) == (EventKind.UNKNOWN, False)


def test_a_reason_shows_a_hostile_value_escaped_and_short() -> None:
    event = parse_message(json.dumps(cloudtrail("Put\nBucket\x1b[31m" + "x" * 500)), PLACE)

    assert "\n" not in event.reason
    assert "\x1b" not in event.reason
    assert len(event.reason) < 200
