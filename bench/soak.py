"""Soak: the daemon polling every second for about ten minutes while a driver changes things.

Not a test (too long for the suite): ``make soak`` runs it, ``MINUTES=3 make soak`` a
shorter one. It starts moto's S3 server on 127.0.0.1 (a free port) inside this process,
creates the buckets and their definitions under an endpoint, and runs ``lakecircle
daemon`` as a subprocess with ``LCC_POLL_INTERVAL=1``. A seeded driver then, at random:

- changes a bucket's definition (a new rule ID and expiration), which the daemon must
  pick up on its next poll;
- drifts a bucket behind the daemon's back (someone else's lifecycle rule), which the
  daemon must correct at its next resync.

Every change is followed until the bucket holds what it should; one that does not within
the convergence timeout is a failure. Every few seconds the daemon's resident memory
(``VmRSS`` of ``/proc/PID/status``) and its open file descriptors (``/proc/PID/fd``) are
sampled. After a warm-up, the start, end and maximum of both are printed with their
growth, and the verdict is "flat" when RSS grew less than ``--rss-growth`` MiB and the
descriptors by at most ``--fd-growth``. The exit status is 0 when every change converged
and both stayed flat.

    python bench/soak.py [--minutes 10] [--buckets 40] [--seed 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ACCOUNT = "123456789012"
"""The account moto's STS answers with."""
REGION = "us-east-1"
ENDPOINT = "soak-endpoint"
PREFIX = "lc/"


def definition(bucket: str, rule_id: str, days: int) -> bytes:
    return (
        f'BucketName = "{bucket}"\n[[LifecycleConfiguration.Rules]]\nID = "{rule_id}"\nStatus = "Enabled"\n'
        f'Filter = {{ Prefix = "logs/" }}\nExpiration = {{ Days = {days} }}\n'
    ).encode()


def lifecycle(rule_id: str, days: int, prefix: str = "logs/") -> dict[str, Any]:
    rule = {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": prefix}, "Expiration": {"Days": days}}
    return {"Rules": [rule]}


@dataclass
class Sample:
    t: float
    rss_kib: int
    fds: int


@dataclass
class Pending:
    kind: str
    """definition or drift"""
    wanted: tuple[str, int]
    """The (rule ID, days) the bucket must hold."""
    since: float


@dataclass
class Tally:
    changes: int = 0
    drifts: int = 0
    converged: int = 0
    superseded: int = 0
    failed: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"definition": [], "drift": []})


# -- moto and the daemon ------------------------------------------------------------------


@contextmanager
def moto_server() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access-log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def daemon(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lakecircle", "daemon"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def wait_for_line(log_path: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, log_path.read_text(errors="replace"))
        if found:
            return found
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log_path.read_text(errors="replace")[-3000:]
    raise SystemExit(f"the daemon did not log {pattern!r} within {timeout:.0f} s:\n{tail}")


def sample(pid: int) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return Sample(time.monotonic(), int(match.group(1)) if match else 0, len(os.listdir(f"/proc/{pid}/fd")))


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 -- the daemon on loopback
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


# -- the driver ---------------------------------------------------------------------------


class Driver:
    """Changes definitions and drifts buckets at random; follows each change to convergence."""

    def __init__(self, s3: Any, buckets: list[str], rng: random.Random, timeout: float) -> None:
        self.s3 = s3
        self.buckets = buckets
        self.rng = rng
        self.timeout = timeout
        self.defined: dict[str, tuple[str, int]] = {}
        self.pending: dict[str, Pending] = {}
        self.tally = Tally()
        self.generation = 0

    def arrange(self) -> None:
        self.s3.create_bucket(Bucket=ENDPOINT)
        for i, bucket in enumerate(self.buckets):
            self.s3.create_bucket(Bucket=bucket)
            self.put_definition(bucket, (f"initial-{i}", 30 + i % 40), kind=None)

    def put_definition(self, bucket: str, wanted: tuple[str, int], kind: str | None = "definition") -> None:
        key = f"{PREFIX}definition/{bucket}.toml"
        self.s3.put_object(Bucket=ENDPOINT, Key=key, Body=definition(bucket, *wanted))
        self.defined[bucket] = wanted
        self.expect(bucket, kind or "definition")

    def expect(self, bucket: str, kind: str) -> None:
        if bucket in self.pending:
            self.tally.superseded += 1
        self.pending[bucket] = Pending(kind, self.defined[bucket], time.monotonic())

    def step(self) -> None:
        """One random change."""
        self.generation += 1
        bucket = self.rng.choice(self.buckets)
        if self.rng.random() < 0.6:
            self.tally.changes += 1
            self.put_definition(bucket, (f"gen-{self.generation}", 30 + self.rng.randrange(300)))
        elif bucket not in self.pending:  # drift only what has settled: drift on drift is another test
            self.tally.drifts += 1
            config = lifecycle(f"someone-else-{self.generation}", 1 + self.rng.randrange(20), "other/")
            self.s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=config)
            self.expect(bucket, "drift")

    def live(self, bucket: str) -> tuple[str, int] | None:
        try:
            rules = self.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except self.s3.exceptions.ClientError:
            return None
        if len(rules) != 1:
            return None
        return str(rules[0].get("ID")), int(rules[0].get("Expiration", {}).get("Days", -1))

    def check(self) -> None:
        """Settle what converged; fail what took longer than the timeout."""
        now = time.monotonic()
        for bucket, pending in list(self.pending.items()):
            if self.live(bucket) == pending.wanted:
                self.tally.converged += 1
                self.tally.latencies[pending.kind].append(now - pending.since)
                del self.pending[bucket]
            elif now - pending.since > self.timeout:
                self.tally.failed.append(
                    f"{bucket}: {pending.kind} not converged after {now - pending.since:.0f} s"
                    f" (holds {self.live(bucket)}, wants {pending.wanted})"
                )
                del self.pending[bucket]


# -- the report ---------------------------------------------------------------------------


def summarize(samples: list[Sample], warmup: float, started: float) -> dict[str, Any]:
    steady = [s for s in samples if s.t - started >= warmup] or samples
    head, tail = steady[:3], steady[-3:]
    rss_start = statistics.median(s.rss_kib for s in head) / 1024
    rss_end = statistics.median(s.rss_kib for s in tail) / 1024
    fd_start = min(s.fds for s in head)
    fd_end = max(s.fds for s in tail)
    return {
        "samples": len(samples),
        "steady_samples": len(steady),
        "rss_mib": {
            "first": round(samples[0].rss_kib / 1024, 1),
            "start": round(rss_start, 1),
            "end": round(rss_end, 1),
            "max": round(max(s.rss_kib for s in steady) / 1024, 1),
            "growth": round(rss_end - rss_start, 1),
        },
        "fds": {
            "first": samples[0].fds,
            "start": fd_start,
            "end": fd_end,
            "max": max(s.fds for s in steady),
            "growth": fd_end - fd_start,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the driver runs (default 10)")
    parser.add_argument("--buckets", type=int, default=40)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--resync", type=float, default=10.0, help="LCC_RESYNC_INTERVAL: drift is found at resync")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS/fd samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline sample")
    parser.add_argument("--rss-growth", type=float, default=16.0, help="MiB of RSS growth still called flat")
    parser.add_argument("--fd-growth", type=int, default=2, help="descriptors of growth still called flat")
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args()

    os.environ.update(AWS_ACCESS_KEY_ID="soak", AWS_SECRET_ACCESS_KEY="soak", AWS_DEFAULT_REGION=REGION)  # noqa: S106
    rng = random.Random(args.seed)
    buckets = [f"soak-{i:03d}" for i in range(args.buckets)]
    timeout = 3 * args.resync + 30
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"lakecircle-soak-{os.getpid()}.log"  # noqa: S108
    with moto_server() as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LCC_", "AWS_"))}
        env.update(
            AWS_ACCESS_KEY_ID="soak",
            AWS_SECRET_ACCESS_KEY="soak",  # noqa: S106 -- moto's, not a secret
            AWS_DEFAULT_REGION=REGION,
            AWS_ENDPOINT_URL=url,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            LCC_ENDPOINT=f"s3://{ENDPOINT}/{PREFIX}",
            LCC_AWS_ACCOUNT=ACCOUNT,
            LCC_AWS_REGION=REGION,
            LCC_POLL_INTERVAL="1",
            LCC_RESYNC_INTERVAL=str(args.resync),
            LCC_SETTLE_SECONDS="5",
            LCC_METRICS_ADDR="127.0.0.1:0",
            LCC_LOG_FORMAT="JSON",
        )
        s3 = boto3.client("s3", endpoint_url=url, region_name=REGION)  # moto's test credentials, from env
        driver = Driver(s3, buckets, rng, timeout)
        driver.arrange()
        print(f"soak: {args.buckets} buckets, {args.minutes:g} min, poll 1 s, resync {args.resync:g} s; log {log_path}")
        with daemon(env, log_path) as proc:
            metrics_url = wait_for_line(log_path, r"(http://127\.0\.0\.1:\d+/metrics)", proc).group(1)
            wait_for_line(log_path, r'"cycle_finished"', proc)
            started = time.monotonic()
            samples = [sample(proc.pid)]
            next_sample = started + args.sample_every
            end = started + args.minutes * 60
            while time.monotonic() < end:
                if proc.poll() is not None:
                    raise SystemExit(f"the daemon exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
                driver.step()
                driver.check()
                if time.monotonic() >= next_sample:
                    samples.append(sample(proc.pid))
                    next_sample += args.sample_every
                    elapsed = time.monotonic() - started
                    if len(samples) % 12 == 0:
                        last = samples[-1]
                        print(
                            f"  {elapsed / 60:4.1f} min: RSS {last.rss_kib / 1024:.1f} MiB, {last.fds} fds,"
                            f" {driver.tally.changes} changes, {driver.tally.drifts} drifts,"
                            f" {len(driver.pending)} pending"
                        )
                time.sleep(rng.uniform(0.3, 1.2))
            settle_until = time.monotonic() + timeout
            while driver.pending and time.monotonic() < settle_until:
                driver.check()
                time.sleep(0.5)
            driver.check()
            samples.append(sample(proc.pid))
            metrics = scrape(metrics_url)
            proc.send_signal(signal.SIGTERM)
            exit_code = proc.wait(60)

    tally = driver.tally
    result = summarize(samples, args.warmup, started)
    cycles = {
        "/".join(re.findall(r'="([^"]*)"', k)): int(v)  # result/trigger
        for k, v in metrics.items()
        if k.startswith("lakecircle_cycles_total{") and v
    }
    result.update(
        minutes=args.minutes,
        changes=tally.changes,
        drifts=tally.drifts,
        converged=tally.converged,
        superseded=tally.superseded,
        not_converged=tally.failed + [f"{b}: still pending" for b in driver.pending],
        latency_s={
            kind: {"median": round(statistics.median(v), 1), "max": round(max(v), 1)} if v else None
            for kind, v in tally.latencies.items()
        },
        cycles=cycles,
        failures=int(sum(v for k, v in metrics.items() if k.startswith("lakecircle_failures_total{"))),
        daemon_exit=exit_code,
    )
    rss, fds = result["rss_mib"], result["fds"]
    flat = rss["growth"] < args.rss_growth and fds["growth"] <= args.fd_growth
    converged = not result["not_converged"]
    result["verdict"] = ("flat" if flat else "GROWING") + (", all converged" if converged else ", NOT CONVERGED")
    print(
        f"\nchanges: {tally.changes} definition changes, {tally.drifts} drifts; {tally.converged} converged"
        f" ({tally.superseded} superseded before converging), {len(result['not_converged'])} not converged"
    )
    print(f"latency: {result['latency_s']}")
    print(f"daemon: cycles {cycles}, failures {result['failures']}, exit {exit_code}")
    print(
        f"RSS MiB: first {rss['first']}, after warm-up {rss['start']}, end {rss['end']}, max {rss['max']},"
        f" growth {rss['growth']:+}"
    )
    print(
        f"open fds: first {fds['first']}, after warm-up {fds['start']}, end {fds['end']}, max {fds['max']},"
        f" growth {fds['growth']:+}"
    )
    print(f"verdict: {result['verdict']} (flat: RSS growth < {args.rss_growth:g} MiB, fds growth <= {args.fd_growth})")
    for line in result["not_converged"][:20]:
        print(f"  not converged: {line}")
    if args.json:
        print(json.dumps(result, indent=2))
    ok = flat and converged and exit_code == 0
    if ok:
        log_path.unlink()
    else:
        print(f"the daemon's log: {log_path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
