"""Records an older LakeCircle wrote (with ``previous/``) still read: history, rollback, the next sync.

The fixture ``old_layout/`` holds the endpoint's objects exactly as the last version that
saved ``previous/<bucket>.json`` wrote them (its README says what happened to each bucket).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketState
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.history import History
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.records import Outcome
from lakecircle.engine.rollback import rollback
from lakecircle.ports import BucketRef
from lakecircle.testing import MemoryS3
from tests.builders import definition, rule

pytestmark = pytest.mark.anyio

OLD_LAYOUT = Path(__file__).parent / "old_layout"
OLD_APPLIED = "history/2026/01/01/000400.000000Z-old-bucket.json"
OLD_FAILED = "history/2026/01/01/001200.000000Z-old-bucket.json"
BARE_APPLIED = "history/2026/01/01/000300.000000Z-bare-bucket.json"


def old_records() -> dict[str, bytes]:
    return {path.relative_to(OLD_LAYOUT).as_posix(): path.read_bytes() for path in sorted(OLD_LAYOUT.rglob("*.json"))}


def written_by_an_older_version() -> MemoryS3:
    """The account and endpoint as the older version left them: old-bucket holds v1 (its v2 failed),
    bare-bucket holds b1 (it held no configuration before)."""
    s3 = MemoryS3()
    s3.add_bucket("old-bucket", LifecycleConfig((rule("v1"),)))
    s3.add_bucket("bare-bucket", LifecycleConfig((rule("b1"),)))
    s3.objects.update(old_records())
    return s3


def ids(config: LifecycleConfig) -> list[str]:
    return sorted(r.id or "" for r in config.rules)


def test_the_fixture_is_the_old_layout_with_a_previous_record_that_is_not_the_rollback_target() -> None:
    records = old_records()
    assert {k.split("/", 1)[0] for k in records} == {"current", "history", "previous"}
    assert b'"ID": "v1"' in records["previous/old-bucket.json"]  # the bucket's own state, after the failed v2


async def test_history_of_a_bucket_written_by_an_older_version_reads_each_outcome() -> None:
    s3 = written_by_an_older_version()
    found = await History(s3).bucket_history("old-bucket")
    assert not found.unreadable
    assert [(r.key, r.outcome) for r in found.records] == [(OLD_FAILED, Outcome.FAILED), (OLD_APPLIED, Outcome.APPLIED)]


async def test_rollback_of_a_bucket_last_written_by_an_older_version_restores_what_it_held_before() -> None:
    s3 = written_by_an_older_version()
    history = History(s3)
    result = await rollback(s3, history, BucketRef("old-bucket"))
    assert result.applied
    assert ids(s3.lifecycles["old-bucket"]) == ["v0"]  # not v1, which the old previous/ record holds
    assert result.source == f"current/old-bucket.json (before change {OLD_APPLIED})"
    assert s3.objects["previous/old-bucket.json"] == old_records()["previous/old-bucket.json"]
    newest = (await history.bucket_history("old-bucket")).records[0]
    assert (newest.document.kind, newest.outcome, newest.document.last_applied) == (
        "rollback",
        Outcome.APPLIED,
        OLD_APPLIED,
    )


async def test_rollback_of_an_older_versions_write_to_a_bucket_that_held_nothing_deletes_its_configuration() -> None:
    s3 = written_by_an_older_version()
    history = History(s3)
    result = await rollback(s3, history, BucketRef("bare-bucket"))
    assert (result.applied, result.plan.action.value) == (True, "delete")
    assert s3.lifecycles["bare-bucket"] == LifecycleConfig()
    s3.lifecycles["bare-bucket"] = LifecycleConfig((rule("b1"),))
    result = await rollback(s3, history, BucketRef("bare-bucket"), record=BARE_APPLIED)
    assert (result.applied, result.plan.action.value) == (True, "delete")


async def test_rollback_to_an_older_versions_change_record_restores_its_before() -> None:
    s3 = written_by_an_older_version()
    result = await rollback(s3, History(s3), BucketRef("old-bucket"), record=OLD_APPLIED)
    assert result.applied
    assert ids(s3.lifecycles["old-bucket"]) == ["v0"]


async def test_a_sync_over_the_old_layout_leaves_previous_records_as_they_were_and_keeps_the_chain() -> None:
    s3 = written_by_an_older_version()
    s3.objects["definition/old-bucket.toml"] = definition("old-bucket", rule("v3"))
    s3.objects["definition/bare-bucket.toml"] = definition("bare-bucket", rule("b1"))
    history = History(s3)
    report = await Reconciler(s3, DefinitionLoader(s3), history=history).run_cycle()
    assert [(r.bucket, r.state) for r in report.results] == [
        ("bare-bucket", BucketState.IN_SYNC),
        ("old-bucket", BucketState.CHANGED),
    ]
    old = old_records()
    assert {k: v for k, v in s3.objects.items() if k.startswith("previous/")} == {
        k: v for k, v in old.items() if k.startswith("previous/")
    }
    found = await history.bucket_history("old-bucket")
    assert [r.outcome for r in found.records] == [Outcome.APPLIED, Outcome.FAILED, Outcome.APPLIED]
    assert found.records[0].document.last_applied == OLD_APPLIED
    assert ids(found.records[0].config("before")) == ["v1"]
    result = await rollback(s3, history, BucketRef("old-bucket"))
    assert ids(s3.lifecycles["old-bucket"]) == ["v1"]  # what it held before the new version's change
    assert result.applied
