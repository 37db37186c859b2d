"""The events loop: receive a batch from the events queue, hand over what each message asks, delete it.

``LCC_EVENTS_QUEUE`` is optional: events only bring work forward (a bucket changed behind
LakeCircle's back is verified at once, changed definitions are reloaded without waiting for
the poll), and the schedule and the poll still find every change, later. So the loop:

- parses each message (:func:`~lakecircle.core.events.parse_message`) and hands what it asks
  to an :class:`EventHandler` (the daemon): the definitions' reload once per batch however
  many files changed, each (account, bucket) once per batch;
- deletes a message only after its work was handed over; one whose handler raised is left in
  the queue, so SQS delivers it again after its visibility timeout (and, after the queue's
  ``maxReceiveCount``, to its dead-letter queue). Unknown and malformed messages are
  deleted at once: no later try can change them. Each is counted
  (``lakecircle_events_total{kind,result}``) and no message stops the loop;
- when the queue cannot be read, warns once per streak (``events_unreadable``, naming the
  queue and the cause), tells the observer events are down (the daemon polls meanwhile; the
  readiness and the metrics say so), backs off (1 s doubling to a minute) and tries again,
  and says so once it reads again (``events_readable``).

The engine reaches the queue only through :class:`~lakecircle.ports.EventQueue`.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import anyio
import structlog

from lakecircle.core.events import DefinitionsPlace, Event, EventKind, EventResult, parse_message
from lakecircle.errors import EventQueueError
from lakecircle.ports import EventQueue, QueueMessage

log = structlog.get_logger("lakecircle.engine.events")

Sleep = Callable[[float], Awaitable[None]]

FIRST_BACKOFF = 1.0
"""Seconds before the first try again after the queue could not be read; doubled up to :data:`MAX_BACKOFF`."""
MAX_BACKOFF = 60.0


class EventHandler(Protocol):
    """What the events ask of the daemon. Each returns once the work is queued (or done); one that
    raises leaves its messages in the queue, to be delivered again."""

    async def definitions_changed(self) -> None:
        """A definition file was created or removed: reload the definitions now."""

    async def bucket_changed(self, account: str | None, bucket: str) -> None:
        """A call may have changed ``bucket`` (of ``account``, when the event says): verify it now."""


class EventsObserver(Protocol):
    """Told what became of the messages, and whether the queue can be read (the metrics, the daemon)."""

    def event_counted(self, kind: EventKind, result: EventResult, count: int) -> None:
        """``count`` messages of ``kind`` ended as ``result``."""

    def events_readable(self, readable: bool) -> None:
        """The queue can be read (True), or cannot and the daemon is to rely on its poll (False).

        Told at the first receive and at each change, never twice the same in a row."""


class EventLoop:
    """Receives from ``queue`` and hands each message's work to ``handler``, until cancelled (:meth:`run`).

    ``definitions``: where the definitions are in S3 (None: a local folder, so S3
    notifications ask for nothing). ``observers`` hear of each result and of the queue's
    state. ``sleep`` is injected for tests, as are the backoff's bounds.
    """

    def __init__(
        self,
        queue: EventQueue,
        handler: EventHandler,
        *,
        definitions: DefinitionsPlace | None,
        observers: Sequence[EventsObserver] = (),
        first_backoff: float = FIRST_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.definitions = definitions
        self.observers = tuple(observers)
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self._sleep = sleep
        self.readable: bool | None = None
        """Whether the last receive worked (None before the first)."""
        self.failures = 0
        """Receives failed in a row."""
        self._deletes_failing = False

    async def run(self) -> None:
        """Receive and handle until cancelled; never returns otherwise, never raises for the queue or a message."""
        while True:
            if await self.step():
                continue
            await self._sleep(self.backoff())

    def backoff(self) -> float:
        """The wait before trying again after :attr:`failures` failed receives in a row."""
        return min(self.max_backoff, self.first_backoff * 2.0 ** max(self.failures - 1, 0))

    async def step(self) -> bool:
        """One receive and its messages handled; False when the queue could not be read."""
        try:
            messages = await self.queue.receive()
        except EventQueueError as exc:
            self._unreadable(str(exc), transient=exc.transient)
            return False
        except Exception as exc:  # noqa: BLE001 (whatever a receive raises, events are only down: the poll goes on)
            self._unreadable(f"{type(exc).__name__}: {exc}", transient=False)
            return False
        self._readable()
        if messages:
            await self.handle(messages)
        return True

    async def handle(self, messages: Sequence[QueueMessage]) -> None:
        """Hand over what ``messages`` ask, count each, and delete those handled or ignored."""
        parsed = [(message, parse_message(message.body, self.definitions)) for message in messages]
        results: Counter[tuple[EventKind, EventResult]] = Counter()
        done: list[QueueMessage] = []
        reload: list[QueueMessage] = []
        buckets: dict[tuple[str | None, str], list[QueueMessage]] = {}
        for message, event in parsed:
            if event.change is not None:
                buckets.setdefault((event.change.account, event.change.bucket), []).append(message)
            elif event.keys:
                reload.append(message)
            else:
                self._ignored(message, event)
                results[event.kind, EventResult.IGNORED] += 1
                done.append(message)
        if reload:
            handled = await self._hand_over(self.handler.definitions_changed, kind=EventKind.DEFINITIONS)
            results[EventKind.DEFINITIONS, handled] += len(reload)
            done += reload if handled is EventResult.HANDLED else []
        for (account, bucket), group in buckets.items():
            work = functools.partial(self.handler.bucket_changed, account, bucket)
            handled = await self._hand_over(work, kind=EventKind.BUCKET, bucket=bucket, account=account)
            results[EventKind.BUCKET, handled] += len(group)
            done += group if handled is EventResult.HANDLED else []
        for (kind, result), count in results.items():
            for observer in self.observers:
                observer.event_counted(kind, result, count)
        if done:
            await self._delete(done)

    async def _hand_over(
        self, work: Callable[[], Awaitable[None]], *, kind: EventKind, **fields: object
    ) -> EventResult:
        try:
            await work()
        except Exception as exc:  # noqa: BLE001 (a handler's failure leaves the message for SQS to deliver again)
            log.warning("event_failed", kind=str(kind), queue=self.queue.location, error=str(exc), **fields)
            return EventResult.FAILED
        return EventResult.HANDLED

    def _ignored(self, message: QueueMessage, event: Event) -> None:
        log.debug("event_ignored", kind=str(event.kind), message_id=message.id, reason=event.reason)

    async def _delete(self, done: Sequence[QueueMessage]) -> None:
        left = await self.queue.delete(done)
        if left and not self._deletes_failing:
            log.warning(
                "events_not_deleted",
                queue=self.queue.location,
                count=len(left),
                reason=left[0].reason,
                hint="they come back after the queue's visibility timeout and are handled again",
            )
        elif not left and self._deletes_failing:
            log.info("events_deleted_again", queue=self.queue.location)
        self._deletes_failing = bool(left)

    def _unreadable(self, cause: str, *, transient: bool) -> None:
        self.failures += 1
        if self.readable is not False:
            log.warning(
                "events_unreadable",
                queue=self.queue.location,
                error=cause,
                transient=transient,
                fallback="the definitions' poll and the schedule go on; the queue is tried again",
            )
            self._tell(readable=False)
        else:
            log.debug("events_still_unreadable", queue=self.queue.location, error=cause, failures=self.failures)
        self.readable = False

    def _readable(self) -> None:
        if self.readable is False:
            log.info("events_readable", queue=self.queue.location, after_failures=self.failures)
        if self.readable is not True:
            self._tell(readable=True)
        self.readable = True
        self.failures = 0

    def _tell(self, *, readable: bool) -> None:
        for observer in self.observers:
            observer.events_readable(readable)
