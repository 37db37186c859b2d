"""S3's endpoint rules answered once per client for plain bucket names (adapters/s3/botocore.BucketEndpoints):
every answer equal to botocore's own, for any name and any client configuration."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.exceptions import BotoCoreError
from hypothesis import given, settings
from hypothesis import strategies as st

from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.botocore import PROBE_BUCKET, BucketEndpoints

CONFIGURATIONS: list[dict[str, Any]] = [
    {"Region": "us-east-1", "UseFIPS": False, "UseDualStack": False, "Accelerate": False, "ForcePathStyle": False},
    {"Region": "eu-west-1", "UseFIPS": False, "UseDualStack": False, "Accelerate": False, "ForcePathStyle": False},
    {"Region": "us-west-2", "UseFIPS": True, "UseDualStack": True, "Accelerate": False, "ForcePathStyle": False},
    {"Region": "us-east-1", "UseFIPS": False, "UseDualStack": False, "Accelerate": True, "ForcePathStyle": False},
    {"Region": "ap-south-1", "UseFIPS": False, "UseDualStack": False, "Accelerate": False, "ForcePathStyle": True},
    {
        "Region": "us-east-1",
        "UseFIPS": False,
        "UseDualStack": False,
        "Accelerate": False,
        "ForcePathStyle": True,
        "Endpoint": "http://127.0.0.1:9000",
    },
    {
        "Region": "us-east-1",
        "UseFIPS": False,
        "UseDualStack": False,
        "Accelerate": False,
        "ForcePathStyle": False,
        "Endpoint": "https://s3.example.com",
    },
    {"Region": "cn-north-1", "UseFIPS": False, "UseDualStack": False, "Accelerate": False, "ForcePathStyle": False},
]

NAMES = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True),
    st.sampled_from(
        [
            "my-bucket--x-s3",
            "my-bucket--usw2-az1--x-s3",
            "a--op-s3",
            "arn:aws:s3:us-east-1:123456789012:accesspoint/ap",
            "UPPER",
            "192.168.5.4",
            "ab",
            "a" * 64,
            PROBE_BUCKET,
            "xn--bucket",
            "has.dot",
        ]
    ),
    st.text(min_size=1, max_size=70),
)


def rules() -> Any:
    """botocore's own S3 endpoint provider (no request is made)."""
    client = botocore.session.get_session().create_client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    return client._ruleset_resolver._provider  # the object under comparison


PROVIDER = rules()


def answer(provider: Any, params: dict[str, Any]) -> Any:
    try:
        found = provider.resolve_endpoint(**params)
    except BotoCoreError as exc:
        return type(exc), str(exc)
    return found.url, found.properties, found.headers


@settings(max_examples=300, deadline=None)
@given(name=NAMES, configuration=st.sampled_from(CONFIGURATIONS), key=st.one_of(st.none(), st.text(max_size=30)))
def test_every_answer_is_botocores_own_whatever_the_bucket_name(
    name: str, configuration: dict[str, Any], key: str | None
) -> None:
    memo = BucketEndpoints(PROVIDER)
    params = {**configuration, "Bucket": name} | ({} if key is None else {"Key": key})
    memo.resolve_endpoint(**{**configuration, "Bucket": "another-plain-bucket"})  # the rules asked before

    assert answer(memo, params) == answer(PROVIDER, params)


class Counting:
    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self.ruleset = provider.ruleset
        self.asked = 0

    def resolve_endpoint(self, **params: Any) -> Any:
        self.asked += 1
        return self.provider.resolve_endpoint(**params)


def test_the_rules_are_asked_once_for_a_thousand_plain_bucket_names() -> None:
    counting = Counting(PROVIDER)
    memo = BucketEndpoints(counting)

    urls = [memo.resolve_endpoint(**CONFIGURATIONS[1], Bucket=f"bucket-{i:04d}").url for i in range(1000)]

    assert counting.asked == 1
    assert urls[7] == "https://bucket-0007.s3.eu-west-1.amazonaws.com"


def test_names_that_are_not_plain_are_asked_about_one_by_one() -> None:
    counting = Counting(PROVIDER)
    memo = BucketEndpoints(counting)

    for name in ("with.dot", "xn--bucket", "UPPER"):
        memo.resolve_endpoint(**CONFIGURATIONS[0], Bucket=name)

    assert counting.asked == 3


@pytest.mark.anyio
@pytest.mark.usefixtures("moto")
async def test_the_adapters_s3_clients_answer_plain_bucket_names_from_the_probe() -> None:
    async with S3Adapter(account="123456789012", region="us-east-1", concurrency=4) as s3:
        client = await s3.client()

        assert isinstance(client._ruleset_resolver._provider, BucketEndpoints)


def test_an_objects_key_never_asks_the_rules_again() -> None:
    counting = Counting(PROVIDER)
    memo = BucketEndpoints(counting)

    for i in range(100):
        memo.resolve_endpoint(**CONFIGURATIONS[5], Bucket="endpoint-bucket", Key=f"history/{i}.json")

    assert counting.asked == 1


def test_a_rule_set_whose_parameters_cannot_be_read_is_asked_about_every_name() -> None:
    counting = Counting(PROVIDER)
    counting.ruleset = None  # as a later botocore might hold it
    memo = BucketEndpoints(counting)

    for i in range(3):
        memo.resolve_endpoint(**CONFIGURATIONS[0], Bucket=f"bucket-{i}")

    assert counting.asked == 3
