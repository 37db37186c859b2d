"""Selectors in the cycle: buckets chosen by pattern and tag, combined with exact definitions,
unmanaged buckets counted and never read, tags read once per resync (ARCHITECTURE.md, "Fleets")."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
import structlog

from lakecircle.app.output import summary
from lakecircle.core.definitions import FileBrief
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.render import plans_json, render_plan_text
from lakecircle.core.report import BucketState, CycleReport, Guard, Stage, Trigger, report_document
from lakecircle.core.selectors import Match, Matcher
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.errors import AccessDenied, Throttled
from lakecircle.ports import BucketRef
from lakecircle.testing import MemoryS3
from tests.builders import definition, fleet, rule

pytestmark = pytest.mark.anyio

TAGS = "GetBucketTagging"
READS = "GetBucketLifecycleConfiguration"


def account(**files: bytes) -> MemoryS3:
    s3 = MemoryS3()
    for name, data in files.items():
        s3.objects[f"definition/{name}.toml"] = data
    return s3


def reconciler(s3: MemoryS3, **options: object) -> Reconciler:
    return Reconciler(s3, DefinitionLoader(s3), concurrency=4, tags=s3, **options)  # type: ignore[arg-type]


def ids(s3: MemoryS3, bucket: str) -> list[str]:
    return sorted(r.id or "" for r in s3.lifecycles[bucket].rules)


async def test_a_baseline_for_every_bucket_reaches_each_one_and_keeps_other_writers_rules() -> None:
    s3 = account(base=fleet(["*"], rule("abort", 7)))
    s3.add_bucket("empty")
    s3.add_bucket("theirs", LifecycleConfig((rule("someone-else", 3),)))
    report = await reconciler(s3).run_cycle()
    assert report.ok
    assert ids(s3, "empty") == ["abort"]
    assert ids(s3, "theirs") == ["abort", "someone-else"]
    assert report.counts[BucketState.UNMANAGED] == 0


async def test_a_pattern_family_gets_its_rules_and_an_exact_definition_overrides_one_of_them() -> None:
    s3 = account(logs=fleet(["*-logs"], rule("expire", 90)), app=definition("app-logs", rule("expire", 30)))
    for name in ("app-logs", "web-logs", "photos"):
        s3.add_bucket(name)
    report = await reconciler(s3).run_cycle()
    assert report.writes == 2
    assert s3.lifecycles["web-logs"].rules == (rule("expire", 90),)
    assert s3.lifecycles["app-logs"].rules == (rule("expire", 30),)
    assert s3.lifecycles["photos"].rules == ()
    assert report.counts[BucketState.UNMANAGED] == 1


async def test_a_tag_selector_selects_only_the_buckets_carrying_its_tags() -> None:
    s3 = account(keep=fleet(["*"], rule("keep-1y", 365), BucketTags={"retention": "1y"}))
    s3.add_bucket("yearly", tags={"retention": "1y", "team": "data"})
    s3.add_bucket("monthly", tags={"retention": "30d"})
    report = await reconciler(s3).run_cycle()
    assert ids(s3, "yearly") == ["keep-1y"]
    assert s3.lifecycles["monthly"].rules == ()
    assert report.counts[BucketState.UNMANAGED] == 1
    assert s3.calls[READS] == 1  # the bucket its tags leave out is not read for lifecycle


async def test_unmanaged_buckets_are_counted_never_read_and_named_only_when_asked() -> None:
    s3 = account(a=definition("managed", rule("r1")), logs=fleet(["*-logs"], rule("expire", 90)))
    for name in ("managed", "bystander-1", "bystander-2"):
        s3.add_bucket(name, LifecycleConfig((rule("theirs"),)))
    report = await reconciler(s3).run_cycle()
    assert report.counts[BucketState.UNMANAGED] == 2
    assert report.unmanaged == ()
    assert [r.bucket for r in report.results] == ["managed"]
    assert s3.calls[READS] == 1
    assert ids(s3, "bystander-1") == ["theirs"]
    listed = await reconciler(s3, dry_run=True, list_unmanaged=True).run_cycle(Trigger.PLAN)
    assert listed.unmanaged == ("bystander-1", "bystander-2")


async def test_a_bucket_only_an_exact_definition_names_is_planned_with_its_files_as_sources() -> None:
    s3 = account(app=definition("app", rule("fresh"), rule("tune", 60)), logs=fleet(["*-logs"], rule("expire", 90)))
    s3.add_bucket("app", LifecycleConfig((rule("tune", 30), rule("stale"))))
    report = await reconciler(s3, dry_run=True).run_cycle(Trigger.PLAN)
    [result] = report.results
    assert result.plan is not None
    lines = render_plan_text([result.plan]).splitlines()
    assert "  + rule fresh  (from definition/app.toml)" in lines
    assert "  ~ rule tune  (from definition/app.toml)" in lines
    assert "  - rule stale  (in no definition that selects this bucket)" in lines
    [bucket] = plans_json([result.plan])["buckets"]
    exact = {"file": "definition/app.toml", "selector": None, "pattern": None}
    assert [entry["source"] for entry in bucket["added"] + bucket["changed"]] == [exact, exact]
    assert [entry["source"] for entry in bucket["removed"]] == [None]
    assert bucket["overrides"] == []


async def test_a_selector_on_awss_own_tag_selects_the_buckets_a_cloudformation_stack_made() -> None:
    stack = '"aws:cloudformation:stack-name"'  # quoted: a TOML key with colons
    s3 = account(billing=fleet(["*"], rule("keep-30d", 30), BucketTags={stack: "billing"}))
    s3.add_bucket("billing-data", tags={"aws:cloudformation:stack-name": "billing"})
    s3.add_bucket("web-assets", tags={"aws:cloudformation:stack-name": "web"})
    report = await reconciler(s3).run_cycle()
    assert report.ok
    assert ids(s3, "billing-data") == ["keep-30d"]
    assert s3.lifecycles["web-assets"].rules == ()


async def test_tags_are_read_once_per_resync_and_reused_by_poll_cycles() -> None:
    s3 = account(keep=fleet(["data-*"], rule("keep-1y", 365), BucketTags={"retention": "1y"}))
    for name in ("data-a", "data-b", "other"):
        s3.add_bucket(name, tags={"retention": "1y"})
    lc = reconciler(s3)
    await lc.run_cycle(Trigger.STARTUP)
    assert s3.calls[TAGS] == 2  # "other" matches no pattern: its tags are never read
    await lc.run_cycle(Trigger.POLL)
    assert s3.calls[TAGS] == 2
    await lc.run_cycle(Trigger.RESYNC)
    assert s3.calls[TAGS] == 4


async def test_a_failed_tag_read_holds_that_buckets_removals_and_no_other_buckets() -> None:
    stale = LifecycleConfig((rule("r1"), rule("stale")))
    s3 = account(
        one=definition("one", rule("r1")),
        two=definition("two", rule("r1")),
        keep=fleet(["*"], rule("keep-1y", 365), BucketTags={"retention": "1y"}),
    )
    s3.add_bucket("one", stale, tags={"retention": "1y"})
    s3.add_bucket("two", stale)
    s3.fail(TAGS, "one", lambda op, b: AccessDenied("Access Denied", operation=op, bucket=b))
    report = await reconciler(s3).run_cycle()
    assert ids(s3, "one") == ["r1", "stale"]
    assert ids(s3, "two") == ["r1"]
    held = next(r for r in report.results if r.bucket == "one")
    assert held.guard == Guard.PARTIAL_DEFINITIONS
    assert report.ok


async def test_a_failed_tag_read_of_a_bucket_only_tag_selectors_match_fails_it_at_the_read_stage() -> None:
    s3 = account(keep=fleet(["*"], rule("keep-1y", 365), BucketTags={"retention": "1y"}))
    s3.add_bucket("data", LifecycleConfig((rule("keep-1y", 365),)))
    s3.fail(TAGS, "data", lambda op, b: Throttled("Slow Down", operation=op, bucket=b))
    report = await reconciler(s3).run_cycle()
    (failed,) = report.failed
    assert (failed.bucket, failed.stage) == ("data", Stage.READ)
    assert "GetBucketTagging" in (failed.error or "")
    assert s3.calls[READS] == 0
    assert ids(s3, "data") == ["keep-1y"]


async def test_two_selectors_giving_one_rule_id_different_content_make_the_bucket_invalid() -> None:
    s3 = account(a=fleet(["*"], rule("expire", 30)), b=fleet(["*-logs"], rule("expire", 90)))
    s3.add_bucket("app-logs")
    s3.add_bucket("photos")
    report = await reconciler(s3).run_cycle()
    (invalid,) = [r for r in report.results if r.state is BucketState.INVALID]
    assert invalid.bucket == "app-logs"
    assert "a.toml" in (invalid.error or "")
    assert "b.toml" in (invalid.error or "")
    assert s3.lifecycles["app-logs"].rules == ()
    assert ids(s3, "photos") == ["expire"]


async def test_a_selector_change_removing_rules_across_many_buckets_trips_the_removal_limit() -> None:
    s3 = account(base=fleet(["*"], rule("abort", 7), rule("expire", 90)))
    for index in range(5):
        s3.add_bucket(f"bucket-{index}")
    lc = reconciler(s3, max_removals=3)
    assert (await lc.run_cycle()).writes == 5
    s3.objects["definition/base.toml"] = fleet(["*"], rule("abort", 7))
    report = await lc.run_cycle(Trigger.POLL)
    assert Guard.BLAST_RADIUS in report.guards
    assert report.removals_planned == 5
    assert all(ids(s3, f"bucket-{i}") == ["abort", "expire"] for i in range(5))


async def test_a_shared_buckets_rule_whose_removal_a_failed_tag_read_held_is_removed_once_the_tags_read() -> None:
    s3 = account(base=fleet(["*"], rule("abort", 7), rule("tmp", 1)))
    s3.add_bucket("archive", tags={"retention": "1y"})
    lc = reconciler(s3)
    await lc.run_cycle()
    s3.objects["definition/base.toml"] = fleet(["*"], rule("abort", 7), rule("fresh", 30))
    s3.objects["definition/keep.toml"] = fleet(["*"], rule("keep-1y", 365), BucketTags={"retention": "1y"})
    s3.fail(TAGS, "archive", lambda op, b: AccessDenied("Access Denied", operation=op, bucket=b))
    held = await lc.run_cycle()  # fresh is added; tmp's removal is held, and tmp stays LakeCircle's
    assert held.writes == 1
    assert ids(s3, "archive") == ["abort", "fresh", "tmp"]
    s3.failures.clear()
    await lc.run_cycle()
    assert ids(s3, "archive") == ["abort", "fresh", "keep-1y"]


async def test_a_shared_buckets_rules_the_removal_limit_held_are_removed_when_a_person_allows_it() -> None:
    s3 = account(base=fleet(["*"], rule("abort", 7), rule("tmp", 1)))
    for name in ("one", "two"):
        s3.add_bucket(name, LifecycleConfig((rule("theirs", 3),)))
    lc = reconciler(s3, max_removals=1)
    await lc.run_cycle()
    s3.objects["definition/base.toml"] = fleet(["*"], rule("abort", 5))
    tripped = await lc.run_cycle()
    assert Guard.BLAST_RADIUS in tripped.guards
    assert tripped.writes == 2  # the change to abort goes; both removals of tmp are held
    assert ids(s3, "one") == ["abort", "theirs", "tmp"]
    lc.allow_mass_removal = True  # a person allows it
    await lc.run_cycle()
    assert ids(s3, "one") == ids(s3, "two") == ["abort", "theirs"]


async def test_files_without_selectors_make_the_same_requests_as_before_and_never_read_tags() -> None:
    s3 = account(a=definition("one", rule("r1")), b=definition("two", rule("r1")))
    s3.add_bucket("one")
    s3.add_bucket("two", LifecycleConfig((rule("r1"),)))
    s3.add_bucket("bystander", LifecycleConfig((rule("theirs"),)))
    await reconciler(s3).run_cycle()
    # The counts the cycle made before selectors existed (measured on the branch without them).
    assert s3.calls == Counter(
        {"ListObjectsV2": 1, "GetObject": 2, "ListBuckets": 1, READS: 2, "PutBucketLifecycleConfiguration": 1}
    )


async def test_an_unchanged_cycle_with_a_baseline_decides_every_bucket_without_parsing_any_file_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = {f"b{i}": definition(f"bucket-{i}", rule("r1"), rule(f"own-{i}", 60 + i)) for i in range(6)}
    s3 = account(base=fleet(["*"], rule("abort", 7)), **files)
    for index in range(6):
        s3.add_bucket(f"bucket-{index}")
    s3.add_bucket("plain")
    lc = reconciler(s3)
    assert (await lc.run_cycle()).writes == 7
    parsed = Counter[str]()
    original = FileBrief.parse

    def counting(self: FileBrief) -> object:
        parsed[self.name] += 1
        return original(self)

    monkeypatch.setattr(FileBrief, "parse", counting)
    report = await lc.run_cycle(Trigger.POLL)
    assert report.counts[BucketState.IN_SYNC] == 7
    assert parsed == Counter()  # in sync by digests alone, as without selectors
    s3.lifecycles["bucket-2"] = LifecycleConfig((rule("r1"), rule("own-2", 62)))  # the baseline's rule lost
    report = await lc.run_cycle(Trigger.POLL)
    assert ids(s3, "bucket-2") == ["abort", "own-2", "r1"]
    assert parsed == Counter({"definition/b2.toml": 1})  # only the bucket that differs is planned


async def test_a_changed_baseline_reaches_every_bucket_in_the_next_cycle() -> None:
    s3 = account(base=fleet(["*"], rule("abort", 7)), one=definition("one", rule("r1")))
    for name in ("one", "two", "three"):
        s3.add_bucket(name)
    lc = reconciler(s3)
    await lc.run_cycle()
    s3.objects["definition/base.toml"] = fleet(["*"], rule("abort", 3))
    report = await lc.run_cycle(Trigger.POLL)
    assert report.writes == 3
    for name in ("one", "two", "three"):
        assert rule("abort", 3) in s3.lifecycles[name].rules


async def test_every_bucket_of_an_invalid_combination_is_reported_with_its_own_name_in_every_cycle() -> None:
    s3 = account(a=fleet(["*"], rule("expire", 30)), b=fleet(["*-logs"], rule("expire", 90)))
    for name in ("app-logs", "web-logs"):
        s3.add_bucket(name)
    lc = reconciler(s3)
    for trigger in (Trigger.STARTUP, Trigger.POLL):
        report = await lc.run_cycle(trigger)
        invalid = {r.bucket: r.error or "" for r in report.results if r.state is BucketState.INVALID}
        assert sorted(invalid) == ["app-logs", "web-logs"]
        assert all(name in error for name, error in invalid.items())


async def test_an_unreadable_override_leaves_the_rule_it_overrode_as_it_is_and_new_rules_still_go() -> None:
    s3 = account(logs=fleet(["*-logs"], rule("expire", 7)), legal=definition("legal-logs", rule("expire", 3650)))
    s3.add_bucket("legal-logs")
    s3.add_bucket("web-logs")
    lc = reconciler(s3)
    await lc.run_cycle()
    assert s3.lifecycles["legal-logs"].rules == (rule("expire", 3650),)
    s3.objects["definition/legal.toml"] = b'BucketName = "legal-logs"\n[[LifecycleConfiguration.Rules]\n'
    s3.objects["definition/logs.toml"] = fleet(["*-logs"], rule("expire", 5), rule("abort", 7))
    report = await lc.run_cycle(Trigger.POLL)
    assert list(s3.lifecycles["legal-logs"].rules) == [rule("expire", 3650), rule("abort", 7)]
    assert s3.lifecycles["web-logs"].rules == (rule("expire", 7), rule("abort", 7))  # held too: unknown picture
    legal = next(r for r in report.results if r.bucket == "legal-logs")
    assert legal.guard == Guard.PARTIAL_DEFINITIONS
    assert [c.rule_id for c in legal.plan.held_changes] == ["expire"]  # type: ignore[union-attr]


async def test_a_failed_tag_read_does_not_let_the_other_selectors_change_what_a_tag_selector_gave() -> None:
    s3 = account(keep=fleet(["*"], rule("expire", 3650), BucketTags={"retention": "10y"}))
    s3.add_bucket("archive", tags={"retention": "10y"})
    lc = reconciler(s3)
    await lc.run_cycle()
    s3.objects["definition/base.toml"] = fleet(["*"], rule("expire", 7))  # conflicts: the bucket would be invalid
    s3.fail(TAGS, "archive", lambda op, b: AccessDenied("Access Denied", operation=op, bucket=b))
    report = await lc.run_cycle(Trigger.RESYNC)
    assert s3.lifecycles["archive"].rules == (rule("expire", 3650),)
    (held,) = [r for r in report.results if r.bucket == "archive"]
    assert held.guard == Guard.PARTIAL_DEFINITIONS


async def test_tags_read_before_a_resync_without_tag_selectors_are_not_used_after_it() -> None:
    s3 = account(keep=fleet(["*"], rule("keep-1y", 365), BucketTags={"retention": "1y"}))
    s3.add_bucket("data", tags={"retention": "1y"})
    lc = reconciler(s3)
    await lc.run_cycle(Trigger.STARTUP)
    assert ids(s3, "data") == ["keep-1y"]
    s3.objects["definition/keep.toml"] = definition("other", rule("r1"))
    await lc.run_cycle(Trigger.RESYNC)  # no selector asks for tags now
    s3.tags["data"] = {}
    s3.objects["definition/keep.toml"] = fleet(["*"], rule("keep-1y", 365), BucketTags={"retention": "1y"})
    await lc.run_cycle(Trigger.POLL)
    assert s3.calls[TAGS] == 2  # read again: the cache did not outlive the resync


# --- a selector that selects no bucket (coverage warnings) ----------------------------------


def unmatched(report: CycleReport) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(w.file, w.selector, w.patterns) for w in report.warnings]


async def test_a_selector_that_selects_no_bucket_is_warned_about_once_in_the_report_the_summary_and_the_log() -> None:
    two_tables = b"[[Bucket]]\n" + fleet(["app-*"], rule("a")).replace(b"[[Life", b"[[Bucket.Life")
    two_tables += b"\n[[Bucket]]\n" + fleet(["*-logz"], rule("b")).replace(b"[[Life", b"[[Bucket.Life")
    s3 = account(typo=two_tables, fine=fleet(["*-logs"], rule("expire", 90)))
    s3.add_bucket("app-logs")
    with structlog.testing.capture_logs() as logs:
        report = await reconciler(s3, dry_run=True).run_cycle(Trigger.PLAN)
    assert unmatched(report) == [("definition/typo.toml", "definition/typo.toml Bucket[1]", ("*-logz",))]
    message = (
        'definition/typo.toml Bucket[1]: no bucket in the account matches BucketMatch ["*-logz"];'
        " check the patterns or remove the selector"
    )
    assert f"Warning: {message}" in summary(report).splitlines()
    assert report_document(report)["warnings"] == [
        {
            "kind": "selector_matches_no_bucket",
            "file": "definition/typo.toml",
            "selector": "definition/typo.toml Bucket[1]",
            "patterns": ["*-logz"],
            "exclude": [],
            "tags": {},
            "message": message,
        }
    ]
    [logged] = [e for e in logs if e["event"] == "selector_matches_no_bucket"]
    assert (logged["selector"], logged["patterns"], logged["log_level"]) == (
        "definition/typo.toml Bucket[1]",
        ["*-logz"],
        "warning",
    )


async def test_a_selector_whose_exclusions_leave_out_every_bucket_it_matches_selects_no_bucket() -> None:
    s3 = account(legal=fleet(["*-logs"], rule("expire"), BucketExclude=["legal-*"]))
    s3.add_bucket("legal-logs")
    report = await reconciler(s3, dry_run=True).run_cycle()
    assert unmatched(report) == [("definition/legal.toml", "definition/legal.toml", ("*-logs",))]
    assert 'outside BucketExclude ["legal-*"]' in report.warnings[0].message


async def test_a_tag_selector_selects_no_bucket_when_every_bucket_its_patterns_match_lacks_its_tags() -> None:
    s3 = account(
        keep=fleet(["data-*"], rule("keep-1y", 365), BucketTags={"retention": "1y"}),
        month=fleet(["data-*"], rule("keep-30d", 30), BucketTags={"retention": "30d"}),
    )
    s3.add_bucket("data-a", tags={"retention": "30d"})
    s3.add_bucket("data-b")
    report = await reconciler(s3, dry_run=True).run_cycle()
    assert unmatched(report) == [("definition/keep.toml", "definition/keep.toml", ("data-*",))]
    assert report.warnings[0].tags == (("retention", "1y"),)


async def test_a_tag_selector_whose_tag_reads_failed_is_not_said_to_select_no_bucket() -> None:
    s3 = account(keep=fleet(["data-*"], rule("keep-1y", 365), BucketTags={"retention": "1y"}))
    s3.add_bucket("data-a")
    s3.add_bucket("data-b")
    s3.fail(TAGS, "data-a", lambda op, b: AccessDenied("Access Denied", operation=op, bucket=b))
    report = await reconciler(s3, dry_run=True).run_cycle()
    assert report.warnings == ()  # data-a may carry the tags: unknown is not nothing


async def test_a_selector_matching_only_a_bucket_whose_exact_definition_is_invalid_is_not_warned_about() -> None:
    s3 = account(app=definition("app-logs", rule("a", 0)), logs=fleet(["*-logs"], rule("expire", 90)))
    s3.add_bucket("app-logs")
    report = await reconciler(s3, dry_run=True).run_cycle()
    assert report.counts[BucketState.INVALID] == 1
    assert report.warnings == ()


async def test_a_run_that_lcc_buckets_limits_warns_about_no_selector() -> None:
    # It sees part of the account: a selector of other buckets selects none of these, and that says nothing.
    s3 = account(logs=fleet(["*-logs"], rule("expire", 90)), typo=fleet(["*-logz"], rule("b")))
    s3.add_bucket("app-logs")
    s3.add_bucket("photos")
    report = await reconciler(s3, dry_run=True, bucket_filter=frozenset({"photos"})).run_cycle()
    assert report.warnings == ()


class ListingFailsAfterFirstPage(MemoryS3):
    """An account whose bucket listing breaks after its first page."""

    async def iter_buckets(self) -> AsyncIterator[list[BucketRef]]:
        yield [BucketRef(n) for n in sorted(self.lifecycles)[: self.page_size]]
        raise AccessDenied("Access Denied", operation="ListBuckets")


async def test_a_cycle_whose_bucket_listing_failed_part_way_warns_about_no_selector() -> None:
    s3 = ListingFailsAfterFirstPage(page_size=1)
    s3.objects["definition/logs.toml"] = fleet(["*-logs"], rule("expire", 90))
    s3.add_bucket("a-photos")
    s3.add_bucket("b-logs")
    report = await reconciler(s3, dry_run=True).run_cycle()
    assert report.fatal is not None
    assert report.warnings == ()


async def test_each_listed_name_is_matched_once_whatever_counts_the_selectors(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = account(logs=fleet(["*-logs"], rule("expire", 90)), typo=fleet(["*-logz"], rule("b")))
    for index in range(20):
        s3.add_bucket(f"bucket-{index}-logs")
    matched: list[str] = []
    original = Matcher.match

    def match(self: Matcher, name: str) -> tuple[Match, ...]:
        matched.append(name)
        return original(self, name)

    monkeypatch.setattr(Matcher, "match", match)
    report = await reconciler(s3, dry_run=True).run_cycle()
    assert len(report.warnings) == 1
    assert sorted(matched) == sorted(s3.lifecycles)


async def test_another_writers_legacy_prefix_rule_kept_beside_a_baseline_is_sent_in_the_filter_form() -> None:
    theirs = rule("theirs", 3, Filter=None, Prefix="tmp/")
    assert theirs.filter is None
    assert theirs.prefix == "tmp/"
    s3 = account(base=fleet(["*"], rule("abort", 7)))
    s3.add_bucket("mixed", LifecycleConfig((theirs,)))
    lc = reconciler(s3)
    assert (await lc.run_cycle()).writes == 1
    sent = s3.lifecycles["mixed"].rules
    assert ids(s3, "mixed") == ["abort", "theirs"]
    assert all(r.filter is not None and r.prefix is None for r in sent)  # S3 refuses the two forms in one PUT
    assert (await lc.run_cycle(Trigger.POLL)).writes == 0  # the same meaning: nothing to write again
