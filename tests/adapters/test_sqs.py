"""The events queue over SQS: against moto's SQS server over HTTP, and a stub client where moto can't show it."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import anyio
import boto3
import pytest
from botocore.exceptions import ClientError

from lakecircle import errors
from lakecircle.adapters.retry import RetryPolicy
from lakecircle.adapters.s3.transport import S3Transport
from lakecircle.adapters.sqs import BATCH, WAIT_SECONDS, SqsEventQueue
from lakecircle.core.queue_url import QueueUrl, parse_queue_url
from lakecircle.ports import EventQueue, QueueMessage
from tests.builders import RecordingObserver
from tests.conftest import MOTO_REGION

pytestmark = pytest.mark.anyio


@pytest.fixture
def sqs(moto: str) -> Any:
    """A plain boto3 SQS client on the moto server, for arranging and inspecting the queue."""
    return boto3.client("sqs", region_name=MOTO_REGION)


@pytest.fixture
def queue_url(sqs: Any) -> QueueUrl:
    """A fresh queue whose messages come back 1 s after a receive that did not delete them."""
    url = sqs.create_queue(QueueName="lakecircle-events", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    return parse_queue_url(url)


def events_queue(queue: QueueUrl, *, wait_seconds: int = 1, **options: Any) -> SqsEventQueue:
    return SqsEventQueue(queue, wait_seconds=wait_seconds, region=MOTO_REGION, **options)


def test_the_sqs_queue_is_an_event_queue(queue_url: QueueUrl) -> None:
    queue: EventQueue = events_queue(queue_url)

    assert queue.location == queue_url.url


async def test_receive_returns_a_batch_of_at_most_ten_with_their_bodies(sqs: Any, queue_url: QueueUrl) -> None:
    for index in range(15):
        sqs.send_message(QueueUrl=queue_url.url, MessageBody=f"body {index}")

    async with events_queue(queue_url) as queue:
        first = await queue.receive()
        second = await queue.receive()

    assert len(first) == BATCH
    assert len(second) == 5
    assert sorted(m.body for m in first + second) == sorted(f"body {i}" for i in range(15))
    assert all(m.id and m.receipt for m in first + second)


async def test_a_receive_waits_for_a_message_sent_during_its_long_poll(sqs: Any, queue_url: QueueUrl) -> None:
    sender = threading.Timer(0.3, lambda: sqs.send_message(QueueUrl=queue_url.url, MessageBody="late"))
    async with events_queue(queue_url, wait_seconds=5) as queue:
        started = time.monotonic()
        sender.start()
        messages = await queue.receive()
        waited = time.monotonic() - started
    sender.join()

    assert [m.body for m in messages] == ["late"]
    assert 0.25 < waited < 4


async def test_an_empty_queue_answers_nothing_after_the_wait(queue_url: QueueUrl) -> None:
    async with events_queue(queue_url, wait_seconds=0) as queue:
        assert await queue.receive() == []


async def test_deleted_messages_never_come_back_and_others_do_after_the_visibility_timeout(
    sqs: Any, queue_url: QueueUrl
) -> None:
    for index in range(12):
        sqs.send_message(QueueUrl=queue_url.url, MessageBody=f"m{index}")
    async with events_queue(queue_url) as queue:
        received = await queue.receive() + await queue.receive()
        kept = [m for m in received if m.body == "m3"]
        left = await queue.delete([m for m in received if m.body != "m3"])  # 11 messages: two requests
        await anyio.sleep(1.1)
        again = await queue.receive()

    assert len(received) == 12
    assert left == []
    assert [m.body for m in again] == [m.body for m in kept]


async def test_a_message_sqs_does_not_delete_is_returned_with_its_reason(sqs: Any, queue_url: QueueUrl) -> None:
    sqs.send_message(QueueUrl=queue_url.url, MessageBody="real")
    async with events_queue(queue_url) as queue:
        (real,) = await queue.receive()
        bogus = QueueMessage("x", "not-a-receipt", "")
        left = await queue.delete([real, bogus])

    assert [n.message for n in left] == [bogus]
    assert "ReceiptHandleIsInvalid" in left[0].reason


async def test_a_queue_that_does_not_exist_is_an_error_naming_it_and_what_to_check(
    moto: str, queue_url: QueueUrl
) -> None:
    missing = parse_queue_url(queue_url.url.replace("lakecircle-events", "no-such-queue"))

    async with events_queue(missing) as queue:
        with pytest.raises(errors.EventQueueError) as caught:
            await queue.receive()
        left = await queue.delete([QueueMessage("1", "r", "")])

    assert caught.value.queue == missing.url
    assert caught.value.operation == "ReceiveMessage"
    assert not caught.value.transient
    assert f"the events queue {missing.url}: ReceiveMessage failed [" in str(caught.value)
    assert "no such queue: check LCC_EVENTS_QUEUE" in str(caught.value)
    assert len(left) == 1
    assert "DeleteMessageBatch failed" in left[0].reason


class Refusing:
    """A stub SQS client that answers every request with one error, and records what it was asked."""

    def __init__(self, code: str, status: int) -> None:
        self.code, self.status = code, status
        self.asked: list[dict[str, Any]] = []

    async def receive_message(self, **params: Any) -> dict[str, Any]:
        self.asked.append(params)
        error = {
            "Error": {"Code": self.code, "Message": "refused"},
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }
        raise ClientError(error, "ReceiveMessage")


def stubbed(client: Any, **options: Any) -> SqsEventQueue:
    queue = parse_queue_url("https://sqs.eu-west-1.amazonaws.com/123456789012/q")
    return SqsEventQueue(queue, client_factory=lambda service, region: contextlib.nullcontext(client), **options)


async def test_a_receive_is_a_long_poll_of_ten_in_the_queues_own_region() -> None:
    client = Refusing("AccessDenied", 403)
    queue = stubbed(client)
    async with queue:
        with pytest.raises(errors.EventQueueError):
            await queue.receive()

    assert queue.region == "eu-west-1"
    assert client.asked == [
        {
            "QueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
            "MaxNumberOfMessages": 10,
            "WaitTimeSeconds": 20,
        }
    ]
    assert WAIT_SECONDS == 20


async def test_a_denied_receive_says_which_permissions_the_role_needs() -> None:
    async with stubbed(Refusing("AccessDenied", 403)) as queue:
        with pytest.raises(errors.EventQueueError) as caught:
            await queue.receive()

    assert "[AccessDenied]" in str(caught.value)
    assert "sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes" in str(caught.value)


async def test_a_throttled_receive_is_tried_once_and_said_to_pass() -> None:
    client = Refusing("ThrottlingException", 400)
    async with stubbed(client, retry=RetryPolicy(max_attempts=5)) as queue:
        with pytest.raises(errors.EventQueueError) as caught:
            await queue.receive()

    assert caught.value.transient
    assert len(client.asked) == 1  # the events loop backs off, not the request


async def test_a_queue_beside_the_s3_transport_has_its_own_gate_and_no_observer_limits_or_slots() -> None:
    observer = RecordingObserver()
    transport = S3Transport(region="us-east-1", observer=observer, max_requests_per_second=1.0, read_timeout=5)
    queue = SqsEventQueue.beside(transport, parse_queue_url("https://sqs.eu-west-1.amazonaws.com/123456789012/q"))

    assert queue.region == "eu-west-1"
    assert queue.observer is None
    assert queue.slots is None
    assert queue.gate is not transport.gate
    assert queue.attempt_timeout >= WAIT_SECONDS + 30  # a long poll is never cut for waiting


def test_a_queue_without_a_region_in_its_url_needs_one() -> None:
    with pytest.raises(ValueError, match="region"):
        SqsEventQueue(parse_queue_url("http://127.0.0.1:4566/000000000000/q"))
