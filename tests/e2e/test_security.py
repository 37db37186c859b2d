"""Security: secrets stay secret, the right account and bucket owner, a narrow metrics server,
and definitions that are data only.

- Known, unique AWS credentials are set for real ``lakecircle`` processes (sync, plan,
  failing runs and the daemon, at DEBUG, in JSON and in TEXT), and every byte they print
  or serve is searched for them.
- Every bucket-level request carries ``x-amz-expected-bucket-owner`` (asserted at the
  fault proxy, which sees the wire); credentials of another account stop every command
  before it reads a bucket.
- The metrics server binds exactly the address it is given and answers nothing but
  ``/metrics``, ``/healthz`` and ``/readyz``.
- Definition text that looks like code or a template comes back verbatim; a file over
  the size limit is refused by its listed size, never downloaded; deeply nested files
  are refused cheaply.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from lakecircle.app.cli import cli
from lakecircle.core.model import LifecycleConfig, Rule, config_from_response, config_to_request
from lakecircle.core.parse import MAX_FILE_BYTES, parse_file
from lakecircle.service.metrics import Metrics
from lakecircle.service.server import Health, serve
from lakecircle.settings import Settings
from tests.builders import definition, rule
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION, ServerTap
from tests.faultproxy import FaultProxy
from tests.helpers import clear_settings

ENDPOINT = "sec-endpoint"
OTHER_ACCOUNT = "111111111111"

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIALCCLEAKCHECK7Q3Z",
    "AWS_SECRET_ACCESS_KEY": "lcc/SecretKey+MustNotLeak/9f3b2c7e1a5d",
    "AWS_SESSION_TOKEN": "lcc-session-token-must-not-leak-77c1e0d9b2",
}


def live_rules(s3_client: Any, bucket: str) -> tuple[Rule, ...]:
    try:
        return config_from_response(s3_client.get_bucket_lifecycle_configuration(Bucket=bucket)).rules
    except s3_client.exceptions.ClientError:
        return ()


@pytest.fixture
def world(moto: str, s3_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three buckets, their definitions in a directory and under the endpoint; LCC_* for moto, one replica
    (what these tests check is the same with leases on; the replicas' tests hold leases)."""
    s3_client.create_bucket(Bucket=ENDPOINT)
    defs = tmp_path / "defs"
    defs.mkdir()
    for i in range(3):
        bucket = f"sec-bucket-{i}"
        s3_client.create_bucket(Bucket=bucket)
        (defs / f"{bucket}.toml").write_bytes(definition(bucket, rule("expire", prefix="logs/")))
        s3_client.put_object(
            Bucket=ENDPOINT, Key=f"lc/definition/{bucket}.toml", Body=definition(bucket, rule("expire", prefix="logs/"))
        )
    clear_settings(
        monkeypatch, LCC_ENDPOINT=f"s3://{ENDPOINT}/lc/", LCC_AWS_ACCOUNT=MOTO_ACCOUNT, LCC_AWS_REGION=MOTO_REGION
    )
    return defs


# -- credentials --------------------------------------------------------------------------


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    done = subprocess.run(  # noqa: S603 -- our own interpreter and module
        [sys.executable, "-m", "lakecircle", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


@contextlib.contextmanager
def daemon(env: dict[str, str], *args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """``lakecircle daemon`` with its output collected line by line; killed at the end."""
    proc = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
        [sys.executable, "-m", "lakecircle", "daemon", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        lines.extend(proc.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        reader.join(10)
        if proc.stdout is not None:
            proc.stdout.close()


def wait_for(lines: list[str], pattern: str, proc: subprocess.Popen[str], timeout: float = 30) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            found = re.search(pattern, line)
            if found:
                return found
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} within {timeout}s:\n{''.join(lines[-30:])}")


def get(url: str, path: str, method: str = "GET") -> tuple[int, bytes]:
    host, _, port = url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("fmt", ["JSON", "TEXT"])
def test_credentials_never_reach_a_log_line_or_a_metric(
    fmt: str, world: Path, tap: ServerTap, s3_client: Any, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_SESSION")}
    env.update(SECRETS, LCC_APP_LEVEL="DEBUG", LCC_LOG_FORMAT=fmt, LCC_RETRY_BASE_DELAY="0.01")
    seen: dict[str, str] = {}

    code, seen["sync"] = run(["sync", "--definitions", str(world)], env)
    assert code == 0, seen["sync"]
    code, seen["plan"] = run(["plan", "--definitions", str(world)], env)
    assert code == 0, seen["plan"]
    code, seen["plan json"] = run(["plan", "--definitions", str(world), "--output", "json"], env)
    assert code == 0, seen["plan json"]

    # Failing runs: a bucket that refuses LakeCircle, and credentials of another account.
    (world / "sec-bucket-1.toml").write_bytes(definition("sec-bucket-1", rule("changed", 45, "logs/")))
    tap.deny.add("sec-bucket-1")
    code, seen["denied sync"] = run(["sync", "--definitions", str(world)], env)
    assert code == 1, seen["denied sync"]
    assert "AccessDenied" in seen["denied sync"]
    tap.deny.clear()
    code, seen["wrong account"] = run(["sync", "--definitions", str(world)], {**env, "LCC_AWS_ACCOUNT": OTHER_ACCOUNT})
    assert code == 1, seen["wrong account"]

    # The daemon: its log lines, and everything its server answers.
    daemon_env = {**env, "LCC_METRICS_ADDR": "127.0.0.1:0", "LCC_POLL_INTERVAL": "3600"}
    with daemon(daemon_env, "--definitions", str(world)) as (proc, lines):
        url = wait_for(lines, r"(http://127\.0\.0\.1:\d+)/metrics", proc).group(1)
        wait_for(lines, r"cycle_finished", proc)
        for path in ("/metrics", "/healthz", "/readyz", "/", "/debug"):
            status, body = get(url, path)
            seen[f"GET {path}"] = f"{status} {body.decode(errors='replace')}"
        assert seen["GET /metrics"].startswith("200 "), seen["GET /metrics"]
        assert "lakecircle_s3_requests_total" in seen["GET /metrics"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    seen["daemon"] = "".join(lines)

    # What LakeCircle wrote under the endpoint is output too.
    objects = s3_client.list_objects_v2(Bucket=ENDPOINT, Prefix="lc/").get("Contents", [])
    seen["endpoint records"] = "".join(
        s3_client.get_object(Bucket=ENDPOINT, Key=o["Key"])["Body"].read().decode() for o in objects
    )
    assert "history/" in " ".join(o["Key"] for o in objects)

    for name, text in seen.items():
        assert text, f"{name}: no output to search"
        for variable, secret in SECRETS.items():
            assert secret not in text, f"{variable} leaked into {name}"
    assert "bucket_reconciled" in seen["sync"]  # DEBUG and the format were honoured
    assert ('"level": "debug"' in seen["daemon"]) if fmt == "JSON" else ("level=debug" in seen["daemon"])


# -- the right account, the right bucket owner ---------------------------------------------


def test_every_bucket_level_request_carries_the_expected_bucket_owner(
    world: Path, s3_client: Any, moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s3_client.create_bucket(Bucket="sec-emptied")
    s3_client.put_bucket_lifecycle_configuration(
        Bucket="sec-emptied",
        **config_to_request(
            LifecycleConfig(
                (Rule.model_validate({"ID": "x", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}),)
            )
        ),
    )
    (world / "sec-emptied.toml").write_text('BucketName = "sec-emptied"\n[LifecycleConfiguration]\nRules = []\n')
    with FaultProxy(moto) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        runner = CliRunner()
        for args in (
            ["sync", "--definitions", str(world)],  # PUT three, DELETE one
            ["plan"],  # the definitions under the endpoint
            ["export", "--output", str(tmp_path / "exported")],
            ["rollback", "sec-bucket-0"],
            ["history", "sec-bucket-0"],
        ):
            result = runner.invoke(cli, args)
            assert result.exit_code in (0, 2), f"{args}: {result.output}"
        events = list(proxy.events)
    assert not proxy.errors, proxy.errors
    operations = {e.operation for e in events}
    assert {"PutBucketLifecycleConfiguration", "DeleteBucketLifecycle", "GetBucketLifecycleConfiguration"} <= operations
    bucket_level = [e for e in events if e.bucket is not None]
    assert len(bucket_level) > 20
    missing = [(e.operation, e.bucket, e.owner) for e in bucket_level if e.owner != MOTO_ACCOUNT]
    assert missing == [], missing


@pytest.mark.parametrize("command", [["sync"], ["plan"], ["daemon"]])
def test_credentials_of_another_account_stop_every_command_before_it_reads_a_bucket(
    command: list[str], world: Path, tap: ServerTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LCC_AWS_ACCOUNT", OTHER_ACCOUNT)
    monkeypatch.setenv("LCC_METRICS_ADDR", "127.0.0.1:0")
    tap.reset()
    result = CliRunner().invoke(cli, [*command, "--definitions", str(world)])
    assert result.exit_code == 1, result.output
    assert f"the credentials belong to account {MOTO_ACCOUNT}" in result.output
    assert f"LCC_AWS_ACCOUNT is {OTHER_ACCOUNT}" in result.output
    assert "refusing to run" in result.output
    touched = {key: n for key, n in tap.counts.items() if key[1]}  # any request naming a bucket
    assert touched == {}, touched
    assert sum(n for (method, _, _), n in tap.counts.items() if method == "GET") == 0  # not even ListBuckets


# -- the metrics server ---------------------------------------------------------------------


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine other than loopback (no packet is sent)."""
    for target in ("198.51.100.1", "10.255.255.254", "192.168.255.254"):  # routing only, never reached
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))
            except OSError:
                continue
            address = str(probe.getsockname()[0])
        if not address.startswith("127.") and address != "0.0.0.0":  # noqa: S104
            return address
    return None


def connects(host: str, port: int) -> bool:
    """Whether ``/healthz`` answers at host:port (a whole request, so the server closes its side too)."""
    connection = http.client.HTTPConnection(host, port, timeout=3)
    try:
        connection.request("GET", "/healthz", headers={"Connection": "close"})
        return connection.getresponse().read() == b"ok\n"
    except OSError:
        return False
    finally:
        connection.close()


def test_the_metrics_address_is_loopback_unless_set() -> None:
    assert Settings.model_fields["metrics_addr"].default == "127.0.0.1:9739"
    assert Settings(metrics_addr="127.0.0.1:9739").metrics_host_port == ("127.0.0.1", 9739)
    assert Settings(metrics_addr="0.0.0.0:9739").metrics_host_port == ("0.0.0.0", 9739)  # noqa: S104


@pytest.mark.anyio
@pytest.mark.parametrize(("host", "reachable_from_outside"), [("127.0.0.1", False), ("0.0.0.0", True)])  # noqa: S104
async def test_the_metrics_server_binds_exactly_where_it_is_told(host: str, reachable_from_outside: bool) -> None:
    outside = non_loopback_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try from")
    async with serve(Metrics(), Health(max_age=60), host, 0) as (bound_host, port):
        assert bound_host == host
        assert await anyio.to_thread.run_sync(connects, "127.0.0.1", port)
        assert await anyio.to_thread.run_sync(connects, outside, port) is reachable_from_outside


def test_the_daemon_listens_on_loopback_only_by_its_settings(world: Path) -> None:
    outside = non_loopback_address()
    env = {**os.environ, "LCC_METRICS_ADDR": "127.0.0.1:0", "LCC_POLL_INTERVAL": "3600", "LCC_LOG_FORMAT": "JSON"}
    with daemon(env, "--definitions", str(world)) as (proc, lines):
        port = int(wait_for(lines, r"http://127\.0\.0\.1:(\d+)/metrics", proc).group(1))
        wait_for(lines, r"cycle_finished", proc)
        assert connects("127.0.0.1", port)
        if outside is not None:
            assert not connects(outside, port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


@pytest.mark.anyio
async def test_the_metrics_server_answers_nothing_but_metrics_and_health() -> None:
    health = Health(max_age=60)
    async with serve(Metrics(), health, "127.0.0.1", 0) as (_, port):
        url = f"http://127.0.0.1:{port}"
        probes = {
            ("GET", "/metrics"): 200,
            ("HEAD", "/metrics"): 200,
            ("GET", "/healthz"): 200,
            ("GET", "/readyz"): 503,  # no cycle yet
            ("GET", "/"): 404,
            ("GET", "/metrics/"): 404,
            ("GET", "/metricsz"): 404,
            ("GET", "/debug/pprof"): 404,
            ("GET", "/admin"): 404,
            ("GET", "/../etc/passwd"): 404,
            ("GET", "/%2e%2e/%2e%2e/etc/passwd"): 404,
            ("GET", "/static/../metrics"): 404,
            ("POST", "/metrics"): 405,
            ("PUT", "/healthz"): 405,
            ("DELETE", "/readyz"): 405,
            ("POST", "/"): 404,
        }
        answers = {}
        for method, path in probes:
            status, _body = await anyio.to_thread.run_sync(get, url, path, method)
            answers[(method, path)] = status
    assert answers == probes


def test_the_daemon_logs_a_malformed_request_as_one_json_line_without_its_bytes(world: Path) -> None:
    marker = b"Pq4SenderSecretBytes"
    env = {**os.environ, "LCC_METRICS_ADDR": "127.0.0.1:0", "LCC_POLL_INTERVAL": "3600", "LCC_LOG_FORMAT": "JSON"}
    with daemon(env, "--definitions", str(world)) as (proc, lines):
        port = int(wait_for(lines, r"http://127\.0\.0\.1:(\d+)/metrics", proc).group(1))
        wait_for(lines, r"cycle_finished", proc)
        for data in (b"GET / HTTP/1.1\r\nX-" + marker + b" no colon\r\n\r\n", b"\x16\x03\x01" + marker + b"\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(data)
                assert sock.recv(64).startswith(b"HTTP/1.0 400 ")
        deadline = time.monotonic() + 10
        while sum("http_request_malformed" in line for line in list(lines)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    malformed = [json.loads(line) for line in lines if "http_request_malformed" in line]
    assert [(e["reason"], e["status"]) for e in malformed] == [("BadHttpMessage", 400), ("BadHttpMethod", 400)]
    assert all(line.startswith("{") for line in lines), "".join(lines)  # one JSON object a line, nothing else
    assert marker.decode() not in "".join(lines)


# -- definitions are data -------------------------------------------------------------------

LOOKS_LIKE_CODE = {
    "template": "{{7*7}}",
    "python": "__import__('os').system('touch MARKER')",
    "shell": "$(touch MARKER)`touch MARKER`",
    "format": "${HOME}%(user)s{0.__class__}",
}


def test_definition_text_that_looks_like_code_round_trips_verbatim(
    world: Path, s3_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "MARKER"
    s3_client.create_bucket(Bucket="sec-data")
    rules = "".join(
        "[[LifecycleConfiguration.Rules]]\n"
        f'ID = {json.dumps(name + ":" + text)}\nStatus = "Enabled"\n'
        f"Filter = {{ Prefix = {json.dumps(text + '/')} }}\nExpiration = {{ Days = 30 }}\n"
        for name, text in LOOKS_LIKE_CODE.items()
    )
    (world / "data.toml").write_text(f'BucketName = "sec-data"\n{rules}')
    runner = CliRunner()
    planned = runner.invoke(cli, ["plan", "--definitions", str(world)])
    as_json = runner.invoke(cli, ["plan", "--definitions", str(world), "--output", "json"])
    synced = runner.invoke(cli, ["sync", "--definitions", str(world)])
    assert synced.exit_code == 0, synced.output
    exported = runner.invoke(cli, ["export", "--bucket", "sec-data", "--output", str(tmp_path / "out")])
    assert exported.exit_code == 0, exported.output

    live = {r.id: r.filter.prefix if r.filter else None for r in live_rules(s3_client, "sec-data")}
    assert live == {f"{name}:{text}": f"{text}/" for name, text in LOOKS_LIKE_CODE.items()}
    (written,) = (tmp_path / "out").glob("*.toml")
    document = tomllib.loads(written.read_text())
    ids = {r["ID"] for r in document["LifecycleConfiguration"]["Rules"]}
    assert ids == {f"{name}:{text}" for name, text in LOOKS_LIKE_CODE.items()}
    plan_ids = {r["ID"] for b in json.loads(as_json.stdout)["buckets"] for r in b["added"]}
    assert {f"{name}:{text}" for name, text in LOOKS_LIKE_CODE.items()} <= plan_ids
    for text in LOOKS_LIKE_CODE.values():
        assert text in planned.output
    assert '"49/"' not in planned.stdout  # the template was not rendered
    assert not marker.exists()


def test_a_definition_over_the_limit_is_refused_by_its_listed_size_and_never_downloaded(
    world: Path, s3_client: Any, moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    big_key = "lc/definition/huge.toml"
    s3_client.put_object(Bucket=ENDPOINT, Key=big_key, Body=b"#" * (2 * MAX_FILE_BYTES))
    with FaultProxy(moto) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        result = CliRunner().invoke(cli, ["plan"])
        events = list(proxy.events)
    assert not proxy.errors, proxy.errors
    fetched = [e.key for e in events if e.operation == "GetObject"]
    assert fetched, "the other definitions were not read either"
    assert big_key not in fetched
    assert f"unreadable: {big_key}: file is 2,097,152 bytes, over the 1 MiB limit" in result.output
    assert "sec-bucket-0" in result.output  # the other definitions were planned


def test_a_huge_local_file_is_refused_unread(world: Path, tmp_path: Path) -> None:
    huge = world / "huge.toml"
    with huge.open("wb") as handle:  # 64 MiB, sparse: costs no disk
        handle.truncate(64 * MAX_FILE_BYTES)
    tracemalloc.start()
    try:
        result = CliRunner().invoke(cli, ["validate", str(world)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 1
    (line,) = [line for line in result.output.splitlines() if line.startswith(f"{huge}: -: -: -: ")]
    assert "over the 1 MiB limit" in line
    assert peak < 32 * MAX_FILE_BYTES, f"peak {peak:,} bytes while refusing a 64 MiB file"


@pytest.mark.parametrize(
    "text",
    [
        'BucketName = "b"\nx = ' + "[" * (MAX_FILE_BYTES - 40),
        'BucketName = "b"\nx = ' + "{ a = " * ((MAX_FILE_BYTES - 40) // 6),
    ],
    ids=["arrays", "inline tables"],
)
def test_a_deeply_nested_definition_is_refused_quickly_and_cheaply(text: str) -> None:
    tracemalloc.start()
    began = time.perf_counter()
    try:
        parsed = parse_file("deep.toml", text.encode())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - began
    assert not parsed.readable
    assert "nested too deeply" in str(parsed.problems[0])
    assert elapsed < 2, elapsed
    assert peak < 16 * MAX_FILE_BYTES, peak


DEEP_DOTTED_KEY = (
    "import sys; from lakecircle.core.parse import parse_file; parse_file('d.toml', sys.stdin.buffer.read())"
)


def test_a_long_dotted_key_is_refused_without_burning_the_cpu() -> None:
    # 40,000 dotted parts (80 KB) keep tomllib busy for half a minute (24,000: 7 s;
    # 48,000: 40 s: quadratic), and a file under the 1 MiB limit can hold 500,000. The
    # loader parses on the event loop, so the daemon would stop answering /healthz.
    # Bounded here by a subprocess killed after 2 s.
    data = b'BucketName = "b"\n' + b"a" + b".a" * 40_000 + b" = 1\n"
    try:
        subprocess.run(  # noqa: S603 -- our own interpreter
            [sys.executable, "-c", DEEP_DOTTED_KEY], input=data, timeout=2, check=True, capture_output=True
        )
    except subprocess.TimeoutExpired:
        pytest.fail("parsing an 80 KB definition took more than 2 s")
