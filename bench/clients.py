"""The measured clients, one per process: ``python -m bench.clients KIND [options]``.

Each runs against the benchmark endpoint named by ``AWS_ENDPOINT_URL`` (LakeCircle's
settings come from the ``LCC_*`` environment, as in production), measures only its own
process (wall time, ``time.process_time`` for CPU, ``ru_maxrss`` for peak RSS) and
prints one JSON object as its last line of standard output. Logs go to standard error.

- ``cycles``: LakeCircle as the daemon wires it (account check, metrics observer, JSON
  logs), running ``--cycles`` cycles: *cold* (a fresh process: every definition file
  fetched, the first drift written), *resync* (definitions cached by ETag, a second,
  disjoint set of buckets drifted by "another writer" just before) and *unchanged*.
- ``floor``: a bare aiobotocore loop that only GETs every bucket's lifecycle, with the
  same connection pool, concurrency, timeouts and retry settings as LakeCircle's adapter;
  with ``--puts FILE`` it also PUTs back the buckets named there (the one-shot sync's floor).
- ``original``: the original design's approach: sequential boto3, every bucket one by
  one, a GET and a PUT (or DELETE) per added or removed rule.
- ``idle``: LakeCircle's :class:`~lakecircle.service.daemon.Daemon` after its start-up cycle,
  polling an unchanged definition prefix; counts the requests of ``--polls`` polls.
- ``memory``: one daemon cycle (``Daemon(max_cycles=1)``), with RSS sampled over time.
- ``accounts``: a cold cycle and unchanged ones, either of today's single reconciler
  (``--accounts 0``) or of the engine's :class:`~lakecircle.engine.hub.Hub` over
  ``--accounts N`` member accounts of an accounts file, each reached through its role
  (``app.wiring.open_member``: AssumeRole, its identity checked) with its own reconciler
  and records under ``accounts/<id>/``, under the process's request slots.
- ``loadgen``: a plain aiohttp client hammering the endpoint, to find its ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fake_s3 import admin_call, ops_delta  # noqa: E402 -- after the path is set for script use
from bench.workload import (  # noqa: E402
    ACCOUNT,
    DEFINITION_PREFIX,
    ENDPOINT_BUCKET,
    REGION,
    bucket_name,
    member_account,
)


def endpoint_url() -> str:
    return os.environ["AWS_ENDPOINT_URL"]


def server_counts() -> dict[str, Any]:
    return admin_call(endpoint_url(), "counts")


def rss_mb() -> float:
    """The current resident set size, in MB (10^6 bytes)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    """The process's peak RSS so far (``ru_maxrss`` is in KiB on Linux), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


class RssSampler:
    """RSS every ``interval`` seconds in a thread, to show when the peak happens."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((time.perf_counter() - self._start, rss_mb()))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def profiled(name: str) -> Iterator[None]:
    """With ``BENCH_PROFILE_DIR`` set, sample the block with py-spy (attached to this
    process, 250 Hz, every thread) into ``LABEL-NAME.txt`` there, collapsed stacks for
    ``bench/profile_report.py``; otherwise do nothing. py-spy samples from outside the
    process, so the figures of a profiled run stay close to those of a plain one.
    """
    directory = os.environ.get("BENCH_PROFILE_DIR")
    if not directory:
        yield
        return
    label = os.environ.get("BENCH_PROFILE_LABEL", "run")
    output = Path(directory) / f"{label}-{name}.txt"
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    command = [spy, "record", "--pid", str(os.getpid()), "--rate", "250", "--format", "raw", "--output", str(output)]
    sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    time.sleep(0.5)  # let it attach
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)
        sampler.wait(timeout=60)


@contextlib.contextmanager
def measured(into: dict[str, Any]) -> Iterator[None]:
    """Wall and CPU seconds of the block, and the endpoint's requests by operation."""
    before = server_counts()
    wall, cpu = time.perf_counter(), time.process_time()
    with profiled(str(into.get("name", "block"))):
        yield
    into["wall"] = time.perf_counter() - wall
    into["cpu"] = time.process_time() - cpu
    after = server_counts()
    into["ops"] = ops_delta(before["ops"], after["ops"])
    into["throttled"] = ops_delta(before["throttled"], after["throttled"])
    into["server_cpu"] = after["cpu"] - before["cpu"]


# -- LakeCircle, wired as the daemon wires it --------------------------------------------


class _Wired:
    """LakeCircle's settings, logging, metrics, account check and reconciler."""

    def __init__(self) -> None:
        from lakecircle.app.logs import configure_logging
        from lakecircle.service.metrics import Metrics
        from lakecircle.settings import LogFormat, load_settings

        self.settings = load_settings()
        configure_logging(self.settings.app_level, LogFormat.JSON, app_name=self.settings.app_name)
        self.metrics = Metrics()

    @contextlib.asynccontextmanager
    async def reconciler(self) -> Any:
        from lakecircle.adapters.retry import RetryPolicy
        from lakecircle.app import wiring as runtime

        async with runtime.open_account(
            self.settings, retry=RetryPolicy.from_settings(self.settings), observer=self.metrics
        ) as opened:
            yield _build_reconciler(self.settings, opened)


def _build_reconciler(settings: Any, opened: Any) -> Any:
    """The daemon's reconciler: ``runtime.build_reconciler`` where it exists (history,
    guards), else the parts ``service.run_service`` put together before it did."""
    from lakecircle.app import wiring as runtime

    build = getattr(runtime, "build_reconciler", None)
    if build is not None:
        try:
            return build(settings, opened, None, dry_run=settings.dry_run, keep_plans=False)
        except TypeError:  # a LakeCircle before reports kept counts only
            return build(settings, opened, None, dry_run=settings.dry_run)
    from lakecircle.adapters.s3.stores import S3DefinitionSource
    from lakecircle.engine.cycle import Reconciler
    from lakecircle.engine.loader import DefinitionLoader

    adapter = getattr(opened, "adapter", opened)
    return Reconciler(
        adapter,
        DefinitionLoader(S3DefinitionSource(adapter, settings.definition_uri), concurrency=settings.concurrency),
        concurrency=settings.concurrency,
        dry_run=settings.dry_run,
        bucket_filter=settings.bucket_filter,
        around_cycle=adapter.cycle_deadline,
    )


def _report_figures(report: Any) -> dict[str, Any]:
    definitions = report.definitions
    return {
        "states": {str(state): n for state, n in report.counts.items()},
        "fatal": report.fatal,
        "unreadable": len(definitions.unreadable) if definitions is not None else None,
        "listed": report.buckets_listed,
        "managed": sum(n for state, n in report.counts.items() if state != "unmanaged"),  # counted, never read
    }


async def run_cycles(cycles: int) -> dict[str, Any]:
    wired = _Wired()
    start_rss = rss_mb()
    figures: list[dict[str, Any]] = []
    names = ["cold", "resync", "unchanged"]
    async with wired.reconciler() as reconciler:
        for index in range(cycles):
            # Cycles after the third have nothing to do either: more passes of "unchanged".
            name = names[index] if index < len(names) else f"unchanged-{index - 1}"
            if name == "resync":
                admin_call(endpoint_url(), "second-drift")
            cycle: dict[str, Any] = {"name": name}
            with measured(cycle):
                report = await reconciler.run_cycle(name)
            wired.metrics.observe_cycle(report, now=time.time())
            cycle.update(_report_figures(report))
            figures.append(cycle)
    return {"cycles": figures, "rss_start_mb": start_rss, "peak_rss_mb": peak_rss_mb()}


# -- many accounts: the hub, against the same buckets in one account ---------------------


def write_accounts_file(accounts: int) -> Path:
    """An accounts file of the endpoint's first ``accounts`` member accounts (roles by
    LCC_ROLE_NAME's default), in a temporary directory."""
    path = Path(tempfile.mkdtemp(prefix="lakecircle-bench-accounts-")) / "accounts.toml"
    path.write_text("".join(f'[[Account]]\nId = "{member_account(k)}"\n\n' for k in range(accounts)))
    return path


class _Hub:
    """The engine's hub as the service will wire it, from its pieces: the hub's own
    adapter (account check, definitions, records), the accounts file, one process's
    request slots, and each member account opened through its role (``open_member``) with
    a reconciler of its own (records under ``accounts/<id>/``, through the hub's adapter)."""

    def __init__(self, wired: _Wired) -> None:
        self.wired = wired
        self.opened = 0
        self.open_s = 0.0
        """Wall seconds spent opening members (AssumeRole, GetCallerIdentity, clients), summed."""

    @contextlib.asynccontextmanager
    async def hub(self) -> Any:
        from lakecircle.adapters.accounts import account_source
        from lakecircle.adapters.s3.stores import S3DefinitionSource, S3EndpointStore
        from lakecircle.app import wiring as runtime
        from lakecircle.app.shares import request_slots, service_identity
        from lakecircle.core.accounts import Account
        from lakecircle.engine.cycle import Reconciler
        from lakecircle.engine.history import History
        from lakecircle.engine.hub import Hub
        from lakecircle.engine.loader import DefinitionLoader

        settings = self.wired.settings
        identity = service_identity(settings, replica="bench")
        slots = request_slots(settings)
        async with runtime.open_account(settings, observer=self.wired.metrics) as hub_account:
            hub_adapter = hub_account.adapter
            source = account_source(settings, hub_adapter)
            assert source is not None, "LCC_ACCOUNTS is set by run_accounts"
            loader = DefinitionLoader(
                S3DefinitionSource(hub_adapter, settings.definition_uri), concurrency=settings.concurrency
            )

            @contextlib.asynccontextmanager
            async def open_member(account: Account) -> Any:
                started = time.perf_counter()
                async with runtime.open_member(
                    settings, identity, account, slots=slots, observer=self.wired.metrics
                ) as opened:
                    self.opened += 1
                    self.open_s += time.perf_counter() - started
                    adapter = opened.adapter
                    records = S3EndpointStore(hub_adapter, f"{settings.endpoint}accounts/{account.id}/")
                    yield Reconciler(
                        adapter,
                        loader,
                        concurrency=settings.concurrency,
                        dry_run=settings.dry_run,
                        bucket_filter=settings.bucket_filter,
                        history=History(records, caller=opened.caller),
                        settle_seconds=settings.settle_seconds,
                        max_removals=settings.max_removals,
                        allow_mass_removal=settings.allow_mass_removal,
                        around_cycle=adapter.cycle_deadline,
                        keep_plans=False,
                        tags=adapter,
                        account=account,
                    )

            # The metrics of each account, where they exist yet (another part of issue 16).
            observer: Any = self.wired.metrics if hasattr(self.wired.metrics, "account_finished") else None
            hub = Hub(loader, source, open_member, dry_run=settings.dry_run, observer=observer)
            try:
                yield hub
            finally:
                await hub.aclose()


async def run_accounts(accounts: int, cycles: int) -> dict[str, Any]:
    """A cold cycle, then ``cycles - 1`` unchanged ones: of one reconciler over the whole
    account (``accounts`` 0), or of the hub over ``accounts`` member accounts."""
    if accounts:
        os.environ["LCC_ACCOUNTS"] = str(write_accounts_file(accounts))
    wired = _Wired()
    hub = _Hub(wired)
    start_rss = rss_mb()
    figures: list[dict[str, Any]] = []
    opened = hub.hub() if accounts else wired.reconciler()
    async with opened as runner:
        for index in range(cycles):
            name = "cold" if index == 0 else "unchanged" if index == 1 else f"unchanged-{index}"
            cycle: dict[str, Any] = {"name": name}
            with measured(cycle):
                report = await runner.run_cycle(name)
            wired.metrics.observe_cycle(report, now=time.time())
            cycle.update(_report_figures(report))
            if accounts:
                states: dict[str, int] = {}
                for run in runner.runs.values():
                    states[str(run.state)] = states.get(str(run.state), 0) + 1
                cycle["accounts"] = states
                cycle["members_opened"] = hub.opened
                cycle["member_open_s"] = hub.open_s
            figures.append(cycle)
    return {"accounts": accounts, "cycles": figures, "rss_start_mb": start_rss, "peak_rss_mb": peak_rss_mb()}


# -- the floor of the stack ---------------------------------------------------------------


async def run_floor(
    buckets: int, concurrency: int, repeat: int = 1, *, puts: frozenset[str] = frozenset(), warm: bool = True
) -> dict[str, Any]:
    """``repeat`` passes over every bucket, each measured on its own (``floor``, ``floor-2``, ...).

    With ``puts`` (the one-shot section's sync floor), each of those buckets is written
    back after its GET: one PutBucketLifecycleConfiguration of the rules just read (and
    their minimum object size), as many PUTs as the sync makes, each of its size. Without
    ``warm`` no request is made before the measured pass (a process timed as a whole).
    """
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    names = [bucket_name(i) for i in range(buckets)]
    # The same options as lakecircle.adapters.s3.S3Adapter._client_config.
    config = AioConfig(
        max_pool_connections=max(concurrency, 10),
        connect_timeout=10.0,
        read_timeout=60.0,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    passes: list[dict[str, Any]] = []
    async with get_session().create_client("s3", region_name=REGION, config=config) as client:
        if warm:
            await client.get_bucket_lifecycle_configuration(Bucket=names[0], ExpectedBucketOwner=ACCOUNT)  # connect
        for index in range(repeat):
            pending = iter(names)

            async def worker(pending: Iterator[str] = pending) -> None:
                for name in pending:
                    got = await client.get_bucket_lifecycle_configuration(Bucket=name, ExpectedBucketOwner=ACCOUNT)
                    if name in puts:
                        await client.put_bucket_lifecycle_configuration(
                            Bucket=name,
                            ExpectedBucketOwner=ACCOUNT,
                            LifecycleConfiguration={"Rules": got["Rules"]},
                            TransitionDefaultMinimumObjectSize=got["TransitionDefaultMinimumObjectSize"],
                        )

            result: dict[str, Any] = {"name": "floor" if index == 0 else f"floor-{index + 1}", "managed": buckets}
            with measured(result):
                await asyncio.gather(*(worker() for _ in range(concurrency)))
            passes.append(result)
    return {"cycles": passes, "peak_rss_mb": peak_rss_mb()}


# -- the original design ------------------------------------------------------------------


def run_original() -> dict[str, Any]:
    """The original SyncWork: sequential boto3, a GET and a PUT per added or removed rule.

    Its difference is by rule fingerprint (added: defined and not live; removed: live and
    not defined). To be fair to it, fingerprints are taken over LakeCircle's canonical
    form, so it makes no spurious writes, and removals go before additions (adding a
    changed rule first would send two rules with one ID, which S3 refuses); the number of
    requests is the same either way.
    """
    import boto3

    from lakecircle.core.model import LifecycleConfig, Rule, config_to_request
    from lakecircle.core.normalize import canonical_key

    s3 = boto3.client("s3", region_name=REGION)
    result: dict[str, Any] = {"name": "original"}
    rule_writes = 0

    def fingerprint(rule: dict[str, Any]) -> Any:
        return canonical_key(Rule.model_validate(rule))

    def wire(rule: dict[str, Any]) -> dict[str, Any]:
        wired: dict[str, Any] = config_to_request(LifecycleConfig((Rule.model_validate(rule),)))
        return dict(wired["LifecycleConfiguration"]["Rules"][0])

    def live_rules(name: str) -> list[dict[str, Any]]:
        try:
            response = s3.get_bucket_lifecycle_configuration(Bucket=name)
        except s3.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchLifecycleConfiguration":
                return []
            raise
        return list(response.get("Rules") or [])

    def put(name: str, rules: list[dict[str, Any]]) -> None:
        if rules:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
        else:
            s3.delete_bucket_lifecycle(Bucket=name)

    with measured(result):
        # AccountDefinition.load(): every .toml under the prefix, downloaded and parsed.
        defined: dict[str, list[dict[str, Any]]] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=ENDPOINT_BUCKET, Prefix=DEFINITION_PREFIX):
            for entry in page.get("Contents", []):
                if entry["Key"].endswith(".toml"):
                    body = s3.get_object(Bucket=ENDPOINT_BUCKET, Key=entry["Key"])["Body"].read()
                    document = tomllib.loads(body.decode())
                    rules = document["LifecycleConfiguration"]["Rules"]
                    defined.setdefault(document["BucketName"], []).extend(rules)
        # Account.load(): every bucket, and each bucket's configuration.
        live = {b["Name"]: live_rules(b["Name"]) for b in s3.list_buckets()["Buckets"]}
        for name in sorted(defined.keys() & live.keys()):
            want = {fingerprint(r): r for r in defined[name]}
            have = {fingerprint(r): r for r in live[name]}
            for key in have.keys() - want.keys():  # Bucket.remove_rule(): load, delete, put
                current = live_rules(name)
                put(name, [r for r in current if fingerprint(r) != key])
                rule_writes += 1
            for key in want.keys() - have.keys():  # Bucket.add_rule(): load, add, put
                current = live_rules(name)
                put(name, [*current, wire(want[key])])
                rule_writes += 1
    result["managed"] = len(defined)
    result["rule_writes"] = rule_writes
    return {"cycles": [result], "peak_rss_mb": peak_rss_mb()}


# -- the daemon: idle polls and one cycle's memory ----------------------------------------


class _Observer:
    def __init__(self) -> None:
        self.finished = asyncio.Event()
        self.reports: list[Any] = []

    def cycle_finished(self, report: Any) -> None:
        self.reports.append(report)
        self.finished.set()

    def cycle_crashed(self, trigger: str) -> None:
        self.finished.set()


async def _wait_for(condition: Callable[[], bool], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the daemon did not get there in time")
        await asyncio.sleep(0.01)


async def run_idle(polls: int, poll_interval: float) -> dict[str, Any]:
    from lakecircle.service.daemon import Daemon

    wired = _Wired()
    observer = _Observer()
    async with wired.reconciler() as reconciler:
        daemon = Daemon(
            reconciler, poll_interval=poll_interval, resync_interval=86_400, jitter=lambda: 1.0, observer=observer
        )
        running = asyncio.ensure_future(daemon.run())
        await asyncio.wait_for(observer.finished.wait(), timeout=3600)
        report = observer.reports[-1] if observer.reports else None
        before = server_counts()
        polls_before, idle_before = daemon.stats.polls, daemon.stats.idle_polls
        await _wait_for(lambda: daemon.stats.idle_polls >= idle_before + polls, limit_s=60 + polls * poll_interval * 5)
        after = server_counts()
        done = daemon.stats.polls - polls_before
        idle = daemon.stats.idle_polls - idle_before
        daemon.request_stop()
        await asyncio.wait_for(running, timeout=60)
    files = len(report.definitions.files) if report is not None and report.definitions is not None else 0
    return {
        "files": files,
        "polls": done,
        "idle_polls": idle,
        "cycles_during_polls": daemon.stats.cycles - 1,
        "ops": ops_delta(before["ops"], after["ops"]),
        "startup": _report_figures(report) if report is not None else None,
        "peak_rss_mb": peak_rss_mb(),
    }


async def run_memory() -> dict[str, Any]:
    from lakecircle.service.daemon import Daemon

    wired = _Wired()
    observer = _Observer()
    marks: dict[str, float] = {}
    with RssSampler() as sampler:
        async with wired.reconciler() as reconciler:
            marks["before_cycle_mb"] = rss_mb()
            loader = reconciler.loader
            load = loader.load

            async def load_and_mark(*args: Any, **kwargs: Any) -> Any:
                loaded = await load(*args, **kwargs)
                marks["after_load_mb"] = rss_mb()
                marks["peak_by_load_mb"] = peak_rss_mb()
                marks["load_s"] = time.perf_counter() - started
                return loaded

            loader.load = load_and_mark
            daemon = Daemon(reconciler, max_cycles=1, observer=observer)
            cycle: dict[str, Any] = {"name": "daemon cycle"}
            started = time.perf_counter()
            with measured(cycle):
                await daemon.run()
            marks["after_cycle_mb"] = rss_mb()
    report = observer.reports[-1] if observer.reports else None
    if report is not None:
        cycle.update(_report_figures(report))
    return {
        "cycles": [cycle],
        "marks": marks,
        "samples": sampler.samples[:: max(1, len(sampler.samples) // 60)],
        "peak_rss_mb": peak_rss_mb(),
    }


# -- the endpoint's own ceiling ---------------------------------------------------------


async def run_loadgen(seconds: float, connections: int, buckets: int) -> dict[str, Any]:
    import aiohttp

    url = endpoint_url()
    names = [bucket_name(i % buckets) for i in range(buckets)]
    done = 0
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    result: dict[str, Any] = {"name": "loadgen"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(offset: int) -> None:
            nonlocal done, errors
            index = offset
            while time.perf_counter() < deadline:
                async with session.get(f"{url}/{names[index % len(names)]}?lifecycle") as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                done += 1
                index += connections

        with measured(result):
            await asyncio.gather(*(worker(i) for i in range(connections)))
    result.update(requests=done, errors=errors, rate=done / result["wall"])
    result["server_cpu_per_request_us"] = result["server_cpu"] / max(done, 1) * 1e6
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["cycles", "floor", "original", "idle", "memory", "loadgen", "accounts"])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--buckets", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1, help="floor: passes over every bucket, each measured")
    parser.add_argument("--puts", type=Path, help="floor: a file of bucket names to PUT back after their GET")
    parser.add_argument("--cold", action="store_true", help="floor: no request before the measured pass")
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--poll-interval", type=float, default=0.3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--accounts", type=int, default=0, help="accounts: member accounts (0: one account)")
    args = parser.parse_args()
    runners: dict[str, Callable[[], Coroutine[Any, Any, dict[str, Any]]]] = {
        "cycles": lambda: run_cycles(args.cycles),
        "floor": lambda: run_floor(
            args.buckets,
            args.concurrency,
            args.repeat,
            puts=frozenset(args.puts.read_text().split()) if args.puts else frozenset(),
            warm=not args.cold,
        ),
        "idle": lambda: run_idle(args.polls, args.poll_interval),
        "memory": run_memory,
        "loadgen": lambda: run_loadgen(args.seconds, args.concurrency, args.buckets),
        "accounts": lambda: run_accounts(args.accounts, args.cycles),
    }
    result = run_original() if args.kind == "original" else asyncio.run(runners[args.kind]())
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
