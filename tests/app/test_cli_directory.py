"""``lakecircle validate`` with directory buckets and ``LCC_STORAGE_CLASSES``: the command
reads the setting, and a transition on a directory bucket is refused, named."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lakecircle.app.cli import cli
from tests.helpers import clear_settings

TIERED = """\
BucketName = "tiered"

[[LifecycleConfiguration.Rules]]
ID = "to-warm"
Status = "Enabled"
Filter = { Prefix = "" }
Transitions = [{ Days = 5, StorageClass = "WARM" }]
"""

EXPRESS = """\
BucketName = "logs--use1-az4--x-s3"

[[LifecycleConfiguration.Rules]]
ID = "archive"
Status = "Enabled"
Filter = { Prefix = "" }
Expiration = { Days = 90 }
Transitions = [{ Days = 30, StorageClass = "STANDARD_IA" }]
"""


def validate(path: Path) -> Result:
    return CliRunner().invoke(cli, ["validate", str(path)])


def test_validate_refuses_an_unknown_class_and_says_how_to_allow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_settings(monkeypatch)
    (tmp_path / "tiered.toml").write_text(TIERED)

    result = validate(tmp_path)

    assert result.exit_code == 1
    assert "tiered: to-warm: Transitions[0].StorageClass: StorageClass 'WARM'" in result.stdout
    assert "LCC_STORAGE_CLASSES=WARM" in result.stdout


def test_validate_reads_lcc_storage_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_settings(monkeypatch, LCC_STORAGE_CLASSES="WARM,COLD")
    (tmp_path / "tiered.toml").write_text(TIERED)

    result = validate(tmp_path)

    assert result.exit_code == 0, result.output


def test_validate_says_what_is_wrong_with_lcc_storage_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_settings(monkeypatch, LCC_STORAGE_CLASSES="WARM,,GLACIER")
    (tmp_path / "tiered.toml").write_text(TIERED)

    result = validate(tmp_path)

    assert result.exit_code == 1
    assert "LCC_STORAGE_CLASSES: a name is empty" in result.output
    assert "GLACIER is S3's own" in result.output
    assert "Traceback" not in result.output


def test_validate_refuses_a_transition_on_a_directory_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_settings(monkeypatch)
    (tmp_path / "express.toml").write_text(EXPRESS)

    result = validate(tmp_path)

    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if "Transitions" in line)
    assert "express.toml: logs--use1-az4--x-s3: archive: Transitions:" in line
    assert "refuse transitions; remove Transitions" in line
