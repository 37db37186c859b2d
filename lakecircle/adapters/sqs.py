"""The events queue over SQS: long-polled receives and batched deletes, with aiobotocore.

:class:`SqsEventQueue` implements :class:`~lakecircle.ports.EventQueue`. It is a transport of
its own (:class:`~lakecircle.adapters.s3.transport.S3Transport`, whose clients, one-attempt
configuration, time limits and error mapping every AWS request of LakeCircle shares), made
beside the service's S3 transport (:meth:`SqsEventQueue.beside`): the same credentials and
SDK session, but its own clients, its own throttle gate, no rate limit, no request slots
and no observer. A long poll holds its request open for 20 s: it must neither wait behind
bucket work nor hold a slot of it, nor count as a 20-second S3 request in
``lakecircle_s3_request_duration_seconds``; ``lakecircle_events_total`` counts events instead.

Requests go to the queue's own region (read from its URL, else ``LCC_AWS_REGION``) and to
the SDK's endpoint for SQS (``AWS_ENDPOINT_URL_SQS``, ``AWS_ENDPOINT_URL``). A receive is
tried once: the events loop above it backs off and tries again (one retry layer). A delete
is retried on throttling, 5xx and the network as every request is; what SQS still refuses
is returned, message by message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from lakecircle import errors
from lakecircle.adapters.s3.transport import S3Transport, as_is
from lakecircle.core.queue_url import QueueUrl
from lakecircle.ports import NotDeleted, QueueMessage

EVENTS: Final = "events"
"""The client lane of the events queue (see :meth:`~lakecircle.adapters.s3.transport.S3Transport.client`)."""

WAIT_SECONDS: Final = 20
"""ReceiveMessage's WaitTimeSeconds: SQS's longest long poll, the fewest empty receives."""

BATCH: Final = 10
"""ReceiveMessage's MaxNumberOfMessages and DeleteMessageBatch's entries: SQS's most."""

_NO_QUEUE_CODES: Final = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


class SqsEventQueue(S3Transport):
    """The events queue ``queue``, over SQS. Use it as ``async with``.

    ``wait_seconds`` is the long poll (tests shorten it). The other options are
    :class:`~lakecircle.adapters.s3.transport.S3Transport`'s; ``region`` defaults to the
    queue's. The read timeout is raised to the poll plus 30 s when it is shorter, so a long
    poll is never cut for waiting.
    """

    def __init__(self, queue: QueueUrl, *, wait_seconds: int = WAIT_SECONDS, **options: Any) -> None:
        if not 0 <= wait_seconds <= WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be between 0 and {WAIT_SECONDS}, not {wait_seconds}")
        options["region"] = queue.region or options.get("region")
        if options["region"] is None:
            raise ValueError(f"the region of {queue.url} is not in its URL: give region")
        options["read_timeout"] = max(float(options.get("read_timeout", 60.0)), wait_seconds + 30.0)
        options.pop("attempt_timeout", None)
        super().__init__(**options)
        self.queue = queue
        self.wait_seconds = wait_seconds

    @classmethod
    def beside(cls, transport: S3Transport, queue: QueueUrl, *, wait_seconds: int = WAIT_SECONDS) -> SqsEventQueue:
        """The queue, reached with ``transport``'s credentials and session but on clients, a gate and
        no limits of its own (see the module's docstring); not observed."""
        options = transport.options_beside(connections=2)
        options["observer"] = None
        return cls(queue, wait_seconds=wait_seconds, **options)

    @property
    def location(self) -> str:
        return self.queue.url

    async def receive(self) -> list[QueueMessage]:
        """Up to :data:`BATCH` messages, waiting up to ``wait_seconds`` for the first; tried once."""
        params = {"QueueUrl": self.queue.url, "MaxNumberOfMessages": BATCH, "WaitTimeSeconds": self.wait_seconds}
        try:
            response = await self._retried("ReceiveMessage", params, as_is, service="sqs", lane=EVENTS, retry_on=())
        except errors.LakeCircleError as exc:
            raise self._queue_error(exc, "ReceiveMessage") from exc
        messages = response.get("Messages") or []
        return [
            QueueMessage(str(m.get("MessageId") or ""), m["ReceiptHandle"], str(m.get("Body") or ""))
            for m in messages
            if isinstance(m, dict) and isinstance(m.get("ReceiptHandle"), str)
        ]

    async def delete(self, messages: Sequence[QueueMessage]) -> list[NotDeleted]:
        """Delete ``messages`` by :data:`BATCH` (DeleteMessageBatch); returns those SQS did not delete."""
        left: list[NotDeleted] = []
        for start in range(0, len(messages), BATCH):
            left += await self._delete_batch(messages[start : start + BATCH])
        return left

    async def _delete_batch(self, batch: Sequence[QueueMessage]) -> list[NotDeleted]:
        entries = [{"Id": str(index), "ReceiptHandle": m.receipt} for index, m in enumerate(batch)]
        params = {"QueueUrl": self.queue.url, "Entries": entries}
        try:
            response = await self._retried("DeleteMessageBatch", params, as_is, service="sqs", lane=EVENTS)
        except errors.LakeCircleError as exc:
            reason = str(self._queue_error(exc, "DeleteMessageBatch"))
            return [NotDeleted(m, reason) for m in batch]
        left = []
        for failure in response.get("Failed") or []:
            index = str(failure.get("Id", ""))
            if index.isdigit() and int(index) < len(batch):
                code, message = failure.get("Code") or "", failure.get("Message") or ""
                left.append(NotDeleted(batch[int(index)], f"[{code}] {message}".strip()))
        return left

    def _queue_error(self, exc: errors.LakeCircleError, operation: str) -> errors.EventQueueError:
        """The queue's error for a request's: the cause in SQS's words, and what to change."""
        if not isinstance(exc, errors.S3Error):  # no credentials at all: the SDK's configuration
            message = " ".join(str(exc).split())
            return errors.EventQueueError(
                f"the events queue {self.queue.url}: {operation} failed: {message}",
                queue=self.queue.url,
                operation=operation,
            )
        code = f" [{exc.code}]" if exc.code else ""
        if isinstance(exc, errors.AccessDenied):
            hint = (
                "grant the service's role sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes"
                " on the queue (deploy/aws/events.yaml), and kms:Decrypt on its key if it has one"
            )
        elif exc.code in _NO_QUEUE_CODES:
            hint = "no such queue: check LCC_EVENTS_QUEUE (the URL `aws sqs get-queue-url` prints) and its region"
        elif isinstance(exc, errors.TransientError):
            hint = "SQS could not be reached or failed; LakeCircle tries again"
        else:
            hint = "check LCC_EVENTS_QUEUE and the queue's policy"
        return errors.EventQueueError(
            f"the events queue {self.queue.url}: {exc.operation} failed{code}: {exc.message}; {hint}",
            queue=self.queue.url,
            operation=exc.operation,
            code=exc.code,
            transient=isinstance(exc, errors.TransientError),
        )
