"""Fleets end to end: ``python -m lakecircle`` against moto's server over HTTP, definitions in
the S3 prefix with a baseline for every bucket, a pattern family with an exact override and
a tag-selected retention class (moto stores bucket tags)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.builders import definition, fleet
from tests.helpers import cli_env, pictured, put_definitions, put_rules, rules_of, run_cli

ENDPOINT = "fleet-endpoint"
PREFIX = "lc/"
FILES = {
    "baseline.toml": fleet(["*"], *pictured({"abort": 7}), BucketExclude=[ENDPOINT]),
    "logs.toml": fleet(["*-logs"], *pictured({"expire": 90})),
    "app-logs.toml": definition("app-logs", *pictured({"expire": 30})),
    "retention.toml": fleet(["*"], *pictured({"keep": 365}), BucketTags={"retention": "1y"}),
}
AFTER = {
    "app-logs": {"abort": 7, "expire": 30},
    "web-logs": {"abort": 7, "expire": 90},
    "archive": {"abort": 7, "keep": 365},
    "photos": {"abort": 7, "theirs": 5},
}


def test_a_fleet_plans_syncs_and_then_plans_clean_with_the_endpoint_bucket_unmanaged(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    put_definitions(s3_client, ENDPOINT, PREFIX, FILES)
    for bucket in ("app-logs", "web-logs", "archive"):
        put_rules(s3_client, bucket, {})
    put_rules(s3_client, "photos", {"theirs": 5})
    s3_client.put_bucket_tagging(Bucket="archive", Tagging={"TagSet": [{"Key": "retention", "Value": "1y"}]})
    env = cli_env(moto, tmp_path / "home", LCC_ENDPOINT=f"s3://{ENDPOINT}/{PREFIX}")

    planned = run_cli(env, "plan", "--output", "json", "--show-unmanaged")
    assert planned.code == 0, str(planned)
    document = json.loads(planned.stdout)
    assert document["unmanaged"] == [ENDPOINT]
    assert document["report"]["counts"]["unmanaged"] == 1
    assert sorted(b["bucket"] for b in document["buckets"] if b["action"] == "put") == sorted(AFTER)

    synced = run_cli(env, "sync")
    assert synced.code == 0, str(synced)
    assert {bucket: rules_of(s3_client, bucket) for bucket in AFTER} == AFTER
    assert "1 bucket(s) unmanaged" in synced.stdout

    again = run_cli(env, "plan", "--detailed-exitcode", "--show-unmanaged")
    assert again.code == 0, str(again)
    assert f"  {ENDPOINT}" in again.stdout.splitlines()
