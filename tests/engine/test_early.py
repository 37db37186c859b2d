"""The one-shot path's overlap: buckets read while definition files still load, planned
only from the whole picture (engine/early.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import pytest

from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketState, Stage
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.early import EarlyReads
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.errors import AccessDenied, DefinitionSourceError, Throttled
from lakecircle.ports import BucketRef, ObjectRef
from lakecircle.testing import MemoryS3
from tests.builders import definition, rule

pytestmark = pytest.mark.anyio

SLOW = "definition/z-slow.toml"


@dataclass
class RecordingS3(MemoryS3):
    """The in-memory account, noting each bucket read and whether the slow file was loading then."""

    loading: bool = False
    reads: list[tuple[str, bool]] = field(default_factory=list)
    read_begun: anyio.Event = field(default_factory=anyio.Event)

    async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig:
        self.reads.append((bucket.name, self.loading))
        self.read_begun.set()
        return await super().get_lifecycle(bucket)


class SlowSource:
    """The account's definition files, the slow one held until a bucket read begins (1 s at
    most), or failing when ``fails``: a slow parser or a slow disk, injected."""

    def __init__(self, s3: RecordingS3, *, fails: bool = False) -> None:
        self.s3 = s3
        self.fails = fails

    @property
    def location(self) -> str:
        return self.s3.location

    async def list_definitions(self) -> list[ObjectRef]:
        return await self.s3.list_definitions()

    async def fetch(self, ref: ObjectRef) -> bytes:
        if ref.key != SLOW:
            return await self.s3.fetch(ref)
        self.s3.loading = True
        try:
            with anyio.move_on_after(1):
                await self.s3.read_begun.wait()
            if self.fails:
                raise DefinitionSourceError("the disk went away")
            return await self.s3.fetch(ref)
        finally:
            self.s3.loading = False


def account(*, slow: bytes | None = None, **files: bytes) -> RecordingS3:
    s3 = RecordingS3()
    for name, data in files.items():
        s3.objects[f"definition/{name}.toml"] = data
    s3.objects[SLOW] = slow if slow is not None else definition("slow-bucket", rule("s1"))
    return s3


def reconciler(s3: RecordingS3, *, fails: bool = False, early_reads: int = 100, **options: object) -> Reconciler:
    return Reconciler(
        s3,
        DefinitionLoader(SlowSource(s3, fails=fails), concurrency=2),
        concurrency=2,
        early_reads=early_reads,
        **options,  # type: ignore[arg-type]
    )


async def test_a_bucket_a_parsed_file_names_is_read_while_another_file_still_loads() -> None:
    s3 = account(a=definition("early-bucket", rule("r1")))
    s3.add_bucket("early-bucket")
    s3.add_bucket("slow-bucket")
    with anyio.fail_after(5):
        report = await reconciler(s3).run_cycle()
    assert report.ok
    assert ("early-bucket", True) in s3.reads  # read while z-slow.toml was still loading
    assert ("slow-bucket", False) in s3.reads  # named by the slow file: read once it was parsed
    assert report.counts[BucketState.CHANGED] == 2
    assert s3.calls["GetBucketLifecycleConfiguration"] == 2  # each bucket read once


async def test_without_early_reads_no_bucket_is_read_before_the_definitions_are_loaded() -> None:
    s3 = account(a=definition("early-bucket", rule("r1")))
    s3.add_bucket("early-bucket")
    report = await reconciler(s3, early_reads=0).run_cycle()
    assert report.ok
    assert s3.reads == [("early-bucket", False)]


async def test_a_bucket_read_early_is_planned_from_every_file_that_names_it() -> None:
    # a.toml names the bucket first; the slow file adds a rule to it. Planned from a.toml
    # alone, the live rule s1 would be removed; planned from the whole picture it stays.
    s3 = account(a=definition("shared-bucket", rule("r1")), slow=definition("shared-bucket", rule("s1")))
    s3.add_bucket("shared-bucket", LifecycleConfig((rule("s1"), rule("stray"))))
    report = await reconciler(s3).run_cycle()
    assert report.ok
    assert ("shared-bucket", True) in s3.reads
    assert sorted(r.id or "" for r in s3.lifecycles["shared-bucket"].rules) == ["r1", "s1"]


async def test_a_bucket_read_early_removes_nothing_when_a_file_then_cannot_be_read() -> None:
    s3 = account(a=definition("early-bucket", rule("r1")))
    s3.add_bucket("early-bucket", LifecycleConfig((rule("theirs"),)))
    report = await reconciler(s3, fails=True).run_cycle()
    assert ("early-bucket", True) in s3.reads
    assert report.definitions is not None
    assert report.definitions.partial
    # The partial picture's guard: r1 added, the rule nobody defined kept.
    assert sorted(r.id or "" for r in s3.lifecycles["early-bucket"].rules) == ["r1", "theirs"]


async def test_a_bucket_no_file_names_is_never_read_early_nor_late() -> None:
    s3 = account(a=definition("early-bucket", rule("r1")))
    s3.add_bucket("early-bucket")
    s3.add_bucket("nobodys-bucket")
    report = await reconciler(s3).run_cycle()
    assert report.ok
    assert "nobodys-bucket" not in {name for name, _ in s3.reads}
    assert report.counts[BucketState.UNMANAGED] == 1


async def test_a_bucket_outside_lcc_buckets_is_not_read_early() -> None:
    s3 = account(a=definition("early-bucket", rule("r1")), b=definition("other-bucket", rule("r1")))
    s3.add_bucket("early-bucket")
    s3.add_bucket("other-bucket")
    report = await reconciler(s3, bucket_filter=frozenset({"early-bucket"})).run_cycle()
    assert report.ok
    assert {name for name, _ in s3.reads} == {"early-bucket"}


async def test_an_early_read_that_fails_is_that_buckets_failure() -> None:
    s3 = account(a=definition("early-bucket", rule("r1")), b=definition("fine-bucket", rule("r1")))
    s3.add_bucket("early-bucket")
    s3.add_bucket("fine-bucket")
    s3.add_bucket("slow-bucket")
    s3.fail("GetBucketLifecycleConfiguration", "early-bucket", lambda op, b: AccessDenied("no", operation=op, bucket=b))
    report = await reconciler(s3).run_cycle()
    failed = [r for r in report.results if r.state is BucketState.FAILED]
    assert [(r.bucket, r.stage) for r in failed] == [("early-bucket", Stage.READ)]
    assert report.counts[BucketState.CHANGED] == 2


async def test_a_listing_that_fails_while_the_definitions_load_makes_the_cycle_fatal() -> None:
    class FailingListing(RecordingS3):
        async def iter_buckets(self) -> AsyncIterator[list[BucketRef]]:
            yield [BucketRef("early-bucket")]
            raise Throttled("slow down", operation="ListBuckets")

    s3 = FailingListing()
    s3.objects["definition/a.toml"] = definition("early-bucket", rule("r1"))
    s3.objects[SLOW] = definition("slow-bucket", rule("s1"))
    s3.add_bucket("early-bucket", LifecycleConfig((rule("theirs"),)))
    report = await reconciler(s3).run_cycle()
    assert report.fatal is not None
    assert "could not list the account's buckets" in report.fatal
    # The bucket listed before the failure is planned as without early reads: from the whole picture.
    assert "r1" in {r.id for r in s3.lifecycles["early-bucket"].rules}


class Gated(MemoryS3):
    """Bucket reads held until ``gate`` opens; each read counted by bucket."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = anyio.Event()
        self.counts: dict[str, int] = {}

    async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig:
        self.counts[bucket.name] = self.counts.get(bucket.name, 0) + 1
        await self.gate.wait()
        return await super().get_lifecycle(bucket)


class Going:
    stopping = False


async def test_early_reads_queued_before_the_picture_is_whole_go_on_and_no_bucket_is_read_twice() -> None:
    s3 = Gated()
    names = [f"bucket-{i}" for i in range(6)]
    for name in names:
        s3.add_bucket(name)
    s3.objects.update({f"definition/{name}.toml": definition(name, rule("r1")) for name in names})
    early = EarlyReads(s3, 2, 100, lambda _: True, Going())
    loader = DefinitionLoader(s3)

    async with early.running():
        await loader.load(on_file=early.note)
        view = early.complete()  # 2 reads under way, 4 queued
        s3.gate.set()
        read_by_cycle = await view.get_lifecycle(BucketRef("bucket-5"))  # queued: read here, first
        with anyio.fail_after(2):
            while len(s3.counts) < len(names):  # the queued reads go on, unasked
                await anyio.sleep(0.01)
        for name in names[:5]:
            await view.get_lifecycle(BucketRef(name))

    assert read_by_cycle == LifecycleConfig()
    assert early.started == 6
    assert s3.counts == dict.fromkeys(names, 1)
