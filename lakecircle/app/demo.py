"""``lakecircle demo``: the whole tool against an S3 server inside this process, no AWS.

It starts moto's S3 server on 127.0.0.1 (a free port), creates an endpoint bucket and a
handful of buckets in several starting states, uploads the bundled example definitions,
prints the plan, syncs, and prints the result and a second plan. Everything lives in
the process: when it ends, no server, process or file is left behind.

The buckets are those the examples name or select: the exact definitions' buckets, and
for the fleet (``examples/definitions/fleet/``) a few ``*-logs`` buckets, the one whose
own definition overrides a rule of the family, a bucket tagged ``retention = "1y"``, and
one bucket the baseline leaves out, so the output shows every way a bucket is chosen,
where each rule comes from, and the count of unmanaged buckets.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from importlib.resources.abc import Traversable
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
UNMANAGED_BUCKET = "acme-scratch"
"""The baseline's BucketExclude leaves it out and nothing else selects it."""
LOGS_BUCKETS = ("acme-web-logs", "acme-cdn-logs")
"""Selected by fleet/logs.toml's ``*-logs`` (and the baseline's ``*``)."""
OVERRIDE_BUCKET = "acme-audit-logs"
"""A ``*-logs`` bucket whose own definition (fleet/acme-audit-logs.toml) overrides ``logs-expire``."""
TAGGED_BUCKET = "acme-invoices"
"""Tagged ``retention = "1y"``: fleet/retention-1y.toml selects it by tag."""

Echo = Callable[[str], None]


def example_definitions() -> dict[str, bytes]:
    """The bundled examples, folders included (``fleet/``), keyed ``definition/<path>``:
    from the installed package, or the source tree's examples/definitions/."""
    packaged = resources.files("lakecircle").joinpath("examples")
    if packaged.is_dir():
        return dict(sorted(_toml_files(packaged, "definition/")))
    source = Path(__file__).resolve().parents[2] / "examples" / "definitions"
    return {f"definition/{p.relative_to(source).as_posix()}": p.read_bytes() for p in sorted(source.rglob("*.toml"))}


def _toml_files(folder: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
    """Every ``*.toml`` under a package folder (a Traversable has no rglob)."""
    for entry in folder.iterdir():
        if entry.is_dir():
            yield from _toml_files(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".toml"):
            yield f"{prefix}{entry.name}", entry.read_bytes()


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
    """The starting state: some buckets bare, some drifted, one unmanaged, one missing, and
    the fleet's: a pattern family, its override, a tagged bucket."""
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
    # Its own rules already right, in the legacy form: only the baseline's rule is added
    # (LakeCircle writes the legacy rules in Filter form beside it; S3 refuses a mix).
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
    # Selected by nothing (the baseline leaves out *-scratch): LakeCircle must leave it
    # alone and only count it. (acme-media-assets is defined but never created: it is
    # reported as missing.)
    client.create_bucket(Bucket=UNMANAGED_BUCKET)
    own = LifecycleConfig((_rule(ID="scratch-expire", Status="Enabled", Filter={}, Expiration={"Days": 1}),))
    client.put_bucket_lifecycle_configuration(Bucket=UNMANAGED_BUCKET, **config_to_request(own))
    arrange_fleet(client)


def arrange_fleet(client: Any) -> None:
    """The buckets examples/definitions/fleet/ selects, by pattern and by tag."""
    for name in (*LOGS_BUCKETS, OVERRIDE_BUCKET):
        client.create_bucket(Bucket=name)
    # Another team's rule on a shared bucket: the selectors add theirs and keep it.
    vendor = LifecycleConfig(
        (_rule(ID="cdn-vendor-exports", Status="Enabled", Filter={"Prefix": "vendor/"}, Expiration={"Days": 14}),)
    )
    client.put_bucket_lifecycle_configuration(Bucket=LOGS_BUCKETS[1], **config_to_request(vendor))
    client.create_bucket(Bucket=TAGGED_BUCKET)
    client.put_bucket_tagging(
        Bucket=TAGGED_BUCKET,
        Tagging={"TagSet": [{"Key": "retention", "Value": "1y"}, {"Key": "team", "Value": "finance"}]},
    )


async def _plan_first(settings: Settings, echo: Echo) -> None:
    from lakecircle.app.session import explain_bucket
    from lakecircle.app.wiring import build_reconciler, open_account
    from lakecircle.core.explain import explanation_text

    async with open_account(settings) as account:
        reconciler = build_reconciler(settings, account, None, dry_run=True, list_unmanaged=True)
        report = await reconciler.run_cycle(Trigger.DEMO)
    echo("== plan: what LakeCircle would change ==")
    echo(render_plan_text(report.plans, total=report.compared))
    for result in report.results:
        if result.state in (BucketState.MISSING, BucketState.INVALID):
            echo(f"  {result.state.value}: {result.bucket}: {result.error}")
    echo(f"  unmanaged (no definition selects them; never read, never written): {', '.join(report.unmanaged)}")
    for bucket in (OVERRIDE_BUCKET, TAGGED_BUCKET):
        explanation = (await explain_bucket(settings, None, bucket)).explanation
        why = explanation_text(explanation).partition("\ndesired configuration:")[0]
        echo(f"\n== lakecircle explain {bucket}: why it gets what it gets ==\n{why}")


class _Narrator:
    """Tells each daemon cycle's story, and makes drift after the first one."""

    def __init__(self, echo: Echo, client: Any) -> None:
        self.echo = echo
        self.client = client
        self.cycle = 0
        self.ok = True

    def __call__(self, report: CycleReport) -> None:
        self.ok = self.ok and report.ok
        if report.trigger == Trigger.VERIFY and report.ok and not report.writes:
            return  # continuous verification found its buckets as they should be: nothing to tell
        self.cycle += 1
        c = report.counts
        self.echo(
            f"\n== cycle {self.cycle} ({report.trigger}) =="
            f"\n{report.writes} bucket(s) written: {report.rules_added} rule(s) added,"
            f" {report.rules_changed} changed, {report.rules_removed} removed;"
            f" {c[BucketState.IN_SYNC]} in sync, {c[BucketState.MISSING]} missing, {c[BucketState.FAILED]} failed,"
            f" {c[BucketState.UNMANAGED]} unmanaged ({report.duration:.2f} s)."
        )
        for result in report.results:
            plan = result.plan
            if plan is not None and result.state is BucketState.CHANGED:
                if self.cycle == 1:  # the plan printed before the daemon started, applied
                    self.echo(
                        f"  {plan.bucket}: {len(plan.added)} added, {len(plan.changed)} changed,"
                        f" {len(plan.removed)} removed, as planned"
                    )
                else:
                    self.echo(render_plan_text([plan]).split("\n\n")[0])
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


def _rule_line(rule: dict[str, Any]) -> str:
    """A live rule in a few words: its ID, and its expiration's days when it has them."""
    days = rule.get("Expiration", {}).get("Days")
    return f"{rule.get('ID')} (expires after {days} days)" if days else str(rule.get("ID"))


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
            lease_seconds=6,  # a lease as replicas hold one, short: created here, its first write waits 6 s
        )
        anyio.run(_plan_first, settings, echo)
        narrator = _Narrator(echo, client)

        def started(_: object, bound: tuple[str, int]) -> None:
            echo(f"\nLakeCircle daemon running; metrics on http://{host_port(*bound)}/metrics")
            if cycles is None:
                echo(
                    "It polls every 5 s, verifies each bucket once a minute (a few each second; only"
                    " those it changes or fails are told here) and lists the account every 60 s. Ctrl-C stops it."
                )

        daemon = anyio.run(
            functools.partial(run_service, settings, max_cycles=cycles, on_started=started, on_report=narrator)
        )
        echo("\n== the fleet now ==")
        for name in (*LOGS_BUCKETS, OVERRIDE_BUCKET, TAGGED_BUCKET):
            rules = client.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
            echo(f"{name}: {', '.join(_rule_line(rule) for rule in rules)}")
        untouched = client.get_bucket_lifecycle_configuration(Bucket=UNMANAGED_BUCKET)["Rules"]
        echo(
            f"\n{UNMANAGED_BUCKET} (unmanaged: no definition selects it) still has its own {len(untouched)} rule(s):"
            f" untouched.\nStopped after {daemon.stats.cycles if daemon is not None else 0} cycle(s)."
        )
        return 0 if narrator.ok else 1
