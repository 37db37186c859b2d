"""One cycle against the in-memory account: scope, one write per bucket, failures isolated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import structlog

from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.core.report import BucketState, CycleReport, report_document
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.errors import AccessDenied, Throttled, UnsupportedConfiguration
from lakecircle.ports import BucketRef
from lakecircle.service.metrics import Metrics
from lakecircle.testing import MemoryS3
from tests.builders import definition, rule

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "definitions"
WRITES = ("PutBucketLifecycleConfiguration", "DeleteBucketLifecycle")


def account(**files: bytes) -> MemoryS3:
    s3 = MemoryS3()
    for name, data in files.items():
        s3.objects[f"definition/{name}.toml"] = data
    return s3


def reconciler(s3: MemoryS3, *, dry_run: bool = False, concurrency: int = 4) -> Reconciler:
    return Reconciler(s3, DefinitionLoader(s3), concurrency=concurrency, dry_run=dry_run)


def writes(s3: MemoryS3) -> int:
    return sum(s3.calls[op] for op in WRITES)


async def test_examples_sync_once_then_plan_nothing() -> None:
    s3 = MemoryS3()
    for path in EXAMPLES.glob("*.toml"):
        s3.objects[f"definition/{path.name}"] = path.read_bytes()
    for name in ("acme-analytics-lake", "acme-db-backups", "acme-legacy-exports", "acme-media-assets"):
        s3.add_bucket(name)
    report = await reconciler(s3).run_cycle()
    assert report.ok
    assert report.writes == 4 == writes(s3)
    again = await reconciler(s3, dry_run=True).run_cycle()
    assert again.counts[BucketState.IN_SYNC] == 4
    assert not again.pending
    assert writes(s3) == 4


async def test_the_examples_with_their_fleet_sync_once_then_plan_nothing() -> None:
    s3 = MemoryS3()
    for path in EXAMPLES.rglob("*.toml"):
        s3.objects[f"definition/{path.relative_to(EXAMPLES).as_posix()}"] = path.read_bytes()
    for name in ("acme-analytics-lake", "acme-db-backups", "acme-legacy-exports", "acme-media-assets"):
        s3.add_bucket(name)
    s3.add_bucket("acme-web-logs")
    s3.add_bucket("acme-audit-logs")
    s3.add_bucket("acme-invoices", tags={"retention": "1y", "team": "finance"})
    s3.add_bucket("acme-team-scratch", LifecycleConfig((rule("theirs"),)))  # the baseline leaves out *-scratch
    report = await Reconciler(s3, DefinitionLoader(s3), concurrency=4, tags=s3).run_cycle()
    assert report.ok
    assert report.writes == 7 == writes(s3)
    assert report.counts[BucketState.UNMANAGED] == 1
    ids = {name: [r.id for r in config.rules] for name, config in s3.lifecycles.items()}
    assert ids["acme-web-logs"] == ["abort-incomplete-uploads", "logs-infrequent-access", "logs-expire"]
    assert ids["acme-audit-logs"] == [
        "logs-expire",  # its own, overriding fleet/logs.toml's
        "audit-noncurrent-expire",
        "abort-incomplete-uploads",
        "logs-infrequent-access",
    ]
    assert ids["acme-invoices"] == ["abort-incomplete-uploads", "retention-1y"]
    assert ids["acme-legacy-exports"] == ["exports-expire", "everything-else-ia", "abort-incomplete-uploads"]
    assert ids["acme-team-scratch"] == ["theirs"]
    again = await Reconciler(s3, DefinitionLoader(s3), concurrency=4, dry_run=True, tags=s3).run_cycle()
    assert again.counts[BucketState.IN_SYNC] == 7
    assert not again.pending
    assert writes(s3) == 7


async def test_undefined_buckets_are_never_read_or_written() -> None:
    s3 = account(a=definition("managed", rule("r1")))
    s3.add_bucket("managed")
    s3.add_bucket("bystander", LifecycleConfig((rule("theirs"),)))
    report = await reconciler(s3).run_cycle()
    assert [r.bucket for r in report.results] == ["managed"]
    assert s3.lifecycles["bystander"].rules[0].id == "theirs"
    assert s3.calls["GetBucketLifecycleConfiguration"] == 1


async def test_defined_but_missing_bucket_is_reported_not_failed() -> None:
    s3 = account(a=definition("ghost", rule("r1")))
    report = await reconciler(s3).run_cycle()
    assert report.counts[BucketState.MISSING] == 1
    assert report.ok


async def test_one_write_per_changed_bucket_whatever_the_rule_count() -> None:
    s3 = account(a=definition("big", *[rule(f"r{i}") for i in range(50)]), b=definition("same", rule("r1")))
    s3.add_bucket("big", LifecycleConfig((rule("old-1"), rule("old-2"))))
    s3.add_bucket("same", LifecycleConfig((rule("r1"),)))
    report = await reconciler(s3).run_cycle()
    assert s3.calls["PutBucketLifecycleConfiguration"] == 1
    assert report.rules_added == 50
    assert report.rules_removed == 2
    assert report.counts[BucketState.IN_SYNC] == 1


async def test_empty_rule_list_deletes_the_configuration() -> None:
    s3 = account(a=definition("bare"))
    s3.add_bucket("bare", LifecycleConfig((rule("old"),)))
    report = await reconciler(s3).run_cycle()
    assert s3.calls["DeleteBucketLifecycle"] == 1
    assert s3.calls["PutBucketLifecycleConfiguration"] == 0
    assert report.rules_removed == 1
    assert s3.lifecycles["bare"].rules == ()


async def test_dry_run_writes_nothing_and_reports_drift() -> None:
    s3 = account(a=definition("bkt1", rule("r1")))
    s3.add_bucket("bkt1")
    report = await reconciler(s3, dry_run=True).run_cycle()
    assert writes(s3) == 0
    assert report.pending == 1
    assert report.results[0].state is BucketState.DRIFTED


async def test_a_failing_bucket_is_reported_and_the_others_go_on() -> None:
    s3 = account(a=definition("ok-1", rule("r1")), b=definition("denied", rule("r1")), c=definition("ok-2", rule("r1")))
    for name in ("ok-1", "denied", "ok-2"):
        s3.add_bucket(name)
    s3.fail(
        "PutBucketLifecycleConfiguration",
        "denied",
        lambda op, b: AccessDenied("Access Denied", operation=op, bucket=b, code="AccessDenied"),
    )
    report = await reconciler(s3).run_cycle()
    assert not report.ok
    failed = report.failed
    assert [f.bucket for f in failed] == ["denied"]
    assert failed[0].stage == "write"
    assert "AccessDenied" in (failed[0].error or "")
    assert report.writes == 2


async def test_read_failure_writes_nothing_for_that_bucket() -> None:
    s3 = account(a=definition("bkt1", rule("r1")))
    s3.add_bucket("bkt1")
    s3.fail("GetBucketLifecycleConfiguration", "bkt1", lambda op, b: Throttled("Slow Down", operation=op, bucket=b))
    report = await reconciler(s3).run_cycle()
    assert report.failed[0].stage == "read"
    assert writes(s3) == 0


async def test_invalid_bucket_is_skipped_and_valid_ones_proceed() -> None:
    bad = (
        b'BucketName = "bad"\n[[LifecycleConfiguration.Rules]]\nID = "x"\nStatus = "enabled"\nExpiration = {Days = 1}\n'
    )
    s3 = account(a=definition("good", rule("r1")), b=bad)
    s3.add_bucket("good")
    s3.add_bucket("bad", LifecycleConfig((rule("keep"),)))
    report = await reconciler(s3).run_cycle()
    states = {r.bucket: r.state for r in report.results}
    assert states == {"good": BucketState.CHANGED, "bad": BucketState.INVALID}
    assert s3.lifecycles["bad"].rules[0].id == "keep"
    assert s3.calls["GetBucketLifecycleConfiguration"] == 1


async def test_unlistable_definitions_end_the_cycle_before_any_write() -> None:
    s3 = account(a=definition("bkt1", rule("r1")))
    s3.add_bucket("bkt1")
    s3.list_fails = AccessDenied("Access Denied", operation="ListObjectsV2")
    report = await reconciler(s3).run_cycle()
    assert report.fatal is not None
    assert "ListObjectsV2" in report.fatal
    assert writes(s3) == 0
    assert s3.calls["ListBuckets"] == 0


async def test_unchanged_definitions_are_not_downloaded_again() -> None:
    s3 = account(a=definition("bkt1", rule("r1")), b=definition("bkt2", rule("r1")))
    loader = DefinitionLoader(s3)
    first = await loader.load()
    assert first.fetched == 2
    s3.objects["definition/b.toml"] = definition("bkt2", rule("r1"), rule("r2"))
    second = await loader.load()
    assert second.fetched == 1
    assert second.fingerprint != first.fingerprint
    assert len(second.definitions.buckets["bkt2"].config.rules) == 2


async def test_bucket_filter_limits_the_cycle() -> None:
    s3 = account(a=definition("in", rule("r1")), b=definition("out", rule("r1")))
    s3.add_bucket("in")
    s3.add_bucket("out")
    r = Reconciler(s3, DefinitionLoader(s3), bucket_filter=frozenset({"in"}))
    report = await r.run_cycle()
    assert [x.bucket for x in report.results] == ["in"]
    assert s3.lifecycles["out"].rules == ()


async def test_many_buckets_pass_through_a_bounded_pool() -> None:
    files = {f"f{i}": definition(f"bucket-{i:04d}", rule("r1")) for i in range(300)}
    s3 = account(**files)
    s3.page_size = 50
    for i in range(300):
        s3.add_bucket(f"bucket-{i:04d}")
    report = await reconciler(s3, concurrency=7).run_cycle()
    assert report.writes == 300
    assert s3.calls["ListBuckets"] == 6
    assert report.buckets_listed == 300


async def test_an_unchanged_listing_reuses_the_definitions_and_a_file_unreadable_by_its_content_stays_so() -> None:
    s3 = account(a=definition("bkt1", rule("r1")), b=b"BucketName = \n")
    loader = DefinitionLoader(s3)
    first = await loader.load()
    assert first.definitions.partial
    again = await loader.load()
    assert again.fetched == 0  # the same ETag is the same syntax error: not downloaded again
    assert again.definitions.unreadable == ("definition/b.toml",)
    s3.objects["definition/b.toml"] = definition("bkt2", rule("r1"))
    fixed = await loader.load()
    assert not fixed.definitions.partial
    unchanged = await loader.load()
    assert unchanged.fetched == 0
    assert unchanged.definitions is fixed.definitions


async def test_a_large_definition_is_parsed_off_the_event_loop_which_goes_on_meanwhile() -> None:
    tables = "".join(
        f'[[Bucket]]\nBucketName = "big-{i:04d}"\n'
        + "".join(
            f'[[Bucket.LifecycleConfiguration.Rules]]\nID = "r{j}"\nStatus = "Enabled"\n'
            f'Filter = {{ Prefix = "p{j}/" }}\nExpiration = {{ Days = {30 + j} }}\n'
            for j in range(8)
        )
        for i in range(1000)
    ).encode()
    assert 500_000 < len(tables) < 1024 * 1024
    s3 = account(big=tables)
    ticks = 0
    loaded = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not loaded.is_set():
            await anyio.sleep(0.001)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(0.01)  # the ticker runs
        before = ticks
        result = await DefinitionLoader(s3).load()
        loaded.set()
    assert len(result.definitions.buckets) == 1000
    assert not result.definitions.partial
    assert ticks - before >= 3  # the loop went on while the file was parsed


class HeldWrites(MemoryS3):
    """Lifecycle writes wait until released; counts the writes under way at most."""

    def __init__(self) -> None:
        super().__init__()
        self.release = anyio.Event()
        self.writing = 0
        self.most_writing = 0

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        self.writing += 1
        self.most_writing = max(self.most_writing, self.writing)
        await self.release.wait()
        await super().put_lifecycle(bucket, config)
        self.writing -= 1


async def test_a_worker_hands_its_write_over_and_reads_on_and_writes_stay_bounded() -> None:
    s3 = HeldWrites()
    for i in range(6):
        s3.objects[f"definition/b{i}.toml"] = definition(f"bkt{i}", rule("r1"))
        s3.add_bucket(f"bkt{i}")
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reconciler(s3, concurrency=2).run_cycle)
            # Two writes held, and the two workers still read the remaining buckets.
            while s3.calls["GetBucketLifecycleConfiguration"] < 4 or s3.writing < 2:
                await anyio.lowlevel.checkpoint()
            for _ in range(100):
                await anyio.lowlevel.checkpoint()
            assert s3.writing == 2  # no third write while two are under way
            s3.release.set()
    assert s3.calls["PutBucketLifecycleConfiguration"] == 6
    assert s3.most_writing == 2
    assert all(s3.lifecycles[f"bkt{i}"].rules == (rule("r1"),) for i in range(6))


# -- the removal guard: a stop, not an allowance --------------------------------------------


def mass_removal(buckets: int, removals_each: int, *, concurrency: int = 4) -> MemoryS3:
    """Buckets that each hold ``removals_each`` rules their definition dropped, and gain one."""
    s3 = MemoryS3()
    for i in range(buckets):
        name = f"m{i:03d}"
        s3.objects[f"definition/{name}.toml"] = definition(name, rule("new"))
        s3.add_bucket(name, LifecycleConfig(tuple(rule(f"old-{j}") for j in range(removals_each))))
    return s3


def rule_ids(s3: MemoryS3, name: str) -> list[str]:
    return sorted(r.id or "" for r in s3.lifecycles[name].rules)


async def test_a_cycle_planning_more_removals_than_the_limit_removes_none_in_this_or_any_later_cycle() -> None:
    s3 = mass_removal(50, 3)  # 150 removals planned, 100 allowed
    guarded = Reconciler(s3, DefinitionLoader(s3), concurrency=4, max_removals=100)
    for _ in range(2):
        report = await guarded.run_cycle()
        assert all(rule_ids(s3, f"m{i:03d}") == ["new", "old-0", "old-1", "old-2"] for i in range(50))
        assert report.rules_removed == 0
        assert report.guards == ("blast_radius",)
        assert (report.removals_planned, report.removals_held, report.max_removals) == (150, 150, 100)
    assert report.rules_added == 0  # the additions went in the first cycle
    assert s3.calls["DeleteBucketLifecycle"] == 0
    allowed = Reconciler(s3, DefinitionLoader(s3), max_removals=100, allow_mass_removal=True)
    report = await allowed.run_cycle()
    assert report.guards == ()
    assert report.rules_removed == 150
    assert all(rule_ids(s3, f"m{i:03d}") == ["new"] for i in range(50))


async def test_removals_within_the_limit_are_made_and_a_delete_counts_its_rules() -> None:
    s3 = mass_removal(3, 1)
    s3.objects["definition/bare.toml"] = definition("bare")
    s3.add_bucket("bare", LifecycleConfig((rule("a"), rule("b"))))
    report = await Reconciler(s3, DefinitionLoader(s3), max_removals=5).run_cycle()
    assert report.guards == ()
    assert (report.removals_planned, report.removals_held) == (5, 0)
    assert s3.lifecycles["bare"].rules == ()
    assert all(rule_ids(s3, f"m{i:03d}") == ["new"] for i in range(3))


class ListingFailsAfterFirstPage(MemoryS3):
    """An account whose bucket listing breaks after its first page."""

    async def iter_buckets(self) -> AsyncIterator[list[BucketRef]]:
        names = sorted(self.lifecycles)
        yield [BucketRef(n, self.regions.get(n)) for n in names[: self.page_size]]
        raise AccessDenied("Access Denied", operation="ListBuckets")


async def test_a_cycle_whose_bucket_listing_fails_part_way_makes_none_of_the_removals_that_waited() -> None:
    s3 = ListingFailsAfterFirstPage()
    s3.page_size = 2
    for i in range(4):
        name = f"m{i:03d}"
        s3.objects[f"definition/{name}.toml"] = definition(name, rule("new"))
        s3.add_bucket(name, LifecycleConfig((rule("old-0"),)))
    report = await Reconciler(s3, DefinitionLoader(s3), max_removals=100).run_cycle()
    assert report.fatal is not None
    assert report.rules_removed == 0
    assert report.guards == ("unknown_total",)
    assert rule_ids(s3, "m000") == rule_ids(s3, "m001") == ["new", "old-0"]  # the addition went, the removal not


async def test_a_read_that_fails_for_a_passing_reason_leaves_the_total_unknown_and_makes_no_removal() -> None:
    s3 = mass_removal(3, 1)
    s3.fail("GetBucketLifecycleConfiguration", "m002", lambda op, b: Throttled("Slow Down", operation=op, bucket=b))
    report = await Reconciler(s3, DefinitionLoader(s3), max_removals=100).run_cycle()
    assert report.rules_removed == 0
    assert report.guards == ("unknown_total",)
    assert rule_ids(s3, "m000") == rule_ids(s3, "m001") == ["new", "old-0"]  # the additions went, the removals not


async def test_a_read_refused_for_good_does_not_hold_the_removals_of_the_others() -> None:
    s3 = mass_removal(3, 1)
    s3.fail("GetBucketLifecycleConfiguration", "m002", lambda op, b: AccessDenied("Denied", operation=op, bucket=b))
    report = await Reconciler(s3, DefinitionLoader(s3), max_removals=100).run_cycle()
    assert report.guards == ()
    assert rule_ids(s3, "m000") == rule_ids(s3, "m001") == ["new"]


class Sequenced(MemoryS3):
    """Records the order of lifecycle reads and writes: (operation, bucket, rule count)."""

    def __init__(self) -> None:
        super().__init__()
        self.sequence: list[tuple[str, str]] = []

    async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig:
        self.sequence.append(("read", bucket.name))
        await anyio.lowlevel.checkpoint()
        return await super().get_lifecycle(bucket)

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        removes = len({r.id for r in self.lifecycles[bucket.name].rules} - {r.id for r in config.rules})
        self.sequence.append(("removes" if removes else "writes", bucket.name))
        await super().put_lifecycle(bucket, config)


async def test_no_removal_is_sent_before_every_bucket_is_read_and_other_writes_do_not_wait() -> None:
    s3 = Sequenced()
    for i in range(40):
        name = f"b{i:02d}"
        s3.objects[f"definition/{name}.toml"] = definition(name, rule("keep"))
        # Every fifth bucket loses a rule; the others only gain one.
        s3.add_bucket(name, LifecycleConfig((rule("drop"),) if i % 5 == 0 else ()))
    report = await Reconciler(s3, DefinitionLoader(s3), concurrency=2, max_removals=100).run_cycle()
    assert report.rules_removed == 8
    last_read = max(i for i, (op, _) in enumerate(s3.sequence) if op == "read")
    first_removal = min(i for i, (op, _) in enumerate(s3.sequence) if op == "removes")
    first_write = min(i for i, (op, _) in enumerate(s3.sequence) if op == "writes")
    assert first_removal > last_read
    assert first_write < last_read  # a bucket without removals keeps the fast path


async def test_once_over_the_limit_the_writes_go_without_their_removals_and_nothing_waits() -> None:
    s3 = Sequenced()
    for i in range(30):
        name = f"b{i:02d}"
        s3.objects[f"definition/{name}.toml"] = definition(name, rule("keep"))
        s3.add_bucket(name, LifecycleConfig((rule("drop"),)))
    report = await Reconciler(s3, DefinitionLoader(s3), concurrency=2, max_removals=3).run_cycle()
    assert report.guards == ("blast_radius",)
    assert "removes" not in {op for op, _ in s3.sequence}
    last_read = max(i for i, (op, _) in enumerate(s3.sequence) if op == "read")
    writes = [i for i, (op, _) in enumerate(s3.sequence) if op == "writes"]
    assert len(writes) == 30
    assert sum(1 for i in writes if i < last_read) >= 20  # written as they were read once the guard tripped
    assert all(rule_ids(s3, f"b{i:02d}") == ["drop", "keep"] for i in range(30))


async def test_the_dry_run_plan_shows_the_removals_sync_holds_back() -> None:
    s3 = mass_removal(4, 2)
    s3.objects["definition/bare.toml"] = definition("bare")
    s3.add_bucket("bare", LifecycleConfig((rule("a"),)))
    planned = await Reconciler(s3, DefinitionLoader(s3), dry_run=True, max_removals=5).run_cycle()
    assert writes(s3) == 0
    synced = await Reconciler(s3, DefinitionLoader(s3), max_removals=5).run_cycle()

    def shown(report: CycleReport) -> dict[str, tuple[str, list[str], list[str], list[str]]]:
        return {
            p.bucket: (p.action.value, _ids(p.added), _ids(p.removed), _ids(p.held))
            for p in report.plans
            if p.has_changes or p.held
        }

    assert shown(planned) == shown(synced)
    assert shown(synced)["bare"] == ("noop", [], [], ["a"])
    assert shown(synced)["m000"] == ("put", ["new"], [], ["old-0", "old-1"])
    assert planned.removals_held == synced.removals_held == 9
    assert planned.guards == synced.guards == ("blast_radius",)
    assert planned.pending == 5  # plan --detailed-exitcode exits 2 while removals are held
    assert synced.pending == 1  # "bare": its only change is the held removal


def _ids(rules: tuple[Rule, ...]) -> list[str]:
    return [r.id or "" for r in rules]


async def test_a_tripped_guard_logs_one_warning_and_counts_one_trip_per_cycle() -> None:
    s3 = mass_removal(10, 2)
    reconciler = Reconciler(s3, DefinitionLoader(s3), max_removals=5)
    metrics = Metrics()
    for _ in range(2):
        with structlog.testing.capture_logs() as logs:
            report = await reconciler.run_cycle()
        metrics.observe_cycle(report, now=0.0)
        tripped = [e for e in logs if e["event"] == "removal_guard_tripped"]
        assert len(tripped) == 1
        assert (tripped[0]["planned"], tripped[0]["limit"]) == (20, 5)
        assert "--allow-mass-removal" in tripped[0]["hint"]
        assert "LCC_ALLOW_MASS_REMOVAL" in tripped[0]["hint"]
    trips = metrics.registry.get_sample_value("lakecircle_guard_trips_total", {"guard": "blast_radius"})
    assert trips == 2
    document = report_document(report)
    assert document["removals"] == {"planned": 20, "held": 20, "limit": 5}
    assert document["guards"] == ["blast_radius"]


async def test_an_unreadable_definition_file_shows_the_removals_it_holds_back_as_held() -> None:
    s3 = account(a=definition("bkt1", rule("r1")), broken=b"BucketName = \n")
    s3.add_bucket("bkt1", LifecycleConfig((rule("r1"), rule("gone"))))
    report = await reconciler(s3).run_cycle()
    [plan] = [p for p in report.plans if p.bucket == "bkt1"]
    assert plan.removed == ()
    assert _ids(plan.held) == ["gone"]
    assert report.guards == ("partial_definitions",)
    assert report.removals_held == 1


async def test_an_unsupported_bucket_is_its_own_state_never_written_and_holds_no_other_removals() -> None:
    s3 = mass_removal(3, 1)
    s3.fail(
        "GetBucketLifecycleConfiguration",
        "m002",
        lambda op, b: UnsupportedConfiguration(['rule "old-0": FutureAction'], bucket=b, request_id="R1"),
    )
    report = await Reconciler(s3, DefinitionLoader(s3), max_removals=100).run_cycle()
    assert report.ok
    assert report.guards == ()
    assert rule_ids(s3, "m000") == rule_ids(s3, "m001") == ["new"]
    assert rule_ids(s3, "m002") == ["old-0"]
    [unsupported] = [r for r in report.results if r.bucket == "m002"]
    assert unsupported.state is BucketState.UNSUPPORTED
    assert 'holds a field LakeCircle does not know (rule "old-0": FutureAction)' in (unsupported.error or "")
    assert report.counts[BucketState.UNSUPPORTED] == 1
    assert report_document(report)["counts"]["unsupported"] == 1
