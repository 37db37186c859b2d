"""Seed deploy/docker-compose.yml's S3 server as ``lakecircle demo`` does, then exit.

Creates the endpoint bucket with the bundled example definitions under
``lifecycle/definition/`` and a few buckets in several starting states
(:func:`lakecircle.app.demo.arrange`). It waits for the server to answer, and does nothing
when the endpoint bucket is already there, so ``docker compose up`` can run it again.
The AWS SDK finds the server and the dummy credentials in the environment.
"""

from __future__ import annotations

import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from lakecircle.app.demo import DEMO_REGION, ENDPOINT_BUCKET, arrange


def main(wait: float = 60.0) -> int:
    client = boto3.client("s3", region_name=DEMO_REGION)
    deadline = time.monotonic() + wait
    while True:
        try:
            names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            break
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() > deadline:
                sys.stderr.write(f"seed: the S3 server did not answer within {wait:.0f}s: {exc}\n")
                return 1
            time.sleep(1)
    if ENDPOINT_BUCKET in names:
        sys.stdout.write(f"seed: {ENDPOINT_BUCKET} exists already; nothing to do\n")
        return 0
    arrange(client)
    sys.stdout.write(f"seed: created {ENDPOINT_BUCKET} with the example definitions, and the demo's buckets\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
