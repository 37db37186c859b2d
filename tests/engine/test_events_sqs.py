"""The events loop end to end: the SQS adapter on moto's SQS server over HTTP, a recording handler.

The queue's visibility timeout is 1 s and the long poll 1 s, so a message left in the queue
comes back within the test's time.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import boto3
import pytest
import structlog

from lakecircle.adapters.sqs import SqsEventQueue
from lakecircle.core.events import DefinitionsPlace, EventKind, EventResult
from lakecircle.core.queue_url import QueueUrl, parse_queue_url
from lakecircle.engine.events import EventLoop
from tests.builders import EVENT_ACCOUNT, cloudtrail, notification, sns
from tests.conftest import MOTO_REGION

pytestmark = pytest.mark.anyio

PLACE = DefinitionsPlace("acme-lakecircle", "lifecycle/definition/")
NAME = "lakecircle-events"


@pytest.fixture
def sqs(moto: str) -> Any:
    return boto3.client("sqs", region_name=MOTO_REGION)


def create_queue(sqs: Any) -> QueueUrl:
    url = sqs.create_queue(QueueName=NAME, Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    return parse_queue_url(url)


def left_in(sqs: Any, queue: QueueUrl) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


class Handler:
    """Records what it is asked; fails each bucket of ``fail_once`` the first time it is asked."""

    def __init__(self, *fail_once: str) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail_once = set(fail_once)

    async def definitions_changed(self) -> None:
        self.calls.append(("definitions",))

    async def bucket_changed(self, account: str | None, bucket: str) -> None:
        self.calls.append(("bucket", str(account), bucket))
        if bucket in self.fail_once:
            self.fail_once.discard(bucket)
            raise RuntimeError("the schedule is full")


class Observer:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.readable: list[bool] = []

    def event_counted(self, kind: EventKind, result: EventResult, count: int) -> None:
        key = (str(kind), str(result))
        self.counts[key] = self.counts.get(key, 0) + count

    def events_readable(self, readable: bool) -> None:
        self.readable.append(readable)


async def run_until(loop: EventLoop, done: Any, *, seconds: float = 8) -> None:
    """Run ``loop`` until ``done()`` holds (checked between its steps)."""
    with anyio.fail_after(seconds):
        while not done():
            if not await loop.step():
                await anyio.sleep(loop.backoff())


async def test_bucket_and_definitions_events_are_handed_over_and_every_message_deleted(sqs: Any) -> None:
    queue = create_queue(sqs)
    bodies = [
        cloudtrail("PutBucketLifecycle", "acme-logs"),
        sns(notification(("ObjectCreated:Put", "acme-lakecircle", "lifecycle/definition/team+a.toml"))),
        "{not json",
        cloudtrail("PutObject", "acme-logs"),
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=queue.url, MessageBody=body if isinstance(body, str) else json.dumps(body))
    handler, observer = Handler(), Observer()

    async with SqsEventQueue(queue, wait_seconds=1, region=MOTO_REGION) as sqs_queue:
        loop = EventLoop(sqs_queue, handler, definitions=PLACE, observers=[observer])
        await run_until(loop, lambda: sum(observer.counts.values()) == 4)

    assert sorted(handler.calls) == [("bucket", EVENT_ACCOUNT, "acme-logs"), ("definitions",)]
    assert observer.counts == {
        ("bucket", "handled"): 1,
        ("definitions", "handled"): 1,
        ("malformed", "ignored"): 1,
        ("unknown", "ignored"): 1,
    }
    assert observer.readable == [True]
    assert left_in(sqs, queue) == 0


async def test_a_message_whose_handler_failed_comes_back_after_the_visibility_timeout(sqs: Any) -> None:
    queue = create_queue(sqs)
    sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(cloudtrail(bucket="acme-logs")))
    handler, observer = Handler("acme-logs"), Observer()

    async with SqsEventQueue(queue, wait_seconds=1, region=MOTO_REGION) as sqs_queue:
        loop = EventLoop(sqs_queue, handler, definitions=PLACE, observers=[observer])
        await run_until(loop, lambda: observer.counts.get(("bucket", "failed")) == 1)
        assert left_in(sqs, queue) == 1  # not deleted: invisible for its timeout
        await run_until(loop, lambda: observer.counts.get(("bucket", "handled")) == 1)

    assert handler.calls == [("bucket", EVENT_ACCOUNT, "acme-logs")] * 2
    assert left_in(sqs, queue) == 0


async def test_a_queue_that_cannot_be_read_warns_once_and_recovers_when_it_can(sqs: Any, moto: str) -> None:
    queue = parse_queue_url(f"{moto}/123456789012/{NAME}")  # not created yet
    sqs_queue = SqsEventQueue(queue, wait_seconds=1, region=MOTO_REGION)
    handler, observer = Handler(), Observer()
    loop = EventLoop(sqs_queue, handler, definitions=PLACE, observers=[observer], first_backoff=0.05)

    with structlog.testing.capture_logs() as logs:
        async with sqs_queue:
            await run_until(loop, lambda: loop.failures >= 3)
            assert create_queue(sqs) == queue
            sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(cloudtrail(bucket="acme-logs")))
            await run_until(loop, lambda: bool(handler.calls))

    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [entry["event"] for entry in warnings] == ["events_unreadable"]
    assert warnings[0]["queue"] == queue.url
    assert "no such queue: check LCC_EVENTS_QUEUE" in warnings[0]["error"]
    assert "testing" not in json.dumps(warnings[0])  # the credentials' key and secret are "testing"
    assert [entry["event"] for entry in logs if entry["event"] == "events_readable"] == ["events_readable"]
    assert observer.readable == [False, True]
    assert handler.calls == [("bucket", EVENT_ACCOUNT, "acme-logs")]
