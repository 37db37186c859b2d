"""``lakecircle demo``: the whole tool against an S3 server inside this process, no AWS.

It starts moto's S3 server on 127.0.0.1 (a free port), creates an endpoint bucket and a
handful of buckets in several starting states, uploads the bundled example definitions,
prints the plan, syncs, and prints the result and a second plan. Everything lives in
the process: when it ends, no server, process or file is left behind.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import anyio

from lakecircle.core.model import LifecycleConfig, Rule, config_to_request
from lakecircle.core.render import render_plan_text
from lakecircle.core.report import BucketState, CycleReport, Trigger
from lakecircle.settings import Settings

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
    source = Path(__file__).resolve().parents[2] / "examples" / "definitions"
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


async def _plan_first(settings: Settings, echo: Echo) -> None:
    from lakecircle.app.wiring import build_reconciler, open_account

    async with open_account(settings) as account:
        report = await build_reconciler(settings, account, None, dry_run=True).run_cycle(Trigger.DEMO)
    echo("== plan: what LakeCircle would change ==")
    echo(render_plan_text(report.plans, total=report.compared))
    for result in report.results:
        if result.state in (BucketState.MISSING, BucketState.INVALID):
            echo(f"  {result.state.value}: {result.bucket}: {result.error}")


class _Narrator:
    """Tells each daemon cycle's story, and makes drift after the first one."""

    def __init__(self, echo: Echo, client: Any) -> None:
        self.echo = echo
        self.client = client
        self.cycle = 0
        self.ok = True

    def __call__(self, report: CycleReport) -> None:
        self.cycle += 1
        self.ok = self.ok and report.ok
        c = report.counts
        self.echo(
            f"\n== cycle {self.cycle} ({report.trigger}) =="
            f"\n{report.writes} bucket(s) written: {report.rules_added} rule(s) added,"
            f" {report.rules_changed} changed, {report.rules_removed} removed;"
            f" {c[BucketState.IN_SYNC]} in sync, {c[BucketState.MISSING]} missing, {c[BucketState.FAILED]} failed"
            f" ({report.duration:.2f} s)."
        )
        for result in report.results:
            if result.plan is not None and result.state is BucketState.CHANGED:
                self.echo(render_plan_text([result.plan]).split("\n\n")[0])
            if result.dropped and self.cycle == 2:
                self.echo(
                    f"  note: {result.bucket}: the embedded server does not store {', '.join(result.dropped)};"
                    " LakeCircle saw its own write come back without them and does not rewrite for them."
                )
        if self.cycle == 1:
            self.echo(
                "\nSomeone edits acme-db-backups behind LakeCircle's back (adds a rule, changes another),"
                " and LakeCircle is sent SIGHUP to sync at once..."
            )
            live = self.client.get_bucket_lifecycle_configuration(Bucket="acme-db-backups")["Rules"]
            for rule in live:
                if rule.get("ID") == "nightly-dumps" and "Expiration" in rule:
                    rule["Expiration"] = {"Days": 3650}
            live.append({"ID": "manual-hotfix", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 2}})
            self.client.put_bucket_lifecycle_configuration(
                Bucket="acme-db-backups", LifecycleConfiguration={"Rules": live}
            )
            os.kill(os.getpid(), signal.SIGHUP)


def run_demo(echo: Echo = print, *, cycles: int | None = None, metrics_addr: str = "127.0.0.1:9739") -> int:
    """Run the demo; returns the process exit code."""
    import boto3

    from lakecircle.app.serve import run_service
    from lakecircle.service.server import host_port

    with embedded_s3() as url, _demo_environment(url):
        echo(f"Embedded S3 server on {url} (account {DEMO_ACCOUNT}); nothing here touches AWS.\n")
        client = boto3.client("s3", endpoint_url=url, region_name=DEMO_REGION)
        arrange(client)
        settings = Settings(
            endpoint=f"s3://{ENDPOINT_BUCKET}/lifecycle/",
            aws_account=DEMO_ACCOUNT,
            aws_region=DEMO_REGION,
            concurrency=8,
            metrics_addr=metrics_addr,
            poll_interval=5,
            resync_interval=60,
        )
        anyio.run(_plan_first, settings, echo)
        narrator = _Narrator(echo, client)

        def started(_: object, bound: tuple[str, int]) -> None:
            echo(f"\nLakeCircle daemon running; metrics on http://{host_port(*bound)}/metrics")
            if cycles is None:
                echo("It polls every 5 s and resyncs every 60 s. Ctrl-C stops it.")

        daemon = anyio.run(
            functools.partial(run_service, settings, max_cycles=cycles, on_started=started, on_report=narrator)
        )
        untouched = client.get_bucket_lifecycle_configuration(Bucket=UNDEFINED_BUCKET)["Rules"]
        echo(
            f"\n{UNDEFINED_BUCKET} (not defined) still has its own {len(untouched)} rule(s): untouched."
            f"\nStopped after {daemon.stats.cycles if daemon is not None else 0} cycle(s)."
        )
        return 0 if narrator.ok else 1
