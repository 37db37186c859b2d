"""What one replica knows of one lease (:mod:`lakecircle.core.lease`): the object as last seen,
the hold, the writes asked for, and the rules for a new hold and the body's stamp."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from lakecircle.core.lease_body import LeaseBody

RENEWALS_PER_DURATION = 3
"""The holder renews every duration / 3; an observer reads as often."""
MARGIN_PER_DURATION = 10
"""The fence's margin is a tenth of the lease's duration (engine/leases.py): left beyond a write's timeout
before the deadline, and added to the wait after a release that is not settled."""
RETRIES_PER_DURATION = 10
"""A read that failed is asked again after duration / 10."""
REMEMBERED_UNKNOWN = 8
"""Writes with an unknown outcome remembered (to recognise them); a forgotten one reads as another holder's."""
STAMP_STEP = 0.001
"""How much the ``renewed`` stamp moves on when the caller's Unix time has not (one millisecond)."""


class Transition(StrEnum):
    """What changed about this replica's hold on the lease (``lakecircle_lease_transitions_total{reason}``)."""

    ACQUIRED = "acquired"
    """Held with a new epoch: created, or after a release (or this replica's own lapsed lease)."""
    RENEWED = "renewed"
    LOST = "lost"
    """Held, and now not: another replica won a race, or the deadline passed without a renewal."""
    RELEASED = "released"
    TAKEN_OVER = "taken_over"
    """Held with a new epoch, over another holder's lease that had expired by the ETag rule."""


class Version(Protocol):
    """An object's bytes and the ETag they were read with (``lakecircle.ports.Versioned`` is one)."""

    @property
    def data(self) -> bytes: ...

    @property
    def etag(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Seen:
    """The object as this replica last read or wrote it. ``etag`` None: there was none."""

    etag: str | None
    body: LeaseBody | None
    first_seen: float
    """When this replica first saw ``etag`` (for its own writes: when the write was asked for)."""
    read_at: float

    def free_from(self, duration: float) -> float:
        """When the lease is free by this observation: at once when there is no object or it is released,
        else once its ETag has stood for its body's duration (``duration`` for a body that cannot be read)."""
        if self.etag is None or (self.body is not None and self.body.released):
            return -math.inf
        return self.first_seen + (self.body.duration if self.body is not None else duration)


@dataclass(frozen=True, slots=True)
class Hold:
    etag: str
    body: LeaseBody
    deadline: float
    renew_at: float
    acquired_at: float
    """When this replica learned it holds this epoch: the new-holder wait runs from it."""
    writable_from: float = -math.inf
    """No write before this: a created lease is written once the object has been missing for a whole
    duration (a holder whose object someone deleted stops writing within that time)."""
    waits_for: float = 0.0
    """The holder before's longest write (a third of its duration): the new-holder wait is at least
    that, when its ``LCC_LEASE_SECONDS`` was longer than this replica's."""

    def waited(self, now: float, write_timeout: float) -> bool:
        """The new-holder wait is over: no write of a holder before this one may still apply."""
        return now - self.acquired_at >= max(write_timeout, self.waits_for) and now >= self.writable_from


@dataclass(frozen=True, slots=True)
class Sent:
    """A write asked for: under way, or with an unknown outcome."""

    data: bytes
    body: LeaseBody
    etag: str | None
    issued_at: float
    reason: Transition
    """What it means if it applied."""


NEW_EPOCH = (Transition.ACQUIRED, Transition.TAKEN_OVER)


def new_hold(
    prior: Seen | None, sent: Sent, etag: str, now: float, *, duration: float, own: Callable[[LeaseBody], bool]
) -> Hold:
    """A new epoch held (``sent`` applied as ``etag``). Its first write waits one write timeout, at
    least the holder before's (it may still be writing); after a release that is not settled, two of
    them and the margin (a write cut by the release may still apply); none after a settled release
    (its holder had no write in flight) or this process's own lapsed lease (its writes ended by its
    old deadline); a created
    one also waits until the object has been missing for a whole duration (someone may have deleted
    a lease whose holder writes until its next renewal fails)."""
    deadline, renew_at = sent.issued_at + duration, sent.issued_at + duration / RENEWALS_PER_DURATION
    body = prior.body if prior is not None else None
    at_once = body is not None and (body.settled if body.released else own(body))
    missing_since = prior.first_seen if prior is not None and prior.etag is None else now
    writable_from = missing_since + duration if sent.etag is None else -math.inf
    before = body.duration if body is not None else duration
    waits_for = before / RENEWALS_PER_DURATION
    if body is not None and body.released and not body.settled:
        # Released mid-write (a shutdown cut it): that write, started before the release, may still
        # apply until two of its timeouts after it started; the release says nothing of when it started.
        waits_for = 2 * waits_for + before / MARGIN_PER_DURATION
    acquired_at = -math.inf if at_once else now
    return Hold(etag, sent.body, deadline, renew_at, acquired_at, writable_from=writable_from, waits_for=waits_for)


def later_stamp(last: float, unix: float) -> float:
    """A ``renewed`` stamp later than ``last``, the last one this replica wrote, so no two bodies are equal."""
    stamp = unix if math.isfinite(unix) and unix > last else last + STAMP_STEP
    return stamp if math.isfinite(stamp) else 0.0
