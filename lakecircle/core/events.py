"""What one message of the events queue (``LCC_EVENTS_QUEUE``) asks for, read without I/O.

Two kinds of messages reach the queue (``deploy/aws/events.yaml`` routes them there):

- EventBridge events of CloudTrail management calls on S3 (source ``aws.s3``, detail-type
  ``AWS API Call via CloudTrail``): a call in :data:`BUCKET_CALLS` may have changed that
  bucket's lifecycle configuration, its tags (which selectors read) or whether it exists,
  so the bucket is to be verified at once (:attr:`EventKind.BUCKET`);
- S3 event notifications of the definitions' bucket: a ``*.toml`` key under the definition
  prefix created or removed means the definitions are to be reloaded at once, without
  waiting for the next poll (:attr:`EventKind.DEFINITIONS`). S3's ``s3:TestEvent``, sent
  when the notification is configured, asks for nothing.

Either may come wrapped in an SNS notification (a topic fanning out to the queue without
raw message delivery): the envelope is opened once. Anything else is
:attr:`EventKind.UNKNOWN` (valid JSON LakeCircle does not act on: another call, another
bucket or prefix) or :attr:`EventKind.MALFORMED` (not JSON, the wrong shapes, over
:data:`MAX_BODY_BYTES`): counted and deleted, never retried, never fatal. Delivery of these
events is best effort, so the schedule's verification of every bucket stays; an event
only brings the work forward.

Pure: a message body in, an :class:`Event` out. The engine's loop
(:mod:`lakecircle.engine.events`) hands what it asks to the daemon and deletes the message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import unquote_plus

from lakecircle.core.bucket_names import name_problems
from lakecircle.core.problems import shown

MAX_BODY_BYTES: Final = 262_144
"""The largest body read (256 KiB, an EventBridge event's and a classic SQS message's limit): a
larger one is malformed, never parsed."""

BUCKET_CALLS: Final = frozenset(
    {
        "PutBucketLifecycle",  # CloudTrail's name of PutBucketLifecycleConfiguration
        "DeleteBucketLifecycle",
        "CreateBucket",
        "DeleteBucket",
        "PutBucketTagging",
        "DeleteBucketTagging",
    }
)
"""The CloudTrail event names that ask for their bucket to be verified."""

CLOUDTRAIL_DETAIL_TYPE: Final = "AWS API Call via CloudTrail"
DEFINITION_CHANGES: Final = ("ObjectCreated:", "ObjectRemoved:")
"""The S3 notification event names (prefixes) that change a definition file."""

_ACCOUNT: Final = re.compile(r"\d{12}")
_REGION: Final = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


class EventKind(StrEnum):
    """What a message is about: the ``kind`` label of ``lakecircle_events_total``."""

    BUCKET = "bucket"
    DEFINITIONS = "definitions"
    UNKNOWN = "unknown"
    MALFORMED = "malformed"


class EventResult(StrEnum):
    """What became of a message: the ``result`` label of ``lakecircle_events_total``."""

    HANDLED = "handled"
    """Its work was handed over (a bucket queued for verification, the definitions' reload); deleted."""
    IGNORED = "ignored"
    """Nothing to do (unknown, malformed, a failed call, a test event); deleted."""
    FAILED = "failed"
    """Its work could not be handed over; not deleted, so SQS delivers it again after its visibility timeout."""


@dataclass(frozen=True, slots=True)
class BucketChange:
    """A CloudTrail call that may have changed a bucket: verify it."""

    bucket: str
    account: str | None
    """The account that owns the bucket (``detail.recipientAccountId``, else the event's ``account``)."""
    region: str | None
    """The region the call was made in (``detail.awsRegion``, else the event's ``region``)."""
    call: str
    """The CloudTrail event name (``PutBucketLifecycle``)."""
    caller: str | None = None
    """The ARN of who made the call (``detail.userIdentity.arn``), so a handler may tell its own writes."""


@dataclass(frozen=True, slots=True)
class DefinitionsPlace:
    """Where the definitions live: the bucket and key prefix S3 notifications are matched against."""

    bucket: str
    prefix: str
    """``lifecycle/definition/``: a key under it ending in ``.toml`` is a definition file."""


@dataclass(frozen=True, slots=True)
class Event:
    """What one message asks for: a bucket to verify, the definitions to reload, or nothing (``reason`` says why)."""

    kind: EventKind
    change: BucketChange | None = None
    keys: tuple[str, ...] = ()
    """The definition files created or removed (decoded keys), for :attr:`EventKind.DEFINITIONS`."""
    reason: str = ""

    @property
    def actionable(self) -> bool:
        """Whether there is work to hand over; otherwise the message is deleted as ignored."""
        return self.change is not None or bool(self.keys)


class _Malformed(Exception):
    """A message of the wrong shape: its reason."""


def parse_message(body: str, definitions: DefinitionsPlace | None) -> Event:
    """What the message ``body`` asks for; ``definitions`` is None when they are not in S3 (local files)."""
    if len(body) > MAX_BODY_BYTES or len(body.encode("utf-8", "replace")) > MAX_BODY_BYTES:
        return Event(EventKind.MALFORMED, reason=f"the body is over {MAX_BODY_BYTES:,} bytes")
    try:
        return _parse(body, definitions, envelope=True)
    except _Malformed as exc:
        return Event(EventKind.MALFORMED, reason=str(exc))


def _parse(body: str, definitions: DefinitionsPlace | None, *, envelope: bool) -> Event:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise _Malformed("the body is not JSON") from None
    if not isinstance(doc, dict):
        raise _Malformed("the body is not a JSON object")
    if envelope and doc.get("Type") == "Notification" and "TopicArn" in doc:
        message = doc.get("Message")
        if not isinstance(message, str):
            raise _Malformed("an SNS notification without a Message string")
        return _parse(message, definitions, envelope=False)
    if "detail-type" in doc or "source" in doc:
        return _cloudtrail(doc)
    if "Records" in doc:
        return _notification(doc, definitions)
    if doc.get("Event") == "s3:TestEvent":
        if definitions is not None and doc.get("Bucket") == definitions.bucket:
            return Event(EventKind.DEFINITIONS, reason="S3's test event, sent when the notification was configured")
        return Event(EventKind.UNKNOWN, reason="S3's test event of another bucket")
    return Event(EventKind.UNKNOWN, reason="neither an EventBridge event nor an S3 event notification")


def _cloudtrail(doc: Mapping[str, Any]) -> Event:
    """An EventBridge event: a bucket to verify when it is one of :data:`BUCKET_CALLS` on S3."""
    source, detail_type = doc.get("source"), doc.get("detail-type")
    if source != "aws.s3" or detail_type != CLOUDTRAIL_DETAIL_TYPE:
        return Event(EventKind.UNKNOWN, reason=f"an EventBridge event {_text(detail_type)} from {_text(source)}")
    detail = _mapping(doc.get("detail"), "detail")
    call = detail.get("eventName")
    if not isinstance(call, str):
        raise _Malformed("a CloudTrail event without an eventName")
    if call not in BUCKET_CALLS or detail.get("eventSource", "s3.amazonaws.com") != "s3.amazonaws.com":
        return Event(EventKind.UNKNOWN, reason=f"the call {_text(call)}, which changes no bucket's lifecycle")
    params = _mapping(detail.get("requestParameters"), "detail.requestParameters")
    bucket = params.get("bucketName")
    if not isinstance(bucket, str) or not bucket:
        raise _Malformed(f"a {call} event without detail.requestParameters.bucketName")
    account = _account(detail.get("recipientAccountId"), doc.get("account"))
    error = detail.get("errorCode")
    if error:
        return Event(EventKind.BUCKET, reason=f"{call} on {_text(bucket)} failed ({_text(error)}): nothing changed")
    problems = name_problems(bucket)
    if problems:
        return Event(EventKind.BUCKET, reason=f"{_text(bucket)} is not a bucket LakeCircle manages: {problems[0]}")
    regions = (detail.get("awsRegion"), doc.get("region"))
    region = next((r for r in regions if isinstance(r, str) and _REGION.fullmatch(r)), None)
    identity = detail.get("userIdentity")
    caller = identity.get("arn") if isinstance(identity, dict) else None
    change = BucketChange(bucket, account, region, call, caller if isinstance(caller, str) else None)
    return Event(EventKind.BUCKET, change=change)


def _account(*candidates: object) -> str | None:
    """The first account ID given; one that is not 12 digits makes the message malformed."""
    for value in candidates:
        if value is None or value == "":
            continue
        if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
            raise _Malformed(f"the account {_text(value)} is not a 12-digit account ID")
        return value
    return None


def _notification(doc: Mapping[str, Any], definitions: DefinitionsPlace | None) -> Event:
    """An S3 event notification: the definitions to reload when a record creates or removes one."""
    records = doc.get("Records")
    if not isinstance(records, list) or not records:
        raise _Malformed("Records is not a list of records")
    keys: list[str] = []
    ours = False
    reason = ""
    for index, raw in enumerate(records):
        record = _mapping(raw, f"Records[{index}]")
        name, bucket, key = _record(record, index)
        if record.get("eventSource", "aws:s3") != "aws:s3":
            reason = reason or f"a record from {_text(record.get('eventSource'))}"
        elif definitions is None:
            reason = reason or "an S3 notification, and the definitions are not read from S3"
        elif bucket != definitions.bucket or not key.startswith(definitions.prefix):
            reason = reason or f"an S3 notification of {_text(bucket + '/' + key)}, not under the definitions"
        elif not name.startswith(DEFINITION_CHANGES):
            reason = reason or f"the S3 event {_text(name)}, which changes no definition file"
        elif not key.endswith(".toml"):
            ours = True
            reason = reason or f"{_text(key)} is not a definition file (*.toml)"
        elif key not in keys:
            keys.append(key)
    if keys:
        return Event(EventKind.DEFINITIONS, keys=tuple(keys))
    return Event(EventKind.DEFINITIONS if ours else EventKind.UNKNOWN, reason=reason)


def _record(record: Mapping[str, Any], index: int) -> tuple[str, str, str]:
    """A record's event name, bucket and decoded key (S3 sends keys URL-encoded, a space as ``+``)."""
    name = record.get("eventName")
    s3 = _mapping(record.get("s3"), f"Records[{index}].s3")
    bucket = _mapping(s3.get("bucket"), f"Records[{index}].s3.bucket").get("name")
    key = _mapping(s3.get("object"), f"Records[{index}].s3.object").get("key")
    if not isinstance(name, str) or not isinstance(bucket, str) or not isinstance(key, str):
        raise _Malformed(f"Records[{index}] lacks eventName, s3.bucket.name or s3.object.key")
    return name, bucket, unquote_plus(key, errors="replace")


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed(f"{where} is not a JSON object")
    return value


def _text(value: object) -> str:
    """A value of the message as a log line may show it: quoted, escaped, short."""
    if value is None:
        return "(none)"
    return shown(value) if isinstance(value, str) else f"(a JSON {type(value).__name__})"
