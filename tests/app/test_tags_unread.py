"""What ``plan`` and ``sync`` say when a bucket's tags could not be read: the summary names
the bucket and why, the JSON report lists it in ``tags_unread``, and the plan holds its
removals (ARCHITECTURE.md, "Safety", rule 6). The tag read is refused or throttled by the
fault proxy in front of moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lakecircle.app.cli import cli
from tests.builders import definition, fleet, rule
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION
from tests.faultproxy import Fault, FaultProxy

TAGS = "GetBucketTagging"
RETENTION = {"Key": "retention", "Value": "1y"}


@pytest.fixture
def proxy(moto: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """Buckets in moto, and the commands' S3 calls through a fault proxy in front of it."""
    for name in ("archive", "vault"):
        s3_client.create_bucket(Bucket=name)
        s3_client.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [RETENTION]})
    config = {"Rules": [r.to_wire() for r in (rule("abort", 7), rule("keep", 365))]}
    s3_client.put_bucket_lifecycle_configuration(Bucket="archive", LifecycleConfiguration=config)
    for name, value in (("LCC_AWS_ACCOUNT", MOTO_ACCOUNT), ("LCC_AWS_REGION", MOTO_REGION)):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LCC_LOG_FORMAT", "JSON")
    monkeypatch.setenv("LCC_APP_LEVEL", "ERROR")
    monkeypatch.setenv("LCC_RETRY_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("LCC_RETRY_BASE_DELAY", "0.01")
    monkeypatch.delenv("LCC_ENDPOINT", raising=False)
    with FaultProxy(moto) as started:
        monkeypatch.setenv("AWS_ENDPOINT_URL", started.url)
        yield started


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """archive: its exact definition gives abort; the tag selector gives keep to buckets tagged retention = 1y."""
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "archive.toml").write_bytes(definition("archive", rule("abort", 7)))
    (folder / "retention.toml").write_bytes(fleet(["arch*"], rule("keep", 365), BucketTags={"retention": "1y"}))
    return folder


def plan(folder: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["plan", "--definitions", str(folder), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param(Fault.DENIED, "AccessDenied", id="refused: access denied"),
        pytest.param(Fault.SLOWDOWN, "SlowDown", id="throttled past its retries"),
    ],
)
def test_a_bucket_whose_tags_were_unread_is_named_in_the_summary_and_its_tag_rule_is_held(
    proxy: FaultProxy, folder: Path, fault: Fault, reason: str
) -> None:
    proxy.force(TAGS, "archive", fault)

    result = plan(folder, "--detailed-exitcode")

    assert result.exit_code == 2, result.output  # removals held are pending, not a failure
    lines = result.stdout.splitlines()
    assert "  ! rule keep (removal held back: the rule stays)" in lines
    assert (
        "Guard: the tags of 1 bucket(s) could not be read, so their rules stay as they are"
        " (partial_definitions): none was removed and no selector's change was made (marked ! in the plan);"
        " rules new to them were added."
    ) in lines
    [named] = [line for line in lines if line.startswith("  tags unread: ")]
    assert named.startswith("  tags unread: archive: could not read the bucket's tags (GetBucketTagging)")
    assert reason in named
    assert "some definition files could not be read" not in result.stdout

    document = json.loads(plan(folder, "--output", "json").stdout)
    report = document["report"]
    assert report["guards"] == ["partial_definitions"]
    assert report["partial_definitions"] is False  # the files were read whole
    [unread] = report["tags_unread"]
    assert unread["bucket"] == "archive"
    assert unread["error"].startswith("could not read the bucket's tags (GetBucketTagging)")
    assert reason in unread["error"]
    [bucket] = document["buckets"]
    assert (bucket["bucket"], bucket["action"], bucket["removed"]) == ("archive", "noop", [])
    assert [r["ID"] for r in bucket["held"]] == ["keep"]


def test_a_bucket_only_tag_selectors_could_select_fails_once_named_and_plan_exits_1(
    proxy: FaultProxy, folder: Path
) -> None:
    (folder / "retention.toml").write_bytes(fleet(["*"], rule("keep", 365), BucketTags={"retention": "1y"}))
    proxy.force(TAGS, "vault", Fault.DENIED)

    result = plan(folder, "--detailed-exitcode")

    assert result.exit_code == 1, result.output
    failed = [line for line in result.stdout.splitlines() if "vault" in line]
    assert len(failed) == 1, failed  # named as failed, not again as planned without its tags
    assert failed[0].startswith("  failed: vault: could not read the bucket's tags (GetBucketTagging)")
    assert "Guard: the tags of" not in result.stdout
    report = json.loads(plan(folder, "--output", "json").stdout)["report"]
    assert [t["bucket"] for t in report["tags_unread"]] == ["vault"]
    assert [(p["bucket"], p["state"], p["stage"]) for p in report["problems"]] == [("vault", "failed", "read")]


def test_a_cycle_whose_tags_were_all_read_has_no_tag_line_and_an_empty_tags_unread(
    proxy: FaultProxy, folder: Path
) -> None:
    result = plan(folder)

    assert result.exit_code == 0, result.output
    assert "tags" not in result.stdout.lower()
    assert json.loads(plan(folder, "--output", "json").stdout)["report"]["tags_unread"] == []
    assert proxy.arrived(TAGS) == 2  # archive, once per command; vault matches no tag selector's pattern


@pytest.mark.parametrize(
    ("fault", "other_removal"),
    [
        pytest.param(
            Fault.DENIED, "  - rule stale  (in no definition that selects this bucket)", id="refused for good"
        ),
        pytest.param(Fault.SLOWDOWN, "  ! rule stale (removal held back: the rule stays)", id="throttled"),
    ],
)
def test_a_refused_tag_read_holds_its_buckets_removals_alone_and_a_throttled_one_leaves_the_total_unknown(
    proxy: FaultProxy, folder: Path, s3_client: Any, fault: Fault, other_removal: str
) -> None:
    s3_client.create_bucket(Bucket="ledger")
    config = {"Rules": [r.to_wire() for r in (rule("abort", 7), rule("stale", 3))]}
    s3_client.put_bucket_lifecycle_configuration(Bucket="ledger", LifecycleConfiguration=config)
    (folder / "ledger.toml").write_bytes(definition("ledger", rule("abort", 7)))
    proxy.force(TAGS, "archive", fault)

    result = plan(folder)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert other_removal in lines
    unknown = next((line for line in lines if line.startswith("Guard: a read failed for a reason that may pass")), None)
    assert (unknown is not None) is (fault is Fault.SLOWDOWN), result.stdout
    if unknown is not None:
        assert "the removals that waited for it were not made (marked ! in the plan)" in unknown
    guards = json.loads(plan(folder, "--output", "json").stdout)["report"]["guards"]
    expected = ["partial_definitions", "unknown_total"] if fault is Fault.SLOWDOWN else ["partial_definitions"]
    assert guards == expected
