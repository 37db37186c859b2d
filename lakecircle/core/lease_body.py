"""The body of a lease object (``lease/<account>.json``): who holds it, in which epoch, for how long.

``settled`` and ``instance`` may be absent (read as False and ""): a body without them asks the
next holder for the longer, safer wait.

Written by one replica and read by all, so reading is defensive: anything that is not exactly a
version-1 body (wrong types, missing keys, another version, an epoch below 1, a number that is not
finite, more than 4 KiB) reads as None, never as an exception. A body that cannot be read is held by
an unknown holder and free by the ETag rule alone (:mod:`lakecircle.core.lease`). Keys this version
does not know are accepted, as in every record LakeCircle reads, so a later version may add some.

The Unix times are the writer's, for people reading the object; no decision uses them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

VERSION = 1
MAX_BYTES = 4096


@dataclass(frozen=True, slots=True)
class LeaseBody:
    holder: str
    """The replica id (``LCC_REPLICA_ID``)."""
    epoch: int
    """1 for the first holder; one more at each acquisition; kept by renewals and the release."""
    acquired: float
    """The writer's Unix time when it acquired this epoch (informational)."""
    renewed: float
    """The writer's Unix time of this write (informational; strictly increasing per writer)."""
    duration: float
    """Seconds the lease lasts after each write, by the observers' own clocks."""
    released: bool = False
    settled: bool = False
    """Released with no write of its holder's possibly still in flight: the next holder writes at once."""
    instance: str = ""
    """The holder's process (a random token per process): a replica id may be reused by another
    process (a restarted container, ``kubectl exec``), which must not count the lease as its own."""


def encode(body: LeaseBody) -> bytes:
    """Compact JSON with sorted keys and ``"version": 1``."""
    document = {
        "acquired": body.acquired,
        "duration": body.duration,
        "epoch": body.epoch,
        "holder": body.holder,
        "instance": body.instance,
        "released": body.released,
        "renewed": body.renewed,
        "settled": body.settled,
        "version": VERSION,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def decode(data: bytes) -> LeaseBody | None:
    """The body ``data`` holds, or None when it is not a version-1 lease body."""
    if len(data) > MAX_BYTES:
        return None
    try:
        document = json.loads(data, parse_constant=_refuse)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if not isinstance(document, dict) or _integer(document.get("version")) != VERSION:
        return None
    holder, epoch, released = document.get("holder"), _integer(document.get("epoch")), document.get("released")
    times = [_number(document.get(name)) for name in ("acquired", "renewed", "duration")]
    if not isinstance(holder, str) or not holder or epoch is None or epoch < 1 or not isinstance(released, bool):
        return None
    acquired, renewed, duration = times
    if acquired is None or renewed is None or duration is None or duration <= 0:
        return None
    settled, instance = document.get("settled", False), document.get("instance", "")
    if not isinstance(settled, bool) or not isinstance(instance, str):
        return None
    return LeaseBody(holder, epoch, acquired, renewed, duration, released, settled, instance)


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not a number")


def _integer(value: object) -> int | None:
    return value if type(value) is int else None


def _number(value: object) -> float | None:
    if type(value) not in (int, float):
        return None
    number = float(value)  # type: ignore[arg-type]  # int or float, checked above
    return number if math.isfinite(number) else None
