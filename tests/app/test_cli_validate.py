"""``lakecircle validate PATH...``: every problem on a line, a count, the exit code, JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner, Result

from lakecircle.app.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "definitions"
COUNT = re.compile(
    r"^(?P<files>\d+) file\(s\), (?P<valid>\d+) valid bucket\(s\), (?P<invalid>\d+) invalid"
    r"(?:, (?P<selectors>\d+) valid selector\(s\), (?P<invalid_selectors>\d+) invalid)?;"
    r" (?P<errors>\d+) error\(s\), (?P<warnings>\d+) warning\(s\)$"
)
"""The count line; the selectors' part only when there are selectors."""

GOOD = """\
BucketName = "good"

[[LifecycleConfiguration.Rules]]
ID = "expire"
Status = "Enabled"
Filter = { Prefix = "tmp/" }
Expiration = { Days = 7 }
"""

BROKEN = """\
BucketName = "broken"

[[LifecycleConfiguration.Rules]]
ID = "too-soon"
Status = "Enabled"
Transitions = [{ Days = 10, StorageClass = "STANDARD_IA" }]

[[LifecycleConfiguration.Rules]]
ID = "typo"
Status = "Enabled"
Expiraton = { Days = 30 }
"""

WARNED = """\
BucketName = "warned"

[[LifecycleConfiguration.Rules]]
ID = "same-day"
Status = "Enabled"
Transitions = [{ Days = 90, StorageClass = "GLACIER" }, { Days = 90, StorageClass = "DEEP_ARCHIVE" }]
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["validate", *args])


def count_line(result: Result) -> dict[str, int]:
    last = result.stdout.rstrip("\n").splitlines()[-1]
    match = COUNT.match(last)
    assert match is not None, last
    return {k: int(v) for k, v in match.groupdict().items() if v is not None}


def test_the_bundled_examples_validate_with_exit_0() -> None:
    result = run(str(EXAMPLES))

    assert result.exit_code == 0, result.output
    # 8 files: 4 exact examples and the fleet folder's 4 (3 selectors and acme-audit-logs, a bucket).
    assert count_line(result) == {
        "files": 8,
        "valid": 5,
        "invalid": 0,
        "selectors": 3,
        "invalid_selectors": 0,
        "errors": 0,
        "warnings": 0,
    }
    assert len(result.stdout.splitlines()) == 1


def test_a_broken_file_exits_1_and_prints_each_problem_as_file_bucket_rule_field_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(BROKEN)

    result = run(str(broken))

    assert result.exit_code == 1
    *problems, _ = result.stdout.splitlines()
    assert len(problems) == 2
    assert any(line.startswith(f"{broken}: broken: too-soon: Transitions[0].Days: ") for line in problems)
    assert any(line.startswith(f"{broken}: broken: typo: Expiraton: unknown key 'Expiraton'") for line in problems)
    assert "did you mean 'Expiration'" in result.stdout
    assert count_line(result) == {"files": 1, "valid": 0, "invalid": 1, "errors": 2, "warnings": 0}


def test_a_directory_is_searched_for_toml_files_only(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "broken.toml").write_text(BROKEN)
    (tmp_path / "README.md").write_text("not = [ toml")

    result = run(str(tmp_path))

    assert result.exit_code == 1
    assert count_line(result) == {"files": 2, "valid": 1, "invalid": 1, "errors": 2, "warnings": 0}
    assert "README" not in result.stdout


def test_several_paths_are_validated_together(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    (tmp_path / "b.toml").write_text(GOOD.replace('ID = "expire"', 'ID = "other"'))

    result = run(str(tmp_path / "a.toml"), str(tmp_path / "b.toml"))

    assert result.exit_code == 0, result.output
    assert count_line(result) == {"files": 2, "valid": 1, "invalid": 0, "errors": 0, "warnings": 0}


def test_a_rule_id_defined_in_two_paths_exits_1(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    (tmp_path / "b.toml").write_text(GOOD)

    result = run(str(tmp_path / "a.toml"), str(tmp_path / "b.toml"))

    assert result.exit_code == 1
    assert "good: expire: ID: rule ID 'expire' is defined more than once" in result.stdout
    assert count_line(result)["errors"] == 1


def test_warnings_alone_exit_0_and_are_marked(tmp_path: Path) -> None:
    (tmp_path / "warned.toml").write_text(WARNED)

    result = run(str(tmp_path))

    assert result.exit_code == 0, result.output
    (line, _) = result.stdout.splitlines()
    assert line.startswith(f"{tmp_path / 'warned.toml'}: warned: same-day: Transitions: warning: ")
    assert count_line(result) == {"files": 1, "valid": 1, "invalid": 0, "errors": 0, "warnings": 1}


def test_a_file_problem_without_a_bucket_prints_dashes(tmp_path: Path) -> None:
    bad = tmp_path / "syntax.toml"
    bad.write_text('BucketName = "b"\n[[LifecycleConfiguration.Rules]\n')

    result = run(str(bad))

    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].startswith(f"{bad}: -: -: -: TOML syntax error")


def test_json_output_parses_and_holds_every_problem(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)
    (tmp_path / "broken.toml").write_text(BROKEN)

    result = run("--output", "json", str(tmp_path))

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["buckets"] == ["good"]
    assert report["invalid_buckets"] == ["broken"]
    assert report["errors"] == 2
    assert sorted((p["bucket"], p["rule"], p["field"], p["severity"]) for p in report["problems"]) == [
        ("broken", "too-soon", "Transitions[0].Days", "error"),
        ("broken", "typo", "Expiraton", "error"),
    ]
    assert all(p["file"] == str(tmp_path / "broken.toml") and p["message"] for p in report["problems"])


def test_json_output_of_valid_definitions_has_no_problems() -> None:
    result = run("--output", "json", str(EXAMPLES))

    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["problems"] == []
    assert report["errors"] == 0
    assert report["files"] == 8  # with the fleet folder: its selectors are no buckets, acme-audit-logs is
    assert len(report["buckets"]) == 5
    assert len(report["selectors"]) == 3
    assert report["invalid_selectors"] == []


def test_a_missing_path_is_a_usage_error_that_exits_1(tmp_path: Path) -> None:
    result = run(str(tmp_path / "absent.toml"))

    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_no_path_is_a_usage_error_that_exits_1() -> None:
    result = run()

    assert result.exit_code == 1


def test_an_empty_file_is_unreadable_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)
    (tmp_path / "empty.toml").write_bytes(b"\n  \n")

    result = run(str(tmp_path))

    assert result.exit_code == 1
    first, _ = result.stdout.splitlines()
    assert first.startswith(f"{tmp_path / 'empty.toml'}: -: -: -: the file is empty, so it defines no bucket")
    assert count_line(result) == {"files": 2, "valid": 1, "invalid": 0, "errors": 1, "warnings": 0}


def test_json_output_lists_each_unreadable_file_with_its_reason_and_line(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)
    (tmp_path / "syntax.toml").write_text('BucketName = "b"\n\n[[LifecycleConfiguration.Rules]\n')
    (tmp_path / "latin1.toml").write_bytes(b'BucketName = "c"\n\n\n# caf\xe9\n')

    result = run("--output", "json", str(tmp_path))

    assert result.exit_code == 1
    unreadable = {Path(f["file"]).name: f for f in json.loads(result.stdout)["unreadable_files"]}
    assert sorted(unreadable) == ["latin1.toml", "syntax.toml"]
    assert unreadable["syntax.toml"]["line"] == 3
    assert unreadable["syntax.toml"]["reason"].startswith("TOML syntax error")
    assert unreadable["latin1.toml"]["line"] == 4
    assert unreadable["latin1.toml"]["reason"].startswith("file is not UTF-8")


def test_a_usage_error_of_plan_with_detailed_exitcode_exits_1_not_2_which_means_changes_pending(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(cli, ["plan", "--definitions", str(tmp_path / "absent"), "--detailed-exitcode"])
    assert result.exit_code == 1, result.output
    assert "does not exist" in result.output
    unknown = CliRunner().invoke(cli, ["plan", "--no-such-option"])
    assert unknown.exit_code == 1, unknown.output


def test_history_and_rollback_refuse_a_bucket_name_s3_cannot_hold_by_the_rule_it_breaks() -> None:
    for command in ("history", "rollback"):
        result = CliRunner().invoke(cli, [command, "BAD BUCKET"])
        assert result.exit_code == 1, result.output
        assert "BAD BUCKET: bucket name has upper-case letters" in result.output
        newline = CliRunner().invoke(cli, [command, "a\nb"])
        assert newline.exit_code == 1, newline.output
        assert "a\\nb" in newline.output


FLEET = """\
BucketMatch = ["*-logs"]
BucketExclude = ["legal-hold-*"]
BucketTags = { retention = "1y" }

[[LifecycleConfiguration.Rules]]
ID = "abort-incomplete-uploads"
Status = "Enabled"
Filter = {}
AbortIncompleteMultipartUpload = { DaysAfterInitiation = 7 }
"""


def test_a_folder_with_a_valid_selector_file_validates_clean(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)
    (tmp_path / "fleet.toml").write_text(FLEET)

    result = run(str(tmp_path))

    assert result.exit_code == 0, result.output
    assert count_line(result) == {
        "files": 2,
        "valid": 1,
        "invalid": 0,
        "selectors": 1,
        "invalid_selectors": 0,
        "errors": 0,
        "warnings": 0,
    }
    assert (
        result.stdout
        == "2 file(s), 1 valid bucket(s), 0 invalid, 1 valid selector(s), 0 invalid; 0 error(s), 0 warning(s)\n"
    )


def test_a_folder_with_a_broken_selector_file_prints_its_problems_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        FLEET.replace('"*-logs"', '"Logs-*"').replace("DaysAfterInitiation = 7", "DaysAfterInitiation = 0")
    )

    result = run(str(tmp_path))

    assert result.exit_code == 1
    *problems, _ = result.stdout.splitlines()
    assert problems == [
        f"{fleet}: -: -: BucketMatch[0]: pattern 'Logs-*' can never match a bucket name: it has upper-case"
        " letters, and bucket names are lower case (patterns are case-sensitive): write 'logs-*'",
        f"{fleet}: -: abort-incomplete-uploads:"
        " LifecycleConfiguration.Rules[0].AbortIncompleteMultipartUpload.DaysAfterInitiation: "
        + problems[1].split("DaysAfterInitiation: ", 1)[1],
    ]
    assert "positive" in problems[1] or "at least 1" in problems[1], problems[1]
    assert count_line(result) == {
        "files": 2,
        "valid": 1,
        "invalid": 0,
        "selectors": 0,
        "invalid_selectors": 1,
        "errors": 2,
        "warnings": 0,
    }


def test_a_selector_of_every_bucket_made_authoritative_validates_with_a_warning(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        FLEET.replace('["*-logs"]', '["*"]').replace("BucketTags", 'Ownership = "authoritative"\n# BucketTags')
    )

    result = run(str(fleet))

    assert result.exit_code == 0, result.output
    assert f"{fleet}: -: -: Ownership: warning: BucketMatch selects every bucket in the account" in result.stdout
    assert count_line(result)["warnings"] == 1


SHADOWED = """\
BucketName = "app-logs"

[[LifecycleConfiguration.Rules]]
ID = "abort-incomplete-uploads"
Status = "Enabled"
Filter = { Prefix = "" }
AbortIncompleteMultipartUpload = { DaysAfterInitiation = 7 }
"""


def test_an_exact_definition_the_selectors_shadow_entirely_validates_with_a_warning_in_text_and_json(
    tmp_path: Path,
) -> None:
    (tmp_path / "fleet.toml").write_text(FLEET.replace("BucketTags", "# BucketTags"))
    shadowed = tmp_path / "app-logs.toml"
    shadowed.write_text(SHADOWED)
    (tmp_path / "web-logs.toml").write_text(SHADOWED.replace("app-logs", "web-logs").replace("= 7", "= 3"))

    result = run(str(tmp_path))

    assert result.exit_code == 0, result.output
    *problems, _ = result.stdout.splitlines()
    assert problems == [
        f"{shadowed}: app-logs: -: -: warning: every rule of this BucketName definition is given to the bucket"
        " with the same content by a selector matching its name: 'abort-incomplete-uploads' by"
        f" {tmp_path / 'fleet.toml'} (pattern '*-logs'); the definition changes none of their rules, so it is"
        " redundant: remove the definition, or change the rules it means to override. Removing it also makes the"
        " bucket shared (rules other writers put in it are then kept): a BucketName definition makes its bucket"
        " authoritative by default, and the selectors matching its name do not"
    ]
    assert count_line(result) == {
        "files": 3,
        "valid": 2,
        "invalid": 0,
        "selectors": 1,
        "invalid_selectors": 0,
        "errors": 0,
        "warnings": 1,
    }

    document = json.loads(run("--output", "json", str(tmp_path)).stdout)
    [warning] = document["problems"]
    assert (warning["file"], warning["bucket"], warning["severity"]) == (str(shadowed), "app-logs", "warning")
    assert warning["message"] == problems[0].split(": warning: ", 1)[1]


def test_json_output_lists_valid_and_invalid_selectors_by_label_beside_the_buckets(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)
    (tmp_path / "fleet.toml").write_text(FLEET)
    table = FLEET.replace("[[LifecycleConfiguration", "[[Bucket.LifecycleConfiguration")
    (tmp_path / "tables.toml").write_text(
        "[[Bucket]]\n" + table + "\n[[Bucket]]\n" + table.replace('"*-logs"', '"Logs-*"')
    )

    result = run("--output", "json", str(tmp_path))

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    fleet, tables = tmp_path / "fleet.toml", tmp_path / "tables.toml"
    assert report["selectors"] == [str(fleet), f"{tables} Bucket[0]"]
    assert report["invalid_selectors"] == [f"{tables} Bucket[1]"]
    assert report["buckets"] == ["good"]
    text = run(str(tmp_path))
    assert count_line(text) == {
        "files": 3,
        "valid": 1,
        "invalid": 0,
        "selectors": 2,
        "invalid_selectors": 1,
        "errors": 1,
        "warnings": 0,
    }


def test_json_output_without_selectors_has_empty_selector_lists(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)

    report = json.loads(run("--output", "json", str(tmp_path)).stdout)

    assert (report["selectors"], report["invalid_selectors"]) == ([], [])
