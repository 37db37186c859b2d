"""The S3 adapter's clients, and the one way every request goes: attempt, observe, map, retry.

One aioboto3 session; per region, one client for the account's buckets and one for the
endpoint's objects (each with its own connection pool, see :meth:`S3Transport.client`),
created on first use and closed when the ``async with`` block ends.

Every request goes through :meth:`S3Transport.call` (or ``_retried``, for a request whose
answer is read inside the attempt): one attempt is timed, counted and told to the
:class:`~lakecircle.adapters.retry.RequestObserver`, its exception mapped by
:func:`~lakecircle.adapters.s3.errors.map_error` in one place, and transient errors retried
by :func:`~lakecircle.adapters.retry.call_with_retries`, the only retry layer: botocore makes
one attempt (ARCHITECTURE.md, "Errors and retries").
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, contextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

import aioboto3
import anyio
from botocore import xform_name

from lakecircle.adapters.retry import RequestObserver, RetryOn, RetryPolicy, call_with_retries
from lakecircle.adapters.s3.botocore import adjust_client, botocore_session, client_config
from lakecircle.adapters.s3.errors import BOTO_ERRORS, FROM_BELOW, Server, map_error
from lakecircle.adapters.slots import AccountSlots
from lakecircle.adapters.throttle import Sleep, ThrottleGate
from lakecircle.clocks import MonotonicClock
from lakecircle.errors import LakeCircleError, TransientError

T = TypeVar("T")

BUCKETS = "buckets"
"""The client lane of the account's buckets (see :meth:`S3Transport.client`)."""
OBJECTS = "objects"
"""The client lane of the endpoint's objects: definitions and LakeCircle's records."""

ClientFactory = Callable[[str, str], AbstractAsyncContextManager[Any]]
"""Opens a client for (service, region). The default is the aioboto3 session's; tests
hand in stub clients to exercise logic that moto cannot show."""


class S3Transport:
    """Clients per region and lane, and every request through them (the base of the S3 adapter).

    Use it as ``async with``; clients are created per region on first use and closed on
    exit. ``calls`` counts the requests made (every attempt), by operation name.

    Retries: every request is retried on throttling, 5xx and connection errors as
    ``retry`` says (default :class:`~lakecircle.adapters.retry.RetryPolicy`), behind one
    :class:`~lakecircle.adapters.throttle.ThrottleGate` (``gate``) shared by all of its
    requests, which also applies ``max_requests_per_second`` (0: no limit). ``observer``
    hears of each attempt and each retry. ``clock`` and ``sleep`` (``time.monotonic``,
    ``anyio.sleep``) are injected for tests.

    Timeouts: ``connect_timeout`` and ``read_timeout`` are botocore's; ``attempt_timeout``
    (default: their sum) bounds a whole attempt, because a request can stall where the
    read timeout does not apply: aiohttp waits for a PutObject's ``100 Continue`` without
    one. An attempt cut off by it is a :class:`~lakecircle.errors.ConnectionFailed`.

    Deadline: ``with s3.cycle_deadline():`` at the start of a cycle sets ``deadline_at``
    to now plus ``retry.deadline`` (or the seconds given); no retry inside the block
    sleeps past it. Outside such a block each call's own start counts.

    Slots: with ``slots`` (an account's way through the process's
    :class:`~lakecircle.adapters.slots.RequestSlots`, in multi-account mode), each attempt
    holds one of them while it is under way; waiting for one is not part of the attempt's
    time, nor of its time limit.
    """

    def __init__(
        self,
        *,
        region: str,
        concurrency: int = 16,
        content_md5: bool = False,
        endpoint_url: str | None = None,
        session: aioboto3.Session | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        attempt_timeout: float | None = None,
        client_factory: ClientFactory | None = None,
        retry: RetryPolicy | None = None,
        observer: RequestObserver | None = None,
        max_requests_per_second: float = 0.0,
        slots: AccountSlots | None = None,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.region = region
        self.slots = slots
        self.concurrency = concurrency
        self.content_md5 = content_md5
        self.endpoint_url = endpoint_url
        self.calls: Counter[str] = Counter()
        self.retry = retry if retry is not None else RetryPolicy()
        self.observer = observer
        self.deadline_at: float | None = None
        self.attempt_timeout = connect_timeout + read_timeout if attempt_timeout is None else attempt_timeout
        """The most one attempt may take, answer read included (see :meth:`_attempt`)."""
        self._clock = clock
        self._sleep = sleep
        self._timeouts = (connect_timeout, read_timeout)
        self._given_factory = client_factory
        self.gate = ThrottleGate(
            max_delay=self.retry.max_delay, max_requests_per_second=max_requests_per_second, clock=clock, sleep=sleep
        )
        self._session = session if session is not None else aioboto3.Session(botocore_session=botocore_session())
        self._config = client_config(
            concurrency=concurrency,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            content_md5=content_md5,
        )
        self._factory: ClientFactory = client_factory or self._session_client
        self._stack: AsyncExitStack | None = None
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._clients_lock = asyncio.Lock()

    def _session_client(self, service: str, region: str) -> AbstractAsyncContextManager[Any]:
        client: AbstractAsyncContextManager[Any] = self._session.client(
            service, region_name=region, config=self._config, endpoint_url=self.endpoint_url
        )
        return client

    async def __aenter__(self) -> Self:
        self._stack = AsyncExitStack()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        self._clients.clear()
        if stack is not None:
            await stack.aclose()

    def options_beside(self, *, connections: int) -> dict[str, Any]:
        """The options of a transport beside this one, for requests that must never queue behind its.

        The same credentials (this session), endpoint, region, timeouts, retry policy,
        observer, clock and sleep; but clients of its own (a pool of ``connections``,
        :func:`~lakecircle.adapters.s3.botocore.client_config`'s floor applies), a throttle
        gate of its own with no ``max_requests_per_second``, and no slots. A lease renewal that
        queued behind a cycle's rate-limited reads, a throttled gate (1/s at its floor) or a
        hub's bound on requests would come back too late for its lease.
        """
        connect_timeout, read_timeout = self._timeouts
        return {
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "session": self._session,
            "client_factory": self._given_factory,
            "content_md5": self.content_md5,
            "concurrency": connections,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "attempt_timeout": self.attempt_timeout,
            "retry": self.retry,
            "observer": self.observer,
            "clock": self._clock,
            "sleep": self._sleep,
        }

    # -- clients and requests -------------------------------------------------------------

    async def client(self, region: str | None = None, *, service: str = "s3", lane: str = BUCKETS) -> Any:
        """The client of ``service`` in ``region`` (default: :attr:`region`) for ``lane``.

        Two lanes, each a client with its own pool of ``concurrency`` connections:
        :data:`BUCKETS` for the account's buckets and :data:`OBJECTS` for the endpoint's
        objects (definitions, write-ahead and current/ records), so that LakeCircle's own
        records never wait for a connection behind bucket work, nor take one from it.
        """
        region = region or self.region
        key = (service, region, lane)
        client = self._clients.get(key)
        if client is not None:
            return client
        async with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                if self._stack is None:
                    raise RuntimeError("S3Adapter is used outside its `async with` block")
                opened: Any = await self._stack.enter_async_context(self._factory(service, region))
                adjust_client(opened, service=service, content_md5=self.content_md5)
                self._clients[key] = client = opened
        return client

    @contextmanager
    def cycle_deadline(self, seconds: float | None = None) -> Iterator[float | None]:
        """Within the block, no retry sleeps past ``seconds`` from now (default: ``retry.deadline``).

        The daemon enters it at the start of each cycle; yields the absolute deadline on
        the adapter's clock (None: no deadline) and restores the previous one on exit.
        """
        seconds = self.retry.deadline if seconds is None else seconds
        previous = self.deadline_at
        self.deadline_at = None if seconds is None else self._clock() + seconds
        try:
            yield self.deadline_at
        finally:
            self.deadline_at = previous

    async def _send(self, client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One request, counted; botocore's exceptions pass through."""
        self.calls[operation] += 1
        response: dict[str, Any] = await getattr(client, xform_name(operation))(**params)
        return response

    async def _attempt(
        self,
        operation: str,
        params: dict[str, Any],
        consume: Callable[[dict[str, Any]], Awaitable[T]],
        *,
        region: str | None,
        service: str,
        lane: str,
    ) -> T:
        """One attempt: the request and ``consume`` of its response, timed, observed, errors mapped."""
        bucket = params.get("Bucket")
        try:
            client = await self.client(region, service=service, lane=lane)
        except BOTO_ERRORS as exc:
            raise self._map(exc, operation=operation, bucket=bucket) from exc
        if self.slots is None:
            return await self._timed(client, operation, params, consume)
        async with self.slots:
            return await self._timed(client, operation, params, consume)

    async def _timed(
        self, client: Any, operation: str, params: dict[str, Any], consume: Callable[[dict[str, Any]], Awaitable[T]]
    ) -> T:
        started = self._clock()
        try:
            with anyio.fail_after(self.attempt_timeout):
                result = await consume(await self._send(client, operation, params))
        except Exception as exc:  # a cancelled attempt (BaseException) is not observed
            error = exc
            if isinstance(exc, FROM_BELOW):
                error = self._map(exc, operation=operation, bucket=None, server=Server.of(client, params))
            self._observe(operation, error, started)
            if error is exc:
                raise
            raise error from exc
        self._observe(operation, None, started)
        return result

    def _map(
        self, exc: Exception, *, operation: str, bucket: str | None, server: Server | None = None
    ) -> LakeCircleError:
        """LakeCircle's error for ``exc`` (see :func:`~lakecircle.adapters.s3.errors.map_error`)."""
        return map_error(exc, operation=operation, bucket=bucket, attempt_timeout=self.attempt_timeout, server=server)

    def _observe(self, operation: str, error: Exception | None, started: float) -> None:
        if self.observer is not None:
            self.observer.observe_request(operation, error, self._clock() - started)

    async def _retried(
        self,
        operation: str,
        params: dict[str, Any],
        consume: Callable[[dict[str, Any]], Awaitable[T]],
        *,
        region: str | None = None,
        service: str = "s3",
        lane: str = BUCKETS,
        retry_on: RetryOn = (TransientError,),
    ) -> T:
        return await call_with_retries(
            lambda: self._attempt(operation, params, consume, region=region, service=service, lane=lane),
            operation=operation,
            policy=self.retry,
            gate=self.gate,
            sleep=self._sleep,
            clock=self._clock,
            deadline_at=self.deadline_at,
            on_retry=self.observer.observe_retry if self.observer is not None else None,
            retry_on=retry_on,
        )

    async def call(
        self, operation: str, *, region: str | None = None, service: str = "s3", lane: str = BUCKETS, **params: Any
    ) -> dict[str, Any]:
        """Make an ``operation`` request (``"GetBucketLifecycleConfiguration"``) in ``region``.

        Every S3 and STS request goes through here: transient errors are retried (see
        :mod:`lakecircle.adapters.retry`), each attempt is counted in ``calls`` and observed.
        Raises LakeCircle's own errors, never botocore's.
        """
        return await self._retried(operation, params, as_is, region=region, service=service, lane=lane)


async def as_is(response: dict[str, Any]) -> dict[str, Any]:
    """A response as it came (the ``consume`` of a request whose answer needs no reading inside the attempt)."""
    return response
