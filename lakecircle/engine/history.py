"""LakeCircle's records under ``LCC_ENDPOINT``: write-ahead change records, history, reports.

Before any PUT or DELETE a change record is saved to
``history/<yyyy>/<mm>/<dd>/<time>-<bucket>.json``: the bucket's configuration as read
(``before``, an empty rule list when it held none), what the write sends (``after``), the
plan and the cycle. If that save fails the bucket is not written (ARCHITECTURE.md,
"Safety", rule 7). After the write, ``current/<bucket>.json`` records what LakeCircle
applied and what the bucket held before (``previous``), which is how later cycles tell
propagation, divergence and other writers apart, which rules a shared bucket's LakeCircle
may remove, and what ``rollback`` restores. Cycles that changed something or failed leave
their report in ``log/``. So a written bucket costs three requests: the change record, the
write, ``current/``.

Versions before issue 18 also saved ``previous/<bucket>.json`` beside each change record, a
copy of its ``before``. Nothing reads those objects now (the change record and the
``current/`` record say all they said), and nothing writes or deletes them: they stay as
they were, readable by anyone's own tools, and stale from the first write of this version.

A change record is written before its write, so by itself it does not say whether the
write happened. Its outcome is put where it costs least:

- **applied**: no request of its own. The ``current/`` record written after the write
  names it (``history``), and the next change record of the bucket names it again
  (``last_applied``), so it still reads as applied once ``current/`` has moved on.
- **failed** (with the error) or **not started** (a shutdown or the loss of the lease came
  between the record and the write): the record is written again with an ``outcome``.
  These are rare, so the extra request is too.
- **unknown**: none of the above, which happens only when a process stopped between the
  record and its outcome (SIGKILL, a power cut) or the outcome could not be saved.

The documents themselves, their readers and the resolution of outcomes are values in
:mod:`lakecircle.engine.records`; this module writes, lists and reads them.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Literal

import anyio
from pydantic import ValidationError

from lakecircle import __version__
from lakecircle.clocks import WallClock
from lakecircle.core.drift import Applied
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.plan import BucketPlan
from lakecircle.core.problems import printable
from lakecircle.core.render import config_json, plan_json
from lakecircle.engine.records import (
    FORMAT_VERSION,
    BucketHistory,
    Change,
    ChangeDocument,
    ChangeRecord,
    CurrentDocument,
    LeaseStamp,
    Outcome,
    RecordError,
    config_of,
    describe,
    dumps,
    json_object,
    resolve,
)
from lakecircle.errors import LakeCircleError
from lakecircle.ports import EndpointStore

READ_CONCURRENCY = 16
"""Records read at once by ``history`` and ``rollback``."""


class SnapshotError(LakeCircleError):
    """The write-ahead change record could not be saved: the bucket must not be written."""


class History:
    def __init__(
        self,
        store: EndpointStore,
        *,
        caller: str | None = None,
        clock: WallClock = time.time,
    ) -> None:
        self.store = store
        self.caller = caller
        self.clock = clock

    # -- keys ---------------------------------------------------------------------------

    @staticmethod
    def current_key(bucket: str) -> str:
        return f"current/{bucket}.json"

    def _history_key(self, bucket: str, now: float) -> str:
        t = dt.datetime.fromtimestamp(now, dt.UTC)
        return f"history/{t:%Y/%m/%d}/{t:%H%M%S.%f}Z-{bucket}.json"

    # -- the write-ahead protocol ---------------------------------------------------------

    def change_record(
        self,
        plan: BucketPlan,
        *,
        cycle_id: str,
        kind: str = "sync",
        last_applied: str | None = None,
        lease: LeaseStamp | None = None,
    ) -> Change:
        """The change record of a write about to be made (not saved yet: :meth:`before_write`).

        ``last_applied`` is the key of the bucket's last applied change, as far as the
        caller knows (its ``current/`` record): the new record names it, so that it stays
        applied in the history once ``current/`` has moved on. ``lease``: the lease holder
        and epoch the write is made in (only with leases: the record is otherwise unchanged).
        """
        now = self.clock()
        after = plan.desired if plan.action.value == "put" else LifecycleConfig()
        record = {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "bucket": plan.bucket,
            "time": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(),
            "cycle_id": cycle_id,
            "version": __version__,
            "caller": self.caller,
            "action": plan.action.value,
            "before": config_json(plan.live),
            "after": config_json(after),
            "plan": plan_json(plan),
            "last_applied": last_applied,
        }
        if lease is not None:
            record["lease"] = lease.as_json()
        return Change(self._history_key(plan.bucket, now), record)

    async def before_write(self, change: Change) -> None:
        """Save the change record, which holds what the bucket held (``before``); SnapshotError
        when it failed (the bucket must then not be written). One request: it is the only
        write-ahead record (``previous/`` is no longer written)."""
        try:
            await self.store.put_bytes(change.key, dumps(change.document))
        except LakeCircleError as exc:
            raise SnapshotError(f"could not save the write-ahead record of {change.bucket}: {exc}") from exc

    async def finish(self, change: Change, outcome: Outcome, error: str | None = None) -> None:
        """Write the change record again, saying its write failed or never started (or, for
        a rollback, was applied: no later cycle may name it)."""
        stamp = dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat()
        document = {**change.document, "outcome": {"state": outcome.value, "error": error, "time": stamp}}
        await self.store.put_bytes(change.key, dumps(document))

    async def after_write(
        self, plan: BucketPlan, applied: Applied, *, cycle_id: str, history_key: str, lease: LeaseStamp | None = None
    ) -> None:
        document: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "bucket": plan.bucket,
            "applied_at": applied.at,
            "time": dt.datetime.fromtimestamp(applied.at, dt.UTC).isoformat(),
            "cycle_id": cycle_id,
            "version": __version__,
            "history": history_key,
            "rewrites": applied.rewrites,
            "owned_rules": list(applied.owned),
            "config": config_json(plan.desired if plan.action.value == "put" else LifecycleConfig()),
            "previous": applied.previous_json(),
        }
        if lease is not None:
            document["lease"] = lease.as_json()
        await self.store.put_bytes(self.current_key(plan.bucket), dumps(document))

    # -- current/ -------------------------------------------------------------------------

    async def read_current(self, bucket: str) -> CurrentDocument | None:
        """The bucket's ``current/`` record, or None when LakeCircle never wrote it."""
        key = self.current_key(bucket)
        data = await self.store.get_bytes(key)
        if data is None:
            return None
        try:
            return CurrentDocument.model_validate(json_object(key, data))
        except ValidationError as exc:
            raise RecordError(key, describe(exc)) from None

    @staticmethod
    def current_config(current: CurrentDocument, side: Literal["config", "previous"]) -> LifecycleConfig:
        """A configuration of a ``current/`` record; RecordError when the model refuses it."""
        return config_of(History.current_key(current.bucket), side, getattr(current, side) or {})

    async def load_applied(self, bucket: str) -> Applied | None:
        """The bucket's ``current/`` record as an :class:`Applied`, or None when LakeCircle
        never wrote it; RecordError when it cannot be read."""
        current = await self.read_current(bucket)
        if current is None:
            return None
        config = self.current_config(current, "config")
        previous = self.current_config(current, "previous")
        return Applied.of(
            config,
            previous,
            current.applied_at,
            rewrites=current.rewrites,
            # A record that old settled long ago, unless it was still diverging (the
            # reconciler does not trust it within the settle window).
            confirmed=current.rewrites == 0,
            owned=tuple(current.owned_rules),
            history=current.history,
        )

    async def applied_buckets(self) -> set[str]:
        """The buckets that have a ``current/`` record (one listing)."""
        keys = await self.store.list_keys("current/")
        return {k.removeprefix("current/").removesuffix(".json") for k in keys if k.endswith(".json")}

    async def write_report(self, document: dict[str, Any], *, cycle_id: str) -> str:
        t = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        key = f"log/{t:%Y/%m/%d}/{t:%H%M%S}Z-{cycle_id}.json"
        await self.store.put_bytes(key, dumps(document))
        return key

    # -- reading back -------------------------------------------------------------------

    async def records(self, bucket: str) -> list[str]:
        """The keys of a bucket's history records, newest first."""
        keys = await self.store.list_keys("history/")
        return sorted((k for k in keys if k.endswith(f"Z-{bucket}.json")), reverse=True)

    async def read_change(self, key: str) -> ChangeRecord:
        """One change record (outcome as stated in it); RecordError when it is not one."""
        if not (key.startswith("history/") and key.endswith(".json")):
            raise RecordError(key, "not a change record (those are history/<yyyy>/<mm>/<dd>/<time>Z-<bucket>.json)")
        data = await self.store.get_bytes(key)
        if data is None:
            raise RecordError(key, "no such record under the endpoint")
        try:
            document = ChangeDocument.model_validate(json_object(key, data))
        except ValidationError as exc:
            raise RecordError(key, describe(exc)) from None
        return ChangeRecord(key, document)

    async def bucket_history(self, bucket: str) -> BucketHistory:
        """Every change record of the bucket, newest first, each with its outcome; the
        records that cannot be read are listed apart, and the others still read."""
        unreadable: list[RecordError] = []
        try:
            current = await self.read_current(bucket)
        except RecordError as exc:
            unreadable.append(exc)
            current = None
        found: dict[str, ChangeRecord] = {}
        slots = anyio.CapacityLimiter(READ_CONCURRENCY)

        async def read(key: str) -> None:
            async with slots:
                try:
                    record = await self.read_change(key)
                except RecordError as exc:
                    unreadable.append(exc)
                    return
            if record.document.bucket != bucket:
                other = printable(record.document.bucket)
                unreadable.append(RecordError(key, f"a record of bucket {other}, not of {printable(bucket)}"))
                return
            found[key] = record

        keys = await self.records(bucket)
        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(read, key)
        records = [found[k] for k in keys if k in found]
        unreadable.sort(key=lambda e: e.key)
        resolved = resolve(records, current.history if current is not None else None)
        return BucketHistory(resolved, current, unreadable)
