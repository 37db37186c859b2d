"""Change records end up saying what happened: applied, failed, never started, or unknown."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketState
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.history import History
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.records import ChangeDocument, ChangeRecord, Outcome, RecordError, resolve
from lakecircle.engine.rollback import rollback
from lakecircle.errors import AccessDenied
from lakecircle.ports import BucketRef
from lakecircle.service.daemon import Daemon
from lakecircle.testing import MemoryS3
from tests.builders import definition, rule

pytestmark = pytest.mark.anyio


def ids(config: LifecycleConfig) -> list[str]:
    return sorted(r.id or "" for r in config.rules)


def denied(operation: str, bucket: str) -> AccessDenied:
    return AccessDenied("Access Denied", operation=operation, bucket=bucket, code="AccessDenied")


def world(*rules: str) -> tuple[MemoryS3, History]:
    s3 = MemoryS3()
    s3.add_bucket("hist-bucket", LifecycleConfig(tuple(rule(r, prefix=None) for r in rules)))
    return s3, History(s3)


async def sync(s3: MemoryS3, history: History, *rules: str, **kwargs: Any) -> BucketState:
    s3.objects["definition/hist-bucket.toml"] = definition("hist-bucket", *(rule(r) for r in rules))
    report = await Reconciler(s3, DefinitionLoader(s3), history=history, **kwargs).run_cycle()
    return report.results[0].state


def outcomes(found: list[ChangeRecord]) -> list[tuple[str, str | None]]:
    return [(r.outcome.value, r.error) for r in found]


async def test_an_applied_change_stays_applied_after_later_changes_and_a_failed_one_says_why() -> None:
    s3, history = world("v0")
    assert await sync(s3, history, "v1") is BucketState.CHANGED
    assert await sync(s3, history, "v2") is BucketState.CHANGED  # a new process: current/ names v1's record
    s3.fail("PutBucketLifecycleConfiguration", "hist-bucket", denied)
    assert await sync(s3, history, "v3") is BucketState.FAILED
    found = await history.bucket_history("hist-bucket")
    assert not found.unreadable
    assert [r.document.after["Rules"][0]["ID"] for r in found.records] == ["v3", "v2", "v1"]
    state, error = outcomes(found.records)[0]
    assert state == "failed"
    assert error is not None
    assert "AccessDenied" in error
    assert outcomes(found.records)[1:] == [("applied", None), ("applied", None)]


async def test_a_change_record_keeps_the_plan_with_the_file_each_rule_came_from() -> None:
    s3, history = world("v0")
    assert await sync(s3, history, "v1") is BucketState.CHANGED
    [record] = (await history.bucket_history("hist-bucket")).records
    plan = record.document.plan
    assert plan["added"][0]["source"] == {"file": "definition/hist-bucket.toml", "selector": None, "pattern": None}
    assert plan["removed"][0]["source"] is None


async def test_a_change_record_that_cannot_be_saved_leaves_the_bucket_unwritten() -> None:
    class HistoryRefused(MemoryS3):
        async def put_bytes(self, key: str, data: bytes, content_type: str = "application/json") -> None:
            if key.startswith("history/"):
                raise denied("PutObject", "endpoint")
            await super().put_bytes(key, data, content_type)

    s3 = HistoryRefused()
    s3.add_bucket("hist-bucket", LifecycleConfig((rule("v0", prefix=None),)))
    history = History(s3)
    s3.objects["definition/hist-bucket.toml"] = definition("hist-bucket", rule("v1"))
    report = await Reconciler(s3, DefinitionLoader(s3), history=history).run_cycle()
    [result] = report.results
    assert (result.state, result.stage) == (BucketState.FAILED, "snapshot")
    assert "write-ahead" in (result.error or "")
    assert s3.calls["PutBucketLifecycleConfiguration"] == 0
    assert ids(s3.lifecycles["hist-bucket"]) == ["v0"]
    assert not [k for k in s3.objects if k.startswith(("history/", "current/", "previous/"))]


class KilledAtTheWrite(MemoryS3):
    """Keeps the endpoint's objects as they are when a lifecycle write is sent: what a process
    killed at that instant leaves behind."""

    def __init__(self) -> None:
        super().__init__()
        self.at_write: dict[str, dict[str, bytes]] = {}

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        self.at_write[bucket.name] = dict(self.objects)
        await super().put_lifecycle(bucket, config)


async def test_a_process_killed_as_its_write_is_sent_leaves_the_change_record_with_what_the_bucket_held() -> None:
    s3 = KilledAtTheWrite()
    s3.add_bucket("hist-bucket", LifecycleConfig((rule("v0", prefix=None),)))
    assert await sync(s3, History(s3), "v1") is BucketState.CHANGED
    assert await sync(s3, History(s3), "v2") is BucketState.CHANGED
    left = s3.at_write["hist-bucket"]  # as the v2 write was sent
    change = max(k for k in left if k.startswith("history/"))
    crashed = MemoryS3(objects=dict(left))
    crashed.add_bucket("hist-bucket", LifecycleConfig((rule("v2"),)))  # the write went through
    history = History(crashed)
    found = await history.bucket_history("hist-bucket")
    assert [r.outcome for r in found.records] == [Outcome.UNKNOWN, Outcome.APPLIED]
    assert found.records[0].key == change
    assert ids(found.records[0].config("before")) == ["v1"]
    assert not [k for k in left if k.startswith("previous/")]
    result = await rollback(crashed, history, BucketRef("hist-bucket"))  # the last applied change: v1's
    assert result.applied
    assert ids(crashed.lifecycles["hist-bucket"]) == ["v0"]


def drifted_world(buckets: int, drifted: int, deleted: int) -> MemoryS3:
    """``buckets`` buckets with definitions: the first ``drifted`` hold another rule than theirs,
    the next ``deleted`` hold a rule their definition (no rules) deletes, the rest are in sync."""
    s3 = MemoryS3()
    for i in range(buckets):
        name = f"count-{i:02d}"
        s3.objects[f"definition/{name}.toml"] = definition(name) if i >= drifted else definition(name, rule("want"))
        if i < drifted:
            s3.add_bucket(name, LifecycleConfig((rule("stale", prefix=None),)))
        elif i < drifted + deleted:
            s3.add_bucket(name, LifecycleConfig((rule("gone", prefix=None),)))
        else:
            s3.add_bucket(name)
    return s3


async def requests_of_a_cycle(s3: MemoryS3) -> int:
    report = await Reconciler(s3, DefinitionLoader(s3), history=History(s3)).run_cycle()
    assert report.ok
    return sum(s3.calls.values())


@pytest.mark.parametrize(("drifted", "deleted"), [(4, 0), (0, 4), (2, 2)], ids=["puts", "deletes", "both"])
async def test_a_written_bucket_costs_three_requests_its_change_record_its_write_and_its_current_record(
    drifted: int, deleted: int
) -> None:
    # Two cycles alike but for the written buckets: the difference is what the writes cost.
    base = drifted_world(12, 1, 0)
    more = drifted_world(12, 1 + drifted, deleted)
    extra = await requests_of_a_cycle(more) - await requests_of_a_cycle(base)
    assert extra == 3 * (drifted + deleted), (base.calls, more.calls)
    written = [f"count-{i:02d}" for i in range(1 + drifted + deleted)]
    for name in written:
        keys = sorted(k for k in more.objects if not k.startswith(("definition/", "log/")) and name in k)
        assert [k.split("/", 1)[0] for k in keys] == ["current", "history"], keys
    assert more.calls["PutObject"] == 2 * len(written) + 1  # and the cycle's report in log/


async def test_the_change_record_holds_the_configuration_before_as_read_none_included() -> None:
    s3 = MemoryS3()
    s3.add_bucket("bare-bucket")  # no lifecycle configuration at all
    s3.add_bucket("sized-bucket", LifecycleConfig((rule("v0", prefix=None),), "varies_by_storage_class"))
    s3.objects["definition/bare-bucket.toml"] = definition("bare-bucket", rule("b1"))
    s3.objects["definition/sized-bucket.toml"] = definition("sized-bucket", rule("s1"))
    history = History(s3)
    assert (await Reconciler(s3, DefinitionLoader(s3), history=history).run_cycle()).ok
    [bare] = (await history.bucket_history("bare-bucket")).records
    assert bare.document.before == {"Rules": [], "TransitionDefaultMinimumObjectSize": None}
    [sized] = (await history.bucket_history("sized-bucket")).records
    assert sized.document.before["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"
    assert [r["ID"] for r in sized.document.before["Rules"]] == ["v0"]
    assert sized.document.before["Rules"][0]["Filter"] == {}  # the spelling read, not the canonical one
    assert not [k for k in s3.objects if k.startswith("previous/")]

    result = await rollback(s3, history, BucketRef("bare-bucket"), record=bare.key)
    assert (result.applied, result.plan.action.value) == (True, "delete")
    assert s3.lifecycles["bare-bucket"] == LifecycleConfig()
    result = await rollback(s3, history, BucketRef("sized-bucket"), record=sized.key)
    assert result.applied
    assert s3.lifecycles["sized-bucket"] == LifecycleConfig((rule("v0", prefix=None),), "varies_by_storage_class")


def change(key: str, *, last_applied: str | None = None, outcome: str | None = None) -> ChangeRecord:
    document: dict[str, Any] = {
        "format_version": 1,
        "kind": "sync",
        "bucket": "hist-bucket",
        "time": "t",
        "cycle_id": "c",
        "action": "put",
        "before": {},
        "after": {},
        "last_applied": last_applied,
    }
    if outcome is not None:
        document["outcome"] = {"state": outcome, "error": "boom"}
    return ChangeRecord(key, ChangeDocument.model_validate(document))


@pytest.mark.parametrize(
    ("records", "current", "expected"),
    [
        pytest.param([change("h1")], "h1", ["applied"], id="named-by-current"),
        pytest.param([change("h1")], None, ["unknown"], id="stopped-before-any-outcome"),
        pytest.param([change("h1"), change("h2", last_applied="h1")], "h2", ["applied", "applied"], id="chain"),
        pytest.param(
            [change("h1"), change("h2", last_applied="h0"), change("h3", last_applied="h0")],
            "h3",
            ["unknown", "unknown", "applied"],
            id="killed-during-write-then-a-new-change",
        ),
        pytest.param([change("h1", outcome="failed")], "h0", ["failed"], id="stated-failed"),
        pytest.param([change("h1", outcome="not_started")], None, ["not_started"], id="stated-not-started"),
    ],
)
def test_a_records_outcome_is_stated_or_named_by_what_followed_it(
    records: list[ChangeRecord], current: str | None, expected: list[str]
) -> None:
    assert [r.outcome.value for r in resolve(records, current)] == expected


async def test_rollback_after_a_failed_write_restores_what_the_bucket_held_before_the_last_applied_change() -> None:
    s3, history = world("v0")
    assert await sync(s3, history, "v1") is BucketState.CHANGED
    s3.fail("PutBucketLifecycleConfiguration", "hist-bucket", denied)
    assert await sync(s3, history, "v2") is BucketState.FAILED  # the newest change record is of a failed write
    s3.failures.clear()
    result = await rollback(s3, history, BucketRef("hist-bucket"))
    assert result.applied
    assert ids(s3.lifecycles["hist-bucket"]) == ["v0"]
    assert result.source.startswith("current/hist-bucket.json")
    newest = (await history.bucket_history("hist-bucket")).records[0]
    assert (newest.document.kind, newest.outcome) == ("rollback", Outcome.APPLIED)


async def test_rollback_to_a_change_that_failed_is_refused_in_one_line() -> None:
    s3, history = world("v0")
    assert await sync(s3, history, "v1") is BucketState.CHANGED
    s3.fail("PutBucketLifecycleConfiguration", "hist-bucket", denied)
    assert await sync(s3, history, "v2") is BucketState.FAILED
    s3.failures.clear()
    failed = (await history.records("hist-bucket"))[0]
    with pytest.raises(RecordError) as caught:
        await rollback(s3, history, BucketRef("hist-bucket"), record=failed)
    assert str(caught.value).startswith(f"{failed}: its write failed")
    assert "\n" not in str(caught.value)
    assert ids(s3.lifecycles["hist-bucket"]) == ["v1"]


class HangingWrites(MemoryS3):
    """Lifecycle writes never answer (a stalled connection); a flag says one started."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = anyio.Event()

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        self.writing.set()
        await anyio.sleep_forever()


async def test_a_shutdown_that_cuts_a_cycle_short_leaves_its_report_and_the_writes_outcome() -> None:
    s3 = HangingWrites()
    s3.add_bucket("hist-bucket", LifecycleConfig((rule("v0", prefix=None),)))
    s3.add_bucket("quiet", LifecycleConfig((rule("q", prefix=None),)))
    s3.objects["definition/hist-bucket.toml"] = definition("hist-bucket", rule("v1"))
    s3.objects["definition/quiet.toml"] = definition("quiet", rule("q"))
    history = History(s3)
    daemon = Daemon(Reconciler(s3, DefinitionLoader(s3), history=history), shutdown_timeout=0.05)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            await s3.writing.wait()
            daemon.request_stop()
    [log_key] = [k for k in s3.objects if k.startswith("log/")]
    report = json.loads(s3.objects[log_key])
    assert report["interrupted"] is True
    assert report["problems"] == [
        {
            "bucket": "hist-bucket",
            "state": "failed",
            "error": "cut short by shutdown while it was being written",
            "stage": "write",
        }
    ]
    [record] = (await history.bucket_history("hist-bucket")).records
    assert record.outcome is Outcome.FAILED
    assert "cut short by shutdown" in (record.error or "")
    assert daemon.last_report is not None  # the metrics and readiness see the cut cycle too
    assert daemon.last_report.interrupted
    assert daemon.last_report.counts[BucketState.FAILED] == 1
