"""A bucket whose live rules hold a field LakeCircle does not know, end to end.

moto's real answer is rewritten by the proxy to hold an element no botocore knows, as a
newer S3 would send it: ``plan`` shows the bucket ``unsupported`` with the field and the
rule, in text and JSON, and exits 1; ``sync`` never writes it and writes the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lakecircle.app.cli import cli
from tests.conftest import ServerTap
from tests.faultproxy import FaultProxy, Rewrite
from tests.helpers import moto_account

LIVE = {"ID": "archive", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}}
DEFINED = """BucketName = "{bucket}"
[[LifecycleConfiguration.Rules]]
ID = "archive"
Status = "Enabled"
Filter = {{ Prefix = "logs/" }}
Expiration = {{ Days = 60 }}
"""
MESSAGE = (
    "unsupported: newer: bucket newer: its lifecycle configuration holds a field LakeCircle does not know"
    ' (rule "archive": Filter.ObjectSizeEqualTo)'
)


def with_new_field(body: bytes) -> bytes:
    return body.replace(b"<Filter>", b"<Filter><ObjectSizeEqualTo>10</ObjectSizeEqualTo>", 1)


@pytest.fixture
def definitions(moto: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Buckets ``newer`` (its answers rewritten to hold a new field) and ``older``, both drifted."""
    s3_client.create_bucket(Bucket="lcc-endpoint")
    folder = tmp_path / "defs"
    folder.mkdir()
    for bucket in ("newer", "older"):
        s3_client.create_bucket(Bucket=bucket)
        s3_client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [LIVE]})
        (folder / f"{bucket}.toml").write_text(DEFINED.format(bucket=bucket))
    with FaultProxy(moto) as proxy:
        proxy.force("GetBucketLifecycleConfiguration", "newer", Rewrite(with_new_field))
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        moto_account(monkeypatch)
        yield folder


def test_plan_shows_the_bucket_unsupported_with_the_field_and_plans_the_others(definitions: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", "--definitions", str(definitions)])

    assert result.exit_code == 1, result.output
    assert MESSAGE in result.output
    assert "bucket older will be updated" in result.output
    assert "bucket newer will" not in result.output
    assert "1 failed" not in result.output
    assert ", 1 unsupported (" in result.output


def test_the_json_report_counts_the_state_and_carries_the_message(definitions: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", "--definitions", str(definitions), "--output", "json"])

    document = json.loads(result.stdout)
    assert [b["bucket"] for b in document["buckets"]] == ["older"]
    assert document["report"]["counts"]["unsupported"] == 1
    [problem] = document["report"]["problems"]
    assert (problem["bucket"], problem["state"]) == ("newer", "unsupported")
    assert 'rule "archive": Filter.ObjectSizeEqualTo' in problem["error"]


def test_sync_never_writes_the_unsupported_bucket_and_writes_the_others(
    definitions: Path, tap: ServerTap, s3_client: Any
) -> None:
    tap.reset()
    result = CliRunner().invoke(cli, ["sync", "--definitions", str(definitions)])

    assert result.exit_code == 1, result.output
    assert tap.counts[("PUT", "older", "lifecycle")] == 1
    assert tap.counts[("PUT", "newer", "lifecycle")] == 0
    assert tap.counts[("DELETE", "newer", "lifecycle")] == 0
    assert s3_client.get_bucket_lifecycle_configuration(Bucket="newer")["Rules"][0]["Expiration"] == {"Days": 30}
    assert MESSAGE in result.output


def test_export_names_the_unsupported_bucket_and_writes_the_others(definitions: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "--output", str(tmp_path / "out")])

    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["older.toml"]
    assert "  newer: not exported: bucket newer: its lifecycle configuration holds a field" in result.output


def test_explain_says_the_bucket_is_unsupported_with_the_message_and_exits_1(definitions: Path) -> None:
    runner = CliRunner()

    text = runner.invoke(cli, ["explain", "newer", "--definitions", str(definitions)])
    as_json = runner.invoke(cli, ["explain", "newer", "--definitions", str(definitions), "--output", "json"])
    other = runner.invoke(cli, ["explain", "older", "--definitions", str(definitions), "--output", "json"])

    assert text.exit_code == 1, text.output
    assert "unsupported: it is never written: bucket newer: its lifecycle configuration holds a field" in text.stdout
    assert 'rule "archive": Filter.ObjectSizeEqualTo' in json.loads(as_json.stdout)["unsupported"]
    assert as_json.exit_code == 1
    assert (other.exit_code, json.loads(other.stdout)["unsupported"]) == (0, None)
