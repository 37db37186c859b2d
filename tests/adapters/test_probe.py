"""The server probe against two real S3 servers that keep different subsets: moto and SeaweedFS."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.probe import ServerProbe, is_aws, probe_server
from lakecircle.core.bucket_names import PROBE_SCRATCH
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION
from tests.faultproxy import ANY, Fault, FaultProxy
from tests.helpers import KEY_ID, SECRET, object_keys
from tests.seaweed import fresh_name

pytestmark = pytest.mark.anyio

PREFIX = "lc/"


async def probed(bucket: str, endpoint_url: str | None = None) -> ServerProbe:
    async with S3Adapter(
        account=MOTO_ACCOUNT, region=MOTO_REGION, verify_account=False, endpoint_url=endpoint_url
    ) as adapter:
        return await probe_server(adapter, bucket, PREFIX)


async def probed_through_faults(moto: str, s3: Any, *faults: tuple[str, Fault]) -> ServerProbe:
    """The probe of moto's server behind a proxy that answers each (operation, fault), records on ``records``."""
    s3.create_bucket(Bucket="records")
    with FaultProxy(moto) as proxy:
        for operation, fault in faults:
            proxy.force(operation, ANY, fault)
        return await probed("records", proxy.url)


def leftovers(s3: Any, bucket: str) -> tuple[list[str], list[str]]:
    """Scratch buckets and objects the probe left behind."""
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("lcc-probe-")]
    return buckets, object_keys(s3, bucket, PREFIX)


async def test_moto_drops_object_size_filters_version_counts_and_the_minimum_size_and_honours_conditions(
    moto: str, s3_client: Any
) -> None:
    s3_client.create_bucket(Bucket="records")

    probe = await probed("records")

    assert (probe.endpoint, probe.not_probed) == (moto, ())
    assert probe.missing() == [
        "object_size_filters",
        "newer_noncurrent_versions",
        "transition_default_minimum_object_size",
    ]
    assert probe.transitions is True
    assert probe.conditional_writes is True
    assert leftovers(s3_client, "records") == ([], [])


async def test_seaweedfs_keeps_every_field_but_has_no_transitions(seaweed: str) -> None:
    s3 = boto3.client(
        "s3", region_name=MOTO_REGION, endpoint_url=seaweed, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
    )
    records = fresh_name("records")
    s3.create_bucket(Bucket=records)

    probe = await probed(records)

    assert (probe.endpoint, probe.not_probed) == (seaweed, ())
    assert probe.missing() == ["transitions"]
    kept = ("object_size_filters", "newer_noncurrent_versions", "transition_default_minimum_object_size")
    assert [getattr(probe, name) for name in kept] == [True, True, True]
    assert probe.conditional_writes is True
    assert leftovers(s3, records) == ([], [])


async def test_what_could_not_be_probed_is_said_and_the_rest_is_probed(moto: str, s3_client: Any) -> None:
    probe = await probed_through_faults(moto, s3_client, ("CreateBucket", Fault.DENIED))

    assert probe.object_size_filters is None
    assert probe.transitions is None
    assert probe.conditional_writes is True
    assert len(probe.not_probed) == 1
    assert probe.not_probed[0].startswith("lifecycle fields: bucket lcc-probe-")
    assert "CreateBucket failed [AccessDenied]" in probe.not_probed[0]
    assert probe.log_fields()["not_probed"] == list(probe.not_probed)


async def test_what_cannot_be_deleted_is_named_as_left_behind_and_what_was_found_stays(
    moto: str, s3_client: Any
) -> None:
    faults = (("DeleteBucket", Fault.DENIED), ("DeleteObject", Fault.DENIED))
    probe = await probed_through_faults(moto, s3_client, *faults)

    assert probe.not_probed == ()
    assert (probe.object_size_filters, probe.transitions, probe.conditional_writes) == (False, True, True)
    [scratch], [key] = leftovers(s3_client, "records")
    assert PROBE_SCRATCH.fullmatch(scratch), "selectors leave exactly the probe's scratch buckets alone"
    bucket_left, object_left = probe.left_behind
    assert bucket_left.startswith(f"the scratch bucket: bucket {scratch}: DeleteBucket failed [AccessDenied]")
    assert object_left.startswith(f"the scratch object {key}: bucket records: DeleteObject failed [AccessDenied]")
    assert probe.log_fields()["left_behind"] == list(probe.left_behind)


async def test_a_server_answering_not_implemented_to_a_conditional_write_lacks_conditional_writes(
    moto: str, s3_client: Any
) -> None:
    probe = await probed_through_faults(moto, s3_client, ("PutObject", Fault.NOT_IMPLEMENTED))

    assert (probe.conditional_writes, probe.not_probed, probe.left_behind) == (False, (), ())
    assert "conditional_writes" in probe.missing()
    assert leftovers(s3_client, "records") == ([], [])


@pytest.mark.parametrize(
    ("endpoint", "aws"),
    [
        ("https://s3.eu-west-1.amazonaws.com", True),
        ("https://s3.cn-north-1.amazonaws.com.cn", True),
        ("https://s3.eusc-de-east-1.amazonaws.eu", True),
        ("https://s3.us-iso-east-1.c2s.ic.gov", True),
        ("https://s3.dualstack.us-east-1.api.aws", True),
        ("http://127.0.0.1:8333", False),
        ("https://minio.example.com", False),
        ("https://amazonaws.com.example.org", False),
    ],
)
def test_aws_is_told_by_the_endpoint_host(endpoint: str, aws: bool) -> None:
    assert is_aws(endpoint) is aws


async def test_on_aws_nothing_is_sent_and_the_answer_is_the_documentation(moto: str) -> None:
    async with S3Adapter(
        account=MOTO_ACCOUNT,
        region="eu-west-1",
        verify_account=False,
        endpoint_url="https://s3.eu-west-1.amazonaws.com",
    ) as adapter:
        probe = await probe_server(adapter, "records", PREFIX)

        assert sum(adapter.calls.values()) == 0
    assert (probe.source, probe.missing(), probe.not_probed) == ("documentation", [], ())
    assert probe.conditional_writes is True
