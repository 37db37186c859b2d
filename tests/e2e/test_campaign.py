"""The campaign of issue 13: the real command line and daemon against a hostile world.

Every case runs ``python -m lakecircle`` as a subprocess, as a user or a container does,
through the fault-injecting proxy (:mod:`tests.faultproxy`) in front of moto's server:
listings that end early or loop, definition bodies cut short or replaced, files and
local entries that cannot be read, records that are not JSON, a removal guard pushed
past its limit, signals at each phase of start-up and of a cycle, settings no user
means, and an S3 outage. Each case asserts three things a user relies on:

- what S3 holds afterwards, read from moto directly (not through the proxy): nothing
  already correct is removed, nothing is half-applied;
- the exit code;
- that nothing the user sees shows a Python traceback, a repr of internals or a secret
  (the AWS secret key and session token of every run are recognisable canaries, and the
  settings cases plant one more in ``LCC_ACTION_PARAMS`` and elsewhere).

Where the issue does not say what a message reads, a case asserts its essentials: the
file, key, bucket or setting is named. moto runs once per session and is emptied before
each case; one proxy serves the module.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import definition
from tests.conftest import MOTO_REGION, reset_moto
from tests.faultproxy import ANY, LIFECYCLE_OPERATIONS, LOOP_TOKEN, Fault, FaultProxy, replaced
from tests.helpers import (
    SECRET,
    DaemonProcess,
    Promises,
    Rules,
    Run,
    assert_clean,
    cli_env,
    holdings,
    http_get,
    leaks,
    object_keys,
    pictured,
    plain_client,
    put_definitions,
    put_rules,
    rules_of,
    run_cli,
)

ENDPOINT = "camp-endpoint"
PREFIX = "lc/"
URI = f"s3://{ENDPOINT}/{PREFIX}"
DEFINITIONS_URI = f"{URI}definition/"

WRITES = LIFECYCLE_OPERATIONS - {"GetBucketLifecycleConfiguration"}


# -- the proxy, shared by the module ----------------------------------------------------


@pytest.fixture(scope="module")
def shared_proxy(moto_server: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_server) as started:
        yield started
    assert not started.errors, started.errors


@pytest.fixture
def proxy(shared_proxy: FaultProxy, moto: str) -> Iterator[FaultProxy]:
    """The module's proxy in front of a freshly emptied moto, forwarding everything."""
    shared_proxy.reset()
    shared_proxy.delay_seconds = 1.0
    shared_proxy.stall_seconds = 5.0
    shared_proxy.list_page_keys = 1
    shared_proxy.drop_suffixes = ()
    yield shared_proxy
    shared_proxy.drop_connections()
    assert not shared_proxy.errors, shared_proxy.errors


@pytest.fixture
def env(proxy: FaultProxy, tmp_path: Path) -> dict[str, str]:
    """A run's environment: the SDK pointed at the proxy, the endpoint set, fake secrets."""
    return cli_env(proxy.url, tmp_path / "home", LCC_ENDPOINT=URI)


def json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def writes_seen(proxy: FaultProxy) -> list[str]:
    """The lifecycle writes (PUT, DELETE) that went through the proxy, as "operation bucket"."""
    return [f"{e.operation} {e.bucket}" for e in proxy.events if e.operation in WRITES]


# -- the picture: two buckets, three definition files -------------------------------------
#
# ALPHA is defined by two files and already holds what they say; BETA holds a rule to
# change and a stale rule, and its file adds one. When alpha-b.toml cannot be read, the
# picture is partial: BETA's addition and change still go, BETA's stale rule and
# ALPHA's rules from alpha-b.toml must stay.

ALPHA, BETA = "camp-alpha", "camp-beta"
BAD = "alpha-b.toml"
FILES = {
    "alpha-a.toml": definition(ALPHA, *pictured({"a1": 30})),
    BAD: definition(ALPHA, *pictured({"b1": 31, "b2": 32})),
    "beta.toml": definition(BETA, *pictured({"keep": 40, "new": 50})),
}
BEFORE: dict[str, Rules] = {ALPHA: {"a1": 30, "b1": 31, "b2": 32}, BETA: {"keep": 30, "old": 20}}
PARTIAL: dict[str, Rules] = {ALPHA: BEFORE[ALPHA], BETA: {"keep": 40, "new": 50, "old": 20}}
"""After a sync with alpha-b.toml unreadable: additions and changes applied, no removal."""


def arrange_picture(s3: Any, files: dict[str, bytes] | None = None) -> None:
    for bucket, rules in BEFORE.items():
        put_rules(s3, bucket, rules)
    put_definitions(s3, ENDPOINT, PREFIX, FILES if files is None else files)


def bad_key() -> str:
    return f"{PREFIX}definition/{BAD}"


# -- listings that cannot be followed to their end ---------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault.LIST_NO_TOKEN, Fault.LIST_LOOP, Fault.LIST_DROP],
    ids=["truncated-without-token", "looping", "thinned-below-its-key-count"],
)
def test_a_definition_listing_that_cannot_be_followed_to_its_end_fails_the_sync_and_writes_nothing(
    fault: Fault, proxy: FaultProxy, env: dict[str, str], s3_client: Any
) -> None:
    arrange_picture(s3_client)
    # One key a page: alpha-b.toml and beta.toml never seen; or (thinned) one page without
    # every other key, its KeyCount still counting them.
    proxy.force("ListObjectsV2", ENDPOINT, fault)
    run = run_cli(env, "sync")
    with Promises(run) as p:
        p.equal(holdings(s3_client, BEFORE), BEFORE, "S3 afterwards")
        p.equal(writes_seen(proxy), [], "lifecycle writes")
        p.exit_code(1)
        p.names(DEFINITIONS_URI, "the listing that failed")
        p.clean()


# -- definition bodies cut short or replaced on the way -----------------------------------


def _padded(text: bytes, length: int) -> bytes:
    """``text`` made exactly ``length`` bytes long with a trailing TOML comment."""
    assert len(text) + 2 <= length
    return text + b"#" + b" " * (length - len(text) - 2) + b"\n"


def _cut_short(proxy: FaultProxy, moto: str) -> None:
    # Content-Length honest, half the body, then the connection closed: on every attempt.
    proxy.force("GetObject", ENDPOINT, Fault.TRUNCATE, key=bad_key())


def _other_bytes(proxy: FaultProxy, moto: str) -> None:
    # The same length, every byte changed; the server's checksum headers pass as they were.
    proxy.force("GetObject", ENDPOINT, Fault.REPLACE, key=bad_key())


def _other_toml(proxy: FaultProxy, moto: str) -> None:
    # Another valid TOML of the same length, naming ALPHA without b2. The object is
    # uploaded without a checksum (as consoles and older tools do): only its ETag tells.
    put_definitions(plain_client(moto), ENDPOINT, PREFIX, {BAD: FILES[BAD]})
    impostor = _padded(definition(ALPHA, *pictured({"b1": 31})), len(FILES[BAD]))
    proxy.force("GetObject", ENDPOINT, impostor, key=bad_key())


BODY_FAULTS: dict[str, Callable[[FaultProxy, str], None]] = {
    "cut-short": _cut_short,
    "replaced-by-other-bytes": _other_bytes,
    "replaced-by-valid-toml": _other_toml,
}


@pytest.mark.parametrize("name", BODY_FAULTS)
def test_a_definition_body_cut_short_or_replaced_removes_nothing_and_names_the_file(
    name: str, proxy: FaultProxy, env: dict[str, str], s3_client: Any, moto: str
) -> None:
    arrange_picture(s3_client)
    BODY_FAULTS[name](proxy, moto)
    run = run_cli(env, "sync")
    with Promises(run) as p:
        p.equal(holdings(s3_client, BEFORE), PARTIAL, "S3 afterwards")
        p.exit_code(1)
        p.names(BAD)
        p.clean()


# -- a definition file that cannot be read -----------------------------------------------

OVER_1_MIB = FILES[BAD] + b"# " + b"x" * (1 << 20) + b"\n"

UNREADABLE_FILES: dict[str, tuple[bytes, Fault | None]] = {
    "syntax-error": (f'BucketName = "{ALPHA}"\n[[LifecycleConfiguration.Rules]\nID = "b1"\n'.encode(), None),
    "empty": (b"", None),
    "not-utf8": (b"# \xff\xfe caf\xe9\n" + FILES[BAD], None),
    "over-1-mib": (OVER_1_MIB, None),
    "get-refused": (FILES[BAD], Fault.DENIED),
}


@pytest.mark.parametrize("command", ["sync", "plan"])
@pytest.mark.parametrize("name", UNREADABLE_FILES)
def test_an_unreadable_definition_file_fails_sync_and_plan_by_name_and_removes_nothing(
    name: str, command: str, proxy: FaultProxy, env: dict[str, str], s3_client: Any
) -> None:
    body, fault = UNREADABLE_FILES[name]
    arrange_picture(s3_client, {**FILES, BAD: body})
    if fault is not None:
        proxy.force("GetObject", ENDPOINT, fault, key=bad_key())
    run = run_cli(env, "sync") if command == "sync" else run_cli(env, "plan", "--output", "json")
    with Promises(run) as p:
        if command == "sync":
            p.equal(holdings(s3_client, BEFORE), PARTIAL, "S3 afterwards")
        else:
            p.equal(holdings(s3_client, BEFORE), BEFORE, "S3 afterwards")
            p.equal(writes_seen(proxy), [], "lifecycle writes")
            p.check(BAD in json.dumps(json_or_none(run.stdout)), f"the JSON plan does not name {BAD}")
        p.exit_code(1)
        p.names(BAD)
        p.clean()


# -- local entries that look like definitions but cannot be read ------------------------


def _dangling(path: Path) -> None:
    path.symlink_to(path.with_name("gone.toml"))


def _loop(path: Path) -> None:
    path.symlink_to(path.name)


def _directory(path: Path) -> None:
    path.mkdir()


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))  # the file stays after the socket is closed


LOCAL_ENTRIES: dict[str, Callable[[Path], None]] = {
    "dangling-symlink": _dangling,
    "symlink-loop": _loop,
    "directory": _directory,
    "fifo": _fifo,
    "socket": _socket,
}


@contextmanager
def short_directory() -> Iterator[Path]:
    """A directory with a short path (a socket's path must fit in 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="lcc-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("command", ["sync", "plan"])
@pytest.mark.parametrize("kind", LOCAL_ENTRIES)
def test_an_unreadable_local_entry_fails_sync_and_plan_by_name_and_removes_nothing(
    kind: str, command: str, proxy: FaultProxy, env: dict[str, str], s3_client: Any
) -> None:
    arrange_picture(s3_client, {})
    with short_directory() as directory:
        for name, body in FILES.items():
            if name != BAD:
                (directory / name).write_bytes(body)
        LOCAL_ENTRIES[kind](directory / BAD)
        run = run_cli(env, command, "--definitions", str(directory), timeout=30)
    with Promises(run) as p:
        p.equal(holdings(s3_client, BEFORE), PARTIAL if command == "sync" else BEFORE, "S3 afterwards")
        p.exit_code(1)
        p.names(BAD)
        p.clean()


# -- the removal guard is a stop ---------------------------------------------------------

GUARDED = ("camp-guard-1", "camp-guard-2", "camp-guard-3")


def in_brief(configs: dict[str, dict[str, int]]) -> dict[str, str]:
    """Each bucket's rules with the stale ones (``sNNN``) counted, not listed."""
    out = {}
    for bucket, rules in configs.items():
        stale = sum(1 for i in rules if i.startswith("s"))
        named = ", ".join(f"{i}={d}" for i, d in sorted(rules.items()) if not i.startswith("s"))
        out[bucket] = f"{named} + {stale} stale"
    return out


def test_removals_past_the_limit_are_held_back_in_every_sync_until_a_person_allows_them(
    proxy: FaultProxy, env: dict[str, str], s3_client: Any
) -> None:
    # 150 stale rules over two buckets; each of them also gets a change and an addition,
    # and a third bucket only an addition.
    stale = [{f"s{i:03d}": 10 for i in range(j, j + 75)} for j in (0, 75)]
    put_rules(s3_client, GUARDED[0], {"keep": 30, **stale[0]})
    put_rules(s3_client, GUARDED[1], {"keep": 30, **stale[1]})
    put_rules(s3_client, GUARDED[2], {})
    wanted = {
        GUARDED[0]: {"keep": 40, "add1": 50},
        GUARDED[1]: {"keep": 40, "add2": 50},
        GUARDED[2]: {"new": 60},
    }
    put_definitions(s3_client, ENDPOINT, PREFIX, {f"{b}.toml": definition(b, *pictured(r)) for b, r in wanted.items()})
    held = {
        GUARDED[0]: {**wanted[GUARDED[0]], **stale[0]},
        GUARDED[1]: {**wanted[GUARDED[1]], **stale[1]},
        GUARDED[2]: wanted[GUARDED[2]],
    }
    env["LCC_MAX_REMOVALS"] = "100"

    for attempt in ("first", "second"):
        run = run_cli(env, "sync")
        with Promises(run) as p:
            p.equal(in_brief(holdings(s3_client, GUARDED)), in_brief(held), f"S3 after the {attempt} plain sync")
            p.exit_code(0)
            p.names("150", "the count of held-back removals")
            p.clean()

    allowed = run_cli(env, "sync", "--allow-mass-removal")
    with Promises(allowed) as p:
        p.equal(in_brief(holdings(s3_client, GUARDED)), in_brief(wanted), "S3 after sync --allow-mass-removal")
        p.exit_code(0)
        p.clean()


# -- stored records that cannot be read ----------------------------------------------------

RECORDED = "camp-recorded"
RECORDED_BEFORE: dict[str, int] = {"old": 20}
RECORDED_AFTER: dict[str, int] = {"r1": 30}


@dataclass(frozen=True)
class Recorded:
    """The endpoint's objects after a real sync changed RECORDED: records as LakeCircle writes them."""

    objects: dict[str, bytes]

    @property
    def history_key(self) -> str:
        return next(k for k in self.objects if k.startswith(f"{PREFIX}history/")).removeprefix(PREFIX)


@pytest.fixture(scope="module")
def recorded(moto_server: str, shared_proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """One real sync, once for the module: its history and current/ records."""
    reset_moto(moto_server)
    s3 = boto3.client(
        "s3",
        region_name=MOTO_REGION,
        endpoint_url=moto_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    put_rules(s3, RECORDED, RECORDED_BEFORE)
    put_definitions(s3, ENDPOINT, PREFIX, {"recorded.toml": definition(RECORDED, *pictured(RECORDED_AFTER))})
    shared_proxy.reset()
    run = run_cli(cli_env(shared_proxy.url, tmp_path_factory.mktemp("home"), LCC_ENDPOINT=URI), "sync")
    assert run.code == 0, str(run)
    assert rules_of(s3, RECORDED) == RECORDED_AFTER, str(run)
    keys = object_keys(s3, ENDPOINT, PREFIX)
    objects = {key: s3.get_object(Bucket=ENDPOINT, Key=key)["Body"].read() for key in keys}
    assert any(k.startswith(f"{PREFIX}history/") for k in objects), keys
    reset_moto(moto_server)
    return Recorded(objects)


def restore(s3: Any, recorded: Recorded) -> None:
    put_rules(s3, RECORDED, RECORDED_AFTER)
    s3.create_bucket(Bucket=ENDPOINT)
    for key, body in recorded.objects.items():
        s3.put_object(Bucket=ENDPOINT, Key=key, Body=body)


NOT_A_RECORD = f"history/2020/01/01/000000.000000Z-{RECORDED}.json"
NOT_THE_MODEL = {"Rules": [{"ID": "x", "Status": "Sometimes"}]}


def current_with_previous(previous: object) -> Callable[[Recorded], bytes]:
    """The recorded current/ record with another configuration as the one before the write."""

    def body(recorded: Recorded) -> bytes:
        document = json.loads(recorded.objects[f"{PREFIX}current/{RECORDED}.json"])
        return json.dumps({**document, "previous": previous}).encode()

    return body


@dataclass(frozen=True)
class RecordCase:
    key: str
    """The bad record, relative to the endpoint."""
    body: bytes | Callable[[Recorded], bytes] | None
    """What it is overwritten with (None: left as it is), or how to make it from the records."""
    args: tuple[str, ...]
    live: Rules | None = None
    """What the bucket holds (None: RECORDED_AFTER) before the command, and must hold after it."""
    ownership: str | None = None
    """The bucket's ownership in its definition."""
    exit_code: int = 1


RECORD_CASES = {
    "history-lists-past-a-record-that-is-not-json": RecordCase(NOT_A_RECORD, b"{not json", ("history", RECORDED)),
    "rollback-to-a-record-that-is-not-json": RecordCase(
        NOT_A_RECORD, b"\x00\xff{", ("rollback", RECORDED, "--to", NOT_A_RECORD)
    ),
    "rollback-to-a-key-that-is-not-a-change-record": RecordCase(
        f"current/{RECORDED}.json", None, ("rollback", RECORDED, "--to", f"current/{RECORDED}.json")
    ),
    # rollback's target is what current/ says the bucket held before LakeCircle's last write.
    "rollback-from-a-current-record-that-is-not-json": RecordCase(
        f"current/{RECORDED}.json", b"current, but not JSON", ("rollback", RECORDED)
    ),
    "rollback-from-a-previous-configuration-that-is-not-the-model": RecordCase(
        f"current/{RECORDED}.json", current_with_previous(NOT_THE_MODEL), ("rollback", RECORDED)
    ),
    # A shared bucket: another tool added "theirs" after LakeCircle's write. Which rules
    # are LakeCircle's own is known from current/ only: unreadable, nothing may be removed.
    # The bucket is not failed (nothing was lost): the sync says so in one line and exits 0.
    "sync-of-a-shared-bucket-past-a-current-record-that-is-not-json": RecordCase(
        f"current/{RECORDED}.json",
        b"[[[",
        ("sync",),
        live={**RECORDED_AFTER, "theirs": 10},
        ownership="shared",
        exit_code=0,
    ),
}


@pytest.mark.parametrize("name", RECORD_CASES)
def test_a_stored_record_that_cannot_be_read_is_one_line_naming_its_key_and_changes_nothing(
    name: str, recorded: Recorded, proxy: FaultProxy, env: dict[str, str], s3_client: Any
) -> None:
    case = RECORD_CASES[name]
    restore(s3_client, recorded)
    live = RECORDED_AFTER if case.live is None else case.live
    put_rules(s3_client, RECORDED, live)
    if case.ownership is not None:
        shared = definition(RECORDED, *pictured(RECORDED_AFTER), Ownership=case.ownership)
        put_definitions(s3_client, ENDPOINT, PREFIX, {"recorded.toml": shared})
    if case.body is not None:
        body = case.body if isinstance(case.body, bytes) else case.body(recorded)
        s3_client.put_object(Bucket=ENDPOINT, Key=PREFIX + case.key, Body=body)
    run = run_cli(env, *case.args)
    with Promises(run) as p:
        p.equal(rules_of(s3_client, RECORDED), live, "S3 afterwards")
        p.equal(writes_seen(proxy), [], "lifecycle writes")
        p.exit_code(case.exit_code)
        p.names(case.key)
        for stream in (run.stdout, run.stderr):
            naming = [line for line in stream.splitlines() if case.key in line]
            p.check(len(naming) <= 1, f"{len(naming)} lines about {case.key} in one output, not one")
        if case.args[0] == "history":
            p.check(recorded.history_key in run.stdout, "the readable record is no longer listed")
        p.clean()


# -- signals at each phase of start-up and of a cycle ------------------------------------

SIGNALLED = tuple(f"camp-sig-{i}" for i in range(4))
SIG_OLD: dict[str, int] = {"o1": 20}
SIG_NEW: dict[str, int] = {"n1": 40, "n2": 50}
SHUTDOWN_TIMEOUT = 2.0
PROMPT = SHUTDOWN_TIMEOUT + 4.0
"""Seconds from SIGTERM to exit: the shutdown timeout, and a process's teardown on busy cores."""


@dataclass(frozen=True)
class Phase:
    operation: str | None
    """The request held by the proxy while the signal arrives (None: the daemon is idle)."""
    bucket: str | None
    times: int | None
    in_startup: bool
    """Before the daemon's first cycle: a SIGHUP there asks for the cycle about to run."""


PHASES = {
    "account-check": Phase("GetCallerIdentity", None, 1, in_startup=True),
    "definition-loading": Phase("GetObject", ENDPOINT, 1, in_startup=False),
    "write-ahead-record": Phase("PutObject", ENDPOINT, None, in_startup=False),
    "bucket-write": Phase("PutBucketLifecycleConfiguration", ANY, None, in_startup=False),
    "idle": Phase(None, None, None, in_startup=False),
}


def daemon_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **env,
        "LCC_METRICS_ADDR": "127.0.0.1:0",
        "LCC_POLL_INTERVAL": "60",
        "LCC_RESYNC_INTERVAL": "600",
        "LCC_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
        "LCC_CONCURRENCY": "2",
        **extra,
    }


def whole_configurations(s3: Any) -> dict[str, str]:
    """Each signalled bucket's state: "old", "new", or what else it holds (half-applied)."""
    out = {}
    for bucket in SIGNALLED:
        rules = rules_of(s3, bucket)
        out[bucket] = "old" if rules == SIG_OLD else "new" if rules == SIG_NEW else repr(rules)
    return out


SIGNAL_CASES = {
    f"{sig.name}-during-{phase}": (phase, sig) for phase in PHASES for sig in (signal.SIGTERM, signal.SIGHUP)
}


@pytest.mark.parametrize("name", SIGNAL_CASES)
def test_a_signal_at_any_phase_is_handled_and_leaves_every_bucket_whole(
    name: str, proxy: FaultProxy, env: dict[str, str], s3_client: Any, tmp_path: Path
) -> None:
    phase_name, sig = SIGNAL_CASES[name]
    phase = PHASES[phase_name]
    for bucket in SIGNALLED:
        put_rules(s3_client, bucket, SIG_OLD)
    put_definitions(s3_client, ENDPOINT, PREFIX, {f"{b}.toml": definition(b, *pictured(SIG_NEW)) for b in SIGNALLED})
    # A SIGTERM must not wait for the held request; a SIGHUP's cycle goes on after it.
    proxy.delay_seconds = 8.0 if sig is signal.SIGTERM and phase.times == 1 else 1.0
    if phase.operation is not None:
        proxy.force(phase.operation, phase.bucket, Fault.DELAY, times=phase.times)

    with DaemonProcess(daemon_env(env), tmp_path / "daemon.log") as daemon:
        if phase.operation is None:
            daemon.wait_for_event("cycle_finished")
        else:
            assert proxy.wait_for(phase.operation, timeout=30), f"no {phase.operation} came\n{daemon}"
            time.sleep(0.2)
        daemon.send(sig)
        if sig is signal.SIGHUP:
            if phase.in_startup:
                daemon.wait_for_event("cycle_finished", timeout=30)
            else:
                daemon.wait_for_event("cycle_finished", trigger="signal", timeout=30)
            assert whole_configurations(s3_client) == dict.fromkeys(SIGNALLED, "new"), str(daemon)
            daemon.send(signal.SIGTERM)
        code, elapsed = daemon.wait_exit(timeout=30)
        log = str(daemon)
        text = daemon.text

    with Promises(log) as p:
        p.equal(code, 0, "exit code")
        p.check(elapsed <= PROMPT, f"SIGTERM took {elapsed:.1f} s")
        states = whole_configurations(s3_client)
        p.check(set(states.values()) <= {"old", "new"}, f"half-applied: {states}")
        if sig is signal.SIGTERM and phase.operation in ("PutObject", "PutBucketLifecycleConfiguration"):
            p.check(bool(object_keys(s3_client, ENDPOINT, f"{PREFIX}log/")), "the cut cycle left no report in log/")
        p.check(not leaks(text), "a traceback, a repr or a secret shows: " + " | ".join(leaks(text)[:5]))


# -- settings no user means ----------------------------------------------------------------

HOSTILE: dict[str, tuple[str, str]] = {
    "rate-1e-300": ("LCC_MAX_REQUESTS_PER_SECOND", "1e-300"),
    "poll-negative": ("LCC_POLL_INTERVAL", "-1"),
    "resync-huge": ("LCC_RESYNC_INTERVAL", "1e300"),
    "concurrency-huge": ("LCC_CONCURRENCY", "1" + "0" * 30),
    "base-delay-nan": ("LCC_RETRY_BASE_DELAY", "nan"),
    "max-delay-inf": ("LCC_RETRY_MAX_DELAY", "inf"),
    "shutdown-minus-inf": ("LCC_SHUTDOWN_TIMEOUT", "-inf"),
    "deadline-huge": ("LCC_CYCLE_DEADLINE", "1e300"),
    "removals-negative": ("LCC_MAX_REMOVALS", "-5"),
    "settle-huge": ("LCC_SETTLE_SECONDS", "1e308"),
    "attempts-huge": ("LCC_RETRY_MAX_ATTEMPTS", "1" + "0" * 25),
    "region-with-newline": ("LCC_AWS_REGION", "eu-west-1\nFORGED lakecircle: all buckets in sync"),
    "params-holding-a-secret": ("LCC_ACTION_PARAMS", f'{{"buckets": ["a"], "token": "{SECRET}"}}'),
    "params-not-json-holding-a-secret": ("LCC_ACTION_PARAMS", f"token={SECRET}"),
    "endpoint-holding-a-secret": ("LCC_ENDPOINT", f"s3://Not_A_Bucket/{SECRET}"),
    "metrics-addr-holding-a-secret": ("LCC_METRICS_ADDR", f"{SECRET}:99999"),
}


def assert_refused_at_once(run: Run, variables: list[str]) -> None:
    with Promises(run) as p:
        p.exit_code(1)
        p.check(run.elapsed < 10, f"refusing the settings took {run.elapsed:.1f} s")
        for variable in variables:
            p.names(variable)
        forged = [line for line in run.output.splitlines() if line.lstrip().startswith("FORGED")]
        p.check(not forged, "a setting's newline reached the output raw")
        p.clean()


@pytest.mark.parametrize("name", HOSTILE)
def test_a_setting_no_user_means_is_refused_at_once_by_name_without_echoing_a_secret(
    name: str, env: dict[str, str]
) -> None:
    variable, value = HOSTILE[name]
    run = run_cli({**env, variable: value}, "sync", timeout=12)
    assert_refused_at_once(run, [variable])


def test_every_settings_problem_is_reported_in_one_run(env: dict[str, str]) -> None:
    hostile = dict(HOSTILE.values())
    given = {k: v for k, v in env.items() if k not in ("LCC_AWS_ACCOUNT", "LCC_ENDPOINT")}
    run = run_cli({**given, **hostile}, "sync", timeout=12)
    assert_refused_at_once(run, sorted({*hostile, "LCC_AWS_ACCOUNT", "LCC_ENDPOINT"}))


# -- an S3 outage under a daemon -------------------------------------------------------------


def failures_total(metrics_url: str) -> float:
    status, text = http_get(f"{metrics_url}/metrics")
    assert status == 200, text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "lakecircle_failures_total"
    )


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.slow
def test_an_s3_outage_under_the_daemon_counts_failures_and_readiness_follows_it(
    proxy: FaultProxy, env: dict[str, str], s3_client: Any, tmp_path: Path
) -> None:
    arrange_picture(s3_client)
    wanted = {ALPHA: BEFORE[ALPHA], BETA: {"keep": 40, "new": 50}}
    settings = daemon_env(env, LCC_POLL_INTERVAL="1", LCC_RESYNC_INTERVAL="3", LCC_RETRY_MAX_ATTEMPTS="2")
    with DaemonProcess(settings, tmp_path / "daemon.log") as daemon:
        url = daemon.metrics_url()
        daemon.wait_for_event("cycle_finished")
        assert wait_for(lambda: http_get(f"{url}/readyz")[0] == 200, 10), f"never ready\n{daemon}"
        # The outage starts as a resync cycle ends: the next is due in 3 s, so what fails
        # in the first 2 s are the polls (one a second).
        cycles = len(daemon.named("cycle_finished"))
        daemon.wait_for_event("cycle_finished", count=cycles + 1, timeout=10)
        before = failures_total(url)
        proxy.rates = {Fault.SERVER_ERROR: 1.0}  # every S3 request answers 500
        began = time.monotonic()
        counted = wait_for(lambda: failures_total(url) > before, 2.0)
        unready = wait_for(lambda: http_get(f"{url}/readyz")[0] == 503, 15.0)
        outage = time.monotonic() - began
        during = failures_total(url)

        proxy.rates = {}
        ready_again = wait_for(lambda: http_get(f"{url}/readyz")[0] == 200, 15.0)
        daemon.send(signal.SIGTERM)
        code, _ = daemon.wait_exit(timeout=30)
        log = str(daemon)
        text = daemon.text

    figures = f"failures {before:g} -> {during:g} in a {outage:.1f} s outage\n{log}"
    broken = [
        *([] if counted else ["no failure counted within 2 s (the polls of the outage count nothing)"]),
        *([] if unready else ["/readyz stayed ready through the outage"]),
        *([] if ready_again else ["/readyz did not recover after the outage"]),
    ]
    assert not broken, f"{'; '.join(broken)}: {figures}"
    assert code == 0, figures
    assert holdings(s3_client, wanted) == wanted, figures
    assert_clean(text)


# -- the proxy's own faults, checked through a plain client --------------------------------


def test_the_proxy_cuts_loops_and_thins_listings_and_replaces_and_refuses_bodies(proxy: FaultProxy, moto: str) -> None:
    s3 = boto3.client("s3", region_name=MOTO_REGION, endpoint_url=proxy.url)
    put_definitions(s3, ENDPOINT, PREFIX, {f"{c}.toml": c.encode() * 4 for c in "abcd"})

    proxy.force("ListObjectsV2", ENDPOINT, Fault.LIST_NO_TOKEN, times=1)
    page = s3.list_objects_v2(Bucket=ENDPOINT, Prefix=PREFIX)
    assert (page["IsTruncated"], page.get("NextContinuationToken"), page["KeyCount"]) == (True, None, 1)

    proxy.force("ListObjectsV2", ENDPOINT, Fault.LIST_LOOP, times=3)
    first = s3.list_objects_v2(Bucket=ENDPOINT, Prefix=PREFIX)
    token = first["NextContinuationToken"]
    again = s3.list_objects_v2(Bucket=ENDPOINT, Prefix=PREFIX, ContinuationToken=token)
    assert (first["KeyCount"], first["IsTruncated"]) == (1, True)
    assert (again["KeyCount"], again.get("Contents"), again["IsTruncated"], again["NextContinuationToken"]) == (
        0,
        None,
        True,
        token,
    )
    proxy.list_page_keys = 10  # a first page the server does not truncate gets a made-up token
    whole = s3.list_objects_v2(Bucket=ENDPOINT, Prefix=PREFIX)
    assert (whole["KeyCount"], whole["IsTruncated"], whole["NextContinuationToken"]) == (4, True, LOOP_TOKEN)

    proxy.drop_suffixes = ("b.toml",)
    proxy.force("ListObjectsV2", ENDPOINT, Fault.LIST_DROP, times=1)
    thinned = s3.list_objects_v2(Bucket=ENDPOINT, Prefix=PREFIX)
    assert [o["Key"].rsplit("/", 1)[1] for o in thinned["Contents"]] == ["a.toml", "c.toml", "d.toml"]
    assert (thinned["KeyCount"], thinned["IsTruncated"]) == (4, False)

    plain = plain_client(proxy.url)
    proxy.force("GetObject", ENDPOINT, Fault.REPLACE, key=f"{PREFIX}definition/c.toml")
    assert plain.get_object(Bucket=ENDPOINT, Key=f"{PREFIX}definition/c.toml")["Body"].read() == replaced(b"cccc")
    assert plain.get_object(Bucket=ENDPOINT, Key=f"{PREFIX}definition/d.toml")["Body"].read() == b"dddd"

    proxy.force("GetObject", ANY, Fault.DENIED)
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.get_object(Bucket=ENDPOINT, Key=f"{PREFIX}definition/a.toml")
    assert proxy.by_operation(Fault.DENIED) == {"GetObject": 1}
    assert proxy.arrived("ListObjectsV2") == 5


@pytest.mark.parametrize(
    ("line", "leaked"),
    [
        ("Traceback (most recent call last):", True),
        ('  File "/app/lakecircle/cli.py", line 12, in main', True),
        ("error: expected midnight, got datetime.time(0, 0)", True),
        ("KeyError('before')", True),
        ("<lakecircle.engine.loader.DefinitionLoader object at 0x7f3a2c1b9e50>", True),
        ("got {'buckets': ['a']}", True),
        ("Exceeds the limit (4300 digits); use sys.set_int_max_str_digits()", True),
        (f"LCC_ACTION_PARAMS: expected a JSON object, got token={SECRET}", True),
        (f"LCC_ACTION_PARAMS: expected a JSON object, got 'token=...{SECRET[-12:]}'", True),
        ('{"event": "cycle_finished", "ok": true, "changed": 1}', False),
        ("history/2020/01/01/000000.000000Z-camp-recorded.json: not a JSON document (line 1, column 2)", False),
        ("LCC_ACTION_PARAMS: expected a JSON object (value not shown: it may hold a secret)", False),
    ],
)
def test_the_leak_check_finds_tracebacks_reprs_and_secrets_and_passes_plain_messages(line: str, leaked: bool) -> None:
    assert bool(leaks(line)) is leaked
