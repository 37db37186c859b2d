"""The events loop over an in-memory queue: what is handed over, what is deleted, what is counted,
and how an unreadable queue is said, backed off from and recovered from."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
import structlog
from prometheus_client import CollectorRegistry

from lakecircle import errors
from lakecircle.core.events import DefinitionsPlace, EventKind, EventResult
from lakecircle.engine.events import EventLoop
from lakecircle.ports import NotDeleted, QueueMessage
from lakecircle.service.metrics import Metrics
from tests.builders import EVENT_ACCOUNT, cloudtrail, notification

pytestmark = pytest.mark.anyio

PLACE = DefinitionsPlace("acme-lakecircle", "lifecycle/definition/")
URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/lakecircle-events"


def message(body: str | dict[str, Any], index: int = 0) -> QueueMessage:
    text = body if isinstance(body, str) else json.dumps(body)
    return QueueMessage(f"id-{index}", f"receipt-{index}", text)


def definition(key: str = "lifecycle/definition/a.toml") -> dict[str, Any]:
    return notification(("ObjectCreated:Put", "acme-lakecircle", key))


class MemoryQueue:
    """Answers each receive from ``script`` (a batch, or an exception to raise), then cancels the loop."""

    def __init__(self, *script: Sequence[QueueMessage] | Exception) -> None:
        self.script = list(script)
        self.deleted: list[QueueMessage] = []
        self.refuse: set[str] = set()
        """Receipts whose deletion SQS refuses."""
        self.scope: anyio.CancelScope | None = None

    @property
    def location(self) -> str:
        return URL

    async def receive(self) -> list[QueueMessage]:
        if not self.script:
            assert self.scope is not None
            self.scope.cancel()
            await anyio.sleep(1)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return list(step)

    async def delete(self, messages: Sequence[QueueMessage]) -> list[NotDeleted]:
        refused = [NotDeleted(m, "[ReceiptHandleIsInvalid] no") for m in messages if m.receipt in self.refuse]
        self.deleted += [m for m in messages if m.receipt not in self.refuse]
        return refused


class Handler:
    """Records what it is asked; raises for the buckets in ``failing`` (and the definitions, when told)."""

    def __init__(self, *failing: str, definitions_fail: bool = False) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.failing = set(failing)
        self.definitions_fail = definitions_fail

    async def definitions_changed(self) -> None:
        self.calls.append(("definitions",))
        if self.definitions_fail:
            raise RuntimeError("the daemon is stopping")

    async def bucket_changed(self, account: str | None, bucket: str) -> None:
        self.calls.append(("bucket", str(account), bucket))
        if bucket in self.failing:
            raise RuntimeError(f"cannot queue {bucket}")


class Observer:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.readable: list[bool] = []

    def event_counted(self, kind: EventKind, result: EventResult, count: int) -> None:
        self.counts[str(kind), str(result)] += count

    def events_readable(self, readable: bool) -> None:
        self.readable.append(readable)


class Naps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def run(queue: MemoryQueue, handler: Handler, observer: Observer, naps: Naps | None = None) -> EventLoop:
    loop = EventLoop(queue, handler, definitions=PLACE, observers=[observer], sleep=naps or Naps())
    with anyio.fail_after(5), anyio.CancelScope() as scope:
        queue.scope = scope
        await loop.run()
    return loop


def unreadable(transient: bool = False) -> errors.EventQueueError:
    return errors.EventQueueError(
        f"the events queue {URL}: ReceiveMessage failed [AccessDenied]: denied",
        queue=URL,
        operation="ReceiveMessage",
        transient=transient,
    )


async def test_a_batch_is_handed_over_counted_and_deleted_whatever_its_messages() -> None:
    batch = [
        message(cloudtrail("PutBucketLifecycle", "acme-logs"), 0),
        message(definition("lifecycle/definition/a.toml"), 1),
        message(definition("lifecycle/definition/b.toml"), 2),
        message("this is not json", 3),
        message({"hello": "world"}, 4),
        message(cloudtrail("GetBucketLifecycle", "acme-logs"), 5),
    ]
    queue, handler, observer = MemoryQueue(batch), Handler(), Observer()

    await run(queue, handler, observer)

    assert handler.calls == [("definitions",), ("bucket", EVENT_ACCOUNT, "acme-logs")]
    assert sorted(m.id for m in queue.deleted) == [m.id for m in batch]
    assert observer.counts == {
        ("bucket", "handled"): 1,
        ("definitions", "handled"): 2,
        ("malformed", "ignored"): 1,
        ("unknown", "ignored"): 2,
    }


async def test_a_bucket_named_twice_in_a_batch_is_handed_over_once_and_both_deleted() -> None:
    batch = [
        message(cloudtrail("PutBucketTagging", "acme-logs"), 0),
        message(cloudtrail("PutBucketLifecycle", "acme-logs"), 1),
    ]
    queue, handler, observer = MemoryQueue(batch), Handler(), Observer()

    await run(queue, handler, observer)

    assert handler.calls == [("bucket", EVENT_ACCOUNT, "acme-logs")]
    assert len(queue.deleted) == 2
    assert observer.counts == {("bucket", "handled"): 2}


async def test_a_message_whose_handler_fails_stays_in_the_queue_and_the_others_go_on() -> None:
    batch = [message(cloudtrail(bucket="acme-logs"), 0), message(cloudtrail(bucket="acme-data"), 1)]
    queue, handler, observer = MemoryQueue(batch), Handler("acme-logs"), Observer()

    with structlog.testing.capture_logs() as logs:
        await run(queue, handler, observer)

    assert [m.id for m in queue.deleted] == ["id-1"]
    assert observer.counts == {("bucket", "failed"): 1, ("bucket", "handled"): 1}
    (failed,) = [entry for entry in logs if entry["event"] == "event_failed"]
    assert failed["log_level"] == "warning"
    assert (failed["bucket"], failed["error"]) == ("acme-logs", "cannot queue acme-logs")


async def test_definitions_whose_reload_cannot_be_handed_over_stay_in_the_queue() -> None:
    queue, handler, observer = MemoryQueue([message(definition(), 0)]), Handler(definitions_fail=True), Observer()

    await run(queue, handler, observer)

    assert queue.deleted == []
    assert observer.counts == {("definitions", "failed"): 1}


async def test_an_unreadable_queue_warns_once_backs_off_and_says_when_it_reads_again() -> None:
    naps = Naps()
    queue = MemoryQueue(unreadable(), unreadable(), unreadable(), [], [message(cloudtrail(), 0)])
    handler, observer = Handler(), Observer()

    with structlog.testing.capture_logs() as logs:
        loop = await run(queue, handler, observer, naps)

    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [entry["event"] for entry in warnings] == ["events_unreadable"]
    assert warnings[0]["queue"] == URL
    assert "[AccessDenied]" in warnings[0]["error"]
    assert [entry["event"] for entry in logs if entry["log_level"] == "info"] == ["events_readable"]
    assert naps.delays == [1.0, 2.0, 4.0]
    assert observer.readable == [False, True]
    assert handler.calls == [("bucket", EVENT_ACCOUNT, "acme-logs")]
    assert (loop.readable, loop.failures) == (True, 0)


async def test_whatever_a_receive_raises_the_loop_goes_on() -> None:
    queue, handler, observer = (
        MemoryQueue(RuntimeError("a bug below"), [message(cloudtrail(), 0)]),
        Handler(),
        Observer(),
    )

    with structlog.testing.capture_logs() as logs:
        await run(queue, handler, observer)

    assert handler.calls == [("bucket", EVENT_ACCOUNT, "acme-logs")]
    (warning,) = [entry for entry in logs if entry["event"] == "events_unreadable"]
    assert warning["error"] == "RuntimeError: a bug below"


def test_the_backoff_doubles_from_a_second_to_a_minute() -> None:
    loop = EventLoop(MemoryQueue(), Handler(), definitions=PLACE)
    delays = []
    for failures in range(1, 10):
        loop.failures = failures
        delays.append(loop.backoff())

    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


async def test_messages_the_queue_does_not_delete_are_warned_of_once_until_deletes_work_again() -> None:
    queue = MemoryQueue([message(cloudtrail(), 0)], [message(cloudtrail(), 1)], [message(cloudtrail(), 2)])
    queue.refuse = {"receipt-0", "receipt-1"}

    with structlog.testing.capture_logs() as logs:
        await run(queue, Handler(), Observer())

    said = [(entry["event"], entry["log_level"]) for entry in logs if entry["event"].startswith("events_")]
    assert said == [("events_not_deleted", "warning"), ("events_deleted_again", "info")]


async def test_the_metrics_count_events_and_say_whether_the_queue_reads() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    queue = MemoryQueue(unreadable(), [message(cloudtrail(), 0), message("nope", 1)])
    loop = EventLoop(queue, Handler(), definitions=PLACE, observers=[metrics.add_events()], sleep=Naps())
    readable = []

    async def watch() -> None:
        readable.append(registry.get_sample_value("lakecircle_events_queue_readable"))

    with anyio.fail_after(5), anyio.CancelScope() as scope:
        queue.scope = scope
        await loop.step()
        await watch()
        await loop.run()
    await watch()

    def total(kind: str, result: str) -> float | None:
        return registry.get_sample_value("lakecircle_events_total", {"kind": kind, "result": result})

    assert readable == [0.0, 1.0]
    assert (total("bucket", "handled"), total("malformed", "ignored"), total("definitions", "failed")) == (1, 1, 0)


def test_without_an_events_queue_the_metrics_have_no_events_series() -> None:
    text = Metrics().render().decode()

    assert "lakecircle_events" not in text
    assert Metrics().events is None


def test_the_events_metrics_are_made_once_and_every_series_starts_at_zero() -> None:
    metrics = Metrics()
    events = metrics.add_events()
    text = metrics.render().decode()

    assert metrics.add_events() is events
    assert text.count("lakecircle_events_total{") == len(EventKind) * len(EventResult)
    assert "# HELP lakecircle_events_queue_readable 1 while the events queue can be read" in text
