"""Telling a server's dropped fields from real drift."""

from __future__ import annotations

from typing import Any

import pytest

from lakecircle.drift import dropped_fields, server_dropped
from lakecircle.loader import DefinitionLoader
from lakecircle.memory import MemoryS3
from lakecircle.model import LifecycleConfig, Rule
from lakecircle.plan import plan_bucket
from lakecircle.reconcile import BucketState, Reconciler


def rule(**wire: Any) -> Rule:
    return Rule.model_validate({"ID": "r", "Status": "Enabled", **wire})


SIZED = rule(
    Filter={"And": {"Prefix": "p/", "ObjectSizeGreaterThan": 10}},
    NoncurrentVersionExpiration={"NoncurrentDays": 5, "NewerNoncurrentVersions": 3},
)


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        (
            rule(Filter={"Prefix": "p/"}, NoncurrentVersionExpiration={"NoncurrentDays": 5}),
            ["Filter.ObjectSizeGreaterThan", "NoncurrentVersionExpiration.NewerNoncurrentVersions"],
        ),
        (
            rule(
                Filter={"Prefix": "p/"}, NoncurrentVersionExpiration={"NoncurrentDays": 5, "NewerNoncurrentVersions": 3}
            ),
            ["Filter.ObjectSizeGreaterThan"],
        ),
        (rule(Filter={"Prefix": "q/"}, NoncurrentVersionExpiration={"NoncurrentDays": 5}), None),  # other value
        (rule(Filter={"Prefix": "p/"}, NoncurrentVersionExpiration={"NoncurrentDays": 6}), None),
        (
            rule(Filter={"Prefix": "p/"}, Expiration={"Days": 1}, NoncurrentVersionExpiration={"NoncurrentDays": 5}),
            None,
        ),
    ],
)
def test_dropped_fields_only_when_live_is_a_subset(live: Rule, expected: list[str] | None) -> None:
    assert dropped_fields(SIZED, live) == expected


def test_added_or_removed_rules_are_never_a_servers_dropping() -> None:
    desired = LifecycleConfig((SIZED,))
    assert server_dropped(plan_bucket("b", desired, LifecycleConfig())) is None
    tdmos_only = plan_bucket(
        "b",
        LifecycleConfig((SIZED,), "varies_by_storage_class"),
        LifecycleConfig((SIZED,), "all_storage_classes_128K"),
    )
    assert server_dropped(tdmos_only) == ["TransitionDefaultMinimumObjectSize"]


def lossy(config: LifecycleConfig) -> LifecycleConfig:
    """Keeps what moto's server keeps: no object sizes, no NewerNoncurrentVersions on expiration."""
    rules = []
    for r in config.rules:
        wire = r.to_wire()
        and_ = wire.get("Filter", {}).get("And")
        if and_:
            and_.pop("ObjectSizeGreaterThan", None)
            and_.pop("ObjectSizeLessThan", None)
        wire.get("NoncurrentVersionExpiration", {}).pop("NewerNoncurrentVersions", None)
        rules.append(Rule.model_validate(wire))
    return LifecycleConfig(tuple(rules), "all_storage_classes_128K")


DEFINITION = b"""BucketName = "b"
TransitionDefaultMinimumObjectSize = "varies_by_storage_class"
[[LifecycleConfiguration.Rules]]
ID = "r"
Status = "Enabled"
Filter = { And = { Prefix = "p/", ObjectSizeGreaterThan = 10, Tags = [{ Key = "k", Value = "v" }] } }
NoncurrentVersionExpiration = { NoncurrentDays = 5, NewerNoncurrentVersions = 3 }
"""


@pytest.mark.anyio
async def test_a_server_that_drops_fields_costs_one_write_not_one_per_cycle() -> None:
    s3 = MemoryS3(stores=lossy)
    s3.objects["definition/b.toml"] = DEFINITION
    s3.add_bucket("b")
    reconciler = Reconciler(s3, DefinitionLoader(s3))
    first = await reconciler.run_cycle()
    assert first.counts[BucketState.CHANGED] == 1
    for _ in range(3):
        again = await reconciler.run_cycle()
        assert again.counts[BucketState.IN_SYNC] == 1
        assert "TransitionDefaultMinimumObjectSize" in again.results[0].dropped
    assert s3.calls["PutBucketLifecycleConfiguration"] == 1


@pytest.mark.anyio
async def test_real_drift_after_a_write_is_still_corrected() -> None:
    s3 = MemoryS3(stores=lossy)
    s3.objects["definition/b.toml"] = DEFINITION
    s3.add_bucket("b")
    reconciler = Reconciler(s3, DefinitionLoader(s3))
    await reconciler.run_cycle()
    s3.lifecycles["b"] = LifecycleConfig((rule(Filter={"Prefix": "other/"}, Expiration={"Days": 1}),))
    report = await reconciler.run_cycle()
    assert report.counts[BucketState.CHANGED] == 1
    assert s3.calls["PutBucketLifecycleConfiguration"] == 2
