"""``lakecircle plan`` against moto: a selector that selects no bucket of the account is a
warning line after the plan, and a field of the JSON plan's report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lakecircle.app.cli import cli
from tests.builders import fleet, rule
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION

MESSAGE = 'no bucket in the account matches BucketMatch ["*-logz"]; check the patterns or remove the selector'


@pytest.fixture
def definitions(moto: str, s3_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LCC_AWS_ACCOUNT", MOTO_ACCOUNT)
    monkeypatch.setenv("LCC_AWS_REGION", MOTO_REGION)
    monkeypatch.setenv("LCC_APP_LEVEL", "ERROR")
    s3_client.create_bucket(Bucket="app-logs")
    (tmp_path / "logs.toml").write_bytes(fleet(["*-logs"], rule("expire", 90)))
    (tmp_path / "typo.toml").write_bytes(fleet(["*-logz"], rule("expire", 90)))
    return tmp_path


def test_plan_says_which_selector_selects_no_bucket_after_the_plan_and_exits_0(definitions: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", "--definitions", str(definitions)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"Warning: {definitions / 'typo.toml'}: {MESSAGE}" in lines
    assert sum("Warning:" in line for line in lines) == 1


def test_a_json_plan_carries_the_warning_in_its_report(definitions: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", "--definitions", str(definitions), "--output", "json"])
    assert result.exit_code == 0, result.output
    [warning] = json.loads(result.stdout)["report"]["warnings"]
    assert (warning["kind"], warning["message"]) == (
        "selector_matches_no_bucket",
        f"{definitions / 'typo.toml'}: {MESSAGE}",
    )
    assert (warning["file"], warning["selector"], warning["patterns"]) == (
        str(definitions / "typo.toml"),
        str(definitions / "typo.toml"),
        ["*-logz"],
    )
