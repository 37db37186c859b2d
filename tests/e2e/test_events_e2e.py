"""Events end to end: ``python -m lakecircle daemon`` on moto's S3 and SQS over HTTP, with
``LCC_EVENTS_QUEUE`` set. While continuous verification works through hundreds of buckets in the
background, a drift made behind LakeCircle's back and announced by an EventBridge event of the
CloudTrail call is repaired in under 2 s, not when the bucket's turn comes; and an S3 notification
of a new definition file makes the daemon reload the definitions at once, not at the next poll, and
a bucket whose creation an event announces is written at once, not at the next listing.
"""

from __future__ import annotations

import functools
import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.builders import cloudtrail, fleet, notification
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION
from tests.helpers import DaemonProcess, cli_env, http_get, pictured, put_definitions, rules_of

ENDPOINT, PREFIX = "events-records", "lc/"
BUCKETS = 400
INTERVAL = 20
"""The resync interval: 400 buckets verified at 20 a second in the background."""
WANTED = {"keep": 30}
DRIFT = {"ID": "keep", "Status": "Enabled", "Filter": {"Prefix": "keep/"}, "Expiration": {"Days": 3}}


def announced(sqs: Any, queue: str, bucket: str, call: str = "PutBucketLifecycle") -> None:
    """The EventBridge event of a ``call`` on ``bucket``, as the rule delivers it."""
    event = cloudtrail(call, bucket)
    event["account"] = event["detail"]["recipientAccountId"] = MOTO_ACCOUNT
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))


def verifications(url: str) -> float:
    """Lifecycle reads the daemon has made, from its metrics."""
    text = http_get(f"{url}/metrics")[1]
    found = re.findall(
        r'^lakecircle_s3_requests_total\{operation="GetBucketLifecycleConfiguration",outcome="success"\} (\S+)$',
        text,
        flags=re.MULTILINE,
    )
    return float(found[0]) if found else 0.0


def holds_wanted(s3: Any, bucket: str) -> bool:
    return rules_of(s3, bucket) == WANTED


@pytest.mark.slow
def test_a_drift_announced_by_an_event_is_repaired_within_two_seconds_during_background_verification(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    sqs = boto3.client("sqs", region_name=MOTO_REGION)
    queue = sqs.create_queue(QueueName="lakecircle-events-e2e")["QueueUrl"]
    put_definitions(s3_client, ENDPOINT, PREFIX, {"bg.toml": fleet(["bg-*"], *pictured(WANTED))})
    names = [f"bg-{i:04d}" for i in range(BUCKETS)]
    for name in [*names, "extra-one"]:  # extra-one: unmanaged until a definition comes
        s3_client.create_bucket(Bucket=name)
    env = cli_env(
        moto,
        tmp_path,
        LCC_ENDPOINT=f"s3://{ENDPOINT}/{PREFIX}",
        LCC_METRICS_ADDR="127.0.0.1:0",
        LCC_POLL_INTERVAL="600",
        LCC_RESYNC_INTERVAL=str(INTERVAL),
        LCC_EVENTS_QUEUE=queue,
    )
    took: list[float] = []
    with DaemonProcess(env, tmp_path / "daemon.log") as daemon:
        daemon.wait_for_event("cycle_finished", trigger="startup", timeout=120)
        daemon.wait_for_event("events_listening", timeout=10)
        url = daemon.metrics_url()
        reads, began = verifications(url), time.monotonic()
        for name in names[-5:]:  # the last listed: their turns are furthest away
            assert rules_of(s3_client, name) == WANTED
            s3_client.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [DRIFT]})
            start = time.monotonic()
            announced(sqs, queue, name)
            daemon.wait_until(f"{name} repaired", functools.partial(holds_wanted, s3_client, name), timeout=10)
            took.append(time.monotonic() - start)
            time.sleep(0.5)
        background = (verifications(url) - reads) / (time.monotonic() - began)
        # A new definition file, announced by S3: loaded at once (the poll is 10 minutes away) and
        # applied to the unmanaged bucket it now selects; then a bucket it selects is created, and
        # CreateBucket's event gets it written at once (the next listing is 20 s away).
        body = fleet(["extra-*"], *pictured({"extra": 7}))
        s3_client.put_object(Bucket=ENDPOINT, Key=f"{PREFIX}definition/extra.toml", Body=body)
        record = ("ObjectCreated:Put", ENDPOINT, f"{PREFIX}definition/extra.toml")
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(notification(record)))
        daemon.wait_until("extra-one written", lambda: rules_of(s3_client, "extra-one") == {"extra": 7}, timeout=10)
        s3_client.create_bucket(Bucket="extra-two")
        announced(sqs, queue, "extra-two", "CreateBucket")
        daemon.wait_until("extra-two written", lambda: rules_of(s3_client, "extra-two") == {"extra": 7}, timeout=5)
        daemon.send(signal.SIGTERM)
        code, _ = daemon.wait_exit()
    assert code == 0, str(daemon)
    assert max(took) < 2.0, took
    assert background >= 0.5 * BUCKETS / INTERVAL, f"background verification at {background:.1f}/s"
    left = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert left["Attributes"]["ApproximateNumberOfMessages"] == "0"
