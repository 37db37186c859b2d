"""LakeCircle's records under ``LCC_ENDPOINT``: write-ahead snapshots, history, reports.

Before any PUT or DELETE the bucket's configuration is saved to ``previous/<bucket>.json``
and a change record to ``history/<yyyy>/<mm>/<dd>/<time>-<bucket>.json``; if either save
fails the bucket is not written (DESIGN.md, rule 7). After the write,
``current/<bucket>.json`` records what LakeCircle applied, which is how later cycles tell
propagation, divergence and other writers apart, and which rules a shared bucket's
LakeCircle may remove. Cycles that changed something or failed leave their report in
``log/``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

import anyio
from pydantic import ValidationError

from lakecircle import __version__
from lakecircle.drift import Applied, config_from_json
from lakecircle.errors import LakeCircleError
from lakecircle.model import LifecycleConfig
from lakecircle.plan import BucketPlan
from lakecircle.render import config_json, plan_json
from lakecircle.store import EndpointStore

FORMAT_VERSION = 1


class SnapshotError(LakeCircleError):
    """The write-ahead record could not be saved: the bucket must not be written."""


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True, default=str).encode()


class History:
    def __init__(
        self,
        store: EndpointStore,
        *,
        caller: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.caller = caller
        self.clock = clock

    # -- keys ---------------------------------------------------------------------------

    @staticmethod
    def current_key(bucket: str) -> str:
        return f"current/{bucket}.json"

    @staticmethod
    def previous_key(bucket: str) -> str:
        return f"previous/{bucket}.json"

    def _history_key(self, bucket: str, now: float) -> str:
        t = dt.datetime.fromtimestamp(now, dt.UTC)
        return f"history/{t:%Y/%m/%d}/{t:%H%M%S.%f}Z-{bucket}.json"

    # -- the write-ahead protocol ---------------------------------------------------------

    async def before_write(self, plan: BucketPlan, *, cycle_id: str, kind: str = "sync") -> str:
        """Save the bucket's configuration and the change record; return the record's key."""
        now = self.clock()
        stamp = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
        key = self._history_key(plan.bucket, now)
        after = plan.desired if plan.action.value == "put" else LifecycleConfig()
        record = {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "bucket": plan.bucket,
            "time": stamp,
            "cycle_id": cycle_id,
            "version": __version__,
            "caller": self.caller,
            "action": plan.action.value,
            "before": config_json(plan.live),
            "after": config_json(after),
            "plan": plan_json(plan),
        }
        previous = {
            "format_version": FORMAT_VERSION,
            "bucket": plan.bucket,
            "time": stamp,
            "cycle_id": cycle_id,
            "config": config_json(plan.live),
        }
        try:
            # Both records before the write, sent at once: the write waits for the slower.
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.store.put_bytes, self.previous_key(plan.bucket), _dumps(previous))
                tg.start_soon(self.store.put_bytes, key, _dumps(record))
        except* LakeCircleError as group:
            first = group.exceptions[0]
            raise SnapshotError(f"could not save the write-ahead record of {plan.bucket}: {first}") from first
        return key

    async def after_write(self, plan: BucketPlan, applied: Applied, *, cycle_id: str, history_key: str) -> None:
        document = {
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
        await self.store.put_bytes(self.current_key(plan.bucket), _dumps(document))

    async def load_applied(self, bucket: str) -> Applied | None:
        """The bucket's ``current/`` record, or None when LakeCircle never wrote it."""
        data = await self.store.get_bytes(self.current_key(bucket))
        if data is None:
            return None
        try:
            document = json.loads(data)
            rewrites = int(document.get("rewrites", 0))
            return Applied.of(
                config_from_json(document["config"]),
                dict(document.get("previous") or {}),
                float(document["applied_at"]),
                rewrites=rewrites,
                # A record that old settled long ago, unless it was still diverging.
                confirmed=rewrites == 0,
                owned=tuple(str(i) for i in document.get("owned_rules", ())),
            )
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise LakeCircleError(f"current/{bucket}.json cannot be read: {exc}") from exc

    async def applied_buckets(self) -> set[str]:
        """The buckets that have a ``current/`` record (one listing)."""
        keys = await self.store.list_keys("current/")
        return {k.removeprefix("current/").removesuffix(".json") for k in keys if k.endswith(".json")}

    async def write_report(self, document: dict[str, Any], *, cycle_id: str) -> str:
        t = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        key = f"log/{t:%Y/%m/%d}/{t:%H%M%S}Z-{cycle_id}.json"
        await self.store.put_bytes(key, _dumps(document))
        return key

    # -- reading back -------------------------------------------------------------------

    async def records(self, bucket: str) -> list[str]:
        """The keys of a bucket's history records, newest first."""
        keys = await self.store.list_keys("history/")
        return sorted((k for k in keys if k.endswith(f"Z-{bucket}.json")), reverse=True)

    async def read(self, key: str) -> dict[str, Any]:
        data = await self.store.get_bytes(key)
        if data is None:
            raise LakeCircleError(f"no record {key} under the endpoint")
        document: dict[str, Any] = json.loads(data)
        return document
