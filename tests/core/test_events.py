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
from tests.builders import EVENT_ACCOUNT as ACCOUNT
from tests.builders import EVENT_ROLE as ROLE
from tests.builders import cloudtrail, notification, sns

PLACE = DefinitionsPlace("acme-lakecircle", "lifecycle/definition/")


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
