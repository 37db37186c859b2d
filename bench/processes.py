"""The processes of the ``million`` section besides the endpoint: moto's server (SQS) and
``python -m lakecircle daemon``, each its own process, and what the harness reads of them
(the daemon's ``/metrics``, its CPU and memory in ``/proc``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.workload import REGION

LAG_GAUGE = "lakecircle_verification_lag_seconds"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(ready: Any, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(step)
    return False


class Moto:
    """moto's server in a process of its own, for SQS, as the tests start it (over HTTP)."""

    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (logs / "moto.log").open("w")
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)  # noqa: S603
        if not wait_until(self._up, 30):
            self.stop()
            raise RuntimeError(f"moto's server did not start; see {logs / 'moto.log'}")

    def _up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2):  # noqa: S310 -- loopback
                return True
        except OSError:
            return False

    def sqs(self) -> Any:
        import boto3

        return boto3.client(
            "sqs",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Daemon:
    """``python -m lakecircle daemon`` as a process, its metrics and its memory."""

    def __init__(self, env: Mapping[str, str], logs: Path) -> None:
        self.metrics_port = free_port()
        self.log = (logs / "million-daemon.log").open("w")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lakecircle", "daemon"],
            env={**env, "LCC_METRICS_ADDR": f"127.0.0.1:{self.metrics_port}"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics`` by its line's name and labels; empty while it cannot be read."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
        except OSError:
            return {}
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def started_up(self) -> bool:
        """Whether the start-up pass has ended (slices count as cycles too, after it)."""
        return any(
            k.startswith("lakecircle_cycles_total{") and 'trigger="startup"' in k and v > 0
            for k, v in self.metrics().items()
        )

    def lag(self) -> float | None:
        return self.metrics().get(LAG_GAUGE)

    def memory(self) -> dict[str, float]:
        """VmHWM (peak) and VmRSS (now) of the daemon, in MB."""
        found: dict[str, float] = {}
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                field, _, value = line.partition(":")
                if field in ("VmHWM", "VmRSS"):
                    found[field] = int(value.split()[0]) / 1024
        return found

    def cpu(self) -> float:
        """CPU seconds the daemon has used (user and system, from ``/proc/<pid>/stat``)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.log.close()
        return code
