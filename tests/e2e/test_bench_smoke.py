"""The benchmark's machinery works: its S3 endpoint, its clients and their request counts.

No timing is asserted (figures are the benchmark's to print): only that a tiny account
is served, that LakeCircle writes exactly the drifted buckets in each cycle, and that the
floor client GETs every bucket once, as the endpoint counts them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fake_s3 import FakeS3Process
from bench.run import client_env, run_client

BUCKETS = 50


@pytest.mark.timeout(30)
def test_benchmark_clients_write_exactly_the_drifted_buckets(tmp_path: Path) -> None:
    with FakeS3Process() as server:
        account = server.workload(BUCKETS)
        server.settings(delay_ms=0)
        env = client_env(server.url)

        cycles = run_client("cycles", "--cycles", "3", env=env, stderr=tmp_path / "cycles.log", timeout=25)
        floor = run_client("floor", "--buckets", str(BUCKETS), env=env, stderr=tmp_path / "floor.log", timeout=25)

    by_name = {c["name"]: c for c in cycles["cycles"]}
    assert set(by_name) == {"cold", "resync", "unchanged"}
    drifted = len(account["drifted"])
    assert drifted == len(account["second"]) == BUCKETS // 10
    expected = {"cold": drifted, "resync": drifted, "unchanged": 0}
    for name, cycle in by_name.items():
        ops = cycle["ops"]
        writes = ops.get("PutBucketLifecycleConfiguration", 0) + ops.get("DeleteBucketLifecycle", 0)
        assert writes == expected[name], (name, ops)
        assert cycle["states"].get("changed", 0) == expected[name], (name, cycle["states"])
        assert ops["GetBucketLifecycleConfiguration"] == BUCKETS, (name, ops)
        assert cycle["managed"] == BUCKETS
    # Only the cold cycle downloads the definition files; later ones use the ETag cache.
    assert by_name["cold"]["ops"]["GetObject"] >= BUCKETS
    assert by_name["unchanged"]["ops"].get("GetObject", 0) == 0
    assert floor["cycles"][0]["ops"] == {"GetBucketLifecycleConfiguration": BUCKETS}
    assert cycles["peak_rss_mb"] > 0
