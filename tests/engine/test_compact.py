"""What a large account costs: definitions kept in brief, digests before plans, records listed.

A daemon managing 100,000 buckets cannot keep every rule as models (about 3 KB each), read
a current/ record per bucket it never wrote, or keep the plan of every bucket it wrote in
its report. These tests pin the compact forms to the values they stand for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakecircle.core.definitions import FileBrief, LazyBuckets, build_definitions, definitions_from_briefs
from lakecircle.core.digest import config_digest, in_sync, rules_digest
from lakecircle.core.drift import Applied
from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.core.parse import parse_file
from lakecircle.core.plan import Action, plan_bucket
from lakecircle.core.report import BucketState
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.history import History
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.testing import MemoryS3
from tests import strategies
from tests.builders import definition, rule

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "definitions"


FILES: dict[str, bytes] = {
    **{f"definition/{p.relative_to(EXAMPLES).as_posix()}": p.read_bytes() for p in sorted(EXAMPLES.rglob("*.toml"))},
    # one bucket over two files, one over three with a conflicting minimum object size
    "definition/split-a.toml": definition("split", rule("a1"), rule("a2")),
    "definition/split-b.toml": definition("split", rule("b1")),
    "definition/tdmos-1.toml": definition(
        "tdmos", rule("t1"), TransitionDefaultMinimumObjectSize="all_storage_classes_128K"
    ),
    "definition/tdmos-2.toml": definition(
        "tdmos", rule("t2"), TransitionDefaultMinimumObjectSize="varies_by_storage_class"
    ),
    "definition/tdmos-3.toml": definition("tdmos", rule("t3")),
    # the same rule ID in two files, a bad field, an incomplete bucket, a file that is not TOML
    "definition/dup-1.toml": definition("dup", rule("same")),
    "definition/dup-2.toml": definition("dup", rule("same")),
    "definition/bad-days.toml": definition("bad", rule("r", days=0)),
    "definition/unknown-key.toml": definition("unknown", rule("r"), Colour=1),
    "definition/garbage.toml": b"BucketName = \n",
    "definition/plain.toml": definition("plain", rule("p1"), rule("p2"), rule("p3")),
}


def briefs_of(files: dict[str, bytes]) -> list[FileBrief]:
    return [FileBrief.of(parse_file(name, data), data) for name, data in sorted(files.items())]


def test_briefs_build_the_same_definitions_as_the_parsed_files() -> None:
    eager = build_definitions(parse_file(name, data) for name, data in sorted(FILES.items()))
    compact = definitions_from_briefs(briefs_of(FILES))
    assert eager.invalid, "the corpus must hold invalid buckets"
    assert eager.unreadable, "and an unreadable file"
    assert compact.problems == eager.problems
    assert compact.invalid == eager.invalid
    assert compact.unreadable == eager.unreadable
    assert compact.files == eager.files
    assert eager.selectors, "and selectors (examples/definitions/fleet/)"
    assert compact.selectors == eager.selectors
    assert {n: (d.rules, d.tdmos) for n, d in compact.desired.items()} == {
        n: (rules_digest(b.config.rules), b.config.transition_default_minimum_object_size)
        for n, b in eager.buckets.items()
    }
    assert isinstance(compact.buckets, LazyBuckets)
    assert sorted(compact.buckets) == sorted(eager.buckets)
    assert {name: compact.buckets[name] for name in compact.buckets} == dict(eager.buckets)
    assert "split" in compact.buckets
    assert len(compact.buckets["split"].config.rules) == 3
    with pytest.raises(KeyError):
        compact.buckets["tdmos"]  # invalid: conflicting values


def test_a_brief_is_a_fraction_of_the_models_it_stands_for() -> None:
    data = FILES["definition/plain.toml"]
    brief = FileBrief.of(parse_file("definition/plain.toml", data), data)
    assert len(brief.packed) < len(data) + 16
    assert brief.parse() == parse_file("definition/plain.toml", data)


@settings(max_examples=200, deadline=None)
@given(strategies.equivalent_configs())
def test_equivalent_configurations_are_in_sync_by_digest(pair: tuple[LifecycleConfig, LifecycleConfig]) -> None:
    desired, live = pair
    assert config_digest(desired) == config_digest(live)
    if live.rules:
        assert in_sync(rules_digest(desired.rules), desired.transition_default_minimum_object_size, live)


@settings(max_examples=300, deadline=None)
@given(strategies.lifecycle_configs(min_rules=1), strategies.lifecycle_configs(), st.booleans())
def test_in_sync_by_digest_never_hides_a_write(desired: LifecycleConfig, live: LifecycleConfig, same: bool) -> None:
    if same:
        live = LifecycleConfig(tuple(reversed(desired.rules)), live.transition_default_minimum_object_size)
    digest = rules_digest(desired.rules)
    if in_sync(digest, desired.transition_default_minimum_object_size, live):
        assert plan_bucket("b", desired, live).action is Action.NOOP
    elif (
        same
        and live.rules
        and desired.transition_default_minimum_object_size
        in (
            None,
            live.transition_default_minimum_object_size,
        )
    ):
        pytest.fail("the same rules in another order must be in sync")


def test_applied_records_keep_digests_and_the_previous_configuration() -> None:
    written = LifecycleConfig((Rule.model_validate({"ID": "a", "Status": "Enabled", "Expiration": {"Days": 3}}),))
    before = LifecycleConfig((Rule.model_validate({"ID": "z", "Status": "Disabled", "Expiration": {"Days": 9}}),))
    applied = Applied.of(written, before, 10.0, owned=("a",))
    assert applied.config == config_digest(written)
    assert applied.previous == config_digest(before)
    again = Applied.of(written, applied.previous_json(), 11.0)
    assert again.previous == applied.previous
    assert again.previous_json() == applied.previous_json()


def account(buckets: int, *, drifted: int) -> MemoryS3:
    s3 = MemoryS3()
    for i in range(buckets):
        name = f"b{i:03d}"
        s3.objects[f"definition/{name}.toml"] = definition(name, rule("r1"), rule("r2"))
        rules = parse_file("x", definition(name, rule("r1"), rule("r2"))).buckets[0].config.rules
        s3.add_bucket(name, LifecycleConfig(rules if i >= drifted else rules[:1]))
    return s3


@pytest.mark.anyio
async def test_buckets_in_sync_are_decided_without_models(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = account(40, drifted=3)
    loader = DefinitionLoader(s3)
    reconciler = Reconciler(s3, loader, concurrency=4)
    loaded = await loader.load()
    assert all(isinstance(entry, FileBrief) for entry in loader._cache.values())
    parsed: list[str] = []
    real = FileBrief.parse

    def counting(self: FileBrief) -> object:
        parsed.append(self.name)
        return real(self)

    monkeypatch.setattr(FileBrief, "parse", counting)
    report = await reconciler.run_cycle()
    assert report.writes == 3
    assert report.counts[BucketState.IN_SYNC] == 37
    assert sorted(parsed) == [f"definition/b{i:03d}.toml" for i in range(3)]
    assert loaded.fetched == 40


@pytest.mark.anyio
async def test_current_records_are_listed_once_not_read_per_bucket() -> None:
    s3 = account(30, drifted=10)
    reconciler = Reconciler(s3, DefinitionLoader(s3), concurrency=4, history=History(s3))
    report = await reconciler.run_cycle()
    assert report.writes == 10
    # 30 definition files fetched; no current/ record read (none exists); one listing of it
    assert s3.calls["GetObject"] == 30
    assert s3.calls["ListObjectsV2"] == 2  # the definitions, then current/ once

    # A new process: five other buckets drifted, never written by LakeCircle.
    fresh = Reconciler(s3, DefinitionLoader(s3), concurrency=4, history=History(s3))
    for i in range(10, 15):
        s3.lifecycles[f"b{i:03d}"] = LifecycleConfig()
    before = s3.calls["GetObject"]
    report = await fresh.run_cycle()
    assert report.writes == 5
    # the 30 definitions again; current/ holds 10 records, none of a drifted bucket
    assert s3.calls["GetObject"] - before == 30


@pytest.mark.anyio
async def test_a_record_that_exists_is_read_and_judged() -> None:
    s3 = account(5, drifted=0)
    first = Reconciler(s3, DefinitionLoader(s3), history=History(s3))
    s3.lifecycles["b001"] = LifecycleConfig()
    assert (await first.run_cycle()).writes == 1
    # A new process: the bucket LakeCircle wrote is changed again by someone else.
    s3.lifecycles["b001"] = LifecycleConfig(s3.lifecycles["b001"].rules[:1])
    second = Reconciler(s3, DefinitionLoader(s3), history=History(s3))
    before = s3.calls["GetObject"]
    report = await second.run_cycle()
    assert report.writes == 1
    assert s3.calls["GetObject"] - before == 5 + 1  # the definitions and b001's record
    assert [r.external for r in report.results if r.bucket == "b001"] == [True]


@pytest.mark.anyio
async def test_a_daemon_report_keeps_counts_not_plans() -> None:
    s3 = account(10, drifted=4)
    reconciler = Reconciler(s3, DefinitionLoader(s3), keep_plans=False)
    report = await reconciler.run_cycle()
    assert report.writes == 4
    assert report.rules_added == 4
    assert all(r.plan is None for r in report.results)
    assert [r.counts.added for r in report.results if r.counts is not None] == [1, 1, 1, 1]
    assert report.plans == []
    # the six buckets in sync are counted, not listed one by one
    assert len(report.results) == 4
    assert report.counts[BucketState.IN_SYNC] == 6
    assert report.compared == 10
