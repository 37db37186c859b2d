"""``lakecircle demo``: the whole tool against an S3 server inside this process, no AWS.

It starts moto's S3 server on 127.0.0.1 (a free port), creates an endpoint bucket and a
handful of buckets in several starting states, uploads the bundled example definitions,
prints the plan, syncs, and prints the result and a second plan. Everything lives in
the process: when it ends, no server, process or file is left behind.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import anyio

from lakecircle.loader import DefinitionLoader
from lakecircle.model import LifecycleConfig, Rule, config_to_request
from lakecircle.reconcile import BucketState, Reconciler
from lakecircle.render import render_plan_text
from lakecircle.settings import Settings
from lakecircle.store import BucketRef

DEMO_ACCOUNT = "123456789012"  # the account moto's server answers for
DEMO_REGION = "us-east-1"
ENDPOINT_BUCKET = "lakecircle-demo-endpoint"
UNDEFINED_BUCKET = "acme-scratch"

Echo = Callable[[str], None]


def example_definitions() -> dict[str, bytes]:
    """The bundled examples: from the installed package, or the source tree's examples/."""
    packaged = resources.files("lakecircle").joinpath("examples")
    if packaged.is_dir():
        return {f"definition/{p.name}": p.read_bytes() for p in packaged.iterdir() if p.name.endswith(".toml")}
    source = Path(__file__).resolve().parent.parent / "examples" / "definitions"
    return {f"definition/{p.name}": p.read_bytes() for p in sorted(source.glob("*.toml"))}


@contextmanager
def embedded_s3() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, a free port; yields its URL and stops it on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def _demo_environment(endpoint_url: str) -> Iterator[None]:
    """Point the AWS SDK at the embedded server with throwaway credentials, then restore."""
    values = {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",  # the embedded server takes any key
        "AWS_DEFAULT_REGION": DEMO_REGION,
    }
    saved = {k: os.environ.get(k) for k in [*values, "AWS_PROFILE", "AWS_SESSION_TOKEN"]}
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _rule(**wire: Any) -> Rule:
    return Rule.model_validate(wire)


def arrange(client: Any) -> None:
    """The starting state: some buckets bare, some drifted, one undefined, one missing."""
    client.create_bucket(Bucket=ENDPOINT_BUCKET)
    for key, data in example_definitions().items():
        client.put_object(Bucket=ENDPOINT_BUCKET, Key=f"lifecycle/{key}", Body=data)
    # No rules yet: LakeCircle adds them all.
    client.create_bucket(Bucket="acme-analytics-lake")
    # Drifted: one rule changed by hand, one rule nobody defined.
    client.create_bucket(Bucket="acme-db-backups")
    drifted = LifecycleConfig(
        (
            _rule(
                ID="nightly-dumps",
                Status="Enabled",
                Filter={"Prefix": "nightly/"},
                Transitions=[{"Days": 1, "StorageClass": "GLACIER_IR"}],
                Expiration={"Days": 365},
            ),
            _rule(ID="tmp-cleanup", Status="Enabled", Filter={"Prefix": "tmp/"}, Expiration={"Days": 3}),
        )
    )
    client.put_bucket_lifecycle_configuration(Bucket="acme-db-backups", **config_to_request(drifted))
    # Already right, in the legacy form.
    client.create_bucket(Bucket="acme-legacy-exports")
    legacy = LifecycleConfig(
        (
            _rule(ID="exports-expire", Status="Enabled", Prefix="exports/", Expiration={"Days": 90}),
            _rule(
                ID="everything-else-ia",
                Status="Enabled",
                Prefix="",
                Transitions=[{"Days": 60, "StorageClass": "ONEZONE_IA"}],
            ),
        )
    )
    client.put_bucket_lifecycle_configuration(Bucket="acme-legacy-exports", **config_to_request(legacy))
    # Not defined anywhere: LakeCircle must leave it alone. (acme-media-assets is defined
    # but never created: it is reported as missing.)
    client.create_bucket(Bucket=UNDEFINED_BUCKET)
    own = LifecycleConfig((_rule(ID="scratch-expire", Status="Enabled", Filter={}, Expiration={"Days": 1}),))
    client.put_bucket_lifecycle_configuration(Bucket=UNDEFINED_BUCKET, **config_to_request(own))


async def _cycles(settings: Settings, echo: Echo) -> int:
    from lakecircle.runtime import open_account
    from lakecircle.s3 import S3DefinitionSource

    async with open_account(settings) as adapter:
        loader = DefinitionLoader(S3DefinitionSource(adapter, settings.definition_uri))
        applied: dict[str, LifecycleConfig] = {}
        planner = Reconciler(adapter, loader, concurrency=settings.concurrency, dry_run=True, applied=applied)
        syncer = Reconciler(adapter, loader, concurrency=settings.concurrency, dry_run=False, applied=applied)

        echo("== 1. plan: what LakeCircle would change ==")
        report = await planner.run_cycle("demo")
        echo(render_plan_text(report.plans))
        for result in report.results:
            if result.state in (BucketState.MISSING, BucketState.INVALID):
                echo(f"  {result.state.value}: {result.bucket}: {result.error}")

        echo("\n== 2. sync: one write per changed bucket ==")
        before = dict(adapter.calls)
        report = await syncer.run_cycle("demo")
        writes = sum(
            adapter.calls[op] - before.get(op, 0) for op in ("PutBucketLifecycleConfiguration", "DeleteBucketLifecycle")
        )
        echo(
            f"{report.writes} bucket(s) changed with {writes} write(s):"
            f" {report.rules_added} rule(s) added, {report.rules_changed} changed,"
            f" {report.rules_removed} removed; {report.counts[BucketState.IN_SYNC]} already in sync,"
            f" {report.counts[BucketState.MISSING]} missing, {report.counts[BucketState.FAILED]} failed."
        )

        echo("\n== 3. plan again: nothing left to do ==")
        again = await planner.run_cycle("demo")
        echo(render_plan_text(again.plans))
        for result in again.results:
            if result.dropped:
                echo(
                    f"  note: {result.bucket}: the embedded server does not store {', '.join(result.dropped)};"
                    " LakeCircle saw its own write come back without them and does not rewrite for them."
                )

        untouched = await adapter.get_lifecycle(BucketRef(UNDEFINED_BUCKET, DEMO_REGION))
        echo(f"\n{UNDEFINED_BUCKET} (not defined) still has its own {len(untouched.rules)} rule(s): untouched.")
        return 0 if report.ok and again.ok else 1


def run_demo(echo: Echo = print) -> int:
    """Run the demo; returns the process exit code."""
    import boto3

    with embedded_s3() as url, _demo_environment(url):
        echo(f"Embedded S3 server on {url} (account {DEMO_ACCOUNT}); nothing here touches AWS.\n")
        arrange(boto3.client("s3", endpoint_url=url, region_name=DEMO_REGION))
        settings = Settings(
            endpoint=f"s3://{ENDPOINT_BUCKET}/lifecycle/",
            aws_account=DEMO_ACCOUNT,
            aws_region=DEMO_REGION,
            concurrency=8,
        )
        return anyio.run(_cycles, settings, echo)
