"""The HTTP endpoints over real loopback sockets: /metrics, /healthz, /readyz, nothing else."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from lakecircle.metrics import CONTENT_TYPE, Metrics
from lakecircle.server import Health, serve

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def refuses(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


async def get(url: str, method: str = "GET") -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.request(method, url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def test_health_is_not_ready_until_definitions_loaded_and_a_cycle_finished() -> None:
    clock = Clock()
    health = Health(max_age=1800, clock=clock)
    assert health.ready() == (False, "definitions not loaded yet")

    health.mark_definitions_loaded()
    assert health.ready() == (False, "no cycle finished yet")

    health.mark_cycle_finished()
    assert health.ready() == (True, "ok")


def test_health_goes_stale_after_max_age_and_recovers_with_the_next_cycle() -> None:
    clock = Clock()
    health = Health(max_age=1800, clock=clock)
    health.mark_definitions_loaded()
    health.mark_cycle_finished(clock.now)

    assert health.ready(clock.now + 1800)[0]
    ready, reason = health.ready(clock.now + 1801)
    assert not ready
    assert reason == "last cycle finished 1801s ago, over the 1800s limit"

    clock.now += 5000
    assert not health.ready()[0]
    health.mark_cycle_finished()
    assert health.ready() == (True, "ok")


async def test_metrics_are_served_in_the_text_format() -> None:
    metrics = Metrics()
    metrics.on_request("ListBuckets", "success", 0.02)
    async with serve(metrics, Health(60), "127.0.0.1", 0) as (host, port):
        status, content_type, body = await get(f"http://{host}:{port}/metrics")

    assert status == 200
    assert content_type == CONTENT_TYPE
    assert 'lakecircle_cycles_total{result="success",trigger="poll"} 0.0' in body
    assert 'lakecircle_s3_requests_total{operation="ListBuckets",outcome="success"} 1.0' in body


async def test_healthz_answers_while_the_loop_runs() -> None:
    async with serve(Metrics(), Health(60), "127.0.0.1", 0) as (host, port):
        status, _, body = await get(f"http://{host}:{port}/healthz")

    assert (status, body) == (200, "ok\n")


async def test_readyz_is_503_with_a_reason_until_health_says_ready() -> None:
    clock = Clock()
    health = Health(max_age=60, clock=clock)
    async with serve(Metrics(), health, "127.0.0.1", 0) as (host, port):
        url = f"http://{host}:{port}/readyz"
        before = await get(url)
        health.mark_definitions_loaded()
        health.mark_cycle_finished()
        after = await get(url)
        clock.now += 61
        stale = await get(url)

    assert before[0] == 503
    assert before[2] == "definitions not loaded yet\n"
    assert after[0] == 200
    assert after[2] == "ok\n"
    assert stale[0] == 503
    assert "61s ago" in stale[2]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/other", 404),
        ("GET", "/", 404),
        ("GET", "/metrics/extra", 404),
        ("POST", "/metrics", 405),
        ("PUT", "/readyz", 405),
        ("DELETE", "/healthz", 405),
    ],
)
async def test_only_get_on_the_three_paths_is_served(method: str, path: str, status: int) -> None:
    async with serve(Metrics(), Health(60), "127.0.0.1", 0) as (host, port):
        got, _, _ = await get(f"http://{host}:{port}{path}", method)

    assert got == status


async def test_port_zero_yields_the_port_actually_bound_and_exit_closes_it() -> None:
    async with serve(Metrics(), Health(60), "127.0.0.1", 0) as (host, port):
        assert host == "127.0.0.1"
        assert port > 0
        assert not refuses(host, port)

    assert refuses(host, port)


@pytest.mark.parametrize(("bound", "other"), [("127.0.0.1", "127.0.0.2"), ("127.0.0.2", "127.0.0.1")])
async def test_the_server_listens_on_the_given_host_only(bound: str, other: str) -> None:
    async with serve(Metrics(), Health(60), bound, 0) as (host, port):
        status, _, _ = await get(f"http://{bound}:{port}/healthz")

        assert host == bound
        assert status == 200
        assert refuses(other, port)
