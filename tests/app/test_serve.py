"""``lakecircle daemon`` as a real process against moto: scrape, SIGHUP, SIGTERM, also while it starts."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
import structlog

from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.leases import S3LeaseStore
from lakecircle.app.serve import run_service
from lakecircle.core.model import LifecycleConfig, Rule, config_to_request
from lakecircle.engine.leased import LeasedRunner
from lakecircle.service.daemon import Daemon as DaemonLoop
from lakecircle.service.server import host_port
from lakecircle.service.signals import SignalInbox
from lakecircle.settings import Settings
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION
from tests.engine.leasing import until
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import child_env

DEFINITION = """BucketName = "{bucket}"
[[LifecycleConfiguration.Rules]]
ID = "expire"
Status = "Enabled"
Filter = {{ Prefix = "logs/" }}
Expiration = {{ Days = 30 }}
"""


class Daemon:
    """A ``lakecircle daemon`` subprocess, with its JSON log lines collected as they come."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
            [sys.executable, "-m", "lakecircle", "daemon", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue

    def wait_for(self, event: str, timeout: float = 30, count: int = 1) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if line.get("event") == event]
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} #{count} within {timeout}s; stderr:\n{''.join(self.raw[-30:])}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def daemon_env(moto: str, s3_client: Any, tmp_path: Path) -> dict[str, str]:
    s3_client.create_bucket(Bucket="svc-endpoint")
    for i in range(3):
        bucket = f"svc-bucket-{i}"
        s3_client.create_bucket(Bucket=bucket)
        s3_client.put_object(
            Bucket="svc-endpoint", Key=f"lc/definition/{bucket}.toml", Body=DEFINITION.format(bucket=bucket).encode()
        )
    return child_env(
        LCC_ENDPOINT="s3://svc-endpoint/lc/",
        LCC_AWS_ACCOUNT=MOTO_ACCOUNT,
        LCC_AWS_REGION=MOTO_REGION,
        LCC_LOG_FORMAT="JSON",
        LCC_METRICS_ADDR="127.0.0.1:0",
        LCC_POLL_INTERVAL="3600",
        LCC_RESYNC_INTERVAL="3600",
    )


@pytest.fixture
def running(daemon_env: dict[str, str]) -> Iterator[Daemon]:
    daemon = Daemon(daemon_env)
    try:
        yield daemon
    finally:
        daemon.stop()


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 -- loopback test server
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def cycles(samples: dict[str, float]) -> float:
    return sum(v for k, v in samples.items() if k.startswith("lakecircle_cycles_total{"))


def scrape_after_cycles(url: str, count: int, timeout: float = 30) -> dict[str, float]:
    """Scrape once the metrics have taken in ``count`` cycles (the log line comes first)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if cycles(samples) >= count or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def test_daemon_serves_metrics_syncs_on_sighup_and_exits_0_on_sigterm(running: Daemon, s3_client: Any) -> None:
    address = running.wait_for("metrics_listening")["address"]
    running.wait_for("cycle_finished")
    samples = scrape_after_cycles(address, 1)
    assert cycles(samples) == 1
    assert samples["lakecircle_rules_added_total"] == 3
    assert samples['lakecircle_buckets{state="changed"}'] == 3
    with urllib.request.urlopen(address.replace("/metrics", "/readyz"), timeout=10) as ready:  # noqa: S310 -- loopback
        assert ready.status == 200

    # Someone changes a bucket behind LakeCircle's back; SIGHUP repairs it now.
    foreign = LifecycleConfig(
        (Rule.model_validate({"ID": "foreign", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}),)
    )
    s3_client.put_bucket_lifecycle_configuration(Bucket="svc-bucket-1", **config_to_request(foreign))
    running.proc.send_signal(signal.SIGHUP)
    running.wait_for("cycle_finished", count=2)
    samples = scrape_after_cycles(address, 2)
    assert cycles(samples) == 2
    assert samples['lakecircle_cycles_total{result="success",trigger="signal"}'] == 1
    assert samples["lakecircle_rules_removed_total"] == 1
    rules = s3_client.get_bucket_lifecycle_configuration(Bucket="svc-bucket-1")["Rules"]
    assert [r["ID"] for r in rules] == ["expire"]

    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(timeout=30) == 0
    running.wait_for("daemon_stopped", timeout=5)


def test_metrics_pass_promtool_check(running: Daemon) -> None:
    promtool = "/usr/bin/promtool"
    if not Path(promtool).exists():
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    address = running.wait_for("metrics_listening")["address"]
    running.wait_for("cycle_finished")
    with urllib.request.urlopen(address, timeout=10) as response:  # noqa: S310 -- loopback test server
        body = response.read()
    checked = subprocess.run(  # noqa: S603 -- a fixed system binary
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert b"lakecircle_s3_requests_total" in body


# -- signals from the first instant ---------------------------------------------------------


@pytest.fixture
def stalled_sts(moto: str) -> Iterator[FaultProxy]:
    """A fault proxy in front of moto whose STS calls stall (the account check hangs)."""
    with FaultProxy(moto, stall_seconds=30) as proxy:
        proxy.force("GetCallerIdentity", None, Fault.STALL)
        yield proxy


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(0.02)


def stalls(proxy: FaultProxy, operation: str = "GetCallerIdentity") -> int:
    return sum(1 for e in proxy.events if e.operation == operation and e.fault is Fault.STALL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda sig: sig.name)
def test_a_stop_signal_during_the_account_check_exits_0_at_once(
    sig: signal.Signals, daemon_env: dict[str, str], stalled_sts: FaultProxy
) -> None:
    daemon = Daemon({**daemon_env, "AWS_ENDPOINT_URL": stalled_sts.url})
    try:
        wait_until(lambda: stalls(stalled_sts) == 1)
        sent = time.monotonic()
        daemon.proc.send_signal(sig)
        assert daemon.proc.wait(timeout=10) == 0
        assert time.monotonic() - sent < 5
        stopped = daemon.wait_for("daemon_stopped", timeout=5)
    finally:
        daemon.stop()
    assert stopped["reason"] == "signal"
    assert stopped["signal"] == sig.name
    assert stopped["phase"] == "start_up"
    assert not [e for e in daemon.lines if e.get("event") == "daemon_started"]
    assert "Traceback" not in "".join(daemon.raw)
    assert all(line.startswith("{") for line in daemon.raw), daemon.raw  # JSON lines only: no warnings


def test_a_sighup_during_the_account_check_is_answered_by_the_first_cycle(
    daemon_env: dict[str, str], moto: str, s3_client: Any
) -> None:
    with FaultProxy(moto, stall_seconds=1.5) as proxy:
        proxy.force("GetCallerIdentity", None, Fault.STALL, times=1)
        daemon = Daemon({**daemon_env, "AWS_ENDPOINT_URL": proxy.url})
        try:
            wait_until(lambda: stalls(proxy) == 1)
            daemon.proc.send_signal(signal.SIGHUP)
            received = daemon.wait_for("signal_received")
            finished = daemon.wait_for("cycle_finished")
            assert daemon.proc.poll() is None
            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(timeout=30) == 0
        finally:
            daemon.stop()
    assert (received["signal"], received["action"], received["phase"]) == ("SIGHUP", "sync", "start_up")
    assert finished["trigger"] == "startup"
    assert [r["ID"] for r in s3_client.get_bucket_lifecycle_configuration(Bucket="svc-bucket-0")["Rules"]] == ["expire"]
    assert "Traceback" not in "".join(daemon.raw)


@pytest.mark.anyio
async def test_a_stop_signal_caught_before_the_service_runs_is_not_lost() -> None:
    inbox = SignalInbox().install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # before the event loop reads the inbox
        settings = Settings(
            endpoint="s3://svc-endpoint/lc/",
            aws_account=MOTO_ACCOUNT,
            aws_region=MOTO_REGION,
            metrics_addr="127.0.0.1:0",
        )
        with structlog.testing.capture_logs() as logs, anyio.fail_after(10):
            daemon = await run_service(settings, signals=inbox)
    finally:
        inbox.uninstall()
    assert daemon is None
    events = [e["event"] for e in logs]
    assert "daemon_started" not in events
    assert events[-1] == "daemon_stopped"
    assert logs[-1]["reason"] == "signal"


# -- the service in-process: S3 out of reach, addresses -------------------------------------


@asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[tuple[DaemonLoop, str]]:
    """run_service in this process; yields the daemon and the server's base URL, stops it on exit."""
    started = anyio.Event()
    found: dict[str, Any] = {}

    def on_started(daemon: DaemonLoop, bound: tuple[str, int]) -> None:
        found.update(daemon=daemon, url=f"http://{host_port(*bound)}")
        started.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(run_service, settings, on_started=on_started))
        with anyio.fail_after(30):
            await started.wait()
        try:
            yield found["daemon"], found["url"]
        finally:
            found["daemon"].request_stop()


async def get_text(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def until_status(url: str, status: int) -> str:
    while True:
        got, text = await get_text(url)
        if got == status:
            return text
        await anyio.sleep(0.1)


def service_settings(**extra: Any) -> Settings:
    values: dict[str, Any] = {
        "endpoint": "s3://svc-endpoint/lc/",
        "aws_account": MOTO_ACCOUNT,
        "aws_region": MOTO_REGION,
        "metrics_addr": "127.0.0.1:0",
        "poll_interval": 3600,
        "resync_interval": 3600,
        "lease_seconds": 0,
        **extra,
    }
    return Settings(**values)


@pytest.mark.anyio
async def test_an_s3_outage_counts_failed_polls_and_turns_readiness_off_until_s3_answers(
    daemon_env: dict[str, str], moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultProxy(moto, rates={Fault.SERVER_ERROR: 1.0}) as proxy:
        proxy.enabled = False
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        settings = service_settings(poll_interval=1, retry_max_attempts=1)
        async with service(settings) as (_, url):
            with anyio.fail_after(30):
                await until_status(f"{url}/readyz", 200)
            proxy.enabled = True  # every S3 request answers 500 from now on
            out = time.monotonic()
            with anyio.fail_after(20):
                reason = await until_status(f"{url}/readyz", 503)
            waited = time.monotonic() - out
            _, text = await get_text(f"{url}/metrics")
            proxy.enabled = False
            with anyio.fail_after(10):
                await until_status(f"{url}/readyz", 200)
    assert waited > 3  # three poll intervals
    assert reason.startswith("S3 out of reach: polls and cycles have failed for ")
    assert "(last failure at stage poll)" in reason
    failed = [line for line in text.splitlines() if line.startswith('lakecircle_failures_total{stage="poll"}')]
    assert failed
    assert float(failed[0].split()[-1]) >= 3


@pytest.mark.anyio
async def test_an_ipv6_metrics_address_is_printed_in_brackets(daemon_env: dict[str, str]) -> None:
    with structlog.testing.capture_logs() as logs:
        async with service(service_settings(metrics_addr="[::1]:0")) as (_, url):
            status, _ = await get_text(f"{url}/healthz")
    address = next(e["address"] for e in logs if e["event"] == "metrics_listening")
    assert address.startswith("http://[::1]:")
    assert address == f"{url}/metrics"
    assert status == 200


def test_a_metrics_address_that_cannot_be_bound_names_the_setting_and_the_address(
    daemon_env: dict[str, str],
) -> None:
    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "lakecircle", "daemon"],
            env={**daemon_env, "LCC_METRICS_ADDR": f"[::1]:{port}"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert f"LCC_METRICS_ADDR: cannot listen on [::1]:{port}: address already in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert "('::1'" not in done.stderr  # asyncio's message holds the address as a Python tuple


@pytest.mark.anyio
async def test_a_drift_monitor_takes_no_lease_so_it_never_keeps_the_writer_waiting(
    daemon_env: dict[str, str], s3_client: Any
) -> None:
    settings = service_settings(actions="DRYRUN", lease_seconds=6, replica_id="drift-monitor")
    async with service(settings) as (daemon, _):
        with anyio.fail_after(15):
            while daemon.stats.cycles < 1 or daemon.last_report is None:
                await anyio.sleep(0.05)
    keys = [k["Key"] for k in s3_client.list_objects_v2(Bucket="svc-endpoint", Prefix="lc/lease/").get("Contents", [])]
    assert not [k for k in keys if k.endswith(f"/{MOTO_ACCOUNT}.json")], keys


@pytest.mark.anyio
async def test_the_daemons_lease_requests_go_their_own_way_and_that_way_is_closed_with_the_daemon(
    daemon_env: dict[str, str],
) -> None:
    # Never behind the cycle's requests in LCC_MAX_REQUESTS_PER_SECOND's limiter or the throttle gate.
    settings = service_settings(lease_seconds=6, replica_id="pod-a", max_requests_per_second=2)
    async with service(settings) as (daemon, _):
        runner = daemon.reconciler
        assert isinstance(runner, LeasedRunner)
        store, account = runner.keeper._store, runner.reconciler.store
        assert isinstance(store, S3LeaseStore)
        assert isinstance(account, S3Adapter)
        await until(runner.keeper.held, within=6)
    assert not {"GetObject", "PutObject"} & set(account.calls), account.calls
    assert account.gate.limiter is not None
    lane = store.adapter
    assert lane.calls["PutObject"] >= 4, "the probe and the lease went the leases' way"
    assert (lane.gate.limiter, lane.slots) == (None, None)
    with pytest.raises(RuntimeError, match="outside its `async with` block"):
        await lane.client()
