"""One replica's side of one lease (issue 17), as a state machine that does no I/O and reads no clock.

Several replicas may run; only the holder of an account's lease writes its buckets. The lease is an
object under ``LCC_ENDPOINT`` that is only ever written on a condition (S3 conditional writes:
``If-None-Match: *`` to create it, ``If-Match: <etag>`` to renew, take over or release it), so two
replicas that race are told so (412/409) and never overwrite each other. :class:`Lease` decides what to
send; the caller (``engine/lease.py``) sends it and feeds the answer back with its *monotonic* time.

Why it is safe (ARCHITECTURE.md, Safety):

- No replica trusts another's clock. The lease is free when there is no object, when its body says
  released, or when its ETag has not changed for a whole duration as this replica's own monotonic
  clock measures from when it first saw that ETag (client-go's rule). The writer's Unix times in the
  body are for people only.
- The holder's deadline runs from when its successful write was *sent*; observers count from when they
  first *saw* the new ETag, which is later. A write whose answer was lost counts from when it was asked
  for, which is earlier still.
- Fencing: :meth:`Lease.may_start_write` lets a write start only while the lease has the write's timeout
  plus a margin left, never in doubt (an unknown outcome, a lost race: re-read first), and a new holder
  only once one write timeout has passed since it learned it holds a new epoch (two and the margin
  after a release that is not settled, which may have cut a write just started; not after a settled
  release, whose holder had no write in flight, nor after this process's own lapsed lease, whose
  writes ended by its old deadline), and a created one only once the object has been missing for a
  whole duration (a lease deleted under its holder).
- Every body written differs from every body before it (the epoch goes up on each acquisition, the
  ``renewed`` stamp strictly increases): S3's ETag of a plain PutObject is the MD5 of its bytes, so an
  identical renewal would keep the ETag and look, to observers, like no renewal at all.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TypeVar

from lakecircle.core.lease_body import LeaseBody, decode, encode
from lakecircle.core.lease_state import (
    NEW_EPOCH,
    REMEMBERED_UNKNOWN,
    RENEWALS_PER_DURATION,
    RETRIES_PER_DURATION,
    Hold,
    Seen,
    Sent,
    Transition,
    Version,
    later_stamp,
    new_hold,
)
from lakecircle.core.lease_steps import Create, Read, Replace, Step, Wait

__all__ = [
    "Create",
    "Lease",
    "LeaseBody",
    "Read",
    "Replace",
    "Step",
    "Transition",
    "Version",
    "Wait",
    "decode",
    "encode",
]

_Answered = TypeVar("_Answered", Read, Sent)


class Lease:
    """One replica's view of and decisions about one lease key.

    Drive it in a loop: ``step = lease.next(now)``; do what the step says; feed the answer back
    (:meth:`read_result`, :meth:`read_failed`, :meth:`write_result`, :meth:`write_unknown`); collect
    :meth:`transitions`. One request at a time: :meth:`next` refuses while one is under way. Any task may
    ask :meth:`may_start_write` before each bucket write attempt.
    """

    def __init__(self, key: str, replica: str, duration: float, *, wanted: bool = True, instance: str = "") -> None:
        if not key or not replica:
            raise ValueError("a lease needs a key and a replica id")
        if not math.isfinite(duration) or duration <= 0:
            raise ValueError(f"lease {key}: the duration must be a positive number of seconds, not {duration}")
        self.key = key
        self.replica = replica
        self.duration = duration
        self._interval = duration / RENEWALS_PER_DURATION
        self.instance = instance
        """This process among those that may share the replica id (the own-lapsed-lease rule needs it)."""
        self._wanted = wanted
        self._settled = False
        self._seen: Seen | None = None
        self._hold: Hold | None = None
        self._pending: Sent | Read | None = None
        self._unknown: list[Sent] = []
        self._must_read = True
        self._retry_at = -math.inf
        self._highest_epoch = 0
        self._stamp = -math.inf
        self._transitions: list[Transition] = []

    # -- what the rest of the replica asks -------------------------------------------------------

    @property
    def wanted(self) -> bool:
        return self._wanted

    @property
    def epoch(self) -> int | None:
        """The epoch this replica holds (it goes into every change record), else None."""
        return self._hold.body.epoch if self._hold is not None else None

    @property
    def holder(self) -> str | None:
        """Who holds the lease as last known: this replica, the holder of the body read when it is not
        released, or None (none, released, unreadable, not read yet)."""
        if self._hold is not None:
            return self.replica
        body = self._seen.body if self._seen is not None else None
        return body.holder if body is not None and not body.released else None

    @property
    def in_doubt(self) -> bool:
        """An acquisition's outcome is unknown and not read back yet: it may hold the lease."""
        return self._must_read and any(sent.reason in NEW_EPOCH for sent in self._unknown)

    def held(self, now: float) -> bool:
        """This replica holds the lease and its deadline has not passed."""
        return self._hold is not None and now < self._hold.deadline

    def free(self, now: float) -> bool:
        """Free for this replica to take, as far as it knows (False until it has read the lease)."""
        if self._hold is not None or self._must_read or self._seen is None:
            return False
        return now >= self._seen.free_from(self.duration)

    def may_start_write(self, now: float, write_timeout: float, margin: float) -> bool:
        """May a bucket write (one attempt, at most ``write_timeout`` long) start now? Only while held and
        wanted, never in doubt, after the new-holder wait, and with ``write_timeout + margin`` left."""
        hold = self._hold
        return (
            hold is not None
            and self._wanted
            and not self._must_read
            and hold.waited(now, write_timeout)
            and hold.deadline - now >= write_timeout + margin
        )

    def waited(self, now: float, write_timeout: float) -> bool:
        """Not held, or past the new-holder wait (no write of a holder before may still apply)."""
        return self._hold is None or self._hold.waited(now, write_timeout)

    def want(self, wanted: bool, *, settled: bool = False) -> None:
        """Whether this replica wants the lease at all; ``want(False)`` while holding releases it at the
        next step, so call it once the writes under way have finished. ``settled``: no write of this
        holder's may still be in flight (none was abandoned unanswered lately), so the next holder
        need not wait."""
        self._wanted = wanted
        self._settled = settled and not wanted

    def transitions(self) -> tuple[Transition, ...]:
        """The transitions since the last call, oldest first."""
        out, self._transitions = tuple(self._transitions), []
        return out

    # -- the next request ------------------------------------------------------------------------

    def next(self, now: float, unix: float = 0.0) -> Step:
        """What to do now. ``unix`` is the caller's Unix time, written into the body for people only."""
        if self._pending is not None:
            raise RuntimeError(f"lease {self.key}: a request is under way; feed its answer first")
        self._lapse(now)
        if self._must_read or self._seen is None:
            return self._read(now) if now >= self._retry_at else Wait(self._retry_at)
        hold = self._hold
        if hold is not None:
            if not self._wanted:
                stamp = self._next_stamp(unix)
                released = replace(hold.body, released=True, settled=self._settled, renewed=stamp)
                return self._write(now, released, hold.etag, Transition.RELEASED)
            if now >= hold.renew_at:
                renewed = replace(hold.body, renewed=self._next_stamp(unix))
                return self._write(now, renewed, hold.etag, Transition.RENEWED)
            return Wait(hold.renew_at)
        seen, free_from = self._seen, self._seen.free_from(self.duration)
        if self._wanted and now >= free_from:
            return self._acquire(seen, now, unix)
        due = max(seen.read_at + self._interval, self._retry_at)
        if self._wanted:
            due = min(due, free_from)
        return self._read(now) if now >= due else Wait(due)

    def _acquire(self, seen: Seen, now: float, unix: float) -> Step:
        previous = seen.body
        epoch = max(previous.epoch if previous is not None else 0, self._highest_epoch) + 1
        ours_or_free = previous is not None and (previous.released or self._own(previous))
        reason = Transition.ACQUIRED if seen.etag is None or ours_or_free else Transition.TAKEN_OVER
        stamp = self._next_stamp(unix)
        body = LeaseBody(
            self.replica, epoch, acquired=stamp, renewed=stamp, duration=self.duration, instance=self.instance
        )
        return self._write(now, body, seen.etag, reason)

    def _read(self, now: float) -> Read:
        self._pending = Read(self.key)
        return self._pending

    def _write(self, now: float, body: LeaseBody, etag: str | None, reason: Transition) -> Create | Replace:
        data = encode(body)
        self._pending = Sent(data, body, etag, now, reason)
        return Create(self.key, data) if etag is None else Replace(self.key, data, etag)

    # -- the answers -----------------------------------------------------------------------------

    def read_result(self, found: Version | None, now: float) -> None:
        """The object read (None: there is none), at monotonic ``now`` (when the answer came)."""
        self._take(Read)
        self._must_read = False
        self._retry_at = -math.inf
        self._lapse(now)
        hold = self._hold
        if found is None:
            if hold is not None:
                self._lose()
            self._observe(None, None, now, now)
            return
        body = decode(found.data)
        if body is not None:
            self._highest_epoch = max(self._highest_epoch, body.epoch)
        mine = next((sent for sent in self._unknown if sent.data == found.data), None)
        if hold is not None:
            if found.etag == hold.etag:
                self._observe(found.etag, hold.body, now, None)
                return
            if mine is not None and mine.body.epoch == hold.body.epoch:
                self._unknown.clear()
                self._settle(mine, found.etag, now)
                return
            self._lose()
        elif mine is not None and mine.reason in NEW_EPOCH and mine.issued_at + self.duration > now:
            self._unknown.clear()
            self._settle(mine, found.etag, now)
            return
        self._observe(found.etag, body, now, mine.issued_at if mine is not None else None)

    def read_failed(self, now: float) -> None:
        """The read did not answer: nothing learned; it is asked again a little later."""
        self._take(Read)
        self._retry_at = now + self.duration / RETRIES_PER_DURATION

    def write_result(self, etag: str | None, sent_at: float, now: float) -> None:
        """The write's answer: its new ETag, or None when its condition failed (another replica won the
        race: re-read). ``sent_at``: the monotonic time the request was sent."""
        sent = self._take(Sent)
        if etag is None:
            self._must_read = True
            if self._hold is not None and not self._unknown:
                self._lose()
            return
        self._unknown.clear()
        self._highest_epoch = max(self._highest_epoch, sent.body.epoch)
        self._settle(replace(sent, issued_at=min(sent_at, now)), etag, now)

    def write_unknown(self, now: float) -> None:
        """The write failed or timed out: it may have applied, or may still. Re-read before anything else;
        no write starts until then."""
        sent = self._take(Sent)
        self._must_read = True
        self._unknown = [*self._unknown, sent][-REMEMBERED_UNKNOWN:]

    # -- bookkeeping -----------------------------------------------------------------------------

    def _take(self, kind: type[_Answered]) -> _Answered:
        pending = self._pending
        if not isinstance(pending, kind):
            message = f"lease {self.key}: an answer to {kind.__name__} came, but {pending} was asked for"
            raise RuntimeError(message)  # noqa: TRY004  # a caller's mistake, not a bad argument's type
        self._pending = None
        return pending

    def _settle(self, sent: Sent, etag: str, now: float) -> None:
        """``sent`` applied as ``etag``. ``sent.issued_at`` is no later than when it was sent, so the
        deadline counted from it ends before any observer's count (for a write whose answer was lost and
        whose bytes were read back: from when it was asked for)."""
        prior = self._seen
        self._seen = Seen(etag, sent.body, sent.issued_at, read_at=now)
        deadline, renew_at, hold = sent.issued_at + self.duration, sent.issued_at + self._interval, self._hold
        if sent.reason is Transition.RELEASED:
            self._hold = None
        elif sent.reason in NEW_EPOCH or hold is None:
            self._hold = new_hold(prior, sent, etag, now, duration=self.duration, own=self._own)
        else:
            self._hold = replace(hold, etag=etag, body=sent.body, deadline=deadline, renew_at=renew_at)
        self._transitions.append(sent.reason)

    def _observe(self, etag: str | None, body: LeaseBody | None, now: float, first_seen: float | None) -> None:
        """Remember what was read; an ETag already seen keeps the time it was first seen."""
        seen = self._seen
        if seen is not None and seen.etag == etag and (etag is not None or first_seen is None):
            self._seen = replace(seen, read_at=now)  # the same ETag, or still no object: since when it was first seen
        else:
            self._seen = Seen(etag, body, now if first_seen is None else first_seen, read_at=now)

    def _own(self, body: LeaseBody) -> bool:
        """Written by this process (not merely by a process with the same replica id)."""
        return body.holder == self.replica and bool(self.instance) and body.instance == self.instance

    def _lapse(self, now: float) -> None:
        if self._hold is not None and now >= self._hold.deadline:
            self._lose()

    def _lose(self) -> None:
        self._hold = None
        self._transitions.append(Transition.LOST)

    def _next_stamp(self, unix: float) -> float:
        self._stamp = later_stamp(self._stamp, unix)
        return self._stamp
