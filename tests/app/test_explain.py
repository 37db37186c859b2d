"""``lakecircle explain BUCKET``: which definitions select a bucket and why, what each rule
became, ownership, the minimum object size's source, problems and the desired configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lakecircle.app.cli import cli
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION

FLEET = """\
[[Bucket]]
BucketMatch = ["*"]
[[Bucket.LifecycleConfiguration.Rules]]
ID = "abort-uploads"
Status = "Enabled"
Filter = {}
AbortIncompleteMultipartUpload = { DaysAfterInitiation = 7 }

[[Bucket]]
BucketMatch = ["*"]
BucketTags = { retention = "1y" }
[[Bucket.LifecycleConfiguration.Rules]]
ID = "keep-a-year"
Status = "Enabled"
Filter = { Prefix = "data/" }
Expiration = { Days = 365 }
"""

LOGS = """\
BucketMatch = ["*-logs", "logs-*"]
BucketExclude = ["legal-*"]
TransitionDefaultMinimumObjectSize = "varies_by_storage_class"
[[LifecycleConfiguration.Rules]]
ID = "expire-logs"
Status = "Enabled"
Filter = {}
Expiration = { Days = 90 }
"""

WEB_LOGS = """\
BucketName = "web-logs"
[[LifecycleConfiguration.Rules]]
ID = "expire-logs"
Status = "Enabled"
Filter = {}
Expiration = { Days = 30 }
"""

OTHER_LOGS = """\
BucketMatch = ["app-*"]
[[LifecycleConfiguration.Rules]]
ID = "expire-logs"
Status = "Enabled"
Filter = {}
Expiration = { Days = 10 }
"""


@pytest.fixture
def definitions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("LCC_AWS_ACCOUNT", "LCC_AWS_REGION", "LCC_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "fleet.toml").write_text(FLEET)
    (folder / "logs-baseline.toml").write_text(LOGS)
    (folder / "web-logs.toml").write_text(WEB_LOGS)
    return folder


def explain(folder: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["explain", *args, "--definitions", str(folder)])


def test_explain_names_each_selecting_definition_the_override_ownership_and_desired_rules(definitions: Path) -> None:
    result = explain(definitions, "web-logs")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    fleet, logs, own = (str(definitions / n) for n in ("fleet.toml", "logs-baseline.toml", "web-logs.toml"))
    assert lines[0] == "bucket web-logs"
    assert f"  {own}  (BucketName)" in lines
    assert f'  {fleet} Bucket[0]  (pattern "*")' in lines
    assert "    rule abort-uploads: applied" in lines
    assert f'  {logs}  (pattern "*-logs")' in lines
    assert f"    rule expire-logs: overridden by {own}" in lines
    assert (
        f"ownership: authoritative: its BucketName definition in {own} is authoritative"
        " (the default for a BucketName definition)"
    ) in lines
    assert (f'TransitionDefaultMinimumObjectSize: "varies_by_storage_class" (from {logs}, pattern "*-logs")') in lines
    desired = result.stdout.split("desired configuration:\n", 1)[1]
    assert '  BucketName = "web-logs"' in desired
    assert "  Days = 30" in desired  # the override, not the selector's 90
    assert "  DaysAfterInitiation = 7" in desired


def test_a_tag_selector_without_an_account_needs_the_buckets_tags(definitions: Path) -> None:
    result = explain(definitions, "data-lake")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    fleet = definitions / "fleet.toml"
    assert "matched by name, not selected:" in lines
    assert f'  {fleet} Bucket[1]  (pattern "*", tags "retention" = "1y"): needs the bucket\'s tags' in lines
    assert any(line.startswith("tags: not read: no account to read them from") for line in lines)
    assert (
        'ownership: shared: only selectors select it (shared by default), and none says Ownership = "authoritative"'
        in lines
    )
    assert "TransitionDefaultMinimumObjectSize: not set; a write keeps the bucket's current value" in lines


def test_explain_as_json_carries_the_same_as_fields(definitions: Path) -> None:
    result = explain(definitions, "web-logs", "--output", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    own = str(definitions / "web-logs.toml")
    logs = str(definitions / "logs-baseline.toml")
    assert (document["bucket"], document["managed"], document["valid"]) == ("web-logs", True, True)
    assert [(s["selector"], s["pattern"]) for s in document["selected_by"]] == [
        (None, None),
        (f"{definitions / 'fleet.toml'} Bucket[0]", "*"),
        (logs, "*-logs"),
    ]
    assert document["selected_by"][2]["rules"] == [
        {"id": "expire-logs", "fate": "overridden", "by": {"file": own, "selector": None, "pattern": None}}
    ]
    assert document["not_selected"][0]["reason"] == "needs the bucket's tags"
    assert document["not_selected"][0]["tags"] == {"retention": "1y"}
    assert document["tags"] is None
    assert document["ownership"]["value"] == "authoritative"
    assert document["transition_default_minimum_object_size"] == {
        "value": "varies_by_storage_class",
        "source": {"file": logs, "selector": logs, "pattern": "*-logs"},
    }
    assert document["overrides"] == [
        {
            "rule": "expire-logs",
            "overridden": {"file": logs, "selector": logs, "pattern": "*-logs"},
            "by": {"file": own, "selector": None, "pattern": None},
        }
    ]
    assert [r["ID"] for r in document["desired"]["Rules"]] == ["expire-logs", "abort-uploads"]
    assert document["problems"] == []
    assert document["unreadable_files"] == []


def test_a_bucket_no_definition_selects_is_unmanaged_and_exit_0(tmp_path: Path, definitions: Path) -> None:
    (definitions / "fleet.toml").unlink()
    result = explain(definitions, "data-lake")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "bucket data-lake",
        "no definition selects it: it is unmanaged (LakeCircle never reads or writes its lifecycle rules)",
    ]
    document = json.loads(explain(definitions, "data-lake", "--output", "json").stdout)
    assert (document["managed"], document["selected_by"], document["desired"]) == (False, [], None)


def test_an_excluded_bucket_is_not_selected_by_its_pattern(definitions: Path) -> None:
    document = json.loads(explain(definitions, "legal-logs", "--output", "json").stdout)
    assert [s["pattern"] for s in document["selected_by"]] == ["*"]


def test_two_selectors_giving_one_rule_id_different_content_make_the_bucket_invalid(definitions: Path) -> None:
    (definitions / "app.toml").write_text(OTHER_LOGS)
    result = explain(definitions, "app-logs")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "invalid: it is never written until these are fixed:" in lines
    problem = next(line for line in lines if "with different content" in line)
    assert "logs-baseline.toml" in problem
    assert "app.toml" in problem
    assert "expire-logs" in problem
    assert "    rule expire-logs: conflicts with another selector's rule of this ID (see problems)" in lines
    assert "desired configuration:" not in lines
    assert "Traceback" not in result.output
    document = json.loads(explain(definitions, "app-logs", "--output", "json").stdout)
    assert document["valid"] is False
    assert document["desired"] is None
    assert document["problems"][0]["rule"] == "expire-logs"


def test_an_unreadable_definition_file_is_named_and_exit_1(definitions: Path) -> None:
    (definitions / "broken.toml").write_text("BucketMatch = [\n")
    result = explain(definitions, "web-logs")
    assert result.exit_code == 1
    assert "some definition files could not be read" in result.stderr
    assert "broken.toml" in result.stderr


@pytest.mark.parametrize(
    "name",
    [pytest.param("Not_A_Bucket", id="upper case and underscores"), pytest.param("ab", id="too short")],
)
def test_a_bucket_name_s3_cannot_hold_is_a_usage_error(definitions: Path, name: str) -> None:
    result = explain(definitions, name)
    assert result.exit_code == 1
    assert "Invalid value for 'BUCKET'" in result.output
    assert "Traceback" not in result.output


def test_with_an_account_the_buckets_tags_are_read_for_a_tag_selector(
    moto: str, s3_client: Any, definitions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LCC_AWS_ACCOUNT", MOTO_ACCOUNT)
    monkeypatch.setenv("LCC_AWS_REGION", MOTO_REGION)
    monkeypatch.setenv("LCC_APP_LEVEL", "WARNING")
    for bucket, retention in (("data-lake", "1y"), ("scratch", "1d")):
        s3_client.create_bucket(Bucket=bucket)
        s3_client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "retention", "Value": retention}]})
    s3_client.create_bucket(Bucket="untagged")

    tagged = json.loads(explain(definitions, "data-lake", "--output", "json").stdout)
    assert tagged["tags"] == {"retention": "1y"}
    assert tagged["tags_note"] is None
    assert tagged["not_selected"] == []
    assert [s["tags"] for s in tagged["selected_by"]] == [{}, {"retention": "1y"}]
    assert [r["ID"] for r in tagged["desired"]["Rules"]] == ["abort-uploads", "keep-a-year"]

    other = explain(definitions, "scratch")
    assert other.exit_code == 0, other.output
    assert 'tags: "retention" = "1d"' in other.stdout.splitlines()
    assert other.stdout.count("the bucket's tags do not match") == 1
    untagged = json.loads(explain(definitions, "untagged", "--output", "json").stdout)
    assert untagged["tags"] == {}
    assert untagged["not_selected"][0]["reason"] == "the bucket's tags do not match"


# -- definitions from the S3 prefix (LCC_ENDPOINT), against moto --------------------------------

ENDPOINT = "explain-endpoint"
KEYS = "lc/definition/"


@pytest.fixture
def prefix(moto: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The definitions of this module under ``s3://explain-endpoint/lc/definition/``, and
    the settings that point ``explain`` at them; yields the client that arranges moto."""
    s3_client.create_bucket(Bucket=ENDPOINT)
    for name, text in (("fleet.toml", FLEET), ("logs-baseline.toml", LOGS), ("web-logs.toml", WEB_LOGS)):
        s3_client.put_object(Bucket=ENDPOINT, Key=KEYS + name, Body=text.encode())
    for name, value in (
        ("LCC_ENDPOINT", f"s3://{ENDPOINT}/lc/"),
        ("LCC_AWS_ACCOUNT", MOTO_ACCOUNT),
        ("LCC_AWS_REGION", MOTO_REGION),
        ("LCC_APP_LEVEL", "WARNING"),
    ):
        monkeypatch.setenv(name, value)
    return s3_client


def explain_prefix(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["explain", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def test_explain_reads_the_definitions_from_the_s3_prefix_and_names_them_by_key(prefix: Any) -> None:
    prefix.create_bucket(Bucket="web-logs")  # a tag selector's pattern matches it: its tags are read
    result = explain_prefix("web-logs")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "bucket web-logs"
    assert f"  {KEYS}web-logs.toml  (BucketName)" in lines
    assert f'  {KEYS}fleet.toml Bucket[0]  (pattern "*")' in lines
    assert f'  {KEYS}logs-baseline.toml  (pattern "*-logs")' in lines
    assert f"    rule expire-logs: overridden by {KEYS}web-logs.toml" in lines
    assert "  Days = 30" in result.stdout.split("desired configuration:\n", 1)[1]


def test_explain_from_the_s3_prefix_as_json_reads_the_tags_of_a_bucket_a_tag_selector_matches(prefix: Any) -> None:
    prefix.create_bucket(Bucket="data-lake")
    prefix.put_bucket_tagging(Bucket="data-lake", Tagging={"TagSet": [{"Key": "retention", "Value": "1y"}]})

    result = explain_prefix("data-lake", "--output", "json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["bucket"], document["managed"], document["valid"]) == ("data-lake", True, True)
    assert document["tags"] == {"retention": "1y"}
    assert [(s["selector"], s["pattern"], s["tags"]) for s in document["selected_by"]] == [
        (f"{KEYS}fleet.toml Bucket[0]", "*", {}),
        (f"{KEYS}fleet.toml Bucket[1]", "*", {"retention": "1y"}),
    ]
    assert [r["ID"] for r in document["desired"]["Rules"]] == ["abort-uploads", "keep-a-year"]
    assert document["unreadable_files"] == []


def test_explain_from_the_s3_prefix_exits_0_for_an_unmanaged_bucket(prefix: Any) -> None:
    prefix.delete_object(Bucket=ENDPOINT, Key=KEYS + "fleet.toml")

    result = explain_prefix("photos")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith("no definition selects it: it is unmanaged")
    document = json.loads(explain_prefix("photos", "--output", "json").stdout)
    assert (document["managed"], document["desired"]) == (False, None)


def test_explain_from_the_s3_prefix_exits_1_for_a_bucket_whose_definitions_conflict(prefix: Any) -> None:
    prefix.put_object(Bucket=ENDPOINT, Key=KEYS + "app.toml", Body=OTHER_LOGS.encode())

    result = explain_prefix("app-logs")

    assert result.exit_code == 1, result.output
    problem = next(line for line in result.stdout.splitlines() if "with different content" in line)
    assert f"{KEYS}logs-baseline.toml" in problem
    assert f"{KEYS}app.toml" in problem
    assert json.loads(explain_prefix("app-logs", "--output", "json").stdout)["valid"] is False


def test_explain_from_the_s3_prefix_exits_1_and_names_an_unreadable_file(prefix: Any) -> None:
    prefix.put_object(Bucket=ENDPOINT, Key=KEYS + "broken.toml", Body=b"BucketMatch = [\n")

    result = explain_prefix("web-logs")

    assert result.exit_code == 1, result.output
    assert "some definition files could not be read" in result.stderr
    assert f"  unreadable: {KEYS}broken.toml" in result.stderr
    document = json.loads(explain_prefix("web-logs", "--output", "json").stdout)
    assert [f["file"] for f in document["unreadable_files"]] == [f"{KEYS}broken.toml"]


def test_explain_from_a_prefix_that_cannot_be_listed_is_one_line_and_exit_1(prefix: Any) -> None:
    prefix.delete_object(Bucket=ENDPOINT, Key=KEYS + "fleet.toml")
    for name in ("logs-baseline.toml", "web-logs.toml"):
        prefix.delete_object(Bucket=ENDPOINT, Key=KEYS + name)
    prefix.delete_bucket(Bucket=ENDPOINT)

    result = explain_prefix("web-logs")

    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert ENDPOINT in line


def test_explain_exits_1_when_the_buckets_tags_could_not_be_read_and_says_what_is_left_out(prefix: Any) -> None:
    result = explain_prefix(
        "not-in-this-account", "--output", "json"
    )  # a tag selector matches "*": its tags are needed

    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["tags"] is None
    assert document["tags_note"].startswith("the read failed: ")
    assert document["not_selected"][0]["reason"] == "needs the bucket's tags"
    assert "the bucket's tags could not be read" in result.stderr
