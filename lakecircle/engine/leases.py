"""One account's lease, kept: the I/O around :class:`lakecircle.core.lease.Lease` (issue 17).

Several replicas may run; only the holder of an account's lease writes its buckets
(ARCHITECTURE.md, Safety). The machine in :mod:`lakecircle.core.lease` decides what to send and
when; :class:`LeaseKeeper` sends it through a :class:`~lakecircle.ports.LeaseStore`, one request at
a time, and feeds the answers back with its monotonic clock:

- the time a write was sent is taken just before the request, so the holder's deadline runs from
  no later than the store saw it;
- a write refused on its condition (412, 409, 404: the store answers None) lost a race; any other
  failure, or no answer within a third of the duration, is an *unknown* outcome (the write may
  have applied, or may still): no bucket write starts until the lease has been read again;
- a read that failed is asked again a little later, and nothing is learned from it.

The keeper is the :class:`Fence` the bucket writer asks before each write
(:mod:`lakecircle.engine.write`): a write starts only while the lease has the write's timeout plus
a margin (a tenth of the duration) left, never in doubt, and a new holder only once one write
timeout has passed. When that turns False while the lease is still believed held (the deadline
draws near, a renewal fails) or the lease is lost, the callbacks given to :meth:`LeaseKeeper.on_lost`
run, so the account's work can be cut at once (:mod:`lakecircle.engine.leased`).

S3's failures never end :meth:`LeaseKeeper.run`: each is one warning line (the first of a streak;
the rest are debug lines), never a traceback. Transitions are logged (``lease_acquired``,
``lease_renewed`` at debug, ``lease_lost`` as a warning, ``lease_released``, ``lease_taken_over``)
and told to the :class:`LeaseObserver` (the metrics).
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

import anyio
import structlog

from lakecircle import errors
from lakecircle.clocks import lease_clock
from lakecircle.core.lease import Create, Lease, Read, Replace, Step, Transition, Wait
from lakecircle.core.lease_state import MARGIN_PER_DURATION
from lakecircle.engine.flights import Flights
from lakecircle.ports import LeaseStore, Versioned

__all__ = ["Fence", "Flights", "LeaseKeeper", "LeaseObserver", "flight", "lease_key"]


log = structlog.get_logger("lakecircle.engine.leases")

MARGIN_SHARE = MARGIN_PER_DURATION
"""The fence's margin is duration / 10: a write starts only with its timeout plus this left."""
TICKS_PER_DURATION = 30
"""While held, how often per duration the keeper looks whether the fence closed by time alone
(a renewal under way for long, the deadline drawing near): each look costs a function call."""

_LOG_LEVELS = {
    Transition.ACQUIRED: "info",
    Transition.RENEWED: "debug",
    Transition.LOST: "warning",
    Transition.RELEASED: "info",
    Transition.TAKEN_OVER: "info",
}


class LeaseObserver(Protocol):
    """Told of the lease's transitions and whether it is held (the metrics)."""

    def lease_transition(self, account: str, reason: Transition) -> None: ...

    def lease_held(self, account: str, held: bool) -> None: ...


class Fence(Protocol):
    """What the bucket writer asks before each bucket write (:mod:`lakecircle.engine.write`)."""

    @property
    def account(self) -> str:
        """The account whose lease this is, for messages."""
        ...

    @property
    def epoch(self) -> int | None:
        """The epoch held (it goes into the change records), else None."""
        ...

    @property
    def holder(self) -> str:
        """This replica's id, for the records."""
        ...

    write_timeout: float
    """A bucket write (all its attempts) is cut after this many seconds."""

    def may_start_write(self) -> bool: ...

    def writing(self) -> AbstractContextManager[Callable[[], None]]:
        """Around one bucket write's request: call what it gives once S3 answered it; a write left
        unanswered (cut, failed on the way) may still apply, which the release must tell."""
        ...


def flight(fence: Fence | None) -> AbstractContextManager[Callable[[], None]]:
    """``fence.writing()``; without a fence, a context that counts nothing."""
    return fence.writing() if fence is not None else nullcontext(_answered)


def _answered() -> None:
    """Nothing to tell: no fence counts the write."""


def lease_key(account: str) -> str:
    """The lease object's key under ``LCC_ENDPOINT``."""
    return f"lease/{account}.json"


class LeaseKeeper:
    """Keeps one account's lease for this replica (acquires, renews, releases, watches); a :class:`Fence`.

    ``duration``: seconds the lease lasts after each write (``LCC_LEASE_SECONDS``); renewed every
    third of it. ``write_timeout``: how long a bucket write may take, all its attempts (no more than
    a third of the duration: it is capped there). ``wanted``: False to only watch the lease.
    ``clock`` is monotonic; ``unix`` only stamps the body for people.
    """

    def __init__(
        self,
        store: LeaseStore,
        account: str,
        replica: str,
        duration: float,
        *,
        write_timeout: float,
        wanted: bool = True,
        observer: LeaseObserver | None = None,
        clock: Callable[[], float] = lease_clock,
        unix: Callable[[], float] = time.time,
        contact: Callable[[bool], None] | None = None,
    ) -> None:
        if not math.isfinite(write_timeout) or write_timeout <= 0:
            raise ValueError(f"lease of account {account}: the write timeout must be a positive number of seconds")
        self.key = lease_key(account)
        self._lease = Lease(self.key, replica, duration, wanted=wanted, instance=secrets.token_hex(8))
        self._store = store
        self.account = account
        self.replica = self.holder = replica
        self.duration = duration
        self.write_timeout = min(write_timeout, duration / 3)
        self.margin = duration / MARGIN_SHARE
        self.flights = Flights(clock, 2 * self.write_timeout + self.margin)
        self.request_timeout = duration / 3
        """Every request to the store is given up after this (an unknown outcome)."""
        self._observer = observer
        self.contact = contact
        """Told whether each request reached the store (a standby's readiness: its only contact with S3)."""
        self._clock = clock
        self._unix = unix
        self._tick = duration / TICKS_PER_DURATION
        self._lock = anyio.Lock()
        """One request at a time, whether :meth:`run` or :meth:`release` sends it."""
        self._wake = anyio.Event()
        self._changed = anyio.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._gained: list[Callable[[], None]] = []
        self._held: bool | None = None
        self._writable = False
        self._lost_told = False
        self._failing: set[str] = set()  # requests (read, create, replace) failing now: a warning a streak
        self._backoff = 0.0  # seconds before the next request while writes fail (0: none failed)

    # -- what the rest of the replica asks ---------------------------------------------------

    @property
    def epoch(self) -> int | None:
        return self._lease.epoch

    @property
    def holder_seen(self) -> str | None:
        """The holder the object last read names, while this replica does not hold it (None: no
        holder, released, unreadable, not read yet, or this replica holds it)."""
        return None if self._lease.epoch is not None else self._lease.holder

    def held(self) -> bool:
        return self._lease.held(self._clock())

    def free(self) -> bool:
        """Free for this replica to take, as last read."""
        return self._lease.free(self._clock())

    def may_start_write(self) -> bool:
        return self._lease.may_start_write(self._clock(), self.write_timeout, self.margin)

    def writing(self) -> AbstractContextManager[Callable[[], None]]:
        return self.flights.writing()

    def want(self, wanted: bool) -> None:
        """Whether this replica wants the lease; wakes :meth:`run` at once (``False`` while held releases
        it once the writes under way have finished; settled when none of its writes, nor (its own
        wait over) a holder's before it, may still apply)."""
        settled = self.flights.settled() and self._lease.waited(self._clock(), self.write_timeout)
        self._lease.want(wanted, settled=settled)
        self._check()
        self._wake.set()

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the lease is lost, and when writes may no longer start while it is still
        believed held (the deadline draws near, a renewal failed): cut the account's work."""
        self._callbacks.append(callback)

    def on_writable(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` each time writes may start again (a lease taken, its new-holder wait over)."""
        self._gained.append(callback)

    async def wait_until_writable(self) -> None:
        """Return once :meth:`may_start_write` is True."""
        while not self.may_start_write():
            changed = self._changed
            with anyio.move_on_after(self._tick):
                await changed.wait()

    # -- driving the machine -----------------------------------------------------------------

    async def run(self) -> None:
        """Drive the lease until cancelled; never ends on a failure of the store."""
        self._check()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch)
            while True:
                wait = await self._advance()
                if wait is None and self._failing - {"read"}:
                    # Writes fail (refused for another cause than a race, the store out of reach): the
                    # machine would read and write again at once; back off, doubling to a third of the duration.
                    self._backoff = min(self.request_timeout, max(self._backoff * 2, self.duration / 100))
                    wait = Wait(self._clock() + self._backoff)
                elif wait is None:
                    self._backoff = 0.0
                if wait is not None:
                    with anyio.move_on_after(max(wait.until - self._clock(), 0.0)):
                        await self._wake.wait()
                    self._wake = anyio.Event()

    async def release(self) -> None:
        """Stop wanting the lease and drive it until released or no longer held (or in doubt), within a
        third of the duration (then it runs out by itself); settled when no write may still apply."""
        self.want(False)
        with anyio.move_on_after(self.request_timeout):
            await self._lock.acquire()  # a request under way (an acquisition, say) is answered first
            self._lock.release()
            while (self._lease.epoch is not None and self.held()) or self._lease.in_doubt:
                wait = await self._advance()
                if wait is not None:
                    await anyio.sleep(max(min(wait.until - self._clock(), self._tick), 0.0))
        if self._lease.epoch is not None and self.held():  # the others take it once it has run out
            log.warning("lease_release_unconfirmed", account=self.account, replica=self.replica, epoch=self.epoch)
        self._check()

    async def _watch(self) -> None:
        """Look every tick whether time alone changed what may be done (the fence, the hold)."""
        while True:
            await anyio.sleep(self._tick)
            self._check()

    async def _advance(self) -> Wait | None:
        """One step of the machine: a request sent and answered (None), or how long to wait."""
        async with self._lock:
            before = self._lease.epoch
            step = self._lease.next(self._clock(), self._unix())
            self._publish(before)
            if isinstance(step, Wait):
                return step
            before = self._lease.epoch
            await self._send(step)
            self._publish(before)
            return None

    async def _send(self, step: Read | Create | Replace) -> None:
        """Send ``step`` within the request timeout and feed the machine its answer."""
        sent_at = self._clock()
        try:
            with anyio.fail_after(self.request_timeout):
                answer = await _ask(self._store, step)
        except anyio.get_cancelled_exc_class():
            self._unanswered(step)  # run() cancelled mid-request: keep the machine consistent
            raise
        except errors.ConditionFailed:
            answer = None  # a store that raises it rather than answering None
        except TimeoutError:
            self._failed(step, f"no answer within {self.request_timeout:g} s")
            return
        except errors.LakeCircleError as exc:
            self._failed(step, str(exc))
            return
        except Exception as exc:  # a bug in a store must not end the keeper
            log.exception("lease_internal_error", account=self.account, replica=self.replica, error=repr(exc))
            self._unanswered(step)
            return
        self._failing.discard(type(step).__name__.lower())
        if not isinstance(step, Read):
            self._failing -= {"create", "replace"}  # a write answered: the store takes writes again
        if self.contact is not None:
            self.contact(True)
        if isinstance(step, Read):
            self._lease.read_result(answer if not isinstance(answer, str) else None, self._clock())
        else:
            self._lease.write_result(answer if isinstance(answer, str) else None, sent_at, self._clock())

    def _failed(self, step: Step, error: str) -> None:
        if self.contact is not None:
            self.contact(False)
        operation = type(step).__name__.lower()
        level = "debug" if operation in self._failing else "warning"
        fields = {"account": self.account, "replica": self.replica, "operation": operation, "error": error}
        getattr(log, level)("lease_request_failed", **fields)
        self._failing.add(operation)
        self._unanswered(step)

    def _unanswered(self, step: Step) -> None:
        if isinstance(step, Read):
            self._lease.read_failed(self._clock())
        else:
            self._lease.write_unknown(self._clock())

    # -- telling ----------------------------------------------------------------------------

    def _publish(self, before: int | None) -> None:
        """Log and tell the transitions since the last call; ``before``: the epoch held before them."""
        for reason in self._lease.transitions():
            epoch = before if reason in (Transition.LOST, Transition.RELEASED) else self._lease.epoch
            fields: dict[str, object] = {"account": self.account, "replica": self.replica, "epoch": epoch}
            if reason is Transition.LOST and self._lease.holder not in (None, self.replica):
                fields["holder"] = self._lease.holder  # known only when a read told the loss
            getattr(log, _LOG_LEVELS[reason])(f"lease_{reason.value}", **fields)
            if self._observer is not None:
                self._observer.lease_transition(self.account, reason)
            if reason is Transition.LOST:
                self._tell_lost()
            elif reason in (Transition.ACQUIRED, Transition.TAKEN_OVER):
                self._lost_told = False
            before = self._lease.epoch
        self._check()

    def _check(self) -> None:
        """Tell what time or an answer changed: the hold (observer), the fence (waiters, on_lost)."""
        held = self.held()
        if held != self._held:
            self._held = held
            if self._observer is not None:
                self._observer.lease_held(self.account, held)
        writable = self.may_start_write()
        if writable != self._writable:
            self._writable = writable
            if writable:
                self._lost_told = False
                for gained in self._gained:
                    gained()
            elif self._lease.epoch is not None and self._lease.wanted:
                self._tell_lost()
            self._changed.set()
            self._changed = anyio.Event()

    def _tell_lost(self) -> None:
        if self._lost_told:
            return
        self._lost_told = True
        for callback in self._callbacks:
            callback()


async def _ask(store: LeaseStore, step: Read | Create | Replace) -> Versioned | str | None:
    """Send ``step``: what a read found, or a write's new ETag (None: nothing, or its condition failed)."""
    if isinstance(step, Read):
        return await store.read(step.key)
    if isinstance(step, Create):
        return await store.create(step.key, step.data)
    return await store.replace(step.key, step.data, step.etag)
