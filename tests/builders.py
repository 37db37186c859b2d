"""The builders every kind of test needs: a lifecycle rule, a definition file, and an
observer that records an S3 adapter's requests by their metric labels.

A test says only what matters to it: ``rule("old", 5)`` is an enabled rule ``old`` that
expires every object after 5 days; ``definition("bkt", rule("a"), rule("b"))`` is the TOML
a user would write for bucket ``bkt`` with those two rules. Anything else is given in the
spelling of the S3 API and the definition files (``Status="Disabled"``, ``Filter={...}``,
``Ownership="shared"``), so a test reads like the document it stands for.

The file is written the way the README shows definitions: one
``[[LifecycleConfiguration.Rules]]`` table per rule, its parts as inline tables. The
tests of the parser itself write their TOML by hand, since a builder cannot spell a
mistake (ARCHITECTURE.md, Testing).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from lakecircle import errors
from lakecircle.core.model import BucketDefinition, LifecycleConfig, Rule
from lakecircle.core.selectors import Ownership, Selector
from lakecircle.service.metrics import outcome_of, reason_of


def rule(rule_id: str | None = "r", days: int = 30, prefix: str | None = "", **wire: Any) -> Rule:
    """An enabled rule that expires the objects under ``prefix`` after ``days`` days.

    ``rule_id=None``: a rule without an ID. ``prefix=None``: an empty ``Filter {}``
    (every object, S3's newer spelling). ``wire`` keys, in the S3 API's spelling, replace
    or add parts: ``Expiration=None`` leaves the expiration out, ``Filter={...}`` replaces
    the filter, ``Status="Disabled"`` disables the rule.
    """
    body: dict[str, Any] = {
        "ID": rule_id,
        "Status": "Enabled",
        "Filter": {} if prefix is None else {"Prefix": prefix},
        "Expiration": {"Days": days},
    }
    return Rule.model_validate(body | wire)


def definition(bucket: str, *rules: Rule, **keys: Any) -> bytes:
    """A definition file giving ``bucket`` exactly ``rules`` (none: ``Rules = []``, delete its configuration).

    ``keys`` are top-level keys of the file, in its spelling: ``Ownership="shared"``,
    ``TransitionDefaultMinimumObjectSize="varies_by_storage_class"``, or a key LakeCircle
    does not know. A key given None is left out; ``LifecycleConfiguration=None`` writes a
    file that has no rules key at all.
    """
    head = {"BucketName": bucket} | keys
    text = "".join(f"{key} = {_inline(value)}\n" for key, value in head.items() if value is not None)
    if "LifecycleConfiguration" in keys:
        return text.encode()
    if not rules:
        return (text + "[LifecycleConfiguration]\nRules = []\n").encode()
    for one in rules:
        text += "[[LifecycleConfiguration.Rules]]\n"
        text += "".join(f"{key} = {_inline(value)}\n" for key, value in one.to_wire().items())
    return text.encode()


def fleet(match: list[str], *rules: Rule, **keys: Any) -> bytes:
    """A selector definition file: ``BucketMatch = match`` giving ``rules`` to every bucket it
    selects; ``keys`` as in :func:`definition` (``BucketTags={"class": "x"}``, ``Ownership=...``)."""
    return definition("", *rules, BucketName=None, BucketMatch=match, **keys)


def _inline(value: Any) -> str:
    """``value`` as a TOML value on one line: tables and arrays inline, strings escaped."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    return str(value)


def selector(
    *match: str,
    exclude: tuple[str, ...] = (),
    tags: dict[str, str] | None = None,
    rules: tuple[Rule, ...] = (),
    ownership: Ownership = Ownership.SHARED,
    tdmos: str | None = None,
    file: str = "fleet.toml",
    where: str = "",
) -> Selector:
    """A selector as the parser gives it: ``selector("*-logs", exclude=("legal-*",))`` selects
    every ``-logs`` bucket but the legal ones, with ``rules`` (none by default)."""
    return Selector(
        file=file,
        where=where,
        match=match,
        exclude=exclude,
        tags=tuple(sorted((tags or {}).items())),
        ownership=ownership,
        config=LifecycleConfig(rules, tdmos),
    )


def exact_definition(
    *rules: Rule, bucket: str = "web-logs", tdmos: str | None = None, ownership: str | None = None
) -> BucketDefinition:
    """A parsed ``BucketName`` definition of ``bucket`` with ``rules``, all from ``<bucket>.toml``."""
    file = f"{bucket}.toml"
    return BucketDefinition(bucket, LifecycleConfig(rules, tdmos), (file,), (file,) * len(rules), ownership)


class RecordingObserver:
    """An S3 adapter's request observer that keeps each attempt and retry as the metrics
    would label it: ``(operation, outcome, seconds)`` and ``(operation, reason, delay)``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, float]] = []
        self.retries: list[tuple[str, str, float]] = []

    def observe_request(self, operation: str, error: Exception | None, seconds: float) -> None:
        self.requests.append((operation, outcome_of(error), seconds))

    def observe_retry(self, operation: str, error: errors.TransientError, delay: float) -> None:
        self.retries.append((operation, reason_of(error), delay))


# -- messages of the events queue, in the shapes AWS documents ------------------------------

EVENT_ACCOUNT = "111122223333"
EVENT_ROLE = "arn:aws:sts::111122223333:assumed-role/admin/jane"


def cloudtrail(call: str = "PutBucketLifecycle", bucket: str = "acme-logs", **detail: Any) -> dict[str, Any]:
    """An EventBridge event of a CloudTrail management call on S3, as EventBridge delivers it."""
    event: dict[str, Any] = {
        "version": "0",
        "id": "6f2b1f0e-7c1d-4c4e-9c55-2f1d3c4b5a69",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "account": EVENT_ACCOUNT,
        "time": "2026-11-29T12:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "arn": EVENT_ROLE, "accountId": EVENT_ACCOUNT},
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
            "recipientAccountId": EVENT_ACCOUNT,
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
