"""Every configuration a server returns exports to definitions that validate and plan clean.

Each configuration of :data:`tests.corpus.CORPUS` is put on a bucket of moto's server with
boto3 as a person would put it; ``lakecircle export`` writes the definitions, and
``validate`` and ``plan`` on them must find no problem and no change. moto hands some
shapes back otherwise than they were sent (an ``And`` of one predicate, an empty ``And``),
which is what the export must write in the form LakeCircle compares in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lakecircle.app.cli import cli
from lakecircle.app.export import exportable
from lakecircle.core.model import LifecycleConfig, Rule
from tests.corpus import CORPUS
from tests.helpers import moto_account


@pytest.fixture
def exported(moto: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every corpus configuration on its own bucket, exported to a folder (returned)."""
    s3_client.create_bucket(Bucket="lcc-endpoint")
    for bucket, params in CORPUS.items():
        s3_client.create_bucket(Bucket=bucket)
        s3_client.put_bucket_lifecycle_configuration(Bucket=bucket, **params)
    moto_account(monkeypatch)
    result = CliRunner().invoke(cli, ["export", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    return tmp_path / "out"


def test_the_corpus_holds_at_least_33_configurations() -> None:
    assert len(CORPUS) >= 33


def test_every_exported_configuration_validates(exported: Path) -> None:
    assert sorted(p.stem for p in exported.glob("*.toml")) == sorted(CORPUS)
    result = CliRunner().invoke(cli, ["validate", str(exported)])
    assert result.exit_code == 0, result.output
    assert f"{len(CORPUS)} valid bucket(s), 0 invalid; 0 error(s), 0 warning(s)" in result.output, result.output


def test_every_exported_configuration_plans_clean(exported: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", "--definitions", str(exported), "--detailed-exitcode"])
    assert result.exit_code == 0, result.output
    assert f"No changes. {len(CORPUS)} bucket(s) match their definitions." in result.output


@pytest.mark.parametrize(
    ("returned", "written"),
    [
        ({"And": {"Prefix": "reports/"}}, {"Prefix": "reports/"}),
        ({"And": {"Tags": [{"Key": "k", "Value": "v"}]}}, {"Tag": {"Key": "k", "Value": "v"}}),
        ({"And": {}}, {}),
        ({"Prefix": ""}, {}),
        (
            {"And": {"Prefix": "p/", "Tags": [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}]}},
            {"And": {"Prefix": "p/", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}},
        ),
    ],
)
def test_a_filter_a_server_returned_is_exported_in_the_form_that_validates(
    returned: dict[str, Any], written: dict[str, Any]
) -> None:
    rule = Rule.model_validate({"ID": "r", "Status": "Enabled", "Filter": returned, "Expiration": {"Days": 1}})
    [exported] = exportable("b", LifecycleConfig((rule,))).rules
    assert exported.to_wire()["Filter"] == written


def test_a_legacy_prefix_rule_is_exported_as_a_filter_and_the_order_is_kept() -> None:
    rules = tuple(
        Rule.model_validate({"ID": name, "Status": "Enabled", "Prefix": prefix, "Expiration": {"Days": 1}})
        for name, prefix in (("z", "logs/"), ("a", ""))
    )
    exported = exportable("b", LifecycleConfig(rules, "varies_by_storage_class"))
    assert [r.to_wire()["Filter"] for r in exported.rules] == [{"Prefix": "logs/"}, {}]
    assert [r.id for r in exported.rules] == ["z", "a"]
    assert exported.transition_default_minimum_object_size == "varies_by_storage_class"


def _put(s3_client: Any, bucket: str, rule: dict[str, Any]) -> None:
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})


def test_a_bucket_whose_file_would_not_validate_is_named_with_its_errors_and_not_written(
    moto: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """moto keeps a rule ID with a tab and a storage class S3 has not: what ``validate`` refuses
    is named, nothing of it is written, the folder validates, and the class is written once allowed."""
    expire = {"Status": "Enabled", "Filter": {}, "Expiration": {"Days": 30}}
    _put(s3_client, "tabbed-id", {**expire, "ID": "tab\there"})
    _put(s3_client, "vendor-class", {"ID": "tier", "Status": "Enabled", "Filter": {},
                                     "Transitions": [{"Days": 30, "StorageClass": "WARM"}]})  # fmt: skip
    _put(s3_client, "plain", {**expire, "ID": "expire"})
    moto_account(monkeypatch)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", "--output", str(out)])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    tabbed = next(line for line in lines if line.startswith("  tabbed-id: not exported: it would not validate"))
    assert "tabbed-id.toml: tabbed-id: " in tabbed, tabbed
    vendor = next(line for line in lines if line.startswith("  vendor-class: not exported: it would not validate"))
    assert "LCC_STORAGE_CLASSES=WARM" in vendor, vendor
    assert sorted(p.name for p in out.iterdir()) == ["plain.toml"]
    assert CliRunner().invoke(cli, ["validate", str(out)]).exit_code == 0

    monkeypatch.setenv("LCC_STORAGE_CLASSES", "WARM")
    allowed = CliRunner().invoke(cli, ["export", "--bucket", "vendor-class", "--output", str(tmp_path / "again")])
    assert allowed.exit_code == 0, allowed.output
    assert CliRunner().invoke(cli, ["validate", str(tmp_path / "again")]).exit_code == 0
