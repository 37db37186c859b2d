"""The HTTP endpoints over real loopback sockets: /metrics, /healthz, /readyz, nothing else;
readiness; and clients that send too slowly or send garbage."""

from __future__ import annotations

import select
import socket
import time

import aiohttp
import anyio
import pytest
import structlog

from lakecircle.service.metrics import CONTENT_TYPE, Metrics
from lakecircle.service.server import STANDBY, Health, host_port, serve

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


# -- hostile clients ------------------------------------------------------------------------

MARKER = b"Zk7Qv9SenderBytes"
"""Bytes a sender puts in its request: they must never reach a log line."""


def exchange(port: int, data: bytes, *, limit: float = 5) -> tuple[bytes, float]:
    """Send ``data``, read until the server closes the connection; (what came back, seconds until it closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        started = time.monotonic()
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received, time.monotonic() - started


def trickle(port: int, data: bytes, every: float, limit: float) -> float:
    """Send ``data`` a byte at a time; seconds until the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        started = time.monotonic()
        for byte in data:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            ready, _, _ = select.select([sock], [], [], every)
            if ready and sock.recv(1) == b"":
                break
        else:
            sock.recv(1)  # everything sent: wait for the close
        return time.monotonic() - started


async def test_a_half_sent_request_is_closed_within_the_head_timeout() -> None:
    async with serve(Metrics(), Health(60), "127.0.0.1", 0, head_timeout=0.5) as (_, port):
        answer, seconds = await anyio.to_thread.run_sync(exchange, port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    assert answer == b""
    assert 0.4 < seconds < 2


async def test_a_request_head_trickled_a_byte_at_a_time_does_not_keep_the_connection() -> None:
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    async with serve(Metrics(), Health(60), "127.0.0.1", 0, head_timeout=0.5) as (_, port):
        seconds = await anyio.to_thread.run_sync(trickle, port, head, 0.05, 10)
    assert 0.4 < seconds < 2


async def test_keep_alive_requests_within_the_head_timeout_are_all_answered() -> None:
    async with (
        serve(Metrics(), Health(60), "127.0.0.1", 0, head_timeout=1) as (host, port),
        aiohttp.ClientSession() as session,
    ):
        statuses = []
        for _ in range(3):
            async with session.get(f"http://{host}:{port}/healthz") as response:
                statuses.append(response.status)
                await response.read()
            await anyio.sleep(0.3)
    assert statuses == [200, 200, 200]


GARBAGE = {
    "not http": b"\x16\x03\x01\x02\x00" + MARKER + b"\r\n\r\n",
    "bad header": b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-" + MARKER + b" no colon\r\n\r\n",
    "bad version": b"GET /metrics HTTP/9." + MARKER + b"\r\n\r\n",
    "header too long": b"GET /metrics HTTP/1.1\r\nX-Long: " + MARKER * 1000 + b"\r\n\r\n",
    "bad length": b"GET /metrics HTTP/1.1\r\nContent-Length: " + MARKER + b"\r\n\r\n",
}


@pytest.mark.parametrize("data", GARBAGE.values(), ids=GARBAGE.keys())
async def test_a_malformed_request_gets_400_and_one_log_line_without_its_bytes(
    data: bytes, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with serve(Metrics(), Health(60), "127.0.0.1", 0) as (_, port):
            answer, _ = await anyio.to_thread.run_sync(exchange, port, data)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"400"
    assert len(logs) == 1, logs
    assert logs[0]["event"] == "http_request_malformed"
    assert logs[0]["peer"].startswith("127.0.0.1:")
    assert logs[0]["status"] == 400
    assert MARKER.decode() not in str(logs)
    assert not caplog.records  # nothing went to the standard logging tree either
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert MARKER.decode() not in out + err


def test_an_ipv6_address_is_written_in_brackets() -> None:
    assert host_port("::1", 9739) == "[::1]:9739"
    assert host_port("127.0.0.1", 9739) == "127.0.0.1:9739"
    assert host_port("localhost", 80) == "localhost:80"


def test_readiness_is_lost_when_s3_stays_out_of_reach_past_the_limit_and_comes_back() -> None:
    clock = Clock()
    health = Health(max_age=1800, clock=clock, outage_limit=90)
    health.mark_definitions_loaded()
    health.mark_cycle_finished()
    health.mark_contact_failed("poll")
    clock.now += 60
    health.mark_contact_failed("definitions")
    clock.now += 30
    assert health.ready() == (True, "ok")  # 90 s: at the limit, not over it
    clock.now += 1
    assert health.ready() == (
        False,
        "S3 out of reach: polls and cycles have failed for 91s, over the 90s limit (last failure at stage definitions)",
    )
    health.mark_contact()
    assert health.ready() == (True, "ok")


def test_one_failed_contact_between_good_ones_never_costs_readiness() -> None:
    clock = Clock()
    health = Health(max_age=1800, clock=clock, outage_limit=90)
    health.mark_definitions_loaded()
    health.mark_cycle_finished()
    for _ in range(10):
        health.mark_contact_failed("poll")
        clock.now += 60
        health.mark_contact()
        clock.now += 60
        assert health.ready()[0]


# -- replicas: standing by while another replica holds the lease -------------------------


def test_a_standby_replica_is_ready_without_definitions_or_a_cycle() -> None:
    health = Health(max_age=1800, clock=Clock())
    health.mark_standby(True)

    assert health.ready() == (True, "standby: another replica holds the lease")
    assert STANDBY == "standby: another replica holds the lease"


def test_a_standby_replica_whose_last_cycle_is_old_stays_ready() -> None:
    clock = Clock()
    health = Health(max_age=1800, clock=clock, outage_limit=90)
    health.mark_definitions_loaded()
    health.mark_cycle_finished()
    health.mark_standby(True)  # it lost the lease, and waits
    clock.now += 10_000

    assert health.ready() == (True, STANDBY)


def test_a_standby_replica_is_not_ready_once_s3_is_out_of_reach_past_the_limit() -> None:
    clock = Clock()
    health = Health(max_age=1800, clock=clock, outage_limit=90)
    health.mark_standby(True)
    health.mark_contact_failed("lease")
    clock.now += 91

    ready, reason = health.ready()
    assert not ready
    assert reason.startswith("S3 out of reach: polls and cycles have failed for 91s")
    health.mark_contact()
    assert health.ready() == (True, STANDBY)


def test_a_replica_that_takes_the_lease_has_max_age_from_then_for_its_first_cycle() -> None:
    clock = Clock()
    health = Health(max_age=1800, clock=clock)
    health.mark_definitions_loaded()
    health.mark_cycle_finished()  # a cycle of an earlier tenure
    health.mark_standby(True)
    clock.now += 5000
    health.mark_standby(False)  # took the lease: its first cycle starts

    assert health.ready() == (True, "took the lease: its first cycle is under way")
    assert health.ready(clock.now + 1800)[0]
    assert health.ready(clock.now + 1801) == (
        False,
        "no cycle finished in the 1801s since this replica took the lease, over the 1800s limit",
    )
    clock.now += 600
    health.mark_cycle_finished()
    assert health.ready() == (True, "ok")
    assert health.ready(clock.now + 1801)[1] == "last cycle finished 1801s ago, over the 1800s limit"


def test_a_replica_that_never_ran_a_cycle_is_ready_while_its_first_after_taking_the_lease_runs() -> None:
    clock = Clock()
    health = Health(max_age=1800, clock=clock)
    health.mark_standby(True)
    health.mark_standby(False)
    assert health.ready() == (True, "took the lease: its first cycle is under way")

    health.mark_definitions_loaded()
    health.mark_cycle_finished()
    assert health.ready() == (True, "ok")


def test_being_told_it_holds_the_lease_again_does_not_restart_the_first_cycles_time() -> None:
    clock = Clock()
    health = Health(max_age=1800, clock=clock)
    health.mark_standby(False)  # never stood by: a lone replica (leases off) is judged as always
    assert health.ready() == (False, "definitions not loaded yet")
    health.mark_standby(True)
    clock.now += 100
    health.mark_standby(False)
    health.mark_standby(False)  # told again: the takeover is still the one just above
    clock.now += 1800
    assert health.ready()[0]
    clock.now += 1
    assert not health.ready()[0]


async def test_readyz_answers_200_standby_while_another_replica_holds_the_lease() -> None:
    health = Health(max_age=60, clock=Clock())
    async with serve(Metrics(), health, "127.0.0.1", 0) as (host, port):
        url = f"http://{host}:{port}/readyz"
        before = await get(url)
        health.mark_standby(True)
        standby = await get(url)

    assert before[0] == 503
    assert standby[0] == 200
    assert standby[2] == "standby: another replica holds the lease\n"
