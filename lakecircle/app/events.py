"""The events queue (``LCC_EVENTS_QUEUE``) wired to the daemon: a single account's, or a hub's.

Events only bring work forward: a CloudTrail call that may have changed a bucket
(``PutBucketLifecycle``, ``CreateBucket``, ``PutBucketTagging``, ...) makes that bucket due at
once, ahead of continuous verification's schedule (in a hub, in the account the event names: an
event that names none, or an account not verified here, is ignored); an S3 notification of a definition file
created or removed makes the daemon poll the definitions now. The schedule and the poll still
find every change, later, so a queue that cannot be read costs only that: the loop says so
(``events_unreadable``, ``lakecircle_events_queue_readable`` at 0) and tries again with backoff.

The queue is reached beside the account's S3 adapter (a hub's own account's) (same credentials, clients of its own, no
rate limit: a 20 s long poll never holds a bucket request's slot).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import structlog

from lakecircle.adapters.s3.transport import S3Transport
from lakecircle.adapters.sqs import SqsEventQueue
from lakecircle.core.events import DefinitionsPlace
from lakecircle.engine.events import EventLoop
from lakecircle.errors import ConfigError
from lakecircle.s3_uri import parse_s3_uri
from lakecircle.service.daemon import Daemon
from lakecircle.service.metrics import Metrics
from lakecircle.settings import Settings

log = structlog.get_logger("lakecircle.app.events")


class DaemonEvents:
    """What the events ask of the daemon (an :class:`~lakecircle.engine.events.EventHandler`)."""

    def __init__(self, daemon: Daemon, account: str | None, *, hub: bool = False) -> None:
        self.daemon = daemon
        self.account = account
        """The managed account's ID, when the settings name it: another account's events are not ours."""
        self.hub = hub
        """A hub's daemon: each event goes to the account it names (the hub ignores the others)."""

    async def definitions_changed(self) -> None:
        self.daemon.request_poll()

    async def bucket_changed(self, account: str | None, bucket: str) -> None:
        if self.hub:
            self.daemon.request_verify([bucket], account)
            return
        if account is not None and self.account is not None and account != self.account:
            log.debug("event_other_account", account=account, bucket=bucket)
            return
        self.daemon.request_verify([bucket])


@asynccontextmanager
async def events_running(
    settings: Settings,
    transport: S3Transport,
    daemon: Daemon,
    metrics: Metrics,
    definitions_dir: Path | None,
) -> AsyncIterator[None]:
    """Receive from ``LCC_EVENTS_QUEUE`` while the context lasts (nothing when it is unset)."""
    queue_url = settings.events_queue_url
    if queue_url is None:
        yield
        return
    place = None if definitions_dir is not None else DefinitionsPlace(*parse_s3_uri(settings.definition_uri))
    try:
        queue = SqsEventQueue.beside(transport, queue_url)
    except ValueError as exc:  # no region in the URL, none configured
        raise ConfigError([f"LCC_EVENTS_QUEUE: {exc}; set AWS_REGION or use the queue's regional URL"]) from exc
    async with queue:
        loop = EventLoop(
            queue,
            DaemonEvents(daemon, settings.aws_account, hub=settings.accounts_from is not None),
            definitions=place,
            observers=[metrics.add_events()],
        )
        log.info("events_listening", queue=queue_url.url)
        async with anyio.create_task_group() as tg:
            tg.start_soon(loop.run)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
