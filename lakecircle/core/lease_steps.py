"""What the lease machine (:mod:`lakecircle.core.lease`) asks its caller to do: read the lease
object, create it, replace it on a condition, or wait. The caller does it and feeds the answer
back to the machine; the machine itself does no I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Read:
    """Read the lease object (GetObject): answer with :meth:`Lease.read_result` or :meth:`Lease.read_failed`."""

    key: str


@dataclass(frozen=True, slots=True)
class Create:
    """PutObject ``If-None-Match: *``: answer with :meth:`Lease.write_result` or :meth:`Lease.write_unknown`."""

    key: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Replace:
    """PutObject ``If-Match: etag``: answer with :meth:`Lease.write_result` or :meth:`Lease.write_unknown`."""

    key: str
    data: bytes
    etag: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to do before monotonic ``until`` (or before :meth:`Lease.want` changes)."""

    until: float


Step = Read | Create | Replace | Wait
